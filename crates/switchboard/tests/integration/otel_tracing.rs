//! OTLP traces (issue #15) against the real `switchboard serve` binary, a loopback OTLP/HTTP
//! JSON collector in the test, an HTTP fixture upstream and a stdio fixture upstream: a
//! `tools/call` carrying the client's `traceparent` gives a SERVER span with the conventions'
//! name and attributes whose parent is the client's span, a CLIENT span under it for the
//! upstream call, and the upstream sees the propagated context (the `traceparent` header over
//! HTTP, `_meta.traceparent` over stdio); errors set `error.type`; the HTTP header is the
//! parent when `_meta` has none; without an endpoint nothing is exported or injected. The
//! collector and the hub are shared with `otel_sampling.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, FixtureServer, spawn_http};

use crate::common::*;

pub(crate) const ADMIN: &str = "admin-token-for-tracing-tests";
pub(crate) const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
pub(crate) const PARENT: &str = "b7ad6b7169203331";

pub(crate) fn traceparent() -> String {
    format!("00-{TRACE}-{PARENT}-01")
}

/// One request the collector received: its headers and its JSON body.
type Post = (Vec<(String, String)>, Value);

/// A loopback OTLP/HTTP JSON collector: every posted body and its headers.
#[derive(Clone, Default)]
pub(crate) struct Collector {
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Collector {
    pub(crate) async fn start() -> (Collector, String) {
        let c = Collector::default();
        let posts = c.posts.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let posts = posts.clone();
                async move {
                    let h = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    posts
                        .lock()
                        .unwrap()
                        .push((h, serde_json::from_str(&body).expect("OTLP JSON")));
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (c, format!("http://{addr}"))
    }

    /// Every span received so far, each with its resource's `service.name`.
    pub(crate) fn spans(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (_, body) in self.posts.lock().unwrap().iter() {
            for rs in body["resourceSpans"].as_array().unwrap() {
                let service = rs["resource"]["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["key"] == "service.name")
                    .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
                    .unwrap_or_default();
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    for s in ss["spans"].as_array().unwrap() {
                        out.push((service.clone(), s.clone()));
                    }
                }
            }
        }
        out
    }

    pub(crate) async fn span_named(&self, name: &str, trace: &str, kind: u64) -> Value {
        let mut found = None;
        let got = eventually(Duration::from_secs(10), async || {
            found = self
                .spans()
                .into_iter()
                .map(|(_, s)| s)
                .find(|s| s["name"] == name && s["traceId"] == trace && s["kind"] == kind);
            found.is_some()
        })
        .await;
        assert!(got, "no span {name:?} (kind {kind}) in {:#?}", self.spans());
        found.unwrap()
    }
}

pub(crate) fn attr(span: &Value, key: &str) -> Option<Value> {
    span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let v = &a["value"];
            v.get("stringValue")
                .or_else(|| v.get("intValue"))
                .cloned()
                .unwrap()
        })
}

served_type! {
    /// The real binary serving an HTTP fixture (`fx`) and a stdio fixture (`st`).
    pub(crate) struct TracedHub {
        pub(crate) upstream: FixtureServer,
    }
}

impl TracedHub {
    async fn start(endpoint: Option<&str>) -> TracedHub {
        TracedHub::start_with(endpoint, &[], &[]).await
    }

