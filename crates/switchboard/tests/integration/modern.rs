//! The stateless 2026-07-28 protocol on the same `/mcp` URL as session-based clients.

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::*;

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}})
}

/// POSTs one stateless request with the routing headers; returns status and messages.
async fn modern(
    url: &str,
    method: &str,
    mut params: Value,
    name: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Vec<Value>) {
    if params.get("_meta").is_none() {
        params["_meta"] = meta();
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-method", method);
    if !headers.iter().any(|(k, _)| *k == "mcp-protocol-version") {
        req = req.header("mcp-protocol-version", "2026-07-28");
    }
    if let Some(n) = name {
        req = req.header("mcp-name", n);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, parse_messages(&ct, &resp.text().await.unwrap()))
}

#[tokio::test]
async fn stateless_clients_and_session_clients_share_one_url() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"h": http_entry(&http.url), "s": stdio_fixture("s", &[])}}),
    )
    .await;
    let url = hub.url("/mcp");
    let mut legacy = hub.client("/mcp").await;

    let (status, msgs) = modern(&url, "server/discover", json!({}), None, &[]).await;
    assert_eq!(status, 200);
    let r = &msgs[0]["result"];
    assert_eq!(r["resultType"], "complete");
    assert!(
        r["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28")),
        "{r}"
    );
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "switchboard"
    );

    let (status, msgs) = modern(&url, "tools/list", json!({}), None, &[]).await;
    assert_eq!(status, 200);
    let r = &msgs[0]["result"];
    assert_eq!(
        (
            r["resultType"].as_str(),
            r["ttlMs"].as_i64(),
            r["cacheScope"].as_str()
        ),
        (Some("complete"), Some(0), Some("private")),
        "{r}"
    );
    assert!(
        r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "s__echo")
    );

    let (status, msgs) = modern(
        &url,
        "tools/call",
        json!({"name": "s__echo", "arguments": {"text": "now"}}),
        Some("s__echo"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(msgs[0]["result"]["resultType"], "complete");
    assert_eq!(text_of(&msgs[0]["result"]), "now");

    let mut params = json!({"name": "h__progress", "arguments": {"steps": 2, "interval_ms": 10}});
    params["_meta"] = meta();
    params["_meta"]["progressToken"] = json!("p-9");
    let (status, msgs) = modern(&url, "tools/call", params, Some("h__progress"), &[]).await;
    assert_eq!(status, 200);
    let progress: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 2, "{msgs:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-9")
    );
    assert_eq!(msgs.last().unwrap()["result"]["resultType"], "complete");

    // The legacy client on the same URL is unaffected and sees no resultType it did not ask for.
    let r = legacy.call("h__echo", json!({"text": "old"})).await;
    assert_eq!(text_of(&r), "old");
    assert!(r.get("resultType").is_none());
    hub.stop().await;
}

