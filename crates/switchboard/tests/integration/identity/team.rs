//! The isolation matrix: two tenants built the way an operator would, and what each one's
//! manager, users and keys may see and change of their own tenant and of the other.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use switchboard_fixture::{FixtureOptions, FixtureServer, spawn_http};

use super::*;
use crate::common::*;

/// A user with a key.
struct Member {
    name: String,
    id: String,
    key: String,
    key_id: String,
}

/// One tenant's people and objects.
struct Team {
    tenant: String,
    server: String,
    group: String,
    manager: Member,
    /// The manager's access token.
    manager_jwt: String,
    /// A user with every grant.
    user: Member,
    /// `user`'s key limited to `group`.
    limited_key: String,
    /// A user whose grants are `[group]` only.
    granted: Member,
    /// The tool names the server exports on `/mcp`, sorted.
    tools: Vec<String>,
    fixture: FixtureServer,
}

/// Builds a tenant the way an operator would: the admin creates the tenant and its manager,
/// the manager logs in, creates a key, a user, a server and a group; the users make their own
/// keys.
async fn team(h: &TestApp, tenant: &str, server: &str) -> Team {
    let v = h
        .as_(ADMIN)
        .post("/api/v1/tenants", json!({"name": tenant}))
        .expect(201)
        .await;
    assert_eq!(v["name"], tenant);
    let mgr_name = format!("{tenant}-manager");
    let mgr_id = h
        .user(ADMIN, Some(tenant), &mgr_name, "manager", json!(["*"]))
        .await;
    let (manager_jwt, _) = h.tokens(&mgr_name).await;
    let (mgr_key_id, mgr_key) = h
        .key(&manager_jwt, None, json!({"name": "manager key"}))
        .await;

    let fixture = spawn_http(FixtureOptions::new(server)).await.unwrap();
    let group = format!("{server}-group");
    h.as_(&mgr_key)
        .post(
            "/api/v1/servers",
            json!({"name": server, "type": "streamable-http", "url": fixture.url}),
        )
        .expect(201)
        .await;
    h.as_(&mgr_key)
        .post(
            "/api/v1/groups",
            json!({"name": group, "members": [server]}),
        )
        .expect(201)
        .await;

    let user_name = format!("{tenant}-user");
    let user_id = h
        .user(&mgr_key, None, &user_name, "user", json!(["*"]))
        .await;
    let (user_jwt, _) = h.tokens(&user_name).await;
    let (user_key_id, user_key) = h.key(&user_jwt, None, json!({"name": "mine"})).await;
    let (_, limited_key) = h
        .key(
            &user_key,
            None,
            json!({"name": "limited", "allow": [group]}),
        )
        .await;
    let granted_name = format!("{tenant}-granted");
    let granted_id = h
        .user(&mgr_key, None, &granted_name, "user", json!([group]))
        .await;
    // A manager may make a key for a user of the tenant.
    let (granted_key_id, granted_key) = h
        .key(
            &mgr_key,
            None,
            json!({"name": "for granted", "user_id": granted_id}),
        )
        .await;

    let path = format!("/api/v1/servers/{server}");
    assert!(
        eventually(Duration::from_secs(15), async || {
            h.as_(&mgr_key).get(&path).expect(200).await["status"]["state"] == "ready"
        })
        .await,
        "{server} never became ready"
    );
    let list = h
        .as_(&mgr_key)
        .get(format!("{path}/tools"))
        .expect(200)
        .await;
    let tools = names_in(&list, "tools", "exported_name");
    assert!(tools.contains(&format!("{server}__echo")), "{list}");
    Team {
        tenant: tenant.into(),
        server: server.into(),
        group,
        manager: Member {
            name: mgr_name,
            id: mgr_id,
            key: mgr_key,
            key_id: mgr_key_id,
        },
        manager_jwt,
        user: Member {
            name: user_name,
            id: user_id,
            key: user_key,
            key_id: user_key_id,
        },
        limited_key,
        granted: Member {
            name: granted_name,
            id: granted_id,
            key: granted_key,
            key_id: granted_key_id,
        },
        tools,
        fixture,
    }
}

