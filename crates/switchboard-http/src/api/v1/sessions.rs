//! Proxy-session routes (seed 002): open a session to a remote MCP server, use its tools,
//! resources and prompts over REST (tool calls optionally streamed as NDJSON), refresh it,
//! close it. Plus `/api/v1/health` and `/api/v1/health/detailed`. The tenant-wide list and
//! closing by prefix are in `session_list.rs`.
//!
//! Bodies: malformed JSON is 400 (`bad_request`, like every management route); JSON of the wrong
//! shape (a missing `remote_url`, a string where an object belongs, `ttl_seconds: 0`) is 422
//! (`invalid_body`). An unknown or expired session id is 404; an URL the SSRF policy refuses is
//! 400 (`ssrf_refused`); too many sessions is 429 (`session_limit`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Json, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchboard_control::{ControlError, ControlPlane, NewSession, SessionHandle, SessionView};
use switchboard_core::jsonrpc::{Envelope, quote};
use switchboard_upstream::ListKind;
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::ApiErrorBody;
use super::{ApiResult, ApiState, Caller, path, query};
use crate::api::{ApiError, control_for};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_session))
        .routes(routes!(describe_session, close_session))
        .routes(routes!(refresh_session))
        .routes(routes!(session_tools))
        .routes(routes!(session_discover))
        .routes(routes!(session_call_tool))
        .routes(routes!(session_prompt))
        .routes(routes!(session_rpc))
        .routes(routes!(session_ping))
        .routes(routes!(health))
        .routes(routes!(health_detailed))
}

/// `GET .../resources/{uri}` is served with a catch-all segment so URIs may carry raw slashes;
/// it is documented through [`super::ApiDoc`] instead of `routes!`.
pub(super) fn resource_route() -> axum::Router<ApiState> {
    axum::Router::new().route(
        "/api/v1/server/{id}/resources/{*uri}",
        axum::routing::get(session_resource),
    )
}

// ---- bodies and answers ----

/// `POST /api/v1/server`.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct CreateSession {
    /// The remote MCP server's URL (http or https; must pass the SSRF policy).
    remote_url: String,
    /// Bearer token for the remote, sent as `Authorization: Bearer <token>` unless `headers`
    /// has an `Authorization` header (which wins).
    #[serde(default)]
    token: Option<String>,
    /// Headers sent on every request to the remote. Kept in memory and, encrypted, in the store;
    /// never logged or shown.
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// Lifetime in seconds (default 1800; values above the cap, 86400 by default, are cut to it).
    #[serde(default)]
    ttl_seconds: Option<u64>,
    /// `streamable-http` or `sse`; inferred from the URL when absent (a path ending in `/sse`
    /// means legacy SSE).
    #[serde(default)]
    transport: Option<String>,
}

/// A session as the API shows it (schema of [`SessionView`]).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct SessionDoc {
    /// The session id (only in the answer to `POST /api/v1/server`): keep it secret.
    session_id: Option<String>,
    /// The prefix of its tools on `/mcp` (`{prefix}__{tool}`).
    prefix: String,
    /// The remote URL.
    remote_url: String,
    /// `streamable-http` or `sse`.
    transport: String,
    /// Expiry, RFC 3339 UTC.
    expires_at: String,
    /// Expiry, Unix milliseconds.
    expires_at_ms: i64,
    /// The lifetime a refresh grants, in seconds.
    ttl_seconds: i64,
    /// Connection state on the replica that answered.
    state: String,
    /// Whether the replica that answered has it mounted.
    mounted_here: bool,
    /// Who opened it (`user:alice`, `user:alice (key …)`, `admin-token`).
    created_by: String,
    /// When it was opened, RFC 3339 UTC.
    created_at: String,
    /// When it was opened, Unix milliseconds.
    created_at_ms: i64,
}

/// `POST /api/v1/server/{id}/refresh` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(super) struct Refresh {
    /// New lifetime from now, in seconds (default: the session's own).
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

