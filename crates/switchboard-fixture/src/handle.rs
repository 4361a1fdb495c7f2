//! In-process server handles ([`FixtureServer`]), shared counters
//! ([`FixtureStats`]) and the axum serving loop every HTTP mode uses.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, serve::ListenerExt};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// Counters of one fixture instance, shared by all of its sessions.
#[derive(Debug, Clone, Default)]
pub struct FixtureStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    cancelled: AtomicU64,
    calls: AtomicU64,
}

impl FixtureStats {
    /// How many in-flight tool calls (`hang`, `slow`, `progress`) ended
    /// because the client cancelled them.
    pub fn cancelled(&self) -> u64 {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Total `tools/call` requests received.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn record_cancel(&self) {
        self.inner.cancelled.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn record_call(&self) {
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// The method and headers of one HTTP request a fixture received (header names lower-case).
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// Every header, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A server running inside the current process, bound to `127.0.0.1:<port>`.
///
/// Dropping it cancels the server (sessions end, the listener closes).
#[derive(Debug)]
pub struct FixtureServer {
    /// The bound socket address.
    pub addr: SocketAddr,
    /// The endpoint a client should use: `http://<addr>/mcp` or `http://<addr>/sse`.
    pub url: String,
    ct: CancellationToken,
    task: Option<JoinHandle<()>>,
    stats: FixtureStats,
    received: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
}

impl FixtureServer {
    /// Every request body the raw server received, in arrival order (always
    /// empty for the rmcp-backed modes).
    pub fn received(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The method and headers of every HTTP request received, in arrival order (every HTTP
    /// mode), e.g. to check injected headers or a session's closing `DELETE`.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Clears the record returned by [`FixtureServer::received`].
    pub fn clear_received(&self) {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Live counters of this server.
    pub fn stats(&self) -> FixtureStats {
        self.stats.clone()
    }

    /// A token that stops the server when cancelled.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.ct.clone()
    }

    /// Stops the server and waits (up to 5 s) for its accept loop to end.
    pub async fn shutdown(mut self) {
        self.ct.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.ct.cancel();
    }
}

/// Serves `router` on `listener` (with TCP_NODELAY on every accepted socket)
/// until `ct` is cancelled.
pub(crate) async fn serve_router(
    listener: TcpListener,
    router: Router,
    ct: CancellationToken,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(ct.cancelled_owned())
        .await
}

/// Binds `127.0.0.1:0` and serves `router` in a background task.
pub(crate) async fn spawn_router(
    router: Router,
    path: &str,
    ct: CancellationToken,
    stats: FixtureStats,
    received: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<FixtureServer> {
    let requests: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
    let log = requests.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let seen = SeenRequest {
                method: req.method().to_string(),
                headers: req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
            };
            log.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(seen);
            next.run(req)
        },
    ));
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn({
        let ct = ct.clone();
        async move {
            if let Err(error) = serve_router(listener, router, ct).await {
                tracing::warn!(%error, "fixture server stopped with an error");
            }
        }
    });
    Ok(FixtureServer {
        addr,
        url: format!("http://{addr}{path}"),
        ct,
        task: Some(task),
        stats,
        received,
        requests,
    })
}
