//! Stdio mode: serves one session on stdin/stdout, with stdout shared
//! line-atomically between rmcp's transport and the `garbage` tool.
//!
//! Every writer hands complete lines to a channel; one pump task owns the real
//! stdout and writes them in order. A JSON-RPC message (one line) can thus
//! never be split by garbage written from a tool.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use rmcp::{service::serve_server, transport::async_rw::AsyncRwTransport};
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};

use crate::{FixtureOptions, server::Fixture};

/// How long to wait for buffered output to reach stdout at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A cloneable handle that queues whole lines for stdout.
#[derive(Clone, Debug)]
pub(crate) struct StdoutLines {
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

impl StdoutLines {
    /// Queues `bytes`, which must consist of complete `\n`-terminated lines.
    pub(crate) fn write_lines(&self, bytes: Vec<u8>) {
        if self.tx.send(bytes).is_err() {
            tracing::debug!("stdout is closed; dropping output");
        }
    }
}

/// The `AsyncWrite` given to rmcp: buffers bytes until a line is complete and
/// only then queues it.
struct LineWriter {
    pending: Vec<u8>,
    out: StdoutLines,
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.pending.extend_from_slice(buf);
        if let Some(last_newline) = this.pending.iter().rposition(|b| *b == b'\n') {
            let rest = this.pending.split_off(last_newline + 1);
            let lines = std::mem::replace(&mut this.pending, rest);
            if this.out.tx.send(lines).is_err() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "stdout pump stopped",
                )));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes queued lines to the real stdout until every sender is gone.
async fn pump(mut rx: mpsc::UnboundedReceiver<Vec<u8>>, mut out: impl AsyncWrite + Unpin) {
    while let Some(chunk) = rx.recv().await {
        if out.write_all(&chunk).await.is_err() {
            return;
        }
        if rx.is_empty() && out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.flush().await;
}

/// Serves one fixture session on the process's stdin/stdout until stdin
/// closes. Must run inside a Tokio runtime.
pub async fn serve_stdio(opts: FixtureOptions) -> io::Result<()> {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let (tx, rx) = mpsc::unbounded_channel();
    let pump_task = tokio::spawn(pump(rx, stdout));
    let lines = StdoutLines { tx };
    let fixture = Fixture::with_stdout(opts, lines.clone());
    let writer = LineWriter {
        pending: Vec::new(),
        out: lines,
    };
    let transport = AsyncRwTransport::new_server(stdin, writer);
    let running = serve_server(fixture, transport)
        .await
        .map_err(io::Error::other)?;
    let reason = running.waiting().await;
    tracing::debug!(?reason, "stdio session ended");
    // Handler tasks that still hold a sender are cancelled with the session;
    // give the pump a bounded time to flush what is already queued.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, pump_task).await;
    Ok(())
}
