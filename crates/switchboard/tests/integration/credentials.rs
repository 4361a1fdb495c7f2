//! Per-user upstream credentials: a user stores their own headers for a server, and calls
//! from their MCP sessions reach that server with them; everyone else's calls keep the
//! server's configured headers.

use serde_json::json;
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::{McpClient, ServesApi, TestApp, eventually, init};

const TOKEN: &str = "credentials-admin-token-0123456789";

/// Logs `username` in; returns an access token.
async fn login(app: &TestApp, username: &str, password: &str) -> String {
    let body = app
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"username": username, "password": password}),
        )
        .expect(200)
        .await;
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_users_own_headers_replace_the_servers_for_their_calls_only() {
    init();
    let upstream = spawn_http(FixtureOptions::new("gh")).await.unwrap();
    let app = TestApp::builder()
        .token(TOKEN)
        .servers([json!({"name": "gh", "url": upstream.url,
                         "headers": {"Authorization": "Bearer shared-token", "X-Team": "core"}})])
        .start()
        .await;
    for user in ["ana", "ben"] {
        app.admin()
            .post(
                "/api/v1/users",
                json!({"username": user, "password": "long enough password"}),
            )
            .expect(201)
            .await;
    }
    let ana = login(&app, "ana", "long enough password").await;
    let ben = login(&app, "ben", "long enough password").await;

    // Bad input first: an unknown server, a malformed header, the admin token (no user).
    let url = "/api/v1/me/credentials/gh";
    let mine = json!({"headers": {"authorization": "Bearer ana-personal-token"}});
    app.as_(&ana)
        .put("/api/v1/me/credentials/nope", mine.clone())
        .expect(404)
        .await;
    app.as_(&ana)
        .put(url, json!({"headers": {"bad name": "x"}}))
        .expect(400)
        .await;
    app.as_(TOKEN).put(url, mine.clone()).expect(400).await;
    app.as_(&ana).put(url, mine).expect(204).await;
    let listed = app
        .as_(&ana)
        .get("/api/v1/me/credentials")
        .send()
        .await
        .body;
    assert_eq!(listed, json!({"servers": ["gh"]}));
    let listed = app
        .as_(&ben)
        .get("/api/v1/me/credentials")
        .send()
        .await
        .body;
    assert_eq!(listed, json!({"servers": []}));

    // Each user calls the tool through the main service's MCP endpoint.
    let mcp = app.url("/mcp");
    assert!(
        eventually(std::time::Duration::from_secs(5), async || {
            let mut c = McpClient::connect_authorized(&mcp, &ana).await;
            c.tool_names().await.contains(&"gh__echo".to_string())
        })
        .await
    );
    let authorization_of_echo_calls = || {
        upstream
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .filter_map(|r| r.header("authorization").map(str::to_string))
            .collect::<Vec<_>>()
    };
    let before = authorization_of_echo_calls().len();
    let mut a = McpClient::connect_authorized(&mcp, &ana).await;
    a.call("gh__echo", json!({"text": "from ana"})).await;
    let seen: Vec<String> = authorization_of_echo_calls()[before..].to_vec();
    assert!(
        seen.iter().any(|h| h == "Bearer ana-personal-token"),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|h| h == "Bearer shared-token"), "{seen:?}");
    // The other configured headers still go along.
    assert!(
        upstream
            .requests()
            .iter()
            .rev()
            .take(3)
            .all(|r| r.header("x-team") == Some("core"))
    );

    let before = authorization_of_echo_calls().len();
    let mut b = McpClient::connect_authorized(&mcp, &ben).await;
    b.call("gh__echo", json!({"text": "from ben"})).await;
    let seen: Vec<String> = authorization_of_echo_calls()[before..].to_vec();
    assert!(seen.iter().all(|h| h == "Bearer shared-token"), "{seen:?}");

    // Removing them puts ana's new sessions back on the shared headers.
    app.as_(&ana).delete(url).expect(204).await;
    app.as_(&ana).delete(url).expect(404).await;
    let before = authorization_of_echo_calls().len();
    let mut a2 = McpClient::connect_authorized(&mcp, &ana).await;
    a2.call("gh__echo", json!({"text": "again"})).await;
    let seen: Vec<String> = authorization_of_echo_calls()[before..].to_vec();
    assert!(seen.iter().all(|h| h == "Bearer shared-token"), "{seen:?}");
    app.stop().await;
}
