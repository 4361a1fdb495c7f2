//! Head sampling of OTLP traces (issue #15) against the real `switchboard serve` binary, with
//! the collector and fixtures of `otel_tracing.rs`: ratio 0 exports no root request but still
//! follows a client's sampled parent; `always_off` exports nothing, even under a sampled
//! parent, yet upstreams still get the context flagged unsampled (`-00`) and the activity log
//! still gets the trace id; ratio 1 exports every request and wins over the `OTEL_*`
//! variables; `traceidratio` 0.5 exports about half of random trace ids, the same id always
//! the same way (the rule's own answer); a bad `--trace-sample-ratio` stops `serve` before it
//! starts, while `OTEL_TRACES_SAMPLER*` values it does not understand only warn.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;
use crate::otel_tracing::{
    ADMIN, Collector, PARENT, TRACE, TracedHub, stdio_traceparent, traceparent,
};

/// Server spans named `tools/call fx__echo` received so far, by trace id.
fn echo_spans(collector: &Collector) -> Vec<String> {
    collector
        .spans()
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s["name"] == "tools/call fx__echo" && s["kind"] == 2)
        .map(|s| s["traceId"].as_str().unwrap().to_string())
        .collect()
}

/// Long enough for the exporter (50 ms schedule delay in these hubs) to have sent anything.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

