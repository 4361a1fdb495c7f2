//! Streamable HTTP mode: rmcp's `StreamableHttpService` mounted at `/mcp`.

use std::sync::Arc;

use axum::Router;
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::local::LocalSessionManager,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    FixtureOptions, FixtureServer,
    handle::{serve_router, spawn_router},
    server::Fixture,
};

/// The `/mcp` router for one fixture instance.
fn router(fixture: Fixture, ct: &CancellationToken) -> Router {
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(ct.child_token())
        // The fixture only listens on loopback; accept any Host header so
        // tests may address it by whatever name they like.
        .disable_allowed_hosts();
    if fixture.options().json_response {
        // rmcp answers with plain JSON only in its stateless mode.
        config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
    }
    let service = StreamableHttpService::new(
        move || Ok(fixture.new_session()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new().route_service("/mcp", service)
}

/// Serves Streamable HTTP at `/mcp` on `listener` until `ct` is cancelled.
pub async fn serve_http(
    listener: TcpListener,
    opts: FixtureOptions,
    ct: CancellationToken,
) -> std::io::Result<()> {
    let app = router(Fixture::new(opts), &ct);
    serve_router(listener, app, ct).await
}

/// Starts a Streamable HTTP fixture on `127.0.0.1:0` in the background;
/// `url` is `http://<addr>/mcp`.
pub async fn spawn_http(opts: FixtureOptions) -> std::io::Result<FixtureServer> {
    let fixture = Fixture::new(opts);
    let stats = fixture.stats();
    let ct = CancellationToken::new();
    let app = router(fixture, &ct);
    spawn_router(app, "/mcp", ct, stats, Arc::default()).await
}
