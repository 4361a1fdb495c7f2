//! Proxy sessions (seed 002) over real HTTP: a store, control planes, the main and MCP services
//! on loopback ports, and in-process fixture servers as the remotes. Expiry runs on a manual
//! clock; the sweeper runs for real every 50 ms.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_control::{
    ControlConfig, ControlError, ControlPlane, ManualClock, NewSession, SessionSettings,
};
use switchboard_fixture::{FixtureOptions, FixtureServer, spawn_http};
use switchboard_hub::{Hub, HubConfig};
use switchboard_store::{SecretKey, Store, StoreAccess};

use crate::common::*;

pub const TOKEN: &str = "t0ken-for-session-tests";
/// The manual clock starts here (2023-11-14T22:13:20Z).
const T0: i64 = 1_700_000_000_000;

/// Settings with a manual clock and a fast sweeper.
pub fn settings(clock: Arc<ManualClock>) -> SessionSettings {
    SessionSettings {
        sweep_every: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(10),
        clock,
        ..Default::default()
    }
}

/// A control plane for `tenant` over `store`, with its own hub that connects untrusted servers
/// through the guarded client.
pub fn control_plane(
    store: Arc<dyn Store>,
    tenant: &str,
    sessions: SessionSettings,
) -> Arc<ControlPlane> {
    let guarded = switchboard_control::guarded_client(
        loopback_policy(),
        Arc::new(switchboard_control::SystemLookup),
    );
    let hub = Hub::new(HubConfig {
        untrusted_client: Some(guarded.clone()),
        ..Default::default()
    });
    ControlPlane::new(
        store,
        hub,
        ControlConfig {
            tenant: tenant.into(),
            ssrf: loopback_policy(),
            client: Some(guarded),
            sessions,
            ..Default::default()
        },
    )
}

async fn memory_store() -> Arc<dyn Store> {
    switchboard_store::open("sqlite::memory:", SecretKey::generate().unwrap())
        .await
        .expect("store")
}

/// Both services of one hub (untrusted servers through the guarded client), with the manual
/// clock its sessions run on.
pub async fn start() -> (TestApp, Arc<ManualClock>) {
    start_with(|s| s).await
}

pub async fn start_with(
    tune: impl FnOnce(SessionSettings) -> SessionSettings,
) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let app = TestApp::builder()
        .token(TOKEN)
        .guarded()
        .sessions(tune(settings(clock.clone())))
        .start()
        .await;
    (app, clock)
}

/// Opens a session (`POST /api/v1/server`); returns (id, prefix).
pub async fn open(api: &TestApp, body: Value) -> (String, String) {
    let v = api.admin().post("/api/v1/server", body).expect(200).await;
    (
        v["session_id"].as_str().expect("session_id").to_string(),
        v["prefix"].as_str().expect("prefix").to_string(),
    )
}

async fn fixture() -> FixtureServer {
    spawn_http(FixtureOptions::new("remote"))
        .await
        .expect("fixture")
}

/// The `DELETE` requests (upstream session closes) a fixture has received.
fn deletes(f: &FixtureServer) -> usize {
    f.requests().iter().filter(|r| r.method == "DELETE").count()
}

