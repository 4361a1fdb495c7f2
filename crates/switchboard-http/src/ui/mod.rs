//! The web dashboard on the main service: the HTML shell at `/` and `/ui/`, the embedded
//! ES modules and stylesheet under `/ui/`, and the browser session routes
//! (`POST /ui/login`, `POST /ui/refresh`, `POST /ui/logout`, `GET /ui/session`).
//!
//! The pages are a small no-build ES-module app (`crates/switchboard-http/ui/`) that calls
//! the REST API and `/mcp` with the session cookie (see `session.rs`); ARCHITECTURE.md says
//! why.

mod assets;
mod session;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Json, State};
use axum::http::Extensions;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use switchboard_control::identity::{MAX_LOGIN_PASSWORD, MAX_LOGIN_USERNAME};
use switchboard_control::{Principal, Tokens, Via};

use crate::api::ApiError;
use crate::api::ApiState;
use crate::auth::{auth_failure, identify, unauthorized};
use session::{
    ACCESS_COOKIE, CSRF_HEADER, REFRESH_COOKIE, cookie, csrf_ok, csrf_refused, csrf_token,
};
pub(crate) use session::{UiConfig, cookie_auth};

#[derive(Clone)]
struct UiState {
    api: ApiState,
    cfg: UiConfig,
}

/// The dashboard's routes.
pub(crate) fn routes(api: ApiState, cfg: UiConfig) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/login", post(login))
        .route("/ui/refresh", post(refresh))
        .route("/ui/logout", post(logout))
        .route("/ui/session", get(session_info))
        .route("/ui/{file}", get(assets::file))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(UiState { api, cfg })
}

async fn index(State(s): State<UiState>) -> Response {
    assets::shell(&s.cfg.base_path)
}

#[derive(Deserialize)]
struct LoginInput {
    username: String,
    password: String,
}

/// True when the request came from a page of this origin: `Sec-Fetch-Site` (if sent) is
/// `same-origin`, and `Origin` (if sent) names the request's own host.
fn same_origin(headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "same-origin" || v == "none");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(o) => {
            let rest = o.split_once("://").map_or(o, |(_, r)| r);
            host.is_some_and(|h| h.eq_ignore_ascii_case(rest))
                || headers
                    .get("x-forwarded-host")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|h| h.eq_ignore_ascii_case(rest))
        }
    };
    site_ok && origin_ok
}

fn cross_site() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "sign-in requests must come from the dashboard's own origin",
    )
    .into_response()
}

/// Sets both cookies for `tokens` and answers with the session's CSRF token and who it is.
fn signed_in(
    s: &UiState,
    headers: &HeaderMap,
    tokens: &Tokens,
    who: serde_json::Value,
) -> Response {
    let secure = s.cfg.secure(headers);
    let age = tokens.refresh_expires_in;
    let mut resp = Json(json!({
        "csrf": csrf_token(&tokens.refresh_token),
        "user": who,
    }))
    .into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        s.cfg
            .cookie(ACCESS_COOKIE, &tokens.access_token, age, secure),
    );
    h.append(
        header::SET_COOKIE,
        s.cfg
            .cookie(REFRESH_COOKIE, &tokens.refresh_token, age, secure),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn who_json(p: &Principal) -> serde_json::Value {
    json!({
        "username": p.name,
        "role": p.role.as_str(),
        "tenant": p.tenant,
        "grants": p.grants,
    })
}

/// `POST /ui/login {"username","password"}`: the login of `/api/v1/auth/login`, answered with
/// cookies instead of tokens.
async fn login(
    State(s): State<UiState>,
    ext: Extensions,
    headers: HeaderMap,
    input: Result<Json<LoginInput>, JsonRejection>,
) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let Json(input) = match input {
        Ok(i) => i,
        Err(e) => return crate::api::json_rejection(e).into_response(),
    };
    if input.username.len() > MAX_LOGIN_USERNAME || input.password.len() > MAX_LOGIN_PASSWORD {
        return ApiError::bad_request(format!(
            "the user name may be at most {MAX_LOGIN_USERNAME} bytes and the password at most \
             {MAX_LOGIN_PASSWORD} bytes"
        ))
        .into_response();
    }
    let ip = ext
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let identity = &s.api.identity;
    match identity.login(&input.username, &input.password, ip).await {
        Ok((user, tokens)) => {
            let who = Principal::of_user(user.clone(), None, Via::Session);
            identity
                .audit(
                    &who,
                    &user.tenant,
                    "auth.login",
                    &user.username,
                    "ok",
                    Some("dashboard".into()),
                    ip,
                )
                .await;
            signed_in(&s, &headers, &tokens, who_json(&who))
        }
        Err(e) => {
            let mut who = Principal::anonymous();
            who.name = input.username.clone();
            let tenant =
                switchboard_control::accounts::login_tenant(identity, &input.username).await;
            identity
                .audit(
                    &who,
                    &tenant,
                    "auth.login",
                    &input.username,
                    "denied",
                    Some(ip.map_or("dashboard".into(), |a| format!("dashboard, from {a}"))),
                    ip,
                )
                .await;
            auth_failure(e)
        }
    }
}

