//! What a new user hit (issue #12): a 2026-07-28 client on `switchboard stdio`, extra copies
//! of a shared stdio server per client capabilities, a `/sse` URL without `type`, the error
//! for a tool of a server that is down, and the seed's MCP-service routes on loopback.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_hub::HubConfig;
use switchboard_upstream::UpstreamOptions;

use crate::common::*;

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const META_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// A stateless request's `_meta`, declaring `caps`.
fn meta(caps: Value) -> Value {
    json!({META_VERSION: "2026-07-28", META_INFO: {"name": "c", "version": "1"}, META_CAPS: caps})
}

/// One stateless 2026-07-28 request over Streamable HTTP: (status, messages, last one last).
async fn stateless(
    url: &str,
    method: &str,
    params: Value,
    name: Option<&str>,
) -> (u16, Vec<Value>) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(n) = name {
        req = req.header("mcp-name", n);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    (status, parse_messages(&ct, &text))
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-newuser-{tag}-{}",
        switchboard_hub::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- 1. `switchboard stdio` and a 2026-07-28 client ----

/// `switchboard stdio` as a child process, one JSON line at a time.
struct StdioHub {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    dir: std::path::PathBuf,
}

impl StdioHub {
    fn start(servers: Value) -> StdioHub {
        let dir = temp_dir("stdio");
        let path = dir.join("servers.json");
        std::fs::write(&path, servers.to_string()).unwrap();
        let mut child = Command::new(switchboard_bin())
            .args(["stdio", "--servers"])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        StdioHub {
            child,
            stdin,
            stdout,
            dir,
        }
    }

    fn send(&mut self, v: Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message with this id (others are skipped).
    fn recv(&mut self, id: i64) -> Value {
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "hub closed stdout"
            );
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout must be JSON only: {line:?}: {e}"));
            if v["id"] == id {
                return v;
            }
        }
    }

    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.recv(id)
    }
}

