//! Bad input on `/mcp`: each mistake gets its JSON-RPC error or HTTP status, and none of
//! them disturbs the sender's session or anyone else's.

use serde_json::{Value, json};

use crate::common::*;

fn code(msgs: &[Value]) -> Option<i64> {
    msgs.first().and_then(|m| m["error"]["code"].as_i64())
}

#[tokio::test]
async fn bad_messages_get_the_right_error_and_disturb_no_session() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_fixture("s", &[])}})).await;
    let url = hub.url("/mcp");
    let mut bystander = McpClient::connect(&url).await;
    let mut c = McpClient::connect(&url).await;

    // Not JSON at all.
    let (status, msgs, text) = c.post("{\"jsonrpc\": \"2.0\", \"id\": 1,".into()).await;
    assert_eq!(
        (status.as_u16(), code(&msgs)),
        (400, Some(-32700)),
        "{text}"
    );

    // Valid JSON, not JSON-RPC 2.0.
    let (status, msgs, text) = c
        .post(json!({"jsonrpc": "1.0", "id": 2, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(
        (status.as_u16(), code(&msgs)),
        (400, Some(-32600)),
        "{text}"
    );
    let (status, msgs, text) = c
        .post(json!({"id": 3, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(
        (status.as_u16(), code(&msgs)),
        (400, Some(-32600)),
        "{text}"
    );

    // A batch: no revision this session speaks (2025-06-18) allows one.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 5, "method": "prompts/list"}
    ]);
    let (status, msgs, text) = c.post(batch.to_string()).await;
    assert_eq!(
        (status.as_u16(), code(&msgs)),
        (400, Some(-32600)),
        "{text}"
    );

    // An unknown method: a JSON-RPC error, the session goes on.
    let r = c.request("no/such/method", json!({})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");

    // Params that are not an object.
    let (status, msgs, text) = c
        .post(
            json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": [1, 2]})
                .to_string(),
        )
        .await;
    // Refused by the envelope check, before any routing: 400 like every malformed message.
    assert_eq!(status.as_u16(), 400, "{text}");
    assert_eq!(code(&msgs), Some(-32602), "{text}");

    // A response to a request nobody sent: accepted and ignored.
    let (status, _, text) = c
        .post(json!({"jsonrpc": "2.0", "id": "sb-999", "result": {}}).to_string())
        .await;
    assert_eq!(status.as_u16(), 202, "{text}");
    let (status, _, text) = c
        .post(
            json!({"jsonrpc": "2.0", "id": 77, "error": {"code": -1, "message": "?"}}).to_string(),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{text}");

    // A version header that contradicts the session's protocol.
    let mut wrong = McpClient::unconnected(&url);
    wrong.session = c.session.clone();
    let resp = wrong
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("mcp-protocol-version", "1999-01-01")
        .body(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // Both sessions still work.
    for client in [&mut c, &mut bystander] {
        let r = client.call("s__echo", json!({"text": "still here"})).await;
        assert_eq!(text_of(&r), "still here", "{r}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn stateless_requests_that_contradict_their_headers_are_refused() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_fixture("s", &[])}})).await;
    let url = hub.url("/mcp");
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let post = |method_header: &'static str, body: Value| {
        let url = url.clone();
        async move {
            let resp = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", method_header)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
            (status, v)
        }
    };
    // Mcp-Method says one thing, the body another.
    let (status, v) = post(
        "prompts/list",
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "{v}"
    );
    // The version header says 2026-07-28, `_meta` another revision.
    let mut old = meta.clone();
    old["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let (status, v) = post(
        "tools/list",
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": old}}),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "{v}"
    );
    // `initialize` marked as 2026-07-28 is a removed method, not a session opener.
    let (status, v) = post(
        "initialize",
        json!({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"_meta": meta}}),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_i64()),
        (404, Some(-32601)),
        "{v}"
    );
    // A stateless client never sends responses.
    let (status, _) = post("", json!({"jsonrpc": "2.0", "id": 4, "result": {}})).await;
    assert!(status == 202 || status == 400, "{status}");
    assert_eq!(
        hub.hub.session_count(),
        0,
        "stateless requests leave no session"
    );
    hub.stop().await;
}

/// 2024-11-05 and 2025-03-26 allow batches: every request of one gets its response in one
/// array, notifications get none, and the session goes on.
#[tokio::test]
async fn a_2025_03_26_session_may_send_batches() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_fixture("s", &[])}})).await;
    let mut c = McpClient::unconnected(&hub.url("/mcp"));
    let init = c
        .request(
            "initialize",
            json!({"protocolVersion": "2025-03-26", "capabilities": {},
                   "clientInfo": {"name": "batcher", "version": "1"}}),
        )
        .await;
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26", "{init}");
    c.notify("notifications/initialized", None).await;

    let batch = json!([
        {"jsonrpc": "2.0", "id": 41, "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        {"jsonrpc": "2.0", "id": 42, "method": "tools/call",
         "params": {"name": "s__echo", "arguments": {"text": "in a batch"}}},
        {"jsonrpc": "2.0", "id": 43, "method": "no/such/method"}
    ]);
    let (status, _, text) = c.post(batch.to_string()).await;
    assert_eq!(status.as_u16(), 200, "{text}");
    let replies: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
    assert_eq!(replies.len(), 3, "{text}");
    let by_id = |id: i64| replies.iter().find(|r| r["id"] == id).cloned().unwrap();
    assert!(by_id(41)["result"]["tools"].is_array());
    assert_eq!(text_of(&by_id(42)["result"]), "in a batch");
    assert_eq!(by_id(43)["error"]["code"], -32601);

    // Only notifications: nothing to answer.
    let only = json!([{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}]);
    let (status, _, text) = c.post(only.to_string()).await;
    assert_eq!(status.as_u16(), 202, "{text}");
    // An empty batch is not a request.
    let (status, msgs, text) = c.post("[]".into()).await;
    assert_eq!(
        (status.as_u16(), code(&msgs)),
        (400, Some(-32600)),
        "{text}"
    );
    // The session still answers single requests.
    let r = c.request("tools/list", json!({})).await;
    assert!(r["result"]["tools"].is_array(), "{r}");
    hub.stop().await;
}
