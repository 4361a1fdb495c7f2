//! The store contract: one suite, run against SQLite (a file and `:memory:`) and PostgreSQL.
//!
//! PostgreSQL is expected at `postgres://postgres@127.0.0.1:5432` (override with
//! `SWITCHBOARD_TEST_PG_URL`, without a database path). Each run creates its own database and
//! drops it afterwards, even when the test fails. An unreachable server fails the test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use switchboard_store::{
    ActivityQuery, ActivityRow, ApiKeyRecord, AuditQuery, AuditRecord, GroupRecord, ItemKind,
    ItemSetting, RateLimit, RefreshRecord, Role, SecretKey, ServerRecord, SessionRecord, Store,
    StoreError, TenantRecord, ToolPin, TransportRecord, UserRecord, open,
};

#[path = "contract/activity.rs"]
mod activity;
use activity::activity;

// ---------------------------------------------------------------------------------------------
// Fixtures

const HEADER_SECRET: &str = "header-secret-7f3a9c";
const HEADER_NAME: &str = "X-Probe-Authorization";
const ENV_SECRET: &str = "env-secret-51b2e0";
const ENV_NAME: &str = "PROBE_API_TOKEN";

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes([byte; 32])
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn server(tenant: &str, name: &str, transport: TransportRecord) -> ServerRecord {
    ServerRecord {
        tenant: tenant.into(),
        name: name.into(),
        transport,
        enabled: true,
        timeout_secs: 30.5,
        session_mode: "shared".into(),
        created_by: "alice".into(),
        created_at: 1_700_000_000_123,
        updated_by: "alice".into(),
        updated_at: 1_700_000_000_123,
        protocol: "auto".into(),
        origin: switchboard_store::ORIGIN_API.into(),
        max_result_bytes: None,
    }
}

fn stdio(tenant: &str, name: &str) -> ServerRecord {
    let transport = TransportRecord::Stdio {
        command: "/usr/bin/mcp-files".into(),
        args: vec!["--root".into(), "/srv data".into()],
        env: map(&[(ENV_NAME, ENV_SECRET), ("LANG", "C.UTF-8")]),
        cwd: Some("/srv".into()),
    };
    server(tenant, name, transport)
}

fn http(tenant: &str, name: &str) -> ServerRecord {
    let headers = map(&[(HEADER_NAME, HEADER_SECRET), ("Accept", "application/json")]);
    server(
        tenant,
        name,
        TransportRecord::StreamableHttp {
            url: "https://mcp.example/mcp".into(),
            headers,
        },
    )
}

fn sse(tenant: &str, name: &str) -> ServerRecord {
    let mut record = server(
        tenant,
        name,
        TransportRecord::Sse {
            url: "http://127.0.0.1:9/sse".into(),
            headers: BTreeMap::new(),
        },
    );
    // Owned by the servers file: inserts keep the owner too.
    record.origin = switchboard_store::ORIGIN_FILE.into();
    record
}

fn group(tenant: &str, name: &str, members: &[&str], tools: Option<&[&str]>) -> GroupRecord {
    GroupRecord {
        tenant: tenant.into(),
        name: name.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        tools: tools.map(|t| t.iter().map(|s| s.to_string()).collect()),
    }
}

fn setting(tenant: &str, server: &str, kind: ItemKind, name: &str) -> ItemSetting {
    ItemSetting {
        tenant: tenant.into(),
        server: server.into(),
        kind,
        name: name.into(),
        enabled: false,
        description: Some("overridden".into()),
        rename: None,
    }
}

fn names_of(servers: &[ServerRecord]) -> Vec<(&str, &str)> {
    servers
        .iter()
        .map(|s| (s.tenant.as_str(), s.name.as_str()))
        .collect()
}

/// Follows the revision: every successful write must raise it, reads and no-ops must not.
struct Rev {
    store: Arc<dyn Store>,
    last: i64,
}

impl Rev {
    async fn new(store: &Arc<dyn Store>) -> Self {
        let last = store.revision().await.unwrap();
        Rev {
            store: store.clone(),
            last,
        }
    }

    async fn bumped(&mut self, what: &str) {
        let now = self.store.revision().await.unwrap();
        assert!(
            now > self.last,
            "{what}: revision {now} did not rise above {}",
            self.last
        );
        self.last = now;
    }

