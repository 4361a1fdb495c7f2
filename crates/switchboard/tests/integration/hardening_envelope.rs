//! Envelope hardening (issue #11, finding 8): malformed JSON-RPC shapes are refused by the hub
//! at once with -32600 / -32602 on every downstream transport (Streamable HTTP in both eras,
//! legacy `/messages`, batches, `switchboard stdio`), instead of being forwarded to an upstream
//! that drops them and leaves the caller waiting out the timeout. Also: a malformed or oversized
//! upstream reply fails its call quickly and clearly, and the hub stays healthy.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_fixture::{RawResponses, spawn_raw_http};

use crate::common::*;

/// Answers must arrive well within this, not after the 300 s upstream timeout.
const QUICK: Duration = Duration::from_secs(1);

/// The reported shapes, each with its id (as JSON text), the code it must get, and a fragment
/// of the message that names the problem.
fn bad_shapes(tool: &str) -> Vec<(String, &'static str, i64, &'static str)> {
    let mut deep = String::from(r#""leaf""#);
    for _ in 0..127 {
        deep = format!(r#"{{"a":{deep}}}"#);
    }
    let call = |id: &str, extra_params: &str, extra: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"x"}}{extra_params}}}{extra}}}"#
        )
    };
    vec![
        (
            call("101", "", r#","result":{}"#),
            "101",
            -32600,
            "must not carry result",
        ),
        (
            call("102", r#","_meta":"nope""#, ""),
            "102",
            -32602,
            "params._meta must be an object",
        ),
        (
            call(r#""r-103""#, "", r#","_meta":{}"#),
            r#""r-103""#,
            -32600,
            "_meta is not allowed at the top level",
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":104,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"\ud800"}}}}}}"#
            ),
            "104",
            -32602,
            "lone surrogate",
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":105,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":{deep}}}}}}}"#
            ),
            "105",
            -32602,
            "deeper than 64",
        ),
        (call("null", "", ""), "null", -32600, "not null"),
    ]
}

fn check_refusal(shape: &str, reply: &Value, id: &str, code: i64, says: &str) {
    assert_eq!(reply["error"]["code"], code, "{shape}\n-> {reply}");
    let msg = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(says), "{msg:?} should say {says:?}");
    assert_eq!(reply["id"].to_string(), id, "{reply}");
}

#[tokio::test]
async fn malformed_requests_on_mcp_are_refused_at_once_in_both_eras() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_fixture("s", &[])}})).await;
    let mut session = hub.client("/mcp").await;
    let http = reqwest::Client::new();
    for (shape, id, code, says) in bad_shapes("s__echo") {
        // Session era.
        let started = Instant::now();
        let (status, msgs, text) = tokio::time::timeout(QUICK, session.post(shape.clone()))
            .await
            .expect("in time");
        assert!(started.elapsed() < QUICK);
        assert_eq!(status.as_u16(), 400, "{text}");
        check_refusal(&shape, &msgs[0], id, code, says);

        // Stateless 2026-07-28: no session, version header.
        let started = Instant::now();
        let resp = tokio::time::timeout(
            QUICK,
            http.post(hub.url("/mcp"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "s__echo")
                .body(shape.clone())
                .send(),
        )
        .await
        .expect("in time")
        .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let reply: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert!(started.elapsed() < QUICK);
        check_refusal(&shape, &reply, id, code, says);
    }
    // The session and the upstream are fine afterwards.
    let r = session.call("s__echo", json!({"text": "still here"})).await;
    assert_eq!(text_of(&r), "still here");
    hub.stop().await;
}

