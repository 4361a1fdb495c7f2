//! The usage prior of tool search: among tools that match a query equally well, the one a
//! tenant's clients call more often comes first. Two fixture upstreams offer the same tools,
//! so `a__add` and `b__add` tie on every ranker and only calls can separate them. Calls made
//! through `/mcp` and through the smart endpoint's `call_tool` both count; the activity log
//! records a `call_tool` as the tool it called; failed calls do not count; a call on a
//! server's own endpoint counts for the tool's `/mcp` name; a restarted hub gets its history
//! back from the activity log (its own tenant's successful routed tool calls of the last 7
//! days, nothing else);
//! `--no-smart-usage-prior` turns the prior off.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};
use switchboard_store::{ActivityRow, SecretKey};

use crate::common::*;

const ADMIN: &str = "admin-token-for-usage-prior-tests";
const QUERY: &str = "add two numbers together";

/// A smart client that sees both `add` tools.
async fn smart_client(mcp: &str, token: Option<&str>) -> McpClient {
    let url = format!("{mcp}/mcp/$smart");
    let mut c = match token {
        Some(t) => McpClient::connect_authorized(&url, t).await,
        None => McpClient::connect(&url).await,
    };
    assert!(
        eventually(Duration::from_secs(20), async || {
            let found = c.search_tools(QUERY).await;
            found.iter().any(|n| n == "a__add") && found.iter().any(|n| n == "b__add")
        })
        .await,
        "both add tools never found"
    );
    c
}

served_type! {
    /// The real binary serving two fixture upstreams, `a` and `b`, with the same tools.
    struct TwoFixtures {}
}

impl TwoFixtures {
    async fn start(a: &str, b: &str, extra: &[&str]) -> TwoFixtures {
        TwoFixtures {
            served: Served::builder(ADMIN)
                .name("usage")
                .servers(json!({"mcpServers": {"a": http_entry(a), "b": http_entry(b)}}))
                .args(extra)
                .start()
                .await,
        }
    }

    /// Activity rows of the default tenant for `query`, once at least `n` are written.
    async fn logs(&self, query: &str, n: usize) -> Vec<Value> {
        let mut items = Vec::new();
        for _ in 0..100 {
            let resp = self
                .http
                .get(format!("{}/api/v1/logs?{query}", self.main))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            items = body["items"].as_array().unwrap().clone();
            if items.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        items
    }
}

#[tokio::test]
async fn calls_lift_a_tool_above_an_equal_match_through_mcp_and_call_tool() {
    let a = spawn_http(FixtureOptions::new("a")).await.unwrap();
    let b = spawn_http(FixtureOptions::new("b")).await.unwrap();
    let hub = TwoFixtures::start(&a.url, &b.url, &[]).await;
    let mut smart = smart_client(&hub.mcp, Some(ADMIN)).await;

    // A tie: the first server's tool comes first.
    let before = smart.search_tools(QUERY).await;
    assert_eq!(&before[..2], ["a__add", "b__add"], "{before:?}");

    // Failed calls count for nothing: b__add with arguments it refuses, and a tool that
    // does not exist (each gets its usual error).
    for _ in 0..5 {
        let r = smart
            .request(
                "tools/call",
                json!({"name": "call_tool", "arguments": {"name": "b__add", "arguments": {"a": "x", "b": 1}}}),
            )
            .await;
        assert!(
            r.get("error").is_some() || r["result"]["isError"] == true,
            "{r}"
        );
        let r = smart
            .request(
                "tools/call",
                json!({"name": "call_tool", "arguments": {"name": "a__nope", "arguments": {}}}),
            )
            .await;
        assert!(
            r.get("error").is_some() || r["result"]["isError"] == true,
            "{r}"
        );
    }
    let failed = smart.search_tools(QUERY).await;
    assert_eq!(&failed[..2], ["a__add", "b__add"], "{failed:?}");

    // One call of b__add through the smart endpoint's call_tool, one through /mcp.
    let r = smart
        .call(
            "call_tool",
            json!({"name": "b__add", "arguments": {"a": 1, "b": 2}}),
        )
        .await;
    assert_eq!(text_of(&r), "3", "{r}");
    let mut direct = McpClient::connect_authorized(&format!("{}/mcp", hub.mcp), ADMIN).await;
    let r = direct.call("b__add", json!({"a": 20, "b": 22})).await;
    assert_eq!(text_of(&r), "42", "{r}");
    let after = smart.search_tools(QUERY).await;
    assert_eq!(&after[..2], ["b__add", "a__add"], "{after:?}");

    // Only a near tie is settled: for a query that matches echo better, b__add is found
    // (so its calls weigh in) but stays below both echo tools.
    let echo = smart.search_tools("echo a message back").await;
    assert!(echo[..2].iter().all(|n| n.ends_with("__echo")), "{echo:?}");
    assert!(echo.iter().any(|n| n == "b__add"), "{echo:?}");

    // The activity log records call_tool as the tool it called, on its server.
    let rows = hub.logs("tool=b__add&status=ok", 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["server"], "b", "{row}");
        assert_eq!(row["method"], "tools/call", "{row}");
        assert_eq!(row["status"], "ok", "{row}");
    }
    let endpoints: Vec<&str> = rows
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert!(
        endpoints.iter().any(|e| e.contains("smart")),
        "{endpoints:?}"
    );
}