    async fn same(&mut self, what: &str) {
        assert_eq!(
            self.store.revision().await.unwrap(),
            self.last,
            "{what}: revision moved"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The contract

async fn contract(store: Arc<dyn Store>) {
    servers(&store).await;
    shared_namespace(&store).await;
    groups(&store).await;
    item_settings(&store).await;
    delete_cascades(&store).await;
    meta(&store).await;
    tenant_isolation(&store).await;
    concurrent_claims(&store).await;
    identity(&store).await;
    sessions(&store).await;
    tool_pins(&store).await;
    activity(&store).await;
    ended_sessions(&store).await;
}

async fn ended_sessions(store: &Arc<dyn Store>) {
    let mut rev = Rev::new(store).await;
    assert_eq!(store.ended_client_sessions(0).await.unwrap(), vec![]);
    store.end_client_session("t1", "aa", 1_000).await.unwrap();
    store.end_client_session("t1", "aa", 5_000).await.unwrap();
    store.end_client_session("t2", "aa", 2_000).await.unwrap();
    store.end_client_session("t1", "bb", 3_000).await.unwrap();
    rev.same("ending client sessions is not a configuration change")
        .await;
    let mut all = store.ended_client_sessions(0).await.unwrap();
    all.sort();
    let pair = |t: &str, h: &str| (t.to_string(), h.to_string());
    assert_eq!(
        all,
        vec![pair("t1", "aa"), pair("t1", "bb"), pair("t2", "aa")]
    );
    let mut recent = store.ended_client_sessions(2_000).await.unwrap();
    recent.sort();
    assert_eq!(
        recent,
        vec![pair("t1", "bb"), pair("t2", "aa")],
        "the first time counts"
    );
    assert_eq!(store.forget_ended_sessions_before(2_500).await.unwrap(), 2);
    assert_eq!(
        store.ended_client_sessions(0).await.unwrap(),
        vec![pair("t1", "bb")]
    );
}

async fn servers(store: &Arc<dyn Store>) {
    let mut rev = Rev::new(store).await;
    let t = "servers";
    assert!(store.list_servers(t).await.unwrap().is_empty());
    for record in [stdio(t, "s-stdio"), sse(t, "a-sse"), http(t, "m-http")] {
        store.insert_server(&record).await.unwrap();
        rev.bumped("insert_server").await;
        assert_eq!(
            store.get_server(t, &record.name).await.unwrap(),
            Some(record.clone())
        );
    }
    let listed = store.list_servers(t).await.unwrap();
    assert_eq!(
        names_of(&listed),
        [(t, "a-sse"), (t, "m-http"), (t, "s-stdio")]
    );
    assert_eq!(listed[1], http(t, "m-http"));
    assert_eq!(store.get_server(t, "missing").await.unwrap(), None);
    rev.same("reads").await;

    let duplicate = store.insert_server(&http(t, "s-stdio")).await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict)),
        "{duplicate:?}"
    );
    rev.same("conflicting insert").await;
    assert_eq!(
        store.get_server(t, "s-stdio").await.unwrap(),
        Some(stdio(t, "s-stdio"))
    );

    update_server(store, &mut rev, t).await;
}

async fn update_server(store: &Arc<dyn Store>, rev: &mut Rev, t: &str) {
    let mut changed = http(t, "s-stdio");
    changed.enabled = false;
    changed.timeout_secs = 2.25;
    changed.session_mode = "per-client".into();
    changed.created_by = "mallory".into();
    changed.created_at = 1;
    changed.updated_by = "bob".into();
    changed.updated_at = 1_800_000_000_000;
    changed.origin = switchboard_store::ORIGIN_FILE.into();
    store.update_server(&changed).await.unwrap();
    rev.bumped("update_server").await;

    let stored = store.get_server(t, "s-stdio").await.unwrap().unwrap();
    let expected = ServerRecord {
        created_by: "alice".into(),
        created_at: 1_700_000_000_123,
        ..changed
    };
    assert_eq!(stored, expected, "update replaces everything but created_*");
    assert_eq!(stored.origin, "file", "the owner is stored and read back");

    let missing = store.update_server(&stdio(t, "nope")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    rev.same("update of a missing server").await;
    assert!(!store.delete_server(t, "nope").await.unwrap());
    rev.same("delete of a missing server").await;
    assert!(store.delete_server(t, "a-sse").await.unwrap());
    rev.bumped("delete_server").await;
    assert_eq!(store.get_server(t, "a-sse").await.unwrap(), None);
    assert!(!store.delete_server(t, "a-sse").await.unwrap());
}

async fn shared_namespace(store: &Arc<dyn Store>) {
    let mut rev = Rev::new(store).await;
    let t = "namespace";
    store
        .insert_server(&stdio(t, "taken-by-server"))
        .await
        .unwrap();
    store
        .insert_group(&group(t, "taken-by-group", &[], None))
        .await
        .unwrap();
    rev.bumped("inserts").await;

    let clash = store
        .insert_group(&group(t, "taken-by-server", &[], None))
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict)),
        "group over server: {clash:?}"
    );
    let clash = store.insert_server(&sse(t, "taken-by-group")).await;
    assert!(
        matches!(clash, Err(StoreError::Conflict)),
        "server over group: {clash:?}"
    );
    let clash = store
        .insert_group(&group(t, "taken-by-group", &[], None))
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict)),
        "group over group: {clash:?}"
    );
    rev.same("conflicts").await;

    // Deleting the owner frees the name for the other kind.
    assert!(store.delete_group(t, "taken-by-group").await.unwrap());
    store
        .insert_server(&sse(t, "taken-by-group"))
        .await
        .unwrap();
    assert!(store.delete_server(t, "taken-by-server").await.unwrap());
    store
        .insert_group(&group(t, "taken-by-server", &[], None))
        .await
        .unwrap();
    // Deleting a group by a server's name (or the reverse) touches nothing.
    assert!(!store.delete_group(t, "taken-by-group").await.unwrap());
    assert!(!store.delete_server(t, "taken-by-server").await.unwrap());
    assert!(
        store
            .get_server(t, "taken-by-group")
            .await
            .unwrap()
            .is_some()
    );
}