#[tokio::test]
async fn malformed_requests_on_legacy_messages_and_in_batches_are_refused_at_once() {
    let hub = TestHub::start(json!({"mcpServers": {"s": stdio_fixture("s", &[])}})).await;
    let client = reqwest::Client::new();
    let mut stream = client
        .get(hub.url("/sse"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut decoder = switchboard_core::sse::Decoder::new(1 << 24);
    let mut events = Vec::new();
    let mut next_event = async || -> switchboard_core::sse::Event {
        loop {
            if !events.is_empty() {
                return events.remove(0);
            }
            let chunk = tokio::time::timeout(QUICK, stream.chunk())
                .await
                .expect("an answer within 1 s")
                .unwrap()
                .unwrap();
            decoder.feed(&chunk, &mut events).unwrap();
        }
    };
    let first = next_event().await;
    assert_eq!(first.kind(), "endpoint");
    let mut next = async || -> Value {
        loop {
            let ev = next_event().await;
            if ev.kind() == "message" {
                return serde_json::from_str(&ev.data).unwrap();
            }
        }
    };
    let post_url = hub.url(&first.data);
    let post = async |body: String| {
        let r = client
            .post(&post_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    };
    post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string()).await;
    assert_eq!(next().await["id"], 1);
    post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string()).await;
    for (shape, id, code, says) in bad_shapes("s__echo") {
        post(shape.clone()).await;
        check_refusal(&shape, &next().await, id, code, says);
    }
    // A batch (2024-11-05 allows them): the bad element is refused, the good one answered.
    let (bad, ..) = bad_shapes("s__echo").swap_remove(1);
    post(format!(
        r#"[{bad},{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"s__echo","arguments":{{"text":"ok"}}}}}}]"#
    ))
    .await;
    let batch = next().await;
    let replies = batch.as_array().expect("one array of replies");
    let refused = replies
        .iter()
        .find(|r| r["id"] == 102)
        .expect("102 answered");
    assert_eq!(refused["error"]["code"], -32602, "{batch}");
    let ok = replies.iter().find(|r| r["id"] == 7).expect("7 answered");
    assert_eq!(text_of(&ok["result"]), "ok", "{batch}");
    hub.stop().await;
}

#[test]
fn malformed_requests_in_stdio_mode_are_refused_at_once() {
    let dir = std::env::temp_dir().join(format!("sb-envelope-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("servers.json");
    std::fs::write(
        &path,
        json!({"mcpServers": {"f": stdio_fixture("f", &[])}}).to_string(),
    )
    .unwrap();
    let mut child = Command::new(switchboard_bin())
        .args(["stdio", "--servers"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line).expect("stdout is JSON only");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut send = |line: &str| {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    };
    // Notifications (a tools/list_changed once the upstream is ready) may come between
    // answers; only replies are checked here.
    let recv = |timeout: Duration| loop {
        let v = rx.recv_timeout(timeout).expect("an answer in time");
        if v.get("id").is_some() {
            break v;
        }
    };
    send(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string());
    assert_eq!(recv(Duration::from_secs(20))["id"], 1);
    send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string());
    for (shape, id, code, says) in bad_shapes("f__echo") {
        send(&shape);
        check_refusal(&shape, &recv(QUICK), id, code, says);
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_result_over_the_servers_limit_fails_quickly_and_the_hub_stays_healthy() {
    let mut entry = stdio_fixture("s", &[]);
    entry["max_result_bytes"] = json!(65536);
    let hub = TestHub::start(json!({"mcpServers": {"s": entry}})).await;
    let mut c = hub.client("/mcp").await;
    let started = Instant::now();
    let r = c
        .request(
            "tools/call",
            json!({"name": "s__big", "arguments": {"bytes": 300000}}),
        )
        .await;
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
    assert_eq!(r["error"]["code"], -32603, "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("result from server s is ")
            && msg.ends_with("bytes, over the limit of 65536"),
        "{msg}"
    );
    // Under the limit it works, and the same connection goes on serving.
    let r = c.call("s__big", json!({"bytes": 1000})).await;
    assert_eq!(text_of(&r).len(), 1000);
    let r = c.call("s__echo", json!({"text": "healthy"})).await;
    assert_eq!(text_of(&r), "healthy");
    assert_eq!(server_status(&hub.hub, "s").state, "ready");
    hub.stop().await;
}

#[tokio::test]
async fn an_http_upstream_reply_over_the_limit_or_malformed_fails_its_call_at_once() {
    let big = format!(
        r#"{{"content":[{{"type":"text","text":"{}"}}],"isError":false}}"#,
        "x".repeat(200_000)
    );
    let raw = spawn_raw_http(RawResponses::new(
        r#"{"tools":[{"name":"raw_echo","inputSchema":{"type":"object"}}]}"#,
        big,
    ))
    .await;
    let surrogate = spawn_raw_http(RawResponses::new(
        r#"{"tools":[{"name":"raw_echo","inputSchema":{"type":"object"}}]}"#,
        r#"{"content":[{"type":"text","text":"\ud800"}],"isError":false}"#,
    ))
    .await;
    let mut capped = http_entry(&raw.url);
    capped["max_result_bytes"] = json!(65536);
    let hub =
        TestHub::start(json!({"mcpServers": {"v": capped, "w": http_entry(&surrogate.url)}})).await;
    let mut c = hub.client("/mcp").await;
    let started = Instant::now();
    let r = c
        .request(
            "tools/call",
            json!({"name": "v__raw_echo", "arguments": {}}),
        )
        .await;
    assert!(started.elapsed() < QUICK);
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("result from server v is 2000"),
        "{r}"
    );
    let started = Instant::now();
    let r = c
        .request(
            "tools/call",
            json!({"name": "w__raw_echo", "arguments": {}}),
        )
        .await;
    assert!(started.elapsed() < QUICK);
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lone surrogate"),
        "{r}"
    );
    let r = c.request("ping", json!({})).await;
    assert!(r.get("result").is_some(), "{r}");
    hub.stop().await;
}
