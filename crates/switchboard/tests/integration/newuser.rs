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
    // The reproduction: tools/list, with the stateless revision's `_meta`.
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
    for name in ["s", "h"] {
        assert_eq!(
            hub.hub.upstream(name).unwrap().client_sessions(),
            0,
            "{name}: a connection was opened besides the shared one"
        );
    }

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
