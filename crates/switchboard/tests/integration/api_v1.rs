//! REST API v1 over real HTTP against a real hub: a store, the control plane, the main and MCP
//! services on loopback ports, in-process HTTP fixtures and stdio fixture processes.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, FixtureServer, spawn_http};
use switchboard_store::{StoreAccess, TransportRecord};

use crate::common::*;

const TOKEN: &str = "t0ken-for-tests-123";
const MASK: &str = "********";

/// Every v1 route as (method, path template); the 401 and OpenAPI tests walk this list.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/servers"),
    ("POST", "/api/v1/servers"),
    ("GET", "/api/v1/servers/{name}"),
    ("PUT", "/api/v1/servers/{name}"),
    ("DELETE", "/api/v1/servers/{name}"),
    ("POST", "/api/v1/servers/{name}/enable"),
    ("POST", "/api/v1/servers/{name}/disable"),
    ("POST", "/api/v1/servers/{name}/restart"),
    ("GET", "/api/v1/servers/{name}/tools"),
    ("PATCH", "/api/v1/servers/{name}/tools/{tool}"),
    ("DELETE", "/api/v1/servers/{name}/tools/{tool}"),
    ("GET", "/api/v1/servers/{name}/tools/changes"),
    ("POST", "/api/v1/servers/{name}/tools/changes/approve"),
    ("GET", "/api/v1/servers/{name}/prompts"),
    ("PATCH", "/api/v1/servers/{name}/prompts/{prompt}"),
    ("DELETE", "/api/v1/servers/{name}/prompts/{prompt}"),
    ("GET", "/api/v1/groups"),
    ("POST", "/api/v1/groups"),
    ("GET", "/api/v1/groups/{name}"),
    ("PUT", "/api/v1/groups/{name}"),
    ("DELETE", "/api/v1/groups/{name}"),
    ("POST", "/api/v1/import"),
    ("GET", "/api/v1/export"),
    ("GET", "/api/v1/tools/search"),
    ("GET", "/api/v1/logs"),
    ("GET", "/api/v1/logs/stream"),
    ("GET", "/api/v1/stats"),
    ("POST", "/api/v1/reconcile"),
    ("GET", "/api/v1/settings/stdio-allow"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/tenants"),
    ("POST", "/api/v1/tenants"),
    ("DELETE", "/api/v1/tenants/{name}"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
    ("GET", "/api/v1/keys"),
    ("POST", "/api/v1/keys"),
    ("DELETE", "/api/v1/keys/{id}"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/me/credentials"),
    ("PUT", "/api/v1/me/credentials/{server}"),
    ("DELETE", "/api/v1/me/credentials/{server}"),
    ("POST", "/api/v1/server"),
    ("GET", "/api/v1/server/{id}"),
    ("DELETE", "/api/v1/server/{id}"),
    ("POST", "/api/v1/server/{id}/refresh"),
    ("GET", "/api/v1/server/{id}/tools"),
    ("GET", "/api/v1/server/{id}/discover"),
    ("POST", "/api/v1/server/{id}/tools/{name}"),
    ("GET", "/api/v1/server/{id}/resources/{uri}"),
    ("GET", "/api/v1/server/{id}/prompts/{name}"),
    ("POST", "/api/v1/server/{id}/rpc"),
    ("GET", "/api/v1/server/{id}/ping"),
    ("GET", "/api/v1/health/detailed"),
    ("GET", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/{prefix}"),
];

/// Documented routes that need no token (liveness).
const OPEN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
];

/// The seed's main-service routes, documented in the same document.
const SEED_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/mcp/tools/"),
    ("POST", "/api/mcp/add"),
    ("DELETE", "/api/mcp/"),
    ("GET", "/api/mcp/list"),
    ("GET", "/api/mcp/recover"),
];

/// A hub with a store and both services on ephemeral loopback ports.
async fn start() -> TestApp {
    TestApp::builder().token(TOKEN).start().await
}

/// Polls `tools/list` on an open session until `want` holds; returns the names.
async fn wait_tools(c: &mut McpClient, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..500 {
        names = c.tool_names().await;
        if want(&names) {
            return names;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("tools/list never matched: {names:?}");
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

/// Tools of the session other than the hub's own.
fn upstream_tools(names: &[String]) -> Vec<String> {
    let mut v: Vec<String> = names
        .iter()
        .filter(|n| !n.starts_with("switchboard__"))
        .cloned()
        .collect();
    v.sort();
    v
}

async fn fixture() -> FixtureServer {
    spawn_http(FixtureOptions::new("x")).await.expect("fixture")
}

fn pid_of(view: &Value) -> u32 {
    view["status"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid: {view}")) as u32
}

fn gone(pid: u32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true);
    !pid_alive(pid as i32) || zombie
}

async fn stored(api: &TestApp, name: &str) -> TransportRecord {
    api.control
        .store()
        .get_server("default", name)
        .await
        .expect("store")
        .expect("record")
        .transport
}

#[tokio::test]
async fn every_route_requires_the_admin_token() {
    let api = start().await;
    for (method, template) in ROUTES {
        let path = template
            .replace("{name}", "a")
            .replace("{id}", "i")
            .replace("{server}", "s")
            .replace("{tool}", "t")
            .replace("{prompt}", "p")
            .replace("{id}", "i")
            .replace("{uri}", "u")
            .replace("{prefix}", "p");
        for token in [None, Some("wrong-token-wrong-token")] {
            let req = match token {
                Some(t) => api.as_(t),
                None => api.anon(),
            };
            let a = req
                .req(method, &path)
                .text("application/json", "{}")
                .send()
                .await;
            let (status, body) = (a.status, a.body);
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {body}"
            );
            assert_eq!(body["error"], "unauthorized", "{body}");
            assert_eq!(body["status"], "error", "{body}");
        }
    }
    assert!(
        api.server_names().await.is_empty(),
        "nothing was created without the token"
    );
    api.stop().await;
}

#[tokio::test]
async fn created_server_reaches_a_connected_client_without_reconnecting() {
    let fx = fixture().await;
    let api = start().await;
    let mut c = api.client("/mcp").await;
    assert!(upstream_tools(&c.tool_names().await).is_empty());

    let view = api
        .add("x", json!({"type": "streamable-http", "url": fx.url}))
        .await;
    assert_eq!(view["name"], "x");
    assert_eq!(view["config"]["url"], fx.url);
    assert_eq!(
        (
            view["enabled"].as_bool(),
            view["session"].as_str(),
            view["created_by"].as_str()
        ),
        (Some(true), Some("shared"), Some("admin-token"))
    );

    wait_tools(&mut c, |n| has(n, "x__echo") && has(n, "x__add")).await;
    assert_eq!(
        text_of(&c.call("x__echo", json!({"text": "hi"})).await),
        "hi"
    );
    assert_eq!(
        c.call("x__add", json!({"a": 2, "b": 3})).await["structuredContent"]["sum"].as_f64(),
        Some(5.0)
    );

    assert_eq!(api.server_names().await, vec!["x"]);
    api.ready("x").await;
    api.admin()
        .post("/api/v1/servers", json!({"name": "x", "url": fx.url}))
        .expect_error(409, "conflict")
        .await;
    api.stop().await;
}

#[tokio::test]
async fn invalid_bodies_are_400_never_500() {
    let api = start().await;
    let cases = [
        json!({"name": "a", "type": "streamable-http"}),
        json!({"name": "a", "type": "carrier-pigeon", "url": "http://127.0.0.1:1/mcp"}),
        json!({"name": "a", "url": "ftp://127.0.0.1/mcp"}),
        json!({"name": "", "url": "http://127.0.0.1:1/mcp"}),
        json!({"name": "a b", "url": "http://127.0.0.1:1/mcp"}),
        json!({"name": "a"}),
        json!({"name": "a", "command": "x", "url": "http://127.0.0.1:1/mcp"}),
        json!({"name": "a", "url": "http://127.0.0.1:1/mcp", "session": "sometimes"}),
        json!({"name": "a", "url": "http://127.0.0.1:1/mcp", "timeout": -1}),
    ];
    for body in cases {
        api.admin()
            .post("/api/v1/servers", body)
            .expect_error(400, "invalid")
            .await;
    }
    for body in [
        json!({"name": "a", "enabled": "yes", "url": "http://127.0.0.1:1/mcp"}),
        json!([1, 2]),
        json!("a"),
    ] {
        api.admin()
            .post("/api/v1/servers", body)
            .expect_error(400, "bad_request")
            .await;
    }
    bad_text_everywhere(&api).await;
    assert!(api.server_names().await.is_empty());
    api.stop().await;
}

/// Non-JSON text and a missing content type on every route that takes a body.
async fn bad_text_everywhere(api: &TestApp) {
    api.add(
        "s",
        json!({"command": fixture_bin(), "args": ["stdio", "--name", "s"]}),
    )
    .await;
    api.admin()
        .post("/api/v1/groups", json!({"name": "g", "members": ["s"]}))
        .expect(201)
        .await;
    let with_body = [
        ("POST", "/api/v1/servers"),
        ("PUT", "/api/v1/servers/s"),
        ("PATCH", "/api/v1/servers/s/tools/echo"),
        ("PATCH", "/api/v1/servers/s/prompts/simple"),
        ("POST", "/api/v1/groups"),
        ("PUT", "/api/v1/groups/g"),
        ("POST", "/api/v1/import"),
    ];
    for (method, path) in with_body {
        for body in [
            ("application/json", "{not json".to_string()),
            ("text/plain", "{}".to_string()),
        ] {
            let a = api
                .admin()
                .req(method, path)
                .text(body.0, body.1)
                .send()
                .await;
            let (status, value) = (a.status, a.body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {value}");
            assert_eq!(value["error"], "bad_request", "{value}");
        }
    }
    api.admin()
        .get("/api/v1/export?reveal=perhaps")
        .expect_error(400, "bad_request")
        .await;
    api.admin()
        .put("/api/v1/servers/s", json!({"name": "t", "command": "x"}))
        .expect_error(400, "invalid")
        .await;
    api.admin()
        .put("/api/v1/groups/g", json!({"name": "h", "members": []}))
        .expect_error(400, "invalid")
        .await;
    api.admin()
        .patch(
            "/api/v1/servers/s/tools/echo",
            json!({"rename": "no spaces"}),
        )
        .expect_error(400, "invalid")
        .await;
    api.admin().delete("/api/v1/groups/g").expect(204).await;
    api.admin().delete("/api/v1/servers/s").expect(204).await;
}

#[tokio::test]
async fn urls_the_ssrf_policy_forbids_are_refused() {
    let fx = fixture().await;
    let api = start().await;
    for url in [
        "http://169.254.169.254/mcp",
        "http://10.0.0.1/mcp",
        "http://[::ffff:10.0.0.1]/mcp",
    ] {
        api.admin()
            .post("/api/v1/servers", json!({"name": "evil", "url": url}))
            .expect_error(400, "ssrf_refused")
            .await;
    }
    api.add("ok", json!({"url": fx.url})).await;
    let body = json!({"url": "http://169.254.169.254/latest/meta-data"});
    api.admin()
        .put("/api/v1/servers/ok", body)
        .expect_error(400, "ssrf_refused")
        .await;
    let file =
        json!({"mcpServers": {"fine": {"url": fx.url}, "evil": {"url": "http://10.1.2.3/mcp"}}});
    api.admin()
        .post("/api/v1/import", file)
        .expect_error(400, "ssrf_refused")
        .await;
    assert_eq!(
        api.server_names().await,
        vec!["ok"],
        "a refused import adds nothing"
    );
    api.stop().await;
}

#[tokio::test]
async fn unknown_names_are_404() {
    let api = start().await;
    let entry = json!({"command": "x"});
    let server_routes = [
        ("GET", "/api/v1/servers/nope", None),
        ("PUT", "/api/v1/servers/nope", Some(entry)),
        ("DELETE", "/api/v1/servers/nope", None),
        ("POST", "/api/v1/servers/nope/enable", None),
        ("POST", "/api/v1/servers/nope/disable", None),
        ("POST", "/api/v1/servers/nope/restart", None),
        ("GET", "/api/v1/servers/nope/tools", None),
        ("GET", "/api/v1/servers/nope/prompts", None),
        (
            "PATCH",
            "/api/v1/servers/nope/tools/echo",
            Some(json!({"enabled": false})),
        ),
        (
            "PATCH",
            "/api/v1/servers/nope/prompts/simple",
            Some(json!({"enabled": false})),
        ),
        ("DELETE", "/api/v1/servers/nope/tools/echo", None),
        ("DELETE", "/api/v1/servers/nope/prompts/simple", None),
        ("GET", "/api/v1/groups/nope", None),
        ("PUT", "/api/v1/groups/nope", Some(json!({"members": []}))),
        ("DELETE", "/api/v1/groups/nope", None),
    ];
    for (method, path, body) in server_routes {
        api.admin()
            .req(method, path)
            .json(body)
            .expect_error(404, "not_found")
            .await;
    }
    api.stop().await;
}

#[tokio::test]
async fn secrets_are_masked_and_kept_when_sent_back_masked() {
    let fx = fixture().await;
    let api = start().await;
    let remote = json!({"url": fx.url, "headers": {"Authorization": "Bearer s3cret"}});
    let created = api.add("r", remote).await;
    assert_eq!(
        created["config"]["headers"]["Authorization"], MASK,
        "{created}"
    );
    let local = json!({"command": fixture_bin(), "args": ["stdio", "--name", "l"], "env": {"TOKEN": "t0p", "OTHER": "1"}});
    api.add("l", local).await;

    let shown = api.admin().get("/api/v1/servers/l").expect(200).await;
    // Only env values whose names look secret are masked.
    assert_eq!(shown["config"]["env"], json!({"TOKEN": MASK, "OTHER": "1"}));
    let listed = api
        .admin()
        .get("/api/v1/servers")
        .expect(200)
        .await
        .to_string();
    assert!(
        !listed.contains("s3cret") && !listed.contains("t0p"),
        "{listed}"
    );

    // Send back what was shown, with one change: the secrets stay.
    let mut body = shown["config"].clone();
    body["timeout"] = json!(60);
    let replaced = api.admin().put("/api/v1/servers/l", body).expect(200).await;
    assert_eq!(replaced["config"]["timeout"], 60.0);
    let TransportRecord::Stdio { env, .. } = stored(&api, "l").await else {
        panic!("stdio")
    };
    assert_eq!((env["TOKEN"].as_str(), env["OTHER"].as_str()), ("t0p", "1"));

    let body = json!({"url": fx.url, "headers": {"Authorization": MASK, "X-New": "v2"}});
    api.admin().put("/api/v1/servers/r", body).expect(200).await;
    let TransportRecord::StreamableHttp { headers, .. } = stored(&api, "r").await else {
        panic!("http")
    };
    assert_eq!(
        (headers["Authorization"].as_str(), headers["X-New"].as_str()),
        ("Bearer s3cret", "v2")
    );

    // A new value replaces the secret; an omitted one is dropped (full replace).
    let body = json!({"url": fx.url, "headers": {"Authorization": "Bearer n3w"}});
    api.admin().put("/api/v1/servers/r", body).expect(200).await;
    let TransportRecord::StreamableHttp { headers, .. } = stored(&api, "r").await else {
        panic!("http")
    };
    assert_eq!(
        headers.into_iter().collect::<Vec<_>>(),
        vec![("Authorization".to_string(), "Bearer n3w".to_string())]
    );
    api.stop().await;
}

#[tokio::test]
async fn disable_enable_and_restart() {
    let api = start().await;
    let mut c = api.client("/mcp").await;
    api.add(
        "s",
        json!({"command": fixture_bin(), "args": ["stdio", "--name", "s"]}),
    )
    .await;
    wait_tools(&mut c, |n| has(n, "s__echo")).await;
    let before = api.ready("s").await;
    assert!(
        before["stderr_tail"].is_array(),
        "the detail view has the stderr tail: {before}"
    );

    let disabled = api
        .admin()
        .post_empty("/api/v1/servers/s/disable")
        .expect(200)
        .await;
    assert_eq!(
        (
            disabled["enabled"].as_bool(),
            disabled["config"]["disabled"].as_bool()
        ),
        (Some(false), Some(true))
    );
    wait_tools(&mut c, |n| upstream_tools(n).is_empty()).await;
    api.wait_state("s", "disabled").await;
    let old = pid_of(&before);
    assert!(
        eventually(Duration::from_secs(5), async || gone(old)).await,
        "a disabled server's process stops"
    );

    let enabled = api
        .admin()
        .post_empty("/api/v1/servers/s/enable")
        .expect(200)
        .await;
    assert_eq!(enabled["enabled"], true);
    wait_tools(&mut c, |n| has(n, "s__echo")).await;
    assert_eq!(
        text_of(&c.call("s__echo", json!({"text": "back"})).await),
        "back"
    );

    let old = pid_of(&api.ready("s").await);
    api.admin()
        .post_empty("/api/v1/servers/s/restart")
        .expect(200)
        .await;
    let new = pid_of(&api.ready("s").await);
    assert_ne!(old, new, "restart runs a new process");
    assert!(
        eventually(Duration::from_secs(5), async || gone(old)).await,
        "the old process is gone"
    );
    wait_tools(&mut c, |n| has(n, "s__echo")).await;
    assert_eq!(
        text_of(&c.call("s__echo", json!({"text": "again"})).await),
        "again"
    );
    api.stop().await;
}

#[tokio::test]
async fn delete_stops_the_process_and_spares_a_long_call_elsewhere() {
    let fx = fixture().await;
    let api = start().await;
    api.add("steady", json!({"url": fx.url})).await;
    api.add(
        "churn",
        json!({"command": fixture_bin(), "args": ["stdio", "--name", "churn"]}),
    )
    .await;
    let pid = pid_of(&api.ready("churn").await);
    api.ready("steady").await;
    let url = format!("http://{}/mcp", api.mcp);
    let long = tokio::spawn(async move {
        let mut c = McpClient::connect(&url).await;
        wait_tools(&mut c, |n| has(n, "steady__slow")).await;
        c.call("steady__slow", json!({"ms": 1500})).await
    });
    assert!(
        eventually(Duration::from_secs(10), async || fx.stats().calls() >= 1).await,
        "the long call started"
    );

    assert_eq!(
        api.admin()
            .delete("/api/v1/servers/churn")
            .expect(204)
            .await,
        Value::Null
    );
    assert!(
        eventually(Duration::from_secs(5), async || gone(pid)).await,
        "the deleted server's process is gone"
    );
    assert!(!api.hub.server_names().contains(&"churn".to_string()));
    api.admin()
        .get("/api/v1/servers/churn")
        .expect_error(404, "not_found")
        .await;
    api.admin()
        .delete("/api/v1/servers/churn")
        .expect_error(404, "not_found")
        .await;
    assert!(
        !long.is_finished(),
        "the long call was still running during the delete"
    );
    assert_eq!(text_of(&long.await.unwrap()), "slept 1500");
    api.stop().await;
}

#[tokio::test]
async fn tool_settings_hide_rename_describe_and_reset() {
    let fx = fixture().await;
    let api = start().await;
    let mut c = api.client("/mcp").await;
    api.add("x", json!({"url": fx.url})).await;
    wait_tools(&mut c, |n| has(n, "x__echo")).await;
    let tools = api.admin().get("/api/v1/servers/x/tools").expect(200).await;
    let echo = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo listed")
        .clone();
    assert_eq!(
        (echo["exported_name"].as_str(), echo["enabled"].as_bool()),
        (Some("x__echo"), Some(true))
    );
    assert!(
        echo["description"].as_str().is_some_and(|d| !d.is_empty()) && echo["rename"].is_null(),
        "{echo}"
    );

    let hidden = api
        .admin()
        .patch("/api/v1/servers/x/tools/echo", json!({"enabled": false}))
        .expect(200)
        .await;
    assert_eq!(
        (
            hidden["enabled"].as_bool(),
            hidden["exported_name"].is_null()
        ),
        (Some(false), true),
        "{hidden}"
    );
    wait_tools(&mut c, |n| !has(n, "x__echo")).await;

    let renamed = api
        .admin()
        .patch(
            "/api/v1/servers/x/tools/add",
            json!({"rename": "plus", "description": "Sums."}),
        )
        .expect(200)
        .await;
    assert_eq!(
        (
            renamed["exported_name"].as_str(),
            renamed["rename"].as_str()
        ),
        (Some("x__plus"), Some("plus"))
    );
    assert_eq!(renamed["description_override"], "Sums.");
    wait_tools(&mut c, |n| has(n, "x__plus") && !has(n, "x__add")).await;
    let list = c.request("tools/list", json!({})).await;
    let plus = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "x__plus")
        .unwrap()
        .clone();
    assert_eq!(plus["description"], "Sums.");
    assert_eq!(
        c.call("x__plus", json!({"a": 1, "b": 2})).await["structuredContent"]["sum"].as_f64(),
        Some(3.0)
    );
    let listed = api.admin().get("/api/v1/servers/x/tools").expect(200).await;
    assert!(
        listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo" && t["enabled"] == false),
        "hidden tools stay listed"
    );

    api.admin()
        .delete("/api/v1/servers/x/tools/echo")
        .expect(204)
        .await;
    api.admin()
        .delete("/api/v1/servers/x/tools/add")
        .expect(204)
        .await;
    wait_tools(&mut c, |n| {
        has(n, "x__echo") && has(n, "x__add") && !has(n, "x__plus")
    })
    .await;
    api.admin()
        .delete("/api/v1/servers/x/tools/add")
        .expect_error(404, "not_found")
        .await;
    api.stop().await;
}

#[tokio::test]
async fn prompt_settings_hide_and_reset() {
    let fx = fixture().await;
    let api = start().await;
    let mut c = api.client("/mcp").await;
    api.add("x", json!({"url": fx.url})).await;
    wait_tools(&mut c, |n| has(n, "x__echo")).await;
    let prompts = api
        .admin()
        .get("/api/v1/servers/x/prompts")
        .expect(200)
        .await;
    let names: Vec<&str> = prompts["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"simple") && names.contains(&"greeting"),
        "{prompts}"
    );

    let hidden = api
        .admin()
        .patch(
            "/api/v1/servers/x/prompts/simple",
            json!({"enabled": false}),
        )
        .expect(200)
        .await;
    assert_eq!(hidden["enabled"], false);
    assert!(
        !prompt_names(&mut c)
            .await
            .contains(&"x__simple".to_string())
    );
    api.admin()
        .delete("/api/v1/servers/x/prompts/simple")
        .expect(204)
        .await;
    assert!(
        prompt_names(&mut c)
            .await
            .contains(&"x__simple".to_string())
    );
    api.stop().await;
}

async fn prompt_names(c: &mut McpClient) -> Vec<String> {
    let r = c.request("prompts/list", json!({})).await;
    r["result"]["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn groups_crud_and_the_group_endpoint() {
    let fx = fixture().await;
    let api = start().await;
    api.add("a", json!({"url": fx.url})).await;
    api.add(
        "b",
        json!({"command": fixture_bin(), "args": ["stdio", "--name", "b"]}),
    )
    .await;
    let group = api
        .admin()
        .post("/api/v1/groups", json!({"name": "g", "members": ["a"]}))
        .expect(201)
        .await;
    assert_eq!(group, json!({"name": "g", "members": ["a"], "tools": null}));
    api.admin()
        .post("/api/v1/groups", json!({"name": "g", "members": []}))
        .expect_error(409, "conflict")
        .await;
    api.admin()
        .post("/api/v1/groups", json!({"name": "a", "members": []}))
        .expect_error(409, "conflict")
        .await;
    api.admin()
        .post("/api/v1/groups", json!({"name": "h", "members": ["zz"]}))
        .expect_error(400, "invalid")
        .await;
    api.admin()
        .post("/api/v1/servers", json!({"name": "g", "url": fx.url}))
        .expect_error(409, "conflict")
        .await;

    let mut g = api.client("/mcp/g").await;
    let names = wait_tools(&mut g, |n| has(n, "a__echo")).await;
    assert!(
        upstream_tools(&names).iter().all(|n| n.starts_with("a__")),
        "{names:?}"
    );

    let narrowed = json!({"members": ["a", "b"], "tools": ["a__echo", "b__add"]});
    api.admin()
        .put("/api/v1/groups/g", narrowed)
        .expect(200)
        .await;
    let mut g = api.client("/mcp/g").await;
    wait_tools(&mut g, |n| upstream_tools(n) == ["a__echo", "b__add"]).await;
    assert_eq!(
        g.call("b__add", json!({"a": 2, "b": 2})).await["structuredContent"]["sum"].as_f64(),
        Some(4.0)
    );
    let blocked = g
        .request(
            "tools/call",
            json!({"name": "a__add", "arguments": {"a": 1, "b": 1}}),
        )
        .await;
    assert!(blocked.get("error").is_some(), "filtered out: {blocked}");

    let one = api.admin().get("/api/v1/groups/g").expect(200).await;
    assert_eq!(one["tools"], json!(["a__echo", "b__add"]));
    assert_eq!(
        api.admin().get("/api/v1/groups").expect(200).await["groups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    api.admin().delete("/api/v1/groups/g").expect(204).await;
    api.admin()
        .get("/api/v1/groups/g")
        .expect_error(404, "not_found")
        .await;
    assert_eq!(
        api.admin().get("/api/v1/groups").expect(200).await,
        json!({"groups": []})
    );
    api.stop().await;
}

#[tokio::test]
async fn import_export_round_trip_masks_unless_revealed() {
    let fx = fixture().await;
    let api = start().await;
    let file = json!({
        "mcpServers": {
            "imp": {"type": "streamable-http", "url": fx.url, "headers": {"Authorization": "Bearer ${NOT_EXPANDED}"}},
            "loc": {"command": fixture_bin(), "args": ["stdio", "--name", "loc"], "env": {"TOKEN": "s3cret"}, "timeout": 30}
        },
        "groups": {"both": ["imp", "loc"]}
    });
    assert_eq!(
        api.admin()
            .post("/api/v1/import", file.clone())
            .expect(200)
            .await["added"],
        json!(["imp", "loc"])
    );
    assert_eq!(
        api.admin().post("/api/v1/import", file).expect(200).await["kept"],
        json!(["imp", "loc"]),
        "taken names are left alone"
    );
    let TransportRecord::StreamableHttp { headers, .. } = stored(&api, "imp").await else {
        panic!("http")
    };
    assert_eq!(
        headers["Authorization"], "Bearer ${NOT_EXPANDED}",
        "no ${{VAR}} expansion on import"
    );
    api.ready("loc").await;
    let mut c = api.client("/mcp/both").await;
    wait_tools(&mut c, |n| has(n, "imp__echo") && has(n, "loc__echo")).await;

    let masked = api.admin().get("/api/v1/export").expect(200).await;
    // Export writes placeholders the file loader expands, never the mask.
    assert_eq!(
        masked["mcpServers"]["imp"]["headers"]["Authorization"],
        "${SWITCHBOARD_SECRET_IMP_AUTHORIZATION}"
    );
    assert_eq!(
        masked["mcpServers"]["loc"]["env"]["TOKEN"],
        "${SWITCHBOARD_SECRET_LOC_TOKEN}"
    );
    assert_eq!(masked["groups"], json!({"both": ["imp", "loc"]}));
    let revealed = api
        .admin()
        .get("/api/v1/export?reveal=true")
        .expect(200)
        .await;
    assert_eq!(revealed["mcpServers"]["loc"]["env"]["TOKEN"], "s3cret");
    assert_eq!(revealed["mcpServers"]["loc"]["timeout"], 30.0);
    assert_eq!(
        api.admin()
            .get("/api/v1/export?reveal=false")
            .expect(200)
            .await,
        masked
    );

    // The revealed export, imported into another hub, exports the same.
    let other = start().await;
    assert_eq!(
        other
            .admin()
            .post("/api/v1/import", revealed.clone())
            .expect(200)
            .await["added"],
        json!(["imp", "loc"])
    );
    assert_eq!(
        other
            .admin()
            .get("/api/v1/export?reveal=true")
            .expect(200)
            .await,
        revealed
    );
    other.stop().await;
    bad_imports(&api).await;
    api.stop().await;
}

async fn bad_imports(api: &TestApp) {
    let unknown_member =
        json!({"mcpServers": {"n": {"command": "x"}}, "groups": {"gg": ["nobody"]}});
    let message = api
        .admin()
        .post("/api/v1/import", unknown_member)
        .expect_error(400, "invalid")
        .await;
    assert!(
        message["message"].as_str().unwrap().contains("groups.gg"),
        "names the entry: {message}"
    );
    api.admin()
        .post(
            "/api/v1/import",
            json!({"mcpServers": {"n": {"type": "sse"}}}),
        )
        .expect_error(400, "invalid")
        .await;
    api.admin()
        .post("/api/v1/import", json!({"services": {}}))
        .expect_error(400, "invalid")
        .await;
    assert_eq!(
        api.server_names().await,
        vec!["imp", "loc"],
        "failed imports add nothing"
    );
}

#[tokio::test]
async fn reconcile_reports_and_repairs_the_registry() {
    let fx = fixture().await;
    let api = start().await;
    api.add("a", json!({"url": fx.url})).await;
    let idle = api
        .admin()
        .post_empty("/api/v1/reconcile")
        .expect(200)
        .await;
    assert_eq!(
        idle,
        json!({"added": [], "changed": [], "removed": [], "failed": []})
    );
    api.hub.remove_server("a").await.unwrap();
    let repaired = api
        .admin()
        .post_empty("/api/v1/reconcile")
        .expect(200)
        .await;
    assert_eq!(repaired["added"], json!(["a"]), "{repaired}");
    assert_eq!(api.hub.server_names(), vec!["a"]);
    api.stop().await;
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let api = start().await;
    let doc = api.admin().get("/api/v1/openapi.json").expect(200).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": "An API key, an access token, or the admin token"})
    );
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    for (method, path) in ROUTES.iter().chain(SEED_ROUTES) {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} lacks its 401"
        );
        let ok = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with('2'));
        assert!(ok, "{method} {path} documents no success");
    }
    let methods = ["get", "put", "post", "delete", "patch"];
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| methods.iter().filter(|m| p.get(**m).is_some()).count())
        .sum();
    for (method, path) in OPEN_ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert_eq!(op["security"], json!([{}]), "{method} {path} is open");
        // Login and refresh answer 401 for a wrong password or token; health never does.
        assert_eq!(
            op["responses"]["401"].is_null(),
            !path.starts_with("/api/v1/auth/"),
            "{method} {path}: 401 documented only where a credential is checked"
        );
    }
    assert_eq!(
        documented,
        ROUTES.len() + SEED_ROUTES.len() + OPEN_ROUTES.len(),
        "no undocumented extras"
    );
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| methods.map(|m| p[m]["operationId"].as_str()))
        .flatten()
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), documented, "operation ids are unique");
    check_schemas(&doc);
    api.stop().await;
}