/// The new expiry.
#[derive(Serialize, ToSchema)]
pub(super) struct Refreshed {
    /// RFC 3339 UTC.
    new_expires_at: String,
    /// Unix milliseconds.
    new_expires_at_ms: i64,
}

/// `POST /api/v1/server/{id}/tools/{name}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(super) struct CallTool {
    /// The tool's arguments (an object; relayed as sent).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    arguments: Option<Box<RawValue>>,
    /// Stream NDJSON frames (`progress`, `log`, then `result` or `error`, then `done`).
    #[serde(default)]
    stream: bool,
}

/// `POST /api/v1/server/{id}/rpc`.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct Rpc {
    /// Any MCP method except `initialize` and notifications.
    method: String,
    /// Its params (relayed as sent).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    params: Option<Box<RawValue>>,
}

/// `?arguments=<JSON object>` of `GET .../prompts/{name}`.
#[derive(Debug, Deserialize)]
struct PromptQuery {
    arguments: Option<String>,
}

pub(super) type SessionPath = Result<Path<String>, PathRejection>;
type ItemPath = Result<Path<(String, String)>, PathRejection>;

/// The control plane of the caller's tenant.
fn control(st: &ApiState, who: &Caller) -> ApiResult<Arc<ControlPlane>> {
    control_for(st, who)
}

/// 422 for JSON of the wrong shape.
fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message)
}

/// Parses a JSON body: empty means `T::default()` when `allow_empty`; malformed JSON is 400,
/// the wrong shape 422.
fn parse_body<T: serde::de::DeserializeOwned + Default>(
    bytes: &Bytes,
    allow_empty: bool,
) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if allow_empty {
            return Ok(T::default());
        }
        return Err(ApiError::bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => unprocessable(format!("invalid body: {e}")),
        _ => ApiError::bad_request(format!("invalid JSON body: {e}")),
    })
}

/// Raw JSON text as a 200 response (relayed bytes are not re-encoded).
fn raw_json(text: String) -> Response {
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The `result` of a reply as a response, or its `error` as a 502.
fn relay(prefix: &str, reply: &str) -> ApiResult<Response> {
    let env = Envelope::parse(reply).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("session {prefix}: the remote sent an invalid reply: {e}"),
        )
    })?;
    if let Some(result) = env.result {
        return Ok(raw_json(result.get().to_string()));
    }
    let error: Value = env
        .error
        .and_then(|e| serde_json::from_str(e.get()).ok())
        .unwrap_or(Value::Null);
    let code = error["code"].as_i64().unwrap_or(0);
    let message = error["message"].as_str().unwrap_or("no message");
    Err(ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        format!("session {prefix}: the remote answered error {code}: {message}"),
    ))
}

async fn open(st: &ApiState, who: &Caller, id: SessionPath) -> ApiResult<SessionHandle> {
    let id = path(id)?;
    Ok(control(st, who)?.session(&id).await?)
}

// ---- lifecycle ----

/// Open a session to a remote MCP server.
///
/// Checks the URL against the SSRF policy, connects, initializes and lists the remote's
/// tools, then records the session. Its tools also appear on `/mcp` as `{prefix}__{tool}`
/// until it ends.
#[utoipa::path(post, path = "/api/v1/server", tag = "sessions",
    request_body = CreateSession,
    responses(
        (status = 200, description = "Connected; keep `session_id` secret", body = SessionDoc),
        (status = 400, body = ApiErrorBody,
            description = "Malformed JSON, a bad URL or transport (`invalid`), or an URL the SSRF policy refuses (`ssrf_refused`)"),
        (status = 422, description = "JSON of the wrong shape, e.g. no `remote_url`", body = ApiErrorBody),
        (status = 429, description = "Too many sessions (`session_limit`)", body = ApiErrorBody),
        (status = 503, description = "The remote did not answer (`unreachable`)", body = ApiErrorBody)))]
