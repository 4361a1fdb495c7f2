//! Runs `switchboard-bench --smoke` against the binaries of this build and checks its report.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

const SCENARIOS: [&str; 12] = [
    "echo",
    "stdio",
    "big",
    "connect",
    "tools-list",
    "idle",
    "churn",
    "auth",
    "observe",
    "smart",
    "replicas",
    "proxies",
];

#[test]
fn smoke_run_reports_every_scenario() {
    let exe = Path::new(env!("CARGO_BIN_EXE_switchboard-bench"));
    let dir = exe.parent().expect("bin dir");
    for bin in ["switchboard", "switchboard-fixture"] {
        assert!(
            dir.join(bin).exists(),
            "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
            dir.join(bin).display()
        );
    }
    let out = std::env::temp_dir().join(format!("switchboard-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let run = Command::new(exe)
        .args(["--smoke", "--no-install", "--out"])
        .arg(&out)
        // Hermetic: the third-party Python proxies are not part of this test.
        .env("SWITCHBOARD_BENCH_VENV", out.join("no-venv"))
        .output()
        .expect("run switchboard-bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "switchboard-bench --smoke failed ({}):\n{stderr}",
        run.status
    );
    eprintln!("smoke run took {:?}", started.elapsed());

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("latest.json")).expect("latest.json"),
    )
    .expect("valid JSON");
    assert_eq!(json["smoke"], true);
    let scenarios = json["scenarios"].as_array().expect("scenarios array");
    for id in SCENARIOS {
        let s = scenarios
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("scenario {id} missing from the report"));
        let status = s["status"].as_str().unwrap_or("");
        match (id, status) {
            ("proxies", _) => assert_eq!(status, "skipped", "{id}: {s}"),
            // Needs nginx and PostgreSQL; without them it says so and is skipped.
            ("replicas", "skipped") => eprintln!("replicas skipped: {}", s["note"]),
            _ => {
                assert_eq!(status, "ok", "{id}: {s}");
                let rows = s["rows"].as_array().expect("rows");
                assert!(!rows.is_empty(), "{id} has no rows");
                for r in rows {
                    assert!(
                        r["median"]["requests"].as_u64().unwrap_or(0) > 0,
                        "{id}: zero requests in {r}"
                    );
                    assert_eq!(r["median"]["errors"], 0, "{id}: errors in {r}");
                }
            }
        }
    }
    let idle = scenarios.iter().find(|s| s["id"] == "idle").expect("idle");
    assert!(
        idle["rows"][0]["extra"]["kib_per_session"].is_number(),
        "{idle}"
    );
    // churn: both concurrencies, with and without churn, and the API operations themselves.
    let churn = scenarios
        .iter()
        .find(|s| s["id"] == "churn")
        .expect("churn");
    for target in ["hub", "hub + churn", "API ops"] {
        assert_eq!(
            churn["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .filter(|r| r["target"] == target)
                .count(),
            2,
            "{target}: {churn}"
        );
    }
    let md = std::fs::read_to_string(out.join("latest.md")).expect("latest.md");
    assert!(
        md.contains("| scenario |") && md.contains("| churn | c=1 | hub + churn |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("latest.svg")).expect("latest.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&out);
}