/// The bodies name the right schemas and every `$ref` resolves.
fn check_schemas(doc: &Value) {
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ServerInput",
        "ServerView",
        "ServerStatus",
        "ItemView",
        "ItemPatch",
        "GroupInput",
        "ReconcileReport",
        "ServersFile",
        "ApiErrorBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let create = &doc["paths"]["/api/v1/servers"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ServerInput"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ServerView"
    );
    assert!(
        schemas["ServerInput"]["properties"]["type"].is_object(),
        "serde renames are followed"
    );
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn concurrent_storm_leaves_store_and_registry_equal() {
    let fx = fixture().await;
    let api = Arc::new(start().await);
    let tasks: Vec<_> = (0..8)
        .map(|i| tokio::spawn(storm(api.clone(), fx.url.clone(), i)))
        .collect();
    let mut ops = 0;
    for t in tasks {
        ops += t.await.expect("storm task");
    }
    assert!(ops >= 100, "{ops} operations");
    let mut listed = api.server_names().await;
    listed.sort();
    let mut running = api.hub.server_names();
    running.sort();
    assert_eq!(listed, running, "the API (store) and the registry agree");
    assert!(!listed.is_empty());
    let stored: Vec<String> = api
        .control
        .store()
        .list_servers("default")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(stored.len(), listed.len());
    Arc::try_unwrap(api).ok().expect("tasks done").stop().await;
}

