//! `switchboard-bench`: measures the Switchboard hub against calling its upstream directly.
//!
//! It starts the real binaries (`switchboard-fixture` as upstream, `switchboard serve` as the
//! hub, optionally Python proxies) as separate processes, drives them with its own MCP load
//! generator on one current-thread runtime, and writes `latest.json`, `latest.md` and
//! `latest.svg` into `--out`. See the crate README for the scenarios and how to read them.

mod auth;
mod churn;
mod client;
mod load;
mod otlp_sink;
mod procs;
mod python;
mod replicas;
mod report;
mod scenarios;
mod smart;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;

use crate::report::Report;
use crate::scenarios::Ctx;

/// Benchmarks the Switchboard hub against calling the upstream directly.
#[derive(Debug, Parser)]
#[command(name = "switchboard-bench", version, about)]
struct Cli {
    /// Run every scenario very briefly with small counts; exit non-zero on any error or on a
    /// configuration that made no request (for CI).
    #[arg(long)]
    smoke: bool,
    /// Rounds per comparison (targets alternate A B A B ...); medians across rounds are reported.
    #[arg(long)]
    rounds: Option<usize>,
    /// Measured seconds per round and target.
    #[arg(long)]
    duration: Option<f64>,
    /// Comma-separated scenario ids (default: all): echo, stdio, big, connect, tools-list, idle,
    /// churn, auth, observe, smart, replicas, proxies.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Where latest.json, latest.md and latest.svg go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Directory with the `switchboard` and `switchboard-fixture` binaries (default: next to this one).
    #[arg(long, env = "SWITCHBOARD_BENCH_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Upstream processes for the merged tools/list scenario (default 100; 3 with --smoke).
    #[arg(long)]
    upstreams: Option<usize>,
    /// Idle sessions to open (default 10,000; 50 with --smoke).
    #[arg(long)]
    sessions: Option<usize>,
    /// Python venv with mcp-proxy and fastmcp for the `proxies` scenario.
    #[arg(long, env = "SWITCHBOARD_BENCH_VENV")]
    python_venv: Option<PathBuf>,
    /// Never create the Python venv (the `proxies` scenario is skipped when it is missing).
    #[arg(long)]
    no_install: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: the load generator must stay cheap next to the processes it measures.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_venv() -> PathBuf {
    // crates/switchboard-bench → the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.test-deps/bench-venv")
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let bins = procs::Bins::locate(cli.bin_dir.as_deref())?;
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let work = std::env::temp_dir().join(format!(
        "switchboard-bench-{}-{started}",
        std::process::id()
    ));
    std::fs::create_dir_all(&work).with_context(|| format!("create {}", work.display()))?;
    let duration = cli.duration.unwrap_or(if cli.smoke { 0.3 } else { 5.0 });
    anyhow::ensure!(
        duration > 0.0 && duration.is_finite(),
        "--duration must be positive"
    );
    let duration = Duration::from_secs_f64(duration);
    let ctx = Ctx {
        bins,
        work: work.clone(),
        rounds: cli.rounds.unwrap_or(if cli.smoke { 1 } else { 3 }).max(1),
        duration,
        warmup: if cli.smoke {
            Duration::from_millis(50)
        } else {
            (duration / 5).min(Duration::from_secs(1))
        },
        smoke: cli.smoke,
        upstreams: cli
            .upstreams
            .unwrap_or(if cli.smoke { 3 } else { 100 })
            .max(1),
        sessions: cli
            .sessions
            .unwrap_or(if cli.smoke { 50 } else { 10_000 })
            .max(1),
        venv: cli.python_venv.clone().unwrap_or_else(default_venv),
        install_python: !cli.smoke && !cli.no_install,
    };
    let ids: Vec<String> = if cli.scenarios.is_empty() {
        scenarios::ALL.iter().map(|s| (*s).to_owned()).collect()
    } else {
        cli.scenarios
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for id in &ids {
        anyhow::ensure!(
            scenarios::ALL.contains(&id.as_str()),
            "unknown scenario {id:?}; known: {}",
            scenarios::ALL.join(", ")
        );
    }
    eprintln!(
        "switchboard-bench: {} binaries from {}, {} round(s) × {:?}, work dir {}",
        ctx.bins.profile(),
        ctx.bins
            .hub
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        ctx.rounds,
        ctx.duration,
        work.display()
    );
    let loadavg_start = report::loadavg();
    let mut scenario_reports = Vec::new();
    for id in &ids {
        scenario_reports.push(scenarios::run(&ctx, id).await);
    }
    let mut report = Report {
        command: std::env::args()
            .enumerate()
            .map(|(i, a)| {
                if i == 0 {
                    "switchboard-bench".to_owned()
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        started_unix: started,
        profile: ctx.bins.profile(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        rounds: ctx.rounds,
        duration_s: ctx.duration.as_secs_f64(),
        smoke: cli.smoke,
        loadavg_start,
        loadavg_end: report::loadavg(),
        scenarios: scenario_reports,
        targets: vec![],
    };
    report.check_targets();
    std::fs::create_dir_all(&cli.out).with_context(|| format!("create {}", cli.out.display()))?;
    let md = report.markdown();
    write(
        &cli.out.join("latest.json"),
        &serde_json::to_string_pretty(&report)?,
    )?;
    write(&cli.out.join("latest.md"), &md)?;
    write(&cli.out.join("latest.svg"), &report.svg())?;
    println!("{md}");
    eprintln!(
        "switchboard-bench: wrote {}/latest.{{json,md,svg}}",
        cli.out.display()
    );
    let _ = std::fs::remove_dir_all(&work);

    let failed: Vec<String> = report
        .scenarios
        .iter()
        .filter(|s| s.status == report::Status::Failed)
        .map(|s| format!("{}: {}", s.id, s.note.as_deref().unwrap_or("")))
        .collect();
    let problems = if cli.smoke {
        report.smoke_problems()
    } else {
        failed
    };
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("switchboard-bench: problem: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Writes through a temporary file so a reader never sees half a report.
fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}
