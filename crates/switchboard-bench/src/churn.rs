//! The `churn` scenario: calls on one steady server while another server is added and removed
//! through the management API every [`TICK`].
//!
//! One hub serves the steady upstream `echo` (the fixture over Streamable HTTP, default SSE
//! mode). The load runs `tools/call echo__echo` against it; in the `hub + churn` runs a second
//! task on the same (single-thread) runtime, every tick, either adds a server with
//! `POST /api/v1/servers` (alternately a second fixture over HTTP and a stdio fixture) or removes
//! the one it added on the previous tick with `DELETE /api/v1/servers/{name}`. `hub` and
//! `hub + churn` alternate A B A B like every other comparison. Every add and remove is timed on
//! its own; a failed one is an error of the `API ops` row.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::client::{Conn, Endpoint, Session};
use crate::load::{self, LoadSpec, RunStats, Work};
use crate::procs::{self, FixtureArgs, Proc};
use crate::report::Row;
use crate::scenarios::Ctx;

/// How often the churn task adds or removes a server.
const TICK: Duration = Duration::from_millis(100);
/// The admin token given to the hub (the API wants at least 16 characters).
const TOKEN: &str = "switchboard-bench-admin-token";
/// Longest one API call may take before it counts as failed.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an added server may take to show up in (or vanish from) `tools/list`.
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the churn task adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Stdio,
}

/// The management API of one hub, on one keep-alive connection.
struct Api {
    conn: Conn,
    /// The second fixture's URL (what an HTTP add points at).
    http_url: String,
    /// `switchboard-fixture`, for stdio adds.
    fixture: String,
    /// Names handed out so far (each add gets a fresh one).
    added: u64,
}

impl Api {
    fn entry(&self, name: &str, kind: Kind) -> Value {
        match kind {
            Kind::Http => json!({"name": name, "type": "streamable-http", "url": self.http_url}),
            Kind::Stdio => json!({"name": name, "command": self.fixture, "args": ["stdio"]}),
        }
    }

