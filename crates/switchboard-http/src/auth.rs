//! Credentials, for every route that takes one: the management API, the dashboard, `/metrics`
//! and the MCP endpoints (`access.rs` builds on [`bearer`] and [`identify`]).
//!
//! A request carries `Authorization: Bearer <credential>`: the bootstrap admin token (from
//! `--admin-token`, or generated on first start and printed once; stored as its SHA-256 hash),
//! an API key (`sb_...`), or an access token (a JWT from `/api/v1/auth/login`, or from the
//! configured external issuer). [`Caller`] accepts any of them; [`Manage`] also requires the
//! admin or manager role and resolves the tenant the request acts on: the caller's own, or for
//! an admin the one named by the `X-Switchboard-Tenant` header. Another tenant's objects are
//! always answered as 404, never 403, so their existence does not leak.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
pub use switchboard_control::admin_token::AdminAuth;
use switchboard_control::{AuthError, ControlPlane, Principal};

use crate::api::{ApiError, ApiState};

/// The header an admin names another tenant with.
pub const TENANT_HEADER: &str = "x-switchboard-tenant";

/// A 401 in the API's error shape, with the `WWW-Authenticate` challenge.
pub(crate) fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    resp.headers_mut().insert(
        "www-authenticate",
        "Bearer realm=\"switchboard\""
            .parse()
            .expect("static header"),
    );
    resp
}

/// The bearer credential of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Identifies the holder of `token`: the admin token, an API key or an access token.
pub(crate) async fn identify(state: &ApiState, token: &str) -> Result<Principal, Response> {
    if state.auth.verify(token) {
        return Ok(Principal::admin_token());
    }
    state
        .identity
        .authenticate(token)
        .await
        .map_err(auth_failure)
}

/// The response for a rejected credential.
pub(crate) fn auth_failure(e: AuthError) -> Response {
    match e {
        AuthError::Invalid(m) => unauthorized(&m),
        AuthError::Throttled { retry_after } => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("too many failed logins; try again in {retry_after} s"),
            )
            .into_response();
            resp.headers_mut().insert(
                "retry-after",
                retry_after.to_string().parse().expect("digits"),
            );
            resp
        }
        AuthError::Busy { retry_after } => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("too many logins are being checked at once; try again in {retry_after} s"),
            )
            .into_response();
            resp.headers_mut().insert(
                "retry-after",
                retry_after.to_string().parse().expect("digits"),
            );
            resp
        }
        AuthError::Store(e) => ApiError::from_store(e).into_response(),
    }
}

/// Takes a token from the caller's rate buckets (per credential and per tenant), or answers
/// 429 with `Retry-After`.
pub(crate) fn rate_limit(state: &ApiState, who: &Principal) -> Result<(), Response> {
    state.identity.limiter().check(who).map_err(|l| {
        tracing::debug!(message = "Request refused by the rate limit.", who = %who.actor(), scope = l.scope);
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this {} is over its request rate limit; try again in {} s",
                if l.scope == "key" { "credential" } else { "tenant" },
                l.retry_after
            ),
        )
        .into_response();
        resp.headers_mut().insert(
            "retry-after",
            l.retry_after.to_string().parse().expect("digits"),
        );
        resp
    })
}

/// The principal of a request, authenticated (and rate limited) once per request (cached in
/// its extensions).
async fn principal(parts: &mut Parts, state: &ApiState) -> Result<Principal, Response> {
    if let Some(p) = parts.extensions.get::<Principal>() {
        return Ok(p.clone());
    }
    let Some(token) = bearer(&parts.headers) else {
        return Err(unauthorized(
            "missing Authorization: Bearer <API key, access token or admin token>",
        ));
    };
    let p = identify(state, token).await?;
    rate_limit(state, &p)?;
    parts.extensions.insert(p.clone());
    Ok(p)
}

/// Any authenticated caller.
pub struct Caller(pub Principal);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        principal(parts, state).await.map(Caller)
    }
}

/// The tenant a request acts on: the `X-Switchboard-Tenant` header for an admin (a manager may
/// name only their own), else the caller's own.
pub(crate) fn target_tenant(who: &Principal, headers: &HeaderMap) -> Result<String, ApiError> {
    let named = headers
        .get(TENANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match named {
        None => Ok(who.tenant.clone()),
        Some(t) if who.is_admin() || t == who.tenant => Ok(t.to_string()),
        Some(t) => Err(no_tenant(t)),
    }
}

pub(crate) fn no_tenant(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no tenant named {name:?}"),
    )
}

/// An admin or manager, with the state of the tenant the request acts on (its `control` is
/// that tenant's control plane).
pub struct Manage {
    /// The API state, scoped to the target tenant.
    pub st: ApiState,
    /// Who is asking.
    pub who: Principal,
}

impl Manage {
    /// The target tenant.
    pub fn tenant(&self) -> &str {
        &self.st.control.config().tenant
    }
}

/// The control plane of `tenant`, or 404.
pub(crate) fn plane(state: &ApiState, tenant: &str) -> Result<Arc<ControlPlane>, ApiError> {
    state.tenants.get(tenant).ok_or_else(|| no_tenant(tenant))
}

impl FromRequestParts<ApiState> for Manage {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let who = principal(parts, state).await?;
        if !who.can_manage() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this route needs the admin or manager role",
            )
            .into_response());
        }
        let tenant = target_tenant(&who, &parts.headers).map_err(IntoResponse::into_response)?;
        let control = plane(state, &tenant).map_err(IntoResponse::into_response)?;
        let mut st = state.clone();
        st.control = control;
        Ok(Manage { st, who })
    }
}

impl OptionalFromRequestParts<ApiState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(principal(parts, state).await.ok().map(Caller))
    }
}
