//! The web dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! driven over WebDriver): sign in, add a server through the form and see it ready, call a
//! tool in the playground with live progress, find the call in the activity log, hide a tool
//! and see it leave `/mcp`, tenants and roles as the API has them, CSRF refusals, and no
//! console error on any page. Screenshots of every page go to `SWITCHBOARD_SCREENSHOT_DIR`
//! (default `<target>/dashboard-screenshots`); page weight and time to interactive are printed.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::*;
use crate::webdriver::Browser;

const ADMIN_TOKEN: &str = "dashboard-admin-token-0123456789";
const ADMIN_PASSWORD: &str = "admin-password-1";

/// Chromium and chromedriver, or `None` (with a loud message) when this machine has none
/// and neither CI nor `SWITCHBOARD_TEST_CHROMIUM` asks for them; then the test fails instead.
fn browser_paths() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var("SWITCHBOARD_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver = std::env::var("SWITCHBOARD_TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("SWITCHBOARD_TEST_CHROMIUM").is_some();
    let message = format!(
        "the dashboard browser test needs Chromium ({}) and chromedriver ({}): install Debian's \
         chromium and chromium-driver (bash scripts/test-deps.sh does)",
        chromium.display(),
        driver.display()
    );
    assert!(!required, "{message}");
    eprintln!("\n*** SKIPPED: {message} ***\n");
    None
}

served_type! {
    /// The hub binary with an admin user, on free loopback ports.
    struct DashHub {}
}

impl DashHub {
    async fn start() -> DashHub {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[&str]) -> DashHub {
        let served = Served::builder(ADMIN_TOKEN)
            .name("dashboard")
            .args(&["--admin-password", ADMIN_PASSWORD])
            .args(extra)
            .ready("/ready")
            .start()
            .await;
        DashHub { served }
    }