    /// With more arguments and environment variables (the sampler's, say).
    pub(crate) async fn start_with(
        endpoint: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> TracedHub {
        init();
        let upstream = spawn_http(FixtureOptions::default()).await.unwrap();
        let mut b = Served::builder(ADMIN)
            .name("trace")
            .servers(json!({"mcpServers": {
                "fx": http_entry(&upstream.url),
                "st": stdio_fixture("st", &[]),
            }}))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_TRACES_SAMPLER_ARG")
            .env_remove("SWITCHBOARD_TRACE_SAMPLE_RATIO")
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env("OTEL_SERVICE_NAME", "sb-under-test")
            .env("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k%201");
        if let Some(e) = endpoint {
            b = b.args(&["--otlp-endpoint", e]);
        }
        b = b.args(args);
        for (k, v) in env {
            b = b.env(k, v);
        }
        TracedHub {
            served: b.start().await,
            upstream,
        }
    }

    pub(crate) async fn client(&self) -> McpClient {
        let mut c = McpClient::connect_authorized(&format!("{}/mcp", self.mcp), ADMIN).await;
        assert!(
            eventually(Duration::from_secs(20), async || {
                let names = c.tool_names().await;
                names.iter().any(|t| t == "fx__echo") && names.iter().any(|t| t == "st__stats")
            })
            .await,
            "the fixtures' tools never listed"
        );
        c
    }

    /// The `traceparent` headers the HTTP upstream received on its POSTs.
    pub(crate) fn upstream_traceparents(&self) -> Vec<String> {
        self.upstream
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .filter_map(|r| r.header("traceparent").map(str::to_string))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_exports_server_and_client_spans_and_propagates_the_context() {
    let (collector, endpoint) = Collector::start().await;
    let hub = TracedHub::start(Some(&endpoint)).await;
    let mut c = hub.client().await;

    // An HTTP upstream: the client's trace continues through the hub.
    let r = c
        .request(
            "tools/call",
            json!({"name": "fx__echo", "arguments": {"text": "hi"},
                   "_meta": {"traceparent": traceparent(), "tracestate": "vendor=1"}}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let server = collector.span_named("tools/call fx__echo", TRACE, 2).await;
    assert_eq!(server["parentSpanId"], PARENT);
    assert_eq!(server["traceState"], "vendor=1");
    assert!(server["status"].get("code").is_none(), "{server}");
    for (k, v) in [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.tool.name", "fx__echo"),
        ("gen_ai.operation.name", "execute_tool"),
        ("mcp.protocol.version", "2025-06-18"),
        ("network.transport", "tcp"),
        ("switchboard.server.name", "fx"),
        ("switchboard.tenant", "default"),
    ] {
        assert_eq!(attr(&server, k), Some(json!(v)), "{k} in {server:#}");
    }
    assert_eq!(
        attr(&server, "mcp.session.id"),
        Some(json!(c.session.clone().unwrap()))
    );
    assert!(attr(&server, "jsonrpc.request.id").is_some());
    assert_eq!(attr(&server, "error.type"), None);
    let client = collector.span_named("tools/call echo", TRACE, 3).await;
    assert_eq!(client["parentSpanId"], server["spanId"], "{client:#}");
    assert_eq!(attr(&client, "gen_ai.tool.name"), Some(json!("echo")));
    assert_eq!(attr(&client, "server.address"), Some(json!("127.0.0.1")));
    assert_eq!(attr(&client, "network.transport"), Some(json!("tcp")));
    let start: u128 = client["startTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: u128 = client["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(
        start > 1_600_000_000_000_000_000 && end >= start,
        "{client:#}"
    );
    // The upstream got the hub's CLIENT span as its parent, in the header.
    let expected = format!("00-{TRACE}-{}-01", client["spanId"].as_str().unwrap());
    assert!(
        hub.upstream_traceparents().contains(&expected),
        "{expected} not in {:?}",
        hub.upstream_traceparents()
    );
    // The resource and the configured headers.
    let (service, _) = collector.spans().into_iter().next().unwrap();
    assert_eq!(service, "sb-under-test");
    let posts = collector.posts.lock().unwrap().clone();
    assert!(posts.iter().all(|(h, _)| {
        h.iter().any(|(k, v)| k == "x-collector-key" && v == "k 1")
            && h.iter()
                .any(|(k, v)| k == "content-type" && v == "application/json")
    }));

    // A stdio upstream gets the context in `_meta` (the fixture reports what it got).
    let got = stdio_traceparent(&mut c).await;
    let client = collector.span_named("tools/call stats", TRACE, 3).await;
    assert_eq!(attr(&client, "network.transport"), Some(json!("pipe")));
    assert_eq!(
        got,
        format!("00-{TRACE}-{}-01", client["spanId"].as_str().unwrap())
    );

    // Errors: a JSON-RPC error and a tool error.
    let bad = c
        .request(
            "tools/call",
            json!({"name": "fx__add", "arguments": {"a": "x", "b": 1},
                   "_meta": {"traceparent": traceparent()}}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let span = collector.span_named("tools/call fx__add", TRACE, 2).await;
    assert_eq!(attr(&span, "error.type"), Some(json!("-32602")));
    assert_eq!(
        attr(&span, "rpc.response.status_code"),
        Some(json!("-32602"))
    );
    assert_eq!(span["status"]["code"], 2, "{span:#}");
    let crashed = c
        .request(
            "tools/call",
            json!({"name": "fx__crash", "arguments": {},
                   "_meta": {"traceparent": traceparent()}}),
        )
        .await;
    assert_eq!(crashed["result"]["isError"], true, "{crashed}");
    let span = collector.span_named("tools/call fx__crash", TRACE, 2).await;
    assert_eq!(attr(&span, "error.type"), Some(json!("tool_error")));
    let up = collector.span_named("tools/call crash", TRACE, 3).await;
    assert_eq!(attr(&up, "error.type"), Some(json!("tool_error")));

    // No `_meta` context: the HTTP `traceparent` header is the parent.
    let other_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = reqwest::Client::new()
        .post(format!("{}/mcp", hub.mcp))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("mcp-protocol-version", "2025-06-18")
        .header(
            "traceparent",
            format!("00-{other_trace}-00f067aa0ba902b7-01"),
        )
        .body(
            json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                   "params": {"name": "fx__echo", "arguments": {"text": "h"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let span = collector
        .span_named("tools/call fx__echo", other_trace, 2)
        .await;
    assert_eq!(span["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(attr(&span, "jsonrpc.request.id"), Some(json!("99")));

    // No context at all: a new trace, a root span, still propagated upstream.
    let before = hub.upstream_traceparents().len();
    c.call("fx__echo", json!({"text": "root"})).await;
    assert!(
        eventually(Duration::from_secs(5), async || collector
            .spans()
            .iter()
            .any(|(_, s)| s["name"] == "tools/call fx__echo"
                && s.get("parentSpanId").is_none()
                && s["traceId"] != TRACE
                && s["traceId"] != other_trace))
        .await
    );
    assert!(hub.upstream_traceparents().len() > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_off_without_an_endpoint_exports_and_injects_nothing() {
    let hub = TracedHub::start(None).await;
    let mut c = hub.client().await;
    c.call("fx__echo", json!({"text": "hi"})).await;
    // The client's own context passes through untouched; the hub adds none.
    let r = c
        .request(
            "tools/call",
            json!({"name": "st__stats", "arguments": {},
                   "_meta": {"traceparent": traceparent()}}),
        )
        .await;
    assert_eq!(
        r["result"]["structuredContent"]["traceparent"],
        json!(traceparent()),
        "{r}"
    );
    let r = c.call("st__stats", json!({})).await;
    assert_eq!(r["structuredContent"]["traceparent"], Value::Null, "{r}");
    assert!(hub.upstream_traceparents().is_empty());
}

/// Calls the stdio fixture's `stats` with the client's sampled `traceparent` in `_meta` and
/// returns the `traceparent` the fixture received.
pub(crate) async fn stdio_traceparent(c: &mut McpClient) -> String {
    let r = c
        .request(
            "tools/call",
            json!({"name": "st__stats", "arguments": {},
                   "_meta": {"traceparent": traceparent()}}),
        )
        .await;
    r["result"]["structuredContent"]["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string()
}
