//! The audit log of management actions: a layer over the management routes that records every
//! request that can change something (anything but GET, HEAD and OPTIONS) with who made it, the
//! tenant it acted on, the route, the client address, and whether it succeeded. Logins are
//! recorded by their own handler, which knows the user name. It also applies the per-credential
//! rate limit before the handler runs (a refused request is not recorded: that would let a
//! flood fill the log). Field caps and the per-address bound on refused requests without a
//! credential are applied by [`switchboard_control::Identity::audit`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use switchboard_control::Principal;

use super::ApiState;
use super::auth::{bearer, identify, rate_limit, target_tenant};

/// The middleware (install with `route_layer`, so the matched route is known).
pub(crate) async fn record(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || path.starts_with("/api/v1/auth/")
    {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.clone(), |m| m.as_str().to_string());
    let mut target = req
        .uri()
        .path_and_query()
        .map_or(path, |pq| pq.as_str().to_string());
    target.truncate(target.floor_char_boundary(512));
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (mut parts, body) = req.into_parts();
    // Authenticate once here; the handler's extractor finds the principal in the extensions.
    let who = match (parts.extensions.get::<Principal>(), bearer(&parts.headers)) {
        // Set by an outer layer (the MCP service's anonymous loopback caller).
        (Some(p), _) => Some(p.clone()),
        (None, Some(token)) => identify(&st, token).await.ok(),
        (None, None) => None,
    };
    if let Some(p) = &who {
        if let Err(refused) = rate_limit(&st, p) {
            return refused;
        }
        parts.extensions.insert(p.clone());
    }
    // A caller naming a tenant they may not act on is recorded in their own tenant, where its
    // managers see it (and the named tenant learns nothing of the caller).
    let tenant = who
        .as_ref()
        .map(|w| target_tenant(w, &parts.headers).unwrap_or_else(|_| w.tenant.clone()))
        .unwrap_or_else(|| switchboard_store::DEFAULT_TENANT.to_string());
    let resp = next.run(Request::from_parts(parts, body)).await;
    // A write to users, keys or tenants may have revoked a key, disabled a user or changed
    // grants, and one to a user's own credentials changes their upstream headers: forget what
    // is remembered so the next request sees it.
    if [
        "/api/v1/users",
        "/api/v1/keys",
        "/api/v1/tenants",
        "/api/v1/me/credentials",
    ]
    .iter()
    .any(|p| route.starts_with(p))
    {
        st.identity.invalidate();
    }
    let status = resp.status();
    let outcome = if status.is_success() || status.is_redirection() {
        "ok"
    } else if matches!(status.as_u16(), 401 | 403 | 404) {
        "denied"
    } else {
        "failed"
    };
    let who = who.unwrap_or_else(|| {
        let mut p = Principal::anonymous();
        p.name = "unauthenticated".into();
        p
    });
    st.identity
        .audit(
            &who,
            &tenant,
            &format!("{method} {route}"),
            &target,
            outcome,
            Some(format!("HTTP {}", status.as_u16())),
            source,
        )
        .await;
    resp
}
