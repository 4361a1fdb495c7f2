//! The stdio transport: a child process in its own process group, newline-delimited JSON-RPC.
//!
//! Shutdown closes stdin, waits, then SIGTERMs and finally SIGKILLs the whole process group, so
//! wrappers such as `npx` never leave their children behind. stderr is kept in a bounded ring.
//!
//! A process may speak either era. In the stateless 2026-07-28 era there is no `initialize`:
//! every request gets its own `_meta` on the way to stdin ([`crate::stateless::prepare`]; stdio
//! has no headers), and list changes arrive on one long `subscriptions/listen` request that
//! is replaced (old one cancelled) whenever the watched resource URIs change.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use switchboard_core::jsonrpc::{notification_message, request_message, result_message};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::UpstreamError;
use crate::mux::{Dispatched, Mux};

/// Longest line accepted from a server's stdout.
const MAX_LINE: usize = 64 * 1024 * 1024;
/// How long a server gets to exit after its stdin closes, and again after SIGTERM.
const GRACE: Duration = Duration::from_secs(2);

/// The last lines a server wrote to stderr (and any garbage it wrote to stdout).
#[derive(Debug)]
pub struct StderrRing {
    lines: Mutex<VecDeque<String>>,
    max_lines: usize,
}

impl StderrRing {
    /// A ring keeping the last `max_lines` lines, each cut to 1000 characters.
    pub fn new(max_lines: usize) -> Self {
        StderrRing {
            lines: Mutex::new(VecDeque::with_capacity(max_lines.min(64))),
            max_lines,
        }
    }