async fn create_session(
    who: Caller,
    State(st): State<ApiState>,
    bytes: Bytes,
) -> ApiResult<Json<SessionView>> {
    let input: CreateSession = parse_body_required(&bytes)?;
    if input.remote_url.trim().is_empty() {
        return Err(unprocessable("remote_url must not be empty"));
    }
    if input.ttl_seconds == Some(0) {
        return Err(unprocessable("ttl_seconds must be at least 1"));
    }
    let view = control(&st, &who)?
        .create_session(
            NewSession {
                remote_url: input.remote_url,
                token: input.token,
                headers: input.headers.unwrap_or_default(),
                ttl_seconds: input.ttl_seconds,
                transport: input.transport,
            },
            &who.0.actor(),
        )
        .await?;
    Ok(Json(view))
}

/// Like [`parse_body`] for bodies without a default (an empty body is 400).
fn parse_body_required<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => unprocessable(format!("invalid body: {e}")),
        _ => ApiError::bad_request(format!("invalid JSON body: {e}")),
    })
}

/// Show a session (without its id or secrets).
#[utoipa::path(get, path = "/api/v1/server/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = SessionDoc),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody)))]
async fn describe_session(
    who: Caller,
    State(st): State<ApiState>,
    id: SessionPath,
) -> ApiResult<Json<SessionView>> {
    let id = path(id)?;
    Ok(Json(control(&st, &who)?.describe_session(&id).await?))
}

/// Close a session: its record is deleted and its upstream connection closed.
#[utoipa::path(delete, path = "/api/v1/server/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "Closed", body = Object),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody)))]
async fn close_session(
    who: Caller,
    State(st): State<ApiState>,
    id: SessionPath,
) -> ApiResult<Json<Value>> {
    let id = path(id)?;
    control(&st, &who)?.close_session(&id).await?;
    Ok(Json(
        json!({"status": "success", "message": "session closed"}),
    ))
}

/// Extend a session's lifetime from now.
#[utoipa::path(post, path = "/api/v1/server/{id}/refresh", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body(content = Option<Refresh>, description = "Optional; `{}` or no body keeps the session's lifetime"),
    responses(
        (status = 200, description = "Extended", body = Refreshed),
        (status = 400, description = "Malformed JSON", body = ApiErrorBody),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ApiErrorBody)))]
async fn refresh_session(
    who: Caller,
    State(st): State<ApiState>,
    id: SessionPath,
    bytes: Bytes,
) -> ApiResult<Json<Refreshed>> {
    let id = path(id)?;
    let input: Refresh = parse_body(&bytes, true)?;
    if input.ttl_seconds == Some(0) {
        return Err(unprocessable("ttl_seconds must be at least 1"));
    }
    let at = control(&st, &who)?
        .refresh_session(&id, input.ttl_seconds)
        .await?;
    Ok(Json(Refreshed {
        new_expires_at: switchboard_control::sessions::rfc3339(at),
        new_expires_at_ms: at,
    }))
}

// ---- using the remote ----

/// `{"prefix":…,"tools":[…]}` from the session's catalog (the remote's own tool objects).
fn tool_list(handle: &SessionHandle) -> Response {
    let catalog = handle.upstream().catalog();
    let tools: Vec<&str> = catalog
        .list(ListKind::Tools)
        .iter()
        .map(|t| t.raw.get())
        .collect();
    raw_json(format!(
        r#"{{"prefix":{},"tools":[{}]}}"#,
        quote(&handle.prefix),
        tools.join(",")
    ))
}

/// List the remote's tools.
#[utoipa::path(get, path = "/api/v1/server/{id}/tools", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "`{\"prefix\":…,\"tools\":[…]}` with the remote's tool objects", body = Object),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody),
        (status = 503, description = "The remote cannot be reached", body = ApiErrorBody)))]
async fn session_tools(
    who: Caller,
    State(st): State<ApiState>,
    id: SessionPath,
) -> ApiResult<Response> {
    Ok(tool_list(&open(&st, &who, id).await?))
}

/// List the remote's tools (alias of `/tools`).
#[utoipa::path(get, path = "/api/v1/server/{id}/discover", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "Same as `/tools`", body = Object),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody)))]
async fn session_discover(
    who: Caller,
    State(st): State<ApiState>,
    id: SessionPath,
) -> ApiResult<Response> {
    Ok(tool_list(&open(&st, &who, id).await?))
}

