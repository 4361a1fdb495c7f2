//! Who may use an MCP endpoint, and which tenant's hub serves them.
//!
//! A bearer credential (API key, access token, admin token) selects its tenant's hub, and the
//! endpoint must be one its grants allow: `/mcp/{name}` needs `name` (or `*`) in the user's
//! grants and in the key's allowlist; the aggregate `/mcp` needs `*` in both. Without a
//! credential, [`McpAuth::Optional`] (the MCP service on loopback, as in the seed system) serves
//! the default tenant, and [`McpAuth::Required`] answers 401 with a `WWW-Authenticate`
//! challenge that points at the protected-resource metadata (RFC 9728).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use switchboard_control::{Principal, Via};
use switchboard_hub::Hub;

use crate::api::ApiState;
use crate::auth::{bearer, identify};

/// Whether MCP endpoints demand credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpAuth {
    /// Every request carries a credential.
    Required,
    /// A request without one is served the default tenant with every grant.
    Optional,
}

/// What the MCP routes share.
#[derive(Clone)]
pub enum McpState {
    /// One hub, no authentication (embedding and tests).
    Open(Hub),
    /// Tenants' hubs behind authentication.
    Tenants {
        /// Identity and tenants.
        api: ApiState,
        /// Whether a credential is required.
        auth: McpAuth,
        /// The public base URL for the metadata documents (else from the Host header).
        public_url: Option<String>,
    },
}

impl McpState {
    /// The hub that answers health and readiness.
    pub fn default_hub(&self) -> Hub {
        match self {
            McpState::Open(hub) => hub.clone(),
            McpState::Tenants { api, .. } => api.tenants.default_plane().hub().clone(),
        }
    }
}

/// The hub that serves this request, and where the caller's own upstream credentials are.
pub(crate) struct CallerHub(pub Hub, pub Option<Credentials>);

/// Who the caller is: their credential (for the per-credential limit on calls in flight),
/// their name for logs and metrics, and where their stored upstream credentials are.
pub(crate) struct Credentials {
    identity: std::sync::Arc<switchboard_control::Identity>,
    user: Option<String>,
    /// `key:<id>`, `user:<id>` or `admin-token`; `None` for an anonymous caller.
    key: Option<String>,
    /// The caller's name for logs and metrics (login name, `admin-token`, `anonymous`).
    principal: std::sync::Arc<str>,
}

impl Credentials {
    /// `key:<id>`, `user:<id>` or `admin-token`; `None` for an anonymous caller.
    pub(crate) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Records the credential and the caller's name on `session`, and gives it the user's own
    /// headers, if they stored any. A store failure leaves the session on the configured
    /// headers (and is logged).
    pub(crate) async fn apply(&self, session: &switchboard_hub::ClientSession) {
        session.set_principal(self.principal.clone());
        if let Some(key) = &self.key {
            session.set_credential(key.clone());
        }
        let Some(user) = &self.user else { return };
        match self.identity.user_headers(user).await {
            Ok(Some(by_server)) => session.set_user_headers(switchboard_hub::UserHeaders {
                user: user.clone(),
                by_server,
            }),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(message = "Cannot load a user's upstream credentials.", error = %e);
            }
        }
    }
}

/// The group or server an MCP path names: `/mcp/{name}`, `/sse/{name}`, and the group of
/// `/mcp/$smart/{group}` (none for `/mcp/$smart`, which covers everything like `/mcp`).
fn endpoint_name(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/mcp/")
        .or_else(|| path.strip_prefix("/sse/"))?;
    // The smart endpoint needs the grant of what it searches: a group, or everything.
    let rest = match rest.strip_prefix(switchboard_hub::SMART_SEGMENT) {
        Some(smart) => smart.strip_prefix('/').unwrap_or(smart),
        None => rest,
    };
    (!rest.is_empty()).then_some(rest)
}

/// The base URL clients reach this service at.
fn base_url(public_url: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(u) = public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

fn challenge(public_url: Option<&str>, headers: &HeaderMap, message: &str) -> Response {
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource",
        base_url(public_url, headers)
    );
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"status": "error", "error": "unauthorized", "message": message})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer realm=\"switchboard\", resource_metadata=\"{metadata}\""
    )) {
        resp.headers_mut().insert("www-authenticate", v);
    }
    resp
}

fn refuse(status: StatusCode, message: String) -> Response {
    let error = if status == StatusCode::NOT_FOUND {
        "not_found"
    } else {
        "forbidden"
    };
    (
        status,
        Json(json!({"status": "error", "error": error, "message": message})),
    )
        .into_response()
}

/// HTTP 429 with `Retry-After` and a JSON-RPC error body (the request's id is not read yet).
fn rate_limited(l: switchboard_control::ratelimit::Limited) -> Response {
    let message = format!(
        "this {} is over its request rate limit; try again in {} s",
        if l.scope == "key" {
            "credential"
        } else {
            "tenant"
        },
        l.retry_after
    );
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": message,
        "data": {"retry_after": l.retry_after, "scope": l.scope}}});
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    resp.headers_mut().insert(
        "retry-after",
        HeaderValue::from_str(&l.retry_after.to_string()).expect("digits"),
    );
    resp
}