async fn groups(store: &Arc<dyn Store>) {
    let mut rev = Rev::new(store).await;
    let t = "groups";
    assert!(store.list_groups(t).await.unwrap().is_empty());
    let narrowed = group(t, "b-narrow", &["x", "y"], Some(&["x__read", "y__write"]));
    let open_group = group(t, "a-open", &["y", "x"], None);
    let empty_filter = group(t, "c-none", &[], Some(&[]));
    for record in [&narrowed, &open_group, &empty_filter] {
        store.insert_group(record).await.unwrap();
        rev.bumped("insert_group").await;
    }
    let expected = vec![open_group.clone(), narrowed.clone(), empty_filter];
    assert_eq!(store.list_groups(t).await.unwrap(), expected);
    rev.same("list_groups").await;

    let widened = GroupRecord {
        tools: None,
        members: vec!["z".into()],
        ..narrowed.clone()
    };
    store.update_group(&widened).await.unwrap();
    rev.bumped("update_group").await;
    let listed = store.list_groups(t).await.unwrap();
    assert_eq!(listed[1], widened);

    let missing = store.update_group(&group(t, "ghost", &[], None)).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert!(!store.delete_group(t, "ghost").await.unwrap());
    rev.same("missing group").await;
    assert!(store.delete_group(t, "a-open").await.unwrap());
    rev.bumped("delete_group").await;
    assert_eq!(store.list_groups(t).await.unwrap().len(), 2);
}

async fn item_settings(store: &Arc<dyn Store>) {
    let t = "settings";
    store.insert_server(&stdio(t, "srv")).await.unwrap();
    let mut rev = Rev::new(store).await;
    assert!(store.list_item_settings(t, "srv").await.unwrap().is_empty());

    let tool = setting(t, "srv", ItemKind::Tool, "read");
    let prompt = ItemSetting {
        enabled: true,
        description: None,
        rename: Some("ask".into()),
        ..setting(t, "srv", ItemKind::Prompt, "question")
    };
    let tool_b = setting(t, "srv", ItemKind::Tool, "delete");
    for s in [&tool, &prompt, &tool_b] {
        store.upsert_item_setting(s).await.unwrap();
        rev.bumped("upsert_item_setting").await;
    }
    let listed = store.list_item_settings(t, "srv").await.unwrap();
    assert_eq!(
        listed,
        [prompt.clone(), tool_b.clone(), tool.clone()],
        "ordered by kind, then name"
    );

    let replaced = ItemSetting {
        enabled: true,
        description: None,
        rename: Some("fetch".into()),
        ..tool.clone()
    };
    store.upsert_item_setting(&replaced).await.unwrap();
    rev.bumped("upsert replacing").await;
    let listed = store.list_item_settings(t, "srv").await.unwrap();
    assert_eq!(listed, [prompt.clone(), tool_b.clone(), replaced]);

    assert!(
        store
            .delete_item_setting(t, "srv", ItemKind::Tool, "delete")
            .await
            .unwrap()
    );
    rev.bumped("delete_item_setting").await;
    assert!(
        !store
            .delete_item_setting(t, "srv", ItemKind::Tool, "delete")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_item_setting(t, "srv", ItemKind::Prompt, "read")
            .await
            .unwrap(),
        "kind is part of the key"
    );
    rev.same("deleting absent settings").await;
    assert_eq!(store.list_item_settings(t, "srv").await.unwrap().len(), 2);

    let orphan = store
        .upsert_item_setting(&setting(t, "no-such-server", ItemKind::Tool, "x"))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound)),
        "setting for a missing server: {orphan:?}"
    );
    rev.same("orphan setting").await;
}