/// Call a tool of the remote.
///
/// Without `stream`, the tool's result as JSON. With `"stream": true`, an
/// `application/x-ndjson` body, one JSON object per line, flushed as they happen:
/// `{"type":"progress",…}` and `{"type":"log",…}` while the tool runs, then one
/// `{"type":"result","result":…}` or `{"type":"error","error":…}`, then `{"type":"done"}`.
/// Closing the connection early cancels the call on the remote.
#[utoipa::path(post, path = "/api/v1/server/{id}/tools/{name}", tag = "sessions",
    params(("id" = String, Path, description = "Session id"),
           ("name" = String, Path, description = "Tool name as the remote spells it")),
    request_body = CallTool,
    responses(
        (status = 200, description = "The `tools/call` result, or with `stream` an NDJSON stream of frames",
            content((Object = "application/json"), (String = "application/x-ndjson"))),
        (status = 400, description = "Malformed JSON", body = ApiErrorBody),
        (status = 404, description = "Unknown or expired session, or a tool the remote does not list", body = ApiErrorBody),
        (status = 422, description = "JSON of the wrong shape (e.g. `arguments` not an object)", body = ApiErrorBody),
        (status = 502, description = "The remote answered with an error", body = ApiErrorBody),
        (status = 504, description = "The remote did not answer in time", body = ApiErrorBody)))]
async fn session_call_tool(
    who: Caller,
    State(st): State<ApiState>,
    p: ItemPath,
    bytes: Bytes,
) -> ApiResult<Response> {
    let (id, name) = path(p)?;
    let input: CallTool = parse_body(&bytes, true)?;
    let arguments = match &input.arguments {
        Some(a) if a.get().trim_start().starts_with('{') => a.get(),
        Some(a) if a.get() == "null" => "{}",
        Some(_) => return Err(unprocessable("arguments must be a JSON object")),
        None => "{}",
    };
    let handle = control(&st, &who)?.session(&id).await?;
    let catalog = handle.upstream().catalog();
    let tools = catalog.list(ListKind::Tools);
    if !tools.is_empty() && !tools.iter().any(|t| t.key == name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "session {} has no tool {name:?} (GET /api/v1/server/{{id}}/tools lists them)",
                handle.prefix
            ),
        ));
    }
    let params = format!(r#"{{"name":{},"arguments":{arguments}}}"#, quote(&name));
    if input.stream {
        return Ok(stream_call(handle, params));
    }
    let reply = handle.request("tools/call", Some(&params), None).await?;
    relay(&handle.prefix, &reply)
}