/// The refresh-token cookie, after the CSRF check of a session write.
fn checked_refresh(headers: &HeaderMap) -> Result<&str, Response> {
    let Some(rt) = cookie(headers, REFRESH_COOKIE) else {
        return Err(unauthorized("not signed in"));
    };
    let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !csrf_ok(rt, given) {
        return Err(csrf_refused());
    }
    Ok(rt)
}

/// `POST /ui/refresh`: a new token pair (and CSRF token) for the session.
async fn refresh(State(s): State<UiState>, headers: HeaderMap) -> Response {
    let rt = match checked_refresh(&headers) {
        Ok(rt) => rt.to_string(),
        Err(r) => return r,
    };
    let tokens = match s.api.identity.refresh(&rt).await {
        Ok(t) => t,
        Err(e) => return clear_cookies(&s, &headers, auth_failure(e)),
    };
    match identify(&s.api, &tokens.access_token).await {
        Ok(who) => signed_in(&s, &headers, &tokens, who_json(&who)),
        Err(r) => clear_cookies(&s, &headers, r),
    }
}

fn clear_cookies(s: &UiState, headers: &HeaderMap, mut resp: Response) -> Response {
    let secure = s.cfg.secure(headers);
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        s.cfg.cookie(ACCESS_COOKIE, "", 0, secure),
    );
    h.append(
        header::SET_COOKIE,
        s.cfg.cookie(REFRESH_COOKIE, "", 0, secure),
    );
    resp
}

/// `POST /ui/logout`: revokes the login's tokens and clears the cookies.
async fn logout(State(s): State<UiState>, headers: HeaderMap) -> Response {
    match checked_refresh(&headers) {
        Ok(rt) => {
            // An already revoked or expired login is signed out all the same.
            let _ = s.api.identity.logout(rt).await;
            clear_cookies(&s, &headers, StatusCode::NO_CONTENT.into_response())
        }
        Err(r) => r,
    }
}

/// `GET /ui/session`: who is signed in and the CSRF token. Always 200, so a signed-out page
/// logs no failed request: `{"user": null}` when nobody is signed in, and with `"expired":
/// true` and the CSRF token when the access token ran out (the page then tries
/// `/ui/refresh` once).
async fn session_info(State(s): State<UiState>, headers: HeaderMap) -> Response {
    let body = match (
        cookie(&headers, ACCESS_COOKIE),
        cookie(&headers, REFRESH_COOKIE),
    ) {
        (Some(at), Some(rt)) => match identify(&s.api, at).await {
            Ok(who) => json!({"csrf": csrf_token(rt), "user": who_json(&who)}),
            Err(_) => json!({"csrf": csrf_token(rt), "user": null, "expired": true}),
        },
        _ => json!({"user": null}),
    };
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn sign_in_is_refused_from_another_site() {
        assert!(same_origin(&h(&[("host", "127.0.0.1:5010")])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:5010"),
            ("origin", "http://127.0.0.1:5010"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:5010"),
            ("origin", "http://evil.example"),
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:5010"),
            ("sec-fetch-site", "cross-site"),
        ])));
    }
}
