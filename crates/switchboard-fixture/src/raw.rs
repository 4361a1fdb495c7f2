//! A scripted Streamable HTTP endpoint for byte-fidelity tests.
//!
//! It never goes through rmcp's typed model: results are configured as raw
//! JSON text and spliced verbatim into `{"jsonrpc":"2.0","id":<id>,"result":<raw>}`,
//! with the request id copied byte for byte. Every POST body is recorded.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::{FixtureServer, FixtureStats, handle::spawn_router};

/// Session id header of the Streamable HTTP transport.
const SESSION_HEADER: &str = "mcp-session-id";

/// Protocol version answered when `initialize` names none.
const FALLBACK_PROTOCOL_VERSION: &str = "2025-06-18";

/// The raw `result` texts the raw server answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponses {
    /// `serverInfo.name` in the `initialize` result.
    pub server_name: String,
    /// Raw JSON spliced in as the `tools/list` result.
    pub tools_list: String,
    /// Raw JSON spliced in as the `tools/call` result (for every tool).
    pub tools_call: String,
    /// Raw JSON results for any other request method (e.g. `resources/list`).
    pub methods: BTreeMap<String, String>,
}

impl Default for RawResponses {
    fn default() -> Self {
        Self {
            server_name: "raw-fixture".to_owned(),
            tools_list: r#"{"tools":[{"name":"raw_echo","description":"scripted","inputSchema":{"type":"object"}}]}"#
                .to_owned(),
            tools_call: r#"{"content":[{"type":"text","text":"raw"}],"isError":false}"#.to_owned(),
            methods: BTreeMap::new(),
        }
    }
}

impl RawResponses {
    /// Responses with the given raw `tools/list` and `tools/call` results.
    pub fn new(tools_list: impl Into<String>, tools_call: impl Into<String>) -> Self {
        Self {
            tools_list: tools_list.into(),
            tools_call: tools_call.into(),
            ..Self::default()
        }
    }

    /// Adds a raw result for another request method.
    #[must_use]
    pub fn with_method(mut self, method: impl Into<String>, raw_result: impl Into<String>) -> Self {
        self.methods.insert(method.into(), raw_result.into());
        self
    }
}

struct RawState {
    responses: RawResponses,
    session_id: String,
    received: Arc<Mutex<Vec<String>>>,
    stats: FixtureStats,
}

/// The parts of a JSON-RPC message the raw server looks at.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InitializeParams {
    #[serde(rename = "protocolVersion")]
    protocol_version: Option<String>,
}

fn json_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn error_body(id: &str, code: i32, message: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{}}}}}"#,
        json_string(message)
    )
}

async fn handle_post(State(state): State<Arc<RawState>>, body: Bytes) -> Response {
    state
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(String::from_utf8_lossy(&body).into_owned());

    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(&body) else {
        let mut response = json_response(error_body("null", -32700, "Parse error"));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    // Notifications and client responses carry no reply.
    let (Some(id), Some(method)) = (envelope.id, envelope.method.as_deref()) else {
        return StatusCode::ACCEPTED.into_response();
    };
    let id = id.get();
    let result = match method {
        "initialize" => {
            let version = envelope
                .params
                .and_then(|p| serde_json::from_str::<InitializeParams>(p.get()).ok())
                .and_then(|p| p.protocol_version)
                .unwrap_or_else(|| FALLBACK_PROTOCOL_VERSION.to_owned());
            let result = format!(
                r#"{{"protocolVersion":{},"capabilities":{{"tools":{{"listChanged":true}}}},"serverInfo":{{"name":{},"version":{}}}}}"#,
                json_string(&version),
                json_string(&state.responses.server_name),
                json_string(env!("CARGO_PKG_VERSION")),
            );
            let mut response = json_response(format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#
            ));
            if let Ok(value) = HeaderValue::from_str(&state.session_id) {
                response.headers_mut().insert(SESSION_HEADER, value);
            }
            return response;
        }
        "ping" => "{}",
        "tools/list" => state.responses.tools_list.as_str(),
        "tools/call" => {
            state.stats.record_call();
            state.responses.tools_call.as_str()
        }
        other => match state.responses.methods.get(other) {
            Some(raw) => raw.as_str(),
            None => {
                return json_response(error_body(
                    id,
                    -32601,
                    &format!("method not found: {other}"),
                ));
            }
        },
    };
    json_response(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#
    ))
}

/// Starts the raw Streamable HTTP server on `127.0.0.1:0`; `url` is
/// `http://<addr>/mcp` and [`FixtureServer::received`] lists the POST bodies.
///
/// `GET /mcp` answers 405 (no server-initiated stream) and `DELETE /mcp`
/// answers 200.
///
/// # Panics
///
/// If no loopback port can be bound (this is a test helper).
pub async fn spawn_raw_http(responses: RawResponses) -> FixtureServer {
    let received = Arc::new(Mutex::new(Vec::new()));
    let stats = FixtureStats::default();
    let mut session_bytes = [0u8; 16];
    let _ = getrandom::fill(&mut session_bytes);
    let session_id: String = session_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let state = Arc::new(RawState {
        responses,
        session_id,
        received: received.clone(),
        stats: stats.clone(),
    });
    let app = Router::new()
        .route(
            "/mcp",
            post(handle_post)
                .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(state);
    spawn_router(app, "/mcp", CancellationToken::new(), stats, received)
        .await
        .expect("bind the raw fixture server on 127.0.0.1")
}
