//! The audit log: management actions recorded per tenant.

use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------------
// Audit

fn entries(list: &Value) -> &Vec<Value> {
    list["entries"].as_array().unwrap()
}

fn has_entry(list: &Value, actor: &str, action: &str, target: &str, outcome: &str) -> bool {
    entries(list).iter().any(|e| {
        e["actor"] == actor
            && e["action"] == action
            && e["target"] == target
            && e["outcome"] == outcome
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_management_actions_per_tenant() {
    let h = sqlite().await;
    let ma = tenant_with_user(&h, "aud-a", "aud-a-mgr", "manager").await;
    let mb = tenant_with_user(&h, "aud-b", "aud-b-mgr", "manager").await;
    h.user(ADMIN, Some("aud-a"), "aud-a-user", "user", json!(["*"]))
        .await;
    let (ka_id, ka) = h
        .key(ADMIN, Some("aud-a"), json!({"name": "a", "user_id": ma}))
        .await;
    let (kb_id, kb) = h
        .key(ADMIN, Some("aud-b"), json!({"name": "b", "user_id": mb}))
        .await;
    let (ua, _) = h.tokens("aud-a-user").await;
    let server = |name: &str| json!({"name": name, "type": "streamable-http", "url": "http://127.0.0.1:9/mcp"});

    h.as_(&ka)
        .post("/api/v1/servers", server("sa"))
        .expect(201)
        .await;
    h.as_(&ka).get("/api/v1/servers").expect(200).await;
    h.as_(&ua)
        .post("/api/v1/servers", server("su"))
        .expect(403)
        .await;
    h.as_(&ka).delete("/api/v1/servers/nope").expect(404).await;
    h.as_(&kb)
        .post("/api/v1/servers", server("sb"))
        .expect(201)
        .await;
    // A manager of a probing tenant b.
    h.as_(&ka)
        .post("/api/v1/servers", server("sx"))
        .tenant(Some("aud-b"))
        .expect(404)
        .await;

    let actor_a = format!("user:aud-a-mgr (key {ka_id})");
    let actor_b = format!("user:aud-b-mgr (key {kb_id})");
    let log_a = h.as_(&ka).get("/api/v1/audit").expect(200).await;
    assert!(
        entries(&log_a).iter().all(|e| e["tenant"] == "aud-a"),
        "{log_a}"
    );
    assert!(
        has_entry(
            &log_a,
            &actor_a,
            "POST /api/v1/servers",
            "/api/v1/servers",
            "ok"
        ),
        "{log_a}"
    );
    assert!(
        has_entry(
            &log_a,
            "user:aud-a-user",
            "POST /api/v1/servers",
            "/api/v1/servers",
            "denied"
        ),
        "{log_a}"
    );
    assert!(
        has_entry(
            &log_a,
            &actor_a,
            "DELETE /api/v1/servers/{name}",
            "/api/v1/servers/nope",
            "denied"
        ),
        "{log_a}"
    );
    assert!(
        entries(&log_a).iter().any(|e| e["action"] == "auth.login"
            && e["target"] == "aud-a-user"
            && e["outcome"] == "ok"),
        "{log_a}"
    );
    assert!(
        entries(&log_a)
            .iter()
            .all(|e| e["action"] != "GET /api/v1/servers"),
        "reads are not audited: {log_a}"
    );
    let denied = entries(&log_a)
        .iter()
        .find(|e| e["actor"] == "user:aud-a-user")
        .unwrap();
    assert_eq!(denied["detail"], "HTTP 403", "{denied}");
    // The cross-tenant probe is on the prober's own tenant's record, never on the target's.
    assert!(
        entries(&log_a)
            .iter()
            .any(|e| e["actor"] == actor_a.as_str()
                && e["action"] == "POST /api/v1/servers"
                && e["outcome"] == "denied"),
        "{log_a}"
    );
    // Newest first.
    let ids: Vec<i64> = entries(&log_a)
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    let log_b = h.as_(&kb).get("/api/v1/audit").expect(200).await;
    assert!(
        entries(&log_b).iter().all(|e| e["tenant"] == "aud-b"),
        "{log_b}"
    );
    assert!(
        has_entry(
            &log_b,
            &actor_b,
            "POST /api/v1/servers",
            "/api/v1/servers",
            "ok"
        ),
        "{log_b}"
    );
    assert!(
        !log_b.to_string().contains("aud-a-"),
        "nothing of tenant a: {log_b}"
    );
    // A manager may not ask for every tenant; `all` is ignored.
    let log = h.as_(&kb).get("/api/v1/audit?all=true").expect(200).await;
    assert!(
        entries(&log).iter().all(|e| e["tenant"] == "aud-b"),
        "{log}"
    );

    // The admin: the default tenant, one named tenant, or all.
    let log = h.as_(ADMIN).get("/api/v1/audit").expect(200).await;
    assert!(
        entries(&log).iter().all(|e| e["tenant"] == "default"),
        "{log}"
    );
    assert!(
        has_entry(
            &log,
            "admin-token",
            "POST /api/v1/tenants",
            "/api/v1/tenants",
            "ok"
        ),
        "{log}"
    );
    let log = h
        .as_(ADMIN)
        .get("/api/v1/audit")
        .tenant(Some("aud-b"))
        .expect(200)
        .await;
    assert!(
        entries(&log).iter().all(|e| e["tenant"] == "aud-b"),
        "{log}"
    );
    let log = h.as_(ADMIN).get("/api/v1/audit?all=true").expect(200).await;
    let tenants: std::collections::BTreeSet<&str> = entries(&log)
        .iter()
        .map(|e| e["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(
        tenants.into_iter().collect::<Vec<_>>(),
        vec!["aud-a", "aud-b", "default"]
    );
    let log = h
        .as_(ADMIN)
        .get("/api/v1/audit?limit=2")
        .tenant(Some("aud-a"))
        .expect(200)
        .await;
    assert_eq!(entries(&log).len(), 2, "{log}");
    h.stop().await;
}
