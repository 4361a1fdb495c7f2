//! RFC 9728 metadata and the challenge unauthenticated MCP requests get; keys never grant
//! more than their maker holds.

use reqwest::StatusCode;
use serde_json::{Value, json};

use switchboard_http::McpAuth;

use super::*;

// ---------------------------------------------------------------------------------------------
// RFC 9728

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_mcp_requests_get_the_protected_resource_challenge() {
    let h = sqlite().await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let a = h.anon().get(path).send().await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert_eq!(
            a.body["resource"],
            format!("http://{}/mcp", h.main),
            "{}",
            a.body
        );
        assert_eq!(a.body["bearer_methods_supported"], json!(["header"]));
        assert_eq!(a.body["authorization_servers"], json!([]));
    }
    let expected = format!(
        "Bearer realm=\"switchboard\", resource_metadata=\"http://{}/.well-known/oauth-protected-resource\"",
        h.main
    );
    for (path, token) in [
        ("/mcp", None),
        ("/mcp/anything", None),
        ("/mcp", Some("sb_nope_nope")),
        ("/mcp", Some("not-a-credential")),
    ] {
        let a = h.mcp_status(h.main, path, token).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.body);
        assert_eq!(a.headers["www-authenticate"], expected.as_str());
        assert_eq!(a.body["error"], "unauthorized", "{}", a.body);
    }
    let a = h
        .api
        .http
        .get(format!("http://{}/sse", h.main))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers()["www-authenticate"], expected.as_str());
    // Management routes challenge too (without the MCP metadata).
    let a = h.anon().get("/api/v1/me").send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
    );
    // The loopback MCP service serves the default tenant without a credential, but a bad
    // credential is refused rather than ignored.
    assert_eq!(
        h.mcp_status(h.mcp, "/mcp", None).await.status,
        StatusCode::OK
    );
    let a = h.mcp_status(h.mcp, "/mcp", Some("sb_nope_nope")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    h.stop().await;

    // With `--mcp-auth required` the MCP service challenges, pointing at its own metadata.
    let h = hub().mcp_auth(McpAuth::Required).start().await;
    let a = h.mcp_status(h.mcp, "/mcp", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(
        a.headers["www-authenticate"],
        format!(
            "Bearer realm=\"switchboard\", resource_metadata=\"http://{}/.well-known/oauth-protected-resource\"",
            h.mcp
        )
        .as_str()
    );
    let meta: Value = h
        .api
        .http
        .get(format!(
            "http://{}/.well-known/oauth-protected-resource",
            h.mcp
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], format!("http://{}/mcp", h.mcp));
    assert_eq!(
        h.mcp_status(h.mcp, "/mcp", Some(ADMIN)).await.status,
        StatusCode::OK
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Escalation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_grant_more_than_their_maker_holds() {
    let h = sqlite().await;
    let mgr = tenant_with_user(&h, "esc", "esc-mgr", "manager").await;
    let root = h
        .user(ADMIN, Some("esc"), "esc-root", "admin", json!(["*"]))
        .await;
    let (_, mgr_key) = h
        .key(ADMIN, Some("esc"), json!({"name": "m", "user_id": mgr}))
        .await;
    // A manager cannot mint a key for an admin of their tenant (and so act as an admin).
    h.as_(&mgr_key)
        .post("/api/v1/keys", json!({"name": "root's", "user_id": root}))
        .expect(403)
        .await;
    let list = h
        .as_(ADMIN)
        .get("/api/v1/keys")
        .tenant(Some("esc"))
        .expect(200)
        .await;
    assert!(
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["user_id"] != root.as_str()),
        "{list}"
    );
    // Nor change or delete that admin.
    let root_path = format!("/api/v1/users/{root}");
    h.as_(&mgr_key)
        .patch(&root_path, json!({"password": "0wned-0wned"}))
        .expect(403)
        .await;
    h.as_(&mgr_key).delete(&root_path).expect(403).await;
    // The admin can.
    h.key(
        ADMIN,
        Some("esc"),
        json!({"name": "root's", "user_id": root}),
    )
    .await;

    // A key limited to some endpoints makes keys only within its own limit.
    h.as_(&mgr_key)
        .post("/api/v1/groups", json!({"name": "g1", "members": []}))
        .expect(201)
        .await;
    let (_, limited) = h
        .key(&mgr_key, None, json!({"name": "limited", "allow": ["g1"]}))
        .await;
    for allow in [json!(["*"]), json!(["g2"]), json!(["g1", "g2"])] {
        h.as_(&limited)
            .post("/api/v1/keys", json!({"name": "wider", "allow": allow}))
            .expect(403)
            .await;
    }
    let (_, narrower) = h
        .key(&limited, None, json!({"name": "same", "allow": ["g1"]}))
        .await;
    let v = h.as_(&narrower).get("/api/v1/me").expect(200).await;
    assert_eq!(v["key_allow"], json!(["g1"]), "{v}");
    let a = h.mcp_status(h.main, "/mcp", Some(&narrower)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    h.stop().await;
}