/// Runs the call in a task that writes NDJSON lines into the response body as they happen.
/// When the client goes away the body (and its receiver) is dropped; the task notices, drops
/// the call, and the connection sends `notifications/cancelled` upstream.
fn stream_call(handle: SessionHandle, params: String) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let (ntx, mut nrx) = mpsc::channel::<String>(64);
        let call = handle.request("tools/call", Some(&params), Some(ntx));
        tokio::pin!(call);
        let mut notes_open = true;
        let outcome = loop {
            tokio::select! {
                biased;
                _ = tx.closed() => return,
                n = nrx.recv(), if notes_open => match n {
                    Some(text) => {
                        if tx.send(line(notification_frame(&text))).await.is_err() {
                            return;
                        }
                    }
                    None => notes_open = false,
                },
                r = &mut call => break r,
            }
        };
        while let Ok(text) = nrx.try_recv() {
            let _ = tx.send(line(notification_frame(&text))).await;
        }
        let last = match outcome {
            Ok(reply) => reply_frame(&reply),
            Err(e) => error_frame(&e),
        };
        let _ = tx.send(line(last)).await;
        let _ = tx.send(line(r#"{"type":"done"}"#.to_string())).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn line(mut frame: String) -> Bytes {
    frame.push('\n');
    Bytes::from(frame)
}

/// A notification the remote sent during the call, as a frame: `progress` (params without the
/// token), `log` (`notifications/message` params), or `notification` (method and params).
fn notification_frame(text: &str) -> String {
    let Ok(env) = Envelope::parse(text) else {
        return json!({"type": "notification", "raw": text}).to_string();
    };
    let method = env.method.as_deref().unwrap_or("");
    let params: serde_json::Map<String, Value> = env
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    let mut frame = serde_json::Map::new();
    match method {
        "notifications/progress" => {
            frame.insert("type".into(), "progress".into());
            frame.extend(params.into_iter().filter(|(k, _)| k != "progressToken"));
        }
        "notifications/message" => {
            frame.insert("type".into(), "log".into());
            frame.extend(params);
        }
        other => {
            frame.insert("type".into(), "notification".into());
            frame.insert("method".into(), other.into());
            frame.insert("params".into(), Value::Object(params));
        }
    }
    Value::Object(frame).to_string()
}

/// The reply's `result` or `error`, relayed as raw JSON inside the frame.
fn reply_frame(reply: &str) -> String {
    match Envelope::parse(reply) {
        Ok(env) => match (env.result, env.error) {
            (Some(r), _) => format!(r#"{{"type":"result","result":{}}}"#, r.get()),
            (None, Some(e)) => format!(r#"{{"type":"error","error":{}}}"#, e.get()),
            (None, None) => error_json(-32603, "the remote's reply had neither result nor error"),
        },
        Err(e) => error_json(-32603, &format!("the remote sent an invalid reply: {e}")),
    }
}

fn error_frame(e: &ControlError) -> String {
    let code = match e {
        ControlError::Timeout(_) => switchboard_core::jsonrpc::code::REQUEST_TIMEOUT,
        _ => switchboard_core::jsonrpc::code::INTERNAL_ERROR,
    };
    error_json(code, &e.to_string())
}

fn error_json(code: i64, message: &str) -> String {
    json!({"type": "error", "error": {"code": code, "message": message}}).to_string()
}

/// Read a resource of the remote.
///
/// The URI is the rest of the path; percent-encode it (`demo%3A%2F%2Fdoc`) or send its slashes
/// as they are.
#[utoipa::path(get, path = "/api/v1/server/{id}/resources/{uri}", tag = "sessions",
    params(("id" = String, Path, description = "Session id"),
           ("uri" = String, Path, description = "Resource URI (the rest of the path)")),
    responses(
        (status = 200, description = "The `resources/read` result", body = Object),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody),
        (status = 502, description = "The remote answered with an error (e.g. unknown resource)", body = ApiErrorBody)))]
pub(super) async fn session_resource(
    who: Caller,
    State(st): State<ApiState>,
    p: ItemPath,
) -> ApiResult<Response> {
    let (id, uri) = path(p)?;
    let handle = control(&st, &who)?.session(&id).await?;
    let params = format!(r#"{{"uri":{}}}"#, quote(&uri));
    let reply = handle
        .request("resources/read", Some(&params), None)
        .await?;
    relay(&handle.prefix, &reply)
}

/// Get a prompt of the remote.
#[utoipa::path(get, path = "/api/v1/server/{id}/prompts/{name}", tag = "sessions",
    params(("id" = String, Path, description = "Session id"),
           ("name" = String, Path, description = "Prompt name"),
           ("arguments" = Option<String>, Query, description = "The prompt's arguments as a JSON object")),
    responses(
        (status = 200, description = "The `prompts/get` result", body = Object),
        (status = 400, description = "`arguments` is not a JSON object", body = ApiErrorBody),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody),
        (status = 502, description = "The remote answered with an error", body = ApiErrorBody)))]