async fn delete_cascades(store: &Arc<dyn Store>) {
    let t = "cascade";
    for name in ["keep", "gone"] {
        store.insert_server(&stdio(t, name)).await.unwrap();
        store
            .upsert_item_setting(&setting(t, name, ItemKind::Tool, "t"))
            .await
            .unwrap();
    }
    store
        .insert_group(&group(t, "both", &["gone", "keep", "gone"], Some(&["t"])))
        .await
        .unwrap();
    store
        .insert_group(&group(t, "only-gone", &["gone"], None))
        .await
        .unwrap();
    store
        .insert_group(&group(t, "only-keep", &["keep"], None))
        .await
        .unwrap();
    let other_tenant = group("cascade-other", "g", &["gone"], None);
    store.insert_group(&other_tenant).await.unwrap();

    assert!(store.delete_server(t, "gone").await.unwrap());
    assert!(
        store
            .list_item_settings(t, "gone")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_item_settings(t, "keep").await.unwrap().len(), 1);
    let expected = vec![
        group(t, "both", &["keep"], Some(&["t"])),
        group(t, "only-gone", &[], None),
        group(t, "only-keep", &["keep"], None),
    ];
    assert_eq!(store.list_groups(t).await.unwrap(), expected);
    assert_eq!(
        store.list_groups("cascade-other").await.unwrap(),
        [other_tenant]
    );

    // A server re-created under the same name starts without the old settings.
    store.insert_server(&stdio(t, "gone")).await.unwrap();
    assert!(
        store
            .list_item_settings(t, "gone")
            .await
            .unwrap()
            .is_empty()
    );
}

fn pin(tenant: &str, server: &str, tool: &str, hash: &str) -> ToolPin {
    ToolPin {
        tenant: tenant.into(),
        server: server.into(),
        tool: tool.into(),
        hash: hash.into(),
        definition: format!(r#"{{"description":"d-{hash}","name":"{tool}"}}"#),
        approved_by: "first-use".into(),
        approved_at: 1_700_000_000_456,
    }
}

async fn tool_pins(store: &Arc<dyn Store>) {
    let mut rev = Rev::new(store).await;
    let t = "pins";
    // Only an existing server can be pinned; a refused write leaves the revision alone.
    let err = store
        .put_tool_pins(t, "absent", &[pin(t, "absent", "echo", "aa")], &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    rev.same("pinning a missing server").await;

    for name in ["fx", "other"] {
        store.insert_server(&http(t, name)).await.unwrap();
    }
    store
        .insert_server(&http("pins-other", "fx"))
        .await
        .unwrap();
    rev.bumped("servers").await;
    assert!(store.list_tool_pins(t, "fx").await.unwrap().is_empty());

    let first = [
        pin(t, "fx", "", "marker"),
        pin(t, "fx", "echo", "aa"),
        pin(t, "fx", "add", "bb"),
    ];
    store.put_tool_pins(t, "fx", &first, &[]).await.unwrap();
    rev.bumped("put_tool_pins").await;
    store
        .put_tool_pins(t, "other", &[pin(t, "other", "echo", "cc")], &[])
        .await
        .unwrap();
    store
        .put_tool_pins(
            "pins-other",
            "fx",
            &[pin("pins-other", "fx", "echo", "dd")],
            &[],
        )
        .await
        .unwrap();
    // By tool name, the marker first, definitions as written.
    let listed = store.list_tool_pins(t, "fx").await.unwrap();
    assert_eq!(
        listed,
        [first[0].clone(), first[2].clone(), first[1].clone()]
    );
    assert_eq!(
        store.list_tool_pin_hashes(t).await.unwrap(),
        [
            ("fx".to_string(), "".to_string(), "marker".to_string()),
            ("fx".into(), "add".into(), "bb".into()),
            ("fx".into(), "echo".into(), "aa".into()),
            ("other".into(), "echo".into(), "cc".into()),
        ]
    );
    assert_eq!(
        store.list_tool_pin_hashes("pins-other").await.unwrap(),
        [("fx".to_string(), "echo".to_string(), "dd".to_string())]
    );

    // Re-pinning replaces one tool's pin and removes another's, in one write.
    let mut repinned = pin(t, "fx", "echo", "ee");
    repinned.approved_by = "user:ana".into();
    repinned.approved_at = 1_700_000_000_999;
    store
        .put_tool_pins(
            t,
            "fx",
            std::slice::from_ref(&repinned),
            &["add".to_string()],
        )
        .await
        .unwrap();
    rev.bumped("re-pin").await;
    assert_eq!(
        store.list_tool_pins(t, "fx").await.unwrap(),
        [first[0].clone(), repinned]
    );

    // Deleting a server deletes its pins (and only its, in its tenant); a server re-created
    // under the same name starts unpinned.
    assert!(store.delete_server(t, "fx").await.unwrap());
    assert!(store.list_tool_pins(t, "fx").await.unwrap().is_empty());
    assert_eq!(store.list_tool_pins(t, "other").await.unwrap().len(), 1);
    assert_eq!(
        store
            .list_tool_pins("pins-other", "fx")
            .await
            .unwrap()
            .len(),
        1
    );
    store.insert_server(&http(t, "fx")).await.unwrap();
    assert!(store.list_tool_pins(t, "fx").await.unwrap().is_empty());
}

async fn meta(store: &Arc<dyn Store>) {
    let mut rev = Rev::new(store).await;
    assert_eq!(store.get_meta("admin_token_hash").await.unwrap(), None);
    rev.same("get_meta").await;
    store.set_meta("admin_token_hash", "first").await.unwrap();
    rev.bumped("set_meta").await;
    assert_eq!(
        store.get_meta("admin_token_hash").await.unwrap().as_deref(),
        Some("first")
    );
    store.set_meta("admin_token_hash", "second").await.unwrap();
    rev.bumped("set_meta overwrite").await;
    store.set_meta("other", "").await.unwrap();
    assert_eq!(
        store.get_meta("admin_token_hash").await.unwrap().as_deref(),
        Some("second")
    );
    assert_eq!(store.get_meta("other").await.unwrap().as_deref(), Some(""));
}

async fn tenant_isolation(store: &Arc<dyn Store>) {
    store
        .insert_server(&http("a", "shared-name"))
        .await
        .unwrap();
    store
        .insert_group(&group("a", "team", &["shared-name"], None))
        .await
        .unwrap();
    store
        .upsert_item_setting(&setting("a", "shared-name", ItemKind::Tool, "t"))
        .await
        .unwrap();

    assert!(store.list_servers("b").await.unwrap().is_empty());
    assert_eq!(store.get_server("b", "shared-name").await.unwrap(), None);
    assert!(store.list_groups("b").await.unwrap().is_empty());
    assert!(
        store
            .list_item_settings("b", "shared-name")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.update_server(&http("b", "shared-name")).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_group(&group("b", "team", &[], None)).await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.delete_server("b", "shared-name").await.unwrap());
    assert!(!store.delete_group("b", "team").await.unwrap());
    assert!(
        !store
            .delete_item_setting("b", "shared-name", ItemKind::Tool, "t")
            .await
            .unwrap()
    );

    // The same names are free in tenant b, crosswise too.
    store
        .insert_group(&group("b", "shared-name", &[], None))
        .await
        .unwrap();
    store.insert_server(&sse("b", "team")).await.unwrap();
    assert_eq!(
        store.get_server("a", "shared-name").await.unwrap(),
        Some(http("a", "shared-name"))
    );
    assert_eq!(
        store.list_groups("a").await.unwrap(),
        [group("a", "team", &["shared-name"], None)]
    );
    everything_listed(store).await;
}

/// The `list_all_*` methods see every tenant, ordered by tenant then name.
async fn everything_listed(store: &Arc<dyn Store>) {
    let servers = store.list_all_servers().await.unwrap();
    let keys = names_of(&servers);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(keys.contains(&("a", "shared-name")) && keys.contains(&("b", "team")));
    assert!(keys.contains(&("servers", "m-http")));

    let groups = store.list_all_groups().await.unwrap();
    let keys: Vec<_> = groups
        .iter()
        .map(|g| (g.tenant.as_str(), g.name.as_str()))
        .collect();
    assert!(keys.contains(&("a", "team")) && keys.contains(&("b", "shared-name")));
    assert!(keys.is_sorted());

    let settings = store.list_all_item_settings().await.unwrap();
    let keys: Vec<_> = settings
        .iter()
        .map(|s| {
            (
                s.tenant.as_str(),
                s.server.as_str(),
                s.kind.as_str(),
                s.name.as_str(),
            )
        })
        .collect();
    assert!(keys.contains(&("a", "shared-name", "tool", "t")));
    assert!(keys.contains(&("settings", "srv", "prompt", "question")));
    assert!(keys.is_sorted());
}

/// Racing inserts of one name, as server and as group: exactly one wins.
async fn concurrent_claims(store: &Arc<dyn Store>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store.insert_server(&sse("race", "contested")).await
                } else {
                    store
                        .insert_group(&group("race", "contested", &[], None))
                        .await
                }
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("racing insert failed with {other:?}"),
        }
    }
    assert_eq!(wins, 1);
}

