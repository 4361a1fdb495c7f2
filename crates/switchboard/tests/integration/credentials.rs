//! Per-user upstream credentials: a user stores their own headers for a server, and calls
//! from their MCP sessions reach that server with them; everyone else's calls keep the
//! server's configured headers.

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::{McpClient, TestApp, eventually, init};

const TOKEN: &str = "credentials-admin-token-0123456789";

async fn send(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Logs `username` in; returns an access token.
async fn login(base: &str, username: &str, password: &str) -> String {
    let (status, body) = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("login");
    assert_eq!(status, 200);
    let body: Value = body.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_users_own_headers_replace_the_servers_for_their_calls_only() {
    init();
    let upstream = spawn_http(FixtureOptions::new("gh")).await.unwrap();
    let app = TestApp::builder().token(TOKEN).start().await;
    let base = app.url("");

    let (status, body) = send(
        "POST",
        &format!("{base}/api/v1/servers"),
        TOKEN,
        Some(json!({"name": "gh", "url": upstream.url,
                    "headers": {"Authorization": "Bearer shared-token", "X-Team": "core"}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for user in ["ana", "ben"] {
        let (status, body) = send(
            "POST",
            &format!("{base}/api/v1/users"),
            TOKEN,
            Some(json!({"username": user, "password": "long enough password"})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let ana = login(&base, "ana", "long enough password").await;
    let ben = login(&base, "ben", "long enough password").await;

    // Bad input first: an unknown server, a malformed header, the admin token (no user).
    let url = format!("{base}/api/v1/me/credentials/gh");
    let mine = json!({"headers": {"authorization": "Bearer ana-personal-token"}});
    let (status, _) = send(
        "PUT",
        &format!("{base}/api/v1/me/credentials/nope"),
        &ana,
        Some(mine.clone()),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        "PUT",
        &url,
        &ana,
        Some(json!({"headers": {"bad name": "x"}})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send("PUT", &url, TOKEN, Some(mine.clone())).await;
    assert_eq!(status, 400);
    let (status, body) = send("PUT", &url, &ana, Some(mine)).await;
    assert_eq!(status, 204, "{body}");
    let (_, listed) = send("GET", &format!("{base}/api/v1/me/credentials"), &ana, None).await;
    assert_eq!(listed, json!({"servers": ["gh"]}));
    let (_, listed) = send("GET", &format!("{base}/api/v1/me/credentials"), &ben, None).await;
    assert_eq!(listed, json!({"servers": []}));

    // Each user calls the tool through the main service's MCP endpoint.
    let mcp = format!("{base}/mcp");
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
    let (status, _) = send("DELETE", &url, &ana, None).await;
    assert_eq!(status, 204);
    let (status, _) = send("DELETE", &url, &ana, None).await;
    assert_eq!(status, 404);
    let before = authorization_of_echo_calls().len();
    let mut a2 = McpClient::connect_authorized(&mcp, &ana).await;
    a2.call("gh__echo", json!({"text": "again"})).await;
    let seen: Vec<String> = authorization_of_echo_calls()[before..].to_vec();
    assert!(seen.iter().all(|h| h == "Bearer shared-token"), "{seen:?}");
    app.stop().await;
}
