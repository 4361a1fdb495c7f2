//! The `replicas` scenario: what running several hubs behind a load balancer costs.
//!
//! Three `switchboard serve` processes share one PostgreSQL database (a fresh one per run,
//! dropped at the end), one secret key and one admin token. Replica 1 gets a servers file with
//! the stdio fixture `f`; replicas 2 and 3 learn it from the store (each runs its own fixture
//! process). Debian's nginx, in the foreground with a configuration written into the work dir,
//! balances them in plain round robin, with no affinity of any kind.
//!
//! Two measurements:
//! * **Throughput**, `tools/call f__echo` at c=1 and c=32, targets alternating: replica 1
//!   directly, replica 1 behind nginx, and the three replicas behind nginx in round robin.
//!   Every load client opens its session once; its requests then rotate over the replicas,
//!   and each replica resumes the sealed session on the first request it sees. A fourth
//!   target, the three replicas behind nginx with affinity (a hash of `Mcp-Session-Id`), is the
//!   control: the same processes without the rotation.
//! * **A session on another replica**, c=1, straight to the replicas: for each of many fresh
//!   sessions, opened on replica 1 (home), a first call at home, the first call on replica 2
//!   or 3 (the resume: open the sealed id, rebuild the session), a later call at home, and a
//!   later call on the other replica (steady state). Δ is against the later call at home.
//!
//! Without nginx or PostgreSQL the scenario is skipped, with a note saying what is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use http::Method;
use tokio::process::Command;

use crate::client::{ClientError, Conn, Endpoint, Session};
use crate::load::RunStats;
use crate::procs::{self, Proc, free_port};
use crate::report::{Row, ScenarioReport, Status};
use crate::scenarios::{Contender, Ctx, compare, echo};

const ID: &str = "replicas";
const TITLE: &str = "tools/call echo on 1 replica direct, 1 and 3 replicas behind round-robin nginx; \
                     the cost of a session landing on another replica";
/// Shared by every replica (any 64 hex digits; the database is thrown away).
const SECRET_KEY: &str = "5b3e1c0d5b3e1c0d5b3e1c0d5b3e1c0d5b3e1c0d5b3e1c0d5b3e1c0d5b3e1c0d";
const ADMIN_TOKEN: &str = "switchboard-bench-replicas-admin-token";
/// The fixture's echo tool as the hubs name it (server `f`).
const TOOL: &str = "f__echo";
const ECHO_PARAMS: &str =
    r#"{"name":"f__echo","arguments":{"text":"hello from switchboard-bench"}}"#;
/// Longest one request may take before it counts as an error.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
const MOVED_VARIANT: &str = "session moved between replicas, c=1";
const HOME_FIRST: &str = "home replica, 1st call";
const ELSEWHERE_FIRST: &str = "other replica, 1st request (resume)";
const HOME_LATER: &str = "home replica, later call";
const ELSEWHERE_LATER: &str = "other replica, later call (steady state)";

/// Runs the scenario, or skips it when nginx or PostgreSQL is missing.
pub async fn scenario(ctx: &Ctx) -> ScenarioReport {
    let mut report = ScenarioReport {
        id: ID.into(),
        title: TITLE.into(),
        status: Status::Ok,
        note: None,
        rows: vec![],
    };
    let prerequisites = async {
        let nginx = nginx_binary()?;
        let base = pg_base_url();
        psql(&base, "SELECT 1")
            .await
            .with_context(|| format!("PostgreSQL at {base} does not answer"))?;
        anyhow::Ok((nginx, base))
    };
    let (nginx, base) = match prerequisites.await {
        Ok(found) => found,
        Err(e) => {
            report.status = Status::Skipped;
            report.note = Some(format!(
                "needs Debian's nginx and a PostgreSQL server (trust auth): {e:#}"
            ));
            return report;
        }
    };
    let db = match Database::create(&base).await {
        Ok(db) => db,
        Err(e) => {
            report.status = Status::Failed;
            report.note = Some(format!("{e:#}"));
            return report;
        }
    };
    let mut running = Vec::new();
    let outcome = measure(ctx, &nginx, &db, &mut running).await;
    procs::stop_all(running).await;
    // Dropped only once every replica is gone (WITH (FORCE) would end them anyway).
    drop(db);
    match outcome {
        Ok((rows, note)) => {
            report.rows = rows;
            report.note = Some(note);
        }
        Err(e) => {
            report.status = Status::Failed;
            report.note = Some(format!("{e:#}"));
        }
    }
    report
}

