//! The control plane through the real binary: the seed's routes on both services, persistence
//! across restarts, the split deployment (`--role main` + `--role mcp`) and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::*;

const TOKEN: &str = "control-test-token-0123456789";

/// A `switchboard serve` process, killed (with its process group's upstreams) when dropped.
struct HubProcess {
    child: Child,
    main: String,
    mcp: String,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-ctl-{tag}-{}",
        switchboard_hub::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Launch<'a> {
    data_dir: &'a Path,
    role: &'a str,
    main_port: u16,
    mcp_port: u16,
    reconcile_ms: u64,
    extra: Vec<String>,
}

impl Launch<'_> {
    fn new(data_dir: &Path) -> Launch<'_> {
        Launch {
            data_dir,
            role: "all",
            main_port: free_port(),
            mcp_port: free_port(),
            reconcile_ms: 100,
            extra: Vec::new(),
        }
    }

    async fn start(self) -> HubProcess {
        let child = Command::new(switchboard_bin())
            .arg("serve")
            .args([
                "--role",
                self.role,
                "--admin-token",
                TOKEN,
                "--ssrf-allow-cidrs",
                "127.0.0.0/8",
            ])
            .args([
                "--main-addr",
                &format!("127.0.0.1:{}", self.main_port),
                "--mcp-addr",
                &format!("127.0.0.1:{}", self.mcp_port),
            ])
            .arg("--data-dir")
            .arg(self.data_dir)
            .args(["--reconcile-interval-ms", &self.reconcile_ms.to_string()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let hub = HubProcess {
            child,
            main: format!("http://127.0.0.1:{}", self.main_port),
            mcp: format!("http://127.0.0.1:{}", self.mcp_port),
        };
        let probe = if self.role == "main" {
            format!("{}/health", hub.main)
        } else {
            format!("{}/health", hub.mcp)
        };
        assert!(
            eventually(Duration::from_secs(15), async || reqwest::get(&probe)
                .await
                .is_ok_and(|r| r.status() == 200))
            .await,
            "hub did not start"
        );
        hub
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str) -> (StatusCode, Value) {
    call(reqwest::Method::GET, url, Some(TOKEN), None).await
}

async fn post(url: &str) -> (StatusCode, Value) {
    call(reqwest::Method::POST, url, Some(TOKEN), None).await
}

async fn delete(url: &str) -> (StatusCode, Value) {
    call(reqwest::Method::DELETE, url, Some(TOKEN), None).await
}

fn add_url(base: &str, name: &str, url: &str) -> String {
    format!("{base}/api/mcp/add?mcp_url={url}&service_name={name}")
}

async fn has_tool(mcp_base: &str, tool: &str) -> bool {
    let mut c = McpClient::connect(&format!("{mcp_base}/mcp")).await;
    c.tool_names().await.contains(&tool.to_string())
}

#[tokio::test]
async fn seed_main_routes_follow_the_seed_contract() {
    init();
    let up = spawn_http(FixtureOptions::new("a")).await.unwrap();
    let dir = temp_dir("seed");
    let hub = Launch::new(&dir).start().await;
    let (status, body) = call(
        reqwest::Method::GET,
        &format!("{}/api/mcp/list", hub.main),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["status"], "error");

    // A client connected before the add sees the new tools without reconnecting.
    let mut client = McpClient::connect(&format!("{}/mcp", hub.mcp)).await;
    let (status, body) = post(&add_url(&hub.main, "alpha", &up.url)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("success")),
        "{body}"
    );
    assert_eq!(body["message"], "Successfully added");
    assert!(
        eventually(Duration::from_secs(5), async || client
            .tool_names()
            .await
            .contains(&"alpha__echo".into()))
        .await
    );
    assert_eq!(
        text_of(&client.call("alpha__echo", json!({"text": "seed"})).await),
        "seed"
    );

    let (status, body) = post(&add_url(&hub.main, "alpha", &up.url)).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = post(&add_url(&hub.main, "down", "http://127.0.0.1:1/mcp")).await;
    assert_eq!(status, 503, "{body}");
    let (status, _) = post(&add_url(&hub.main, "meta", "http://169.254.169.254/mcp")).await;
    assert_eq!(status, 400);
    let (status, _) = post(&format!("{}/api/mcp/add?service_name=x", hub.main)).await;
    assert_eq!(status, 400, "missing mcp_url");
    let (status, _) = post(&add_url(&hub.main, "bad name", &up.url)).await;
    assert_eq!(status, 400);
    let (_, list) = get(&format!("{}/api/mcp/list", hub.main)).await;
    let names: Vec<&str> = list["remote_mcp_server_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["remote_mcp_server_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["alpha"],
        "failed adds leave nothing behind: {list}"
    );
    assert_eq!(
        list["remote_mcp_server_list"][0]["remote_mcp_server"],
        up.url
    );
    assert_eq!(list["remote_mcp_server_list"][0]["status"], true);

    let (status, tools) = get(&format!(
        "{}/api/mcp/tools/?service_name=alpha&mcp_url={}",
        hub.main, up.url
    ))
    .await;
    assert_eq!(status, 200);
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo"),
        "{tools}"
    );
    let (status, _) = get(&format!(
        "{}/api/mcp/tools/?service_name=d&mcp_url=http://127.0.0.1:1/mcp",
        hub.main
    ))
    .await;
    assert_eq!(status, 400);

    let (status, body) = delete(&format!(
        "{}/api/mcp/?service_name=alpha&mcp_url={}",
        hub.main, up.url
    ))
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Successfully deleted")),
        "{body}"
    );
    assert!(
        eventually(Duration::from_secs(5), async || !client
            .tool_names()
            .await
            .contains(&"alpha__echo".into()))
        .await
    );
    let (status, body) = delete(&format!("{}/api/mcp/?service_name=alpha", hub.main)).await;
    assert_eq!(status, 400, "{body}");
    drop(hub);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn mcp_service_internal_routes_and_recover() {
    init();
    let up = spawn_http(FixtureOptions::new("b")).await.unwrap();
    let dir = temp_dir("internal");
    // The periodic reconcile would mount the unmounted "kept" again before `recover` runs:
    // keep it out of the way, so the test sees what recover itself does.
    let hub = Launch {
        reconcile_ms: 600_000,
        ..Launch::new(&dir)
    }
    .start()
    .await;
    let (status, body) = get(&format!("{}/healthcheck?mcp_url={}", hub.mcp, up.url)).await;
    assert_eq!(
        (status, body["connected"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );
    let (status, body) = get(&format!(
        "{}/healthcheck?mcp_url=http://127.0.0.1:1/mcp",
        hub.mcp
    ))
    .await;
    assert_eq!(
        (status, body["connected"].as_bool()),
        (StatusCode::SERVICE_UNAVAILABLE, Some(false)),
        "{body}"
    );
    // Open on loopback without a credential, like /mcp (see newuser.rs).
    let (status, _) = call(
        reqwest::Method::GET,
        &format!("{}/list-remote-proxies", hub.mcp),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);

    let add = json!({"service_name": "direct", "mcp_url": up.url, "transport": "streamable-http"});
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{}/add-remote-proxies", hub.mcp),
        Some(TOKEN),
        Some(add.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        reqwest::Method::POST,
        &format!("{}/add-remote-proxies", hub.mcp),
        Some(TOKEN),
        Some(add),
    )
    .await;
    assert_eq!(status, 409);
    let bad = json!({"service_name": "x", "mcp_url": "ftp://nope", "transport": "sse"});
    let (status, _) = call(
        reqwest::Method::POST,
        &format!("{}/add-remote-proxies", hub.mcp),
        Some(TOKEN),
        Some(bad),
    )
    .await;
    assert_eq!(status, 400);
    let (_, listed) = get(&format!("{}/list-remote-proxies", hub.mcp)).await;
    assert_eq!(listed["proxies"][0]["service_name"], "direct", "{listed}");
    assert!(
        eventually(Duration::from_secs(5), async || has_tool(
            &hub.mcp,
            "direct__echo"
        )
        .await)
        .await
    );
    let (status, _) = delete(&format!("{}/remote-proxies?service_name=direct", hub.mcp)).await;
    assert_eq!(status, 200);
    let (status, _) = delete(&format!("{}/remote-proxies?service_name=direct", hub.mcp)).await;
    assert_eq!(status, 404);

    // Recorded but not running: recover mounts it again and reports the outcome.
    let (status, _) = post(&add_url(&hub.main, "kept", &up.url)).await;
    assert_eq!(status, 200);
    let (status, _) = delete(&format!("{}/remote-proxies?service_name=kept", hub.mcp)).await;
    assert_eq!(status, 200);
    assert!(!has_tool(&hub.mcp, "kept__echo").await);
    let (status, body) = get(&format!("{}/api/mcp/recover", hub.main)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["results"],
        json!([{"service_name": "kept", "status": "success"}])
    );
    assert!(
        eventually(Duration::from_secs(5), async || has_tool(
            &hub.mcp,
            "kept__echo"
        )
        .await)
        .await
    );
    drop(hub);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn recorded_servers_come_back_after_a_restart_without_recover() {
    init();
    let up = spawn_http(FixtureOptions::new("c")).await.unwrap();
    let dir = temp_dir("restart");
    let servers = dir.join("servers.json");
    std::fs::write(
        &servers,
        json!({"mcpServers": {"filed": stdio_fixture("filed", &[])}}).to_string(),
    )
    .unwrap();
    let mut launch = Launch::new(&dir);
    launch.extra = vec!["--servers".into(), servers.display().to_string()];
    let (main_port, mcp_port) = (launch.main_port, launch.mcp_port);
    let hub = launch.start().await;
    let (status, _) = post(&add_url(&hub.main, "added", &up.url)).await;
    assert_eq!(status, 200);
    assert!(
        eventually(Duration::from_secs(10), async || has_tool(
            &hub.mcp,
            "filed__echo"
        )
        .await)
        .await
    );
    drop(hub);

    // Same data dir, no servers file this time: the store is the source of truth.
    let mut launch = Launch::new(&dir);
    (launch.main_port, launch.mcp_port) = (main_port, mcp_port);
    let hub = launch.start().await;
    assert!(
        eventually(Duration::from_secs(10), async || has_tool(
            &hub.mcp,
            "added__echo"
        )
        .await
            && has_tool(&hub.mcp, "filed__echo").await)
        .await
    );
    let key = std::fs::metadata(dir.join("secret.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    drop(hub);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn split_deployment_main_calls_the_mcp_service() {
    init();
    let up = spawn_http(FixtureOptions::new("d")).await.unwrap();
    let dir = temp_dir("split");
    let mut mcp_launch = Launch::new(&dir);
    mcp_launch.role = "mcp";
    let mcp_port = mcp_launch.mcp_port;
    let mcp = mcp_launch.start().await;
    let mut main_launch = Launch::new(&dir);
    main_launch.role = "main";
    main_launch.extra = vec!["--mcp-service-url".into(), mcp.mcp.clone()];
    let main = main_launch.start().await;
    let reachable = reqwest::get(format!(
        "http://127.0.0.1:{}/health",
        main_launch_port(&main)
    ))
    .await;
    assert!(reachable.is_ok());

    let (status, body) = post(&add_url(&main.main, "remote", &up.url)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(Duration::from_secs(5), async || has_tool(
            &mcp.mcp,
            "remote__echo"
        )
        .await)
        .await,
        "mounted by the MCP service"
    );
    let (_, list) = get(&format!("{}/api/mcp/list", main.main)).await;
    assert_eq!(list["remote_mcp_server_list"][0]["status"], true, "{list}");
    let (status, _) = post(&add_url(&main.main, "remote", &up.url)).await;
    assert_eq!(status, 409);

    // The MCP service dies and comes back: it mounts what the store records by itself.
    drop(mcp);
    let (status, body) = get(&format!("{}/api/mcp/recover", main.main)).await;
    assert_eq!(status, 503, "recover needs the MCP service: {body}");
    let mut again = Launch::new(&dir);
    again.role = "mcp";
    again.mcp_port = mcp_port;
    let mcp = again.start().await;
    assert!(
        eventually(Duration::from_secs(10), async || has_tool(
            &mcp.mcp,
            "remote__echo"
        )
        .await)
        .await
    );
    let (status, body) = get(&format!("{}/api/mcp/recover", main.main)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("success")),
        "{body}"
    );

    let (status, body) = delete(&format!(
        "{}/api/mcp/?service_name=remote&mcp_url={}",
        main.main, up.url
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(Duration::from_secs(5), async || !has_tool(
            &mcp.mcp,
            "remote__echo"
        )
        .await)
        .await
    );
    drop(main);
    drop(mcp);
    std::fs::remove_dir_all(&dir).ok();
}

fn main_launch_port(hub: &HubProcess) -> u16 {
    hub.main.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn postgres_store_keeps_servers_across_restarts() {
    init();
    let db = PgDatabase::create("hub_test");
    let up = spawn_http(FixtureOptions::new("e")).await.unwrap();
    let dir = temp_dir("pg");
    let mut launch = Launch::new(&dir);
    launch.extra = vec!["--database-url".into(), db.url()];
    let ports = (launch.main_port, launch.mcp_port);
    let hub = launch.start().await;
    let (status, body) = post(&add_url(&hub.main, "pgserver", &up.url)).await;
    assert_eq!(status, 200, "{body}");
    drop(hub);
    let mut launch = Launch::new(&dir);
    launch.extra = vec!["--database-url".into(), db.url()];
    (launch.main_port, launch.mcp_port) = ports;
    let hub = launch.start().await;
    assert!(
        eventually(Duration::from_secs(10), async || has_tool(
            &hub.mcp,
            "pgserver__echo"
        )
        .await)
        .await
    );
    drop(hub);
    std::fs::remove_dir_all(&dir).ok();
}

fn cli(hub: &HubProcess, args: &[&str]) -> (bool, String, String) {
    cli_with(hub, args, &[])
}

// The CLI runs as a blocking child process: keep a second worker for the in-process upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_a_running_hub() {
    init();
    let up = spawn_http(FixtureOptions::new("f")).await.unwrap();
    let dir = temp_dir("cli");
    let hub = Launch::new(&dir).start().await;
    let (ok, out, err) = cli(&hub, &["check", &up.url]);
    assert!(
        ok && out.contains("reachable") && out.contains("echo"),
        "{out}{err}"
    );
    let (ok, _, err) = cli(&hub, &["check", "http://127.0.0.1:1/mcp"]);
    assert!(!ok && err.contains("cannot connect"), "{err}");

    let fixture = fixture_bin().display().to_string();
    let (ok, _, err) = cli(
        &hub,
        &[
            "servers",
            "add",
            "web",
            "--url",
            &up.url,
            "--header",
            "X-Key=s3cret",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(
        &hub,
        &[
            "servers",
            "add",
            "local",
            "--command",
            &fixture,
            "--arg",
            "stdio",
            "--env",
            "TOKEN=hidden",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&hub, &["servers", "add", "web", "--url", &up.url]);
    assert!(!ok && err.contains("409"), "duplicate: {err}");
    let (ok, _, err) = cli(&hub, &["servers", "add", "neither"]);
    assert!(!ok && err.contains("--url"), "{err}");
    assert!(
        eventually(Duration::from_secs(10), async || {
            let (_, out, _) = cli(&hub, &["servers", "list"]);
            out.lines().filter(|l| l.contains(" ready ")).count() == 2
        })
        .await
    );
    let (_, out, _) = cli(&hub, &["servers", "list", "--json"]);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["servers"].as_array().unwrap().len(), 2);
    assert!(
        !out.contains("s3cret") && !out.contains("hidden"),
        "secrets never leave the API in clear: {out}"
    );

    let (ok, _, _) = cli(&hub, &["servers", "disable", "local"]);
    assert!(ok);
    assert!(
        eventually(Duration::from_secs(5), async || !has_tool(
            &hub.mcp,
            "local__echo"
        )
        .await)
        .await
    );
    let (ok, _, _) = cli(&hub, &["servers", "enable", "local"]);
    assert!(ok);
    assert!(
        eventually(Duration::from_secs(10), async || has_tool(
            &hub.mcp,
            "local__echo"
        )
        .await)
        .await
    );

    let (_, masked, _) = cli(&hub, &["servers", "export"]);
    assert!(!masked.contains("s3cret"));
    let (_, revealed, _) = cli(&hub, &["servers", "export", "--reveal"]);
    assert!(
        revealed.contains("s3cret") && revealed.contains("hidden"),
        "{revealed}"
    );
    let (ok, _, _) = cli(&hub, &["servers", "rm", "web"]);
    assert!(ok);
    let (ok, _, err) = cli(&hub, &["servers", "rm", "web"]);
    assert!(!ok && err.contains("404"), "{err}");
    let file = dir.join("export.json");
    std::fs::write(&file, &revealed).unwrap();
    let (ok, out, err) = cli(&hub, &["servers", "import", file.to_str().unwrap()]);
    assert!(
        ok && out.contains("web"),
        "import adds back only the missing server: {out}{err}"
    );
    drop(hub);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn clients_of_a_restarted_hub_go_on_with_their_sessions() {
    init();
    let up = spawn_http(FixtureOptions::new("g")).await.unwrap();
    let dir = temp_dir("bounce");
    let launch = Launch::new(&dir);
    let ports = (launch.main_port, launch.mcp_port);
    let hub = launch.start().await;
    let (status, _) = post(&add_url(&hub.main, "kept", &up.url)).await;
    assert_eq!(status, 200);
    let mut client = McpClient::connect(&format!("{}/mcp", hub.mcp)).await;
    assert!(
        eventually(Duration::from_secs(5), async || client
            .tool_names()
            .await
            .contains(&"kept__echo".into()))
        .await
    );
    drop(hub);

    let mut again = Launch::new(&dir);
    (again.main_port, again.mcp_port) = ports;
    let hub = again.start().await;
    // The session id is sealed with the data directory's key: the restarted hub resumes it.
    let (status, _, text) = client
        .post(json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(status, 200, "{text}");
    // An id that is not one of the hub's is unknown: 404 tells the client to start again.
    client.session = Some("0123456789abcdef0123456789abcdef".into());
    let (status, _, _) = client
        .post(json!({"jsonrpc": "2.0", "id": 100, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(status, 404);
    let mut fresh = McpClient::connect(&format!("{}/mcp", hub.mcp)).await;
    assert!(
        eventually(Duration::from_secs(10), async || fresh
            .tool_names()
            .await
            .contains(&"kept__echo".into()))
        .await
    );
    assert_eq!(
        text_of(
            &fresh
                .call("kept__echo", json!({"text": "after restart"}))
                .await
        ),
        "after restart"
    );
    // A session its client ended stays ended across a restart.
    let ended = fresh.session.clone().unwrap();
    let del = reqwest::Client::new()
        .delete(format!("{}/mcp", hub.mcp))
        .header("mcp-session-id", &ended)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    drop(hub);
    let mut third = Launch::new(&dir);
    (third.main_port, third.mcp_port) = ports;
    let hub = third.start().await;
    let (status, _, text) = fresh
        .post(json!({"jsonrpc": "2.0", "id": 101, "method": "tools/list"}).to_string())
        .await;
    assert_eq!(
        status, 404,
        "a deleted session came back after a restart: {text}"
    );
    drop(hub);
    std::fs::remove_dir_all(&dir).ok();
}

fn cli_with(hub: &HubProcess, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(switchboard_bin())
        .args(args)
        .env("SWITCHBOARD_API_URL", &hub.main)
        .env("SWITCHBOARD_ADMIN_TOKEN", TOKEN)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CLI creates a tenant, a user in it and a key for that user; the key reaches the
/// tenant's MCP endpoint on the main service until it is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_tenants_users_and_keys() {
    init();
    let dir = temp_dir("cli-identity");
    let hub = Launch::new(&dir).start().await;
    let (ok, _, err) = cli(&hub, &["tenants", "add", "team-x"]);
    assert!(ok, "{err}");
    let (ok, out, _) = cli(&hub, &["tenants", "list"]);
    assert!(
        ok && out.contains("team-x") && out.contains("default"),
        "{out}"
    );
    let (ok, _, err) = cli(&hub, &["tenants", "add", "team-x"]);
    assert!(!ok && err.contains("409"), "{err}");

    let (ok, out, err) = cli_with(
        &hub,
        &[
            "users", "add", "xavier", "--tenant", "team-x", "--role", "manager",
        ],
        &[("SWITCHBOARD_NEW_PASSWORD", "a long enough password")],
    );
    assert!(ok, "{err}");
    let user: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (user["tenant"].as_str(), user["role"].as_str()),
        (Some("team-x"), Some("manager"))
    );
    let user_id = user["id"].as_str().unwrap().to_string();
    // Without --tenant the admin token acts on the default tenant, where xavier is not.
    let (_, out, _) = cli(&hub, &["users", "list"]);
    assert!(!out.contains("xavier"), "{out}");
    let (_, out, _) = cli(&hub, &["users", "list", "--tenant", "team-x"]);
    assert!(out.contains("xavier"), "{out}");

    let (ok, key, err) = cli(
        &hub,
        &[
            "keys", "create", "laptop", "--tenant", "team-x", "--user", &user_id,
        ],
    );
    assert!(ok && err.contains("shown only this once"), "{err}");
    let key = key.trim().to_string();
    assert!(key.starts_with("sb_"), "{key}");

    let mcp_status = |key: String| {
        let url = format!("{}/mcp", hub.main);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "cli-test", "version": "1"}}}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(mcp_status(key.clone()).await, StatusCode::OK);
    let key_id = key.split('_').nth(1).unwrap().to_string();
    let (_, out, _) = cli(&hub, &["keys", "list", "--tenant", "team-x"]);
    assert!(out.contains(&key_id) && out.contains("laptop"), "{out}");
    let (ok, _, err) = cli(&hub, &["keys", "revoke", &key_id, "--tenant", "team-x"]);
    assert!(ok, "{err}");
    assert_eq!(mcp_status(key).await, StatusCode::UNAUTHORIZED);

    // A tenant that still has users but no servers can go; its users go with it.
    let (ok, _, err) = cli(&hub, &["tenants", "rm", "team-x"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&hub, &["users", "list", "--tenant", "team-x"]);
    assert!(!ok && err.contains("404"), "{err}");
    drop(hub);
    std::fs::remove_dir_all(&dir).ok();
}
