//! Switchboard's HTTP side: the MCP service (Streamable HTTP at `/mcp`, legacy SSE at `/sse`)
//! and the main service (health and readiness), as axum routers, plus a server loop that sets
//! `TCP_NODELAY` on every accepted socket and bounds what each connection may cost
//! ([`ListenerLimits`]).

// Handlers return `Result<_, Response>` so a rejection is a finished response.
#![allow(clippy::result_large_err)]

mod access;
pub mod api;
mod auth;
mod batch;
mod legacy_sse;
mod listener;
mod origin;
mod ready;
mod stateless;
mod streamable;
mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Json;
use axum::routing::{get, post};
use switchboard_hub::Hub;

pub use access::{McpAuth, McpState};
pub use api::{AdminAuth, ApiError, ApiState, McpServiceClient};
pub use listener::{ListenerLimits, serve, serve_with};
pub use origin::OriginPolicy;

/// Largest accepted MCP request body by default (`/mcp`, `/messages`): a client message, and
/// hence a reply built from it, is at most this big.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// How the services authenticate MCP clients.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Whether the MCP service (5011) demands credentials (the main service always does).
    pub mcp_auth: McpAuth,
    /// The public base URL, for the OAuth metadata documents (else taken from `Host`).
    pub public_url: Option<String>,
    /// Largest MCP request body (`/mcp`, `/messages`), in bytes.
    pub max_body: usize,
    /// Browser origins and host names the MCP endpoints accept.
    pub origins: OriginPolicy,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            mcp_auth: McpAuth::Optional,
            public_url: None,
            max_body: MAX_BODY,
            origins: OriginPolicy::default(),
        }
    }
}

/// The MCP service: the MCP endpoints of every tenant and the seed's internal management
/// routes (`/healthcheck`, `/list-remote-proxies`, `/add-remote-proxies`, `/remote-proxies`).
pub fn mcp_service(api: ApiState, options: &ServiceOptions) -> Router {
    let state = McpState::Tenants {
        api: api.clone(),
        auth: options.mcp_auth,
        public_url: options.public_url.clone(),
    };
    let store = Some(ready::StoreCheck::new(api.control.clone()));
    mcp_endpoints(state.clone(), options.max_body, &options.origins)
        .merge(ready::routes(state.default_hub(), store))
        .merge(metadata_routes(&api, options))
        .merge(
            api::seed::mcp_routes()
                .route_layer(axum::middleware::from_fn_with_state(
                    api.clone(),
                    api::audit::record,
                ))
                // Outside the audit layer, so the audit log names the loopback caller.
                .route_layer(axum::middleware::from_fn_with_state(
                    options.mcp_auth,
                    api::seed::loopback_caller,
                ))
                .layer(DefaultBodyLimit::max(1 << 20))
                .with_state(api),
        )
}

/// The main service: health, the REST API v1, the seed's `/api/mcp/*` routes, the MCP
/// endpoints behind mandatory authentication, and the web dashboard (`/`, `/ui/…`), whose
/// session cookie stands in for a bearer credential on `/api/v1/*` and `/mcp*`.
pub fn main_service(api: ApiState, options: &ServiceOptions) -> Router {
    let hub = api.control.hub().clone();
    let ui_config = ui::UiConfig::new(options.public_url.as_deref());
    let state = McpState::Tenants {
        api: api.clone(),
        auth: McpAuth::Required,
        public_url: options.public_url.clone(),
    };
    let management = api::v1::routes()
        .merge(api::seed::main_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            api::audit::record,
        ))
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(api.clone());
    ready::routes(hub, Some(ready::StoreCheck::new(api.control.clone())))
        .merge(management)
        .merge(mcp_endpoints(state, options.max_body, &options.origins))
        .merge(metadata_routes(&api, options))
        .merge(api::metrics::routes(api.clone()))
        .merge(ui::routes(api.clone(), ui_config.clone()))
        .layer(axum::middleware::from_fn_with_state(
            ui_config,
            ui::cookie_auth,
        ))
}

/// `/metrics` alone, without a credential (`--metrics-addr`).
pub fn metrics_service(api: ApiState) -> Router {
    api::metrics::public_routes(api)
}

/// `/.well-known/oauth-protected-resource[/mcp]` (RFC 9728), unauthenticated.
fn metadata_routes(api: &ApiState, options: &ServiceOptions) -> Router {
    let public_url = options.public_url.clone();
    let issuer = api
        .identity
        .config()
        .external
        .as_ref()
        .map(|e| e.issuer.clone());
    let handler = move |headers: axum::http::HeaderMap| {
        let doc = access::resource_metadata(public_url.as_deref(), issuer.as_deref(), &headers);
        async move { Json(doc) }
    };
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(handler.clone()),
        )
        .route("/.well-known/oauth-protected-resource/mcp", get(handler))
}

/// One hub's MCP endpoints without authentication, plus health (embedding and tests).
pub fn mcp_router(hub: Hub) -> Router {
    mcp_routes(McpState::Open(hub))
}

/// The MCP endpoints for `state`, plus health and readiness (the store included when
/// `state` has one).
pub fn mcp_routes(state: McpState) -> Router {
    let hub = state.default_hub();
    let store = match &state {
        McpState::Open(_) => None,
        McpState::Tenants { api, .. } => Some(ready::StoreCheck::new(api.control.clone())),
    };
    mcp_endpoints(state, MAX_BODY, &OriginPolicy::default()).merge(ready::routes(hub, store))
}

/// `/mcp`, `/mcp/{name}`, `/mcp/$smart/{group}`, `/sse`, `/sse/{name}`,
/// `/sse/$smart/{group}`, `/messages`.
fn mcp_endpoints(state: McpState, max_body: usize, origins: &OriginPolicy) -> Router {
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
        .route(
            "/mcp/$smart/{group}",
            get(streamable::get_smart)
                .post(streamable::post_smart)
                .delete(streamable::delete),
        )
        .route("/sse", get(legacy_sse::open))
        .route("/sse/{name}", get(legacy_sse::open))
        .route("/sse/$smart/{group}", get(legacy_sse::open_smart))
        .route("/messages", post(legacy_sse::message))
        .route("/message", post(legacy_sse::message))
        .route_layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(origins.clone()),
            origin::guard,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(trace_headers))
        .with_state(state)
}

/// While tracing is on, an MCP request's `traceparent`/`tracestate` headers are the parent of
/// the requests it carries that name none in `_meta`.
async fn trace_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !switchboard_hub::trace::enabled() {
        return next.run(req).await;
    }
    let (tp, ts) = {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (header("traceparent"), header("tracestate"))
    };
    switchboard_hub::trace::with_http_headers(tp.as_deref(), ts.as_deref(), next.run(req)).await
}

/// Health and readiness only (no store: readiness is the hub's).
pub fn main_router(hub: Hub) -> Router {
    ready::routes(hub, None)
}
