//! Tokens of an external issuer, checked against a JWKS the test serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use switchboard_control::identity::ExternalIssuer;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::common::*;

// ---------------------------------------------------------------------------------------------
// External issuer

/// Serves `jwks` at `/jwks` on a loopback port; returns its URL and a fetch counter.
async fn jwks_server(jwks: Value) -> (String, Arc<AtomicUsize>, CancellationToken) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let (listener, addr) = bind().await;
    let stop = CancellationToken::new();
    tokio::spawn(switchboard_http::serve(listener, router, stop.clone()));
    (format!("http://{addr}/jwks"), fetches, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_issuer_tokens_are_checked_against_its_jwks() {
    init();
    let (jwks_url, fetches, stop_jwks) =
        jwks_server(json!({"keys": [ec_jwk(EC_KEY_1, "k1")]})).await;
    let url = jwks_url.clone();
    let h = hub()
        .identity(move |main| IdentityConfig {
            external: Some(ExternalIssuer {
                issuer: ISSUER.into(),
                jwks_url: url,
                audience: format!("http://{main}/mcp"),
            }),
            ..Default::default()
        })
        .start()
        .await;
    let audience = format!("http://{}/mcp", h.main);
    let uid = tenant_with_user(&h, "ext", "ext-user", "user").await;
    let claims = |iss: &str, aud: &str, exp: i64, sub: &str| json!({"iss": iss, "aud": aud, "exp": exp, "iat": now_secs(), "sub": sub});
    let later = now_secs() + 300;

    let good = es256(
        EC_KEY_1,
        Some("k1"),
        &claims(ISSUER, &audience, later, "ext-user"),
    );
    let v = h.as_(&good).get("/api/v1/me").expect(200).await;
    assert_eq!(
        (
            v["tenant"].as_str(),
            v["user_id"].as_str(),
            v["credential"].as_str()
        ),
        (Some("ext"), Some(uid.as_str()), Some("external")),
        "{v}"
    );
    let a = h.mcp_status(h.main, "/mcp", Some(&good)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // One key in the set: a token without `kid` uses it.
    let no_kid = es256(
        EC_KEY_1,
        None,
        &claims(ISSUER, &audience, later, "ext-user"),
    );
    assert_eq!(h.me_status(&no_kid).await, 200);

    for (what, token) in [
        (
            "wrong audience",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, "https://elsewhere/mcp", later, "ext-user"),
            ),
        ),
        (
            "wrong issuer",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims("https://evil.example", &audience, later, "ext-user"),
            ),
        ),
        (
            "expired",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, &audience, now_secs() - 60, "ext-user"),
            ),
        ),
        (
            "unknown kid",
            es256(
                EC_KEY_1,
                Some("k9"),
                &claims(ISSUER, &audience, later, "ext-user"),
            ),
        ),
        (
            "signed by another key",
            es256(
                EC_KEY_2,
                Some("k1"),
                &claims(ISSUER, &audience, later, "ext-user"),
            ),
        ),
        ("tampered", tamper_signature(&good)),
        (
            "unknown subject",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, &audience, later, "nobody"),
            ),
        ),
        (
            "the hub's own audience",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, "switchboard", later, "ext-user"),
            ),
        ),
    ] {
        let a = h.as_(&token).get("/api/v1/me").send().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        assert_eq!(a.body["error"], "unauthorized", "{what}: {}", a.body);
        mcp_refuses(&h, &token).await;
    }
    assert!(fetches.load(Ordering::SeqCst) >= 1);

    // A disabled user's external tokens are refused.
    h.as_(ADMIN)
        .patch(format!("/api/v1/users/{uid}"), json!({"disabled": true}))
        .tenant(Some("ext"))
        .expect(200)
        .await;
    assert_eq!(h.me_status(&good).await, 401);

    // The metadata names the issuer.
    let a = h
        .anon()
        .get("/.well-known/oauth-protected-resource")
        .send()
        .await;
    assert_eq!(
        a.body["authorization_servers"],
        json!([ISSUER]),
        "{}",
        a.body
    );
    assert_eq!(a.body["resource"], audience.as_str(), "{}", a.body);
    stop_jwks.cancel();
    h.stop().await;
}
