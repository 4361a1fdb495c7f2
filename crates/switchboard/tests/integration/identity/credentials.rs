//! Credentials that must be refused (expired, revoked, tampered, foreign), refresh-token
//! rotation and reuse, and the login throttle.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::common::*;
use switchboard_store::StoreAccess;

// ---------------------------------------------------------------------------------------------
// Credentials

/// Creates tenant `tenant` and a user of it (by the admin); returns the user's id.
pub(super) async fn tenant_with_user(h: &TestApp, tenant: &str, user: &str, role: &str) -> String {
    h.as_(ADMIN)
        .post("/api/v1/tenants", json!({"name": tenant}))
        .expect(201)
        .await;
    h.user(ADMIN, Some(tenant), user, role, json!(["*"])).await
}

/// The main service's MCP endpoint refuses `token` with the RFC 9728 challenge.
pub(super) async fn mcp_refuses(h: &TestApp, token: &str) {
    let a = h.mcp_status(h.main, "/mcp", Some(token)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let challenge = a.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("resource_metadata="),
        "{challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_tampered_and_foreign_credentials_are_refused() {
    let h = sqlite().await;
    let uid = tenant_with_user(&h, "crew", "crew-user", "user").await;
    let (jwt, _) = h.tokens("crew-user").await;
    assert_eq!(h.me_status(&jwt).await, 200);

    // A key that expires.
    let (_, short) = h
        .key(
            &jwt,
            None,
            json!({"name": "short", "expires_in_seconds": 1}),
        )
        .await;
    assert_eq!(h.me_status(&short).await, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let a = h.as_(&short).get("/api/v1/me").send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["message"], "this API key has expired", "{}", a.body);
    mcp_refuses(&h, &short).await;

    // A revoked key: refused on the next request, listed with its revocation time.
    let (kid, key) = h.key(&jwt, None, json!({"name": "revoke me"})).await;
    assert_eq!(h.me_status(&key).await, 200);
    assert_eq!(h.mcp_status(h.main, "/mcp", Some(&key)).await.status, 200);
    h.as_(&jwt)
        .delete(format!("/api/v1/keys/{kid}"))
        .expect(204)
        .await;
    let a = h.as_(&key).get("/api/v1/me").send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["message"], "this API key was revoked", "{}", a.body);
    mcp_refuses(&h, &key).await;
    let list = h.as_(&jwt).get("/api/v1/keys").expect(200).await;
    let listed = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == kid.as_str())
        .unwrap();
    assert!(listed["revoked_at"].is_i64(), "{listed}");
    // A key with a wrong secret.
    let (_, good) = h.key(&jwt, None, json!({"name": "good"})).await;
    let wrong = format!("{}0", &good[..good.len() - 1]);
    let wrong = if wrong == good {
        format!("{}1", &good[..good.len() - 1])
    } else {
        wrong
    };
    assert_eq!(h.me_status(&wrong).await, 401);
    assert_eq!(h.me_status(&good).await, 200);

    // Access tokens: a changed signature, a changed payload.
    assert_eq!(h.me_status(&tamper_signature(&jwt)).await, 401);
    mcp_refuses(&h, &tamper_signature(&jwt)).await;
    let parts: Vec<&str> = jwt.split('.').collect();
    let forged_claims = json!({"sub": uid, "iss": "switchboard", "aud": "switchboard",
        "exp": now_secs() + 600, "iat": now_secs(), "jti": "x", "ten": "default", "role": "admin"});
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(forged_claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(h.me_status(&forged).await, 401);

    // Hand-made tokens signed with the hub's own key: accepted only with the right issuer,
    // audience, expiry and tenant.
    let secret = h
        .state
        .identity
        .store()
        .shared_secret("jwt_hs256_key")
        .await
        .unwrap();
    let claims = |iss: &str, aud: &str, exp: i64, ten: &str| {
        json!({"sub": uid, "iss": iss, "aud": aud, "exp": exp, "iat": now_secs(),
               "jti": "hand-made", "ten": ten, "role": "user"})
    };
    let later = now_secs() + 600;
    let sound = hs256(
        &secret,
        &claims("switchboard", "switchboard", later, "crew"),
    );
    let v = h.as_(&sound).get("/api/v1/me").expect(200).await;
    assert_eq!(
        (v["username"].as_str(), v["credential"].as_str()),
        (Some("crew-user"), Some("session"))
    );
    for (what, token) in [
        (
            "wrong audience",
            hs256(
                &secret,
                &claims("switchboard", "someone-else", later, "crew"),
            ),
        ),
        (
            "wrong issuer",
            hs256(&secret, &claims("evil", "switchboard", later, "crew")),
        ),
        (
            "expired",
            hs256(
                &secret,
                &claims("switchboard", "switchboard", now_secs() - 60, "crew"),
            ),
        ),
        (
            "another tenant",
            hs256(
                &secret,
                &claims("switchboard", "switchboard", later, "default"),
            ),
        ),
        (
            "wrong key",
            hs256(
                b"not the hub's key at all",
                &claims("switchboard", "switchboard", later, "crew"),
            ),
        ),
        (
            "no signature",
            format!(
                "{}.",
                signing_input(
                    &json!({"alg": "none", "typ": "JWT"}),
                    &claims("switchboard", "switchboard", later, "crew")
                )
            ),
        ),
    ] {
        let a = h.as_(&token).get("/api/v1/me").send().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        assert_eq!(a.body["error"], "unauthorized", "{what}: {}", a.body);
        mcp_refuses(&h, &token).await;
    }

    // A disabled user: keys, tokens and logins refused; enabled again, they work again.
    let user_path = format!("/api/v1/users/{uid}");
    let v = h
        .as_(ADMIN)
        .patch(&user_path, json!({"disabled": true}))
        .tenant(Some("crew"))
        .expect(200)
        .await;
    assert_eq!(v["disabled"], true, "{v}");
    assert_eq!(h.me_status(&good).await, 401);
    assert_eq!(h.me_status(&jwt).await, 401);
    assert_eq!(h.me_status(&sound).await, 401);
    mcp_refuses(&h, &good).await;
    assert_eq!(h.login("crew-user", PASSWORD).await.status, 401);
    h.as_(ADMIN)
        .patch(&user_path, json!({"disabled": false}))
        .tenant(Some("crew"))
        .expect(200)
        .await;
    assert_eq!(h.me_status(&good).await, 200);
    assert_eq!(h.me_status(&jwt).await, 200);

    // A deleted user: everything refused.
    h.as_(ADMIN)
        .delete(&user_path)
        .tenant(Some("crew"))
        .expect(204)
        .await;
    assert_eq!(h.me_status(&good).await, 401);
    assert_eq!(h.me_status(&jwt).await, 401);
    mcp_refuses(&h, &good).await;
    assert_eq!(h.login("crew-user", PASSWORD).await.status, 401);
    h.as_(ADMIN)
        .get(&user_path)
        .tenant(Some("crew"))
        .expect(404)
        .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = sqlite().await;
    h.user(ADMIN, None, "rita", "user", json!(["*"])).await;
    let (_, r1) = h.tokens("rita").await;
    assert!(r1.starts_with("sbr_"), "{r1}");

    let a = h.refresh(&r1).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let (a2, r2) = (
        a.body["access_token"].as_str().unwrap().to_string(),
        a.body["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_ne!(r1, r2);
    let v = h.as_(&a2).get("/api/v1/me").expect(200).await;
    assert_eq!(v["username"], "rita");

    // Another login is another family.
    let (_, other) = h.tokens("rita").await;

    // r1 again: refused, and r2 (same family, never used) dies with it.
    let a = h.refresh(&r1).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert!(
        a.body["message"].as_str().unwrap().contains("already used"),
        "{}",
        a.body
    );
    let a = h.refresh(&r2).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["error"], "unauthorized", "{}", a.body);

    // The other family is untouched; logout revokes it.
    let a = h.refresh(&other).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let r3 = a.body["refresh_token"].as_str().unwrap().to_string();
    let a = h
        .anon()
        .post("/api/v1/auth/logout", json!({"refresh_token": r3}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(h.refresh(&r3).await.status, StatusCode::UNAUTHORIZED);

    // Garbage and forged tokens.
    let id = r3.trim_start_matches("sbr_").split('_').next().unwrap();
    for bad in [
        "",
        "sbr_x_y",
        "nonsense",
        &format!("sbr_{id}_{}", "0".repeat(64)),
    ] {
        assert_eq!(
            h.refresh(bad).await.status,
            StatusCode::UNAUTHORIZED,
            "{bad}"
        );
    }
    let a = h
        .anon()
        .post("/api/v1/auth/logout", json!({"refresh_token": "sbr_x_y"}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    // A fresh login still works.
    h.tokens("rita").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_user_and_per_address() {
    let h = sqlite().await;
    for name in ["tom", "tina", "theo"] {
        h.user(ADMIN, None, name, "user", json!(["*"])).await;
    }
    for i in 0..5 {
        let a = h.login("tom", "wrong password").await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            a.body
        );
        assert_eq!(a.body["message"], "wrong user name or password");
    }
    for password in [PASSWORD, "wrong password"] {
        let a = h.login("tom", password).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
        assert_eq!(a.body["error"], "throttled", "{}", a.body);
        assert!(a.body.get("access_token").is_none());
        let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=300).contains(&retry), "Retry-After {retry}");
    }
    // Another user from the same address is not affected yet.
    h.tokens("tina").await;
    // 20 failures from one address throttle every name from it.
    for i in 0..15 {
        let a = h.login(&format!("ghost-{i}"), "wrong password").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "ghost {i}: {}", a.body);
    }
    let a = h.login("theo", PASSWORD).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    // Existing credentials keep working: the throttle is for password guessing.
    h.as_(ADMIN).get("/api/v1/me").expect(200).await;
    h.stop().await;
}