async fn session_prompt(
    who: Caller,
    State(st): State<ApiState>,
    p: ItemPath,
    q: Result<Query<PromptQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let (id, name) = path(p)?;
    let q = query(q)?;
    let arguments = match q.arguments.as_deref().map(str::trim) {
        None | Some("") => "{}".to_string(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Value::Object(m).to_string(),
            _ => {
                return Err(ApiError::bad_request(
                    "arguments must be a JSON object, e.g. ?arguments=%7B%22city%22%3A%22Oslo%22%7D",
                ));
            }
        },
    };
    let handle = control(&st, &who)?.session(&id).await?;
    let params = format!(r#"{{"name":{},"arguments":{arguments}}}"#, quote(&name));
    let reply = handle.request("prompts/get", Some(&params), None).await?;
    relay(&handle.prefix, &reply)
}

/// Send any MCP request to the remote.
#[utoipa::path(post, path = "/api/v1/server/{id}/rpc", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body = Rpc,
    responses(
        (status = 200, description = "The method's result", body = Object),
        (status = 400, description = "Malformed JSON, or a method the session manages itself", body = ApiErrorBody),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody),
        (status = 422, description = "JSON of the wrong shape (e.g. no `method`)", body = ApiErrorBody),
        (status = 502, description = "The remote answered with an error", body = ApiErrorBody)))]
async fn session_rpc(
    who: Caller,
    State(st): State<ApiState>,
    id: SessionPath,
    bytes: Bytes,
) -> ApiResult<Response> {
    let id = path(id)?;
    let input: Rpc = parse_body_required(&bytes)?;
    if input.method == "initialize" || input.method.starts_with("notifications/") {
        return Err(ApiError::bad_request(format!(
            "{:?} is managed by the session itself and cannot be sent through /rpc",
            input.method
        )));
    }
    if let Some(p) = &input.params
        && !p.get().trim_start().starts_with('{')
    {
        return Err(unprocessable("params must be a JSON object"));
    }
    let handle = control(&st, &who)?.session(&id).await?;
    let reply = handle
        .request(
            &input.method,
            input.params.as_deref().map(RawValue::get),
            None,
        )
        .await?;
    relay(&handle.prefix, &reply)
}

/// Ping the remote.
#[utoipa::path(get, path = "/api/v1/server/{id}/ping", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "`{\"status\":\"ok\",\"latency_ms\":…}`", body = Object),
        (status = 404, description = "Unknown or expired session", body = ApiErrorBody),
        (status = 503, description = "The remote cannot be reached", body = ApiErrorBody)))]
async fn session_ping(
    who: Caller,
    State(st): State<ApiState>,
    id: SessionPath,
) -> ApiResult<Json<Value>> {
    let handle = open(&st, &who, id).await?;
    let started = std::time::Instant::now();
    let reply = handle.request("ping", None, None).await?;
    relay(&handle.prefix, &reply)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Json(
        json!({"status": "ok", "prefix": handle.prefix, "latency_ms": (ms * 1000.0).round() / 1000.0}),
    ))
}

// ---- health ----

/// Liveness (no authentication, no tenant data).
#[utoipa::path(get, path = "/api/v1/health", tag = "sessions", security(()),
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = Object)))]
async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// Health with the caller's servers and sessions (`list`: the sessions the caller may see, as
/// in `GET /api/v1/sessions`; `live` counts all of the tenant's).
#[utoipa::path(get, path = "/api/v1/health/detailed", tag = "sessions",
    responses((status = 200, description = "Servers, sessions and limits", body = Object)))]
async fn health_detailed(who: Caller, State(st): State<ApiState>) -> ApiResult<Json<Value>> {
    let control = control(&st, &who)?;
    let servers = control.hub().servers();
    let ready = servers.iter().filter(|s| s.state == "ready").count();
    let sessions = control.list_sessions().await?;
    let live = sessions.len();
    let sessions = super::session_list::visible(&who.0, sessions);
    let limits = &control.config().sessions;
    Ok(Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "servers": {"total": servers.len(), "ready": ready},
        "sessions": {
            "live": live,
            "mounted_here": control.mounted_sessions(),
            "mounted_here_all_tenants": limits.live.load(std::sync::atomic::Ordering::Relaxed),
            "max_per_tenant": limits.max_per_tenant,
            "max_total": limits.max_total,
            "default_ttl_seconds": limits.default_ttl.as_secs(),
            "max_ttl_seconds": limits.max_ttl.as_secs(),
            "list": sessions,
        },
    })))
}