fn nginx_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("SWITCHBOARD_TEST_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    anyhow::ensure!(
        path.is_file(),
        "no nginx at {} (install Debian's nginx or set SWITCHBOARD_TEST_NGINX)",
        path.display()
    );
    Ok(path)
}

/// `postgres://user@host:port`, without a database; the tests' variable, the same default.
fn pg_base_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs one statement through `psql` on the `postgres` database; returns its output.
async fn psql(base: &str, sql: &str) -> anyhow::Result<String> {
    let run = Command::new("psql")
        .arg(format!("{base}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .context("psql gave no answer within 30 s")?
        .context("cannot run psql (PostgreSQL client tools)")?;
    anyhow::ensure!(
        out.status.success(),
        "psql -c {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A database of this run's own, dropped `WITH (FORCE)` when this goes out of scope.
struct Database {
    base: String,
    name: String,
}

impl Database {
    async fn create(base: &str) -> anyhow::Result<Database> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("switchboard_bench_{:x}_{nanos:x}", std::process::id());
        psql(base, &format!("CREATE DATABASE {name}")).await?;
        Ok(Database {
            base: base.to_owned(),
            name,
        })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.base, self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let dropped = std::process::Command::new("psql")
            .arg(format!("{}/postgres", self.base))
            .args(["-v", "ON_ERROR_STOP=1", "-Atc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .stdin(Stdio::null())
            .output();
        if !dropped.is_ok_and(|o| o.status.success()) {
            eprintln!("  replicas: could not drop database {}", self.name);
        }
    }
}

/// Where one replica listens; its process is in the scenario's list of running processes.
struct Replica {
    mcp: Endpoint,
    main: Endpoint,
}

/// Starts replica `n` and waits until its own MCP port serves `f__echo`.
async fn start_replica(
    ctx: &Ctx,
    db: &Database,
    n: usize,
    servers: Option<&Path>,
) -> anyhow::Result<(Proc, Replica)> {
    let mut last_err = None;
    // A port picked by free_port() can be taken in between: retry with new ports.
    for attempt in 0..3 {
        let (mcp_port, main_port) = (free_port()?, free_port()?);
        let mut cmd = Command::new(&ctx.bins.hub);
        cmd.arg("serve")
            .args(["--database-url", &db.url()])
            .args(["--secret-key", SECRET_KEY, "--admin-token", ADMIN_TOKEN])
            .args(["--mcp-addr", &format!("127.0.0.1:{mcp_port}")])
            .args(["--main-addr", &format!("127.0.0.1:{main_port}")])
            .arg("--data-dir")
            .arg(ctx.work.join(format!("replica-{n}-data")))
            .args(["--log", "warn"])
            // The benchmark measures the hubs' cost, not their request rate limits.
            .args(["--rate-limit-key", "off", "--rate-limit-tenant", "off"])
            .args(["--drain-timeout", "1"]);
        if let Some(file) = servers {
            cmd.arg("--servers").arg(file);
        }
        let log = ctx.work.join(format!("replica-{n}-{attempt}.log"));
        let mut proc = Proc::spawn(&format!("replica {n}"), cmd, log, false)?;
        let replica = Replica {
            mcp: Endpoint::parse(&format!("http://127.0.0.1:{mcp_port}/mcp"))?,
            main: Endpoint::parse(&format!("http://127.0.0.1:{main_port}/"))?,
        };
        match wait_for_tool(&mut proc, &replica.mcp, Duration::from_secs(90)).await {
            Ok(()) => return Ok((proc, replica)),
            Err(e) => {
                let exited = !proc.running();
                proc.stop().await;
                if !exited {
                    return Err(e);
                }
                last_err = Some(e);
            }
        }
    }
    Err(last_err.expect("three attempts"))
}

/// Polls until `f__echo` answers on `ep` (a new session each time).
async fn wait_for_tool(proc: &mut Proc, ep: &Endpoint, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if !proc.running() {
            bail!("{} exited during start-up: {}", proc.name, proc.log_tail());
        }
        let attempt = async {
            let mut s = Session::open(Conn::new(ep.clone()))
                .await
                .map_err(|(_, e)| e)?;
            let called = s.call("tools/call", ECHO_PARAMS).await;
            let _ = s.close().await;
            called.map(|_| ())
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "no answer within 5 s".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{} did not serve {TOOL} within {timeout:?} (last: {last}): {}",
        proc.name,
        proc.log_tail()
    )
}

/// nginx's MCP endpoints: replica 1 alone, all three in round robin, and all three with
/// affinity (a hash of the session id, the control for what round robin costs).
struct Nginx {
    one: Endpoint,
    three: Endpoint,
    sticky: Endpoint,
}

fn nginx_config(dir: &Path, replicas: &[Replica], ports: [u16; 3]) -> String {
    let server = |r: &Replica| format!("server {};", r.mcp.addr);
    let three: Vec<String> = replicas.iter().map(server).collect();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # The load clients keep their connections for the whole run.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    upstream one {{
        {one}
        keepalive 64;
        keepalive_requests 100000000;
    }}
    upstream three {{
        {three}
        keepalive 64;
        keepalive_requests 100000000;
    }}
    upstream sticky {{
        {three}
        hash $http_mcp_session_id consistent;
        keepalive 64;
        keepalive_requests 100000000;
    }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_read_timeout 1h;
    server {{
        listen 127.0.0.1:{one_port};
        location / {{ proxy_pass http://one; }}
    }}
    server {{
        listen 127.0.0.1:{three_port};
        location / {{ proxy_pass http://three; }}
    }}
    server {{
        listen 127.0.0.1:{sticky_port};
        location / {{ proxy_pass http://sticky; }}
    }}
}}
"#,
        dir = dir.display(),
        one = server(&replicas[0]),
        three = three.join("\n        "),
        one_port = ports[0],
        three_port = ports[1],
        sticky_port = ports[2],
    )
}

/// Starts nginx in the foreground and waits until both endpoints answer `/ready`.
async fn start_nginx(
    ctx: &Ctx,
    binary: &Path,
    replicas: &[Replica],
) -> anyhow::Result<(Proc, Nginx)> {
    let dir = ctx.work.join("nginx");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let mut last_err = None;
    for attempt in 0..3 {
        let ports = [free_port()?, free_port()?, free_port()?];
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_config(&dir, replicas, ports))?;
        let mut cmd = Command::new(binary);
        cmd.arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir);
        let log = ctx.work.join(format!("nginx-{attempt}.log"));
        let mut proc = Proc::spawn("nginx", cmd, log, false)?;
        let lb = Nginx {
            one: Endpoint::parse(&format!("http://127.0.0.1:{}/mcp", ports[0]))?,
            three: Endpoint::parse(&format!("http://127.0.0.1:{}/mcp", ports[1]))?,
            sticky: Endpoint::parse(&format!("http://127.0.0.1:{}/mcp", ports[2]))?,
        };
        match wait_for_balancer(&mut proc, &lb).await {
            Ok(()) => return Ok((proc, lb)),
            Err(e) => {
                let exited = !proc.running();
                proc.stop().await;
                if !exited {
                    return Err(e);
                }
                last_err = Some(e);
            }
        }
    }
    Err(last_err.expect("three attempts"))
}

async fn wait_for_balancer(proc: &mut Proc, lb: &Nginx) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last: String;
    for ep in [&lb.one, &lb.three, &lb.sticky] {
        let mut conn = Conn::new(ep.clone());
        loop {
            if !proc.running() {
                bail!("nginx exited during start-up: {}", proc.log_tail());
            }
            match conn.get("/ready").await {
                Ok((status, _)) if status.is_success() => break,
                Ok((status, body)) => {
                    last = format!("HTTP {status}: {}", String::from_utf8_lossy(&body));
                }
                Err(e) => {
                    last = e.to_string();
                    conn.reset();
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not pass /ready through within 20 s (last: {last}): {}",
                    proc.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// `nginx -v`'s version, for the note.
async fn nginx_version(binary: &Path) -> String {
    let out = Command::new(binary).arg("-v").output().await;
    out.ok()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .and_then(|s| s.rsplit('/').next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// `tools/call` requests a replica has answered so far (its Prometheus histogram's count).
async fn tool_calls_served(r: &Replica) -> Option<f64> {
    let mut conn = Conn::new(r.main.clone());
    let (status, body) = conn
        .api(Method::GET, "/metrics", ADMIN_TOKEN, None)
        .await
        .ok()?;
    if !status.is_success() {
        return None;
    }
    let text = String::from_utf8_lossy(&body);
    Some(
        text.lines()
            .filter(|l| l.starts_with("mcp_server_operation_duration_seconds_count{"))
            .filter(|l| l.contains(r#"mcp_method_name="tools/call""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// How a short load (c=4) through `ep` spreads over the replicas: tools/calls each answered.
async fn spread(ctx: &Ctx, replicas: &[Replica], ep: &Endpoint) -> anyhow::Result<Vec<f64>> {
    async fn counts(replicas: &[Replica]) -> anyhow::Result<Vec<f64>> {
        let mut out = Vec::with_capacity(replicas.len());
        for (i, r) in replicas.iter().enumerate() {
            let n = tool_calls_served(r)
                .await
                .with_context(|| format!("no tools/call count in replica {}'s /metrics", i + 1))?;
            out.push(n);
        }
        Ok(out)
    }
    let before = counts(replicas).await?;
    let stats = crate::load::run(&crate::load::LoadSpec {
        endpoint: ep.clone(),
        concurrency: 4,
        warmup: Duration::ZERO,
        duration: ctx.duration.min(Duration::from_secs(1)),
        work: echo(TOOL),
    })
    .await;
    anyhow::ensure!(
        stats.errors == 0,
        "{} error(s) through nginx, first: {}",
        stats.errors,
        stats.first_error.as_deref().unwrap_or("?")
    );
    let after = counts(replicas).await?;
    Ok(after.iter().zip(&before).map(|(a, b)| a - b).collect())
}

fn shares(counts: &[f64]) -> String {
    counts
        .iter()
        .map(|n| crate::report::fmt_num(*n))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Starts everything (each started process goes into `running`) and measures.
async fn measure(
    ctx: &Ctx,
    nginx: &Path,
    db: &Database,
    running: &mut Vec<Proc>,
) -> anyhow::Result<(Vec<Row>, String)> {
    let servers = ctx.work.join("servers-replicas.json");
    let entry = serde_json::json!({"command": ctx.bins.fixture, "args": ["stdio", "--name", "f"]});
    std::fs::write(
        &servers,
        serde_json::json!({"mcpServers": {"f": entry}}).to_string(),
    )?;
    // The first replica migrates the database and imports the file; then the other two.
    let (proc, first) = start_replica(ctx, db, 1, Some(&servers))
        .await
        .context("replica 1")?;
    running.push(proc);
    let (second, third) = tokio::join!(
        start_replica(ctx, db, 2, None),
        start_replica(ctx, db, 3, None)
    );
    let mut replicas = vec![first];
    let mut failed = None;
    for (n, started) in [(2, second), (3, third)] {
        match started {
            Ok((proc, r)) => {
                running.push(proc);
                replicas.push(r);
            }
            Err(e) => failed = Some(e.context(format!("replica {n}"))),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let (proc, lb) = start_nginx(ctx, nginx, &replicas).await?;
    running.push(proc);
    check_sealed(&lb.three).await?;

    let round_robin = spread(ctx, &replicas, &lb.three).await?;
    let sticky = spread(ctx, &replicas, &lb.sticky).await?;
    anyhow::ensure!(
        round_robin.iter().all(|&n| n > 0.0),
        "nginx did not spread calls over the three replicas: {round_robin:?}"
    );

    let mut rows = Vec::new();
    for c in [1, 32] {
        let contender = |target: &str, endpoint: &Endpoint| Contender {
            target: target.into(),
            endpoint: endpoint.clone(),
            work: echo(TOOL),
            pid: None,
        };
        let contenders = [
            contender("1 replica, direct", &replicas[0].mcp),
            contender("1 replica via nginx", &lb.one),
            contender("3 replicas via nginx (round robin)", &lb.three),
            contender("3 replicas via nginx, sticky (control)", &lb.sticky),
        ];
        let variant = format!("tools/call {TOOL}, c={c}");
        let mut got = compare(ctx, ID, &variant, c, &contenders).await;
        if let Some((base, rest)) = got.split_first_mut() {
            for r in rest {
                r.compare_to(base);
            }
        }
        rows.extend(got);
    }
    rows.extend(moved_session_rows(ctx, &replicas).await);

    let note = format!(
        "3 `switchboard serve` replicas ({} build) on one PostgreSQL database (store, activity log, \
         LISTEN/NOTIFY bus), same secret key and admin token, metrics and activity log on (defaults); \
         replica 1 has the servers file (stdio fixture `f`), replicas 2 and 3 learn it from the store; \
         each runs its own fixture process. nginx {}: one worker, keepalive 64 to the replicas; plain \
         round robin with no affinity, or `hash $http_mcp_session_id consistent` (sticky, a control: \
         the same processes without the rotation). Throughput rows: ratio and Δ against 1 replica \
         direct; every load client opens its session once, then through round robin its requests \
         rotate over the replicas, each replica resuming the sealed session on its first request. \
         Spread check before measuring (c=4, up to 1 s): tools/calls answered by replicas 1 / 2 / 3: \
         round robin {}, sticky {}. `{MOVED_VARIANT}` rows go straight to the \
         replicas: per fresh session, opened on replica 1 (home), a 1st call at home, the 1st call on \
         replica 2 or 3 (the resume: open the sealed id, rebuild the session), a later call at home, a \
         later call on the other replica; Δ against the later call at home; req/s there is the rate of \
         that kind of request in the interleaved loop; sessions are ended (DELETE) after each window, \
         untimed. On {} CPU(s) the replicas, nginx, PostgreSQL, the fixtures and the load generator \
         share the same cores, so three replicas cannot add throughput here: the rows show what the \
         extra hop and the resumes cost, not how replicas scale.",
        ctx.bins.profile(),
        nginx_version(nginx).await,
        shares(&round_robin),
        shares(&sticky),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    );
    Ok((rows, note))
}

/// The measurement only means something with sealed ids (a random id is unknown elsewhere).
async fn check_sealed(ep: &Endpoint) -> anyhow::Result<()> {
    let s = Session::open(Conn::new(ep.clone()))
        .await
        .map_err(|(_, e)| anyhow::anyhow!("initialize through nginx: {e}"))?;
    let sealed =
        s.id.as_ref()
            .and_then(|id| id.to_str().ok())
            .is_some_and(|id| id.starts_with("sbs1."));
    let (_, closed) = s.close().await;
    anyhow::ensure!(sealed, "the replicas did not issue a sealed session id");
    closed.map_err(|e| anyhow::anyhow!("DELETE through nginx: {e}"))
}

/// Latencies and errors of one kind of request.
#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    /// Keeps a latency when `counted` (inside the window); every error counts.
    fn record(&mut self, outcome: Result<Duration, ClientError>, counted: bool) {
        match outcome {
            Ok(d) if counted => self
                .latencies
                .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX)),
            Ok(_) => {}
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    fn into_stats(self, seconds: f64) -> RunStats {
        RunStats::from_latencies(self.latencies, self.errors, seconds, self.first_error)
    }
}

/// One echo call on `s`, timed up to its response message.
async fn timed_echo(s: &mut Session) -> Result<Duration, ClientError> {
    let t0 = Instant::now();
    match tokio::time::timeout(OP_TIMEOUT, s.call("tools/call", ECHO_PARAMS)).await {
        Ok(Ok(answer)) => Ok(answer.at - t0),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            s.conn.reset();
            Err(ClientError::Io(format!("no answer within {OP_TIMEOUT:?}")))
        }
    }
}

/// The kinds of request in the moved-session loop, in the order each session sends them.
const MOVED_KINDS: [&str; 4] = [HOME_FIRST, ELSEWHERE_FIRST, HOME_LATER, ELSEWHERE_LATER];

/// One round of the moved-session loop: the statistics of each of [`MOVED_KINDS`], and how
/// many sessions were measured.
async fn moved_session_round(ctx: &Ctx, replicas: &[Replica]) -> ([RunStats; 4], u64) {
    let home_ep = &replicas[0].mcp;
    let others = &replicas[1..];
    let mut home_conn = Conn::new(home_ep.clone());
    let mut other_conns: Vec<Option<Conn>> = others
        .iter()
        .map(|r| Some(Conn::new(r.mcp.clone())))
        .collect();
    let mut kinds: [Tally; 4] = Default::default();
    let mut opened = Vec::new();
    let mut sessions = 0u64;
    let mut failures_in_a_row = 0;
    let window_start = Instant::now() + ctx.warmup;
    let end = window_start + ctx.duration;
    let mut last_done = window_start;
    let mut k = 0usize;
    while Instant::now() < end && failures_in_a_row < 100 {
        let counted = Instant::now() >= window_start;
        let mut s = match tokio::time::timeout(OP_TIMEOUT, Session::open(home_conn)).await {
            Ok(Ok(s)) => s,
            Ok(Err((conn, e))) => {
                home_conn = conn;
                kinds[0].record(Err(e), true);
                failures_in_a_row += 1;
                continue;
            }
            Err(_) => {
                home_conn = Conn::new(home_ep.clone());
                kinds[0].record(Err(ClientError::Io("initialize timed out".into())), true);
                failures_in_a_row += 1;
                continue;
            }
        };
        let slot = k % other_conns.len();
        k += 1;
        let conn = other_conns[slot]
            .take()
            .unwrap_or_else(|| Conn::new(others[slot].mcp.clone()));
        let mut moved = s.continued_on(conn);
        let mut ok = true;
        for (i, tally) in kinds.iter_mut().enumerate() {
            // Even kinds go to the home replica, odd ones to the other.
            let r = timed_echo(if i % 2 == 0 { &mut s } else { &mut moved }).await;
            ok &= r.is_ok();
            tally.record(r, counted);
        }
        failures_in_a_row = if ok { 0 } else { failures_in_a_row + 1 };
        other_conns[slot] = Some(moved.conn);
        if let Some(id) = s.id.take() {
            opened.push((id, s.version.take()));
        }
        home_conn = s.conn;
        if counted {
            sessions += 1;
            last_done = Instant::now();
        }
    }
    // Not timed: end every session (the DELETE reaches every replica through the bus).
    for (id, version) in &opened {
        if let Err(e) = home_conn.delete(id, version.as_ref()).await {
            kinds[2].record(Err(e), true);
        }
    }
    let seconds = last_done
        .saturating_duration_since(window_start)
        .as_secs_f64();
    (kinds.map(|t| t.into_stats(seconds)), sessions)
}

/// The moved-session rows: every round, then medians; Δ against a later call at home.
async fn moved_session_rows(ctx: &Ctx, replicas: &[Replica]) -> Vec<Row> {
    let mut runs: [Vec<RunStats>; 4] = Default::default();
    let mut sessions = 0;
    for round in 0..ctx.rounds {
        let (stats, n) = moved_session_round(ctx, replicas).await;
        sessions += n;
        for ((target, st), kept) in MOVED_KINDS.iter().zip(stats).zip(runs.iter_mut()) {
            eprintln!(
                "  {ID} · {MOVED_VARIANT} · {target:<40} round {}: {n:>6} sessions  p50 {:>7.0} µs  p99 {:>7.0} µs  errors {}{}",
                round + 1,
                st.p50_us,
                st.p99_us,
                st.errors,
                st.first_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            kept.push(st);
        }
    }
    let mut rows: Vec<Row> = MOVED_KINDS
        .iter()
        .zip(runs)
        .map(|(target, rounds)| Row::new(ID, MOVED_VARIANT, target, 1, rounds))
        .collect();
    // Reported in the order: home later (the baseline), home first, elsewhere first, later.
    rows.swap(0, 2);
    rows.swap(1, 2);
    let (base, rest) = rows.split_at_mut(1);
    for row in rest {
        row.compare_to(&base[0]);
        // The four kinds come from one loop: a throughput ratio says nothing here.
        row.ratio = None;
    }
    rows[0].extra.insert("sessions".into(), sessions as f64);
    rows
}
