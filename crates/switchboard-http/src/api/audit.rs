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
use switchboard_control::{Principal, masked_url};
use switchboard_core::url_secrets::url_has_secrets;

use super::ApiState;
use crate::auth::{bearer, identify, rate_limit, target_tenant};

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
        .map_or(path, |pq| masked_target(pq.as_str()));
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
        .unwrap_or_else(|| switchboard_control::model::DEFAULT_TENANT.to_string());
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
        st.identity.written();
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

/// The request target as the log keeps it: a proxy session id in the path (it grants use
/// of the session) is cut to its first 8 characters, and a query value that is itself a URL
/// (the seed routes' `mcp_url`) has its secrets (query values, password) masked.
fn masked_target(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let path = match path.strip_prefix(SESSION_ROUTE) {
        Some(rest) => {
            let (id, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let kept = id.get(..8).unwrap_or(id);
            let cut = if kept.len() < id.len() { "…" } else { "" };
            format!("{SESSION_ROUTE}{kept}{cut}{tail}")
        }
        None => path.to_string(),
    };
    let Some(query) = query else {
        return path;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => {
                let value = percent_decode(v);
                if value.contains("://") && url_has_secrets(&value) {
                    format!(
                        "{k}={}",
                        switchboard_core::url_secrets::percent_encode(&masked_url(&value))
                    )
                } else {
                    pair.to_string()
                }
            }
            None => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// Routes whose next path segment is a proxy session id.
const SESSION_ROUTE: &str = "/api/v1/server/";

/// Decodes a form-encoded query value (`+` is a space); bad escapes stay as they are.
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            (b'+', ..) => out.push(b' '),
            (b, ..) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_values_in_the_target_have_their_secrets_masked() {
        let t = "/api/mcp/add?service_name=w&mcp_url=https%3A%2F%2Fh%2Fmcp%3Fapi_key%3Ds3cr3t";
        let m = masked_target(t);
        assert!(!m.contains("s3cr3t"), "{m}");
        assert!(
            m.contains("service_name=w&mcp_url=https%3A%2F%2Fh%2Fmcp%3Fapi_key%3D"),
            "{m}"
        );
        assert_eq!(masked_target("/api/v1/servers"), "/api/v1/servers");
        let id = "9f1c".repeat(16);
        assert_eq!(
            masked_target(&format!("/api/v1/server/{id}/refresh?x=1")),
            "/api/v1/server/9f1c9f1c…/refresh?x=1"
        );
        assert_eq!(
            masked_target(&format!("/api/v1/server/{id}")),
            "/api/v1/server/9f1c9f1c…"
        );
        assert_eq!(masked_target("/api/v1/server/ab"), "/api/v1/server/ab");
        assert_eq!(masked_target("/x?a=1&b"), "/x?a=1&b");
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
    }
}