/// `tools/call fx__echo` with `traceparent` in `_meta`.
async fn echo_in(c: &mut McpClient, tp: &str) {
    let r = c
        .request(
            "tools/call",
            json!({"name": "fx__echo", "arguments": {"text": "hi"},
                   "_meta": {"traceparent": tp}}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_ratio_zero_drops_root_requests_but_follows_a_sampled_parent() {
    let (collector, endpoint) = Collector::start().await;
    let hub = TracedHub::start_with(Some(&endpoint), &["--trace-sample-ratio", "0"], &[]).await;
    let mut c = hub.client().await;
    for _ in 0..5 {
        c.call("fx__echo", json!({"text": "root"})).await;
    }
    // Each root request still sent a context upstream, flagged unsampled.
    let sent = hub.upstream_traceparents();
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert!(sent.iter().all(|tp| tp.ends_with("-00")), "{sent:?}");
    // A client's sampled parent decides (parent-based): exported, with the client as parent.
    echo_in(&mut c, &traceparent()).await;
    let span = collector.span_named("tools/call fx__echo", TRACE, 2).await;
    assert_eq!(span["parentSpanId"], PARENT);
    collector.span_named("tools/call echo", TRACE, 3).await;
    let last = hub.upstream_traceparents().pop().unwrap();
    assert!(last.starts_with(&format!("00-{TRACE}-")) && last.ends_with("-01"));
    // An unsampled parent is not exported either.
    let other = "4bf92f3577b34da6a3ce929d0e0e4736";
    echo_in(&mut c, &format!("00-{other}-00f067aa0ba902b7-00")).await;
    settle().await;
    assert_eq!(echo_spans(&collector), vec![TRACE.to_string()]);
    assert!(
        collector.spans().iter().all(|(_, s)| s["traceId"] == TRACE),
        "only the sampled parent's trace: {:#?}",
        collector.spans()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_off_exports_nothing_yet_propagates_the_context_unsampled() {
    let (collector, endpoint) = Collector::start().await;
    let hub = TracedHub::start_with(
        Some(&endpoint),
        &[],
        &[
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.3"),
        ],
    )
    .await;
    let mut c = hub.client().await;
    // A sampled parent does not matter to `always_off`; the upstream gets the same trace,
    // the hub's own span id and the unsampled flag.
    echo_in(&mut c, &traceparent()).await;
    let sent = hub.upstream_traceparents();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let prefix = format!("00-{TRACE}-");
    assert!(
        sent[0].starts_with(&prefix) && sent[0].ends_with("-00") && !sent[0].contains(PARENT),
        "{sent:?}"
    );
    // Over stdio, in `_meta`.
    let got = stdio_traceparent(&mut c).await;
    assert!(got.starts_with(&prefix) && got.ends_with("-00"), "{got}");
    // A root request: a new trace, still propagated.
    c.call("fx__echo", json!({"text": "root"})).await;
    let sent = hub.upstream_traceparents();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(!sent[1].contains(TRACE) && sent[1].ends_with("-00"));
    settle().await;
    assert!(
        collector.spans().is_empty(),
        "exported: {:#?}",
        collector.spans()
    );
    // The activity log still has the trace ids.
    let mut rows = Vec::new();
    let all_logged = eventually(Duration::from_secs(10), async || {
        rows = hub
            .api
            .as_(ADMIN)
            .get("/api/v1/logs?tool=fx__echo")
            .expect(200)
            .await["items"]
            .as_array()
            .unwrap()
            .clone();
        rows.len() == 2
    })
    .await;
    assert!(all_logged, "{rows:#?}");
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap_or(""))
        .collect();
    assert!(ids.contains(&TRACE), "{ids:?}");
    let root_id = &sent[1][3..35];
    assert!(ids.contains(&root_id), "{ids:?} lacks {root_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_ratio_one_exports_every_request_and_wins_over_the_otel_variables() {
    let (collector, endpoint) = Collector::start().await;
    let hub = TracedHub::start_with(
        Some(&endpoint),
        &[],
        &[
            ("SWITCHBOARD_TRACE_SAMPLE_RATIO", "1"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ],
    )
    .await;
    let mut c = hub.client().await;
    for _ in 0..20 {
        c.call("fx__echo", json!({"text": "root"})).await;
    }
    let all = eventually(Duration::from_secs(10), async || {
        echo_spans(&collector).len() == 20
    })
    .await;
    assert!(all, "{} of 20 exported", echo_spans(&collector).len());
    let sent = hub.upstream_traceparents();
    assert!(sent.iter().all(|tp| tp.ends_with("-01")), "{sent:?}");
}

/// Whether the ratio rule samples `trace` at 0.5: its low 56 bits are at least 2^55.
fn half_samples(trace: &str) -> bool {
    u64::from_str_radix(&trace[18..], 16).unwrap() >= 1 << 55
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_id_ratio_exports_about_that_share_and_the_same_way_every_time() {
    let (collector, endpoint) = Collector::start().await;
    let hub = TracedHub::start_with(
        Some(&endpoint),
        &[],
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ],
    )
    .await;
    let mut c = hub.client().await;
    // 100 random trace ids, each sent twice: once as a sampled parent and once unsampled
    // (not parent-based: the parent's flag does not count).
    let traces: Vec<String> = (0..100)
        .map(|_| switchboard_control::identity::random_hex(16))
        .collect();
    for flag in ["01", "00"] {
        for t in &traces {
            echo_in(&mut c, &format!("00-{t}-{PARENT}-{flag}")).await;
        }
    }
    let expected = traces.iter().filter(|t| half_samples(t)).count();
    let done = eventually(Duration::from_secs(10), async || {
        echo_spans(&collector).len() >= 2 * expected
    })
    .await;
    settle().await;
    let exported = echo_spans(&collector);
    assert!(done, "{} spans, {expected} ids sampled", exported.len());
    let share = exported.len() as f64 / 200.0;
    assert!((0.25..=0.75).contains(&share), "{share}");
    for t in &traces {
        let n = exported.iter().filter(|e| *e == t).count();
        let want = if half_samples(t) { 2 } else { 0 };
        assert_eq!(n, want, "trace {t}");
    }
    // What the upstream was told agrees with what was exported.
    for tp in hub.upstream_traceparents() {
        let sampled = half_samples(&tp[3..35]);
        assert_eq!(tp.ends_with("-01"), sampled, "{tp}");
    }
}

/// Command-line arguments, environment variables, and what the error line must name.
type BadCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// `serve` with tracing on, the sampler variables cleared, then `args` and `env`.
fn sampled_serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(switchboard_bin());
    cmd.args(["serve", "--admin-token", ADMIN, "--log", "warn"])
        .args(["--main-addr", "127.0.0.1:0", "--mcp-addr", "127.0.0.1:0"])
        .args(["--otlp-endpoint", "http://127.0.0.1:9"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_TRACES_SAMPLER_ARG")
        .env_remove("SWITCHBOARD_TRACE_SAMPLE_RATIO");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "sb-sampler-{name}-{}",
        switchboard_control::identity::random_hex(6)
    ))
}

/// Our own flag (or its variable) with a value that is not a ratio stops `serve` with one
/// line naming it and the value, before anything is created.
#[test]
fn a_bad_sample_ratio_flag_stops_serve_with_one_clear_line() {
    init();
    let cases: &[BadCase] = &[
        (
            &["--trace-sample-ratio", "1.5"],
            &[],
            "--trace-sample-ratio",
        ),
        (
            &[],
            &[("SWITCHBOARD_TRACE_SAMPLE_RATIO", "half")],
            "SWITCHBOARD_TRACE_SAMPLE_RATIO",
        ),
    ];
    for (args, env, named) in cases {
        let dir = temp_dir("bad");
        let out = sampled_serve(&dir, args, env).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} started");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].starts_with("switchboard: ") && lines[0].contains(named),
            "{stderr}"
        );
        let value = args
            .get(1)
            .copied()
            .unwrap_or_else(|| env.last().unwrap().1);
        assert!(lines[0].contains(value), "{value} not in {stderr}");
        assert!(
            !dir.join("data").exists(),
            "nothing may happen before the settings are valid"
        );
    }
}

/// `OTEL_TRACES_SAMPLER*` values the hub does not understand (these variables are often set
/// for every program of a machine) leave one warning naming the variable and the value, and
/// the hub starts with the default sampler.
#[test]
fn unknown_otel_sampler_variables_warn_once_and_the_hub_starts() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    init();
    let cases: &[BadCase] = &[
        (&[], &[("OTEL_TRACES_SAMPLER", "sometimes")], "sometimes"),
        (
            &[],
            &[("OTEL_TRACES_SAMPLER", "jaeger_remote")],
            "jaeger_remote",
        ),
        (
            &[],
            &[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "-0.1"),
            ],
            "-0.1",
        ),
    ];
    for (args, env, value) in cases {
        let dir = temp_dir("warn");
        let mut child = sampled_serve(&dir, args, env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The warning comes first; the data directory shows the hub went on to start.
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{env:?}: no log line"));
        assert!(
            line.contains("WARN")
                && line.contains("Trace sampler setting ignored")
                && line.contains("OTEL_TRACES_SAMPLER")
                && line.contains(value),
            "{env:?}: {line}"
        );
        let started = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            dir.join("data").exists()
        });
        std::thread::sleep(Duration::from_millis(300));
        let running = child.try_wait().unwrap().is_none();
        let more: Vec<String> = rx.try_iter().filter(|l| l.contains("sampler")).collect();
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(started && running, "{env:?}: the hub did not start");
        assert!(more.is_empty(), "{env:?}: warned more than once: {more:?}");
    }
}
