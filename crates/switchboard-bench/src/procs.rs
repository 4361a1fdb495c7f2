//! The processes under test: fixture upstreams, the hub, third-party proxies.
//!
//! Every process is a [`Proc`] that is stopped with SIGTERM (then SIGKILL after a grace period)
//! by [`Proc::stop`], and killed on drop as a last resort. Logs go to files in the run's
//! work directory so a failing scenario can say why.

use std::fs::File;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::client::{Conn, Endpoint};

/// Paths to the binaries under test.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `switchboard`.
    pub hub: PathBuf,
    /// `switchboard-fixture`.
    pub fixture: PathBuf,
}

impl Bins {
    /// Finds both binaries in `dir`, or next to this executable.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<Bins> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()?
                .parent()
                .context("executable has no directory")?
                .to_path_buf(),
        };
        let bins = Bins {
            hub: dir.join("switchboard"),
            fixture: dir.join("switchboard-fixture"),
        };
        for p in [&bins.hub, &bins.fixture] {
            if !p.exists() {
                bail!(
                    "{} is missing: build it with the same profile first, e.g. \
                     `cargo build --release -p switchboard -p switchboard-fixture -p switchboard-bench`",
                    p.display()
                );
            }
        }
        Ok(bins)
    }

    /// The build profile the binaries come from (`release`, `debug`, ...), from their directory.
    pub fn profile(&self) -> String {
        self.hub
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A child process that is stopped when the scenario ends.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    pid: u32,
    log: PathBuf,
    // Held so the child's stdout stays open.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Proc {
    /// Starts `cmd` with stderr (and stdout unless `capture_stdout`) sent to `log`.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: PathBuf,
        capture_stdout: bool,
    ) -> anyhow::Result<Proc> {
        let err = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let out: Stdio = if capture_stdout {
            Stdio::piped()
        } else {
            err.try_clone()?.into()
        };
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("start {name}"))?;
        let pid = child.id().context("child has no pid")?;
        let stdout = child.stdout.take().map(BufReader::new);
        Ok(Proc {
            name: name.to_owned(),
            child,
            pid,
            log,
            _stdout: stdout,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident set size from `/proc/<pid>/status`, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// Reads stdout lines until one starts with `prefix`; returns the rest of that line.
    pub async fn wait_line(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let out = self._stdout.as_mut().context("stdout is not captured")?;
        let read = async {
            let mut line = String::new();
            loop {
                line.clear();
                if out.read_line(&mut line).await? == 0 {
                    bail!("stdout closed before {prefix:?}");
                }
                if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                    return Ok(rest.to_owned());
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(r) => r.with_context(|| format!("{}: {}", self.name, self.log_tail())),
            Err(_) => bail!(
                "{} printed no {prefix:?} line within {timeout:?}: {}",
                self.name,
                self.log_tail()
            ),
        }
    }

    /// True while it runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    pub async fn stop(mut self) {
        if !self.running() {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// `VmRSS` of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How to start one fixture upstream over Streamable HTTP.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixtureArgs {
    /// `--json`: stateless, plain JSON replies.
    pub json: bool,
    /// `--tools N` extra generated tools.
    pub tools: usize,
}

/// A running fixture upstream.
pub struct Fixture {
    /// The process.
    pub proc: Proc,
    /// Its `/mcp` endpoint.
    pub endpoint: Endpoint,
}

/// Starts the fixture's `http` mode and waits for its `listening` line.
pub async fn spawn_fixture(
    bins: &Bins,
    work: &Path,
    tag: &str,
    args: FixtureArgs,
) -> anyhow::Result<Fixture> {
    let mut p = start_fixture(bins, work, tag, args)?;
    let url = p.wait_line("listening ", Duration::from_secs(30)).await?;
    Ok(Fixture {
        proc: p,
        endpoint: Endpoint::parse(&url)?,
    })
}

fn start_fixture(bins: &Bins, work: &Path, tag: &str, args: FixtureArgs) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(&bins.fixture);
    cmd.args(["http", "--addr", "127.0.0.1:0"]);
    if args.json {
        cmd.arg("--json");
    }
    if args.tools > 0 {
        cmd.args(["--tools", &args.tools.to_string()]);
    }
    Proc::spawn(
        &format!("fixture {tag}"),
        cmd,
        work.join(format!("fixture-{tag}.log")),
        true,
    )
}

/// Starts `n` fixtures at once, then waits for each.
pub async fn spawn_fixtures(
    bins: &Bins,
    work: &Path,
    n: usize,
    args: FixtureArgs,
) -> anyhow::Result<Vec<Fixture>> {
    let mut procs = Vec::with_capacity(n);
    for i in 0..n {
        procs.push(start_fixture(bins, work, &format!("u{i:03}"), args)?);
    }
    let mut out = Vec::with_capacity(n);
    for mut p in procs {
        let url = p.wait_line("listening ", Duration::from_secs(60)).await?;
        out.push(Fixture {
            proc: p,
            endpoint: Endpoint::parse(&url)?,
        });
    }
    Ok(out)
}

/// Stops many processes concurrently.
pub async fn stop_all(procs: impl IntoIterator<Item = Proc>) {
    let tasks: Vec<_> = procs.into_iter().map(|p| tokio::spawn(p.stop())).collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// A running hub.
pub struct Hub {
    /// The `switchboard serve` process.
    pub proc: Proc,
    /// `http://127.0.0.1:<mcp port>/mcp`.
    pub mcp: Endpoint,
    /// `http://127.0.0.1:<main port>/`: the management API and dashboard.
    pub main: Endpoint,
}

/// A servers-file entry for a Streamable HTTP upstream.
pub fn http_entry(ep: &Endpoint) -> Value {
    serde_json::json!({"type": "streamable-http", "url": ep.url()})
}

/// A servers-file entry for a stdio fixture.
pub fn stdio_entry(bins: &Bins) -> Value {
    serde_json::json!({"command": bins.fixture, "args": ["stdio"]})
}

/// Starts `switchboard serve` with `servers` (name → entry) and waits until every server is
/// ready (`GET /ready` on the MCP port).
pub async fn spawn_hub(
    bins: &Bins,
    work: &Path,
    tag: &str,
    servers: &[(String, Value)],
) -> anyhow::Result<Hub> {
    spawn_hub_with(bins, work, tag, servers, &[]).await
}

/// [`spawn_hub`] with extra `serve` arguments (e.g. `--admin-token`).
pub async fn spawn_hub_with(
    bins: &Bins,
    work: &Path,
    tag: &str,
    servers: &[(String, Value)],
    extra_args: &[&str],
) -> anyhow::Result<Hub> {
    let map: serde_json::Map<String, Value> = servers.iter().cloned().collect();
    let file = work.join(format!("servers-{tag}.json"));
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&serde_json::json!({"mcpServers": map}))?,
    )?;
    let mut last_err = None;
    // A port picked by free_port() can be taken in between: retry with new ports.
    for attempt in 0..3 {
        let (mcp_port, main_port) = (free_port()?, free_port()?);
        let mut cmd = Command::new(&bins.hub);
        cmd.arg("serve")
            .arg("--servers")
            .arg(&file)
            .args(["--mcp-addr", &format!("127.0.0.1:{mcp_port}")])
            .args(["--main-addr", &format!("127.0.0.1:{main_port}")])
            .arg("--data-dir")
            .arg(work.join(format!("hub-data-{tag}")))
            .args(["--log", "warn"])
            // The benchmark measures the hub's cost, not its request rate limits.
            .args(["--rate-limit-key", "off", "--rate-limit-tenant", "off"])
            .args(extra_args);
        let mut proc = Proc::spawn(
            "hub",
            cmd,
            work.join(format!("hub-{tag}-{attempt}.log")),
            false,
        )?;
        let mcp = Endpoint::parse(&format!("http://127.0.0.1:{mcp_port}/mcp"))?;
        let main = Endpoint::parse(&format!("http://127.0.0.1:{main_port}/"))?;
        match wait_ready(&mut proc, &mcp, servers.len(), Duration::from_secs(120)).await {
            Ok(()) => return Ok(Hub { proc, mcp, main }),
            Err(e) => {
                last_err = Some(e);
                proc.stop().await;
            }
        }
    }
    Err(last_err.expect("three attempts"))
}

async fn wait_ready(
    proc: &mut Proc,
    mcp: &Endpoint,
    want: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut conn = Conn::new(mcp.clone());
    let mut last = String::new();
    while Instant::now() < deadline {
        if !proc.running() {
            bail!("the hub exited during start-up: {}", proc.log_tail());
        }
        match conn.get("/ready").await {
            Ok((status, body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if v.get("ready").and_then(Value::as_u64) == Some(want as u64) {
                    return Ok(());
                }
                last = format!("HTTP {status}: {}", String::from_utf8_lossy(&body));
            }
            Err(e) => {
                last = e.to_string();
                conn.reset();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the hub was not ready with {want} server(s) within {timeout:?} (last: {last}): {}",
        proc.log_tail()
    )
}

/// Polls until an MCP endpoint answers `initialize` (for third-party servers).
pub async fn wait_mcp(proc: &mut Proc, ep: &Endpoint, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if !proc.running() {
            bail!("{} exited during start-up: {}", proc.name, proc.log_tail());
        }
        match crate::client::Session::open(Conn::new(ep.clone())).await {
            Ok(s) => {
                let _ = s.close().await;
                return Ok(());
            }
            Err((_, e)) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{} did not answer initialize at {} within {timeout:?} (last: {last}): {}",
        proc.name,
        ep.url(),
        proc.log_tail()
    )
}
