//! The smart endpoints (`/mcp/$smart[/{group}]`, `/sse/$smart`): three meta-tools over the
//! catalogue, searches limited to what the caller's view shows, `call_tool` routed like a
//! direct call, and clear errors for bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};
use switchboard_hub::{GroupDef, ItemOverride, Overrides};
use switchboard_upstream::ListKind;

use crate::common::*;

/// `search_tools` through `c`, returning the names found, best first.
async fn search(c: &mut McpClient, query: &str, extra: Value) -> Vec<String> {
    let mut args = json!({"query": query});
    args.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = c.call("search_tools", args).await;
    let tools = r["structuredContent"]["tools"]
        .as_array()
        .expect("structured tools")
        .clone();
    // Older clients read the same JSON from the text content.
    let text: Value = serde_json::from_str(&text_of(&r)).expect("JSON text");
    assert_eq!(text["tools"].as_array().unwrap().len(), tools.len());
    tools
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// The JSON-RPC error of a `tools/call`.
async fn call_error(c: &mut McpClient, name: &str, args: Value) -> Value {
    let r = c
        .request("tools/call", json!({"name": name, "arguments": args}))
        .await;
    r.get("error")
        .cloned()
        .unwrap_or_else(|| panic!("{name} {args} should fail: {r}"))
}

#[tokio::test]
async fn the_smart_endpoint_lists_meta_tools_and_finds_and_calls_the_right_tool() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"web": http_entry(&http.url), "local": stdio_fixture("local", &[])}}),
    )
    .await;
    let mut c = hub.client("/mcp/$smart").await;
    assert_eq!(
        c.tool_names().await,
        ["search_tools", "describe_tool", "call_tool"]
    );

    let found = search(&mut c, "add two numbers together", json!({})).await;
    assert!(found.len() >= 2, "{found:?}");
    assert!(found[..2].iter().all(|n| n.ends_with("__add")), "{found:?}");
    let only_web = search(&mut c, "add two numbers together", json!({"server": "web"})).await;
    assert_eq!(only_web[0], "web__add");
    assert!(
        only_web.iter().all(|n| n.starts_with("web__")),
        "{only_web:?}"
    );
    assert_eq!(
        search(&mut c, "echo a message back", json!({"limit": 1}))
            .await
            .len(),
        1
    );

    // Full mode carries the input schema; describe_tool gives the whole definition.
    let r = c.call("search_tools", json!({"query": "echo"})).await;
    assert!(
        r["structuredContent"]["tools"][0]["inputSchema"]["properties"].is_object(),
        "{r}"
    );
    let d = c.call("describe_tool", json!({"name": "web__echo"})).await;
    assert_eq!(d["structuredContent"]["name"], "web__echo");
    assert!(d["structuredContent"]["inputSchema"].is_object());

    let r = c
        .call(
            "call_tool",
            json!({"name": "local__add", "arguments": {"a": 2, "b": 40}}),
        )
        .await;
    assert_eq!(text_of(&r), "42", "{r}");

    // Progress reaches the client with its own token, as on /mcp.
    c.received.clear();
    let r = c
        .request(
            "tools/call",
            json!({"name": "call_tool", "arguments": {"name": "web__progress", "arguments": {"steps": 3, "interval_ms": 20}},
                   "_meta": {"progressToken": "p-7"}}),
        )
        .await;
    assert_eq!(text_of(&r["result"]), "done 3", "{r}");
    let progress: Vec<&Value> = c
        .received
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", c.received);
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-7")
    );
    hub.stop().await;
}

