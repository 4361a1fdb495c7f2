//! Streamable HTTP for MCP clients at `/mcp` and `/mcp/{group-or-server}`.
//!
//! `POST` carries one message. A request is answered as plain JSON when nothing else needs to
//! be said first, and switches to an event stream as soon as the upstream sends progress or a
//! server-to-client request. `GET` opens the session's stream for unsolicited messages;
//! `DELETE` ends the session.

use crate::access::CallerHub;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use switchboard_core::jsonrpc::{Envelope, Kind, code, error_message};
use switchboard_core::sse;
use switchboard_hub::outbox::{self, Inbox};
use switchboard_hub::{ClientSession, Hub, SUPPORTED_VERSIONS, View};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::listener::ConnectionCut;

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const STREAM_CAPACITY: usize = 256;
/// Messages one POST's event stream may queue (its bytes are bounded by the hub's
/// `stream_queue_bytes`).
const POST_STREAM_CAPACITY: usize = 1024;

pub(crate) fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = error_message("null", code, message, None);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn view_for(hub: &Hub, name: Option<&str>) -> Result<View, Response> {
    hub.resolve_view(name).ok_or_else(|| {
        let msg = format!("no group or server named {:?}", name.unwrap_or_default());
        rpc_error(StatusCode::NOT_FOUND, code::INVALID_REQUEST, &msg)
    })
}

/// The request's session: live on this replica, or resumed from its sealed id (opened on
/// another replica or before a restart) by the credential that opened it.
async fn session_for(
    hub: &Hub,
    headers: &HeaderMap,
    view: &View,
    credentials: Option<&crate::access::Credentials>,
) -> Result<Arc<ClientSession>, Response> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "Bad Request: missing Mcp-Session-Id header; send initialize first",
        ));
    };
    match hub.resume_session(id, view, credentials.and_then(|c| c.key()), STREAM_CAPACITY) {
        Ok(Some(s)) => {
            // A session just resumed here has not met its caller yet.
            if s.principal().is_none()
                && let Some(c) = credentials
            {
                c.apply(&s).await;
            }
            Ok(s)
        }
        Ok(None) => Err(rpc_error(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            "Session not found; initialize a new session",
        )),
        Err(e) => Err(rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            code::INTERNAL_ERROR,
            &e.to_string(),
        )),
    }
}

