//! Per-tenant fairness: each tenant has its own hub, and each hub caps the upstream calls it
//! has in flight and the stdio processes it runs. One tenant saturating its share must not
//! delay another tenant's calls.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_fixture::{FixtureOptions, spawn_http};
use switchboard_hub::HubConfig;

use crate::common::{TestHub, http_entry, stdio_fixture, text_of};

fn limited(calls: usize, queue: Duration) -> HubConfig {
    HubConfig {
        max_concurrent_calls: calls,
        call_queue_timeout: queue,
        max_stdio_servers: 1,
        ..HubConfig::default()
    }
}

#[tokio::test]
async fn a_saturated_tenant_queues_its_own_calls_without_slowing_another() {
    let up = spawn_http(FixtureOptions::new("f")).await.unwrap();
    let file = json!({"mcpServers": {"f": http_entry(&up.url)}});
    let busy = TestHub::start_with(file.clone(), limited(2, Duration::from_secs(10))).await;
    let calm = TestHub::start_with(file, limited(2, Duration::from_secs(10))).await;

    // Tenant "busy" fills both of its slots with 1.5 s calls and queues a third.
    let started = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..3 {
        let mut c = busy.client("/mcp").await;
        calls.push(tokio::spawn(async move {
            let r = c.call("f__slow", json!({"ms": 1500})).await;
            (started.elapsed(), r)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile the other tenant's call goes straight through.
    let mut other = calm.client("/mcp").await;
    let t = Instant::now();
    let r = other.call("f__echo", json!({"text": "hi"})).await;
    let calm_latency = t.elapsed();
    assert_eq!(text_of(&r), "hi", "{r}");
    assert!(
        calm_latency < Duration::from_millis(500),
        "another tenant's call waited {calm_latency:?}"
    );

    let mut ends = Vec::new();
    for call in calls {
        let (at, r) = call.await.unwrap();
        assert_eq!(r["isError"], false, "{r}");
        ends.push(at);
    }
    ends.sort();
    // Two ran together; the third started only when a slot freed up.
    assert!(ends[1] < Duration::from_millis(2500), "{ends:?}");
    assert!(ends[2] >= Duration::from_millis(2900), "{ends:?}");
    busy.stop().await;
    calm.stop().await;
}

#[tokio::test]
async fn a_call_that_waits_too_long_for_a_slot_fails_clearly() {
    let up = spawn_http(FixtureOptions::new("f")).await.unwrap();
    let file = json!({"mcpServers": {"f": http_entry(&up.url)}});
    let hub = TestHub::start_with(file, limited(1, Duration::from_millis(200))).await;
    let mut first = hub.client("/mcp").await;
    let holder = tokio::spawn(async move { first.call("f__slow", json!({"ms": 1000})).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = hub.client("/mcp").await;
    let r = second
        .request(
            "tools/call",
            json!({"name": "f__echo", "arguments": {"text": "late"}}),
        )
        .await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("calls in flight"), "{r}");
    assert_eq!(holder.await.unwrap()["isError"], false);
    hub.stop().await;
}

#[tokio::test]
async fn a_tenant_runs_at_most_its_share_of_stdio_processes() {
    let hub = TestHub::start_with(
        json!({"mcpServers": {"one": stdio_fixture("one", &[])}}),
        limited(0, Duration::from_secs(1)),
    )
    .await;
    let spec =
        switchboard_core::config::parse_server_value("two", &stdio_fixture("two", &[]), None, "__")
            .expect("spec");
    let err = hub.hub.add_server(spec).await.unwrap_err().to_string();
    assert!(err.contains("limit 1"), "{err}");
    assert_eq!(hub.hub.server_names(), vec!["one"]);
    // Replacing the one it runs is not a second process.
    let again = switchboard_core::config::parse_server_value(
        "one",
        &stdio_fixture("one", &["--tools", "2"]),
        None,
        "__",
    )
    .expect("spec");
    hub.hub.replace_server(again).await.expect("replace");
    hub.stop().await;
}