#[tokio::test]
async fn searches_never_find_disabled_tools_or_tools_outside_the_group() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(json!({"mcpServers": {
        "web": http_entry(&http.url),
        "local": stdio_fixture("local", &[]),
    }}))
    .await;
    let mut overrides = Overrides::new();
    overrides.insert(
        ("local".into(), ListKind::Tools, "echo".into()),
        ItemOverride {
            enabled: false,
            description: None,
            rename: None,
        },
    );
    overrides.insert(
        ("web".into(), ListKind::Tools, "add".into()),
        ItemOverride {
            enabled: true,
            description: Some("Sums a pair of integers.".into()),
            rename: Some("plus".into()),
        },
    );
    hub.hub.set_overrides(overrides);
    let groups = BTreeMap::from([(
        "team".to_string(),
        GroupDef {
            members: vec!["web".into()],
            tools: Some(BTreeSet::from([
                "web__echo".to_string(),
                "web__plus".to_string(),
            ])),
        },
    )]);
    hub.hub.set_group_defs(groups).await.unwrap();

    let mut all = hub.client("/mcp/$smart").await;
    let echoes = search(&mut all, "echo a message", json!({})).await;
    assert!(echoes.contains(&"web__echo".to_string()), "{echoes:?}");
    assert!(
        !echoes.contains(&"local__echo".to_string()),
        "a disabled tool was found: {echoes:?}"
    );
    // The renamed and re-described tool is found under its new name and words.
    let sums = search(&mut all, "sum a pair of integers", json!({})).await;
    assert_eq!(sums[0], "web__plus", "{sums:?}");
    assert!(!sums.contains(&"web__add".to_string()));
    let err = call_error(
        &mut all,
        "call_tool",
        json!({"name": "local__echo", "arguments": {"message": "x"}}),
    )
    .await;
    assert_eq!(err["code"], -32602, "{err}");

    let mut team = hub.client("/mcp/$smart/team").await;
    let found = search(
        &mut team,
        "add numbers echo message sleep progress",
        json!({"limit": 50}),
    )
    .await;
    let set: BTreeSet<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(
        set,
        BTreeSet::from(["web__echo", "web__plus"]),
        "group filter: {found:?}"
    );
    let err = call_error(&mut team, "describe_tool", json!({"name": "web__slow"})).await;
    assert_eq!(err["code"], -32602, "{err}");
    let err = call_error(
        &mut team,
        "call_tool",
        json!({"name": "local__add", "arguments": {"a": 1, "b": 2}}),
    )
    .await;
    assert_eq!(err["code"], -32602, "{err}");

    // An unknown group is not an endpoint.
    let resp = reqwest::Client::new()
        .post(hub.url("/mcp/$smart/nope"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    hub.stop().await;
}

#[tokio::test]
async fn an_added_server_is_found_within_a_second_and_a_removed_one_is_gone() {
    let hub = TestHub::start(json!({"mcpServers": {"one": stdio_fixture("one", &[])}})).await;
    let mut c = hub.client("/mcp/$smart").await;
    assert!(
        search(&mut c, "add numbers", json!({}))
            .await
            .iter()
            .all(|n| n.starts_with("one__"))
    );

    let http = spawn_http(FixtureOptions::new("late")).await.unwrap();
    let spec =
        switchboard_core::config::parse_server_value("late", &http_entry(&http.url), None, "__")
            .expect("spec");
    hub.hub.add_server(spec).await.unwrap();
    let started = std::time::Instant::now();
    let mut found = false;
    while started.elapsed() < Duration::from_secs(1) {
        if search(&mut c, "add numbers", json!({}))
            .await
            .contains(&"late__add".to_string())
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(found, "the added server's tools were not found within 1 s");

    hub.hub.remove_server("late").await.unwrap();
    let after = search(&mut c, "add numbers", json!({})).await;
    assert!(after.iter().all(|n| !n.starts_with("late__")), "{after:?}");
    hub.stop().await;
}

#[tokio::test]
async fn bad_meta_tool_input_gets_a_clear_invalid_params_error() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_fixture("s", &[])}})).await;
    let mut c = hub.client("/mcp/$smart").await;
    let cases = [
        ("search_tools", json!({"query": ""}), "query"),
        ("search_tools", json!({"query": "   "}), "query"),
        ("search_tools", json!({}), "query"),
        ("search_tools", json!({"query": 5}), "query"),
        ("search_tools", json!({"query": "add", "limit": 0}), "limit"),
        (
            "search_tools",
            json!({"query": "add", "limit": 10000}),
            "limit",
        ),
        (
            "search_tools",
            json!({"query": "add", "limit": "ten"}),
            "limit",
        ),
        ("search_tools", json!({"query": "x".repeat(5000)}), "longer"),
        ("describe_tool", json!({"name": "s__nope"}), "unknown tool"),
        (
            "call_tool",
            json!({"name": "s__nope", "arguments": {}}),
            "unknown tool",
        ),
        (
            "call_tool",
            json!({"name": "s__add", "arguments": [1, 2]}),
            "arguments must be an object",
        ),
        ("call_tool", json!({"arguments": {}}), "name"),
        ("call_tool", json!({"name": "call_tool"}), "meta-tool"),
    ];
    for (tool, args, words) in cases {
        let err = call_error(&mut c, tool, args.clone()).await;
        assert_eq!(err["code"], -32602, "{tool} {args}: {err}");
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains(words),
            "{tool} {args}: {msg:?} should mention {words:?}"
        );
    }
    // Meta-tool arguments that are not an object at all.
    let r = c
        .request(
            "tools/call",
            json!({"name": "search_tools", "arguments": "add"}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    hub.stop().await;
}
