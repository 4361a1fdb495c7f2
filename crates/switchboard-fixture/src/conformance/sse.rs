//! The legacy HTTP+SSE transport (2024-11-05) for the conformance server,
//! which rmcp does not ship: `GET /sse` opens a session whose first event is
//! `endpoint` (`/messages?sessionId=<hex>`), every server→client message then
//! follows as `event: message`; `POST /messages?sessionId=<hex>` delivers one
//! client→server message (202). Each session is one rmcp server reached
//! through an in-memory pipe of newline-delimited JSON; dropping the SSE
//! stream ends it.

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
use rmcp::{service::serve_server_with_ct, transport::async_rw::AsyncRwTransport};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, WriteHalf},
    sync::Mutex as AsyncMutex,
};
use tokio_util::sync::CancellationToken;

use super::ConformanceServer;

/// Buffer of each direction of a session's in-memory pipe.
const PIPE_BUFFER: usize = 256 * 1024;
/// Interval between `: keepalive` comments on an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

type Writer = Arc<AsyncMutex<WriteHalf<tokio::io::DuplexStream>>>;

struct Sessions {
    server: ConformanceServer,
    writers: Mutex<HashMap<String, Writer>>,
    ct: CancellationToken,
}

impl Sessions {
    fn writers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Writer>> {
        self.writers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes the session and stops its server when the SSE stream is dropped.
struct Guard {
    id: String,
    sessions: Arc<Sessions>,
    ct: CancellationToken,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.ct.cancel();
        self.sessions.writers().remove(&self.id);
    }
}

pub(super) fn router(server: ConformanceServer, ct: CancellationToken) -> Router {
    let sessions = Arc::new(Sessions {
        server,
        writers: Mutex::new(HashMap::new()),
        ct,
    });
    Router::new()
        .route("/sse", get(open))
        .route("/messages", post(message))
        .with_state(sessions)
}

fn session_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn open(State(sessions): State<Arc<Sessions>>) -> Response {
    let id = session_id();
    let ct = sessions.ct.child_token();
    let (client_end, server_end) = tokio::io::duplex(PIPE_BUFFER);
    let (server_read, server_write) = tokio::io::split(server_end);
    let handler = sessions.server.new_session();
    let server_ct = ct.clone();
    tokio::spawn(async move {
        let transport = AsyncRwTransport::new_server(server_read, server_write);
        match serve_server_with_ct(handler, transport, server_ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "sse session ended before initialize"),
        }
    });
    let (client_read, client_write) = tokio::io::split(client_end);
    sessions
        .writers()
        .insert(id.clone(), Arc::new(AsyncMutex::new(client_write)));

    let endpoint = Bytes::from(format!(
        "event: endpoint\ndata: /messages?sessionId={id}\n\n"
    ));
    let guard = Guard {
        id,
        sessions,
        ct: ct.clone(),
    };
    let lines = BufReader::new(client_read).lines();
    let start = (Some(endpoint), lines, guard);
    let events = futures_util::stream::unfold(start, |(endpoint, mut lines, guard)| async move {
        if let Some(endpoint) = endpoint {
            return Some((Ok::<_, Infallible>(endpoint), (None, lines, guard)));
        }
        let ct = guard.ct.clone();
        let chunk = tokio::select! {
            // `next_line` is cancel-safe.
            line = lines.next_line() => match line {
                Ok(Some(line)) => Bytes::from(format!("event: message\ndata: {line}\n\n")),
                Ok(None) | Err(_) => return None,
            },
            () = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keepalive\n\n"),
            () = ct.cancelled() => return None,
        };
        Some((Ok(chunk), (None, lines, guard)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn message(
    State(sessions): State<Arc<Sessions>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(id) = query.get("sessionId") else {
        return (StatusCode::BAD_REQUEST, "missing sessionId").into_response();
    };
    let Some(writer) = sessions.writers().get(id).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    };
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    }
    // One message per line: JSON allows line breaks only as whitespace.
    let mut line: Vec<u8> = body
        .iter()
        .map(|b| if matches!(b, b'\n' | b'\r') { b' ' } else { *b })
        .collect();
    line.push(b'\n');
    let mut writer = writer.lock().await;
    let written = async {
        writer.write_all(&line).await?;
        writer.flush().await
    }
    .await;
    match written {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "session closed").into_response(),
    }
}
