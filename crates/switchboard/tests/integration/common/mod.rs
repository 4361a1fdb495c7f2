//! Shared helpers: [`TestApp`] (a hub with its store and both services, in process) and its
//! API client ([`ApiClient`], [`Req`]), an in-process MCP router on port 0 ([`TestHub`]), a
//! small MCP client over Streamable HTTP, servers-file builders, paths to the built binaries,
//! loopback ports and PostgreSQL databases made for one test.

#![allow(dead_code)]

mod api;
mod app;
#[macro_use]
mod served;

pub use api::{Answer, ApiClient, Req, ServesApi};
pub use app::{TestApp, TestAppBuilder, loopback_policy};
pub use served::Served;
pub use switchboard::url_encode;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::config::{ProcessEnv, parse_servers_file};
use switchboard_core::sse::Decoder;
use switchboard_hub::{Hub, HubConfig};
use tokio_util::sync::CancellationToken;

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber_init();
}

fn tracing_subscriber_init() -> Option<()> {
    None
}

/// A binary built next to the test executable (`scripts/test.sh` builds every binary first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub fn fixture_bin() -> PathBuf {
    bin("switchboard-fixture")
}

pub fn switchboard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard"))
}

/// A stdio entry running the fixture binary.
pub fn stdio_fixture(name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["stdio".to_string(), "--name".into(), name.into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    json!({"command": fixture_bin(), "args": args})
}

pub fn http_entry(url: &str) -> Value {
    json!({"type": "streamable-http", "url": url})
}

pub fn sse_entry(url: &str) -> Value {
    json!({"type": "sse", "url": url})
}

/// The hub, serving its MCP router on an ephemeral loopback port.
pub struct TestHub {
    pub hub: Hub,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

impl TestHub {
    /// Starts a hub from a servers-file JSON value and waits for its servers to settle.
    pub async fn start(file: Value) -> TestHub {
        Self::start_with(file, HubConfig::default()).await
    }

    pub async fn start_with(file: Value, config: HubConfig) -> TestHub {
        init();
        let parsed = parse_servers_file(
            Path::new("test.json"),
            &file.to_string(),
            &ProcessEnv,
            &config.separator,
        )
        .expect("valid servers file");
        let hub = Hub::new(config);
        for (_, spec) in parsed.servers {
            hub.add_server(spec).await.expect("add server");
        }
        hub.set_groups(parsed.groups).await.expect("groups");
        let (listener, addr) = bind().await;
        let shutdown = CancellationToken::new();
        let router = switchboard_http::mcp_router(hub.clone());
        tokio::spawn(switchboard_http::serve(listener, router, shutdown.clone()));
        assert!(
            hub.wait_settled(Duration::from_secs(30)).await,
            "servers did not settle"
        );
        TestHub {
            hub,
            addr,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn client(&self, path: &str) -> McpClient {
        McpClient::connect(&self.url(path)).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.hub.shutdown().await;
    }
}

/// A deliberately small MCP client over Streamable HTTP that shows every byte it gets.
pub struct McpClient {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    /// Sent as `Authorization: Bearer` on every request, when set.
    pub bearer: Option<String>,
    next_id: u64,
    /// Notifications and server requests received on POST response streams, in order.
    pub received: Vec<Value>,
}

impl McpClient {
    pub async fn connect(url: &str) -> McpClient {
        Self::connect_with(url, json!({})).await
    }

    pub async fn connect_with(url: &str, capabilities: Value) -> McpClient {
        let mut c = McpClient::unconnected(url);
        let init = c
            .request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": capabilities, "clientInfo": {"name": "test", "version": "1"}}),
            )
            .await;
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        c.notify("notifications/initialized", None).await;
        c
    }

    /// Connects with `Authorization: Bearer <token>` on every request.
    pub async fn connect_authorized(url: &str, token: &str) -> McpClient {
        let mut c = McpClient::unconnected(url);
        c.bearer = Some(token.to_string());
        let init = c
            .request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
            )
            .await;
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        c.notify("notifications/initialized", None).await;
        c
    }

    pub fn unconnected(url: &str) -> McpClient {
        McpClient {
            http: reqwest::Client::new(),
            url: url.to_string(),
            session: None,
            bearer: None,
            next_id: 1,
            received: Vec::new(),
        }
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// POSTs raw text; returns status, session header and the messages in the reply.
    pub async fn post(&mut self, body: String) -> (reqwest::StatusCode, Vec<Value>, String) {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("POST");
        let status = resp.status();
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_string());
        }
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap_or_default();
        (status, parse_messages(&ct, &text), text)
    }

    /// Sends a request; returns the response message. Other messages go to `received`.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id();
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let (status, msgs, text) = self.post(body).await;
        assert!(status.is_success(), "{method}: HTTP {status}: {text}");
        let mut response = None;
        for m in msgs {
            if m.get("id") == Some(&json!(id)) && m.get("method").is_none() {
                response = Some(m);
            } else {
                self.received.push(m);
            }
        }
        response.unwrap_or_else(|| panic!("{method}: no response in {text:?}"))
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) {
        let mut msg = json!({"jsonrpc": "2.0", "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        let (status, _, text) = self.post(msg.to_string()).await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{method}: {text}");
    }

    /// `tools/call`, returning the result object (panics on a JSON-RPC error).
    pub async fn call(&mut self, name: &str, args: Value) -> Value {
        let r = self
            .request("tools/call", json!({"name": name, "arguments": args}))
            .await;
        r.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("tools/call {name} failed: {r}"))
    }

    pub async fn tool_names(&mut self) -> Vec<String> {
        let r = self.request("tools/list", json!({})).await;
        r["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The names a smart endpoint's `search_tools` finds for `query`, best first.
    pub async fn search_tools(&mut self, query: &str) -> Vec<String> {
        let r = self.call("search_tools", json!({"query": query})).await;
        r["structuredContent"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {r}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// First text block of a tool result.
pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Messages in a reply body: one JSON message, or the `message` events of an event stream.
pub fn parse_messages(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("text/event-stream") {
        let mut d = Decoder::new(1 << 26);
        let mut events = Vec::new();
        d.feed(body.as_bytes(), &mut events).unwrap();
        d.feed(b"\n\n", &mut events).unwrap();
        events
            .into_iter()
            .filter(|e| e.kind() == "message")
            .filter_map(|e| serde_json::from_str(&e.data).ok())
            .collect()
    } else if body.trim().is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_str(body).unwrap_or_else(|e| panic!("bad JSON reply {body:?}: {e}"))]
    }
}

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Status of one server through the local service.
pub fn server_status(hub: &Hub, name: &str) -> switchboard_hub::ServerStatus {
    hub.servers()
        .into_iter()
        .find(|s| s.name == name)
        .expect("server exists")
}

/// True while a process with `pid` exists.
pub fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// A listener on an ephemeral loopback port, with its address.
pub async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// A free loopback TCP port (bound and released; a test binds it again at once).
///
/// Chosen at random below Linux's ephemeral range (32768-60999 by default), not by binding
/// port 0: a port the kernel hands out for port 0 comes from the range it also uses for the
/// source ports of outgoing connections, and with hundreds of loopback connections per
/// test run one of those sometimes took the port between this check and the hub's own bind
/// (the hub then failed to start, and the test with it). A port is never handed out twice
/// in one test process.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let state = RandomState::new();
    let mut given = GIVEN.lock().unwrap();
    for attempt in 0u64..1000 {
        let port = 20_000 + (state.hash_one(attempt) % 12_000) as u16;
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between 20000 and 32000 on 127.0.0.1")
}

/// The PostgreSQL server the tests use: `SWITCHBOARD_TEST_PG_URL`, else the local one with
/// trust authentication.
pub fn pg_base_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs one SQL statement on the server's `postgres` database with psql.
pub fn psql(sql: &str) -> std::process::Output {
    psql_in("postgres", sql)
}

/// Runs one SQL statement on database `db` with psql.
pub fn psql_in(db: &str, sql: &str) -> std::process::Output {
    std::process::Command::new("psql")
        .arg(format!("{}/{db}", pg_base_url()))
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("psql runs (PostgreSQL client tools are needed for this test)")
}

/// A PostgreSQL database made for one test, `switchboard_<purpose>_<random>`, dropped (with
/// its connections) when this goes away.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub fn create(purpose: &str) -> PgDatabase {
        let name = format!(
            "switchboard_{purpose}_{}",
            switchboard_control::identity::random_hex(6)
        );
        let out = psql(&format!("CREATE DATABASE {name}"));
        assert!(
            out.status.success(),
            "CREATE DATABASE failed (is PostgreSQL at {}?): {}",
            pg_base_url(),
            String::from_utf8_lossy(&out.stderr)
        );
        PgDatabase { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", pg_base_url(), self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let out = psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if !out.status.success() {
            eprintln!(
                "could not drop {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