    /// One call, expecting `want`; the error text carries the status and the body's start.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
        want: StatusCode,
    ) -> Result<(), String> {
        let what = format!("{method} {path}");
        match tokio::time::timeout(API_TIMEOUT, self.conn.api(method, path, TOKEN, body)).await {
            Ok(Ok((status, _))) if status == want => Ok(()),
            Ok(Ok((status, body))) => Err(format!(
                "{what}: HTTP {status} (expected {want}): {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => {
                self.conn.reset();
                Err(format!("{what}: no answer within {API_TIMEOUT:?}"))
            }
        }
    }

    fn next_name(&mut self) -> String {
        self.added += 1;
        format!("churn{}", self.added)
    }

    async fn add(&mut self, name: &str, kind: Kind) -> Result<(), String> {
        let body = self.entry(name, kind).to_string();
        self.call(
            Method::POST,
            "/api/v1/servers",
            Some(body),
            StatusCode::CREATED,
        )
        .await
    }

    async fn remove(&mut self, name: &str) -> Result<(), String> {
        self.call(
            Method::DELETE,
            &format!("/api/v1/servers/{name}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await
    }
}

/// The churn task's record of one run.
#[derive(Default)]
struct OpLog {
    add_http: Vec<u32>,
    add_stdio: Vec<u32>,
    remove: Vec<u32>,
    failed: u64,
    first_error: Option<String>,
    seconds: f64,
}

impl OpLog {
    fn record(&mut self, kind: Option<Kind>, t0: Instant, r: Result<(), String>) {
        match r {
            Ok(()) => {
                let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
                match kind {
                    Some(Kind::Http) => self.add_http.push(us),
                    Some(Kind::Stdio) => self.add_stdio.push(us),
                    None => self.remove.push(us),
                }
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn stats(&self) -> RunStats {
        let all: Vec<u32> = [&self.add_http, &self.add_stdio, &self.remove]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        RunStats::from_latencies(all, self.failed, self.seconds, self.first_error.clone())
    }

    fn absorb(&mut self, other: OpLog) {
        self.add_http.extend(other.add_http);
        self.add_stdio.extend(other.add_stdio);
        self.remove.extend(other.remove);
        self.failed += other.failed;
        self.seconds += other.seconds;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Every tick: remove the server added on the previous tick, or add the next one (HTTP and
/// stdio alternately), until `stop` turns true; then remove what is left.
async fn churn(api: &mut Api, mut stop: watch::Receiver<bool>) -> OpLog {
    let started = Instant::now();
    let mut log = OpLog::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut current: Option<String> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let t0 = Instant::now();
        match current.take() {
            Some(name) => {
                let r = api.remove(&name).await;
                log.record(None, t0, r);
            }
            None => {
                let name = api.next_name();
                let kind = if api.added % 2 == 1 {
                    Kind::Http
                } else {
                    Kind::Stdio
                };
                let r = api.add(&name, kind).await;
                if r.is_ok() {
                    current = Some(name);
                }
                log.record(Some(kind), t0, r);
            }
        }
    }
    if let Some(name) = current {
        let t0 = Instant::now();
        let r = api.remove(&name).await;
        log.record(None, t0, r);
    }
    log.seconds = started.elapsed().as_secs_f64();
    log
}

/// Whether the hub's `tools/list` names `tool`.
async fn lists_tool(mcp: &Endpoint, tool: &str) -> anyhow::Result<bool> {
    let s = Session::open(Conn::new(mcp.clone()))
        .await
        .map_err(|(_, e)| anyhow::anyhow!("initialize: {e}"))?;
    let body = crate::client::request_body("99", "tools/list", "{}");
    let text = crate::scenarios::raw_post(mcp, &s, body).await;
    let _ = s.close().await;
    let v: Value = serde_json::from_str(&text?)?;
    let tools = v
        .pointer("/result/tools")
        .and_then(Value::as_array)
        .context("tools/list without result.tools")?;
    Ok(tools
        .iter()
        .any(|t| t.get("name").and_then(Value::as_str) == Some(tool)))
}

/// Polls `tools/list` until `tool` is listed (or not); returns how long that took.
async fn wait_listed(mcp: &Endpoint, tool: &str, listed: bool) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        if lists_tool(mcp, tool).await? == listed {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > VISIBLE_TIMEOUT {
            bail!(
                "{tool} still {} the hub's tools/list after {VISIBLE_TIMEOUT:?}",
                if listed { "missing from" } else { "in" }
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Before measuring: the API answers, and an added server of each kind really serves tools
/// through the hub and is gone after its removal. Returns (kind, ms until listed, ms until gone).
async fn verify(api: &mut Api, mcp: &Endpoint) -> anyhow::Result<Vec<(Kind, f64, f64)>> {
    // The main service binds with the MCP one, but give it a moment anyway.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match api
            .call(Method::GET, "/api/v1/servers", None, StatusCode::OK)
            .await
        {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => bail!("management API: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut out = Vec::new();
    for kind in [Kind::Http, Kind::Stdio] {
        let name = format!("check{}", out.len() + 1);
        let tool = format!("{name}__echo");
        let t0 = Instant::now();
        api.add(&name, kind).await.map_err(anyhow::Error::msg)?;
        let shown = wait_listed(mcp, &tool, true).await.map(|_| t0.elapsed());
        let t1 = Instant::now();
        let removed = api.remove(&name).await.map_err(anyhow::Error::msg);
        let shown = shown.with_context(|| format!("{kind:?} server added through the API"))?;
        removed?;
        wait_listed(mcp, &tool, false).await?;
        out.push((
            kind,
            shown.as_secs_f64() * 1e3,
            t1.elapsed().as_secs_f64() * 1e3,
        ));
    }
    Ok(out)
}

fn pooled(extra: &mut std::collections::BTreeMap<String, f64>, key: &str, lat: &[u32]) {
    let mut v = lat.to_vec();
    v.sort_unstable();
    extra.insert(format!("{key}_ok"), v.len() as f64);
    if !v.is_empty() {
        extra.insert(format!("{key}_p50_us"), load::percentile(&v, 50.0));
        extra.insert(format!("{key}_p99_us"), load::percentile(&v, 99.0));
    }
}

/// The scenario.
pub async fn scenario(ctx: &Ctx) -> anyhow::Result<(Vec<Row>, Option<String>)> {
    let steady =
        procs::spawn_fixture(&ctx.bins, &ctx.work, "churn-steady", FixtureArgs::default()).await?;
    let extra =
        match procs::spawn_fixture(&ctx.bins, &ctx.work, "churn-extra", FixtureArgs::default())
            .await
        {
            Ok(f) => f,
            Err(e) => {
                steady.proc.stop().await;
                return Err(e);
            }
        };
    let hub = match procs::spawn_hub_with(
        &ctx.bins,
        &ctx.work,
        "churn",
        &[("echo".to_owned(), procs::http_entry(&steady.endpoint))],
        &["--admin-token", TOKEN, "--ssrf-allow-cidrs", "127.0.0.0/8"],
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            procs::stop_all([steady.proc, extra.proc]).await;
            return Err(e);
        }
    };
    let mut api = Api {
        conn: Conn::new(hub.main.clone()),
        http_url: extra.endpoint.url(),
        fixture: ctx.bins.fixture.display().to_string(),
        added: 0,
    };
    let outcome = measure(ctx, &mut api, &hub.mcp, hub.proc.pid()).await;
    let log = hub.proc.log_tail();
    let procs_to_stop: Vec<Proc> = vec![hub.proc, steady.proc, extra.proc];
    procs::stop_all(procs_to_stop).await;
    let (rows, checks) = outcome.with_context(|| format!("hub log: {log}"))?;
    let checks: Vec<String> = checks
        .iter()
        .map(|(k, shown, gone)| {
            format!(
                "{} server: listed {shown:.0} ms after its POST, gone {gone:.0} ms after its DELETE",
                match k {
                    Kind::Http => "an HTTP",
                    Kind::Stdio => "a stdio",
                }
            )
        })
        .collect();
    Ok((
        rows,
        Some(format!(
            "one hub, steady upstream `echo` = the fixture over Streamable HTTP (default SSE mode), load = `tools/call echo__echo`; \
             `hub + churn`: every {} ms another task adds a server (`POST /api/v1/servers`, alternately a second fixture over HTTP \
             and `switchboard-fixture stdio`) and removes it on the next tick (`DELETE /api/v1/servers/{{name}}`); \
             ratio and Δ of `hub + churn` are vs `hub` (same hub, no churn, alternated A B A B). \
             `API ops` rows: one op = one add or one remove as timed by the client (keep-alive connection), req/s = ops/s, \
             errors = failed ops; their extras are pooled over rounds. Checked once before measuring: {}.",
            TICK.as_millis(),
            checks.join("; ")
        )),
    ))
}

type Checks = Vec<(Kind, f64, f64)>;

async fn measure(
    ctx: &Ctx,
    api: &mut Api,
    mcp: &Endpoint,
    hub_pid: u32,
) -> anyhow::Result<(Vec<Row>, Checks)> {
    let checks = verify(api, mcp).await?;
    let mut rows = Vec::new();
    for c in [1, 8] {
        let variant = format!("c={c}");
        let spec = LoadSpec {
            endpoint: mcp.clone(),
            concurrency: c,
            warmup: ctx.warmup,
            duration: ctx.duration,
            work: Work::Request {
                method: "tools/call",
                params:
                    r#"{"name":"echo__echo","arguments":{"text":"hello from switchboard-bench"}}"#
                        .into(),
                min_len: 0,
            },
        };
        let mut plain = Vec::new();
        let mut churned = Vec::new();
        let mut ops = Vec::new();
        let mut pooled_log = OpLog::default();
        let mut rss: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for round in 0..ctx.rounds {
            for with_churn in [false, true] {
                let (st, log) = if with_churn {
                    let (tx, rx) = watch::channel(false);
                    let load = async {
                        let st = load::run(&spec).await;
                        let _ = tx.send(true);
                        st
                    };
                    let (st, log) = tokio::join!(load, churn(api, rx));
                    (st, Some(log))
                } else {
                    (load::run(&spec).await, None)
                };
                let target = if with_churn { "hub + churn" } else { "hub" };
                eprintln!(
                    "  churn · {variant} · {target:<16} round {}: {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  errors {}{}",
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
                if let Some(k) = procs::rss_kib(hub_pid) {
                    rss[usize::from(with_churn)].push(k as f64);
                }
                if let Some(log) = log {
                    let os = log.stats();
                    eprintln!(
                        "  churn · {variant} · API ops          round {}: {} ok ({} HTTP adds, {} stdio adds, {} removes), {} failed, p50 {:.0} µs  p99 {:.0} µs{}",
                        round + 1,
                        os.requests,
                        log.add_http.len(),
                        log.add_stdio.len(),
                        log.remove.len(),
                        os.errors,
                        os.p50_us,
                        os.p99_us,
                        os.first_error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                    ops.push(os);
                    pooled_log.absorb(log);
                    churned.push(st);
                } else {
                    plain.push(st);
                }
            }
        }
        let mut base = Row::new("churn", &variant, "hub", c, plain);
        let mut with = Row::new("churn", &variant, "hub + churn", c, churned);
        let [rss_plain, rss_churn] = &mut rss;
        for (row, m) in [(&mut base, rss_plain), (&mut with, rss_churn)] {
            if !m.is_empty() {
                row.rss_kib = Some(load::median(m) as u64);
            }
        }
        with.compare_to(&base);
        let mut op_row = Row::new(
            "churn",
            &format!("{variant}, add/remove"),
            "API ops",
            1,
            ops,
        );
        pooled(&mut op_row.extra, "add_http", &pooled_log.add_http);
        pooled(&mut op_row.extra, "add_stdio", &pooled_log.add_stdio);
        pooled(&mut op_row.extra, "remove", &pooled_log.remove);
        op_row
            .extra
            .insert("failed".into(), pooled_log.failed as f64);
        rows.extend([base, with, op_row]);
    }
    Ok((rows, checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_logs_count_and_pool() {
        let t0 = Instant::now();
        let mut a = OpLog::default();
        a.record(Some(Kind::Http), t0, Ok(()));
        a.record(None, t0, Ok(()));
        a.record(Some(Kind::Stdio), t0, Err("HTTP 400".into()));
        a.seconds = 0.5;
        let st = a.stats();
        assert_eq!((st.requests, st.errors), (2, 1));
        assert_eq!(st.throughput, 4.0);
        assert_eq!(st.first_error.as_deref(), Some("HTTP 400"));
        let mut b = OpLog::default();
        b.record(Some(Kind::Stdio), t0, Ok(()));
        b.seconds = 0.5;
        a.absorb(b);
        assert_eq!(
            (
                a.add_http.len(),
                a.add_stdio.len(),
                a.remove.len(),
                a.failed
            ),
            (1, 1, 1, 1)
        );
        let mut extra = std::collections::BTreeMap::new();
        pooled(&mut extra, "remove", &[30, 10, 20]);
        pooled(&mut extra, "add_http", &[]);
        assert_eq!(extra["remove_ok"], 3.0);
        assert_eq!(extra["remove_p50_us"], 20.0);
        assert_eq!(extra["remove_p99_us"], 30.0);
        assert_eq!(extra["add_http_ok"], 0.0);
        assert!(!extra.contains_key("add_http_p50_us"));
    }

    #[test]
    fn entries_for_both_kinds() {
        let api = Api {
            conn: Conn::new(Endpoint::parse("http://127.0.0.1:1/").unwrap()),
            http_url: "http://127.0.0.1:2/mcp".into(),
            fixture: "/bin/fixture".into(),
            added: 0,
        };
        assert_eq!(
            api.entry("c1", Kind::Http),
            json!({"name": "c1", "type": "streamable-http", "url": "http://127.0.0.1:2/mcp"})
        );
        assert_eq!(
            api.entry("c2", Kind::Stdio),
            json!({"name": "c2", "command": "/bin/fixture", "args": ["stdio"]})
        );
    }
}
