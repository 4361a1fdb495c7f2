//! Hardening of what a stranger can make the hub spend (issue #11, findings 2 and 4, and the
//! per-key rate limits), against the real `switchboard serve` binary over real sockets:
//! concurrent login bursts are counted before any password is hashed and memory stays bounded
//! (VmRSS of the spawned process); login bodies are bounded; the audit log caps its fields,
//! records the source address, bounds unauthenticated floods per address and forgets rows past
//! the retention (SQLite and PostgreSQL); per-credential token buckets answer 429 with
//! `Retry-After` on the management API and on MCP, and `/api/v1/me` shows them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const ADMIN: &str = "admin-token-for-hardening-tests";
const PASSWORD: &str = "correct horse battery";

/// An HTTP answer.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

served_type! {
    /// The real binary, serving both services on loopback ports.
    struct AuthHub {}
}

impl AuthHub {
    async fn start(pg: bool, extra: &[&str]) -> AuthHub {
        let mut b = Served::builder(ADMIN).name("hardening").args(extra);
        if pg {
            b = b.postgres("hardening");
        }
        AuthHub {
            served: b.start().await,
        }
    }

    /// Resident memory of the hub process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.main),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.expect("request")).await
    }

    async fn login(&self, username: &str, password: &str) -> Answer {
        self.send(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// Creates a user with [`PASSWORD`]; returns its id.
    async fn user(&self, name: &str, role: &str) -> String {
        let a = self
            .send(
                "POST",
                "/api/v1/users",
                Some(ADMIN),
                Some(
                    json!({"username": name, "password": PASSWORD, "role": role, "grants": ["*"]}),
                ),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["id"].as_str().unwrap().to_string()
    }

    /// Every audit row, newest first (admin view of all tenants).
    async fn audit(&self) -> Vec<Value> {
        let a = self
            .send(
                "GET",
                "/api/v1/audit?all=true&limit=1000",
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body["entries"].as_array().unwrap().clone()
    }

    /// Kills the process and removes its directory.
    fn stop(self) {
        drop(self);
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// Sends `n` logins at once (`password(i)` for the i-th); returns their answers.
async fn burst(
    s: &AuthHub,
    n: usize,
    user: impl Fn(usize) -> String,
    password: impl Fn(usize) -> String,
) -> Vec<Answer> {
    let url = format!("{}/api/v1/auth/login", s.main);
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (http, url, start) = (s.http.clone(), url.clone(), start.clone());
            let body = json!({"username": user(i), "password": password(i)});
            tokio::spawn(async move {
                start.wait().await;
                answer(http.post(url).json(&body).send().await.expect("login")).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers
        .iter()
        .filter(|a| a.status.as_u16() == status)
        .count()
}

/// 50 simultaneous logins (one right password among 49 wrong) and 40 simultaneous wrong ones:
/// each attempt is counted before its password is hashed, so at most the per-user limit (5)
/// of wrong passwords is ever checked; the rest are 429 with `Retry-After`. The right password
/// gets 200 only if it was counted among the first five; a success gives its count back, so
/// one more wrong password may then be checked: at most six hashes, never more than five
/// 401s. 100 more simultaneous wrong
/// logins under fresh names are stopped by the per-address limit. The hub's resident memory
/// grows by less than 100 MiB over all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_are_counted_before_hashing_and_memory_stays_bounded() {
    let s = AuthHub::start(false, &[]).await;
    s.user("victim", "user").await;
    s.user("other", "user").await;
    let before = s.rss_kib();

    let first = burst(
        &s,
        50,
        |_| "victim".into(),
        |i| {
            if i == 17 {
                PASSWORD.into()
            } else {
                format!("wrong {i}")
            }
        },
    )
    .await;
    let (ok, denied, refused) = (count(&first, 200), count(&first, 401), count(&first, 429));
    eprintln!("50 logins, 1 right: {ok} x 200, {denied} x 401, {refused} x 429");
    assert_eq!(ok + denied + refused, 50, "only 200, 401 and 429");
    assert!(ok <= 1, "{ok} successes for one right password");
    assert!(
        denied <= 5,
        "at most five wrong passwords checked: {denied} x 401"
    );
    assert!(
        first
            .iter()
            .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
            .all(|a| a.retry_after.is_some() && a.body["error"] == "throttled")
    );

    let second = burst(&s, 40, |_| "other".into(), |i| format!("wrong {i}")).await;
    let (denied, refused) = (count(&second, 401), count(&second, 429));
    eprintln!("40 wrong logins: {denied} x 401, {refused} x 429");
    assert!(denied <= 5, "{denied} 401s");
    assert_eq!(denied + refused, 40);

    let third = burst(&s, 100, |i| format!("ghost-{i}"), |i| format!("wrong {i}")).await;
    let (denied, refused) = (count(&third, 401), count(&third, 429));
    eprintln!("100 wrong logins, fresh names: {denied} x 401, {refused} x 429");
    assert!(denied <= 20, "the per-address limit holds: {denied}");
    assert_eq!(denied + refused, 100);

    let after = s.rss_kib();
    eprintln!(
        "VmRSS before {} MiB, after {} MiB (growth {} MiB)",
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / 1024
    );
    assert!(
        after.saturating_sub(before) < 100 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    s.stop();
}

/// A 1 MB user name (and a password over 1 KiB) is refused with 400 before anything is looked
/// up or hashed, and leaves no audit row; audit fields of other refused requests (a long path)
/// are capped at 256 bytes and marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_login_fields_are_refused_and_audit_fields_are_capped() {
    let s = AuthHub::start(false, &[]).await;
    let a = s.login(&"n".repeat(1_000_000), "whatever password").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.body["error"], "bad_request");
    let a = s.login("someone", &"p".repeat(1025)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    // Just inside the bounds: an ordinary 401.
    let a = s.login(&"n".repeat(256), &"p".repeat(1024)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let long = format!("/api/v1/servers/{}", "s".repeat(4000));
    let a = s.send("DELETE", &long, None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let rows = s.audit().await;
    assert!(!rows.is_empty());
    for row in &rows {
        for field in ["tenant", "actor", "action", "target", "outcome", "detail"] {
            let len = row[field].as_str().map_or(0, str::len);
            assert!(len <= 256, "{field} is {len} bytes: {row}");
        }
    }
    let capped = rows
        .iter()
        .filter(|r| r["target"].as_str().unwrap().ends_with("…[truncated]"))
        .count();
    assert_eq!(capped, 1, "the long path (a 256-byte name fits): {rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["target"].as_str().unwrap().len() < 100_000),
        "the 1 MB name was never written"
    );
    s.stop();
}

async fn unauthenticated_flood_is_bounded(pg: bool) {
    let s = AuthHub::start(pg, &[]).await;
    let url = format!("{}/api/v1/servers", s.main);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(50));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let (http, url, sem) = (s.http.clone(), url.clone(), sem.clone());
            tokio::spawn(async move {
                let _slot = sem.acquire().await.unwrap();
                http.post(url)
                    .json(&json!({"name": format!("x{i}"), "url": "http://127.0.0.1:1/mcp"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    // One authenticated write, for comparison: recorded with its source too.
    let a = s
        .send(
            "POST",
            "/api/v1/users",
            Some(ADMIN),
            Some(json!({"username": "u1", "password": PASSWORD, "role": "user", "grants": ["*"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let rows = s.audit().await;
    let strangers = rows
        .iter()
        .filter(|r| r["actor"] == "unauthenticated")
        .count();
    eprintln!("1000 unauthenticated POSTs wrote {strangers} audit rows");
    assert!(
        strangers <= 10,
        "{strangers} rows for 1000 refused requests"
    );
    assert!(strangers >= 1, "refusals are still recorded");
    assert!(
        rows.iter().all(|r| r["source"] == "127.0.0.1"),
        "every row carries the source address: {rows:?}"
    );
    s.stop();
}

/// 1,000 unauthenticated POSTs to the management API from one address write at most 10 audit
/// rows (the rest are counted into one summary row per minute); every row names its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_flood_writes_a_bounded_number_of_audit_rows_on_sqlite() {
    unauthenticated_flood_is_bounded(false).await;
}

/// The same on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_flood_writes_a_bounded_number_of_audit_rows_on_postgres() {
    unauthenticated_flood_is_bounded(true).await;
}

async fn retention_sweeps(pg: bool) {
    let s = AuthHub::start(pg, &["--audit-retention", "2s"]).await;
    s.user("early", "user").await;
    assert!(
        s.audit()
            .await
            .iter()
            .any(|r| r["target"] == "/api/v1/users")
    );
    let gone = eventually(Duration::from_secs(15), async || {
        !s.audit()
            .await
            .iter()
            .any(|r| r["action"] == "POST /api/v1/users")
    })
    .await;
    assert!(gone, "the row outlived its 2 s retention");
    s.stop();
}

/// With `--audit-retention 2s`, a row is deleted by the sweeper within seconds (SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_sweeper_deletes_rows_past_the_retention_on_sqlite() {
    retention_sweeps(false).await;
}

/// The same on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_sweeper_deletes_rows_past_the_retention_on_postgres() {
    retention_sweeps(true).await;
}

/// A key with its own rate limit (0.2/s, burst 3) is refused with 429 and `Retry-After` on the
/// management API and on `/mcp` (a JSON-RPC error body, still HTTP 429) once its burst is
/// spent; `/api/v1/me` shows the limit and what is left; another key of the same user is
/// unaffected; a plain user may not give a key a limit above the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_limit_gets_429_and_another_key_does_not() {
    let s = AuthHub::start(false, &["--rate-limit-key", "50:100"]).await;
    let uid = s.user("rita", "user").await;
    let make_key = async |name: &str, limit: Option<Value>| {
        let mut body = json!({"name": name, "user_id": uid});
        if let Some(l) = limit {
            body["rate_limit"] = l;
        }
        let a = s
            .send("POST", "/api/v1/keys", Some(ADMIN), Some(body))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["key"].as_str().unwrap().to_string()
    };
    let slow = make_key("slow", Some(json!({"per_second": 0.2, "burst": 3}))).await;
    let fast = make_key("fast", None).await;

    let me = s.send("GET", "/api/v1/me", Some(&slow), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["rate_limit"]["key"]["burst"], 3, "{}", me.body);
    assert_eq!(me.body["rate_limit"]["key"]["per_second"], 0.2);
    assert_eq!(
        me.body["rate_limit"]["key"]["remaining"], 2,
        "this request took one"
    );
    s.send("GET", "/api/v1/me", Some(&slow), None).await;
    let mcp = format!("{}/mcp", s.mcp);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let post_mcp = async |key: &str| {
        answer(
            s.http
                .post(&mcp)
                .bearer_auth(key)
                .header("accept", "application/json, text/event-stream")
                .json(&init)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let a = post_mcp(&slow).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "the third request is within the burst: {}",
        a.body
    );
    let a = post_mcp(&slow).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["jsonrpc"], "2.0", "{}", a.body);
    assert_eq!(a.body["error"]["code"], -32000, "{}", a.body);
    let retry: u64 = a.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    let a = s.send("GET", "/api/v1/me", Some(&slow), None).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["error"], "rate_limited");
    assert!(a.retry_after.is_some());

    // The other key of the same user has its own bucket.
    let me = s.send("GET", "/api/v1/me", Some(&fast), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["rate_limit"]["key"]["burst"], 100);
    assert_eq!(post_mcp(&fast).await.status, StatusCode::OK);

    // A user cannot raise their own key's limit above the default.
    let a = s
        .send(
            "POST",
            "/api/v1/keys",
            Some(&fast),
            Some(json!({"name": "greedy", "rate_limit": {"per_second": 1000, "burst": 5000}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    s.stop();
}