    /// A management call with the admin token (`tenant`: `X-Switchboard-Tenant`).
    async fn admin(&self, method: &str, path: &str, body: Value, tenant: Option<&str>) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.main))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body);
        if let Some(t) = tenant {
            req = req.header("x-switchboard-tenant", t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    async fn tool_names(&self) -> Vec<String> {
        McpClient::connect_authorized(&format!("{}/mcp", self.main), ADMIN_TOKEN)
            .await
            .tool_names()
            .await
    }
}

fn shots_dir() -> PathBuf {
    let dir = std::env::var("SWITCHBOARD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .and_then(|p| p.parent())
                .unwrap()
                .join("dashboard-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page test: its browser, where it saves screenshots, and the figures it measured.
struct Page<'a> {
    b: &'a Browser,
    base: String,
    shots: PathBuf,
    figures: Vec<(String, Value)>,
    loads: u32,
}

impl Page<'_> {
    /// A cold load of `#/page` (a fresh document), waited until the page rendered; records
    /// its weight and time to interactive.
    async fn open(&mut self, page: &str) {
        let name = if page.is_empty() { "overview" } else { page };
        self.open_as(page, name).await;
    }

    /// `open`, recording the figures under `name` (the first time only).
    async fn open_as(&mut self, page: &str, name: &str) {
        // A cold load: nothing cached, so the figures are what a first visit costs.
        self.b.cdp("Network.clearBrowserCache", json!({})).await;
        self.loads += 1;
        self.b
            .goto(&format!("{}?load={}#/{page}", self.base, self.loads))
            .await;
        self.b
            .wait_until(
                &format!("page {page} to render"),
                30,
                "return !!document.documentElement.dataset.rendered",
            )
            .await;
        let m = self
            .b
            .exec(
                "const nav = performance.getEntriesByType('navigation')[0];\
                 const res = performance.getEntriesByType('resource');\
                 const sum = (f) => res.reduce((a, r) => a + (r[f] || 0), nav[f] || 0);\
                 return {bytes: sum('transferSize'), decoded: sum('decodedBodySize'),\
                         requests: res.length + 1,\
                         dcl: Math.round(nav.domContentLoadedEventEnd),\
                         tti: Number(document.documentElement.dataset.rendered)};",
                json!([]),
            )
            .await;
        if !self.figures.iter().any(|(n, _)| n == name) {
            self.figures.push((name.to_string(), m));
        }
    }

    async fn shot(&self, name: &str) {
        self.b
            .exec("window.scrollTo(0, 0); return true", json!([]))
            .await;
        self.b
            .screenshot(&self.shots.join(format!("{name}.png")))
            .await;
    }

    /// Fails on any console error or warning since the last check.
    async fn no_console_errors(&self, page: &str) {
        let bad: Vec<_> = self
            .b
            .console()
            .await
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        assert!(bad.is_empty(), "console errors on {page}: {bad:?}");
    }

    async fn sign_in(&self, user: &str, password: &str) {
        self.b.goto(&self.base).await;
        self.b.fill("#login input[name=username]", user).await;
        self.b.fill("#login input[name=password]", password).await;
        self.b.click("#login button[type=submit]").await;
        self.b.wait("#whoami").await;
        self.b
            .wait_until(
                "the first page",
                20,
                "return !!document.documentElement.dataset.rendered",
            )
            .await;
    }

    async fn sign_out(&self) {
        self.b.click("#signout").await;
        self.b.wait("#login").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_paths() else {
        return;
    };
    // Loopback allowed: the proxy session's remote is a fixture in this process.
    let hub = DashHub::start_with(&["--ssrf-allow-cidrs", "127.0.0.0/8"]).await;
    let b = Browser::start(&chromedriver, &chromium, 1280, 800).await;
    let mut p = Page {
        b: &b,
        base: format!("{}/", hub.main),
        shots: shots_dir(),
        figures: Vec::new(),
        loads: 0,
    };

    // Sign in.
    p.open_as("", "signin").await;
    b.wait("#login input[name=username]").await;
    p.shot("signin").await;
    p.no_console_errors("sign-in").await;
    p.sign_in("admin", ADMIN_PASSWORD).await;
    assert!(b.text("#whoami").await.contains("admin"));

    // Add a stdio server through the form; it becomes ready.
    p.open("servers").await;
    b.fill("#add-server input[name=name]", "fx").await;
    b.select("#add-server select[name=type]", "stdio").await;
    b.fill(
        "#add-server input[name=command]",
        fixture_bin().to_str().unwrap(),
    )
    .await;
    b.fill("#add-server textarea[name=args]", "stdio\n--name\nfx")
        .await;
    b.click("#add-server button[type=submit]").await;
    b.wait_until(
        "server fx to be ready",
        30,
        "const r = await fetch('api/v1/servers'); const l = await r.json();\
         const s = l.servers.find((x) => x.name === 'fx');\
         return !!(s && s.status && s.status.state === 'ready');",
    )
    .await;
    p.open("servers/fx").await;
    b.wait("input[data-tool=echo]").await;
    assert!(
        b.text("h1").await.contains("ready"),
        "{}",
        b.text("h1").await
    );
    p.shot("server-detail").await;
    p.no_console_errors("server detail").await;

    // Call a tool in the playground and watch its progress.
    p.open("playground").await;
    b.fill("input[name=q]", "progress notifications").await;
    b.click("button[data-tool=fx__progress]").await;
    b.fill("#call-form input[name=steps]", "3").await;
    b.fill("#call-form input[name=interval_ms]", "150").await;
    b.click("#call").await;
    b.wait("#duration").await;
    let progress = b
        .exec(
            "return document.querySelectorAll('#call-events .progress-event').length",
            json!([]),
        )
        .await;
    assert!(
        progress.as_u64().unwrap_or(0) >= 3,
        "progress events shown: {progress}"
    );
    assert!(!b.text("#call-result").await.is_empty());
    p.shot("playground").await;
    p.no_console_errors("playground").await;

    // Log messages arrive live too.
    b.fill("input[name=q]", "log message notification").await;
    b.click("button[data-tool=fx__log]").await;
    b.select("#call-form select[name=level]", "1").await;
    b.fill("#call-form input[name=message]", "hello from the test")
        .await;
    b.fill("#call-form input[name=then_ms]", "300").await;
    b.click("#call").await;
    b.wait("#duration").await;
    assert!(
        b.text("#call-events")
            .await
            .contains("[info] hello from the test"),
        "{}",
        b.text("#call-events").await
    );

    // The schema form: every kind of field, nested, read back as the arguments object.
    let value = b
        .exec(
            "const { build } = await import(new URL('ui/schemaform.js', document.baseURI).href);\
             const schema = {type: 'object', required: ['s'], properties: {\
               s: {type: 'string'}, n: {type: 'integer'}, e: {enum: ['a', 'b']}, f: {type: 'boolean'},\
               arr: {type: 'array', items: {type: 'number'}},\
               o: {type: 'object', properties: {x: {type: 'string'}, deep: {type: 'object', properties: {y: {type: 'integer'}}}}},\
               any: {}}};\
             const form = build(schema, 'arguments', false);\
             document.body.append(form.el);\
             const q = (n) => form.el.querySelector(`[name=\"${n}\"]`);\
             let missing = null; try { form.read(); } catch (e) { missing = e.message; }\
             q('s').value = 'hi'; q('n').value = '7'; q('e').value = '1'; q('f').checked = true;\
             const add = [...form.el.querySelectorAll('button')].find((b) => b.textContent === 'Add item');\
             add.click(); add.click(); q('arr[0]').value = '1.5'; q('arr[1]').value = '-2';\
             q('x').value = 'deep'; q('y').value = '3'; q('any').value = '{\"k\": [1]}';\
             const v = form.read(); q('n').value = '7.5';\
             let bad = null; try { form.read(); } catch (e) { bad = e.message; }\
             form.el.remove();\
             return {v, missing, bad};",
            json!([]),
        )
        .await;
    assert_eq!(
        value["v"],
        json!({"s": "hi", "n": 7, "e": "b", "f": true, "arr": [1.5, -2],
               "o": {"x": "deep", "deep": {"y": 3}}, "any": {"k": [1]}}),
        "{value}"
    );
    assert_eq!(value["missing"], "s is required", "{value}");
    assert_eq!(value["bad"], "n: not an integer", "{value}");

    // The call is in the activity log.
    p.open("activity").await;
    b.wait_until(
        "the call in the activity log",
        20,
        "return document.getElementById('activity-rows').textContent.includes('fx__progress')",
    )
    .await;
    b.click("#activity-rows tr").await;
    b.wait("#call-detail dl").await;
    p.shot("activity").await;
    p.no_console_errors("activity").await;

    // Disable a tool; it leaves /mcp.
    assert!(hub.tool_names().await.contains(&"fx__echo".to_string()));
    p.open("servers/fx").await;
    b.click("input[data-tool=echo]").await;
    let gone = eventually(Duration::from_secs(10), async || {
        let names = hub.tool_names().await;
        !names.contains(&"fx__echo".to_string()) && names.contains(&"fx__add".to_string())
    })
    .await;
    assert!(gone, "fx__echo is still listed on /mcp");

    // Import a pasted mcpServers file, read its report, delete the server after confirming.
    p.open("servers").await;
    let file = json!({"mcpServers": {"fy": {"command": fixture_bin(), "args": ["stdio", "--name", "fy"]}}});
    b.fill("#import textarea", &file.to_string()).await;
    b.click("#import button[type=submit]").await;
    b.wait_until(
        "the import report",
        20,
        "return document.getElementById('import').textContent.includes('Added: fy')",
    )
    .await;
    p.open("servers").await;
    b.click("button[data-delete=fy]").await;
    b.click("dialog button.danger").await;
    let deleted = eventually(Duration::from_secs(10), async || {
        let list = hub.admin("GET", "/api/v1/servers", json!(null), None).await;
        list["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "fy")
    })
    .await;
    assert!(deleted, "fy was not deleted");
    p.no_console_errors("import and delete").await;

    // Overview, groups, sessions, access, connect.
    p.open("").await;
    b.wait("table").await;
    assert!(b.text("main").await.contains("fx"));
    p.shot("overview").await;
    p.no_console_errors("overview").await;

    p.open("groups").await;
    b.fill("#group-form input[name=group]", "g1").await;
    b.click("#group-form input[value=fx]").await;
    b.click("#group-tools input[value=fx__add]").await;
    b.click("#group-form button[type=submit]").await;
    b.wait_until("the new group", 10, "return document.querySelector('main table') !== null && document.querySelector('main table').textContent.includes('g1')").await;
    let g = hub
        .admin("GET", "/api/v1/groups/g1", json!(null), None)
        .await;
    assert_eq!(g["tools"], json!(["fx__add"]), "{g}");
    p.shot("groups").await;
    p.no_console_errors("groups").await;

    // A session opened through the API is listed; closing it on the page (by prefix) ends it.
    let remote = spawn_http(FixtureOptions::new("remote")).await.unwrap();
    let opened = hub
        .admin(
            "POST",
            "/api/v1/server",
            json!({"remote_url": remote.url}),
            None,
        )
        .await;
    let (id, prefix) = (
        opened["session_id"].as_str().unwrap(),
        opened["prefix"].as_str().unwrap(),
    );
    p.open("sessions").await;
    let close = format!("button[data-close='{prefix}']");
    b.wait(&close).await;
    assert!(b.text("#session-rows").await.contains("admin-token"));
    p.shot("sessions").await;
    p.no_console_errors("sessions").await;
    b.click(&close).await;
    b.click("dialog button.danger").await;
    b.wait_until(
        "the closed session to leave the page",
        10,
        &format!("return !!document.getElementById('session-rows') && !document.querySelector(\"tr[data-prefix='{prefix}']\")"),
    )
    .await;
    let gone = hub
        .http
        .get(format!("{}/api/v1/server/{id}", hub.main))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status().as_u16(),
        404,
        "the closed session's id still works"
    );
    p.no_console_errors("sessions after closing").await;

    p.open("access").await;
    b.fill("#key-form input[name=key-name]", "laptop").await;
    b.click("#key-form button[type=submit]").await;
    b.wait("#new-key-secret").await;
    let key = b
        .exec(
            "return document.getElementById('new-key-secret').value",
            json!([]),
        )
        .await;
    assert!(key.as_str().is_some_and(|k| k.starts_with("sb_")), "{key}");
    b.wait_until(
        "the new key in the list",
        10,
        "return document.getElementById('keys').textContent.includes('laptop')",
    )
    .await;
    p.shot("access").await;
    p.no_console_errors("access").await;
    b.click("#new-key a[href='#/connect']").await;
    b.wait("#snippets pre").await;
    let snippets = b
        .exec(
            "return document.getElementById('snippets').textContent",
            json!([]),
        )
        .await;
    assert!(
        snippets.as_str().unwrap().contains(key.as_str().unwrap()),
        "the snippets use the new key {key}: {snippets}"
    );

    p.open("connect").await;
    assert!(b.text("#snippets").await.contains("mcpServers"));
    p.shot("connect").await;
    p.no_console_errors("connect").await;

    // Phone width and dark mode.
    b.set_size(390, 844).await;
    p.open("").await;
    p.shot("overview-phone").await;
    b.set_size(1280, 800).await;
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    )
    .await;
    p.open("").await;
    p.shot("overview-dark").await;
    b.cdp("Emulation.setEmulatedMedia", json!({"features": []}))
        .await;
    p.no_console_errors("overview (phone, dark)").await;

    // A cookie-authenticated write without the CSRF token is refused in the browser too.
    let status = b
        .exec(
            "const r = await fetch('api/v1/keys', {method: 'POST', headers: {'content-type': 'application/json'}, body: '{\"name\":\"x\"}'});\
             return r.status;",
            json!([]),
        )
        .await;
    assert_eq!(status, json!(403));
    b.console().await; // the refused request's own console line

    // A manager of another tenant sees only that tenant; a user cannot open Servers.
    hub.admin("POST", "/api/v1/tenants", json!({"name": "t2"}), None)
        .await;
    hub.admin(
        "POST",
        "/api/v1/users",
        json!({"username": "m2", "password": "manager-pass-1", "role": "manager"}),
        Some("t2"),
    )
    .await;
    hub.admin(
        "POST",
        "/api/v1/users",
        json!({"username": "u1", "password": "user-pass-123", "role": "user"}),
        None,
    )
    .await;
    p.sign_out().await;
    p.sign_in("m2", "manager-pass-1").await;
    p.open("servers").await;
    let text = b.text("main").await;
    assert!(
        text.contains("No servers yet") && !text.contains("fx"),
        "{text}"
    );
    p.open("").await;
    assert!(!b.text("main").await.contains("fx"));
    p.no_console_errors("manager pages").await;
    p.sign_out().await;
    p.sign_in("u1", "user-pass-123").await;
    assert!(b.find("nav a[href='#/servers']").await.is_none());
    p.open("servers").await;
    b.wait("#forbidden").await;
    p.shot("user-forbidden").await;
    for page in ["playground", "activity", "sessions", "access", "connect"] {
        p.open(page).await;
        p.no_console_errors(&format!("{page} as a user")).await;
        if page == "access" {
            b.wait("#key-form").await;
            assert!(b.find("#user-form").await.is_none() && b.find("#tenant-form").await.is_none());
        }
    }

    println!("\ndashboard page weight and time to interactive (cold load, 1280x800):");
    println!(
        "{:<14} {:>9} {:>10} {:>9} {:>8} {:>8}",
        "page", "KiB(wire)", "KiB(body)", "requests", "DCL ms", "TTI ms"
    );
    for (page, m) in &p.figures {
        println!(
            "{:<14} {:>9.1} {:>10.1} {:>9} {:>8} {:>8}",
            page,
            m["bytes"].as_f64().unwrap_or(0.0) / 1024.0,
            m["decoded"].as_f64().unwrap_or(0.0) / 1024.0,
            m["requests"],
            m["dcl"],
            m["tti"]
        );
    }
    println!("screenshots: {}", p.shots.display());
}

/// CSRF and cookie rules over plain HTTP: a cookie-authenticated write needs the token, a
/// bearer call does not, sign-in from another origin is refused.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_session_cookies_and_csrf() {
    let hub = DashHub::start().await;
    let login = |origin: Option<&'static str>| {
        let mut req = hub
            .http
            .post(format!("{}/ui/login", hub.main))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert_eq!(
        login(Some("http://evil.example")).await.unwrap().status(),
        403
    );
    let resp = login(None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
    let csrf = resp.json::<Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let jar: String = cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    let post = |path: &str, token: Option<&str>| {
        let mut req = hub
            .http
            .post(format!("{}{path}", hub.main))
            .header("cookie", &jar)
            .json(&json!({"name": "k"}));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let refused = post("/api/v1/keys", None).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "csrf");
    assert_eq!(
        post("/api/v1/keys", Some("00")).await.unwrap().status(),
        403
    );
    assert_eq!(post("/mcp", None).await.unwrap().status(), 403);
    assert_eq!(post("/ui/logout", None).await.unwrap().status(), 403);
    assert_eq!(
        post("/api/v1/keys", Some(&csrf)).await.unwrap().status(),
        201
    );
    // Reads need no token; bearer calls are untouched by the cookie rules.
    let me = hub
        .http
        .get(format!("{}/api/v1/me", hub.main))
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    hub.admin("POST", "/api/v1/tenants", json!({"name": "bearer"}), None)
        .await;
    // Signing out revokes the session.
    assert_eq!(post("/ui/logout", Some(&csrf)).await.unwrap().status(), 204);
    let again = hub
        .http
        .post(format!("{}/ui/refresh", hub.main))
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        401,
        "the signed-out login cannot be refreshed"
    );
    // The shell and its files carry the CSP; unknown files are 404.
    let shell = hub.http.get(format!("{}/", hub.main)).send().await.unwrap();
    let csp = shell.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let missing = hub
        .http
        .get(format!("{}/ui/nope.js", hub.main))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// Behind a reverse proxy under a path prefix: the shell's base and the cookies' path follow
/// `--public-url`, and cookies are `Secure` when the proxy says the request came over HTTPS.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_under_a_path_prefix() {
    let hub = DashHub::start_with(&["--public-url", "https://hub.example/switchboard/"]).await;
    let shell = hub.http.get(format!("{}/", hub.main)).send().await.unwrap();
    assert_eq!(shell.status(), 200);
    let html = shell.text().await.unwrap();
    assert!(html.contains("<base href=\"/switchboard/\">"), "{html}");
    assert!(
        html.contains("src=\"ui/app.js\""),
        "asset URLs are relative to the base"
    );
    let app = hub
        .http
        .get(format!("{}/ui/app.js", hub.main))
        .send()
        .await
        .unwrap();
    assert_eq!(app.status(), 200);
    assert!(
        app.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let resp = hub
        .http
        .post(format!("{}/ui/login", hub.main))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for c in resp.headers().get_all("set-cookie") {
        let c = c.to_str().unwrap();
        assert!(
            c.contains("Path=/switchboard/") && c.contains("; Secure"),
            "{c}"
        );
    }
    let wrong = hub
        .http
        .post(format!("{}/ui/login", hub.main))
        .json(&json!({"username": "admin", "password": "not-the-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let text = hub
        .http
        .post(format!("{}/ui/login", hub.main))
        .header("content-type", "text/plain")
        .body("username=admin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        text.status(),
        400,
        "a form post from another site cannot sign in"
    );
}
