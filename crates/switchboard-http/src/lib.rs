//! Switchboard's HTTP side: the MCP service (Streamable HTTP at `/mcp`, legacy SSE at `/sse`)
//! and the main service (health and readiness), as axum routers, plus a server loop that sets
//! `TCP_NODELAY` on every accepted socket.

// Handlers return `Result<_, Response>` so a rejection is a finished response.
#![allow(clippy::result_large_err)]

pub mod api;
mod legacy_sse;
mod modern;
mod origin;
mod streamable;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde_json::json;
use switchboard_hub::Hub;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use api::{AdminAuth, ApiError, ApiState, McpServiceClient};

/// Largest accepted request body.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// The MCP service with the seed's internal management routes (`/healthcheck`,
/// `/list-remote-proxies`, `/add-remote-proxies`, `/remote-proxies`).
pub fn mcp_service(hub: Hub, api: ApiState) -> Router {
    mcp_router(hub).merge(
        api::seed::mcp_routes()
            .layer(DefaultBodyLimit::max(1 << 20))
            .with_state(api),
    )
}

/// The main service: health, the REST API v1 and the seed's `/api/mcp/*` routes.
pub fn main_service(api: ApiState) -> Router {
    let hub = api.control.hub().clone();
    let management = api::v1::routes()
        .merge(api::seed::main_routes())
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(api);
    main_router(hub).merge(management)
}

/// The MCP service: `/mcp`, `/mcp/{name}`, `/sse`, `/sse/{name}`, `/messages`.
pub fn mcp_router(hub: Hub) -> Router {
    Router::new()
        .route(
            "/mcp",
            get(streamable::get)
                .post(streamable::post)
                .delete(streamable::delete),
        )
        .route(
            "/mcp/",
            get(streamable::get)
                .post(streamable::post)
                .delete(streamable::delete),
        )
        .route(
            "/mcp/{name}",
            get(streamable::get)
                .post(streamable::post)
                .delete(streamable::delete),
        )
        .route("/sse", get(legacy_sse::open))
        .route("/sse/{name}", get(legacy_sse::open))
        .route("/messages", post(legacy_sse::message))
        .route("/message", post(legacy_sse::message))
        .merge(health_routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(hub)
}

/// Health and readiness only.
pub fn main_router(hub: Hub) -> Router {
    health_routes().with_state(hub)
}

fn health_routes() -> Router<Hub> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn ready(State(hub): State<Hub>) -> impl IntoResponse {
    let servers = hub.servers();
    let ready = servers.iter().filter(|s| s.state == "ready").count();
    Json(json!({"status": "ok", "servers": servers.len(), "ready": ready}))
}

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(message = "Cannot set TCP_NODELAY.", error = %e);
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
