//! Legacy HTTP+SSE (2024-11-05) for MCP clients: `GET /sse[/{name}]` and `POST /messages`.
//!
//! The stream's first event names the endpoint to POST to; every message from the hub,
//! responses included, then arrives on the stream. The session ends with the stream.

use crate::access::CallerHub;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use switchboard_core::sse;
use switchboard_hub::{ClientSession, Hub, StreamGuard};

use crate::listener::ConnectionCut;
use crate::streamable::{cut_on_overflow, with_keepalive_raw};

const STREAM_CAPACITY: usize = 1024;

/// Ends the session when the client's stream goes away: a legacy SSE session lives with its
/// stream, so other replicas refuse its posts from then on.
struct SessionStream {
    hub: Hub,
    session: Arc<ClientSession>,
    guard: StreamGuard,
}

impl Drop for SessionStream {
    fn drop(&mut self) {
        self.hub.end_session_now(&self.session.id);
    }
}

/// `GET /sse/$smart/{group}` (`/sse/$smart` is `/sse/{name}`).
pub(crate) async fn open_smart(
    caller: CallerHub,
    cut: Option<Extension<ConnectionCut>>,
    Path(group): Path<String>,
) -> Response {
    open(caller, cut, Some(crate::streamable::smart_segment(&group))).await
}

/// `GET /sse[/{name}]`.
pub(crate) async fn open(
    CallerHub(hub, credentials): CallerHub,
    cut: Option<Extension<ConnectionCut>>,
    name: Option<Path<String>>,
) -> Response {
    let Some(view) = hub.resolve_view(name.as_deref().map(String::as_str)) else {
        return (StatusCode::NOT_FOUND, "no such group or server").into_response();
    };
    let credential = credentials.as_ref().and_then(|c| c.key());
    let session = match hub.create_session_for(view, STREAM_CAPACITY, None, credential) {
        Ok(s) => s,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    if let Some(c) = &credentials {
        c.apply(&session).await;
    }
    let guard = session
        .attach_stream()
        .expect("a new session's stream is free");
    // A client that stops reading is cut off when its queue overflows (the session then ends,
    // and the replies it did not read are dropped).
    cut_on_overflow(
        cut.map(|Extension(c)| c),
        session.sender().overflowed(),
        session.closed.clone(),
    );
    let endpoint = sse::encode(
        Some("endpoint"),
        None,
        &format!("/messages?sessionId={}", session.id),
    );
    let state = SessionStream {
        hub,
        session,
        guard,
    };
    let messages = stream::unfold(state, |mut st| async move {
        st.guard
            .recv()
            .await
            .map(|m| (Bytes::from(sse::encode(Some("message"), None, &m)), st))
    });
    with_keepalive_raw(stream::iter([Bytes::from(endpoint)]).chain(messages))
}

#[derive(Deserialize)]
pub(crate) struct SessionQuery {
    #[serde(rename = "sessionId", alias = "session_id")]
    session_id: Option<String>,
}

/// `POST /messages?sessionId=...`: one message in, `202 Accepted` out; replies go on the stream.
pub(crate) async fn message(
    CallerHub(hub, credentials): CallerHub,
    Query(q): Query<SessionQuery>,
    body: Bytes,
) -> Response {
    let Some(id) = q.session_id else {
        return (StatusCode::BAD_REQUEST, "missing sessionId").into_response();
    };
    // Only the credential that opened the stream may post to it.
    if !hub.may_use(&id, credentials.as_ref().and_then(|c| c.key())) {
        return (StatusCode::NOT_FOUND, "Could not find session").into_response();
    }
    let Ok(text) = String::from_utf8(Vec::from(body)) else {
        return (StatusCode::BAD_REQUEST, "body is not UTF-8").into_response();
    };
    let Some(session) = hub.session(&id) else {
        // Another replica holds the stream: the message goes there.
        if !crate::batch::is_batch(&text) && hub.relay_to_stream(&id, text) {
            return (StatusCode::ACCEPTED, "Accepted").into_response();
        }
        return (StatusCode::NOT_FOUND, "Could not find session").into_response();
    };
    tokio::spawn(async move {
        let out = session.sender().clone();
        let reply = if crate::batch::is_batch(&text) {
            match crate::batch::run(&hub, &session, &text).await {
                Ok(reply) => reply,
                Err(crate::batch::Refused(error)) => Some(error),
            }
        } else {
            hub.handle_channel(&session, &text, &out).await
        };
        if let Some(reply) = reply {
            let _ = out.send(reply).await;
        }
    });
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
