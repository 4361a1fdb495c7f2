//! The stateless 2026-07-28 protocol on the same `/mcp` URL as session-based clients.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::*;

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}})
}

/// POSTs one stateless request with the routing headers; returns status and messages.
async fn stateless(
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

    let (status, msgs) = stateless(&url, "server/discover", json!({}), None, &[]).await;
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

    let (status, msgs) = stateless(&url, "tools/list", json!({}), None, &[]).await;
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

    let (status, msgs) = stateless(
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
    let (status, msgs) = stateless(&url, "tools/call", params, Some("h__progress"), &[]).await;
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

    let (status, msgs) = stateless(&url, "tools/call", echo.clone(), Some("s__other"), &[]).await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "Mcp-Name mismatch: {msgs:?}"
    );
    let (status, msgs) = stateless(&url, "tools/call", echo.clone(), None, &[]).await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "Mcp-Name missing: {msgs:?}"
    );
    let (status, msgs) = stateless(
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
    let (status, msgs) = stateless(
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
    let (status, msgs) = stateless(&url, "tools/call", missing, Some("s__echo"), &[]).await;
    assert_eq!(
        (status, msgs[0]["error"]["code"].as_i64()),
        (400, Some(-32602)),
        "missing clientCapabilities: {msgs:?}"
    );

    let (status, msgs) = stateless(&url, "no/such", json!({}), None, &[]).await;
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

    let (status, msgs) = stateless(
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
        let (status, msgs) = stateless(&url, "tools/call", first.clone(), Some(tool), &[]).await;
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
        let (status, msgs) = stateless(&url, "tools/call", retry.clone(), Some(tool), &[]).await;
        assert_eq!(status, 200);
        let done = &msgs.last().unwrap()["result"];
        assert_eq!(done["resultType"], "complete", "{tool}: {done}");
        assert!(
            text_of(done).contains("accept") && text_of(done).contains("Ada"),
            "{tool}: {done}"
        );

        // A requestState is good for one retry only.
        let (_, msgs) = stateless(&url, "tools/call", retry, Some(tool), &[]).await;
        assert_eq!(msgs[0]["error"]["code"], -32602, "{msgs:?}");
    }
    // A client that did not declare elicitation is not asked: the upstream hears a refusal
    // and the call fails with the capability the client is missing.
    let plain = json!({"name": "s__elicit", "arguments": {"message": "?"}});
    let (status, msgs) = stateless(&url, "tools/call", plain, Some("s__elicit"), &[]).await;
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
    // Tool search's usage prior counts each call once, when it ends: not its
    // `input_required` first leg, not the refused second retry or the failed call.
    for tool in ["h__elicit", "s__elicit"] {
        let n = hub.hub.tool_calls_counted(tool);
        assert!((n - 1.0).abs() < 0.01, "{tool} counted {n} times");
    }
    hub.stop().await;
}

/// The conformance fixture as a stdio server the hub speaks 2026-07-28 to.
fn stdio_2026_entry() -> Value {
    json!({"command": fixture_bin(), "args": ["stdio", "--conformance"], "protocol": "2026-07-28"})
}

/// A session client's `tools/call` whose reply stream carries a server request: answers
/// every `elicitation/create` on it with `content` (as a separate POST, like a real
/// client) and returns every message of the stream, the response last.
async fn call_answering(client: &McpClient, id: u64, params: Value, content: Value) -> Vec<Value> {
    use switchboard_core::sse::Decoder;
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let session = client.session.clone().expect("a session");
    let mut resp = client
        .http
        .post(&client.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut decoder = Decoder::new(1 << 20);
    let mut events = Vec::new();
    let mut seen = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        decoder.feed(&chunk, &mut events).unwrap();
        for ev in events.drain(..) {
            let Ok(msg) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            if msg["method"] == "elicitation/create" {
                let answer = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"action": "accept", "content": content}});
                let r = client
                    .http
                    .post(&client.url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-session-id", &session)
                    .body(answer.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
            }
            let done = msg["id"] == json!(id) && msg.get("method").is_none();
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("the stream ended without a response: {seen:?}");
}

#[tokio::test]
async fn a_stdio_upstream_in_the_2026_era_serves_session_and_stateless_clients() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_2026_entry()}})).await;
    let status = server_status(&hub.hub, "s");
    assert_eq!(status.state, "ready", "{status:?}");
    assert_eq!(status.protocol.as_deref(), Some("2026-07-28"));
    let url = hub.url("/mcp");

    // Session client: a plain call, progress, and a question the stateless server asks as
    // input_required, which the hub turns into a real elicitation request and retries.
    let mut legacy = McpClient::connect_with(&url, json!({"elicitation": {}})).await;
    let r = legacy.call("s__test_simple_text", json!({})).await;
    assert_eq!(text_of(&r), "This is a simple text response for testing.");
    assert!(r.get("resultType").is_none(), "{r}");
    let r = legacy
        .request(
            "tools/call",
            json!({"name": "s__test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "sp"}}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let progress = legacy
        .received
        .iter()
        .filter(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "sp")
        .count();
    assert!(progress >= 2, "{:?}", legacy.received);
    let id = legacy.next_id();
    let msgs = call_answering(
        &legacy,
        id,
        json!({"name": "s__test_input_required_result_elicitation", "arguments": {}}),
        json!({"name": "Ada"}),
    )
    .await;
    let asked: Vec<_> = msgs
        .iter()
        .filter(|m| m["method"] == "elicitation/create")
        .collect();
    assert_eq!(asked.len(), 1, "{msgs:?}");
    assert_eq!(asked[0]["params"]["message"], "What is your name?");
    assert_eq!(
        text_of(&msgs.last().unwrap()["result"]),
        "Hello, Ada!",
        "{msgs:?}"
    );

    // Stateless client: end to end, the same call, progress and the MRTR round trip.
    let (status, msgs) = stateless(
        &url,
        "tools/call",
        json!({"name": "s__test_simple_text", "arguments": {}}),
        Some("s__test_simple_text"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(msgs[0]["result"]["resultType"], "complete", "{msgs:?}");
    let mut m = meta();
    m["progressToken"] = json!("mp");
    let (status, msgs) = stateless(
        &url,
        "tools/call",
        json!({"name": "s__test_tool_with_progress", "arguments": {}, "_meta": m}),
        Some("s__test_tool_with_progress"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let progress = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "mp")
        .count();
    assert!(progress >= 2, "{msgs:?}");
    assert_eq!(msgs.last().unwrap()["result"]["resultType"], "complete");

    let tool = "s__test_input_required_result_elicitation";
    let caps = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}});
    let first = json!({"name": tool, "arguments": {}, "_meta": caps});
    let (status, msgs) = stateless(&url, "tools/call", first.clone(), Some(tool), &[]).await;
    assert_eq!(status, 200);
    let r = &msgs.last().unwrap()["result"];
    assert_eq!(r["resultType"], "input_required", "{r}");
    let (key, ask) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    assert_eq!(ask["method"], "elicitation/create");
    let mut retry = first;
    retry["inputResponses"] = json!({key: {"action": "accept", "content": {"name": "Ada"}}});
    retry["requestState"] = r["requestState"].clone();
    let (status, msgs) = stateless(&url, "tools/call", retry, Some(tool), &[]).await;
    assert_eq!(status, 200);
    let done = &msgs.last().unwrap()["result"];
    assert_eq!(done["resultType"], "complete", "{done}");
    assert_eq!(text_of(done), "Hello, Ada!");
    hub.stop().await;
}

/// A stdio server that only speaks 2026-07-28: it refuses `initialize` with an error, as
/// docs/protocol.md §1 says a stateless-only server does, and answers `server/discover` and
/// `tools/list` only when the request carries the per-request `_meta`. It ends every
/// `subscriptions/listen` at once, as a server closing it on purpose would, and notes each
/// one in `$LISTEN_LOG`.
const STATELESS_ONLY_SH: &str = r#"
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/^{[^{]*"id":\([0-9]*\).*/\1/p')
  [ -n "$id" ] || continue
  case "$line" in
    *'"method":"initialize"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"error\":{\"code\":-32600,\"message\":\"stateless only\",\"data\":{\"supported\":[\"2026-07-28\"]}}}" ;;
    *'"io.modelcontextprotocol/protocolVersion":"2026-07-28"'*)
      case "$line" in
        *'"method":"server/discover"'*)
          echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"resultType\":\"complete\",\"supportedVersions\":[\"2026-07-28\"],\"capabilities\":{\"tools\":{}},\"ttlMs\":0,\"cacheScope\":\"public\",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":{\"name\":\"sh\",\"version\":\"1\"}}}}" ;;
        *'"method":"subscriptions/listen"'*)
          echo "$line" >> "$LISTEN_LOG"
          echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"resultType\":\"complete\"}}" ;;
        *'"method":"tools/list"'*)
          echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"resultType\":\"complete\",\"tools\":[{\"name\":\"only\",\"inputSchema\":{\"type\":\"object\"}}],\"ttlMs\":0,\"cacheScope\":\"public\"}}" ;;
        *)
          echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"resultType\":\"complete\",\"content\":[{\"type\":\"text\",\"text\":\"stateless\"}]}}" ;;
      esac ;;
    *)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"error\":{\"code\":-32602,\"message\":\"missing _meta\"}}" ;;
  esac
