//! The tenant's proxy sessions over real HTTP: `GET /api/v1/sessions` (managers see their
//! tenant's, users their own, nobody another tenant's) and `DELETE /api/v1/sessions/{prefix}`
//! (managers close any session of their tenant without its id; audited).

use serde_json::{Value, json};
use switchboard_fixture::{FixtureOptions, spawn_http};

use crate::common::{Req, ServesApi, TestApp};
use crate::sessions::TOKEN;

/// One request as `token` (none when empty; `tenant`: `X-Switchboard-Tenant`); (status, body).
async fn send(
    api: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    tenant: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let a = who(api, token)
        .req(method, path)
        .tenant(tenant)
        .json(body)
        .send()
        .await;
    (a.status.as_u16(), a.body)
}

/// A request as `token`, or with no credential when it is empty.
fn who(api: &TestApp, token: &str) -> Req {
    if token.is_empty() {
        api.anon()
    } else {
        api.as_(token)
    }
}

/// A request that must answer `expected`; its body.
async fn ok(
    api: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    tenant: Option<&str>,
    body: Option<Value>,
    expected: u16,
) -> Value {
    who(api, token)
        .req(method, path)
        .tenant(tenant)
        .json(body)
        .expect(expected)
        .await
}

/// Creates `username` with `role` in `tenant` and logs them in; their access token.
async fn user(api: &TestApp, tenant: &str, username: &str, role: &str) -> String {
    let password = format!("{username}-password-1");
    let body = json!({"username": username, "password": password, "role": role});
    ok(
        api,
        "POST",
        "/api/v1/users",
        TOKEN,
        Some(tenant),
        Some(body),
        201,
    )
    .await;
    let login = json!({"username": username, "password": password});
    let v = ok(
        api,
        "POST",
        "/api/v1/auth/login",
        "",
        None,
        Some(login),
        200,
    )
    .await;
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Opens a session to `url` as `token`; (id, prefix).
async fn open(api: &TestApp, token: &str, url: &str) -> (String, String) {
    let body = json!({"remote_url": url, "ttl_seconds": 600});
    let v = ok(api, "POST", "/api/v1/server", token, None, Some(body), 200).await;
    let s = |k: &str| v[k].as_str().expect(k).to_string();
    (s("session_id"), s("prefix"))
}

/// The prefixes `GET /api/v1/sessions` lists for `token`, sorted.
async fn listed(api: &TestApp, token: &str, tenant: Option<&str>) -> Vec<String> {
    let v = ok(api, "GET", "/api/v1/sessions", token, tenant, None, 200).await;
    let mut out: Vec<String> = v["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|s| {
            assert!(s.get("session_id").is_none(), "ids are never listed: {s}");
            s["prefix"].as_str().unwrap().to_string()
        })
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<&String>) -> Vec<String> {
    v.sort();
    v.into_iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_list_and_close_their_tenants_sessions_and_users_see_their_own() {
    let (api, _clock) = crate::sessions::start().await;
    let remote = spawn_http(FixtureOptions::new("remote")).await.unwrap();
    ok(
        &api,
        "POST",
        "/api/v1/tenants",
        TOKEN,
        None,
        Some(json!({"name": "t2"})),
        201,
    )
    .await;
    let m1 = user(&api, "default", "m1", "manager").await;
    let u1 = user(&api, "default", "u1", "user").await;
    let u2 = user(&api, "default", "u2", "user").await;
    let m2 = user(&api, "t2", "m2", "manager").await;
    let key = ok(
        &api,
        "POST",
        "/api/v1/keys",
        &u1,
        None,
        Some(json!({"name": "k"})),
        201,
    )
    .await;
    let u1_key = key["key"].as_str().expect("key").to_string();

    let (id_a, a) = open(&api, &u1, &remote.url).await;
    let (_, b) = open(&api, &u2, &remote.url).await;
    let (_, c) = open(&api, &u1_key, &remote.url).await;
    let (_, d) = open(&api, &m2, &remote.url).await;

    // The manager sees every session of their tenant, with who opened it; none of t2's.
    assert_eq!(listed(&api, &m1, None).await, sorted(vec![&a, &b, &c]));
    let v = ok(&api, "GET", "/api/v1/sessions", &m1, None, None, 200).await;
    let row = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["prefix"] == a.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["created_by"], "user:u1", "{row}");
    assert_eq!(row["remote_url"], remote.url.as_str(), "{row}");
    assert_eq!(row["transport"], "streamable-http", "{row}");
    assert_eq!(
        (row["mounted_here"].clone(), row["state"].clone()),
        (json!(true), json!("ready"))
    );
    assert!(row["created_at_ms"].as_i64().unwrap() < row["expires_at_ms"].as_i64().unwrap());
    assert!(row["created_at"].as_str().unwrap().ends_with('Z'), "{row}");
    // Another tenant's manager sees only theirs, and may not name this tenant.
    assert_eq!(listed(&api, &m2, None).await, vec![d.clone()]);
    let (status, _) = send(&api, "GET", "/api/v1/sessions", &m2, Some("default"), None).await;
    assert_eq!(status, 404);
    // An admin picks the tenant.
    assert_eq!(listed(&api, TOKEN, Some("t2")).await, vec![d.clone()]);
    assert_eq!(listed(&api, TOKEN, None).await, sorted(vec![&a, &b, &c]));
    // A user sees the sessions they opened, under any of their credentials; health agrees.
    assert_eq!(listed(&api, &u1, None).await, sorted(vec![&a, &c]));
    assert_eq!(listed(&api, &u1_key, None).await, sorted(vec![&a, &c]));
    assert_eq!(listed(&api, &u2, None).await, vec![b.clone()]);
    let h = ok(&api, "GET", "/api/v1/health/detailed", &u2, None, None, 200).await;
    assert_eq!(h["sessions"]["live"], 3, "{h}");
    let health_list: Vec<&Value> = h["sessions"]["list"].as_array().unwrap().iter().collect();
    assert_eq!(health_list.len(), 1, "{h}");
    assert_eq!(health_list[0]["prefix"], b.as_str());

    // Closing by prefix: only admins and managers, only in their tenant.
    let path_a = format!("/api/v1/sessions/{a}");
    let (status, v) = send(&api, "DELETE", &path_a, &u1, None, None).await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = send(&api, "DELETE", &path_a, &m2, None, None).await;
    assert_eq!(
        (status, v["error"].clone()),
        (404, json!("not_found")),
        "{v}"
    );
    ok(
        &api,
        "GET",
        &format!("/api/v1/server/{id_a}"),
        &u1,
        None,
        None,
        200,
    )
    .await;
    let v = ok(&api, "DELETE", &path_a, &m1, None, None, 200).await;
    assert_eq!(v["status"], "success", "{v}");
    // Gone as if closed by id: the id answers 404, the mount is closed, the list moved on.
    let (status, _) = send(
        &api,
        "GET",
        &format!("/api/v1/server/{id_a}"),
        &u1,
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        api.control.hub().upstream(&a).is_none(),
        "{a} is still mounted"
    );
    assert_eq!(listed(&api, &m1, None).await, sorted(vec![&b, &c]));
    assert_eq!(listed(&api, &m2, None).await, vec![d.clone()]);
    // Unknown and already closed prefixes are 404.
    for p in [a.as_str(), "s000000000000", "no-such-prefix"] {
        let (status, v) = send(
            &api,
            "DELETE",
            &format!("/api/v1/sessions/{p}"),
            &m1,
            None,
            None,
        )
        .await;
        assert_eq!(
            (status, v["error"].clone()),
            (404, json!("not_found")),
            "{p}: {v}"
        );
    }
    // An admin closes a session of another tenant by naming it.
    ok(
        &api,
        "DELETE",
        &format!("/api/v1/sessions/{d}"),
        TOKEN,
        Some("t2"),
        None,
        200,
    )
    .await;
    assert!(listed(&api, &m2, None).await.is_empty());

    // The closes are in the audit log, in the tenant they acted on.
    let audit = ok(
        &api,
        "GET",
        "/api/v1/audit?all=true&limit=1000",
        TOKEN,
        None,
        None,
        200,
    )
    .await;
    let closes: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "DELETE /api/v1/sessions/{prefix}")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("tenant"), s("actor"), s("outcome"))
        })
        .collect();
    for expected in [
        (
            "default".to_string(),
            "user:m1".to_string(),
            "ok".to_string(),
        ),
        (
            "t2".to_string(),
            "admin-token".to_string(),
            "ok".to_string(),
        ),
        (
            "default".to_string(),
            "user:u1".to_string(),
            "denied".to_string(),
        ),
    ] {
        assert!(closes.contains(&expected), "{expected:?} not in {closes:?}");
    }
    api.stop().await;
}