#[tokio::test]
async fn without_the_prior_calls_do_not_change_the_order() {
    let a = spawn_http(FixtureOptions::new("a")).await.unwrap();
    let b = spawn_http(FixtureOptions::new("b")).await.unwrap();
    let hub = TwoFixtures::start(&a.url, &b.url, &["--no-smart-usage-prior"]).await;
    let mut smart = smart_client(&hub.mcp, Some(ADMIN)).await;
    for i in 0..3 {
        let r = smart
            .call(
                "call_tool",
                json!({"name": "b__add", "arguments": {"a": i, "b": 1}}),
            )
            .await;
        assert_eq!(text_of(&r), (i + 1).to_string(), "{r}");
    }
    let found = smart.search_tools(QUERY).await;
    assert_eq!(&found[..2], ["a__add", "b__add"], "{found:?}");
}

/// One activity row of a successful call (refused before routing when `server` is `None`).
fn row(tenant: &str, method: &str, server: Option<&str>, target: &str, at: i64) -> ActivityRow {
    ActivityRow {
        at,
        tenant: tenant.into(),
        endpoint: "all".into(),
        server: server.map(str::to_string),
        method: method.into(),
        target: Some(target.into()),
        status: "ok".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_restarted_hub_reads_its_call_history_back_from_the_activity_log() {
    let dir = std::env::temp_dir().join(format!(
        "sb-usage-history-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/sb.db", dir.display());
    let key = SecretKey::generate().unwrap();

    // What an earlier run of the hub wrote, oldest first (the log is appended in time
    // order). Only the four b__add calls and the one a__add call count: not another
    // tenant's calls, calls older than 7 days, prompts, failed calls, calls refused before
    // routing, or calls on a server's own endpoint (unprefixed names).
    let now = switchboard_control::now_ms();
    let mut rows = Vec::new();
    for i in 0..9 {
        rows.push(row(
            "default",
            "tools/call",
            Some("a"),
            "a__add",
            now - 8 * 86_400_000 + i,
        ));
    }
    for i in 0..9 {
        rows.push(row(
            "other",
            "tools/call",
            Some("a"),
            "a__add",
            now - 300_000 + i,
        ));
        rows.push(row(
            "default",
            "prompts/get",
            Some("a"),
            "a__add",
            now - 300_000 + i,
        ));
        rows.push(row(
            "default",
            "tools/call",
            None,
            "a__add",
            now - 300_000 + i,
        ));
        rows.push(ActivityRow {
            status: "error".into(),
            ..row(
                "default",
                "tools/call",
                Some("a"),
                "a__add",
                now - 300_000 + i,
            )
        });
        rows.push(ActivityRow {
            endpoint: "server:a".into(),
            ..row("default", "tools/call", Some("a"), "add", now - 300_000 + i)
        });
    }
    for i in 0..4 {
        rows.push(row(
            "default",
            "tools/call",
            Some("b"),
            "b__add",
            now - 200_000 + i,
        ));
    }
    rows.push(row(
        "default",
        "tools/call",
        Some("a"),
        "a__add",
        now - 1_000,
    ));
    {
        let store = switchboard_store::open(&url, key.clone()).await.unwrap();
        store.insert_activity(Arc::from(rows)).await.unwrap();
    }

    let a = spawn_http(FixtureOptions::new("a")).await.unwrap();
    let b = spawn_http(FixtureOptions::new("b")).await.unwrap();
    let app = TestApp::builder()
        .database(&url)
        .secret_key(key)
        .start()
        .await;
    app.add("a", http_entry(&a.url)).await;
    app.add("b", http_entry(&b.url)).await;
    app.ready("a").await;
    app.ready("b").await;
    // Counts decay (half a week on), so they are a hair under the row counts.
    let counted = |name: &str| app.hub.tool_calls_counted(name);
    let near = |x: f64, n: f64| (x - n).abs() < 0.02;
    assert!(
        eventually(Duration::from_secs(10), async || near(
            counted("b__add"),
            4.0
        ))
        .await,
        "history never loaded: b__add counted {}",
        counted("b__add")
    );
    assert!(near(counted("a__add"), 1.0), "{}", counted("a__add"));
    assert_eq!(counted("add"), 0.0);

    // A live call on b's own endpoint counts under the /mcp name.
    let mut own = app.client("/mcp/b").await;
    let r = own.call("add", json!({"a": 1, "b": 1})).await;
    assert_eq!(text_of(&r), "2", "{r}");
    assert!(near(counted("b__add"), 5.0), "{}", counted("b__add"));

    let mut smart = smart_client(&format!("http://{}", app.mcp), None).await;
    let found = smart.search_tools(QUERY).await;
    assert_eq!(&found[..2], ["b__add", "a__add"], "{found:?}");
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
