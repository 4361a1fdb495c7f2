//! The accept loop of both services, with what a stranger's socket may cost bounded before
//! any handler runs:
//!
//! - connections per source address (`max_connections_per_ip`): a connection over the cap is
//!   closed at once, and the refusal is logged once per address per minute;
//! - the request head must arrive within `header_timeout` (hyper's header read timeout, which
//!   also runs while a keep-alive connection waits for its next request);
//! - a request body must arrive whole within `body_timeout` of the head (else 408 and the
//!   connection closes);
//! - a connection with no request in progress for `idle_timeout` is closed. A response still
//!   being sent (an SSE stream) is a request in progress, so long-lived streams are never cut.
//!
//! It also sets `TCP_NODELAY`, says `Connection: close` when a response leaves the request body
//! unread (an early 401 or 413: the connection cannot be reused), and lets a handler close its
//! connection at once ([`ConnectionCut`]) when a client stops reading a stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, Version, header};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// Limits on every accepted connection.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// The request head must arrive within this (also between keep-alive requests).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this after its head.
    pub body_timeout: Duration,
    /// A connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
    /// Connections one source address may hold open (0: no limit).
    pub max_connections_per_ip: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections_per_ip: 256,
        }
    }
}

/// Closes the request's connection at once when cancelled (request extension).
#[derive(Clone)]
pub(crate) struct ConnectionCut(pub(crate) CancellationToken);

/// Serves `router` on `listener` with the default limits until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, router, ListenerLimits::default(), shutdown).await
}

/// Serves `router` on `listener` with `limits` until `shutdown` fires, then lets the open
/// connections finish their current response.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let per_ip = Arc::new(PerIp::new(limits.max_connections_per_ip));
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: do not spin.
                tracing::warn!(message = "Cannot accept a connection.", error = %e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = per_ip.claim(peer.ip()) else {
            drop(tcp);
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(message = "Cannot set TCP_NODELAY.", error = %e);
        }
        tracker.spawn(connection(
            tcp,
            peer,
            router.clone(),
            limits,
            shutdown.clone(),
            slot,
        ));
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Open connections per source address.
struct PerIp {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    warned: Mutex<HashMap<IpAddr, Instant>>,
}

const WARN_INTERVAL: Duration = Duration::from_secs(60);

impl PerIp {
    fn new(limit: usize) -> Self {
        PerIp {
            limit,
            open: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashMap::new()),
        }
    }

    fn claim(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        {
            let mut open = self.open.lock().expect("per-ip lock");
            let n = open.entry(ip).or_insert(0);
            if self.limit > 0 && *n >= self.limit {
                drop(open);
                self.warn_once(ip);
                return None;
            }
            *n += 1;
        }
        Some(IpSlot {
            per_ip: self.clone(),
            ip,
        })
    }

    fn warn_once(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut warned = self.warned.lock().expect("per-ip warn lock");
        if warned
            .get(&ip)
            .is_some_and(|t| now.duration_since(*t) < WARN_INTERVAL)
        {
            return;
        }
        if warned.len() > 4096 {
            warned.retain(|_, t| now.duration_since(*t) < WARN_INTERVAL);
        }
        warned.insert(ip, now);
        drop(warned);
        tracing::warn!(
            message = "Too many connections from one address: closing new ones (logged once a minute per address).",
            addr = %ip,
            limit = self.limit,
        );
    }
}

struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.per_ip.open.lock().expect("per-ip lock");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Requests in progress on one connection (a response counts until its body is done).
struct Activity {
    active: AtomicUsize,
    idle_since: Mutex<Instant>,
    changed: tokio::sync::Notify,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        ActiveGuard(self.clone())
    }

    /// Resolves once the connection has had no request in progress for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            if self.active.load(Ordering::Acquire) == 0 {
                let since = *self.idle_since.lock().expect("idle lock");
                tokio::select! {
                    _ = tokio::time::sleep_until((since + timeout).into()) => {
                        if self.active.load(Ordering::Acquire) == 0
                            && *self.idle_since.lock().expect("idle lock") == since
                        {
                            return;
                        }
                    }
                    _ = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        *self.0.idle_since.lock().expect("idle lock") = Instant::now();
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
    _slot: IpSlot,
) {
    let activity = Arc::new(Activity {
        active: AtomicUsize::new(0),
        idle_since: Mutex::new(Instant::now()),
        changed: tokio::sync::Notify::new(),
    });
    let cut = CancellationToken::new();
    let service = {
        let activity = activity.clone();
        let cut = cut.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = activity.begin();
            handle(
                req,
                router.clone(),
                peer,
                cut.clone(),
                limits.body_timeout,
                guard,
            )
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(message = "Connection ended with an error.", peer = %peer, error = %e);
                }
                break;
            }
            // Dropping the connection closes the socket, whatever it was doing.
            _ = cut.cancelled() => break,
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = activity.idle_for(limits.idle_timeout), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    mut router: Router,
    peer: SocketAddr,
    cut: CancellationToken,
    body_timeout: Duration,
    guard: ActiveGuard,
) -> Result<Response<GuardedBody>, Infallible> {
    let has_body = !req.body().is_end_stream();
    let version = req.version();
    let (mut parts, body) = req.into_parts();
    let read = Arc::new(BodyState::default());
    let body = TimedBody {
        inner: body,
        deadline: has_body.then(|| Box::pin(tokio::time::sleep(body_timeout))),
        state: read.clone(),
    };
    parts.extensions.insert(ConnectInfo(peer));
    parts.extensions.insert(ConnectionCut(cut));
    let req = Request::from_parts(parts, Body::new(body));
    let resp = match router.call(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let mut resp = if read.timed_out.load(Ordering::Acquire) {
        tracing::info!(
            message = "A request body did not arrive in time; closing the connection.",
            peer = %peer,
            timeout_ms = body_timeout.as_millis() as u64,
        );
        let mut r = Response::new(Body::from(format!(
            "request body not received within {} s\n",
            body_timeout.as_secs_f64()
        )));
        *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
        r
    } else {
        resp
    };
    // The rest of an unread body is still on the wire: this connection cannot carry another
    // request, so say so.
    if has_body
        && !read.done.load(Ordering::Acquire)
        && matches!(version, Version::HTTP_11 | Version::HTTP_10)
    {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(
        parts,
        GuardedBody {
            inner: body,
            _guard: guard,
        },
    ))
}

#[derive(Default)]
struct BodyState {
    done: AtomicBool,
    timed_out: AtomicBool,
}

/// The request body was not received in time.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails once its deadline passes, and records whether it was read whole.
struct TimedBody {
    inner: Incoming,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    state: Arc<BodyState>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.state.done.store(true, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Ready(Some(r)) => {
                if this.inner.is_end_stream() {
                    this.state.done.store(true, Ordering::Release);
                }
                Poll::Ready(Some(r.map_err(Into::into)))
            }
            Poll::Pending => {
                if let Some(d) = &mut this.deadline
                    && d.as_mut().poll(cx).is_ready()
                {
                    this.state.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in progress until it is done.
struct GuardedBody {
    inner: Body,
    _guard: ActiveGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_cap_counts_open_connections() {
        let per_ip = Arc::new(PerIp::new(2));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = per_ip.claim(ip).unwrap();
        let _b = per_ip.claim(ip).unwrap();
        assert!(per_ip.claim(ip).is_none());
        assert!(per_ip.claim("127.0.0.2".parse().unwrap()).is_some());
        drop(a);
        assert!(per_ip.claim(ip).is_some());
    }
}