fn session(tenant: &str, id_hash: &str, prefix: &str, expires_at: i64) -> SessionRecord {
    SessionRecord {
        tenant: tenant.into(),
        id_hash: id_hash.into(),
        prefix: prefix.into(),
        remote_url: "https://remote.example/mcp".into(),
        transport: "streamable-http".into(),
        headers: map(&[
            (HEADER_NAME, HEADER_SECRET),
            ("Authorization", "Bearer tok-9"),
        ]),
        ttl_secs: 1800,
        created_by: "alice".into(),
        created_at: 1_700_000_000_000,
        expires_at,
    }
}

/// Sessions: keyed by tenant and id hash, prefixes unique per tenant, expiry moves, deletes
/// report whether they removed something, and none of it touches the revision.
async fn sessions(store: &Arc<dyn Store>) {
    let mut rev = Rev::new(store).await;
    let a = session("sa", "h1", "s000000000001", 2_000);
    store.insert_session(&a).await.unwrap();
    store
        .insert_session(&session("sa", "h2", "s000000000002", 1_000))
        .await
        .unwrap();
    rev.same("session insert").await;
    assert_eq!(
        store.get_session("sa", "h1").await.unwrap(),
        Some(a.clone())
    );
    // Ordered by expiry.
    let listed: Vec<String> = store
        .list_sessions("sa")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id_hash)
        .collect();
    assert_eq!(listed, ["h2", "h1"]);
    // Same id or same prefix within a tenant: conflict. Another tenant may reuse both.
    assert!(matches!(
        store
            .insert_session(&session("sa", "h1", "s000000000009", 1))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .insert_session(&session("sa", "h3", "s000000000001", 1))
            .await,
        Err(StoreError::Conflict)
    ));
    store
        .insert_session(&session("sb", "h1", "s000000000001", 5))
        .await
        .unwrap();
    // Tenants do not see each other's sessions.
    assert_eq!(store.get_session("sb", "h2").await.unwrap(), None);
    assert!(!store.delete_session("sb", "h2").await.unwrap());
    assert!(!store.set_session_expiry("sb", "h2", 9).await.unwrap());
    assert_eq!(store.list_sessions("sb").await.unwrap().len(), 1);
    // Expiry moves; deletes are reported once.
    assert!(store.set_session_expiry("sa", "h1", 9_999).await.unwrap());
    assert_eq!(
        store
            .get_session("sa", "h1")
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        9_999
    );
    assert!(store.delete_session("sa", "h1").await.unwrap());
    assert!(!store.delete_session("sa", "h1").await.unwrap());
    assert!(!store.set_session_expiry("sa", "h1", 1).await.unwrap());
    assert_eq!(store.get_session("sa", "h1").await.unwrap(), None);
    rev.same("session writes").await;
    assert!(store.delete_session("sa", "h2").await.unwrap());
    assert!(store.delete_session("sb", "h1").await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Secrets at rest (needs a database a second connection can reach)

async fn secrets_at_rest(url: &str, store: &Arc<dyn Store>) {
    store.insert_server(&http("rest", "web")).await.unwrap();
    store.insert_server(&stdio("rest", "local")).await.unwrap();
    let raw = raw_secret_columns(url).await;
    assert_eq!(raw.len(), 2);
    for text in &raw {
        assert!(text.starts_with("v1:"), "sealed format: {text}");
        for clear in [HEADER_SECRET, HEADER_NAME, ENV_SECRET, ENV_NAME] {
            assert!(!text.contains(clear), "{clear} stored in clear");
        }
    }

    // Session headers (with the token's Authorization header) are sealed the same way.
    store
        .insert_session(&session("rest", "hx", "s0000000000aa", 1))
        .await
        .unwrap();
    let sealed = raw_session_headers(url).await;
    assert!(sealed.starts_with("v1:"), "sealed format: {sealed}");
    for clear in [HEADER_SECRET, HEADER_NAME, "tok-9", "Authorization"] {
        assert!(!sealed.contains(clear), "{clear} stored in clear");
    }

    let reopened = open(url, key(1)).await.expect("reopen with the right key");
    assert_eq!(
        reopened.get_session("rest", "hx").await.unwrap(),
        Some(session("rest", "hx", "s0000000000aa", 1))
    );
    assert_eq!(
        reopened.get_server("rest", "web").await.unwrap(),
        Some(http("rest", "web"))
    );
    let wrong = open(url, key(2)).await.expect("opening needs no key");
    for name in ["web", "local"] {
        let read = wrong.get_server("rest", name).await;
        assert!(
            matches!(read, Err(StoreError::Crypto(_))),
            "wrong key on {name}: {read:?}"
        );
    }
    assert!(matches!(
        wrong.list_all_servers().await,
        Err(StoreError::Crypto(_))
    ));
    assert!(matches!(
        wrong.get_session("rest", "hx").await,
        Err(StoreError::Crypto(_))
    ));
}

const RAW_SESSION: &str = "SELECT headers_enc FROM sessions WHERE tenant = 'rest'";

/// The sealed headers of the session of tenant `rest`, read past the store.
async fn raw_session_headers(url: &str) -> String {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(RAW_SESSION)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(RAW_SESSION)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

const RAW_SECRETS: &str =
    "SELECT COALESCE(headers_enc, env_enc) FROM servers WHERE tenant = 'rest' ORDER BY name";

/// The sealed columns, read past the store with a plain connection.
async fn raw_secret_columns(url: &str) -> Vec<String> {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(RAW_SECRETS)
            .fetch_all(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(RAW_SECRETS)
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("switchboard-store-test-{}", random_hex()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file() {
    let dir = TempDir::new();
    // The file does not exist yet: connecting creates it.
    let url = format!("sqlite://{}", dir.0.join("nested-ok.db").display());
    let store = open(&url, key(1)).await.unwrap();
    contract(store.clone()).await;
    secrets_at_rest(&url, &store).await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory() {
    contract(open("sqlite::memory:", key(1)).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_memory_stores_are_separate() {
    let one = open("sqlite::memory:", key(1)).await.unwrap();
    let two = open("sqlite::memory:", key(1)).await.unwrap();
    one.insert_server(&sse("t", "only-in-one")).await.unwrap();
    assert!(two.list_all_servers().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_schemes_are_rejected_without_echoing_credentials() {
    let Err(StoreError::Backend(message)) = open("mysql://root:hunter2@db/app", key(1)).await
    else {
        panic!("mysql URLs must be rejected");
    };
    assert!(
        message.contains("mysql") && message.contains("postgres://"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

fn pg_base_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database made for one test run, dropped (connections and all) when this goes away.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    async fn create() -> Self {
        let name = format!("switchboard_test_{}", random_hex());
        let mut admin = admin_connection().await;
        let create = format!("CREATE DATABASE {name}");
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        PgDatabase { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", pg_base_url(), self.name)
    }
}

async fn admin_connection() -> sqlx::PgConnection {
    let url = format!("{}/postgres", pg_base_url());
    let connecting = sqlx::PgConnection::connect(&url);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            panic!("PostgreSQL is required for this test but {url} is unreachable: {e}. {PG_HINT}")
        }
        Err(_) => panic!(
            "PostgreSQL is required for this test but {url} did not answer in 10 s. {PG_HINT}"
        ),
    }
}

const PG_HINT: &str = "Start it (pg_ctlcluster --skip-systemctl-redirect <version> main start) \
    or point SWITCHBOARD_TEST_PG_URL at one (trust auth, user allowed to CREATE DATABASE).";

impl Drop for PgDatabase {
    /// Runs on its own thread and runtime: `drop` cannot await, and may run during a panic.
    fn drop(&mut self) {
        let drop_sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = admin_connection().await;
                sqlx::query(sqlx::AssertSqlSafe(drop_sql))
                    .execute(&mut admin)
                    .await
                    .map(drop)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let database = PgDatabase::create().await;
    let url = database.url();
    let store = open(&url, key(1)).await.unwrap();
    contract(store.clone()).await;
    secrets_at_rest(&url, &store).await;
}

// ---------------------------------------------------------------------------------------------
// Identity

fn user(id: &str, tenant: &str, username: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        tenant: tenant.into(),
        username: username.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: Role::Manager,
        grants: vec!["alpha".into(), "beta".into()],
        disabled_at: None,
        created_at: 1,
        updated_at: 2,
    }
}

async fn identity(store: &Arc<dyn Store>) {
    let rev = store.revision().await.unwrap();
    let tenants = store.list_tenants().await.unwrap();
    assert!(tenants.iter().any(|t| t.name == "default"), "{tenants:?}");
    let team = TenantRecord {
        name: "team-a".into(),
        created_at: 5,
    };
    store.insert_tenant(&team).await.unwrap();
    assert!(matches!(
        store.insert_tenant(&team).await,
        Err(StoreError::Conflict)
    ));

    // Users: unique names across tenants, a missing tenant is refused, updates round-trip.
    let alice = user("u-alice", "team-a", "alice");
    store.insert_user(&alice).await.unwrap();
    assert_eq!(
        store.get_user("u-alice").await.unwrap().as_ref(),
        Some(&alice)
    );
    assert_eq!(
        store.get_user_by_name("alice").await.unwrap().as_ref(),
        Some(&alice)
    );
    let clash = user("u-other", "default", "alice");
    assert!(matches!(
        store.insert_user(&clash).await,
        Err(StoreError::Conflict)
    ));
    let orphan = user("u-orphan", "no-such-tenant", "orphan");
    assert!(matches!(
        store.insert_user(&orphan).await,
        Err(StoreError::NotFound)
    ));
    let mut changed = alice.clone();
    changed.role = Role::User;
    changed.grants = vec!["*".into()];
    changed.disabled_at = Some(9);
    store.update_user(&changed).await.unwrap();
    assert_eq!(
        store.get_user("u-alice").await.unwrap(),
        Some(changed.clone())
    );
    assert!(matches!(
        store.update_user(&orphan).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.list_users(Some("team-a")).await.unwrap(),
        vec![changed]
    );
    assert!(
        store
            .list_users(Some("default"))
            .await
            .unwrap()
            .iter()
            .all(|u| u.tenant == "default")
    );

    // Keys: revocation is one-way, allowlists and expiry round-trip.
    let key = ApiKeyRecord {
        id: "k1".into(),
        tenant: "team-a".into(),
        user_id: "u-alice".into(),
        name: "laptop".into(),
        secret_hash: "ab".repeat(32),
        allow: Some(vec!["alpha".into()]),
        expires_at: Some(10_000),
        last_used_at: None,
        revoked_at: None,
        created_at: 3,
        rate_limit: Some(RateLimit {
            per_second: 2.5,
            burst: 7,
        }),
    };
    store.insert_key(&key).await.unwrap();
    let unlimited = ApiKeyRecord {
        id: "k2".into(),
        allow: None,
        expires_at: None,
        rate_limit: None,
        ..key.clone()
    };
    store.insert_key(&unlimited).await.unwrap();
    assert_eq!(store.get_key("k1").await.unwrap().as_ref(), Some(&key));
    assert_eq!(store.get_key("k2").await.unwrap().unwrap().rate_limit, None);
    assert_eq!(
        store
            .list_keys("team-a", Some("u-alice"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .list_keys("default", None)
            .await
            .unwrap()
            .iter()
            .all(|k| k.tenant == "default")
    );
    store.touch_key("k1", 77).await.unwrap();
    assert!(store.revoke_key("k1", 80).await.unwrap());
    assert!(
        !store.revoke_key("k1", 81).await.unwrap(),
        "revoking twice reports false"
    );
    let got = store.get_key("k1").await.unwrap().unwrap();
    assert_eq!((got.last_used_at, got.revoked_at), (Some(77), Some(80)));

    // Refresh tokens: exactly one exchange wins; a family is revoked as a whole.
    for (id, family) in [("r1", "f1"), ("r2", "f1"), ("r3", "f2")] {
        store
            .insert_refresh(&RefreshRecord {
                id: id.into(),
                family: family.into(),
                user_id: "u-alice".into(),
                secret_hash: "cd".repeat(32),
                expires_at: 99_999,
                used_at: None,
                revoked_at: None,
                created_at: 4,
            })
            .await
            .unwrap();
    }
    assert!(store.use_refresh("r1", 50).await.unwrap());
    assert!(!store.use_refresh("r1", 51).await.unwrap());
    store.revoke_family("f1", 60).await.unwrap();
    assert_eq!(
        store.get_refresh("r2").await.unwrap().unwrap().revoked_at,
        Some(60)
    );
    assert_eq!(
        store.get_refresh("r3").await.unwrap().unwrap().revoked_at,
        None
    );

    // Per-user credentials are sealed at rest and listed by server.
    let headers = map(&[("Authorization", "Bearer personal-token-93e1")]);
    store
        .set_user_credential("u-alice", "team-a", "github", &headers, 5)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_user_credential("u-alice", "github")
            .await
            .unwrap(),
        Some(headers)
    );
    assert_eq!(
        store.list_user_credentials("u-alice").await.unwrap(),
        vec!["github".to_string()]
    );
    assert!(
        store
            .delete_user_credential("u-alice", "github")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_user_credential("u-alice", "github")
            .await
            .unwrap(),
        None
    );

    // The audit log: newest first, filtered by tenant, paged by id.
    for (i, tenant) in ["team-a", "default", "team-a"].iter().enumerate() {
        store
            .append_audit(&AuditRecord {
                id: 0,
                at: i as i64,
                tenant: (*tenant).into(),
                actor: "user:alice".into(),
                action: format!("action.{i}"),
                target: "x".into(),
                outcome: "ok".into(),
                detail: None,
                source: (i != 1).then(|| "203.0.113.7".into()),
            })
            .await
            .unwrap();
    }
    let mine = store
        .list_audit(&AuditQuery {
            tenant: Some("team-a".into()),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    let actions: Vec<&str> = mine.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["action.2", "action.0"]);
    let older = store
        .list_audit(&AuditQuery {
            tenant: None,
            before: Some(mine[0].id),
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].action, "action.1");
    // The source address round-trips (absent stays absent).
    assert_eq!(mine[0].source.as_deref(), Some("203.0.113.7"));
    assert_eq!(older[0].source, None);
    // Retention: entries older than the bound go, newer ones stay.
    assert_eq!(store.delete_audit_before(2).await.unwrap(), 2);
    let left = store
        .list_audit(&AuditQuery {
            tenant: None,
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    let left: Vec<&str> = left.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(left, ["action.2"]);
    assert_eq!(store.delete_audit_before(2).await.unwrap(), 0);

    // A shared secret is created once and then stable.
    let s1 = store.shared_secret("test_secret").await.unwrap();
    assert_eq!(s1.len(), 32);
    assert_eq!(store.shared_secret("test_secret").await.unwrap(), s1);

    // Deleting a user or a tenant takes keys and tokens with it.
    store
        .insert_user(&user("u-bob", "team-a", "bob"))
        .await
        .unwrap();
    assert!(store.delete_user("u-bob").await.unwrap());
    assert!(!store.delete_user("u-bob").await.unwrap());
    assert!(store.delete_tenant("team-a").await.unwrap());
    assert_eq!(store.get_user("u-alice").await.unwrap(), None);
    assert_eq!(store.get_key("k2").await.unwrap(), None);
    assert_eq!(store.get_refresh("r3").await.unwrap(), None);
    assert!(!store.delete_tenant("team-a").await.unwrap());
    // None of this is desired state: replicas have nothing to reconcile.
    assert_eq!(store.revision().await.unwrap(), rev);
}
