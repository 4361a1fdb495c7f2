//! The dashboard's browser session: cookies, the CSRF token, and the middleware that lets a
//! signed-in browser use the REST API and `/mcp` on the main service.
//!
//! Signing in stores the login's access token (`sb_at`) and refresh token (`sb_rt`) in
//! `HttpOnly; SameSite=Strict` cookies (`Secure` behind HTTPS), so page scripts never see a
//! credential. [`cookie_auth`] turns the cookies into `Authorization: Bearer` for `/api/v1/*`
//! and `/mcp*` when the request has no credential of its own. Every cookie-authenticated
//! request that is not `GET`/`HEAD` must carry `X-CSRF-Token`, the SHA-256 of a fixed label and
//! the refresh token: only a page that could read `/ui/session` (same origin) knows it, it
//! needs no server-side state, and it changes with every refresh. Bearer-token API calls are
//! untouched.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::api::ApiError;

/// The access-token cookie.
pub(crate) const ACCESS_COOKIE: &str = "sb_at";
/// The refresh-token cookie.
pub(crate) const REFRESH_COOKIE: &str = "sb_rt";
/// The header a cookie-authenticated write carries its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Where the dashboard lives and how its cookies are scoped.
#[derive(Clone, Debug)]
pub(crate) struct UiConfig {
    /// The path prefix the hub is served under (`/` or `/prefix/`), from `--public-url`.
    pub base_path: String,
    /// `--public-url` is `https://…`: cookies are always `Secure`.
    pub https: bool,
}

impl UiConfig {
    pub(crate) fn new(public_url: Option<&str>) -> UiConfig {
        let (https, path) = match public_url {
            Some(u) => {
                let https = u.starts_with("https://");
                let rest = u.split_once("://").map_or(u, |(_, r)| r);
                let path = rest.find('/').map_or("", |i| &rest[i..]);
                (https, path.trim_end_matches('/').to_string())
            }
            None => (false, String::new()),
        };
        UiConfig {
            base_path: format!("{path}/"),
            https,
        }
    }

    /// Whether this request reached us over HTTPS (directly per `--public-url`, or as a
    /// reverse proxy says with `X-Forwarded-Proto`).
    pub(crate) fn secure(&self, headers: &HeaderMap) -> bool {
        self.https
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    }

    /// A `Set-Cookie` value: `max_age` 0 deletes it.
    pub(crate) fn cookie(
        &self,
        name: &str,
        value: &str,
        max_age: u64,
        secure: bool,
    ) -> HeaderValue {
        let secure = if secure { "; Secure" } else { "" };
        let text = format!(
            "{name}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
            self.base_path
        );
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("sb_bad=1"))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of the session holding refresh token `refresh`.
pub(crate) fn csrf_token(refresh: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"switchboard-dashboard-csrf\0")
        .chain_update(refresh.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `given` is the CSRF token of refresh token `refresh` (constant time).
pub(crate) fn csrf_ok(refresh: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let want = csrf_token(refresh);
    want.len() == given.len()
        && want
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The 403 of a cookie-authenticated write without a valid token.
pub(crate) fn csrf_refused() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "this request is authenticated by the dashboard's session cookie and needs a valid \
         X-CSRF-Token header (from GET /ui/session)",
    )
    .into_response()
}

/// Paths where the session cookie stands in for a bearer credential.
fn cookie_path(path: &str) -> bool {
    path.starts_with("/api/v1/") || path == "/mcp" || path.starts_with("/mcp/")
}

/// Middleware of the main service: a request without `Authorization` but with the session
/// cookies is authenticated by them, after the CSRF check for writes.
pub(crate) async fn cookie_auth(
    State(_cfg): State<UiConfig>,
    mut req: Request,
    next: Next,
) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) || !cookie_path(req.uri().path()) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let (Some(access), Some(refresh)) = (
        cookie(headers, ACCESS_COOKIE),
        cookie(headers, REFRESH_COOKIE),
    ) else {
        return next.run(req).await;
    };
    if !is_safe(req.method()) {
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !csrf_ok(refresh, given) {
            return csrf_refused();
        }
    }
    let Ok(value) = HeaderValue::from_str(&format!("Bearer {access}")) else {
        return next.run(req).await;
    };
    req.headers_mut().insert(header::AUTHORIZATION, value);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers("a=1; sb_at=tok; sb_rt_x=no; sb_rt=r=1");
        assert_eq!(cookie(&h, "sb_at"), Some("tok"));
        assert_eq!(cookie(&h, "sb_rt"), Some("r=1"));
        assert_eq!(cookie(&h, "sb"), None);
        assert_eq!(cookie(&headers("sb_at="), "sb_at"), None);
    }

    #[test]
    fn csrf_token_is_bound_to_the_refresh_token() {
        let t = csrf_token("rt-one");
        assert_eq!(t.len(), 64);
        assert!(csrf_ok("rt-one", Some(&t)));
        assert!(!csrf_ok("rt-two", Some(&t)));
        assert!(!csrf_ok("rt-one", None));
        assert!(!csrf_ok("rt-one", Some("")));
        assert!(!csrf_ok("rt-one", Some(&t[..63])));
        let mut flipped = t.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(!csrf_ok(
            "rt-one",
            Some(std::str::from_utf8(&flipped).unwrap())
        ));
    }

    #[test]
    fn config_takes_prefix_and_scheme_from_the_public_url() {
        let c = UiConfig::new(Some("https://example.org/hub/"));
        assert_eq!(c.base_path, "/hub/");
        assert!(c.https);
        let c = UiConfig::new(Some("http://127.0.0.1:5010"));
        assert_eq!(c.base_path, "/");
        assert!(!c.https);
        assert_eq!(UiConfig::new(None).base_path, "/");
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_https() {
        let c = UiConfig::new(None);
        let v = c.cookie("sb_at", "x", 60, false);
        assert_eq!(
            v.to_str().unwrap(),
            "sb_at=x; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        let mut h = HeaderMap::new();
        assert!(!c.secure(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(c.secure(&h));
        assert!(
            c.cookie("sb_at", "x", 0, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn only_api_and_mcp_paths_take_the_cookie() {
        assert!(cookie_path("/api/v1/servers"));
        assert!(cookie_path("/mcp"));
        assert!(cookie_path("/mcp/g"));
        assert!(!cookie_path("/api/mcp/add"));
        assert!(!cookie_path("/metrics"));
        assert!(!cookie_path("/mcpx"));
    }
}
