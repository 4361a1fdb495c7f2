//! The config files people already have (tests/configs/: Claude Desktop, Cursor, VS Code,
//! MCPHub) through the servers file, REST and the CLI, and the export round trip with
//! `${SWITCHBOARD_SECRET_…}` placeholders. Also the real-binary harness `ownership.rs` uses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

pub(crate) const TOKEN: &str = "import-test-token-0123456789";

/// A `switchboard serve` process, killed when dropped; its stderr goes to `log`.
pub(crate) struct Hub {
    child: Child,
    pub(crate) main: String,
    pub(crate) mcp: String,
    pub(crate) log: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-import-{tag}-{}",
        switchboard_hub::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The repository's sample config files.
pub(crate) fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/configs")
        .join(name)
}

/// Starts a hub on `data_dir`, optionally on a servers file, with extra environment. `PATH`
/// is emptied so the samples' `npx`/`uvx` entries fail to start instead of downloading.
pub(crate) async fn start(data_dir: &Path, servers: Option<&Path>, env: &[(&str, &str)]) -> Hub {
    let (main_port, mcp_port) = (free_port(), free_port());
    std::fs::create_dir_all(data_dir).unwrap();
    let log = data_dir.join(format!("hub-{}.log", switchboard_hub::random_id()));
    let mut cmd = Command::new(switchboard_bin());
    cmd.arg("serve")
        .args(["--admin-token", TOKEN, "--ssrf-allow-cidrs", "127.0.0.0/8"])
        .args(["--main-addr", &format!("127.0.0.1:{main_port}")])
        .args(["--mcp-addr", &format!("127.0.0.1:{mcp_port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .env("PATH", "/nonexistent")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if let Some(s) = servers {
        cmd.arg("--servers").arg(s);
    }
    let child = cmd.spawn().unwrap();
    let hub = Hub {
        child,
        main: format!("http://127.0.0.1:{main_port}"),
        mcp: format!("http://127.0.0.1:{mcp_port}"),
        log,
    };
    let probe = format!("{}/health", hub.mcp);
    let started = eventually(Duration::from_secs(15), async || {
        reqwest::get(&probe).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(started, "hub did not start: {}", hub.stderr());
    hub
}

impl Hub {
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.main))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// The stored server named `name`, if any.
    pub(crate) async fn server(&self, name: &str) -> Option<Value> {
        let v = self.get("/api/v1/servers").await;
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
    }

    /// Runs the CLI against this hub.
    pub(crate) fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let out = Command::new(switchboard_bin())
            .args(args)
            .env("SWITCHBOARD_API_URL", &self.main)
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
}

fn names(v: &Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn has_note(report: &Value, entry: &str, action: &str, needle: &str) -> bool {
    report["notes"].as_array().is_some_and(|a| {
        a.iter().any(|n| {
            n["entry"] == entry && n["action"] == action && cell(&n["detail"]).contains(needle)
        })
    })
}

fn cell(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_round_trips_secrets_through_placeholders() {
    init();
    let dir = temp_dir("roundtrip");
    let file = dir.join("servers.json");
    std::fs::write(
        &file,
        json!({"mcpServers": {
            "web": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer s3cret"}},
            "tool-box": {"command": "/bin/true", "env": {"API_KEY": "k-123", "LANG": "C.UTF-8"}}
        }})
        .to_string(),
    )
    .unwrap();
    let a = start(&dir.join("a"), Some(&file), &[]).await;
    let (ok, exported, err) = a.cli(&["servers", "export"], &[]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(
        v["mcpServers"]["web"]["headers"]["Authorization"],
        "${SWITCHBOARD_SECRET_WEB_AUTHORIZATION}"
    );
    assert_eq!(
        v["mcpServers"]["tool-box"]["env"]["API_KEY"],
        "${SWITCHBOARD_SECRET_TOOL_BOX_API_KEY}"
    );
    assert_eq!(
        v["mcpServers"]["tool-box"]["env"]["LANG"], "C.UTF-8",
        "values that do not look secret are exported as they are"
    );
    assert!(!exported.contains("********") && !exported.contains("s3cret"));
    drop(a);

    // A fresh hub on the exported file, the secrets coming from its environment.
    let s = dir.join("s.json");
    std::fs::write(&s, &exported).unwrap();
    let b = start(
        &dir.join("b"),
        Some(&s),
        &[
            ("SWITCHBOARD_SECRET_WEB_AUTHORIZATION", "Bearer s3cret"),
            ("SWITCHBOARD_SECRET_TOOL_BOX_API_KEY", "k-123"),
        ],
    )
    .await;
    let revealed = b.get("/api/v1/export?reveal=true").await;
    assert_eq!(
        revealed["mcpServers"]["web"]["headers"]["Authorization"],
        "Bearer s3cret"
    );
    assert_eq!(
        revealed["mcpServers"]["tool-box"]["env"]["API_KEY"],
        "k-123"
    );

    // The CLI import fills the placeholders from its own environment.
    let c = start(&dir.join("c"), None, &[]).await;
    let (ok, _, err) = c.cli(&["servers", "import", s.to_str().unwrap()], &[]);
    assert!(
        !ok && err.contains("set SWITCHBOARD_SECRET_"),
        "an unset placeholder is named: {err}"
    );
    let (ok, out, err) = c.cli(
        &["servers", "import", s.to_str().unwrap()],
        &[
            ("SWITCHBOARD_SECRET_WEB_AUTHORIZATION", "Bearer s3cret"),
            ("SWITCHBOARD_SECRET_TOOL_BOX_API_KEY", "k-123"),
        ],
    );
    assert!(ok && out.contains("added: tool-box, web"), "{out}{err}");
    let revealed = c.get("/api/v1/export?reveal=true").await;
    assert_eq!(
        revealed["mcpServers"]["web"]["headers"]["Authorization"],
        "Bearer s3cret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_mask_is_refused_naming_file_line_entry_and_field() {
    init();
    let dir = temp_dir("mask");
    let file = dir.join("masked.json");
    let text = "{\n  \"mcpServers\": {\n    \"web\": {\n      \"url\": \"http://127.0.0.1:9/mcp\",\n      \"headers\": {\"Authorization\": \"********\"}\n    }\n  }\n}\n";
    std::fs::write(&file, text).unwrap();
    let out = Command::new(switchboard_bin())
        .args(["validate", "--servers"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:5: mcpServers.web.headers:", file.display()))
            && err.contains("\"Authorization\"")
            && err.contains("mask"),
        "{err}"
    );
    let hub = start(&dir.join("d"), None, &[]).await;
    let body: Value = serde_json::from_str(text).unwrap();
    let (status, v) = hub
        .call(reqwest::Method::POST, "/api/v1/import", Some(body))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        cell(&v["message"]).contains("mcpServers.web.headers"),
        "{v}"
    );
    assert!(hub.server("web").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_config_loads_as_the_servers_file() {
    init();
    let dir = temp_dir("samples");
    let cases: [(&str, &[&str]); 4] = [
        (
            "claude_desktop_config.json",
            &["filesystem", "github", "sqlite"],
        ),
        (
            "cursor_mcp.json",
            &[
                "cline-style",
                "legacy-search",
                "local-docs",
                "windsurf-style",
            ],
        ),
        ("vscode_mcp.json", &["events", "github", "memory"]),
        ("mcphub_mcp_settings.json", &["amap", "fetch", "playwright"]),
    ];
    for (i, (file, expected)) in cases.iter().enumerate() {
        let hub = start(
            &dir.join(i.to_string()),
            Some(&sample(file)),
            &[("SWITCHBOARD_INPUT_GITHUB_PAT", "ghp_x")],
        )
        .await;
        let listed = hub.get("/api/v1/servers").await;
        assert_eq!(names(&listed), *expected, "{file}");
        for s in listed["servers"].as_array().unwrap() {
            assert_eq!(s["origin"], "file", "{file}: {s}");
        }
        let revealed = hub.get("/api/v1/export?reveal=true").await;
        match *file {
            "claude_desktop_config.json" => {
                assert_eq!(revealed["mcpServers"]["sqlite"]["disabled"], true);
            }
            "cursor_mcp.json" => {
                assert_eq!(
                    revealed["mcpServers"]["windsurf-style"]["url"],
                    "http://127.0.0.1:3003/mcp"
                );
                assert_eq!(revealed["mcpServers"]["legacy-search"]["type"], "sse");
            }
            "vscode_mcp.json" => {
                assert_eq!(
                    revealed["mcpServers"]["github"]["headers"]["Authorization"],
                    "Bearer ghp_x"
                );
                assert_eq!(revealed["mcpServers"]["github"]["type"], "streamable-http");
            }
            _ => {
                assert_eq!(revealed["mcpServers"]["amap"]["timeout"], 60.0);
                assert_eq!(revealed["mcpServers"]["fetch"]["disabled"], true);
                assert_eq!(revealed["groups"]["maps"], json!(["amap", "fetch"]));
                let groups = hub.get("/api/v1/groups").await;
                let browsing = groups["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["name"] == "browsing")
                    .cloned()
                    .unwrap_or_else(|| panic!("{groups}"));
                assert_eq!(
                    browsing["tools"],
                    json!([
                        "playwright__browser_navigate",
                        "playwright__browser_snapshot"
                    ])
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_config_imports_through_rest_and_the_cli_with_a_report() {
    init();
    let dir = temp_dir("rest");
    let hub = start(&dir, None, &[]).await;
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(sample(f)).unwrap()).unwrap()
    };
    let (status, r) = hub
        .call(
            reqwest::Method::POST,
            "/api/v1/import",
            Some(read("claude_desktop_config.json")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["added"], json!(["filesystem", "github", "sqlite"]));
    assert!(
        has_note(&r, "mcpServers.github", "kept", "placeholders"),
        "{r}"
    );

    let (status, r) = hub
        .call(
            reqwest::Method::POST,
            "/api/v1/import",
            Some(read("cursor_mcp.json")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(
        has_note(&r, "mcpServers.windsurf-style", "converted", "serverUrl"),
        "{r}"
    );
    assert!(
        has_note(&r, "mcpServers.cline-style", "dropped", "autoApprove"),
        "{r}"
    );
    assert!(
        has_note(&r, "mcpServers.cline-style", "dropped", "alwaysAllow"),
        "{r}"
    );

    // VS Code through the CLI: the input's placeholder comes from the CLI's environment; the
    // "github" name is taken by the Claude file's entry and reported as kept.
    let (ok, out, err) = hub.cli(
        &[
            "servers",
            "import",
            sample("vscode_mcp.json").to_str().unwrap(),
        ],
        &[("SWITCHBOARD_INPUT_GITHUB_PAT", "ghp_cli")],
    );
    assert!(ok, "{err}");
    assert!(out.contains("format: vscode"), "{out}");
    assert!(out.contains("added: events, memory"), "{out}");
    assert!(out.contains("kept (name taken): github"), "{out}");
    assert!(out.contains("envFile"), "{out}");

    let (ok, out, err) = hub.cli(
        &[
            "servers",
            "import",
            sample("mcphub_mcp_settings.json").to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["format"], "mcphub");
    assert_eq!(r["groups_added"], json!(["browsing", "maps"]));
    assert!(
        has_note(&r, "mcpServers.amap", "converted", "1 disabled"),
        "{r}"
    );
    assert!(
        has_note(&r, "mcpServers.amap", "dropped", "keepAliveInterval"),
        "{r}"
    );
    assert!(has_note(&r, "users", "dropped", ""), "{r}");
    for s in hub.get("/api/v1/servers").await["servers"]
        .as_array()
        .unwrap()
    {
        assert_eq!(s["origin"], "api", "{s}");
    }

    // An error in a local file names the file and the line.
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"servers\": {\n    \"x\": {\n      \"type\": \"carrier-pigeon\",\n      \"url\": \"http://127.0.0.1:1/\"\n    }\n  }\n}\n",
    )
    .unwrap();
    let (ok, _, err) = hub.cli(&["servers", "import", bad.to_str().unwrap()], &[]);
    assert!(
        !ok && err.contains(&format!("{}:4: servers.x.type:", bad.display())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcphub_disabled_tool_stays_disabled_after_import() {
    init();
    let dir = temp_dir("tools");
    let mut entry = stdio_fixture("fx", &[]);
    entry["tools"] = json!({"echo": {"enabled": false}, "add": {"enabled": true}});
    let doc = json!({"mcpServers": {"fx": entry}, "groups": [{"name": "g", "servers": ["fx"]}]});
    let file = dir.join("mcp_settings.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let hub = start(&dir.join("file"), Some(&file), &[]).await;
    let mcp = format!("{}/mcp", hub.mcp);
    let mut client = McpClient::connect(&mcp).await;
    let listed = eventually(Duration::from_secs(10), async || {
        client
            .tool_names()
            .await
            .iter()
            .any(|n| n.starts_with("fx__"))
    })
    .await;
    assert!(listed, "the fixture's tools never showed: {}", hub.stderr());
    let tools = client.tool_names().await;
    assert!(!tools.contains(&"fx__echo".to_string()), "{tools:?}");
    let items = hub.get("/api/v1/servers/fx/tools").await;
    assert!(
        items.to_string().contains("\"enabled\":false"),
        "the setting is stored: {items}"
    );

    // Through REST into another hub: the same.
    let other = start(&dir.join("rest"), None, &[]).await;
    let (status, r) = other
        .call(reqwest::Method::POST, "/api/v1/import", Some(doc))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let mut client = McpClient::connect(&format!("{}/mcp", other.mcp)).await;
    let listed = eventually(Duration::from_secs(10), async || {
        client
            .tool_names()
            .await
            .iter()
            .any(|n| n.starts_with("fx__"))
    })
    .await;
    assert!(listed);
    assert!(!client.tool_names().await.contains(&"fx__echo".to_string()));
}

/// Reads stdout lines of `switchboard connect` until one satisfies `want` (10 s at most).
async fn read_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap();
            if want(&v) {
                return v;
            }
        }
        panic!("connect closed its output");
    })
    .await;
    found.expect("no such line within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_bridges_a_desktop_client_to_servers_added_through_the_api() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    init();
    let dir = temp_dir("connect");
    let hub = start(&dir, None, &[]).await;
    let mut add = stdio_fixture("fx", &[]);
    add["name"] = json!("fx");
    let (status, v) = hub
        .call(reqwest::Method::POST, "/api/v1/servers", Some(add))
        .await;
    assert!(status.is_success(), "{v}");
    let mut child = tokio::process::Command::new(switchboard_bin())
        .args(["connect", &hub.mcp])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let send = async |stdin: &mut tokio::process::ChildStdin, v: Value| {
        stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
    };
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "desktop", "version": "1"}}}),
    )
    .await;
    let init = read_until(&mut lines, |v| v["id"] == 1).await;
    assert!(init["result"]["protocolVersion"].is_string(), "{init}");
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let ready = eventually(Duration::from_secs(10), async || {
        hub.server("fx")
            .await
            .is_some_and(|s| s["status"]["state"] == "ready")
    })
    .await;
    assert!(ready, "{}", hub.stderr());
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"text": "through the bridge"}}}),
    )
    .await;
    let reply = read_until(&mut lines, |v| v["id"] == 2).await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "through the bridge",
        "{reply}"
    );

    // A server added through the API while the client is connected: the hub's notification
    // arrives on the bridge's GET stream.
    let mut add = stdio_fixture("fy", &[]);
    add["name"] = json!("fy");
    hub.call(reqwest::Method::POST, "/api/v1/servers", Some(add))
        .await;
    let note = read_until(&mut lines, |v| {
        v["method"] == "notifications/tools/list_changed"
    })
    .await;
    assert!(note.get("id").is_none(), "{note}");
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .await;
    let listed = read_until(&mut lines, |v| v["id"] == 3).await;
    assert!(listed.to_string().contains("fy__echo"), "{listed}");

    // The CLI restarts it; the bridge keeps working.
    let (ok, out, err) = hub.cli(&["servers", "restart", "fy"], &[]);
    assert!(ok && out.contains("fy"), "{out}{err}");

    // End of input ends the bridge.
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("connect exits at end of input")
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_missing_relative_servers_file_is_named_with_the_path_looked_at() {
    let dir = temp_dir("relative");
    let out = Command::new(switchboard_bin())
        .args(["serve", "--servers", "conf/servers.json", "--data-dir"])
        .arg(dir.join("data"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--servers conf/servers.json: no such file")
            && err.contains(&dir.join("conf/servers.json").display().to_string()),
        "{err}"
    );
}