/// Checks `who` may use the endpoint at `path`.
fn check_grant(who: &Principal, path: &str) -> Result<(), Response> {
    match endpoint_name(path) {
        Some(name) if !who.may_use(name) => Err(refuse(
            StatusCode::NOT_FOUND,
            format!("no group or server named {name:?}"),
        )),
        None if (path.starts_with("/mcp") || path.starts_with("/sse"))
            && !who.sees_everything() =>
        {
            let mut allowed: Vec<&str> = who.grants.iter().map(String::as_str).collect();
            if let Some(keys) = &who.key_allow {
                allowed.retain(|g| *g == "*" || keys.iter().any(|k| k == g));
                if allowed.contains(&"*") {
                    allowed = keys.iter().map(String::as_str).collect();
                }
            }
            Err(refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "this credential may use only some endpoints: {}; use /mcp/{{name}}",
                    allowed.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
}

impl FromRequestParts<McpState> for CallerHub {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &McpState,
    ) -> Result<Self, Self::Rejection> {
        let (api, auth, public_url) = match state {
            McpState::Open(hub) => return Ok(CallerHub(hub.clone(), None)),
            McpState::Tenants {
                api,
                auth,
                public_url,
            } => (api, *auth, public_url.as_deref()),
        };
        let who = match bearer(&parts.headers) {
            Some(token) => match identify(api, token).await {
                Ok(p) => p,
                Err(_) => {
                    return Err(challenge(
                        public_url,
                        &parts.headers,
                        "invalid, expired or revoked credential",
                    ));
                }
            },
            None if auth == McpAuth::Optional => Principal::anonymous(),
            None => {
                return Err(challenge(
                    public_url,
                    &parts.headers,
                    "this endpoint needs Authorization: Bearer <API key or access token>",
                ));
            }
        };
        if let Err(l) = api.identity.limiter().check(&who) {
            switchboard_control::metrics::metrics()
                .rate_limited
                .with(&[("scope", l.scope)], |c| c.inc());
            return Err(rate_limited(l));
        }
        check_grant(&who, parts.uri.path())?;
        let Some(plane) = api.tenants.get(&who.tenant) else {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("tenant {:?} is not served here", who.tenant),
            ));
        };
        let key = match (&who.via, &who.user_id) {
            (Via::ApiKey(id), _) => Some(format!("key:{id}")),
            (Via::AdminToken, _) => Some("admin-token".to_string()),
            (Via::Anonymous, _) => None,
            (_, Some(user)) => Some(format!("user:{user}")),
            (_, None) => None,
        };
        let credentials = Some(Credentials {
            identity: api.identity.clone(),
            user: who.user_id.clone(),
            key,
            principal: who.name.as_str().into(),
        });
        parts.extensions.insert(who);
        Ok(CallerHub(plane.hub().clone(), credentials))
    }
}

/// The OAuth protected-resource metadata (RFC 9728) for the MCP endpoint.
pub(crate) fn resource_metadata(
    public_url: Option<&str>,
    issuer: Option<&str>,
    headers: &HeaderMap,
) -> Value {
    let base = base_url(public_url, headers);
    json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": issuer.map(|i| vec![i.to_string()]).unwrap_or_default(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard MCP hub",
        "resource_documentation": format!("{base}/api/v1/openapi.json"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names() {
        assert_eq!(endpoint_name("/mcp/alpha"), Some("alpha"));
        assert_eq!(endpoint_name("/sse/beta"), Some("beta"));
        assert_eq!(endpoint_name("/mcp"), None);
        assert_eq!(endpoint_name("/mcp/"), None);
        assert_eq!(endpoint_name("/messages"), None);
        assert_eq!(endpoint_name("/mcp/$smart"), None);
        assert_eq!(endpoint_name("/mcp/$smart/research"), Some("research"));
        assert_eq!(endpoint_name("/sse/$smart/research"), Some("research"));
    }

    #[test]
    fn grants_gate_endpoints() {
        let mut who = Principal::anonymous();
        who.grants = vec!["alpha".into()];
        assert!(check_grant(&who, "/mcp/alpha").is_ok());
        assert_eq!(
            check_grant(&who, "/mcp/beta").unwrap_err().status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            check_grant(&who, "/mcp").unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        // Posting to an existing legacy session is checked when the session is opened.
        assert!(check_grant(&who, "/messages").is_ok());
        who.grants = vec!["*".into()];
        assert!(check_grant(&who, "/mcp").is_ok());
        who.key_allow = Some(vec!["alpha".into()]);
        assert!(check_grant(&who, "/mcp").is_err());
        assert!(check_grant(&who, "/sse/alpha").is_ok());
    }
}