done
"#;

#[tokio::test]
async fn auto_finds_a_stateless_only_stdio_server_and_keeps_dual_era_ones_on_sessions() {
    let listens = std::env::temp_dir().join(format!("sb-listen-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&listens);
    let hub = TestHub::start(json!({"mcpServers": {
        "z": {"command": "sh", "args": ["-c", STATELESS_ONLY_SH], "env": {"LISTEN_LOG": listens}},
        "d": {"command": fixture_bin(), "args": ["stdio", "--conformance"], "protocol": "auto"},
    }}))
    .await;
    let z = server_status(&hub.hub, "z");
    assert_eq!(z.state, "ready", "{z:?}");
    assert_eq!(z.protocol.as_deref(), Some("2026-07-28"));
    let d = server_status(&hub.hub, "d");
    assert_eq!(d.state, "ready", "{d:?}");
    assert_eq!(d.protocol.as_deref(), Some("2025-11-25"));

    let mut client = hub.client("/mcp").await;
    assert!(client.tool_names().await.contains(&"z__only".to_string()));
    let r = client.call("z__only", json!({})).await;
    assert_eq!(text_of(&r), "stateless");

    // The hub keeps listening: a listen the server ended is sent again, with its filter.
    let count = || {
        std::fs::read_to_string(&listens)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(
        eventually(Duration::from_secs(10), async || count() >= 2).await,
        "{} listen requests",
        count()
    );
    let first = std::fs::read_to_string(&listens).unwrap();
    let first: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["params"]["notifications"]["toolsListChanged"], true,
        "{first}"
    );
    hub.stop().await;
    let _ = std::fs::remove_file(&listens);
}
