//! `Origin` validation for browser-reachable endpoints (DNS-rebinding protection).
//!
//! Requests without `Origin` come from non-browser clients and pass. A browser request passes
//! when its origin is a loopback host or the same host the request was sent to.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_core::jsonrpc::{code, error_message};

fn host_of(authority: &str) -> &str {
    let a = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    a.split(':').next().unwrap_or("")
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

/// `Err(403)` when the request's `Origin` is foreign.
pub(crate) fn check_origin(headers: &HeaderMap) -> Result<(), Response> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let origin_host = host_of(authority);
    let request_host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(host_of).unwrap_or("");
    if !origin_host.is_empty() && (is_loopback(origin_host) || origin_host.eq_ignore_ascii_case(request_host)) {
        return Ok(());
    }
    let body = error_message("null", code::INVALID_REQUEST, &format!("Forbidden: origin {origin:?} is not allowed"), None);
    Err((StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: &str, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h.insert(header::HOST, host.parse().unwrap());
        h
    }

    #[test]
    fn loopback_and_same_host_pass_foreign_fails() {
        assert!(check_origin(&headers("http://localhost:3000", "127.0.0.1:5011")).is_ok());
        assert!(check_origin(&headers("http://[::1]:80", "127.0.0.1:5011")).is_ok());
        assert!(check_origin(&headers("https://hub.example", "hub.example")).is_ok());
        assert!(check_origin(&headers("https://evil.example", "127.0.0.1:5011")).is_err());
        assert!(check_origin(&headers("null", "127.0.0.1:5011")).is_err());
        assert!(check_origin(&HeaderMap::new()).is_ok());
    }
}
