//! Issue 11, findings 1, 5 and 10, over the real management API with a tenant manager's key:
//! only admins define stdio commands (every path: REST create/update/import, the seed routes,
//! proxy sessions, the CLI), managers use the `--stdio-allow` launchers; the per-tenant stdio
//! limit answers 429 and the same servers run after a restart; URL query secrets are sealed in
//! the store and masked everywhere they are shown; `export?reveal=true` and the stderr tail are
//! for admins. The store-backed scenarios run on SQLite and on PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_control::StdioAllowlist;
use switchboard_fixture::{FixtureOptions, spawn_http};
use switchboard_hub::{Hub, HubConfig};
use switchboard_store::SecretKey;

use crate::common::*;

const ADMIN: &str = "admin-token-for-stdio-hardening";
const PASSWORD: &str = "correct horse battery";
const TENANT: &str = "team";
const SECRET: &str = "s3cr3t-query-value";

/// Where the store lives: a SQLite file in a temporary directory, or a PostgreSQL database
/// made for the test; both survive a restart of the hub.
enum Db {
    Sqlite(PathBuf),
    Postgres(PgDatabase),
}

fn psql(db: &str, sql: &str) -> String {
    let out = psql_in(db, sql);
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Db {
    fn sqlite() -> Db {
        let dir = std::env::temp_dir().join(format!(
            "sb-stdio-hardening-{}",
            switchboard_control::identity::random_hex(6)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Db::Sqlite(dir)
    }

    fn postgres() -> Db {
        Db::Postgres(PgDatabase::create("stdio"))
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}/sb.db", dir.display()),
            Db::Postgres(db) => db.url(),
        }
    }

    /// One column of the raw `servers` row, as the database holds it.
    fn raw(&self, column: &str, server: &str) -> String {
        let sql = format!("SELECT {column} FROM servers WHERE name = '{server}'");
        match self {
            Db::Sqlite(dir) => {
                let out = std::process::Command::new("sqlite3")
                    .arg(dir.join("sb.db"))
                    .arg(&sql)
                    .output()
                    .expect("sqlite3 runs");
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            }
            Db::Postgres(db) => psql(&db.name, &sql),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Sqlite(dir) = self {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// The hub's settings for one test.
#[derive(Clone)]
struct Settings {
    allow: Vec<String>,
    max_stdio: usize,
}

impl Settings {
    fn new() -> Settings {
        Settings {
            allow: Vec::new(),
            max_stdio: 0,
        }
    }
}

/// An in-process hub: main and MCP services on port 0 over `db`.
struct Hubs {
    app: TestApp,
}

impl Hubs {
    async fn start(db: &Db, settings: &Settings) -> Hubs {
        let app = TestApp::builder()
            .token(ADMIN)
            .database(&db.url())
            .secret_key(SecretKey::from_bytes([7; 32]))
            .hub(HubConfig {
                max_stdio_servers: settings.max_stdio,
                ..HubConfig::default()
            })
            .stdio_allow(StdioAllowlist::parse(&settings.allow).unwrap())
            .reconcile()
            .sync_tenants()
            .start()
            .await;
        Hubs { app }
    }

    async fn stop(self) {
        self.app.stop().await;
    }

    fn hub(&self) -> Hub {
        self.app
            .state
            .tenants
            .get(TENANT)
            .expect("tenant plane")
            .hub()
            .clone()
    }

    /// A request to `addr` as `token`; admins act on the test tenant.
    async fn call_at(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .app
            .api
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://{addr}{path}"),
            )
            .bearer_auth(token);
        // Until the tenant exists, naming it is a 404.
        if path != "/api/v1/tenants" {
            req = req.header("x-switchboard-tenant", TENANT);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_at(self.app.main, method, path, token, body).await
    }

    /// Creates the tenant and a manager in it; returns the manager's API key.
    async fn manager_key(&self) -> String {
        let (s, b) = self
            .call(
                "POST",
                "/api/v1/tenants",
                ADMIN,
                Some(json!({"name": TENANT})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let user = json!({"username": "mia", "password": PASSWORD, "role": "manager"});
        let (s, b) = self.call("POST", "/api/v1/users", ADMIN, Some(user)).await;
        assert_eq!(s, 201, "{b}");
        let resp = self
            .app
            .api
            .http
            .post(self.app.url("/api/v1/auth/login"))
            .json(&json!({"username": "mia", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login");
        let login: Value = resp.json().await.unwrap();
        let token = login["access_token"].as_str().unwrap();
        let (s, b) = self
            .call(
                "POST",
                "/api/v1/keys",
                token,
                Some(json!({"name": "laptop"})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["key"].as_str().unwrap().to_string()
    }

    /// Whether the store has a server `name` (asked as admin).
    async fn stored(&self, name: &str) -> bool {
        let (s, b) = self
            .call("GET", &format!("/api/v1/servers/{name}"), ADMIN, None)
            .await;
        assert!(s == 200 || s == 404, "{b}");
        s == 200
    }
}

/// Asserts a 403 `stdio_forbidden` whose message says what is allowed.
fn assert_forbidden(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 403, "{what}: {body}");
    assert_eq!(body["error"], "stdio_forbidden", "{what}: {body}");
    let m = body["message"].as_str().unwrap_or_default();
    assert!(m.contains("admin"), "{what}: the message says who may: {m}");
}

/// A stdio definition that would leave `marker` behind if it ever ran.
fn marker_server(name: &str, marker: &std::path::Path) -> Value {
    json!({"name": name, "command": "/bin/sh", "args": ["-c", format!("touch {}", marker.display())]})
}

fn marker_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "sb-stdio-marker-{tag}-{}",
        switchboard_control::identity::random_hex(6)
    ))
}

// ---------------------------------------------------------------------------------------------
// Finding 1: only admins define stdio commands

async fn managers_cannot_define_stdio_commands_on_any_path(db: Db) {
    let fixture = fixture_bin().display().to_string();
    let settings = Settings {
        allow: vec![format!("{fixture} stdio --name ok-*")],
        max_stdio: 0,
    };
    let hub = Hubs::start(&db, &settings).await;
    let key = hub.manager_key().await;
    let up = spawn_http(FixtureOptions::new("remote")).await.unwrap();
    let marker = marker_path("mgr");

    // REST create.
    let r = hub
        .call(
            "POST",
            "/api/v1/servers",
            &key,
            Some(marker_server("x", &marker)),
        )
        .await;
    assert_forbidden("create", &r);
    assert!(r.1["message"].as_str().unwrap().contains("ok-*"), "{}", r.1);
    // Import: one refused entry refuses the whole file.
    let file = json!({"mcpServers": {
        "x": {"command": "/bin/sh", "args": ["-c", format!("touch {}", marker.display())]},
        "fine": {"type": "streamable-http", "url": up.url},
    }});
    assert_forbidden(
        "import",
        &hub.call("POST", "/api/v1/import", &key, Some(file)).await,
    );
    assert!(!hub.stored("fine").await, "a refused import stores nothing");
    // Update: a remote server turned into a command, and an admin's stdio server changed.
    let (s, b) = hub
        .call(
            "POST",
            "/api/v1/servers",
            &key,
            Some(json!({"name": "web", "url": up.url})),
        )
        .await;
    assert_eq!(s, 201, "managers add remote servers: {b}");
    let mut to_sh = marker_server("web", &marker);
    to_sh.as_object_mut().unwrap().remove("name");
    assert_forbidden(
        "update remote to stdio",
        &hub.call("PUT", "/api/v1/servers/web", &key, Some(to_sh.clone()))
            .await,
    );
    let admin_def = json!({"name": "adm", "command": fixture, "args": ["stdio", "--name", "adm"],
        "env": {"TOKEN": "t"}});
    let (s, b) = hub
        .call("POST", "/api/v1/servers", ADMIN, Some(admin_def.clone()))
        .await;
    assert_eq!(s, 201, "admins define stdio servers: {b}");
    assert_forbidden(
        "update an admin's stdio args",
        &hub.call("PUT", "/api/v1/servers/adm", &key, Some(to_sh))
            .await,
    );
    // Keeping the command exactly (env sent back masked) is allowed: a timeout change.
    let keep = json!({"command": fixture, "args": ["stdio", "--name", "adm"],
        "env": {"TOKEN": "********"}, "timeout": 12});
    let (s, b) = hub
        .call("PUT", "/api/v1/servers/adm", &key, Some(keep))
        .await;
    assert_eq!(s, 200, "an unchanged command may be kept: {b}");
    assert_eq!(b["config"]["timeout"], 12.0, "{b}");

    // The seed routes and proxy sessions only take URLs.
    let add = format!(
        "/api/mcp/add?service_name=sx&transport=stdio&mcp_url={}",
        up.url
    );
    assert_forbidden("seed add", &hub.call("POST", &add, &key, None).await);
    let (s, b) = hub
        .call(
            "POST",
            "/api/mcp/add?service_name=sy&mcp_url=/bin/sh",
            &key,
            None,
        )
        .await;
    assert_eq!(s, 400, "a command is not a URL: {b}");
    let proxy = json!({"service_name": "sz", "mcp_url": up.url, "transport": "stdio"});
    assert_forbidden(
        "add-remote-proxies",
        &hub.call_at(
            hub.app.mcp,
            "POST",
            "/add-remote-proxies",
            &key,
            Some(proxy),
        )
        .await,
    );
    let session = json!({"remote_url": "/bin/sh", "transport": "stdio"});
    let (s, b) = hub
        .call("POST", "/api/v1/server", &key, Some(session))
        .await;
    assert!(
        (400..500).contains(&s),
        "a session takes a URL only: {s} {b}"
    );
    let session = json!({"remote_url": up.url, "transport": "stdio"});
    let (s, b) = hub
        .call("POST", "/api/v1/server", &key, Some(session))
        .await;
    assert!(
        (400..500).contains(&s),
        "a session takes a URL only: {s} {b}"
    );

    // Allowlisted launcher: accepted for the manager, and it runs.
    let ok = json!({"name": "ok", "command": fixture, "args": ["stdio", "--name", "ok-1"],
        "env": {"API_KEY": "k"}});
    let (s, b) = hub.call("POST", "/api/v1/servers", &key, Some(ok)).await;
    assert_eq!(s, 201, "an allowed launcher: {b}");
    // Near misses: order, an option where the glob is, another command, cwd, refused env.
    for (what, body) in [
        (
            "argument order",
            json!({"name": "n1", "command": fixture, "args": ["--name", "ok-1", "stdio"]}),
        ),
        (
            "glob over an option",
            json!({"name": "n2", "command": fixture, "args": ["stdio", "--name", "-ok"]}),
        ),
        (
            "glob over a slash",
            json!({"name": "n3", "command": fixture, "args": ["stdio", "--name", "ok-/x"]}),
        ),
        (
            "short argv",
            json!({"name": "n4", "command": fixture, "args": ["stdio"]}),
        ),
        (
            "another command",
            json!({"name": "n5", "command": "/bin/sh", "args": ["stdio", "--name", "ok-1"]}),
        ),
        (
            "cwd",
            json!({"name": "n6", "command": fixture, "args": ["stdio", "--name", "ok-1"], "cwd": "/tmp"}),
        ),
        (
            "LD_PRELOAD",
            json!({"name": "n7", "command": fixture, "args": ["stdio", "--name", "ok-1"], "env": {"LD_PRELOAD": "/tmp/x.so"}}),
        ),
        (
            "PATH",
            json!({"name": "n8", "command": fixture, "args": ["stdio", "--name", "ok-1"], "env": {"PATH": "/tmp"}}),
        ),
        (
            "NODE_OPTIONS",
            json!({"name": "n9", "command": fixture, "args": ["stdio", "--name", "ok-1"], "env": {"node_options": "--require /tmp/x"}}),
        ),
    ] {
        assert_forbidden(
            what,
            &hub.call("POST", "/api/v1/servers", &key, Some(body)).await,
        );
    }

    // The CLI goes through the same API.
    let main = format!("http://{}", hub.app.main);
    let marker_arg = format!("touch {}", marker.display());
    let cli_key = key.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(switchboard_bin())
            .args([
                "servers",
                "add",
                "cli",
                "--command",
                "/bin/sh",
                "--arg",
                "-c",
                "--arg",
            ])
            .arg(&marker_arg)
            .env("SWITCHBOARD_API_URL", &main)
            .env("SWITCHBOARD_ADMIN_TOKEN", &cli_key)
            .env("SWITCHBOARD_TENANT", TENANT)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("403"), "CLI: {err}");

    // Nothing was left behind: no rows, no mounts, no process ever ran.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "a refused definition ran a process");
    for name in ["x", "sx", "sy", "sz", "cli", "n1", "n2", "n5", "n6", "n7"] {
        assert!(!hub.stored(name).await, "{name} was stored");
        assert!(hub.hub().upstream(name).is_none(), "{name} is mounted");
    }
    let web = hub.call("GET", "/api/v1/servers/web", ADMIN, None).await.1;
    assert_eq!(web["config"]["type"], "streamable-http", "{web}");
    assert!(
        hub.hub()
            .servers()
            .iter()
            .all(|s| s.transport != "stdio" || ["adm", "ok"].contains(&s.name.as_str())),
        "only the admin's and the allowlisted stdio servers are registered"
    );
    assert!(
        eventually(Duration::from_secs(20), async || {
            hub.hub()
                .servers()
                .iter()
                .any(|s| s.name == "ok" && s.state == "ready")
        })
        .await,
        "the allowlisted server runs"
    );

    // Admins define any stdio server (the marker then appears: the test can see a spawn).
    let (s, b) = hub
        .call(
            "POST",
            "/api/v1/servers",
            ADMIN,
            Some(marker_server("x", &marker)),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(
        eventually(Duration::from_secs(10), async || marker.exists()).await,
        "the admin's command ran"
    );
    std::fs::remove_file(&marker).ok();

    // The rules are shown to the caller, and documented.
    let (s, b) = hub
        .call("GET", "/api/v1/settings/stdio-allow", &key, None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["may_define_any"], false, "{b}");
    assert_eq!(
        b["allow"],
        json!([format!("{fixture} stdio --name ok-*")]),
        "{b}"
    );
    assert!(
        b["refused_env"]
            .as_array()
            .unwrap()
            .contains(&json!("PATH")),
        "{b}"
    );
    let (_, b) = hub
        .call("GET", "/api/v1/settings/stdio-allow", ADMIN, None)
        .await;
    assert_eq!(b["may_define_any"], true, "{b}");
    let (_, doc) = hub.call("GET", "/api/v1/openapi.json", ADMIN, None).await;
    assert!(doc["paths"]["/api/v1/settings/stdio-allow"].is_object());
    let create = &doc["paths"]["/api/v1/servers"]["post"]["responses"];
    assert!(
        create["403"].is_object() && create["429"].is_object(),
        "{create}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_cannot_define_stdio_commands_on_any_path_on_sqlite() {
    managers_cannot_define_stdio_commands_on_any_path(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_cannot_define_stdio_commands_on_any_path_on_postgres() {
    managers_cannot_define_stdio_commands_on_any_path(Db::postgres()).await;
}

// ---------------------------------------------------------------------------------------------
// Finding 5: the stdio limit

fn fixture_def(name: &str) -> Value {
    json!({"name": name, "command": fixture_bin(), "args": ["stdio", "--name", name]})
}

/// Names of the stdio servers the tenant's hub runs (registered and not disabled).
fn running_stdio(hub: &Hubs) -> Vec<String> {
    let mut names: Vec<String> = hub
        .hub()
        .servers()
        .into_iter()
        .filter(|s| s.transport == "stdio" && s.state != "disabled")
        .map(|s| s.name)
        .collect();
    names.sort();
    names
}

fn assert_limit(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 429, "{what}: {body}");
    assert_eq!(body["error"], "stdio_limit", "{what}: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("at most 2"),
        "{what}: the message names the limit: {body}"
    );
}

async fn the_stdio_limit_refuses_and_survives_restarts(db: Db) {
    let settings = Settings {
        allow: vec![format!("{} stdio --name *", fixture_bin().display())],
        max_stdio: 2,
    };
    let hub = Hubs::start(&db, &settings).await;
    let key = hub.manager_key().await;
    let up = spawn_http(FixtureOptions::new("remote")).await.unwrap();
    // The oldest server has the name that sorts last.
    for name in ["zz-old", "mm-mid"] {
        let (s, b) = hub
            .call("POST", "/api/v1/servers", &key, Some(fixture_def(name)))
            .await;
        assert_eq!(s, 201, "{b}");
    }
    assert_limit(
        "add",
        &hub.call("POST", "/api/v1/servers", &key, Some(fixture_def("aa-new")))
            .await,
    );
    assert!(!hub.stored("aa-new").await);
    // A disabled stdio server runs nothing and does not count; enabling it would.
    let mut off = fixture_def("aa-off");
    off["enabled"] = json!(false);
    let (s, b) = hub.call("POST", "/api/v1/servers", &key, Some(off)).await;
    assert_eq!(s, 201, "{b}");
    assert_limit(
        "enable",
        &hub.call("POST", "/api/v1/servers/aa-off/enable", &key, None)
            .await,
    );
    // Import and a remote-to-stdio update are counted too; a refused import stores nothing.
    let file = json!({"mcpServers": {
        "aa-imp": {"command": fixture_bin(), "args": ["stdio", "--name", "aa-imp"]},
        "aa-web": {"type": "streamable-http", "url": up.url},
    }});
    assert_limit(
        "import",
        &hub.call("POST", "/api/v1/import", &key, Some(file)).await,
    );
    assert!(!hub.stored("aa-imp").await && !hub.stored("aa-web").await);
    let (s, b) = hub
        .call(
            "POST",
            "/api/v1/servers",
            &key,
            Some(json!({"name": "web", "url": up.url})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let mut to_stdio = fixture_def("web");
    to_stdio.as_object_mut().unwrap().remove("name");
    assert_limit(
        "update",
        &hub.call("PUT", "/api/v1/servers/web", ADMIN, Some(to_stdio))
            .await,
    );
    // Two concurrent adds for one free slot: exactly one wins.
    let (s, b) = hub
        .call("POST", "/api/v1/servers/mm-mid/disable", &key, None)
        .await;
    assert_eq!(s, 200, "{b}");
    let (a, b) = tokio::join!(
        hub.call("POST", "/api/v1/servers", &key, Some(fixture_def("cc-one"))),
        hub.call("POST", "/api/v1/servers", &key, Some(fixture_def("cc-two"))),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 429], "{} / {}", a.1, b.1);
    let winner = if a.0 == 201 { "cc-one" } else { "cc-two" };
    let expected = {
        let mut v = vec![winner.to_string(), "zz-old".to_string()];
        v.sort();
        v
    };
    assert!(
        eventually(Duration::from_secs(10), async || running_stdio(&hub)
            == expected)
        .await,
        "{:?}",
        running_stdio(&hub)
    );
    hub.stop().await;

    // After a restart the same servers run.
    let hub = Hubs::start(&db, &settings).await;
    assert_eq!(running_stdio(&hub), expected);
    hub.stop().await;
    // With a lower limit the oldest keeps running, whatever the names.
    let lower = Settings {
        max_stdio: 1,
        ..settings.clone()
    };
    let hub = Hubs::start(&db, &lower).await;
    assert_eq!(running_stdio(&hub), ["zz-old"]);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stdio_limit_refuses_with_429_and_the_same_servers_run_after_restart_on_sqlite() {
    the_stdio_limit_refuses_and_survives_restarts(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stdio_limit_refuses_with_429_and_the_same_servers_run_after_restart_on_postgres() {
    the_stdio_limit_refuses_and_survives_restarts(Db::postgres()).await;
}

// ---------------------------------------------------------------------------------------------
// Finding 10: secrets in URL query strings, reveal and the stderr tail

async fn url_query_secrets_are_sealed_and_masked(db: Db) {
    let hub = Hubs::start(&db, &Settings::new()).await;
    let key = hub.manager_key().await;
    let up = spawn_http(FixtureOptions::new("remote")).await.unwrap();
    let url = format!("{}?api_key={SECRET}&team=blue", up.url);
    let (s, b) = hub
        .call(
            "POST",
            "/api/v1/servers",
            &key,
            Some(json!({"name": "web", "url": url})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let masked = format!("{}?api_key=********&team=********", up.url);
    assert_eq!(b["config"]["url"], masked, "{b}");
    // Through the seed route too (the secret is in the request's own query string).
    let add = format!(
        "/api/mcp/add?service_name=seedweb&mcp_url={}",
        url.replace('?', "%3F")
            .replace('&', "%26")
            .replace('=', "%3D")
    );
    let (s, b) = hub.call("POST", &add, &key, None).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        eventually(Duration::from_secs(10), async || {
            hub.hub()
                .servers()
                .iter()
                .filter(|s| s.state == "ready")
                .count()
                >= 2
        })
        .await
    );

    // A server that cannot be reached: its connection error names no URL secret.
    let down = format!("http://127.0.0.1:1/mcp?api_key={SECRET}");
    let (s, b) = hub
        .call(
            "POST",
            "/api/v1/servers",
            &key,
            Some(json!({"name": "down", "url": down})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(
        eventually(Duration::from_secs(10), async || {
            let (_, b) = hub.call("GET", "/api/v1/servers/down", &key, None).await;
            b["status"]["last_error"].is_string()
        })
        .await,
        "the unreachable server reports an error"
    );

    // Sealed at rest: the raw row has no secret.
    let raw = db.raw("url", "web");
    assert!(raw.starts_with("v1:") && !raw.contains(SECRET), "{raw}");
    assert!(!db.raw("url", "seedweb").contains(SECRET));

    // Masked in every view.
    let views = [
        hub.call("GET", "/api/v1/servers", &key, None).await,
        hub.call("GET", "/api/v1/servers/web", &key, None).await,
        hub.call("GET", "/api/v1/servers/down", &key, None).await,
        hub.call("GET", "/api/v1/export", &key, None).await,
        hub.call("GET", "/api/v1/export", ADMIN, None).await,
        hub.call("GET", "/api/mcp/list", &key, None).await,
        hub.call_at(hub.app.mcp, "GET", "/list-remote-proxies", &key, None)
            .await,
        hub.call("GET", "/api/v1/audit?all=true", ADMIN, None).await,
        hub.call("GET", "/api/v1/audit", &key, None).await,
    ];
    for (i, (s, b)) in views.iter().enumerate() {
        assert_eq!(*s, 200, "view {i}: {b}");
        let text = b.to_string();
        assert!(!text.contains(SECRET), "view {i} shows the secret: {text}");
    }
    assert!(views[0].1.to_string().contains(&masked), "{}", views[0].1);
    assert!(
        views[5].1.to_string().contains("api_key=********"),
        "{}",
        views[5].1
    );
    assert!(
        views[6].1.to_string().contains("api_key=********"),
        "{}",
        views[6].1
    );
    assert!(
        views[7].1.to_string().contains("/api/mcp/add"),
        "{}",
        views[7].1
    );

    // Sending the masked URL back keeps the stored value.
    let (s, b) = hub
        .call(
            "PUT",
            "/api/v1/servers/web",
            &key,
            Some(json!({"url": masked, "timeout": 30})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = hub
        .call("GET", "/api/v1/export?reveal=true", ADMIN, None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["mcpServers"]["web"]["url"], url, "{b}");
    // Revealing is for admins.
    let (s, b) = hub
        .call("GET", "/api/v1/export?reveal=true", &key, None)
        .await;
    assert_eq!((s, b["error"].as_str()), (403, Some("forbidden")), "{b}");
    hub.stop().await;
}

#[tokio::test]
async fn url_query_secrets_are_sealed_at_rest_and_masked_everywhere_on_sqlite() {
    url_query_secrets_are_sealed_and_masked(Db::sqlite()).await;
}

#[tokio::test]
async fn url_query_secrets_are_sealed_at_rest_and_masked_everywhere_on_postgres() {
    url_query_secrets_are_sealed_and_masked(Db::postgres()).await;
}

#[tokio::test]
async fn the_stderr_tail_of_a_stdio_server_is_shown_to_admins_only() {
    let db = Db::sqlite();
    let hub = Hubs::start(&db, &Settings::new()).await;
    let key = hub.manager_key().await;
    let (s, b) = hub
        .call("POST", "/api/v1/servers", ADMIN, Some(fixture_def("local")))
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(b.get("stderr_tail").is_some(), "admins see it: {b}");
    let (s, b) = hub.call("GET", "/api/v1/servers/local", ADMIN, None).await;
    assert_eq!(s, 200);
    assert!(b["stderr_tail"].is_array(), "{b}");
    for path in ["/api/v1/servers/local", "/api/v1/servers/local/restart"] {
        let method = if path.ends_with("restart") {
            "POST"
        } else {
            "GET"
        };
        let (s, b) = hub.call(method, path, &key, None).await;
        assert_eq!(s, 200, "{b}");
        assert!(
            b.get("stderr_tail").is_none(),
            "{path}: a manager sees it: {b}"
        );
    }
    hub.stop().await;
}