    /// Appends a line, dropping the oldest when full.
    pub fn push(&self, line: &str) {
        let mut cut = line.trim_end().to_string();
        if cut.len() > 1000 {
            let mut end = 1000;
            while !cut.is_char_boundary(end) {
                end -= 1;
            }
            cut.truncate(end);
            cut.push('…');
        }
        let mut lines = self.lines.lock().expect("stderr ring lock");
        if lines.len() == self.max_lines {
            lines.pop_front();
        }
        lines.push_back(cut);
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().expect("stderr ring lock");
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

/// A running stdio server.
pub struct StdioConn {
    pub(crate) mux: Arc<Mux>,
    writer: mpsc::Sender<String>,
    close_stdin: CancellationToken,
    pid: Option<u32>,
    exited: watch::Receiver<Option<String>>,
    /// Stateless 2026-07-28: requests carry their own `_meta`; no session.
    stateless: AtomicBool,
    /// The open `subscriptions/listen` request of a stateless server.
    listen: Arc<Mutex<Listen>>,
}

/// The hub's listen request on a stateless stdio server.
#[derive(Default)]
struct Listen {
    /// Id of the open listen request, once one was sent.
    id: Option<u64>,
    /// Resource URIs it asks updates for (sorted, unique).
    uris: Vec<String>,
}

impl StdioConn {
    pub(crate) fn spawn(
        name: &str,
        command: &str,
        args: &[String],
        env: &BTreeMap<String, String>,
        cwd: Option<&Path>,
        stderr_ring: Arc<StderrRing>,
        mux: Arc<Mux>,
    ) -> Result<Self, UpstreamError> {
        let mut cmd = Command::new(command);
        cmd.args(args)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        set_parent_death_signal(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| UpstreamError::Transport(format!("cannot start {command:?}: {e}")))?;
        let pid = child.id();
        if let (Some(groups), Some(pid)) = (crate::ProcessGroups::installed(), pid) {
            groups.record(pid, name);
        }
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let (writer, rx) = mpsc::channel::<String>(1024);
        let close_stdin = CancellationToken::new();
        tokio::spawn(write_loop(stdin, rx, close_stdin.clone()));
        tokio::spawn(read_loop(
            name.to_string(),
            stdout,
            mux.clone(),
            writer.clone(),
            stderr_ring.clone(),
        ));
        tokio::spawn(stderr_loop(name.to_string(), stderr, stderr_ring));

        let (exit_tx, exited) = watch::channel(None);
        let wait_mux = mux.clone();
        tokio::spawn(async move {
            let reason = match child.wait().await {
                Ok(status) => format!("process exited ({status})"),
                Err(e) => format!("cannot wait for the process: {e}"),
            };
            wait_mux.fail_all(&reason);
            let _ = exit_tx.send(Some(reason));
        });
        Ok(StdioConn {
            mux,
            writer,
            close_stdin,
            pid,
            exited,
            stateless: AtomicBool::new(false),
            listen: Arc::new(Mutex::new(Listen::default())),
        })
    }

    /// True once the process was found to speak the stateless 2026-07-28 era.
    pub(crate) fn is_stateless(&self) -> bool {
        self.stateless.load(Ordering::Relaxed)
    }

    pub(crate) fn set_stateless(&self, stateless: bool) {
        self.stateless.store(stateless, Ordering::Relaxed);
    }

    /// A request as it goes to stdin: with the stateless `_meta` added in the 2026 era,
    /// untouched (and unparsed) in the session era.
    pub(crate) fn outgoing(&self, body: String) -> String {
        if self.is_stateless() {
            crate::stateless::prepare(body).0
        } else {
            body
        }
    }

    /// Sends a new `subscriptions/listen` request with the current filter, cancelling the
    /// previous one (on stdio a listen ends with `notifications/cancelled`).
    pub(crate) fn relisten(&self) {
        relisten(&self.mux, &self.writer, &self.listen, 0);
    }

    /// The resource URIs the listen request should carry; it is replaced when they change.
    pub(crate) fn watch_resources(&self, mut uris: Vec<String>) {
        uris.sort();
        uris.dedup();
        let mut listen = self.listen.lock().expect("listen lock");
        if listen.uris == uris {
            return;
        }
        listen.uris = uris;
        let open = listen.id.is_some();
        drop(listen);
        if open {
            self.relisten();
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Queues one message for stdin, waiting for room.
    pub(crate) async fn write(&self, text: String) {
        let _ = self.writer.send(text).await;
    }

    /// Queues one message without waiting (used from `Drop`).
    pub(crate) fn write_detached(&self, text: String) {
        let _ = self.writer.try_send(text);
    }

    pub(crate) async fn closed(&self) -> String {
        let mut rx = self.exited.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "process watcher ended".into(),
        }
    }

    fn has_exited(&self) -> bool {
        self.exited.borrow().is_some()
    }

    /// Closes stdin, waits, then SIGTERM, then SIGKILL, for the whole process group.
    pub(crate) async fn shutdown(&self) {
        self.close_stdin.cancel();
        let _ = tokio::time::timeout(GRACE, self.closed()).await;
        let Some(pid) = self.pid else { return };
        let group = Pid::from_raw(pid as i32);
        if !self.has_exited() || group_alive(group) {
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = tokio::time::Instant::now() + GRACE;
            while tokio::time::Instant::now() < deadline
                && (group_alive(group) || !self.has_exited())
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if group_alive(group) {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = tokio::time::timeout(GRACE, self.closed()).await;
    }
}

impl Drop for StdioConn {
    fn drop(&mut self) {
        // Last resort if nobody called `shutdown`: never leave the group running.
        if let Some(pid) = self.pid
            && !self.has_exited()
        {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Sends a listen request with the current filter in place of the open one, if any.
///
/// The request is registered like a call, so its end is seen: a server that ends the listen
/// on purpose (a result) is asked again after a pause (1 s, doubling up to a minute while
/// listens keep ending early, `round` counts them); an error (no listen support) or the
/// process going away ends it. A replaced listen is forgotten, which ends its watcher.
fn relisten(mux: &Arc<Mux>, writer: &mpsc::Sender<String>, state: &Arc<Mutex<Listen>>, round: u32) {
    let mut listen = state.lock().expect("listen lock");
    let mut out = Vec::with_capacity(2);
    if let Some(old) = listen.id.take() {
        mux.forget(old);
        out.push(notification_message(
            "notifications/cancelled",
            Some(&format!(
                r#"{{"requestId":{old},"reason":"listen filter changed"}}"#
            )),
        ));
    }
    let id = mux.next_id();
    listen.id = Some(id);
    let ended = mux.register(id, None);
    let params = crate::stateless::listen_params(&listen.uris);
    let body = request_message(&id.to_string(), "subscriptions/listen", Some(&params));
    out.push(crate::stateless::prepare(body).0);
    drop(listen);
    // In order, and without blocking the caller (it may hold the hub's locks).
    let (mux, writer, state) = (mux.clone(), writer.clone(), state.clone());
    tokio::spawn(async move {
        let opened = tokio::time::Instant::now();
        for text in out {
            if writer.send(text).await.is_err() {
                return;
            }
        }
        let Ok(Ok(reply)) = ended.await else { return };
        let ended_on_purpose = switchboard_core::jsonrpc::Envelope::parse(&reply)
            .is_ok_and(|env| env.result.is_some());
        if !ended_on_purpose {
            tracing::debug!(message = "A stateless stdio server refused subscriptions/listen.", %reply);
            return;
        }
        let round = if opened.elapsed() > Duration::from_secs(60) {
            0
        } else {
            round + 1
        };
        tokio::time::sleep(
            Duration::from_secs(1 << round.saturating_sub(1).min(6)).min(Duration::from_secs(60)),
        )
        .await;
        if state.lock().expect("listen lock").id == Some(id) && !writer.is_closed() {
            relisten(&mux, &writer, &state, round);
        }
    });
}

fn group_alive(group: Pid) -> bool {
    killpg(group, None).is_ok()
}

#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes one
    // async-signal-safe system call (prctl).
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
}

async fn write_loop(
    mut stdin: ChildStdin,
    mut rx: mpsc::Receiver<String>,
    close: CancellationToken,
) {
    let mut buf = Vec::with_capacity(8192);
    loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = close.cancelled() => None,
        };
        let Some(first) = first else { break };
        buf.clear();
        buf.extend_from_slice(first.as_bytes());
        buf.push(b'\n');
        // Batch whatever else is already queued into the same write.
        while buf.len() < 1 << 20 {
            match rx.try_recv() {
                Ok(m) => {
                    buf.extend_from_slice(m.as_bytes());
                    buf.push(b'\n');
                }
                Err(_) => break,
            }
        }
        if stdin.write_all(&buf).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    drop(stdin);
}

async fn read_loop(
    name: String,
    stdout: impl AsyncRead + Unpin,
    mux: Arc<Mux>,
    writer: mpsc::Sender<String>,
    ring: Arc<StderrRing>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match read_line_capped(&mut reader, &mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                ring.push(&format!("[switchboard] stdout read failed: {e}"));
                break;
            }
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim(),
            Err(_) => {
                ring.push("[switchboard] non-UTF-8 bytes on stdout ignored");
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match mux.dispatch(text.to_string(), None) {
            Ok(Dispatched::Handled) => {}
            Ok(Dispatched::Ping(id)) => {
                let _ = writer.try_send(result_message(&id, "{}"));
            }
            Err(why) => {
                tracing::warn!(message = "Ignored a line on a server's stdout that is not JSON-RPC.", server = %name, %why);
                ring.push(&format!("[switchboard] not JSON-RPC on stdout: {text}"));
            }
        }
    }
}

/// Reads one `\n`-terminated line; a line longer than [`MAX_LINE`] is an error.
async fn read_line_capped(
    reader: &mut (impl AsyncBufReadExt + Unpin),
    out: &mut Vec<u8>,
) -> std::io::Result<usize> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(out.len());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(i) => {
                out.extend_from_slice(&available[..=i]);
                reader.consume(i + 1);
                return Ok(out.len());
            }
            None => {
                let n = available.len();
                out.extend_from_slice(available);
                reader.consume(n);
                if out.len() > MAX_LINE {
                    return Err(std::io::Error::other("line longer than 64 MiB"));
                }
            }
        }
    }
}

async fn stderr_loop(name: String, stderr: impl AsyncRead + Unpin, ring: Arc<StderrRing>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(message = "Server stderr.", server = %name, line = %line);
        ring.push(&line);
    }
}
