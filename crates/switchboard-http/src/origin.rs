//! Browser-facing checks for the MCP endpoints: `Origin` (403 for a foreign origin) and, for
//! clients on loopback, `Host` (DNS-rebinding protection).
//!
//! Requests without `Origin` come from non-browser clients and pass the origin check. An origin
//! passes when it is a loopback host, the request's own host, or on the allowlist. A loopback
//! client must address the hub by a loopback name or an allowlisted host: a page on a hostile
//! domain that re-resolves to 127.0.0.1 is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_core::jsonrpc::{code, error_message};

/// Which browser origins and host names the MCP endpoints accept (`--allowed-origins`,
/// `--allowed-hosts`), besides loopback and the request's own host.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Browser origins allowed besides loopback and the request's own host (`*`: all).
    pub allowed_origins: Vec<String>,
    /// Host names a loopback client may address the hub by besides loopback names (`*`: all).
    pub allowed_hosts: Vec<String>,
}

/// The layer in front of every MCP endpoint: [`check_origin`] before anything else runs.
pub(crate) async fn guard(
    State(policy): State<Arc<OriginPolicy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match check_origin(&policy, req.headers(), peer) {
        Ok(()) => next.run(req).await,
        Err(r) => r,
    }
}

fn host_of(authority: &str) -> &str {
    let a = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    a.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

fn forbidden(message: String) -> Response {
    let body = error_message("null", code::INVALID_REQUEST, &message, None);
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `Err(403)` when the request's `Origin` or `Host` is not acceptable.
pub(crate) fn check_origin(
    config: &OriginPolicy,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<(), Response> {
    let request_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_of)
        .unwrap_or("");
    let allowed =
        |list: &[String], v: &str| list.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(v));
    if peer.ip().is_loopback()
        && !request_host.is_empty()
        && !is_loopback(request_host)
        && !allowed(&config.allowed_hosts, request_host)
    {
        return Err(forbidden(format!(
            "Forbidden: host {request_host:?} is not allowed for a local client; add it with --allowed-hosts"
        )));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let origin_host = host_of(authority);
    let ok = allowed(&config.allowed_origins, origin)
        || (!origin_host.is_empty()
            && (is_loopback(origin_host) || origin_host.eq_ignore_ascii_case(request_host)));
    if ok {
        Ok(())
    } else {
        Err(forbidden(format!(
            "Forbidden: origin {origin:?} is not allowed; add it with --allowed-origins"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h.insert(header::HOST, host.parse().unwrap());
        h
    }

    const LOCAL: &str = "127.0.0.1:50000";
    const REMOTE: &str = "203.0.113.9:50000";

    fn check(cfg: &OriginPolicy, origin: Option<&str>, host: &str, peer: &str) -> bool {
        check_origin(cfg, &headers(origin, host), peer.parse().unwrap()).is_ok()
    }

    #[test]
    fn origins_pass_when_loopback_same_host_or_allowed() {
        let cfg = OriginPolicy::default();
        assert!(check(
            &cfg,
            Some("http://localhost:3000"),
            "127.0.0.1:5011",
            LOCAL
        ));
        assert!(check(
            &cfg,
            Some("http://[::1]:80"),
            "127.0.0.1:5011",
            LOCAL
        ));
        assert!(check(
            &cfg,
            Some("https://hub.example"),
            "hub.example",
            REMOTE
        ));
        assert!(!check(
            &cfg,
            Some("https://evil.example"),
            "127.0.0.1:5011",
            LOCAL
        ));
        assert!(!check(&cfg, Some("null"), "127.0.0.1:5011", LOCAL));
        assert!(check(&cfg, None, "127.0.0.1:5011", LOCAL));
        let cfg = OriginPolicy {
            allowed_origins: vec!["https://app.example".into()],
            ..OriginPolicy::default()
        };
        assert!(check(
            &cfg,
            Some("https://app.example"),
            "127.0.0.1:5011",
            LOCAL
        ));
    }

    #[test]
    fn loopback_clients_must_use_loopback_or_allowed_hosts() {
        let cfg = OriginPolicy::default();
        assert!(
            !check(&cfg, None, "rebind.evil.example:5011", LOCAL),
            "DNS rebinding"
        );
        assert!(check(&cfg, None, "localhost:5011", LOCAL));
        assert!(
            check(&cfg, None, "hub.internal:5011", REMOTE),
            "remote clients are not host-checked"
        );
        let cfg = OriginPolicy {
            allowed_hosts: vec!["hub.internal".into()],
            ..OriginPolicy::default()
        };
        assert!(check(&cfg, None, "hub.internal:5011", LOCAL));
    }
}
