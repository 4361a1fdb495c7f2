//! Observability (issue #15) against the real `switchboard serve` binary and a real fixture
//! upstream: `/metrics` counts exactly the calls made, by method, tool, server and error type,
//! and parses as the Prometheus text format; the activity log holds exactly the calls made,
//! filters and pages, hides them from another tenant, streams a new call within a second,
//! redacts logged payloads and forgets rows past the retention. SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::*;

const ADMIN: &str = "admin-token-for-observability-tests";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

served_type! {
    /// The real binary serving one fixture upstream named `fx`.
    struct ObsHub {}
}

impl ObsHub {
    async fn start(pg: bool, upstream: &str, extra: &[&str]) -> ObsHub {
        let mut b = Served::builder(ADMIN)
            .name("obs")
            .servers(json!({"mcpServers": {"fx": http_entry(upstream)}}))
            .args(extra);
        if pg {
            b = b.postgres("obs");
        }
        ObsHub {
            served: b.start().await,
        }
    }

    async fn client(&self) -> McpClient {
        let mut c = McpClient::connect_authorized(&format!("{}/mcp", self.mcp), ADMIN).await;
        assert!(
            eventually(Duration::from_secs(20), async || c
                .tool_names()
                .await
                .iter()
                .any(|t| t == "fx__echo"))
            .await,
            "fx__echo never listed"
        );
        c
    }

    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
        tenant: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = self.http.get(format!("{}{path}", self.main));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(t) = tenant {
            req = req.header("x-switchboard-tenant", t);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn logs(&self, query: &str, tenant: Option<&str>) -> Value {
        let (status, body) = self
            .get(&format!("/api/v1/logs?{query}"), Some(ADMIN), tenant)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The value of one sample of `/metrics` (0 when absent).
    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (status, text) = self.get("/metrics", Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        value(&parse_exposition(&text), name, labels, &[])
    }

    /// Waits until the writer has flushed `n` rows for `query`.
    async fn logs_settled(&self, query: &str, n: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            items = self.logs(query, None).await["items"]
                .as_array()
                .unwrap()
                .clone();
            if items.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        items
    }
}

// ---------------------------------------------------------------------------------------------
// A strict parser of the Prometheus text format (0.0.4)

/// One sample: (metric name, labels) → value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse_exposition(text: &str) -> Samples {
    let mut samples = Samples::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap(), parts.next().expect("a name"));
            assert!(valid_name(name), "{}", at());
            if kw == "TYPE" {
                let kind = parts.next().expect("a type");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{}",
                    at()
                );
                assert!(
                    typed.insert(name.into(), kind.into()).is_none(),
                    "TYPE twice: {}",
                    at()
                );
            } else {
                assert_eq!(kw, "HELP", "{}", at());
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{}", at()));
        let name = &line[..name_end];
        assert!(valid_name(name), "bad name: {}", at());
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            typed.contains_key(family),
            "sample before its TYPE: {}",
            at()
        );
        let mut labels = BTreeMap::new();
        let mut rest = line[name_end..].to_string();
        if let Some(body) = line[name_end..].strip_prefix('{') {
            let chars: Vec<char> = body.chars().collect();
            let ch = |k: usize| {
                *chars
                    .get(k)
                    .unwrap_or_else(|| panic!("cut short: {}", at()))
            };
            let mut k = 0;
            loop {
                if ch(k) == '}' {
                    k += 1;
                    break;
                }
                let start = k;
                while ch(k) != '=' {
                    k += 1;
                }
                let lname: String = chars[start..k].iter().collect();
                assert!(valid_name(&lname), "bad label name: {}", at());
                k += 1;
                assert_eq!(ch(k), '"', "{}", at());
                k += 1;
                let mut value = String::new();
                loop {
                    match ch(k) {
                        '\\' => {
                            value.push(match ch(k + 1) {
                                'n' => '\n',
                                '\\' => '\\',
                                '"' => '"',
                                c => panic!("bad escape {c}: {}", at()),
                            });
                            k += 2;
                        }
                        '"' => break,
                        c => {
                            value.push(c);
                            k += 1;
                        }
                    }
                }
                k += 1;
                assert!(
                    labels.insert(lname, value).is_none(),
                    "label twice: {}",
                    at()
                );
                match ch(k) {
                    ',' => k += 1,
                    '}' => {}
                    _ => panic!("expected , or }}: {}", at()),
                }
            }
            rest = chars[k..].iter().collect();
        }
        let value = rest
            .as_str()
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("{}", at()));
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {}", at())),
        };
        assert!(
            samples.insert((name.to_string(), labels), v).is_none(),
            "duplicate series: {}",
            at()
        );
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The value of `name` whose labels include every pair of `want` and no other label of
/// `only` (labels named in `only` but absent from `want` must be absent).
fn value(samples: &Samples, name: &str, want: &[(&str, &str)], only: &[&str]) -> f64 {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
                && only
                    .iter()
                    .all(|k| want.iter().any(|(w, _)| w == k) || !labels.contains_key(*k))
        })
        .map(|(_, v)| *v)
        .collect();
    assert!(hits.len() <= 1, "{name} {want:?}: several series");
    hits.first().copied().unwrap_or(0.0)
}