impl Drop for StdioHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[test]
fn switchboard_stdio_answers_2026_requests_with_result_type_and_cache_hints() {
    let mut hub = StdioHub::start(json!({"mcpServers": {"f": stdio_fixture("f", &[])}}));
    let discover = hub.request(1, "server/discover", json!({"_meta": meta(json!({}))}));
    assert!(
        discover["result"]["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("2026-07-28"))),
        "{discover}"
    );
    // The issue's reproduction: tools/list, with the stateless revision's `_meta`.
    let deadline = Instant::now() + Duration::from_secs(20);
    let list = loop {
        let r = hub.request(2, "tools/list", json!({"_meta": meta(json!({}))}));
        let listed = r["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "f__echo"));
        if listed || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let result = &list["result"];
    assert_eq!(result["resultType"], "complete", "{list}");
    assert_eq!(result["ttlMs"], 0, "{list}");
    assert_eq!(result["cacheScope"], "private", "{list}");
    let call = hub.request(
        3,
        "tools/call",
        json!({"name": "f__echo", "arguments": {"text": "modern"}, "_meta": meta(json!({}))}),
    );
    assert_eq!(call["result"]["resultType"], "complete", "{call}");
    assert_eq!(text_of(&call["result"]), "modern");
    // A revision the hub does not speak is refused as over HTTP.
    let old = hub.request(
        4,
        "tools/list",
        json!({"_meta": {META_VERSION: "2099-01-01", META_CAPS: {}}}),
    );
    assert_eq!(old["error"]["code"], -32022, "{old}");
    // `notifications/cancelled` reaches a stateless request on the shared channel.
    hub.send(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "f__hang", "arguments": {}, "_meta": meta(json!({}))}}));
    std::thread::sleep(Duration::from_millis(300));
    hub.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = hub.request(
            6,
            "tools/call",
            json!({"name": "f__stats", "arguments": {}, "_meta": meta(json!({}))}),
        );
        if stats["result"]["structuredContent"]["cancelled"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hanging call was never cancelled upstream: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn switchboard_stdio_still_speaks_sessions_to_a_client_that_initializes() {
    let mut hub = StdioHub::start(json!({"mcpServers": {"f": stdio_fixture("f", &[])}}));
    let init = hub.request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    hub.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let list = hub.request(2, "tools/list", json!({}));
    assert!(list["result"]["tools"].is_array(), "{list}");
    assert!(
        list["result"].get("resultType").is_none(),
        "a session client does not know resultType: {list}"
    );
}

// ---- 2. one process per shared stdio server, whatever clients declare ----

/// `s__stats` through a stateless client declaring `caps`: (pid, calls so far).
async fn stats_declaring(url: &str, caps: Value) -> (u64, u64) {
    let params = json!({"name": "s__stats", "arguments": {}, "_meta": meta(caps.clone())});
    let (status, msgs) = stateless(url, "tools/call", params, Some("s__stats")).await;
    let r = &msgs.last().unwrap()["result"]["structuredContent"];
    assert_eq!(status, 200, "{caps}: {msgs:?}");
    (r["pid"].as_u64().unwrap(), r["calls"].as_u64().unwrap())
}

#[tokio::test]
async fn a_shared_stdio_server_stays_one_process_whatever_clients_declare() {
    let http = switchboard_fixture::spawn_http(switchboard_fixture::FixtureOptions::new("h"))
        .await
        .unwrap();
    let hub = TestHub::start(
        json!({"mcpServers": {"s": stdio_fixture("s", &[]), "h": http_entry(&http.url)}}),
    )
    .await;
    let pid = u64::from(server_status(&hub.hub, "s").pid.expect("a pid"));
    let url = hub.url("/mcp");
    let declarations = [
        json!({}),
        json!({"sampling": {}}),
        json!({"elicitation": {}}),
        json!({"roots": {"listChanged": true}}),
        json!({"sampling": {}, "elicitation": {"form": {}}}),
        json!({"sampling": {}, "elicitation": {}, "roots": {}}),
        json!({"elicitation": {"url": {}}}),
        json!({"sampling": {"tools": {}}}),
        json!({"roots": {}}),
        json!({"sampling": {}, "roots": {}}),
    ];
    let mut last_calls = 0;
    for caps in declarations {
        let (seen, calls) = stats_declaring(&url, caps.clone()).await;
        assert_eq!(seen, pid, "{caps}: another process of the server answered");
        assert!(
            calls > last_calls,
            "{caps}: the count went from {last_calls} to {calls}: state is split"
        );
        last_calls = calls;
        // The HTTP server's tools are reached over its one session too.
        let params =
            json!({"name": "h__echo", "arguments": {"text": "x"}, "_meta": meta(caps.clone())});
        let (status, _) = stateless(&url, "tools/call", params, Some("h__echo")).await;
        assert_eq!(status, 200);
    }
    // A session client sees the same process and the same count.
    let mut c = McpClient::connect_with(&url, json!({"sampling": {}, "roots": {}})).await;
    let r = c.call("s__stats", json!({})).await;
    assert_eq!(r["structuredContent"]["pid"].as_u64(), Some(pid), "{r}");
    assert!(r["structuredContent"]["calls"].as_u64().unwrap() > last_calls);
    assert_eq!(server_status(&hub.hub, "s").pid.map(u64::from), Some(pid));
    assert_eq!(
        hub.hub.upstream("s").unwrap().client_sessions(),
        0,
        "s: a stdio process was started besides the shared one"
    );
    // A remote server is no process of ours: stateless clients reach it through sessions
    // declaring exactly their capabilities, at most eight of them (docs/protocol.md §3).
    let declaring = hub.hub.upstream("h").unwrap().client_sessions();
    assert!(
        (1..=8).contains(&declaring),
        "h: {declaring} declaring sessions for 10 declarations"
    );

    // The shared connection declared elicitation: a client that declared it is asked...
    let ask = json!({"name": "s__elicit", "arguments": {"message": "Your name?"}, "_meta": meta(json!({"elicitation": {}}))});
    let (_, msgs) = stateless(&url, "tools/call", ask, Some("s__elicit")).await;
    let r = &msgs.last().unwrap()["result"];
    assert_eq!(r["resultType"], "input_required", "{msgs:?}");
    // ...and one that did not is refused, per request, with what it lacks.
    let plain = json!({"name": "s__elicit", "arguments": {"message": "?"}, "_meta": meta(json!({"sampling": {}}))});
    let (status, msgs) = stateless(&url, "tools/call", plain, Some("s__elicit")).await;
    let e = &msgs.last().unwrap()["error"];
    assert_eq!(
        (status, e["code"].as_i64()),
        (400, Some(-32021)),
        "{msgs:?}"
    );
    assert_eq!(
        e["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
    // A session client without elicitation: the server hears a refusal, the tool says so.
    let mut plain = McpClient::connect_with(&url, json!({})).await;
    let r = plain
        .request(
            "tools/call",
            json!({"name": "s__elicit", "arguments": {"message": "?"}}),
        )
        .await;
    let answered = r.get("error").is_some() || r["result"]["isError"] == true;
    assert!(answered, "{r}");
    assert_eq!(server_status(&hub.hub, "s").pid.map(u64::from), Some(pid));
    hub.stop().await;
}

// ---- 6. a tool of a server that is down ----

/// Restarts far apart, so a crashed server stays down for the test.
fn slow_restarts() -> HubConfig {
    HubConfig {
        upstream: UpstreamOptions {
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(60),
            init_timeout: Duration::from_secs(10),
            ..UpstreamOptions::default()
        },
        startup_grace: Duration::from_millis(200),
        ..HubConfig::default()
    }
}

#[tokio::test]
async fn a_tool_of_a_server_that_is_down_says_the_server_is_unavailable() {
    let hub = TestHub::start_with(
        json!({"mcpServers": {
            "legacy": stdio_fixture("legacy", &[]),
            "up": stdio_fixture("up", &[]),
            "never": {"command": "/nonexistent/switchboard-test-server"},
        }}),
        slow_restarts(),
    )
    .await;
    let mut c = hub.client("/mcp").await;
    assert_eq!(
        text_of(&c.call("legacy__echo", json!({"text": "hi"})).await),
        "hi"
    );
    let _ = c
        .request(
            "tools/call",
            json!({"name": "legacy__crash", "arguments": {}}),
        )
        .await;
    assert!(
        eventually(Duration::from_secs(10), async || server_status(
            &hub.hub, "legacy"
        )
        .state
            != "ready")
        .await
    );

    let r = c
        .request(
            "tools/call",
            json!({"name": "legacy__echo", "arguments": {"text": "hi"}}),
        )
        .await;
    let e = &r["error"];
    assert_eq!(e["code"], -32603, "{r}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("\"legacy\"") && message.contains("unavailable"),
        "{message}"
    );
    assert_eq!(e["data"]["server"], "legacy", "{r}");
    assert_eq!(e["data"]["state"], "restarting", "{r}");
    assert!(e["data"]["lastError"].is_string(), "{r}");
    // Listing leaves the down server out.
    assert!(
        !c.tool_names()
            .await
            .iter()
            .any(|n| n.starts_with("legacy__"))
    );
    // Its own endpoint says the same.
    let mut own = hub.client("/mcp/legacy").await;
    let r = own
        .request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32603, "{r}");
    // A prompt of the down server too.
    let r = c
        .request(
            "prompts/get",
            json!({"name": "legacy__greeting", "arguments": {"name": "A"}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32603, "{r}");

    // A server that never came up: its tools are unknown, but its prefix names it.
    let r = c
        .request(
            "tools/call",
            json!({"name": "never__echo", "arguments": {}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert_eq!(r["error"]["data"]["server"], "never", "{r}");

    // Names that no server owns stay unknown.
    for name in ["nosuch__echo", "up__nosuch", "echo"] {
        let r = c
            .request("tools/call", json!({"name": name, "arguments": {}}))
            .await;
        assert_eq!(r["error"]["code"], -32602, "{name}: {r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown tool"),
            "{name}: {r}"
        );
    }
    hub.stop().await;
}

// ---- 5. a URL ending in /sse without "type" ----

/// POSTs that carried `Accept: text/event-stream` (Streamable HTTP attempts), and GETs.
fn attempts(server: &switchboard_fixture::FixtureServer) -> (usize, usize) {
    let seen = server.requests();
    let posts = seen
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.header("accept")
                    .is_some_and(|a| a.contains("text/event-stream"))
        })
        .count();
    let gets = seen.iter().filter(|r| r.method == "GET").count();
    (posts, gets)
}

#[tokio::test]
async fn a_url_without_type_falls_back_to_legacy_sse_and_remembers_it() {
    use switchboard_fixture::{FixtureOptions, spawn_sse};
    let shared = spawn_sse(FixtureOptions::new("l")).await.unwrap();
    let own = spawn_sse(FixtureOptions::new("p")).await.unwrap();
    assert!(shared.url.ends_with("/sse"));
    let hub = TestHub::start(json!({"mcpServers": {
        "legacy": {"url": shared.url},
        "pc": {"url": own.url, "session": "per-client"},
    }}))
    .await;
    for name in ["legacy", "pc"] {
        let st = server_status(&hub.hub, name);
        assert_eq!((st.state, st.transport), ("ready", "sse"), "{name}: {st:?}");
    }
    let mut c = hub.client("/mcp").await;
    assert_eq!(
        text_of(&c.call("legacy__echo", json!({"text": "via sse"})).await),
        "via sse"
    );
    // The per-client session of `pc` goes straight to the transport that worked.
    let before = attempts(&own);
    assert_eq!(before.1, 1, "{before:?}");
    assert_eq!(
        text_of(&c.call("pc__echo", json!({"text": "own"})).await),
        "own"
    );
    let after = attempts(&own);
    assert_eq!(
        after,
        (before.0, before.1 + 1),
        "the client's own session should open the SSE stream without trying Streamable HTTP again"
    );
    hub.stop().await;
}

/// A web server that is not MCP: a multi-line HTML page for every request (404 on POST).
async fn html_server() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::StatusCode;
    use axum::response::Html;
    let page = format!(
        "<!DOCTYPE html>\n<html>\n<head><title>Not here</title></head>\n<body>\n{}\n</body>\n</html>\n",
        "<p>nothing to see</p>\n".repeat(100)
    );
    let get_page = page.clone();
    let app = axum::Router::new().route(
        "/sse",
        axum::routing::get(move || async move { Html(get_page) })
            .post(move || async move { (StatusCode::NOT_FOUND, Html(page)) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sse", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

#[tokio::test]
async fn a_remote_that_is_not_mcp_fails_on_one_line_with_a_short_body() {
    let (url, task) = html_server().await;
    let hub = TestHub::start_with(
        json!({"mcpServers": {"web": {"url": url}}}),
        slow_restarts(),
    )
    .await;
    let st = server_status(&hub.hub, "web");
    let err = st.last_error.expect("an error");
    assert!(!err.contains('\n') && !err.contains('\r'), "{err:?}");
    assert!(
        err.contains("404") && err.contains("legacy SSE") && err.contains("not an event stream"),
        "both attempts are named: {err}"
    );
    assert!(err.len() < 800, "{} bytes: {err}", err.len());
    hub.stop().await;

    // The same through the binary: every line it logs is one log record.
    let dir = temp_dir("html");
    let path = dir.join("servers.json");
    std::fs::write(
        &path,
        json!({"mcpServers": {"web": {"url": url}}}).to_string(),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(switchboard_bin())
        .args(["stdio", "--servers"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mentions: Vec<&str> = stderr.lines().filter(|l| l.contains("web")).collect();
    assert!(
        !mentions.is_empty(),
        "nothing logged about the server: {stderr}"
    );
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with("20") && line.len() < 2000,
            "a log line that is not one record, or too long: {line:?}"
        );
    }
    assert!(
        stderr.contains("&lt;") || stderr.contains("<!DOCTYPE html>\\n<html>"),
        "the body should appear escaped on one line: {stderr}"
    );
    task.abort();
    std::fs::remove_dir_all(&dir).ok();
}

// ---- 8. the seed's MCP-service routes on loopback ----

const ADMIN: &str = "newuser-admin-token-0123456789";

/// `switchboard serve` on loopback, killed when dropped.
struct Serve {
    child: std::process::Child,
    main: String,
    mcp: String,
    dir: std::path::PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

async fn serve(servers: Value, extra: &[&str]) -> Serve {
    init();
    let dir = temp_dir("serve");
    let path = dir.join("servers.json");
    std::fs::write(&path, servers.to_string()).unwrap();
    let mcp_port = free_port();
    let main_port = free_port();
    let child = Command::new(switchboard_bin())
        .args([
            "serve",
            "--admin-token",
            ADMIN,
            "--ssrf-allow-cidrs",
            "127.0.0.0/8",
        ])
        .args(["--main-addr", &format!("127.0.0.1:{main_port}")])
        .args(["--mcp-addr", &format!("127.0.0.1:{mcp_port}")])
        .arg("--servers")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Serve {
        child,
        main: format!("http://127.0.0.1:{main_port}"),
        mcp: format!("http://127.0.0.1:{mcp_port}"),
        dir,
    };
    let health = format!("{}/health", s.mcp);
    assert!(
        eventually(Duration::from_secs(20), async || reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status() == 200))
        .await,
        "the hub did not start"
    );
    s
}

async fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_seeds_mcp_service_routes_are_open_on_loopback_like_mcp() {
    use reqwest::Method;
    let up = switchboard_fixture::spawn_http(switchboard_fixture::FixtureOptions::new("r"))
        .await
        .unwrap();
    let hub = serve(
        json!({"mcpServers": {"local": stdio_fixture("local", &[])}}),
        &[],
    )
    .await;
    let m = &hub.mcp;
    let (status, body) = send(
        Method::GET,
        &format!("{m}/healthcheck?mcp_url={}", up.url),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, body["connected"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (status, body) = send(Method::GET, &format!("{m}/list-remote-proxies"), None, None).await;
    assert_eq!(status, 200, "{body}");
    let add = json!({"service_name": "remote", "mcp_url": up.url});
    let (status, body) = send(
        Method::POST,
        &format!("{m}/add-remote-proxies"),
        None,
        Some(add),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut c = McpClient::connect(&format!("{m}/mcp")).await;
    assert!(
        eventually(Duration::from_secs(10), async || c
            .tool_names()
            .await
            .contains(&"remote__echo".to_string()))
        .await
    );
    let (_, listed) = send(Method::GET, &format!("{m}/list-remote-proxies"), None, None).await;
    assert_eq!(listed["proxies"][0]["service_name"], "remote", "{listed}");
    // The route family handles remote proxies only: the servers file's stdio server stays.
    let (status, body) = send(
        Method::DELETE,
        &format!("{m}/remote-proxies?service_name=local"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = send(
        Method::DELETE,
        &format!("{m}/remote-proxies?service_name=remote"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A credential that is sent is checked.
    let (status, _) = send(
        Method::GET,
        &format!("{m}/list-remote-proxies"),
        Some("not-a-key"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // The audit log names the anonymous loopback caller.
    let (status, audit) = send(
        Method::GET,
        &format!("{}/api/v1/audit", hub.main),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let recorded = audit["entries"].as_array().unwrap().iter().any(|e| {
        e["actor"] == "anonymous (loopback)"
            && e["action"] == "POST /add-remote-proxies"
            && e["outcome"] == "ok"
    });
    assert!(recorded, "{audit}");
    drop(hub);
}

#[tokio::test]
async fn the_seeds_mcp_service_routes_need_a_credential_when_mcp_auth_is_required() {
    use reqwest::Method;
    let hub = serve(json!({"mcpServers": {}}), &["--mcp-auth", "required"]).await;
    let m = &hub.mcp;
    for (method, path) in [
        (Method::GET, "/healthcheck?mcp_url=http://127.0.0.1:1/mcp"),
        (Method::GET, "/list-remote-proxies"),
        (Method::POST, "/add-remote-proxies"),
        (Method::DELETE, "/remote-proxies?service_name=x"),
    ] {
        let (status, body) = send(method.clone(), &format!("{m}{path}"), None, None).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
    }
    let (status, _) = send(Method::POST, &format!("{m}/mcp"), None, Some(json!({}))).await;
    assert_eq!(status, 401, "/mcp is closed the same way");
    let (status, body) = send(
        Method::GET,
        &format!("{m}/list-remote-proxies"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
