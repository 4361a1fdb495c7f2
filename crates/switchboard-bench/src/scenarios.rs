//! The scenarios: which processes each starts, which targets it compares, and in what order.
//!
//! A comparison runs its targets round-robin (A B A B ...) for `rounds` rounds so drift on the
//! machine hits every target alike, and reports per-metric medians across rounds.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::client::{Conn, Endpoint, Session};
use crate::load::{self, LoadSpec, RunStats, Work};
use crate::procs::{self, Bins, FixtureArgs, Proc};
use crate::python;
use crate::report::{Row, ScenarioReport, Status};

/// Every scenario id, in run order.
pub const ALL: [&str; 12] = [
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

/// Settings shared by every scenario.
pub struct Ctx {
    /// The binaries under test.
    pub bins: Bins,
    /// Scratch directory (logs, servers files, data dirs).
    pub work: PathBuf,
    /// Rounds per comparison.
    pub rounds: usize,
    /// Measured window per round.
    pub duration: Duration,
    /// Uncounted warm-up before each window.
    pub warmup: Duration,
    /// `--smoke`: tiny counts.
    pub smoke: bool,
    /// Upstreams for the merged tools/list scenario.
    pub upstreams: usize,
    /// Sessions for the idle-session scenario.
    pub sessions: usize,
    /// The Python venv with mcp-proxy and fastmcp.
    pub venv: PathBuf,
    /// Whether the venv may be created when missing.
    pub install_python: bool,
}

/// One target of a comparison.
pub struct Contender {
    /// Row label: `direct`, `hub`, ...
    pub target: String,
    /// Where the load goes.
    pub endpoint: Endpoint,
    /// What the load sends.
    pub work: Work,
    /// The process whose RSS is reported (none for `direct`).
    pub pid: Option<u32>,
}

fn call(tool: &str, args: &str) -> Work {
    Work::Request {
        method: "tools/call",
        params: format!(r#"{{"name":"{tool}","arguments":{args}}}"#),
        min_len: 0,
    }
}

pub(crate) fn echo(tool: &str) -> Work {
    call(tool, r#"{"text":"hello from switchboard-bench"}"#)
}

/// Runs the contenders round-robin and returns one row each; rows after a `direct` first row
/// are compared to it.
pub async fn compare(
    ctx: &Ctx,
    scenario: &str,
    variant: &str,
    concurrency: usize,
    contenders: &[Contender],
) -> Vec<Row> {
    let mut runs: Vec<Vec<RunStats>> = vec![Vec::new(); contenders.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for round in 0..ctx.rounds {
        for (i, c) in contenders.iter().enumerate() {
            let spec = LoadSpec {
                endpoint: c.endpoint.clone(),
                concurrency,
                warmup: ctx.warmup,
                duration: ctx.duration,
                work: c.work.clone(),
            };
            let st = load::run(&spec).await;
            eprintln!(
                "  {scenario} · {variant} · {:<16} round {}: {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  errors {}{}",
                c.target,
                round + 1,
                st.throughput,
                st.p50_us,
                st.p99_us,
                st.errors,
                st.first_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            if let Some(k) = c.pid.and_then(procs::rss_kib) {
                rss[i].push(k as f64);
            }
            runs[i].push(st);
        }
    }
    let mut rows: Vec<Row> = contenders
        .iter()
        .zip(runs)
        .zip(rss)
        .map(|((c, r), mut m)| {
            let mut row = Row::new(scenario, variant, &c.target, concurrency, r);
            if !m.is_empty() {
                row.rss_kib = Some(load::median(&mut m) as u64);
            }
            row
        })
        .collect();
    if rows.first().is_some_and(|r| r.target == "direct") {
        let (base, rest) = rows.split_at_mut(1);
        for r in rest {
            r.compare_to(&base[0]);
        }
    }
    rows
}

fn report(
    id: &str,
    title: &str,
    result: anyhow::Result<(Vec<Row>, Option<String>)>,
) -> ScenarioReport {
    match result {
        Ok((rows, note)) => ScenarioReport {
            id: id.into(),
            title: title.into(),
            status: Status::Ok,
            note,
            rows,
        },
        Err(e) => ScenarioReport {
            id: id.into(),
            title: title.into(),
            status: Status::Failed,
            note: Some(format!("{e:#}")),
            rows: vec![],
        },
    }
}

/// Runs one scenario by id.
pub async fn run(ctx: &Ctx, id: &str) -> ScenarioReport {
    eprintln!("== {id}");
    match id {
        "echo" => report(
            id,
            "tools/call echo over Streamable HTTP, direct vs hub",
            echo_scenario(ctx).await,
        ),
        "stdio" => report(
            id,
            "tools/call echo through a stdio upstream (hub) vs the upstream over HTTP (direct)",
            stdio_scenario(ctx).await,
        ),
        "big" => report(
            id,
            "tools/call big {bytes: 65536}, 64 KiB results",
            big_scenario(ctx).await,
        ),
        "connect" => report(
            id,
            "initialize handshakes: initialize + initialized + DELETE, new session each",
            connect_scenario(ctx).await,
        ),
        "tools-list" => report(
            id,
            "tools/list merged over many upstreams, once warm",
            tools_list_scenario(ctx).await,
        ),
        "idle" => report(
            id,
            "memory of idle sessions and of an idle hub",
            idle_scenario(ctx).await,
        ),
        "churn" => report(
            id,
            "calls on one server while another is added/removed every 100 ms",
            crate::churn::scenario(ctx).await,
        ),
        "auth" => report(
            id,
            "tools/call echo with a credential on every request (API key, access token) vs none",
            crate::auth::scenario(ctx).await,
        ),
        "observe" => report(
            id,
            "tools/call echo with metrics + activity log on vs both off",
            observe_scenario(ctx).await,
        ),
        "smart" => report(
            id,
            "tools/call echo on /mcp vs the same call through $smart call_tool",
            crate::smart::scenario(ctx).await,
        ),
        "replicas" => crate::replicas::scenario(ctx).await,
        "proxies" => python::scenario(ctx).await,
        other => ScenarioReport {
            id: other.into(),
            title: "unknown".into(),
            status: Status::Failed,
            note: Some(format!("unknown scenario; known: {}", ALL.join(", "))),
            rows: vec![],
        },
    }
}

fn one_server(name: &str, entry: Value) -> Vec<(String, Value)> {
    vec![(name.to_owned(), entry)]
}

async fn echo_scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let mut rows = Vec::new();
    for json in [false, true] {
        let mode = if json { "JSON" } else { "SSE" };
        let tag = mode.to_lowercase();
        let fx = procs::spawn_fixture(
            &ctx.bins,
            &ctx.work,
            &format!("echo-{tag}"),
            FixtureArgs { json, tools: 0 },
        )
        .await?;
        let hub = procs::spawn_hub(
            &ctx.bins,
            &ctx.work,
            &format!("echo-{tag}"),
            &one_server("echo", procs::http_entry(&fx.endpoint)),
        )
        .await;
        let hub = match hub {
            Ok(h) => h,
            Err(e) => {
                fx.proc.stop().await;
                return Err(e);
            }
        };
        for c in [1, 32] {
            let contenders = [
                Contender {
                    target: "direct".into(),
                    endpoint: fx.endpoint.clone(),
                    work: echo("echo"),
                    pid: None,
                },
                Contender {
                    target: "hub".into(),
                    endpoint: hub.mcp.clone(),
                    work: echo("echo__echo"),
                    pid: Some(hub.proc.pid()),
                },
            ];
            rows.extend(
                compare(
                    ctx,
                    "echo",
                    &format!("{mode} upstream, c={c}"),
                    c,
                    &contenders,
                )
                .await,
            );
        }
        procs::stop_all([hub.proc, fx.proc]).await;
    }
    Ok((
        rows,
        Some(
            "SSE upstream: the fixture's default Streamable HTTP (sessions, every reply an event stream); \
             JSON upstream: `--json` (stateless, application/json replies). The hub answers its clients with JSON in both."
                .into(),
        ),
    ))
}

async fn stdio_scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let fx = procs::spawn_fixture(
        &ctx.bins,
        &ctx.work,
        "stdio-direct",
        FixtureArgs {
            json: true,
            tools: 0,
        },
    )
    .await?;
    let hub = match procs::spawn_hub(
        &ctx.bins,
        &ctx.work,
        "stdio",
        &one_server("s", procs::stdio_entry(&ctx.bins)),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let mut rows = Vec::new();
    for c in [1, 32] {
        let contenders = [
            Contender {
                target: "direct".into(),
                endpoint: fx.endpoint.clone(),
                work: echo("echo"),
                pid: None,
            },
            Contender {
                target: "hub (stdio)".into(),
                endpoint: hub.mcp.clone(),
                work: echo("s__echo"),
                pid: Some(hub.proc.pid()),
            },
        ];
        rows.extend(compare(ctx, "stdio", &format!("c={c}"), c, &contenders).await);
    }
    procs::stop_all([hub.proc, fx.proc]).await;
    Ok((rows, Some("direct = the same fixture over Streamable HTTP with `--json`; hub (stdio) = hub → `switchboard-fixture stdio`".into())))
}

async fn big_scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let fx = procs::spawn_fixture(&ctx.bins, &ctx.work, "big", FixtureArgs::default()).await?;
    let hub = match procs::spawn_hub(
        &ctx.bins,
        &ctx.work,
        "big",
        &one_server("echo", procs::http_entry(&fx.endpoint)),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let big = |tool: &str| match call(tool, r#"{"bytes":65536}"#) {
        Work::Request { method, params, .. } => Work::Request {
            method,
            params,
            min_len: 65536,
        },
        w => w,
    };
    let contenders = [
        Contender {
            target: "direct".into(),
            endpoint: fx.endpoint.clone(),
            work: big("big"),
            pid: None,
        },
        Contender {
            target: "hub".into(),
            endpoint: hub.mcp.clone(),
            work: big("echo__big"),
            pid: Some(hub.proc.pid()),
        },
    ];
    let rows = compare(ctx, "big", "SSE upstream, c=8", 8, &contenders).await;
    procs::stop_all([hub.proc, fx.proc]).await;
    Ok((rows, None))
}

async fn connect_scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let fx = procs::spawn_fixture(&ctx.bins, &ctx.work, "connect", FixtureArgs::default()).await?;
    let hub = match procs::spawn_hub(
        &ctx.bins,
        &ctx.work,
        "connect",
        &one_server("echo", procs::http_entry(&fx.endpoint)),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let contenders = [
        Contender {
            target: "direct".into(),
            endpoint: fx.endpoint.clone(),
            work: Work::Connect,
            pid: None,
        },
        Contender {
            target: "hub".into(),
            endpoint: hub.mcp.clone(),
            work: Work::Connect,
            pid: Some(hub.proc.pid()),
        },
    ];
    let rows = compare(ctx, "connect", "SSE upstream, c=8", 8, &contenders).await;
    procs::stop_all([hub.proc, fx.proc]).await;
    Ok((
        rows,
        Some(
            "one operation = initialize + notifications/initialized + DELETE on a kept-alive connection; \
             the hub answers initialize itself (its upstream session is shared), the fixture creates an rmcp session each time"
                .into(),
        ),
    ))
}

/// Generated tools per fixture so that, with the fixture's 15 built-in tools, each has 50.
const GENERATED_TOOLS: usize = 35;
const TOOLS_PER_UPSTREAM: usize = 50;

/// Counts the tools in one tools/list answer.
async fn count_tools(ep: &Endpoint) -> anyhow::Result<usize> {
    #[derive(serde::Deserialize)]
    struct ListResult {
        tools: Vec<serde::de::IgnoredAny>,
    }
    let s = Session::open(Conn::new(ep.clone()))
        .await
        .map_err(|(_, e)| anyhow::anyhow!("initialize: {e}"))?;
    // The load client only checks envelopes: fetch the whole list once to count it.
    let body = crate::client::request_body("99", "tools/list", "{}");
    let text = raw_post(ep, &s, body).await?;
    let _ = s.close().await;
    let v: Value = serde_json::from_str(&text)?;
    let result: ListResult =
        serde_json::from_value(v.get("result").cloned().context("no result")?)?;
    Ok(result.tools.len())
}

/// One POST on a throwaway connection; returns the response message text (JSON or SSE).
pub(crate) async fn raw_post(ep: &Endpoint, s: &Session, body: String) -> anyhow::Result<String> {
    use http_body_util::BodyExt;
    let tcp = tokio::net::TcpStream::connect(ep.addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut b = http::Request::post(ep.path.as_str())
        .header(http::header::HOST, ep.authority.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, text/event-stream");
    if let Some(a) = &ep.authorization {
        b = b.header(http::header::AUTHORIZATION, a.clone());
    }
    if let Some(id) = &s.id {
        b = b.header("mcp-session-id", id.clone());
    }
    if let Some(v) = &s.version {
        b = b.header("mcp-protocol-version", v.clone());
    }
    let resp = sender
        .send_request(b.body(http_body_util::Full::new(bytes::Bytes::from(body)))?)
        .await?;
    let is_sse = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !is_sse {
        return Ok(String::from_utf8(bytes.to_vec())?);
    }
    let mut dec = switchboard_core::sse::Decoder::new(usize::MAX / 2);
    let mut events = Vec::new();
    dec.feed(&bytes, &mut events)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    dec.feed(b"\n\n", &mut events)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    events
        .into_iter()
        .map(|e| e.data)
        .find(|d| d.contains(r#""result""#))
        .context("no response event")
}

async fn tools_list_scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let n = ctx.upstreams;
    let fixtures = procs::spawn_fixtures(
        &ctx.bins,
        &ctx.work,
        n,
        FixtureArgs {
            json: false,
            tools: GENERATED_TOOLS,
        },
    )
    .await?;
    let servers: Vec<(String, Value)> = fixtures
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("u{i:03}"), procs::http_entry(&f.endpoint)))
        .collect();
    let hub = match procs::spawn_hub(&ctx.bins, &ctx.work, "tools-list", &servers).await {
        Ok(h) => h,
        Err(e) => {
            procs::stop_all(fixtures.into_iter().map(|f| f.proc)).await;
            return Err(e);
        }
    };
    let outcome = async {
        let direct_tools = count_tools(&fixtures[0].endpoint)
            .await
            .context("direct tools/list")?;
        let hub_tools = count_tools(&hub.mcp).await.context("hub tools/list")?;
        anyhow::ensure!(
            direct_tools == TOOLS_PER_UPSTREAM,
            "a fixture lists {direct_tools} tools, expected {TOOLS_PER_UPSTREAM}"
        );
        anyhow::ensure!(
            hub_tools >= n * TOOLS_PER_UPSTREAM,
            "the hub lists {hub_tools} tools, expected at least {}",
            n * TOOLS_PER_UPSTREAM
        );
        let list = Work::Request {
            method: "tools/list",
            params: "{}".into(),
            min_len: 0,
        };
        let contenders = [
            Contender {
                target: "direct".into(),
                endpoint: fixtures[0].endpoint.clone(),
                work: list.clone(),
                pid: None,
            },
            Contender {
                target: "hub".into(),
                endpoint: hub.mcp.clone(),
                work: list,
                pid: Some(hub.proc.pid()),
            },
        ];
        let mut rows = compare(
            ctx,
            "tools-list",
            &format!("{n} upstreams × {TOOLS_PER_UPSTREAM} tools, c=1"),
            1,
            &contenders,
        )
        .await;
        // The direct row lists one upstream's 50 tools: a reference, not a like-for-like baseline.
        for r in &mut rows {
            r.ratio = None;
            r.baseline = None;
            r.p50_delta_us = None;
            r.p99_delta_us = None;
            let tools = if r.target == "direct" {
                direct_tools
            } else {
                hub_tools
            };
            r.extra.insert("tools".into(), tools as f64);
        }
        anyhow::Ok((rows, direct_tools, hub_tools))
    }
    .await;
    let mut procs_to_stop: Vec<Proc> = fixtures.into_iter().map(|f| f.proc).collect();
    procs_to_stop.push(hub.proc);
    procs::stop_all(procs_to_stop).await;
    let (rows, direct_tools, hub_tools) = outcome?;
    Ok((
        rows,
        Some(format!(
            "{n} fixture processes over Streamable HTTP, `--tools {GENERATED_TOOLS}` each (+15 built-in = {TOOLS_PER_UPSTREAM}); \
             the hub's list has {hub_tools} tools (its own local tool included). \
             direct = tools/list of one upstream ({direct_tools} tools), for reference only."
        )),
    ))
}

async fn idle_scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let fx = procs::spawn_fixture(&ctx.bins, &ctx.work, "idle", FixtureArgs::default()).await?;
    let hub = match procs::spawn_hub(
        &ctx.bins,
        &ctx.work,
        "idle",
        &one_server("echo", procs::http_entry(&fx.endpoint)),
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let outcome = async {
        // Let start-up allocations settle, then take the idle baseline.
        tokio::time::sleep(Duration::from_millis(if ctx.smoke { 100 } else { 1000 })).await;
        let idle = hub.proc.rss_kib().context("cannot read the hub's RSS")?;
        let (stats, ids) = load::open_idle_sessions(&hub.mcp, ctx.sessions, 8).await;
        tokio::time::sleep(Duration::from_millis(if ctx.smoke { 100 } else { 1000 })).await;
        let after = hub.proc.rss_kib().context("cannot read the hub's RSS")?;
        let opened = ids.len();
        anyhow::ensure!(opened > 0, "no session could be opened: {}", stats.first_error.as_deref().unwrap_or("?"));
        let mut row = Row::new("idle", &format!("{} sessions", ctx.sessions), "hub", 8, vec![stats]);
        row.rss_kib = Some(after);
        row.extra.insert("idle_rss_kib".into(), idle as f64);
        row.extra.insert("rss_after_kib".into(), after as f64);
        row.extra.insert("sessions_open".into(), opened as f64);
        row.extra.insert("kib_per_session".into(), (after as f64 - idle as f64) / opened as f64);
        eprintln!(
            "  idle: hub RSS {idle} KiB idle, {after} KiB with {opened} sessions → {:.2} KiB/session",
            (after as f64 - idle as f64) / opened as f64
        );
        anyhow::Ok(row)
    }
    .await;
    procs::stop_all([hub.proc, fx.proc]).await;
    let row = outcome?;
    Ok((
        vec![row],
        Some(
            "hub with one HTTP upstream; idle RSS after start-up, then N initialized sessions kept open (no DELETE) \
             over 8 connections; req/s and latencies here describe the session opens"
                .into(),
        ),
    ))
}

/// The cost of observability: one upstream, two hubs (metrics and the activity log off; both
/// on, the log in the hub's SQLite store), alternately, at c=1 and c=32.
async fn observe_scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let fx = procs::spawn_fixture(
        &ctx.bins,
        &ctx.work,
        "observe",
        FixtureArgs {
            json: true,
            tools: 0,
        },
    )
    .await?;
    let servers = one_server("echo", procs::http_entry(&fx.endpoint));
    let off = procs::spawn_hub_with(
        &ctx.bins,
        &ctx.work,
        "observe-off",
        &servers,
        &["--no-metrics", "--no-activity-log"],
    )
    .await;
    let off = match off {
        Ok(h) => h,
        Err(e) => {
            fx.proc.stop().await;
            return Err(e);
        }
    };
    let on = match procs::spawn_hub_with(&ctx.bins, &ctx.work, "observe-on", &servers, &[]).await {
        Ok(h) => h,
        Err(e) => {
            procs::stop_all([off.proc, fx.proc]).await;
            return Err(e);
        }
    };
    // Each half alone, to tell their costs apart.
    let metrics_only = match procs::spawn_hub_with(
        &ctx.bins,
        &ctx.work,
        "observe-metrics",
        &servers,
        &["--no-activity-log"],
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            procs::stop_all([on.proc, off.proc, fx.proc]).await;
            return Err(e);
        }
    };
    let log_only = match procs::spawn_hub_with(
        &ctx.bins,
        &ctx.work,
        "observe-log",
        &servers,
        &["--no-metrics"],
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            procs::stop_all([metrics_only.proc, on.proc, off.proc, fx.proc]).await;
            return Err(e);
        }
    };
    // Traces too: every span exported as OTLP/HTTP JSON to a sink in this process.
    let (sink, spans) = crate::otlp_sink::start().await?;
    let traced = procs::spawn_hub_with(
        &ctx.bins,
        &ctx.work,
        "observe-traced",
        &servers,
        &["--otlp-endpoint", &sink],
    )
    .await;
    let traced = match traced {
        Ok(h) => h,
        Err(e) => {
            procs::stop_all([log_only.proc, metrics_only.proc, on.proc, off.proc, fx.proc]).await;
            return Err(e);
        }
    };
    let mut rows = Vec::new();
    for c in [1, 32] {
        let contenders = [
            Contender {
                target: "hub, observability off".into(),
                endpoint: off.mcp.clone(),
                work: echo("echo__echo"),
                pid: Some(off.proc.pid()),
            },
            Contender {
                target: "hub, metrics only".into(),
                endpoint: metrics_only.mcp.clone(),
                work: echo("echo__echo"),
                pid: Some(metrics_only.proc.pid()),
            },
            Contender {
                target: "hub, activity log only".into(),
                endpoint: log_only.mcp.clone(),
                work: echo("echo__echo"),
                pid: Some(log_only.proc.pid()),
            },
            Contender {
                target: "hub, metrics + activity log".into(),
                endpoint: on.mcp.clone(),
                work: echo("echo__echo"),
                pid: Some(on.proc.pid()),
            },
            Contender {
                target: "hub, metrics + activity log + OTLP traces".into(),
                endpoint: traced.mcp.clone(),
                work: echo("echo__echo"),
                pid: Some(traced.proc.pid()),
            },
        ];
        let mut r = compare(ctx, "observe", &format!("c={c}"), c, &contenders).await;
        let (base, rest) = r.split_at_mut(1);
        for row in rest {
            row.compare_to(&base[0]);
        }
        rows.extend(r);
    }
    procs::stop_all([
        traced.proc,
        log_only.proc,
        metrics_only.proc,
        on.proc,
        off.proc,
        fx.proc,
    ])
    .await;
    let exported = spans.load(std::sync::atomic::Ordering::Relaxed);
    Ok((
        rows,
        Some(format!(
            "All hubs proxy one JSON-mode fixture; the second records every call in the \
             Prometheus histograms and queues an activity row (SQLite store, batched writer); \
             the third also exports a SERVER and a CLIENT span per call as OTLP/HTTP JSON to a \
             loopback sink ({exported} export requests received)."
        )),
    ))
}