const OP_LABELS: &[&str] = &["gen_ai_tool_name", "server", "error_type"];

#[test]
fn the_exposition_parser_is_strict() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"\\n\",l=\"\"} 3\n";
    let s = parse_exposition(ok);
    assert_eq!(value(&s, "a_total", &[("k", "v\"\n")], &[]), 3.0);
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total{k=v} 1\n",
        "# TYPE a_total counter\na_total{k=\"v} 1\n",
        "# TYPE a_total counter\na_total x\n",
        "# TYPE a_total counter\na_total 1\na_total 2\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_exposition(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario

async fn calls_are_counted_logged_and_streamed(pg: bool) {
    let fixture = spawn_http(FixtureOptions::new("fx")).await.unwrap();
    let hub = ObsHub::start(pg, &fixture.url, &["--log-payloads"]).await;
    let mut c = hub.client().await;

    // Five traced echoes, one with a secret argument; an upstream error; a tool error; a
    // refusal by the hub.
    for i in 0..4 {
        let r = c
            .request(
                "tools/call",
                json!({"name": "fx__echo", "arguments": {"text": format!("hi {i}")},
                       "_meta": {"traceparent": TRACEPARENT}}),
            )
            .await;
        assert!(r.get("result").is_some(), "{r}");
    }
    c.call("fx__echo", json!({"text": "secret", "password": "hunter2"}))
        .await;
    let bad = c
        .request(
            "tools/call",
            json!({"name": "fx__add", "arguments": {"a": "x", "b": 1}}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let crashed = c.call("fx__crash", json!({})).await;
    assert_eq!(crashed["isError"], true, "{crashed}");
    let unknown = c
        .request("tools/call", json!({"name": "fx__nope", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    // /metrics: a credential is needed; the counts are exact.
    let (status, _) = hub.get("/metrics", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = hub.get("/metrics", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let m = parse_exposition(&text);
    let ops = "mcp_server_operation_duration_seconds_count";
    let base = [("mcp_method_name", "tools/call"), ("tenant", "default")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    assert_eq!(
        value(
            &m,
            ops,
            &with(&[("gen_ai_tool_name", "fx__echo"), ("server", "fx")]),
            OP_LABELS
        ),
        5.0,
        "{text}"
    );
    assert_eq!(
        value(
            &m,
            "mcp_server_operation_duration_seconds_bucket",
            &with(&[
                ("gen_ai_tool_name", "fx__echo"),
                ("server", "fx"),
                ("le", "+Inf")
            ]),
            OP_LABELS
        ),
        5.0
    );
    assert_eq!(
        value(
            &m,
            ops,
            &with(&[
                ("gen_ai_tool_name", "fx__add"),
                ("server", "fx"),
                ("error_type", "-32602")
            ]),
            OP_LABELS
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &m,
            ops,
            &with(&[
                ("gen_ai_tool_name", "fx__crash"),
                ("server", "fx"),
                ("error_type", "tool_error")
            ]),
            OP_LABELS
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &m,
            ops,
            &with(&[("gen_ai_tool_name", "other"), ("error_type", "-32602")]),
            OP_LABELS
        ),
        1.0,
        "an unknown tool is labelled other, with no server: {text}"
    );
    assert_eq!(
        value(
            &m,
            "mcp_client_operation_duration_seconds_count",
            &with(&[("gen_ai_tool_name", "fx__echo"), ("server", "fx")]),
            OP_LABELS
        ),
        5.0,
        "{text}"
    );
    // Buckets are cumulative and end at the count.
    let mut buckets: Vec<(f64, f64)> = m
        .iter()
        .filter(|((n, l), _)| {
            n == "mcp_server_operation_duration_seconds_bucket"
                && l.get("gen_ai_tool_name").map(String::as_str) == Some("fx__echo")
        })
        .map(|((_, l), v)| (l["le"].parse::<f64>().unwrap_or(f64::INFINITY), *v))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert!(
        value(
            &m,
            "mcp_server_sessions_open",
            &[("tenant", "default")],
            &[]
        ) >= 1.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_upstream_state",
            &[("server", "fx"), ("state", "ready")],
            &[]
        ),
        1.0
    );

    // The activity log: exactly the calls, newest first, filters, paging, payloads redacted.
    let items = hub.logs_settled("limit=1000", 8).await;
    assert_eq!(items.len(), 8, "{items:#?}");
    assert!(
        items
            .iter()
            .all(|r| r["method"] == "tools/call" && r["principal"] == "admin-token")
    );
    assert_eq!(items[0]["target"], "fx__nope");
    assert_eq!(items[0]["error_type"], "-32602");
    assert!(items[0]["server"].is_null());
    assert_eq!(items[1]["error_type"], "tool_error");
    assert_eq!(items[2]["error_type"], "-32602");
    assert_eq!(items[2]["server"], "fx");
    let traced = items
        .iter()
        .filter(|r| r["trace_id"] == "0af7651916cd43dd8448eb211c80319c")
        .count();
    assert_eq!(traced, 4);
    let secret = &items[3];
    assert_eq!(secret["target"], "fx__echo");
    let request = secret["request"].as_str().unwrap();
    assert!(
        !request.contains("hunter2") && request.contains("[redacted]"),
        "{request}"
    );
    assert!(secret["response"].as_str().unwrap().contains("secret"));
    let count = |v: Value| v["items"].as_array().unwrap().len();
    assert_eq!(count(hub.logs("tool=fx__echo", None).await), 5);
    assert_eq!(count(hub.logs("status=error", None).await), 3);
    assert_eq!(count(hub.logs("server=fx", None).await), 7);
    assert_eq!(count(hub.logs("principal=someone-else", None).await), 0);
    assert_eq!(count(hub.logs("since=1h", None).await), 8);
    assert_eq!(count(hub.logs("until=1h", None).await), 0);
    let page = hub.logs("limit=5", None).await;
    assert_eq!(count(page.clone()), 5);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = hub.logs(&format!("limit=5&cursor={cursor}"), None).await;
    assert_eq!(count(rest.clone()), 3);
    assert!(rest["next_cursor"].is_null());
    let (status, _) = hub
        .get("/api/v1/logs?status=maybe", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Another tenant sees none of it.
    let resp = hub
        .http
        .post(format!("{}/api/v1/tenants", hub.main))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(count(hub.logs("limit=1000", Some("other")).await), 0);

    // Stats over the last hour.
    let (status, body) = hub.get("/api/v1/stats?window=1h", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["calls"], 8);
    assert_eq!(stats["errors"], 3);
    let echo = stats["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tool"] == "fx__echo")
        .unwrap();
    assert_eq!(echo["calls"], 5);
    assert!(echo["p50_ms"].as_f64().unwrap() <= echo["p99_ms"].as_f64().unwrap());
    let series = stats["series"].as_array().unwrap();
    assert_eq!(
        series
            .iter()
            .map(|m| m["calls"].as_u64().unwrap())
            .sum::<u64>(),
        8
    );

    // The live stream delivers a new call within a second.
    let resp = hub
        .http
        .get(format!("{}/api/v1/logs/stream?tool=fx__echo", hub.main))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut resp = resp;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    c.call("fx__add", json!({"a": 1, "b": 2})).await; // filtered out
    c.call("fx__echo", json!({"text": "live"})).await;
    let mut seen = String::new();
    let got = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: activity") && seen.contains("\n\n") {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no live row within 1 s: {seen:?}");
    assert!(sent.elapsed() < Duration::from_secs(2));
    assert!(seen.contains("live") && !seen.contains("fx__add"), "{seen}");

    // `switchboard logs` prints the same rows, oldest first.
    hub.logs_settled("tool=fx__echo", 6).await;
    let out = Command::new(switchboard_bin())
        .args(["logs", "--api-url", &hub.main, "--token", ADMIN])
        .args(["--tool", "fx__echo", "--status", "ok", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert_eq!(
        rows[5]["response"].as_str().map(|r| r.contains("live")),
        Some(true)
    );
    let table = Command::new(switchboard_bin())
        .args([
            "logs",
            "--api-url",
            &hub.main,
            "--token",
            ADMIN,
            "--status",
            "error",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert_eq!(
        table.lines().count(),
        4,
        "a header and three errors: {table}"
    );
    assert!(
        table.contains("tool_error") && table.contains("fx__nope"),
        "{table}"
    );
}

#[tokio::test]
async fn calls_are_counted_logged_and_streamed_with_sqlite() {
    calls_are_counted_logged_and_streamed(false).await;
}

#[tokio::test]
async fn calls_are_counted_logged_and_streamed_with_postgres() {
    calls_are_counted_logged_and_streamed(true).await;
}

async fn old_rows_are_deleted_past_the_retention(pg: bool) {
    let fixture = spawn_http(FixtureOptions::new("fx")).await.unwrap();
    let hub = ObsHub::start(pg, &fixture.url, &["--activity-retention", "2s"]).await;
    let mut c = hub.client().await;
    c.call("fx__echo", json!({"text": "old"})).await;
    assert_eq!(hub.logs_settled("limit=10", 1).await.len(), 1);
    let gone = eventually(Duration::from_secs(6), async || {
        hub.logs("limit=10", None).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    assert!(gone, "the row outlived its retention");
}

#[tokio::test]
async fn old_rows_are_deleted_past_the_retention_with_sqlite() {
    old_rows_are_deleted_past_the_retention(false).await;
}

#[tokio::test]
async fn old_rows_are_deleted_past_the_retention_with_postgres() {
    old_rows_are_deleted_past_the_retention(true).await;
}

/// An upstream that announces a changed tool list is listed again, and the refresh is
/// counted for that server.
#[tokio::test]
async fn list_refreshes_are_counted_per_server() {
    let fixture = spawn_http(FixtureOptions::new("fx")).await.unwrap();
    let hub = ObsHub::start(false, &fixture.url, &["--no-activity-log"]).await;
    let refreshes = async || {
        hub.metric(
            "switchboard_upstream_list_refreshes_total",
            &[("server", "fx"), ("tenant", "default")],
        )
        .await
    };
    assert_eq!(refreshes().await, 0.0);
    let mut c = hub.client().await;
    let r = c.call("fx__add_tool", json!({"name": "late"})).await;
    assert_ne!(r["isError"], true, "{r}");
    let mut seen = 0.0;
    assert!(
        eventually(Duration::from_secs(5), async || {
            seen = refreshes().await;
            seen == 1.0
        })
        .await,
        "switchboard_upstream_list_refreshes_total{{server=\"fx\"}} is {seen}"
    );
}

/// Tool searches, on a smart endpoint and through the REST API, are timed by mode.
#[tokio::test]
async fn tool_searches_are_timed_by_mode() {
    let fixture = spawn_http(FixtureOptions::new("fx")).await.unwrap();
    let hub = ObsHub::start(false, &fixture.url, &["--no-activity-log"]).await;
    let searches = async || {
        hub.metric(
            "switchboard_tool_search_duration_seconds_count",
            &[("mode", "lexical"), ("tenant", "default")],
        )
        .await
    };
    assert_eq!(searches().await, 0.0);
    hub.client().await; // fx's tools are listed
    let mut smart = McpClient::connect_authorized(&format!("{}/mcp/$smart", hub.mcp), ADMIN).await;
    let found = smart.search_tools("echo a message back").await;
    assert_eq!(found[0], "fx__echo", "{found:?}");
    let (status, body) = hub
        .get(
            "/api/v1/tools/search?q=add%20two%20numbers",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(searches().await, 2.0);
    // A refused search (empty query) is not timed.
    let r = smart
        .request(
            "tools/call",
            json!({"name": "search_tools", "arguments": {"query": " "}}),
        )
        .await;
    assert!(r.get("error").is_some(), "{r}");
    assert_eq!(searches().await, 2.0);
}

#[tokio::test]
async fn metrics_need_an_admin_or_the_metrics_grant_unless_public() {
    let fixture = spawn_http(FixtureOptions::new("fx")).await.unwrap();
    let hub = ObsHub::start(false, &fixture.url, &[]).await;
    let (status, _) = hub.get("/metrics", Some("sb_not_a_key"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let public = ObsHub::start(
        false,
        &fixture.url,
        &["--metrics-public", "--no-activity-log"],
    )
    .await;
    let (status, text) = public.get("/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    parse_exposition(&text);
    let (status, _) = public.get("/api/v1/logs/stream", Some(ADMIN), None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no activity log, no stream"
    );
}

#[tokio::test]
async fn users_see_only_their_own_activity_and_managers_their_tenants() {
    let fixture = spawn_http(FixtureOptions::new("fx")).await.unwrap();
    let hub = ObsHub::start(false, &fixture.url, &[]).await;
    let post = |path: &str, body: Value| {
        hub.http
            .post(format!("{}{path}", hub.main))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let mut keys = Vec::new();
    for (name, role) in [("ann", "user"), ("mo", "manager")] {
        let user: Value = post(
            "/api/v1/users",
            json!({"username": name, "password": "correct horse battery", "role": role, "grants": ["*"]}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let key: Value = post("/api/v1/keys", json!({"name": "k", "user_id": user["id"]}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys.push(key["key"].as_str().expect("a key").to_string());
    }
    let (ann, mo) = (&keys[0], &keys[1]);
    let mut admin = hub.client().await;
    admin.call("fx__echo", json!({"text": "admin"})).await;
    let mut as_ann = McpClient::connect_authorized(&format!("{}/mcp", hub.mcp), ann).await;
    as_ann.call("fx__echo", json!({"text": "ann"})).await;
    as_ann.call("fx__echo", json!({"text": "ann again"})).await;
    hub.logs_settled("limit=100", 3).await;

    let read = async |token: &str, query: &str| -> Vec<Value> {
        let (status, body) = hub
            .get(&format!("/api/v1/logs?{query}"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    let mine = read(ann, "").await;
    assert_eq!(mine.len(), 2, "{mine:#?}");
    assert!(mine.iter().all(|r| r["principal"] == "ann"));
    assert!(
        read(ann, "principal=admin-token")
            .await
            .iter()
            .all(|r| r["principal"] == "ann"),
        "a user cannot ask for someone else's rows"
    );
    assert_eq!(
        read(mo, "").await.len(),
        3,
        "a manager reads the whole tenant"
    );
    let (status, _) = hub.get("/api/v1/logs", Some(ann), Some("other")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a user cannot name another tenant"
    );
    let (status, body) = hub.get("/api/v1/stats", Some(ann), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["calls"], 2);
    let (status, _) = hub.get("/metrics", Some(ann), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "metrics need an admin or the metrics grant"
    );
}