fn check_version(headers: &HeaderMap) -> Result<(), Response> {
    match headers
        .get(VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some(v) if !SUPPORTED_VERSIONS.contains(&v) && v != switchboard_hub::STATELESS_VERSION => {
            Err(rpc_error(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                &format!(
                    "Bad Request: unsupported MCP-Protocol-Version {v:?}; supported: {}",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The endpoint name of `/mcp/$smart/{group}` as `resolve_view` takes it.
pub(crate) fn smart_segment(group: &str) -> Path<String> {
    Path(format!("{}/{group}", switchboard_hub::SMART_SEGMENT))
}

/// `POST /mcp/$smart/{group}` (`/mcp/$smart` is `/mcp/{name}`).
pub(crate) async fn post_smart(
    caller: CallerHub,
    cut: Option<Extension<ConnectionCut>>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    post(caller, cut, Some(smart_segment(&group)), headers, body).await
}

/// `GET /mcp/$smart/{group}`.
pub(crate) async fn get_smart(
    caller: CallerHub,
    cut: Option<Extension<ConnectionCut>>,
    Path(group): Path<String>,
    headers: HeaderMap,
) -> Response {
    get(caller, cut, Some(smart_segment(&group)), headers).await
}

/// `POST /mcp[/{name}]`.
pub(crate) async fn post(
    CallerHub(hub, credentials): CallerHub,
    cut: Option<Extension<ConnectionCut>>,
    name: Option<Path<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let view = match view_for(&hub, name.as_deref().map(String::as_str)) {
        Ok(v) => v,
        Err(r) => return r,
    };
    // `Vec::from(Bytes)` reuses the buffer when nothing else holds it.
    let Ok(text) = String::from_utf8(Vec::from(body)) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            code::PARSE_ERROR,
            "Parse error: body is not UTF-8",
        );
    };
    if crate::batch::is_batch(&text) && headers.get(SESSION_HEADER).is_some() {
        return post_batch(&hub, &headers, &view, &text, credentials.as_ref()).await;
    }
    let env = match Envelope::parse(&text) {
        Ok(env) => env,
        Err(e) => {
            tracing::info!(message = "Refused a malformed message on /mcp.", code = e.code(), reason = %e);
            let body = error_message(e.id_text(), e.code(), &e.to_string(), None);
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
    };
    let kind = env.kind().unwrap_or(Kind::Notification);
    let stateless =
        headers.get(SESSION_HEADER).is_none() && crate::stateless::is_stateless(&headers, &env);
    // `initialize` marked as 2026-07-28 (header or `_meta`) is a stateless request for a
    // removed method (404, -32601), not the start of a session.
    let is_init = kind == Kind::Request && env.method() == "initialize" && !stateless;
    if stateless {
        if let Err(r) = crate::stateless::check_headers(&headers, &env) {
            return r;
        }
        drop(env);
        if kind != Kind::Request {
            return StatusCode::ACCEPTED.into_response();
        }
        let session = hub.stateless_session(view, Some(crate::stateless::param_headers(&headers)));
        if let Some(c) = &credentials {
            c.apply(&session).await;
        }
        let cut = cut.map(|Extension(c)| c);
        let resp = answer(hub, session.clone(), text, cut).await;
        return crate::stateless::with_status(resp, session.reply_class());
    }
    drop(env);
    let (session, new_session) = if is_init {
        let credential = credentials.as_ref().and_then(|c| c.key());
        match hub.create_session_for(view, STREAM_CAPACITY, Some(&text), credential) {
            Ok(s) => {
                if let Some(c) = &credentials {
                    c.apply(&s).await;
                }
                (s, true)
            }
            Err(e) => {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::INTERNAL_ERROR,
                    &e.to_string(),
                );
            }
        }
    } else {
        if let Err(r) = check_version(&headers) {
            return r;
        }
        match session_for(&hub, &headers, &view, credentials.as_ref()).await {
            Ok(s) => (s, false),
            Err(r) => return r,
        }
    };
    if kind != Kind::Request {
        let _ = hub.handle(&session, &text, session.sender()).await;
        return StatusCode::ACCEPTED.into_response();
    }
    let mut resp = answer(hub, session.clone(), text, cut.map(|Extension(c)| c)).await;
    if new_session {
        resp.headers_mut().insert(
            SESSION_HEADER,
            HeaderValue::from_str(&session.id).expect("hex and base64url ids are valid headers"),
        );
    }
    resp
}

/// A batch on an existing session (2024-11-05 and 2025-03-26 only): one JSON array of
/// responses, or 202 when it held no requests.
async fn post_batch(
    hub: &Hub,
    headers: &HeaderMap,
    view: &View,
    text: &str,
    credentials: Option<&crate::access::Credentials>,
) -> Response {
    if let Err(r) = check_version(headers) {
        return r;
    }
    let session = match session_for(hub, headers, view, credentials).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match crate::batch::run(hub, &session, text).await {
        Ok(Some(array)) => ([(header::CONTENT_TYPE, "application/json")], array).into_response(),
        Ok(None) => StatusCode::ACCEPTED.into_response(),
        Err(crate::batch::Refused(body)) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    }
}

type Handling = Pin<Box<dyn std::future::Future<Output = Option<String>> + Send>>;

/// Runs one request: JSON if the answer comes first, an event stream if anything precedes it.
/// Event streams carry a keep-alive comment every 15 s (a `subscriptions/listen` stream can
/// be quiet for hours). A client that stops reading the stream is cut off once its queue
/// overflows (`stream_queue_bytes`), and its session ends.
async fn answer(
    hub: Hub,
    session: Arc<ClientSession>,
    text: String,
    cut: Option<ConnectionCut>,
) -> Response {
    let label = if session.id.is_empty() {
        "a stateless request's event stream".to_string()
    } else {
        format!("session {}'s request stream", session.id)
    };
    let (tx, mut rx) =
        outbox::channel(label, POST_STREAM_CAPACITY, hub.config().stream_queue_bytes);
    if !session.id.is_empty() {
        let (hub, id) = (hub.clone(), session.id.clone());
        tx.on_overflow(move || {
            let (hub, id) = (hub.clone(), id.clone());
            tokio::spawn(async move { hub.close_session(&id) });
        });
    }
    let mut fut: Handling = Box::pin(async move { hub.handle(&session, &text, &tx).await });
    let overflow = rx.overflowed();
    let stream = |first, rx, fut| {
        let done = CancellationToken::new();
        cut_on_overflow(cut, overflow, done.clone());
        with_keepalive(
            stream_rest(first, rx, fut).chain(
                stream::once(async move {
                    done.cancel();
                    None
                })
                .filter_map(|x| async move { x }),
            ),
        )
    };
    tokio::select! {
        biased;
        first = rx.recv() => match first {
            Some(ev) => stream(Some(ev), rx, fut),
            // The queue overflowed before anything was read.
            None => rpc_error(StatusCode::SERVICE_UNAVAILABLE, code::INTERNAL_ERROR, "the request's event stream overflowed"),
        },
        reply = &mut fut => match rx.try_recv() {
            // Something was said before the answer: keep the order on an event stream.
            Some(ev) => {
                let done: Handling = Box::pin(async move { reply });
                stream(Some(ev), rx, done)
            }
            None => json_or_nothing(reply),
        },
    }
}

/// Closes the connection at once if `overflow` fires before `done`: the client stopped
/// reading, so the server cannot rely on the stream being polled to end it.
pub(crate) fn cut_on_overflow(
    cut: Option<ConnectionCut>,
    overflow: WaitForCancellationFutureOwned,
    done: CancellationToken,
) {
    let Some(ConnectionCut(cut)) = cut else {
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            biased;
            _ = overflow => cut.cancel(),
            _ = done.cancelled() => {}
        }
    });
}

fn json_or_nothing(reply: Option<String>) -> Response {
    match reply {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        // The client cancelled the request: nothing to say.
        None => StatusCode::ACCEPTED.into_response(),
    }
}

/// Events already queued, then the rest while the request runs, then its answer.
fn stream_rest(
    first: Option<String>,
    rx: Inbox,
    fut: Handling,
) -> impl Stream<Item = String> + Send {
    enum St {
        Running(Inbox, Handling),
        Draining(Inbox, Option<String>),
        Done,
    }
    let head = stream::iter(first);
    let tail = stream::unfold(St::Running(rx, fut), |st| async move {
        match st {
            St::Running(mut rx, mut fut) => {
                tokio::select! {
                    biased;
                    Some(ev) = rx.recv() => Some((Some(ev), St::Running(rx, fut))),
                    reply = &mut fut => Some((None, St::Draining(rx, reply))),
                }
            }
            St::Draining(mut rx, reply) => match rx.try_recv() {
                Some(ev) => Some((Some(ev), St::Draining(rx, reply))),
                None => reply.map(|r| (Some(r), St::Done)),
            },
            St::Done => None,
        }
    })
    .filter_map(|x| async move { x });
    head.chain(tail)
}

/// `GET /mcp[/{name}]`: the session's stream of unsolicited messages.
pub(crate) async fn get(
    CallerHub(hub, credentials): CallerHub,
    cut: Option<Extension<ConnectionCut>>,
    name: Option<Path<String>>,
    headers: HeaderMap,
) -> Response {
    let accepts_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream") || a.contains("*/*"));
    if !accepts_sse {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Not Acceptable: GET needs Accept: text/event-stream",
        );
    }
    let view = match view_for(&hub, name.as_deref().map(String::as_str)) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let session = match session_for(&hub, &headers, &view, credentials.as_ref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(guard) = session.attach_stream() else {
        return rpc_error(
            StatusCode::CONFLICT,
            code::INVALID_REQUEST,
            "Conflict: this session already has a GET stream open",
        );
    };
    let done = session.closed.child_token();
    cut_on_overflow(
        cut.map(|Extension(c)| c),
        session.sender().overflowed(),
        done.clone(),
    );
    let state = (guard, done.drop_guard());
    let messages = stream::unfold(
        state,
        |mut st| async move { st.0.recv().await.map(|m| (m, st)) },
    );
    with_keepalive(messages)
}

/// An event stream of messages with a comment every 15 s so proxies keep it open.
pub(crate) fn with_keepalive(messages: impl Stream<Item = String> + Send + 'static) -> Response {
    with_keepalive_raw(messages.map(|m| Bytes::from(sse::encode(Some("message"), None, &m))))
}

/// An event stream of pre-encoded events, with keep-alive comments, ending with `events`.
pub(crate) fn with_keepalive_raw(events: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    let ticks = tokio_stream_interval(Duration::from_secs(15))
        .map(|_| Bytes::from_static(b": keepalive\n\n"));
    let merged = stream::select(
        events.map(Some).chain(stream::iter([None])),
        ticks.map(Some),
    )
    .take_while(|x| std::future::ready(x.is_some()))
    .map(|x| Ok::<_, Infallible>(x.expect("filtered")));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(merged))
        .expect("static headers are valid")
}

fn tokio_stream_interval(period: Duration) -> impl Stream<Item = ()> + Send {
    stream::unfold(
        tokio::time::interval_at(tokio::time::Instant::now() + period, period),
        |mut iv| async move {
            iv.tick().await;
            Some(((), iv))
        },
    )
}

/// `DELETE /mcp[/{name}]`: ends the session.
pub(crate) async fn delete(CallerHub(hub, _): CallerHub, headers: HeaderMap) -> Response {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "Bad Request: missing Mcp-Session-Id header",
        );
    };
    if hub.end_session(id).await {
        StatusCode::OK.into_response()
    } else {
        rpc_error(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            "Session not found",
        )
    }
}
