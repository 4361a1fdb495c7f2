//! Fault handling: upstreams that fail to start, crash mid-call, hang, print garbage, crash-loop.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_fixture::{FixtureOptions, spawn_http};
use switchboard_hub::HubConfig;
use switchboard_upstream::UpstreamOptions;

use crate::common::*;

fn quick_restarts() -> HubConfig {
    HubConfig {
        upstream: UpstreamOptions {
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            ..UpstreamOptions::default()
        },
        ..HubConfig::default()
    }
}

#[tokio::test]
async fn a_server_that_cannot_start_does_not_stop_the_others() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start_with(
        json!({"mcpServers": {"broken": {"command": "/nonexistent/switchboard-test-binary"}, "ok": http_entry(&http.url)}}),
        quick_restarts(),
    )
    .await;
    let mut c = hub.client("/mcp").await;
    assert_eq!(
        text_of(&c.call("ok__echo", json!({"text": "still here"})).await),
        "still here"
    );
    let status = server_status(&hub.hub, "broken");
    assert_ne!(status.state, "ready");
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot start"),
        "{status:?}"
    );
    let listed = c.call("switchboard__list_servers", json!({})).await;
    let broken = listed["structuredContent"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "broken")
        .unwrap()
        .clone();
    assert!(
        broken["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot start"),
        "{broken}"
    );
    let r = c
        .request(
            "tools/call",
            json!({"name": "broken__echo", "arguments": {}}),
        )
        .await;
    assert!(r.get("error").is_some(), "{r}");
    hub.stop().await;
}

#[tokio::test]
async fn a_stdio_server_killed_mid_call_fails_fast_and_restarts() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start_with(
        json!({"mcpServers": {"victim": stdio_fixture("victim", &[]), "bystander": http_entry(&http.url)}}),
        quick_restarts(),
    )
    .await;
    let pid_before = server_status(&hub.hub, "victim").pid.expect("pid");
    let url = hub.url("/mcp");
    let slow = tokio::spawn(async move {
        let mut c = McpClient::connect(&url).await;
        let r = c
            .request(
                "tools/call",
                json!({"name": "victim__slow", "arguments": {"ms": 20000}}),
            )
            .await;
        (Instant::now(), r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = hub.client("/mcp").await;
    let killed_at = Instant::now();
    let crash = c
        .request(
            "tools/call",
            json!({"name": "victim__crash", "arguments": {}}),
        )
        .await;
    assert!(crash.get("error").is_some(), "{crash}");
    let (failed_at, r) = slow.await.unwrap();
    assert!(
        r.get("error").is_some(),
        "the in-flight call must fail: {r}"
    );
    assert!(
        failed_at.duration_since(killed_at) < Duration::from_secs(1),
        "took {:?}",
        failed_at.duration_since(killed_at)
    );
    assert_eq!(
        text_of(&c.call("bystander__echo", json!({"text": "fine"})).await),
        "fine"
    );
    assert!(
        eventually(Duration::from_secs(10), async || server_status(
            &hub.hub, "victim"
        )
        .state
            == "ready")
        .await,
        "victim was not restarted: {:?}",
        server_status(&hub.hub, "victim")
    );
    let after = server_status(&hub.hub, "victim");
    assert!(after.restarts >= 1);
    assert_ne!(after.pid, Some(pid_before));
    assert!(!pid_alive(pid_before as i32) || is_zombie(pid_before));
    assert!(
        eventually(Duration::from_secs(5), async || {
            let r = c
                .request(
                    "tools/call",
                    json!({"name": "victim__echo", "arguments": {"text": "back"}}),
                )
                .await;
            r.get("result").is_some_and(|r| text_of(r) == "back")
        })
        .await
    );
    hub.stop().await;
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}

#[tokio::test]
async fn a_hanging_call_times_out_and_is_cancelled_upstream() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"h": {"type": "streamable-http", "url": http.url, "timeout": 1}}}),
    )
    .await;
    let mut c = hub.client("/mcp").await;
    let started = Instant::now();
    let r = c
        .request("tools/call", json!({"name": "h__hang", "arguments": {}}))
        .await;
    let took = started.elapsed();
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("\"h\""),
        "the error names the server: {r}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert!(
        eventually(Duration::from_secs(3), async || http.stats().cancelled()
            == 1)
        .await,
        "upstream never saw the cancel"
    );
    // The server itself is fine afterwards.
    assert_eq!(
        text_of(&c.call("h__echo", json!({"text": "ok"})).await),
        "ok"
    );
    hub.stop().await;
}

#[tokio::test]
async fn progress_keeps_a_slow_call_alive_past_its_timeout() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"h": {"type": "streamable-http", "url": http.url, "timeout": 1}}}),
    )
    .await;
    let mut c = hub.client("/mcp").await;
    let r = c
        .request(
            "tools/call",
            json!({"name": "h__slow", "arguments": {"ms": 2500}, "_meta": {"progressToken": 7}}),
        )
        .await;
    assert_eq!(text_of(&r["result"]), "slept 2500", "{r}");
    hub.stop().await;
}

#[tokio::test]
async fn a_client_cancellation_reaches_the_upstream() {
    let http = spawn_http(FixtureOptions::new("h")).await.unwrap();
    let hub = TestHub::start(json!({"mcpServers": {"h": http_entry(&http.url)}})).await;
    let mut c = hub.client("/mcp").await;
    let session = c.session.clone();
    let url = c.url.clone();
    let call = tokio::spawn(async move {
        let mut c2 = McpClient::unconnected(&url);
        c2.session = session;
        c2.post(json!({"jsonrpc":"2.0","id":"hang-1","method":"tools/call","params":{"name":"h__hang","arguments":{}}}).to_string()).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.notify(
        "notifications/cancelled",
        Some(json!({"requestId": "hang-1", "reason": "user"})),
    )
    .await;
    let (status, msgs, _) = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("cancel ends the call")
        .unwrap();
    assert!(status.is_success());
    assert!(
        msgs.iter().all(|m| m.get("result").is_none()),
        "a cancelled request gets no result: {msgs:?}"
    );
    assert!(
        eventually(Duration::from_secs(3), async || http.stats().cancelled()
            == 1)
        .await
    );
    hub.stop().await;
}

#[tokio::test]
async fn garbage_on_stdout_is_ignored_and_kept_for_diagnosis() {
    let hub = TestHub::start(json!({"mcpServers": {"noisy": stdio_fixture("noisy", &[])}})).await;
    let mut c = hub.client("/mcp").await;
    assert_eq!(text_of(&c.call("noisy__garbage", json!({})).await), "ok");
    assert_eq!(
        text_of(&c.call("noisy__echo", json!({"text": "clean"})).await),
        "clean"
    );
    let tail = hub.hub.upstream("noisy").unwrap().stderr_tail(50);
    assert!(tail.iter().any(|l| l.contains("not JSON-RPC")), "{tail:?}");
    hub.stop().await;
}

#[tokio::test]
async fn a_crash_looping_server_is_marked_failed() {
    let hub = TestHub::start_with(
        json!({"mcpServers": {"loop": {"command": "sh", "args": ["-c", "echo starting >&2; exit 1"]}}}),
        quick_restarts(),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), async || server_status(
            &hub.hub, "loop"
        )
        .state
            == "failed")
        .await,
        "{:?}",
        server_status(&hub.hub, "loop")
    );
    let tail = hub.hub.upstream("loop").unwrap().stderr_tail(10);
    assert!(tail.iter().any(|l| l.contains("starting")), "{tail:?}");
    hub.stop().await;
}
