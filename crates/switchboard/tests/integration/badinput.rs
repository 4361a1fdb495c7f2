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
    assert!(status.is_success(), "{text}");
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