#[tokio::test]
async fn stateless_requests_are_checked_with_the_right_errors() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_fixture("s", &[])}})).await;
    let url = hub.url("/mcp");
    let echo = json!({"name": "s__echo", "arguments": {"text": "x"}});

    let (status, msgs) = modern(&url, "tools/call", echo.clone(), Some("s__other"), &[]).await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "Mcp-Name mismatch: {msgs:?}"
    );
    let (status, msgs) = modern(&url, "tools/call", echo.clone(), None, &[]).await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "Mcp-Name missing: {msgs:?}"
    );
    let (status, msgs) = modern(
        &url,
        "tools/call",
        echo.clone(),
        Some("=?base64?c19fZWNobw==?="),
        &[],
    )
    .await;
    assert_eq!(status, 200, "a base64-encoded Mcp-Name matches: {msgs:?}");

    let mut old = echo.clone();
    old["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2027-01-01", "io.modelcontextprotocol/clientCapabilities": {}});
    let (status, msgs) = modern(
        &url,
        "tools/call",
        old,
        Some("s__echo"),
        &[("mcp-protocol-version", "2027-01-01")],
    )
    .await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (400, Some(-32022)),
        "{msgs:?}"
    );
    assert_eq!(msgs[0]["error"]["data"]["supported"], json!(["2026-07-28"]));
    let mut missing = echo.clone();
    missing["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
    let (status, msgs) = modern(&url, "tools/call", missing, Some("s__echo"), &[]).await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (400, Some(-32602)),
        "missing clientCapabilities: {msgs:?}"
    );

    let (status, msgs) = modern(&url, "no/such", json!({}), None, &[]).await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (404, Some(-32601)),
        "{msgs:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_stateless_upstream_serves_legacy_and_modern_clients() {
    let http = spawn_http(FixtureOptions::new("m")).await.unwrap();
    let hub = TestHub::start(json!({"mcpServers": {
        "m": {"type": "streamable-http", "url": http.url, "protocol": "2026-07-28"},
        "l": {"type": "streamable-http", "url": http.url, "protocol": "legacy"},
    }}))
    .await;
    let status = |name: &str| server_status(&hub.hub, name);
    assert_eq!(status("m").state, "ready", "{:?}", status("m"));
    assert_eq!(status("m").protocol.as_deref(), Some("2026-07-28"));
    assert_eq!(status("l").protocol.as_deref(), Some("2025-11-25"));

    let mut legacy = hub.client("/mcp").await;
    assert!(legacy.tool_names().await.contains(&"m__echo".to_string()));
    let r = legacy
        .call("m__echo", json!({"text": "through a stateless hop"}))
        .await;
    assert_eq!(text_of(&r), "through a stateless hop");
    assert!(
        r.get("resultType").is_none(),
        "legacy clients never see resultType: {r}"
    );
    let r = legacy
        .request("tools/call", json!({"name": "m__progress", "arguments": {"steps": 2, "interval_ms": 10}, "_meta": {"progressToken": "lp"}}))
        .await;
    assert_eq!(text_of(&r["result"]), "done 2", "{r}");
    assert_eq!(
        legacy
            .received
            .iter()
            .filter(|m| m["params"]["progressToken"] == "lp")
            .count(),
        2,
        "{:?}",
        legacy.received
    );
    let got = legacy
        .request(
            "prompts/get",
            json!({"name": "m__greeting", "arguments": {"name": "Eve"}}),
        )
        .await;
    assert!(
        got["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("Eve"),
        "{got}"
    );

    let (status, msgs) = modern(
        &hub.url("/mcp"),
        "tools/call",
        json!({"name": "m__echo", "arguments": {"text": "m2m"}}),
        Some("m__echo"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(msgs[0]["result"]["resultType"], "complete");
    assert_eq!(text_of(&msgs[0]["result"]), "m2m");
    hub.stop().await;
}

#[tokio::test]
async fn questions_from_a_session_upstream_become_multi_round_trips() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"h": http_entry(&http.url), "s": stdio_fixture("s", &[])}}),
    )
    .await;
    let url = hub.url("/mcp");
    let caps = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}});
    for tool in ["h__elicit", "s__elicit"] {
        let first = json!({"name": tool, "arguments": {"message": "Your name?"}, "_meta": caps});
        let (status, msgs) = modern(&url, "tools/call", first.clone(), Some(tool), &[]).await;
        assert_eq!(status, 200);
        let r = &msgs.last().unwrap()["result"];
        assert_eq!(r["resultType"], "input_required", "{tool}: {r}");
        let (key, ask) = r["inputRequests"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        assert_eq!(ask["method"], "elicitation/create");
        assert_eq!(ask["params"]["message"], "Your name?");
        let state = r["requestState"].as_str().unwrap().to_string();

        let mut retry = first.clone();
        retry["inputResponses"] = json!({key: {"action": "accept", "content": {"answer": "Ada"}}});
        retry["requestState"] = json!(state);
        let (status, msgs) = modern(&url, "tools/call", retry.clone(), Some(tool), &[]).await;
        assert_eq!(status, 200);
        let done = &msgs.last().unwrap()["result"];
        assert_eq!(done["resultType"], "complete", "{tool}: {done}");
        assert!(
            text_of(done).contains("accept") && text_of(done).contains("Ada"),
            "{tool}: {done}"
        );

        // A requestState is good for one retry only.
        let (_, msgs) = modern(&url, "tools/call", retry, Some(tool), &[]).await;
        assert_eq!(msgs[0]["error"]["code"], -32602, "{msgs:?}");
    }
    // A client that did not declare elicitation is not asked: the upstream hears a refusal
    // and the call fails with the capability the client is missing.
    let plain = json!({"name": "s__elicit", "arguments": {"message": "?"}});
    let (status, msgs) = modern(&url, "tools/call", plain, Some("s__elicit"), &[]).await;
    let e = &msgs.last().unwrap()["error"];
    assert_eq!(
        (status, e["code"].as_i64()),
        (400, Some(-32021)),
        "{msgs:?}"
    );
    assert_eq!(
        e["data"]["requiredCapabilities"],
        json!({"elicitation": {}}),
        "{e}"
    );
    hub.stop().await;
}