pub(super) fn names_in(list: &Value, field: &str, key: &str) -> Vec<String> {
    let mut v: Vec<String> = list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Who sends a row of the matrix: a credential of `me` or of `other`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Manager,
    /// The manager's access token.
    ManagerSession,
    User,
    Granted,
    Limited,
    OtherManager,
    OtherUser,
}

/// Whose tenant a row names in `X-Switchboard-Tenant` (none: the credential's own).
#[derive(Clone, Copy, Debug)]
enum Header {
    None,
    Mine,
    Other,
}

/// One row of the matrix: who sends what, and the status the API must answer.
type Row = (Who, &'static str, String, Header, Option<Value>, u16);

/// Sends every row in order; a failure names the row. Returns each row's answer body.
async fn walk(h: &TestApp, me: &Team, other: &Team, rows: &[Row]) -> Vec<Value> {
    let mut bodies = Vec::new();
    for (i, (who, method, path, header, body, status)) in rows.iter().enumerate() {
        let token = match who {
            Who::Manager => &me.manager.key,
            Who::ManagerSession => &me.manager_jwt,
            Who::User => &me.user.key,
            Who::Granted => &me.granted.key,
            Who::Limited => &me.limited_key,
            Who::OtherManager => &other.manager.key,
            Who::OtherUser => &other.user.key,
        };
        let tenant = match header {
            Header::None => None,
            Header::Mine => Some(me.tenant.as_str()),
            Header::Other => Some(other.tenant.as_str()),
        };
        let v = h
            .as_(token)
            .req(method, path)
            .json(body.clone())
            .tenant(tenant)
            .note(format!("{} row {i}: {who:?} {header:?}", me.tenant))
            .expect(*status)
            .await;
        bodies.push(v);
    }
    bodies
}

/// What the people of `me` may see and change, and what of `other` they may not.
async fn check_team(h: &TestApp, me: &Team, other: &Team) {
    use Header::{Mine, None as Own, Other};
    use Who::*;
    let own_srv = format!("/api/v1/servers/{}", me.server);
    let other_srv = format!("/api/v1/servers/{}", other.server);
    let own_grp = format!("/api/v1/groups/{}", me.group);
    let other_grp = format!("/api/v1/groups/{}", other.group);
    let entry =
        json!({"name": other.server, "type": "streamable-http", "url": "http://127.0.0.1:9/mcp"});
    let hide = json!({"description": "changed"});
    let grp = json!({"name": other.group, "members": []});
    let me_user = format!("/api/v1/users/{}", me.user.id);
    let s = |p: &str| p.to_string();

    let mut rows: Vec<Row> = vec![
        // Who is who, by every credential kind.
        (Manager, "GET", s("/api/v1/me"), Own, None, 200),
        (ManagerSession, "GET", s("/api/v1/me"), Own, None, 200),
        (User, "GET", s("/api/v1/me"), Own, None, 200),
        (Granted, "GET", s("/api/v1/me"), Own, None, 200),
        (Limited, "GET", s("/api/v1/me"), Own, None, 200),
    ];
    // Servers: the manager sees and changes their own, never the other tenant's.
    for who in [Manager, ManagerSession] {
        rows.extend([
            (who, "GET", s("/api/v1/servers"), Own, None, 200),
            (who, "GET", own_srv.clone(), Own, None, 200),
            (who, "GET", other_srv.clone(), Own, None, 404),
        ]);
    }
    rows.extend([
        (Manager, "GET", own_srv.clone(), Mine, None, 200),
        (Manager, "GET", s("/api/v1/servers"), Other, None, 404),
        (Manager, "GET", other_srv.clone(), Other, None, 404),
    ]);
    for (method, path, body) in [
        ("PUT", other_srv.clone(), Some(entry.clone())),
        ("POST", format!("{other_srv}/disable"), None),
        ("POST", format!("{other_srv}/restart"), None),
        ("DELETE", other_srv.clone(), None),
    ] {
        rows.push((Manager, method, path.clone(), Own, body.clone(), 404));
        rows.push((Manager, method, path, Other, body, 404));
    }
    rows.extend([
        // Creating a server of the other tenant's name makes one in this tenant, not a clash.
        (
            Manager,
            "POST",
            s("/api/v1/servers"),
            Own,
            Some(entry.clone()),
            201,
        ),
        (Manager, "DELETE", other_srv.clone(), Own, None, 204),
        // Users may not manage servers, not even their own tenant's.
        (User, "GET", s("/api/v1/servers"), Own, None, 403),
        (User, "GET", own_srv.clone(), Own, None, 403),
        (User, "POST", s("/api/v1/servers"), Own, Some(entry), 403),
        (User, "POST", format!("{own_srv}/disable"), Own, None, 403),
        (User, "DELETE", own_srv.clone(), Own, None, 403),
        // Tools of a server.
        (Manager, "GET", format!("{own_srv}/tools"), Own, None, 200),
        (Manager, "GET", format!("{other_srv}/tools"), Own, None, 404),
        (
            Manager,
            "PATCH",
            format!("{other_srv}/tools/echo"),
            Own,
            Some(hide.clone()),
            404,
        ),
        (
            User,
            "PATCH",
            format!("{own_srv}/tools/echo"),
            Own,
            Some(hide.clone()),
            403,
        ),
        (
            Manager,
            "PATCH",
            format!("{own_srv}/tools/echo"),
            Own,
            Some(hide),
            200,
        ),
        (
            Manager,
            "DELETE",
            format!("{own_srv}/tools/echo"),
            Own,
            None,
            204,
        ),
        // Groups.
        (Manager, "GET", s("/api/v1/groups"), Own, None, 200),
        (Manager, "GET", own_grp.clone(), Own, None, 200),
        (Manager, "GET", other_grp.clone(), Own, None, 404),
        (
            Manager,
            "PUT",
            other_grp.clone(),
            Own,
            Some(grp.clone()),
            404,
        ),
        (Manager, "DELETE", other_grp, Own, None, 404),
        (User, "GET", s("/api/v1/groups"), Own, None, 403),
        (User, "POST", s("/api/v1/groups"), Own, Some(grp), 403),
        (User, "DELETE", own_grp, Own, None, 403),
        // Users.
        (Manager, "GET", s("/api/v1/users"), Own, None, 200),
        (Manager, "GET", me_user.clone(), Own, None, 200),
    ]);
    for id in [&other.manager.id, &other.user.id] {
        let path = format!("/api/v1/users/{id}");
        rows.extend([
            (Manager, "GET", path.clone(), Own, None, 404),
            (
                Manager,
                "PATCH",
                path.clone(),
                Own,
                Some(json!({"disabled": true})),
                404,
            ),
            (Manager, "DELETE", path, Own, None, 404),
        ]);
    }
    let boss =
        json!({"username": format!("{}-boss", me.tenant), "password": PASSWORD, "role": "admin"});
    rows.extend([
        (Manager, "POST", s("/api/v1/users"), Own, Some(boss), 403),
        (
            Manager,
            "PATCH",
            me_user.clone(),
            Own,
            Some(json!({"role": "admin"})),
            403,
        ),
        (User, "GET", s("/api/v1/users"), Own, None, 403),
        (User, "GET", me_user.clone(), Own, None, 403),
        (
            User,
            "POST",
            s("/api/v1/users"),
            Own,
            Some(json!({"username": "sneaky", "password": PASSWORD})),
            403,
        ),
        (
            User,
            "PATCH",
            me_user,
            Own,
            Some(json!({"grants": ["*"]})),
            403,
        ),
        // Keys: a manager sees the tenant's, a user their own.
        (Manager, "GET", s("/api/v1/keys"), Own, None, 200),
        (User, "GET", s("/api/v1/keys"), Own, None, 200),
        (User, "GET", s("/api/v1/keys"), Other, None, 404),
    ]);
    for id in [&other.manager.key_id, &other.user.key_id] {
        rows.push((
            Manager,
            "DELETE",
            format!("/api/v1/keys/{id}"),
            Own,
            None,
            404,
        ));
        rows.push((
            Manager,
            "DELETE",
            format!("/api/v1/keys/{id}"),
            Other,
            None,
            404,
        ));
    }
    rows.extend([
        (
            User,
            "DELETE",
            format!("/api/v1/keys/{}", me.manager.key_id),
            Own,
            None,
            404,
        ),
        (
            Manager,
            "POST",
            s("/api/v1/keys"),
            Own,
            Some(json!({"name": "theirs", "user_id": other.user.id})),
            404,
        ),
        (
            User,
            "POST",
            s("/api/v1/keys"),
            Own,
            Some(json!({"name": "colleague's", "user_id": me.granted.id})),
            404,
        ),
        // Tenants.
        (Manager, "GET", s("/api/v1/tenants"), Own, None, 200),
        (
            Manager,
            "POST",
            s("/api/v1/tenants"),
            Own,
            Some(json!({"name": "extra"})),
            403,
        ),
        (
            Manager,
            "DELETE",
            format!("/api/v1/tenants/{}", other.tenant),
            Own,
            None,
            404,
        ),
        (User, "GET", s("/api/v1/tenants"), Own, None, 403),
        // Audit.
        (User, "GET", s("/api/v1/audit"), Own, None, 403),
        (Manager, "GET", s("/api/v1/audit"), Other, None, 404),
        // The seed's routes act on the caller's tenant.
        (Manager, "GET", s("/api/mcp/list"), Own, None, 200),
    ]);
    let bodies = walk(h, me, other, &rows).await;
    // The answers the rows above only fetched, checked now (the rows ran in this order).
    let got = |who: Who, method: &str, path: &str| -> &Value {
        let i = rows
            .iter()
            .position(|r| r.0 == who && r.1 == method && r.2 == path && matches!(r.3, Own))
            .unwrap_or_else(|| panic!("no row {who:?} {method} {path}"));
        &bodies[i]
    };
    for (who, name, role, credential) in [
        (Manager, &me.manager.name, "manager", "api-key"),
        (ManagerSession, &me.manager.name, "manager", "session"),
        (User, &me.user.name, "user", "api-key"),
        (Granted, &me.granted.name, "user", "api-key"),
    ] {
        let v = got(who, "GET", "/api/v1/me");
        assert_eq!(
            (
                v["tenant"].as_str(),
                v["username"].as_str(),
                v["role"].as_str(),
                v["credential"].as_str()
            ),
            (
                Some(me.tenant.as_str()),
                Some(name.as_str()),
                Some(role),
                Some(credential)
            ),
            "{v}"
        );
    }
    let v = got(Limited, "GET", "/api/v1/me");
    assert_eq!(v["key_allow"], json!([me.group]), "{v}");
    for who in [Manager, ManagerSession] {
        let list = got(who, "GET", "/api/v1/servers");
        assert_eq!(names_in(list, "servers", "name"), vec![me.server.clone()]);
    }
    let tools = got(Manager, "GET", &format!("{own_srv}/tools"));
    assert!(
        names_in(tools, "tools", "name").contains(&"echo".to_string()),
        "{tools}"
    );
    let v = got(Manager, "PATCH", &format!("{own_srv}/tools/echo"));
    assert_eq!(v["description_override"], "changed", "{v}");
    let list = got(Manager, "GET", "/api/v1/groups");
    assert_eq!(names_in(list, "groups", "name"), vec![me.group.clone()]);
    let list = got(Manager, "GET", "/api/v1/users");
    let mut want = vec![
        me.manager.name.clone(),
        me.user.name.clone(),
        me.granted.name.clone(),
    ];
    want.sort();
    assert_eq!(names_in(list, "users", "username"), want);
    assert!(
        !list.to_string().contains("argon2"),
        "no password hashes: {list}"
    );
    let list = got(Manager, "GET", "/api/v1/keys");
    let keys = list["keys"].as_array().unwrap();
    assert!(
        keys.iter().all(|k| k["tenant"] == me.tenant.as_str()),
        "{list}"
    );
    let ids: Vec<&str> = keys.iter().map(|k| k["id"].as_str().unwrap()).collect();
    for id in [&me.manager.key_id, &me.user.key_id, &me.granted.key_id] {
        assert!(ids.contains(&id.as_str()), "{id} in {list}");
    }
    assert_eq!(keys.len(), 4, "{list}");
    assert!(
        keys.iter().all(|k| k.get("key").is_none()),
        "secrets are shown once: {list}"
    );
    let list = got(User, "GET", "/api/v1/keys");
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the user's own two keys: {list}");
    assert!(
        keys.iter().all(|k| k["user_id"] == me.user.id.as_str()),
        "{list}"
    );
    let list = got(Manager, "GET", "/api/v1/tenants");
    assert_eq!(names_in(list, "tenants", "name"), vec![me.tenant.clone()]);
    let text = got(Manager, "GET", "/api/mcp/list").to_string();
    assert!(
        text.contains(&me.server) && !text.contains(&other.server),
        "{text}"
    );

    // Proxy sessions belong to the tenant that opened them.
    let s = h
        .as_(&me.manager.key)
        .post("/api/v1/server", json!({"remote_url": me.fixture.url}))
        .expect(200)
        .await;
    let sid = s["session_id"].as_str().unwrap();
    let spath = format!("/api/v1/server/{sid}");
    let mut rows: Vec<Row> = vec![(Manager, "GET", spath.clone(), Own, None, 200)];
    for who in [OtherManager, OtherUser] {
        rows.extend([
            (who, "GET", spath.clone(), Own, None, 404),
            (who, "GET", format!("{spath}/tools"), Own, None, 404),
            (who, "DELETE", spath.clone(), Own, None, 404),
        ]);
    }
    rows.push((Manager, "DELETE", spath, Own, None, 200));
    walk(h, me, other, &rows).await;

    check_mcp(h, me, other).await;
}

/// MCP: each credential sees its own tenant, filtered by grants and allowlists.
async fn check_mcp(h: &TestApp, me: &Team, other: &Team) {
    let (mgr, usr) = (me.manager.key.as_str(), me.user.key.as_str());
    let tools = me.tools.clone();
    // A server's own endpoint uses the server's own tool names.
    let prefix = format!("{}__", me.server);
    let bare: Vec<String> = tools
        .iter()
        .map(|t| t.strip_prefix(&prefix).unwrap().to_string())
        .collect();
    for token in [mgr, me.manager_jwt.as_str(), usr] {
        assert_eq!(h.mcp_tools("/mcp", token).await, tools);
        assert_eq!(
            h.mcp_tools(&format!("/mcp/{}", me.server), token).await,
            bare
        );
    }
    for token in [&me.limited_key, &me.granted.key] {
        assert_eq!(
            h.mcp_tools(&format!("/mcp/{}", me.group), token).await,
            tools
        );
        let a = h
            .mcp_status(h.main, &format!("/mcp/{}", me.server), Some(token))
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
        assert_eq!(a.body["error"], "not_found", "{}", a.body);
        let a = h.mcp_status(h.main, "/mcp", Some(token)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert_eq!(a.body["error"], "forbidden", "{}", a.body);
        assert!(
            a.body["message"].as_str().unwrap().contains(&me.group),
            "{}",
            a.body
        );
    }
    // The other tenant's endpoints do not exist for this tenant's keys (on both services).
    for addr in [h.main, h.mcp] {
        for path in [
            format!("/mcp/{}", other.server),
            format!("/mcp/{}", other.group),
        ] {
            let a = h.mcp_status(addr, &path, Some(usr)).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.body);
        }
    }
    assert_eq!(
        mcp_tools_at(&format!("http://{}/mcp", h.mcp), Some(usr)).await,
        tools,
        "a credential on the MCP service selects its tenant"
    );
}

/// The isolation matrix on one hub.
async fn isolation_matrix(h: &TestApp) {
    let a = team(h, "team-a", "alpha").await;
    let b = team(h, "team-b", "beta").await;
    check_team(h, &a, &b).await;
    check_team(h, &b, &a).await;

    // The admin token acts on any tenant through the header, on the default one without.
    for t in [&a, &b] {
        let list = h
            .as_(ADMIN)
            .get("/api/v1/servers")
            .tenant(Some(&t.tenant))
            .expect(200)
            .await;
        assert_eq!(names_in(&list, "servers", "name"), vec![t.server.clone()]);
        let list = h
            .as_(ADMIN)
            .get("/api/v1/users")
            .tenant(Some(&t.tenant))
            .expect(200)
            .await;
        assert_eq!(list["users"].as_array().unwrap().len(), 3, "{list}");
        let list = h
            .as_(ADMIN)
            .get("/api/v1/keys")
            .tenant(Some(&t.tenant))
            .expect(200)
            .await;
        assert_eq!(list["keys"].as_array().unwrap().len(), 4, "{list}");
        let v = h
            .as_(ADMIN)
            .get(format!("/api/v1/servers/{}", t.server))
            .tenant(Some(&t.tenant))
            .expect(200)
            .await;
        assert_eq!(v["enabled"], true, "nobody else changed it: {v}");
    }
    let list = h.as_(ADMIN).get("/api/v1/servers").expect(200).await;
    assert_eq!(list["servers"], json!([]), "{list}");
    h.as_(ADMIN)
        .get("/api/v1/servers")
        .tenant(Some("nope"))
        .expect(404)
        .await;
    let list = h.as_(ADMIN).get("/api/v1/tenants").expect(200).await;
    assert_eq!(
        names_in(&list, "tenants", "name"),
        vec!["default", "team-a", "team-b"]
    );
    // Admin writes in another tenant, then the tenant's manager sees the result.
    h.as_(ADMIN)
        .post(
            "/api/v1/groups",
            json!({"name": "by-admin", "members": [b.server]}),
        )
        .tenant(Some(&b.tenant))
        .expect(201)
        .await;
    h.as_(&b.manager.key)
        .get("/api/v1/groups/by-admin")
        .expect(200)
        .await;
    h.as_(&a.manager.key)
        .get("/api/v1/groups/by-admin")
        .expect(404)
        .await;
    h.as_(ADMIN)
        .delete("/api/v1/groups/by-admin")
        .tenant(Some(&b.tenant))
        .expect(204)
        .await;
    // A tenant with servers cannot be deleted.
    h.as_(ADMIN)
        .delete("/api/v1/tenants/team-b")
        .expect(409)
        .await;

    // Without a credential the loopback MCP service serves the default tenant: neither team.
    assert_eq!(
        mcp_tools_at(&format!("http://{}/mcp", h.mcp), None).await,
        Vec::<String>::new()
    );
    let a_ = h.mcp_status(h.mcp, "/mcp/alpha", None).await;
    assert_eq!(a_.status, StatusCode::NOT_FOUND, "{}", a_.body);
    // The admin token on MCP is the default tenant too.
    assert_eq!(h.mcp_tools("/mcp", ADMIN).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_matrix_sqlite() {
    let h = sqlite().await;
    isolation_matrix(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_matrix_postgres() {
    let h = hub().postgres("identity").start().await;
    isolation_matrix(&h).await;
    h.stop().await;
}
