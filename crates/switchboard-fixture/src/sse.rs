//! Legacy HTTP+SSE mode (the 2024-11-05 transport), which rmcp does not ship.
//!
//! `GET /sse` opens a session: the first event is `endpoint` naming
//! `/messages?sessionId=<hex>`, then every server→client message follows as
//! an `event: message`. `POST /messages?sessionId=<hex>` delivers one
//! client→server message (or a batch array) and answers 202. Each session is
//! its own rmcp server, reached through an in-memory duplex pipe carrying
//! newline-delimited JSON. Dropping the SSE stream ends the session.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::value::RawValue;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf},
    net::TcpListener,
    time::{Instant, Interval},
};
use tokio_util::sync::CancellationToken;

use crate::{
    FixtureOptions, FixtureServer,
    handle::{serve_router, spawn_router},
    server::Fixture,
};

/// Interval between `: keepalive` comments on an idle SSE stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

type SessionWriter = Arc<tokio::sync::Mutex<WriteHalf<DuplexStream>>>;

/// Opens one session's server and returns the client end of its in-memory pipe; the
/// server stops when the token is cancelled.
pub(crate) type OpenSession = Arc<dyn Fn(CancellationToken) -> DuplexStream + Send + Sync>;

struct SseState {
    open: OpenSession,
    sessions: Mutex<HashMap<String, SessionWriter>>,
    ct: CancellationToken,
}

impl SseState {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionWriter>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends a session when its SSE stream is dropped.
struct SessionGuard {
    id: String,
    state: Arc<SseState>,
    ct: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.ct.cancel();
        self.state.sessions().remove(&self.id);
        tracing::debug!(session = %self.id, "sse session closed");
    }
}

struct EventStream {
    endpoint: Option<Bytes>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    keepalive: Interval,
    guard: SessionGuard,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Extremely unlikely; fall back to something unique enough for a fixture.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `/sse` + `/messages` routes, one server per session from `open`.
pub(crate) fn session_router(open: OpenSession, ct: CancellationToken) -> Router {
    let state = Arc::new(SseState {
        open,
        sessions: Mutex::new(HashMap::new()),
        ct,
    });
    Router::new()
        .route("/sse", get(open_stream))
        .route("/messages", post(post_message))
        .with_state(state)
}

async fn open_stream(State(state): State<Arc<SseState>>) -> Response {
    let id = random_hex();
    let session_ct = state.ct.child_token();
    let (read, write) = tokio::io::split((state.open)(session_ct.clone()));
    state
        .sessions()
        .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(write)));
    tracing::debug!(session = %id, "sse session opened");

    let endpoint = Bytes::from(format!(
        "event: endpoint\ndata: /messages?sessionId={id}\n\n"
    ));
    let start = EventStream {
        endpoint: Some(endpoint),
        lines: BufReader::new(read).lines(),
        keepalive: tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE),
        guard: SessionGuard {
            id,
            state,
            ct: session_ct,
        },
    };
    let events = futures_util::stream::unfold(start, |mut s| async move {
        if let Some(endpoint) = s.endpoint.take() {
            return Some((Ok::<_, Infallible>(endpoint), s));
        }
        let ct = s.guard.ct.clone();
        let chunk = tokio::select! {
            // `next_line` is cancel-safe, so losing the race loses no data.
            line = s.lines.next_line() => match line {
                Ok(Some(line)) => Bytes::from(format!("event: message\ndata: {line}\n\n")),
                Ok(None) | Err(_) => return None,
            },
            _ = s.keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
            () = ct.cancelled() => return None,
        };
        Some((Ok(chunk), s))
    });

    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Turns a POST body into newline-delimited messages for the rmcp side,
/// keeping each message's bytes except for line breaks (which JSON only
/// allows as insignificant whitespace).
fn to_lines(body: &[u8]) -> Option<Vec<u8>> {
    let raw: &RawValue = serde_json::from_slice(body).ok()?;
    let items: Vec<&RawValue> = if raw.get().starts_with('[') {
        serde_json::from_str(raw.get()).ok()?
    } else {
        vec![raw]
    };
    let mut out = Vec::with_capacity(body.len() + items.len());
    for item in items {
        out.extend(item.get().bytes().map(|b| match b {
            b'\n' | b'\r' => b' ',
            other => other,
        }));
        out.push(b'\n');
    }
    Some(out)
}

async fn post_message(
    State(state): State<Arc<SseState>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(id) = query.get("sessionId") else {
        return (StatusCode::BAD_REQUEST, "missing sessionId").into_response();
    };
    let Some(writer) = state.sessions().get(id).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    };
    let Some(lines) = to_lines(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let mut writer = writer.lock().await;
    let written = async {
        writer.write_all(&lines).await?;
        writer.flush().await
    }
    .await;
    match written {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "session closed").into_response(),
    }
}

/// Serves the legacy HTTP+SSE transport (`/sse`, `/messages`) on `listener`
/// until `ct` is cancelled.
pub async fn serve_sse(
    listener: TcpListener,
    opts: FixtureOptions,
    ct: CancellationToken,
) -> std::io::Result<()> {
    let app = router(Fixture::new(opts), ct.clone());
    serve_router(listener, app, ct).await
}

fn router(fixture: Fixture, ct: CancellationToken) -> Router {
    session_router(
        Arc::new(move |session_ct| fixture.serve_duplex(session_ct)),
        ct,
    )
}

/// Starts a legacy HTTP+SSE fixture on `127.0.0.1:0` in the background;
/// `url` is `http://<addr>/sse`.
pub async fn spawn_sse(opts: FixtureOptions) -> std::io::Result<FixtureServer> {
    let fixture = Fixture::new(opts);
    let stats = fixture.stats();
    let ct = CancellationToken::new();
    let app = router(fixture, ct.clone());
    spawn_router(app, "/sse", ct, stats, Arc::default()).await
}