// ---- the happy path, every route ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_opened_used_on_every_route_and_closed() {
    let (api, clock) = start().await;
    let remote = fixture().await;
    let created = api.admin().post("/api/v1/server", json!({ "remote_url": remote.url, "token": "tok-123", "headers": {"X-Tenant-Hint": "blue"}, "ttl_seconds": 600 })).expect(200)
        .await;
    let id = created["session_id"].as_str().unwrap().to_string();
    let prefix = created["prefix"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64, "256 random bits in hex: {created}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(created["remote_url"], remote.url);
    assert_eq!(created["expires_at"], "2023-11-14T22:23:20Z", "{created}");
    assert_eq!(created["expires_at_ms"], T0 + 600_000);
    assert_eq!(created["state"], "ready");

    // The token and the headers reach the remote on every request.
    let seen = remote.requests();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(r.header("authorization"), Some("Bearer tok-123"), "{r:?}");
        assert_eq!(r.header("x-tenant-hint"), Some("blue"), "{r:?}");
    }

    // The prefix is taken while the session lives: a server of that name would replace the
    // session's mount.
    let clash = api
        .admin()
        .post(
            "/api/v1/servers",
            json!({"name": prefix, "url": remote.url}),
        )
        .expect(409)
        .await;
    assert!(
        clash["message"]
            .as_str()
            .unwrap_or_default()
            .contains("proxy session"),
        "{clash}"
    );

    let base = format!("/api/v1/server/{id}");
    let described = api.admin().get(&base).expect(200).await;
    assert_eq!(described["prefix"], prefix.as_str());
    assert!(
        described.get("session_id").is_none(),
        "the id is shown once"
    );

    for route in ["tools", "discover"] {
        let tools = api.admin().get(format!("{base}/{route}")).expect(200).await;
        assert_eq!(tools["prefix"], prefix.as_str());
        let names: Vec<&str> = tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"echo") && names.contains(&"progress"),
            "{names:?}"
        );
    }

    let echoed = api
        .admin()
        .post(
            format!("{base}/tools/echo"),
            json!({"arguments": {"text": "hello"}}),
        )
        .expect(200)
        .await;
    assert_eq!(text_of(&echoed), "hello", "{echoed}");

    let added = api.admin().post(format!("{base}/rpc"), json!({"method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}})).expect(200)
        .await;
    assert_eq!(added["structuredContent"]["sum"], 5, "{added}");

    let pong = api.admin().get(format!("{base}/ping")).expect(200).await;
    assert_eq!(pong["status"], "ok");
    assert!(pong["latency_ms"].as_f64().is_some());

    // A prompt and a resource the fixture offers.
    let prompts = api
        .admin()
        .post(format!("{base}/rpc"), json!({"method": "prompts/list"}))
        .expect(200)
        .await;
    let prompt = prompts["prompts"][0].clone();
    let pname = prompt["name"].as_str().expect("the fixture has a prompt");
    let mut args = serde_json::Map::new();
    for a in prompt["arguments"].as_array().cloned().unwrap_or_default() {
        args.insert(a["name"].as_str().unwrap().into(), json!("x"));
    }
    let q = url_encode(&Value::Object(args).to_string());
    let got = api
        .admin()
        .get(format!("{base}/prompts/{pname}?arguments={q}"))
        .expect(200)
        .await;
    assert!(got["messages"].is_array(), "{got}");
    let resources = api
        .admin()
        .post(format!("{base}/rpc"), json!({"method": "resources/list"}))
        .expect(200)
        .await;
    let uri = resources["resources"][0]["uri"]
        .as_str()
        .expect("a resource")
        .to_string();
    for path in [url_encode(&uri), uri.clone()] {
        let read = api
            .admin()
            .get(format!("{base}/resources/{path}"))
            .expect(200)
            .await;
        assert_eq!(read["contents"][0]["uri"], uri.as_str(), "{read}");
    }

    // The session's tools are on /mcp under its prefix.
    let mut mcp = McpClient::connect(&format!("http://{}/mcp", api.mcp)).await;
    let exported = format!("{prefix}__echo");
    assert!(mcp.tool_names().await.contains(&exported));
    let r = mcp.call(&exported, json!({"text": "via mcp"})).await;
    assert_eq!(text_of(&r), "via mcp");

    // Refresh moves the expiry from now.
    clock.advance(Duration::from_secs(100));
    let refreshed = api
        .admin()
        .post_empty(format!("{base}/refresh"))
        .expect(200)
        .await;
    assert_eq!(refreshed["new_expires_at_ms"], T0 + 100_000 + 600_000);
    let refreshed = api
        .admin()
        .post(format!("{base}/refresh"), json!({"ttl_seconds": 30}))
        .expect(200)
        .await;
    assert_eq!(refreshed["new_expires_at_ms"], T0 + 100_000 + 30_000);
    assert_eq!(refreshed["new_expires_at"], "2023-11-14T22:15:30Z");

    // Close: record gone, upstream session closed, tools gone from /mcp, routes 404.
    let before = deletes(&remote);
    let closed = api.admin().delete(&base).expect(200).await;
    assert_eq!(closed["status"], "success");
    assert!(
        deletes(&remote) > before,
        "the upstream session was closed with DELETE"
    );
    assert!(api.control.hub().upstream(&prefix).is_none());
    assert!(!mcp.tool_names().await.contains(&exported));
    api.admin()
        .get(format!("{base}/tools"))
        .expect_error(404, "not_found")
        .await;
    api.admin()
        .delete(&base)
        .expect_error(404, "not_found")
        .await;
    assert!(
        api.control
            .store()
            .list_sessions("default")
            .await
            .unwrap()
            .is_empty()
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_header_wins_over_the_token_and_secrets_stay_sealed() {
    let (api, _clock) = start().await;
    let remote = fixture().await;
    let (id, _) = open(
        &api,
        json!({
            "remote_url": remote.url,
            "token": "ignored-token",
            "headers": {"authorization": "Basic c2VjcmV0"}
        }),
    )
    .await;
    for r in remote.requests() {
        assert_eq!(r.header("authorization"), Some("Basic c2VjcmV0"), "{r:?}");
    }
    // Nothing the caller can read shows the secret; the store holds the id only as a hash.
    let described = api
        .admin()
        .get(format!("/api/v1/server/{id}"))
        .expect(200)
        .await;
    let detailed = api.admin().get("/api/v1/health/detailed").expect(200).await;
    for text in [described.to_string(), detailed.to_string()] {
        assert!(!text.contains("c2VjcmV0") && !text.contains(&id), "{text}");
    }
    assert_eq!(detailed["sessions"]["live"], 1, "{detailed}");
    let rows = api.control.store().list_sessions("default").await.unwrap();
    assert_eq!(rows[0].id_hash, switchboard_control::sessions::hash_id(&id));
    assert_ne!(rows[0].id_hash, id);
    api.stop().await;
}

// ---- errors ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_404_for_an_unknown_session_and_bodies_are_checked() {
    let (api, _clock) = start_with(|s| SessionSettings {
        max_per_tenant: 1,
        ..s
    })
    .await;
    let unknown = "0".repeat(64);
    let b = format!("/api/v1/server/{unknown}");
    for (method, path, body) in [
        ("GET", b.clone(), None),
        ("DELETE", b.clone(), None),
        ("POST", format!("{b}/refresh"), None),
        ("GET", format!("{b}/tools"), None),
        ("GET", format!("{b}/discover"), None),
        (
            "POST",
            format!("{b}/tools/echo"),
            Some(r#"{"arguments":{}}"#),
        ),
        (
            "POST",
            format!("{b}/tools/echo"),
            Some(r#"{"arguments":{},"stream":true}"#),
        ),
        ("GET", format!("{b}/resources/demo%3A%2F%2Fx"), None),
        ("GET", format!("{b}/resources/demo://x/y"), None),
        ("GET", format!("{b}/prompts/p"), None),
        (
            "POST",
            format!("{b}/rpc"),
            Some(r#"{"method":"tools/list"}"#),
        ),
        ("GET", format!("{b}/ping"), None),
    ] {
        api.admin()
            .req(method, &path)
            .raw_json(body)
            .expect_error(404, "not_found")
            .await;
    }

    // Without the admin token: 401; the open health route needs none.
    let resp = api
        .api
        .http
        .post(api.url("/api/v1/server"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = api
        .api
        .http
        .get(api.url("/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ok");

    // Malformed JSON: 400. Valid JSON of the wrong shape: 422.
    let create = "/api/v1/server";
    api.admin()
        .req("POST", create)
        .text("application/json", "{")
        .expect_error(400, "bad_request")
        .await;
    api.admin()
        .req("POST", create)
        .text("application/json", "")
        .expect_error(400, "bad_request")
        .await;
    api.admin()
        .req("POST", create)
        .text("application/json", "{}")
        .expect_error(422, "invalid_body")
        .await;
    api.admin()
        .req("POST", create)
        .text("application/json", r#"{"remote_url": 5}"#)
        .expect_error(422, "invalid_body")
        .await;
    api.admin()
        .req("POST", create)
        .text("application/json", r#"{"remote_url": ""}"#)
        .expect_error(422, "invalid_body")
        .await;
    api.admin()
        .req("POST", create)
        .text("application/json", r#"[1,2]"#)
        .expect_error(422, "invalid_body")
        .await;
    api.admin()
        .req("POST", create)
        .text(
            "application/json",
            r#"{"remote_url":"http://127.0.0.1:1/mcp","ttl_seconds":0}"#,
        )
        .expect_error(422, "invalid_body")
        .await;
    api.admin()
        .req("POST", create)
        .text(
            "application/json",
            r#"{"remote_url":"http://127.0.0.1:1/mcp","headers":["x"]}"#,
        )
        .expect_error(422, "invalid_body")
        .await;

    // Bad URLs and SSRF refusals: 400 naming the rule.
    for (url, code) in [
        ("not a url", "invalid"),
        ("ftp://example.com/mcp", "invalid"),
        ("http://user:pw@127.0.0.1/mcp", "invalid"),
        ("http://10.0.0.1/mcp", "ssrf_refused"),
        ("http://169.254.169.254/latest/meta-data/", "ssrf_refused"),
        ("http://[::ffff:192.168.0.1]/mcp", "ssrf_refused"),
        ("http://0x0a000001/mcp", "ssrf_refused"),
        ("http://100.64.0.1/mcp", "ssrf_refused"),
    ] {
        let body = json!({"remote_url": url}).to_string();
        api.admin()
            .req("POST", create)
            .text("application/json", &body)
            .expect_error(400, code)
            .await;
    }
    let body = json!({"remote_url": "http://10.0.0.1/mcp"}).to_string();
    let refused = api
        .admin()
        .req("POST", create)
        .text("application/json", body)
        .send()
        .await
        .body;
    let msg = refused["message"].as_str().unwrap();
    assert!(
        msg.contains("private network") && msg.contains("SWITCHBOARD_SSRF_ALLOW_CIDRS"),
        "{msg}"
    );

    // Nothing listens: 503, and nothing is recorded or mounted.
    let body = json!({"remote_url": "http://127.0.0.1:1/mcp"}).to_string();
    api.admin()
        .req("POST", create)
        .text("application/json", &body)
        .expect_error(503, "unreachable")
        .await;
    assert!(
        api.control
            .store()
            .list_sessions("default")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(api.control.hub().server_names(), Vec::<String>::new());
    assert_eq!(api.control.mounted_sessions(), 0);

    // Per-session body checks, then the tenant limit (1 here): 429.
    let remote = fixture().await;
    let (id, _) = open(&api, json!({"remote_url": remote.url})).await;
    let b = format!("/api/v1/server/{id}");
    for (route, body, status, code) in [
        ("tools/echo", "{nope", 400, "bad_request"),
        ("tools/echo", r#"{"arguments":[1]}"#, 422, "invalid_body"),
        ("tools/echo", r#"{"stream":"yes"}"#, 422, "invalid_body"),
        ("tools/no-such-tool", "{}", 404, "not_found"),
        ("rpc", "{}", 422, "invalid_body"),
        ("rpc", r#"{"method":"initialize"}"#, 400, "bad_request"),
        ("rpc", r#"{"method":"no/such"}"#, 502, "upstream_error"),
        ("refresh", r#"{"ttl_seconds":"x"}"#, 422, "invalid_body"),
    ] {
        api.admin()
            .req("POST", format!("{b}/{route}"))
            .text("application/json", body)
            .expect_error(status, code)
            .await;
    }
    api.admin()
        .get(format!("{b}/prompts/p?arguments=%5B1%5D"))
        .expect_error(400, "bad_request")
        .await;
    let body = json!({"remote_url": remote.url}).to_string();
    api.admin()
        .req("POST", create)
        .text("application/json", &body)
        .expect_error(429, "session_limit")
        .await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_limit_is_shared_across_tenants() {
    init();
    let store = memory_store().await;
    let clock = Arc::new(ManualClock::new(T0));
    let shared = Arc::new(AtomicUsize::new(0));
    let tuned = |clock: Arc<ManualClock>| SessionSettings {
        max_total: 1,
        live: shared.clone(),
        ..settings(clock)
    };
    let a = control_plane(store.clone(), "a", tuned(clock.clone()));
    let b = control_plane(store.clone(), "b", tuned(clock.clone()));
    let remote = fixture().await;
    let new = || NewSession {
        remote_url: remote.url.clone(),
        ..Default::default()
    };
    let opened = a.create_session(new(), "t").await.expect("first session");
    let err = b.create_session(new(), "t").await.unwrap_err();
    assert!(matches!(err, ControlError::Limit(_)), "{err}");
    a.close_session(opened.session_id.as_deref().unwrap())
        .await
        .unwrap();
    b.create_session(new(), "t")
        .await
        .expect("room again after the close");
    a.hub().shutdown().await;
    b.hub().shutdown().await;
}

// ---- lifetime ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_on_the_clock_and_the_sweeper_closes_their_upstreams() {
    let (api, clock) = start_with(|s| SessionSettings {
        max_ttl: Duration::from_secs(3600),
        ..s
    })
    .await;
    let remote = fixture().await;
    let (id, prefix) = open(&api, json!({"remote_url": remote.url, "ttl_seconds": 60})).await;
    // Asking for more than the cap gets the cap.
    let (capped, _) = open(
        &api,
        json!({"remote_url": remote.url, "ttl_seconds": 999_999}),
    )
    .await;
    let v = api
        .admin()
        .get(format!("/api/v1/server/{capped}"))
        .expect(200)
        .await;
    assert_eq!(v["expires_at_ms"], T0 + 3_600_000, "{v}");
    assert_eq!(v["ttl_seconds"], 3600);

    let mut mcp = McpClient::connect(&format!("http://{}/mcp", api.mcp)).await;
    let exported = format!("{prefix}__echo");
    assert!(mcp.tool_names().await.contains(&exported));

    // 30 s in, refresh: now expires at +90 s.
    clock.advance(Duration::from_secs(30));
    api.admin()
        .post_empty(format!("/api/v1/server/{id}/refresh"))
        .expect(200)
        .await;
    clock.advance(Duration::from_secs(45));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        api.control.hub().upstream(&prefix).is_some(),
        "refreshed: still alive at +75 s"
    );
    api.admin()
        .get(format!("/api/v1/server/{id}/tools"))
        .expect(200)
        .await;

    // Past +90 s the sweeper closes it without anyone asking.
    let deletes_before = deletes(&remote);
    clock.advance(Duration::from_secs(16));
    assert!(
        eventually(Duration::from_secs(5), async || api
            .control
            .hub()
            .upstream(&prefix)
            .is_none())
        .await,
        "the sweeper unmounted the expired session"
    );
    assert!(
        eventually(Duration::from_secs(5), async || deletes(&remote)
            > deletes_before)
        .await,
        "the upstream session was closed (DELETE sent to the remote)"
    );
    let rows = api.control.store().list_sessions("default").await.unwrap();
    assert_eq!(rows.len(), 1, "only the capped session is left");
    assert!(
        !mcp.tool_names().await.contains(&exported),
        "its tools left /mcp"
    );
    api.admin()
        .get(format!("/api/v1/server/{id}/tools"))
        .expect_error(404, "not_found")
        .await;
    api.admin()
        .post_empty(format!("/api/v1/server/{id}/refresh"))
        .expect_error(404, "not_found")
        .await;
    api.admin()
        .get(format!("/api/v1/server/{capped}/ping"))
        .expect(200)
        .await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_refused_before_the_sweeper_runs() {
    init();
    let clock = Arc::new(ManualClock::new(T0));
    let control = control_plane(
        memory_store().await,
        "default",
        SessionSettings {
            sweep_every: Duration::from_secs(3600),
            ..settings(clock.clone())
        },
    );
    let remote = fixture().await;
    let view = control
        .create_session(
            NewSession {
                remote_url: remote.url.clone(),
                ttl_seconds: Some(10),
                ..Default::default()
            },
            "t",
        )
        .await
        .unwrap();
    let id = view.session_id.unwrap();
    control.session(&id).await.expect("alive");
    clock.advance(Duration::from_secs(10));
    assert!(matches!(
        control.session(&id).await,
        Err(ControlError::NotFound(_))
    ));
    assert!(
        control.hub().upstream(&view.prefix).is_none(),
        "closed on the spot"
    );
    assert_eq!(control.mounted_sessions(), 0);
    assert!(
        control
            .store()
            .list_sessions("default")
            .await
            .unwrap()
            .is_empty()
    );
    control.hub().shutdown().await;
}

// ---- tenants and replicas ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_see_use_refresh_or_close_a_session() {
    init();
    let store = memory_store().await;
    let clock = Arc::new(ManualClock::new(T0));
    let a = control_plane(store.clone(), "tenant-a", settings(clock.clone()));
    let b = control_plane(store.clone(), "tenant-b", settings(clock.clone()));
    let remote = fixture().await;
    let view = a
        .create_session(
            NewSession {
                remote_url: remote.url.clone(),
                ..Default::default()
            },
            "alice",
        )
        .await
        .unwrap();
    let id = view.session_id.clone().unwrap();
    let nf = |r: Result<(), ControlError>| matches!(r, Err(ControlError::NotFound(_)));
    assert!(nf(b.session(&id).await.map(drop)));
    assert!(nf(b.describe_session(&id).await.map(drop)));
    assert!(nf(b.refresh_session(&id, Some(60)).await.map(drop)));
    assert!(nf(b.close_session(&id).await));
    assert!(b.list_sessions().await.unwrap().is_empty());
    assert!(
        b.hub().upstream(&view.prefix).is_none(),
        "B's hub never mounted it"
    );
    // A's session is untouched by B's attempts.
    let handle = a.session(&id).await.expect("still A's");
    let reply = handle
        .request(
            "tools/call",
            Some(r#"{"name":"echo","arguments":{"text":"mine"}}"#),
            None,
        )
        .await
        .unwrap();
    assert!(reply.contains("mine"), "{reply}");
    assert_eq!(a.list_sessions().await.unwrap().len(), 1);
    a.hub().shutdown().await;
    b.hub().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_a_session_it_did_not_create_and_drops_it_when_closed_elsewhere() {
    init();
    let store = memory_store().await;
    let clock = Arc::new(ManualClock::new(T0));
    let one = control_plane(store.clone(), "default", settings(clock.clone()));
    let two = control_plane(store.clone(), "default", settings(clock.clone()));
    let remote = fixture().await;
    let view = one
        .create_session(
            NewSession {
                remote_url: remote.url.clone(),
                headers: BTreeMap::from([("X-Replica".to_string(), "secret-r".to_string())]),
                ..Default::default()
            },
            "t",
        )
        .await
        .unwrap();
    let id = view.session_id.unwrap();
    assert!(two.hub().upstream(&view.prefix).is_none());
    let handle = two.session(&id).await.expect("mounted on demand");
    let reply = handle
        .request(
            "tools/call",
            Some(r#"{"name":"echo","arguments":{"text":"r2"}}"#),
            None,
        )
        .await
        .unwrap();
    assert!(reply.contains("r2"));
    // The stored (sealed) headers were used by the second replica too.
    let with_header = remote
        .requests()
        .iter()
        .filter(|r| r.header("x-replica") == Some("secret-r"))
        .count();
    assert!(
        with_header >= 4,
        "both replicas sent the header: {with_header}"
    );
    // Refresh on one is seen by the other; close on one unmounts on the other.
    let at = one.refresh_session(&id, Some(5000)).await.unwrap();
    assert_eq!(two.describe_session(&id).await.unwrap().expires_at_ms, at);
    one.close_session(&id).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), async || two
            .hub()
            .upstream(&view.prefix)
            .is_none())
        .await,
        "the other replica's sweeper dropped its mount"
    );
    assert!(matches!(
        two.session(&id).await,
        Err(ControlError::NotFound(_))
    ));
    one.hub().shutdown().await;
    two.hub().shutdown().await;
}

// ---- NDJSON streaming ----

/// Reads an NDJSON body, stamping each line with its arrival time.
pub async fn frames(resp: reqwest::Response) -> Vec<(Duration, Value)> {
    let start = Instant::now();
    let mut resp = resp;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("body") {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let v: Value = serde_json::from_slice(&line[..line.len() - 1])
                .unwrap_or_else(|e| panic!("bad line {:?}: {e}", String::from_utf8_lossy(&line)));
            out.push((start.elapsed(), v));
        }
    }
    assert!(buf.is_empty(), "every frame ends with a newline");
    out
}

/// Streams a tool call; returns the response (headers checked).
pub async fn stream(api: &TestApp, id: &str, tool: &str, arguments: Value) -> reqwest::Response {
    let resp = api
        .api
        .http
        .post(api.url(&format!("/api/v1/server/{id}/tools/{tool}")))
        .bearer_auth(TOKEN)
        .json(&json!({"arguments": arguments, "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    resp
}

/// Checks the frame grammar: progress/log/notification frames, then exactly one result or
/// error, then done, then nothing.
pub fn check_grammar(f: &[(Duration, Value)]) {
    let kinds: Vec<&str> = f.iter().map(|(_, v)| v["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"done"), "{kinds:?}");
    let n = kinds.len();
    assert!(
        n >= 2 && matches!(kinds[n - 2], "result" | "error"),
        "{kinds:?}"
    );
    assert!(
        kinds[..n - 2]
            .iter()
            .all(|k| matches!(*k, "progress" | "log" | "notification")),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_sends_progress_and_log_frames_as_they_happen() {
    let (api, _clock) = start().await;
    let remote = fixture().await;
    let (id, _) = open(&api, json!({"remote_url": remote.url})).await;

    let f = frames(
        stream(
            &api,
            &id,
            "progress",
            json!({"steps": 5, "interval_ms": 200}),
        )
        .await,
    )
    .await;
    check_grammar(&f);
    let progress: Vec<&(Duration, Value)> =
        f.iter().filter(|(_, v)| v["type"] == "progress").collect();
    assert_eq!(progress.len(), 5, "{f:?}");
    assert_eq!(progress[0].1["progress"].as_f64(), Some(1.0));
    assert_eq!(progress[4].1["total"].as_f64(), Some(5.0));
    assert_eq!(progress[0].1["message"], "step 1");
    assert!(progress[0].1.get("progressToken").is_none());
    let (result_at, result) = &f[f.len() - 2];
    assert_eq!(text_of(&result["result"]), "done 5", "{result}");
    // Incremental: the first progress frame arrived long before the result (5 x 200 ms).
    assert!(
        *result_at >= progress[0].0 + Duration::from_millis(600),
        "first progress at {:?}, result at {result_at:?}",
        progress[0].0
    );
    for w in progress.windows(2) {
        assert!(
            w[1].0 >= w[0].0 + Duration::from_millis(100),
            "{:?} then {:?}",
            w[0].0,
            w[1].0
        );
    }

    // A log message the remote sends while the call runs becomes a log frame.
    let f = frames(
        stream(
            &api,
            &id,
            "log",
            json!({"level": "warning", "message": "careful", "then_ms": 300}),
        )
        .await,
    )
    .await;
    check_grammar(&f);
    let log = f
        .iter()
        .find(|(_, v)| v["type"] == "log")
        .map(|(_, v)| v.clone());
    let log = log.unwrap_or_else(|| panic!("no log frame in {f:?}"));
    assert_eq!(log["level"], "warning");
    assert_eq!(log["data"], "careful");

    // A JSON-RPC error from the remote is an error frame, still followed by done.
    let f = frames(stream(&api, &id, "add", json!({"a": "x"})).await).await;
    check_grammar(&f);
    assert_eq!(f[f.len() - 2].1["type"], "error", "{f:?}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_the_upstream_call() {
    let (api, _clock) = start().await;
    let remote = fixture().await;
    let (id, _) = open(&api, json!({"remote_url": remote.url})).await;
    let mut resp = stream(
        &api,
        &id,
        "progress",
        json!({"steps": 100, "interval_ms": 100}),
    )
    .await;
    let first = resp.chunk().await.unwrap().expect("a first frame");
    assert!(String::from_utf8_lossy(&first).contains("progress"));
    assert_eq!(remote.stats().cancelled(), 0);
    drop(resp);
    assert!(
        eventually(Duration::from_secs(5), async || remote.stats().cancelled()
            == 1)
        .await,
        "the remote saw notifications/cancelled"
    );

    // Without streaming, an abandoned request cancels too.
    let http = api.api.http.clone();
    let url = api.url(&format!("/api/v1/server/{id}/tools/hang"));
    let call = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(TOKEN)
            .json(&json!({}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.abort();
    assert!(
        eventually(Duration::from_secs(5), async || remote.stats().cancelled()
            == 2)
        .await,
        "the remote saw the second cancellation"
    );
    api.stop().await;
}
