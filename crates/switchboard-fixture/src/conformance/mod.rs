//! `--conformance` mode: an MCP server exposing exactly what the server
//! scenarios of the official conformance suite (`@modelcontextprotocol/conformance`,
//! 0.1.16 and 0.2.0-alpha.12) call, under the names they expect: tools such as
//! `test_simple_text`, `test_sampling`, `test_tool_with_progress` and the
//! `test_input_required_result_*` family, resources such as `test://static-text`,
//! prompts such as `test_prompt_with_arguments`, completion, logging,
//! subscriptions, and the diagnostic hooks of the stateless `server-stateless`
//! scenario (`test_missing_capability`, `test_trigger_tool_change`, ...).
//!
//! One handler ([`ConformanceServer`]) answers both eras:
//!
//! * legacy sessions (≤ 2025-11-25, `initialize`) get real server→client
//!   requests (`sampling/createMessage`, `elicitation/create`, `roots/list`),
//!   `logging/setLevel` and `resources/subscribe`;
//! * stateless 2026-07-28 requests get the same tools as Multi Round-Trip
//!   Requests (`resultType: "input_required"` + `requestState`), per-request log
//!   levels, `server/discover` and `subscriptions/listen`.
//!
//! Every tool that needs input from the client is written once, as a
//! [`flows`] state machine; the era decides who drives it (the client, through
//! MRTR retries, or the server itself, through real requests on the session).
//!
//! Transports: Streamable HTTP at `/mcp` ([`serve_http`]), stdio
//! ([`serve_stdio`]) and the legacy HTTP+SSE transport at `/sse` + `/messages`
//! ([`serve_sse`]).

mod data;
mod flows;
mod handler;
mod sse;
mod state;
mod tasks;
#[cfg(test)]
mod tests;

use std::{io, sync::Arc};

use axum::Router;
use rmcp::{
    service::serve_server,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use handler::ConformanceServer;

use crate::handle::serve_router;

/// The `/mcp` router: rmcp's Streamable HTTP service in its default dual-era
/// configuration (sessions for `initialize`d legacy clients, stateless
/// handling of 2026-07-28 requests) with Host validation left on (loopback
/// names only), which the `dns-rebinding-protection` scenario checks.
fn http_router(server: &ConformanceServer, ct: &CancellationToken) -> Router {
    let config = StreamableHttpServerConfig::default().with_cancellation_token(ct.child_token());
    let server = server.clone();
    let service = StreamableHttpService::new(
        move || Ok(server.new_session()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new().route_service("/mcp", service)
}

/// Serves the conformance server over Streamable HTTP at `/mcp` on `listener`
/// until `ct` is cancelled.
pub async fn serve_http(listener: TcpListener, ct: CancellationToken) -> io::Result<()> {
    let app = http_router(&ConformanceServer::new(), &ct);
    serve_router(listener, app, ct).await
}

/// Serves the conformance server over the legacy HTTP+SSE transport
/// (`GET /sse`, `POST /messages?sessionId=`) on `listener` until `ct` is
/// cancelled.
pub async fn serve_sse(listener: TcpListener, ct: CancellationToken) -> io::Result<()> {
    let app = sse::router(ConformanceServer::new(), ct.clone());
    serve_router(listener, app, ct).await
}

/// Serves one conformance session on stdin/stdout until stdin closes.
pub async fn serve_stdio() -> io::Result<()> {
    let running = serve_server(ConformanceServer::new(), rmcp::transport::stdio())
        .await
        .map_err(io::Error::other)?;
    let reason = running.waiting().await;
    tracing::debug!(?reason, "conformance stdio session ended");
    Ok(())
}