/// One storm task: 13 creates and deletes over its own names and names shared by all tasks.
async fn storm(api: Arc<TestApp>, url: String, task: usize) -> usize {
    for step in 0..13usize {
        let name = if step % 2 == 0 {
            format!("own{task}x{}", step % 3)
        } else {
            format!("shared{}", (task + step) % 4)
        };
        let delete = (task + step) % 3 == 2;
        let a = if delete {
            api.admin()
                .delete(format!("/api/v1/servers/{name}"))
                .send()
                .await
        } else {
            api.admin()
                .post("/api/v1/servers", json!({"name": name, "url": url}))
                .send()
                .await
        };
        let (status, body) = (a.status, a.body);
        let allowed: &[u16] = if delete { &[204, 404] } else { &[201, 409] };
        assert!(
            allowed.contains(&status.as_u16()),
            "task {task} step {step} {name}: {status} {body}"
        );
    }
    13
}

#[tokio::test]
async fn a_servers_protocol_era_is_stored_and_used() {
    let fx = fixture().await;
    let api = start().await;
    let view = api
        .add(
            "m",
            json!({"type": "streamable-http", "url": fx.url, "protocol": "2026-07-28"}),
        )
        .await;
    assert_eq!(view["config"]["protocol"], "2026-07-28", "{view}");
    let ready = api.ready("m").await;
    assert_eq!(ready["status"]["protocol"], "2026-07-28", "{ready}");
    let stored = api
        .control
        .store()
        .get_server("default", "m")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.protocol, "2026-07-28");
    // A replace that does not mention the protocol keeps it.
    let replaced = api
        .admin()
        .put(
            "/api/v1/servers/m",
            json!({"type": "streamable-http", "url": fx.url, "timeout": 20}),
        )
        .expect(200)
        .await;
    assert_eq!(replaced["config"]["protocol"], "2026-07-28", "{replaced}");
    let export = api.admin().get("/api/v1/export").expect(200).await;
    assert_eq!(
        export["mcpServers"]["m"]["protocol"], "2026-07-28",
        "{export}"
    );
    api.admin()
        .post(
            "/api/v1/servers",
            json!({"name": "bad", "url": fx.url, "protocol": "2099"}),
        )
        .expect_error(400, "invalid")
        .await;

    // The same for a stdio server (the fixture speaks both eras on stdio too).
    let stdio = json!({"command": fixture_bin(), "args": ["stdio", "--conformance"]});
    let mut entry = stdio.clone();
    entry["protocol"] = json!("2026-07-28");
    let view = api.add("s", entry).await;
    assert_eq!(view["config"]["protocol"], "2026-07-28", "{view}");
    let ready = api.ready("s").await;
    assert_eq!(ready["status"]["protocol"], "2026-07-28", "{ready}");
    let mut replace = stdio.clone();
    replace["timeout"] = json!(20);
    let replaced = api
        .admin()
        .put("/api/v1/servers/s", replace)
        .expect(200)
        .await;
    assert_eq!(replaced["config"]["protocol"], "2026-07-28", "{replaced}");
    let export = api.admin().get("/api/v1/export").expect(200).await;
    assert_eq!(
        export["mcpServers"]["s"]["protocol"], "2026-07-28",
        "{export}"
    );
    api.stop().await;
}
