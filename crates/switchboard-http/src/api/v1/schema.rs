//! OpenAPI schemas for the JSON the control plane's types produce and accept.
//!
//! The DTOs live in `switchboard-control`, which does not depend on utoipa, so each gets a
//! schema-only mirror here with the same field names and serde attributes. The unit tests at
//! the bottom serialise fully populated control-plane values and check that every key they
//! produce is documented and every documented required key is produced, so a field added on
//! either side fails the build's tests instead of silently drifting.

// Mirrors are never constructed: they exist for their `ToSchema` derive.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// The error body of every management route.
#[derive(Serialize, ToSchema)]
pub(crate) struct ApiErrorBody {
    /// Always `error`.
    #[schema(example = "error")]
    status: String,
    /// Short machine-readable code: `bad_request`, `invalid`, `not_found`, `conflict`,
    /// `ssrf_refused`, `unreachable`, `unauthorized`, `store`.
    #[schema(example = "not_found")]
    error: String,
    /// What went wrong and what to do.
    message: String,
}

/// A server's configuration as the API accepts it: a servers-file entry plus `name`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ServerInput {
    /// Unique name (also the tool prefix). Required on create; on replace it may be left out,
    /// and must equal the name in the path when given.
    name: Option<String>,
    /// `stdio`, `streamable-http` or `sse`; inferred from `command`/`url` when absent.
    #[serde(rename = "type")]
    transport: Option<String>,
    /// Remote URL (`streamable-http`, `sse`); must pass the SSRF policy.
    url: Option<String>,
    /// Headers sent to a remote server. Values are secrets: `********` keeps the stored value.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Program of a stdio server.
    command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    args: Vec<String>,
    /// Its environment. Values are secrets: `********` keeps the stored value.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Its working directory.
    cwd: Option<String>,
    /// Whether it should run (default true).
    enabled: Option<bool>,
    /// Per-request timeout in seconds (default 300).
    timeout: Option<f64>,
    /// `shared` (default) or `per-client`.
    session: Option<String>,
    /// Streamable HTTP and stdio: `auto` (default), `legacy` or `2026-07-28`.
    protocol: Option<String>,
    /// Largest message (a result) accepted from the server, in bytes (1024 to 1073741824;
    /// default the hub's `--max-result-bytes`, 16 MiB).
    max_result_bytes: Option<u64>,
}

/// One servers-file entry as the API shows it (`config` of a server, values of `mcpServers`).
#[derive(Serialize, ToSchema)]
pub(crate) struct ServerEntry {
    /// `stdio`, `streamable-http` or `sse`.
    #[serde(rename = "type")]
    transport: String,
    /// Remote URL.
    url: Option<String>,
    /// Headers; values `********` unless revealed.
    headers: Option<BTreeMap<String, String>>,
    /// Program of a stdio server.
    command: Option<String>,
    /// Its arguments.
    args: Option<Vec<String>>,
    /// Environment; values `********` unless revealed.
    env: Option<BTreeMap<String, String>>,
    /// Working directory.
    cwd: Option<String>,
    /// Present (true) when the server is disabled.
    disabled: Option<bool>,
    /// Per-request timeout in seconds, when not the default 300.
    timeout: Option<f64>,
    /// `per-client`, when not the default `shared`.
    session: Option<String>,
    /// Streamable HTTP and stdio: the protocol era, when not the default `auto`.
    protocol: Option<String>,
    /// The server's own result size limit in bytes, when it has one.
    max_result_bytes: Option<u64>,
}

/// A server's live state in the hub.
#[derive(Serialize, ToSchema)]
pub(crate) struct ServerStatus {
    /// Name.
    name: String,
    /// `stdio`, `streamable-http` or `sse`.
    transport: String,
    /// Lifecycle state: `starting`, `ready`, `failed`, `disabled`, ...
    #[schema(example = "ready")]
    state: String,
    /// Tools currently published.
    tools: usize,
    /// Prompts currently published.
    prompts: usize,
    /// Resources currently published.
    resources: usize,
    /// The most recent failure.
    #[schema(required = true)]
    last_error: Option<String>,
    /// Seconds since the connection became ready.
    #[schema(required = true)]
    uptime_secs: Option<u64>,
    /// Connections lost or failed since start.
    restarts: u32,
    /// Process id of a stdio server.
    #[schema(required = true)]
    pid: Option<u32>,
    /// The protocol revision negotiated with the server (`2026-07-28` for a stateless one).
    #[schema(required = true)]
    protocol: Option<String>,
}

/// A server: configuration (secrets masked), bookkeeping and live status.
#[derive(Serialize, ToSchema)]
pub(crate) struct ServerView {
    /// Name.
    name: String,
    /// The servers-file entry, secrets masked.
    config: ServerEntry,
    /// Whether it should run.
    enabled: bool,
    /// `shared` or `per-client`.
    session: String,
    /// Who owns it: `file` (the servers file changes it) or `api`.
    origin: String,
    /// Who created it.
    created_by: String,
    /// When (Unix ms).
    created_at: i64,
    /// Who changed it last.
    updated_by: String,
    /// When (Unix ms).
    updated_at: i64,
    /// Live state; null when the hub does not run it.
    #[schema(required = true)]
    status: Option<ServerStatus>,
    /// Last stderr lines of a stdio server (single-server answers only).
    stderr_tail: Option<Vec<String>>,
}

/// A tool or prompt with the operator's settings.
#[derive(Serialize, ToSchema)]
pub(crate) struct ItemView {
    /// The name as the server spells it.
    name: String,
    /// The name on `/mcp`; null while hidden.
    #[schema(required = true)]
    exported_name: Option<String>,
    /// Visible on `/mcp`.
    enabled: bool,
    /// The server's own description.
    #[schema(required = true)]
    description: Option<String>,
    /// The operator's description, if set.
    #[schema(required = true)]
    description_override: Option<String>,
    /// The operator's rename, if set.
    #[schema(required = true)]
    rename: Option<String>,
}

/// One field's approved and current values (`null` when absent).
#[derive(Serialize, ToSchema)]
pub(crate) struct FieldChange {
    /// The approved value.
    before: serde_json::Value,
    /// The current value.
    after: serde_json::Value,
}

/// One tool whose current definition is not the approved one.
#[derive(Serialize, ToSchema)]
pub(crate) struct ToolChange {
    /// The tool's name as the server spells it.
    tool: String,
    /// `changed` (differs from its pin), `new` (added after approval) or `removed` (pinned,
    /// no longer listed).
    #[schema(example = "changed")]
    status: String,
    /// True when hidden from `/mcp` (`--on-tool-change hide`); false when only flagged.
    hidden: bool,
    /// The approved definition (`name`, `title`, `description`, `inputSchema`,
    /// `outputSchema`, `annotations`); null for a new tool.
    #[schema(required = true, value_type = Option<Object>)]
    approved: Option<serde_json::Value>,
    /// The current definition; null for a removed tool.
    #[schema(required = true, value_type = Option<Object>)]
    current: Option<serde_json::Value>,
    /// The fields that differ, by field name.
    diff: BTreeMap<String, FieldChange>,
}

/// A server's pending tool changes.
#[derive(Serialize, ToSchema)]
pub(crate) struct ToolChanges {
    /// Server name.
    server: String,
    /// The hub's policy: `hide`, `warn` or `allow`.
    #[schema(example = "warn")]
    on_tool_change: String,
    /// True once the server's tools are pinned (on first use or by an approval).
    pinned: bool,
    /// True when the server is connected, so its current tools are known.
    connected: bool,
    /// Tools whose definition differs from the approved one, by name.
    changes: Vec<ToolChange>,
}

/// Which pending tool changes to approve.
#[derive(Serialize, ToSchema)]
pub(crate) struct ApproveInput {
    /// Tool names as the server spells them; absent: every pending change.
    tools: Option<Vec<String>>,
}

/// A change to one tool's or prompt's settings; absent fields stay as they are, an empty
/// string clears `description`/`rename`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ItemPatch {
    /// Show or hide.
    enabled: Option<bool>,
    /// Description override.
    description: Option<String>,
    /// New name (before the server prefix); 1-64 of `A-Z a-z 0-9 _ - .`.
    rename: Option<String>,
}

/// A group: a named subset of servers served at `/mcp/{name}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct GroupInput {
    /// Name (shares the namespace with servers). On replace it defaults to the path's.
    #[serde(default)]
    name: String,
    /// Member servers (must exist).
    #[serde(default)]
    members: Vec<String>,
    /// Exported tool names visible through the group; null or absent for all.
    tools: Option<Vec<String>>,
}

/// What one reconcile changed.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReconcileReport {
    /// Servers started.
    added: Vec<String>,
    /// Servers restarted with a new configuration.
    changed: Vec<String>,
    /// Servers stopped and removed.
    removed: Vec<String>,
    /// Servers that could not be registered: `[name, reason]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    failed: Vec<(String, String)>,
}

/// The store as a servers file: `mcpServers` entries and `groups` (name -> member servers).
#[derive(Serialize, ToSchema)]
pub(crate) struct ServersFile {
    /// Servers by name.
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<String, ServerEntry>,
    /// Groups by name: member server names.
    groups: BTreeMap<String, Vec<String>>,
}

/// One entry of an imported servers file (the file format's rules; `${VAR}` taken literally).
#[derive(Serialize, ToSchema)]
pub(crate) struct ImportEntry {
    /// `stdio`, `streamable-http` (or `http`) or `sse`; inferred from `command`/`url` when absent.
    #[serde(rename = "type")]
    transport: Option<String>,
    /// Remote URL; must pass the SSRF policy.
    url: Option<String>,
    /// Headers for a remote server.
    headers: Option<BTreeMap<String, String>>,
    /// Program of a stdio server.
    command: Option<String>,
    /// Its arguments.
    args: Option<Vec<String>>,
    /// Its environment.
    env: Option<BTreeMap<String, String>>,
    /// Its working directory.
    cwd: Option<String>,
    /// Configured but not started.
    disabled: Option<bool>,
    /// The opposite of `disabled`.
    enabled: Option<bool>,
    /// Per-request timeout in seconds (default 300).
    timeout: Option<f64>,
}

/// A servers file to import: entries whose name is free are added, others are left alone.
#[derive(Serialize, ToSchema)]
pub(crate) struct ImportFile {
    /// Servers by name.
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<String, ImportEntry>,
    /// Groups by name: member server names (from this file).
    groups: Option<BTreeMap<String, Vec<String>>>,
}

#[cfg(test)]
mod tests {
    //! Each mirror documents exactly the keys its control-plane type produces.

    use std::collections::BTreeSet;

    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};
    use switchboard_hub::ServerStatus as HubStatus;
    use utoipa::PartialSchema;

    use super::*;

    fn keys(v: &impl Serialize) -> BTreeSet<String> {
        serde_json::to_value(v)
            .expect("serialises")
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    }

    fn documented<T: PartialSchema>() -> (BTreeSet<String>, BTreeSet<String>) {
        let s = serde_json::to_value(T::schema()).expect("schema serialises");
        let props = s["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        let required = s["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        (props, required)
    }

    /// `full` has every optional part set; `minimal` has none.
    fn assert_mirrors<T: PartialSchema>(full: &impl Serialize, minimal: &impl Serialize) {
        let (props, required) = documented::<T>();
        assert_eq!(
            keys(full),
            props,
            "documented properties differ from the real JSON"
        );
        let produced = keys(minimal);
        assert!(
            required.is_subset(&produced),
            "required {required:?} but a minimal value has only {produced:?}"
        );
    }

    fn status() -> HubStatus {
        HubStatus {
            name: "a".into(),
            transport: "stdio",
            state: "ready",
            tools: 1,
            prompts: 0,
            resources: 0,
            last_error: Some("x".into()),
            uptime_secs: Some(1),
            restarts: 0,
            list_refreshes: 0,
            pid: Some(2),
            protocol: Some("2025-11-25".into()),
        }
    }

    fn view(full: bool) -> switchboard_control::ServerView {
        switchboard_control::ServerView {
            name: "a".into(),
            config: json!({}),
            enabled: true,
            session: "shared".into(),
            origin: "api".into(),
            created_by: "admin".into(),
            created_at: 1,
            updated_by: "admin".into(),
            updated_at: 2,
            status: full.then(status),
            stderr_tail: full.then(Vec::new),
        }
    }

    #[test]
    fn server_view_and_status() {
        assert_mirrors::<ServerView>(&view(true), &view(false));
        assert_mirrors::<ServerStatus>(&status(), &status());
    }

    fn full_patch() -> switchboard_control::ItemPatch {
        switchboard_control::ItemPatch {
            enabled: Some(true),
            description: Some("d".into()),
            rename: Some("r".into()),
        }
    }

    #[test]
    fn server_input() {
        assert_mirrors::<ServerInput>(&full_input(), &switchboard_control::ServerInput::default());
    }

    fn full_input() -> switchboard_control::ServerInput {
        switchboard_control::ServerInput {
            name: "a".into(),
            transport: Some("stdio".into()),
            url: Some("u".into()),
            headers: [("h".to_string(), "v".to_string())].into(),
            command: Some("c".into()),
            args: vec!["x".into()],
            env: [("k".to_string(), "v".to_string())].into(),
            cwd: Some("/".into()),
            enabled: Some(true),
            timeout: Some(1.0),
            session: Some("shared".into()),
            protocol: Some("auto".into()),
            max_result_bytes: Some(1 << 20),
        }
    }

    #[test]
    fn server_entry_covers_every_transport() {
        let (props, required) = documented::<ServerEntry>();
        let stdio = json!({"type": "stdio", "command": "c", "args": [], "env": {}, "cwd": "/", "disabled": true, "timeout": 1.0});
        let remote = json!({"type": "sse", "url": "u", "headers": {}});
        for entry in [stdio, remote] {
            let produced: BTreeSet<String> = entry.as_object().unwrap().keys().cloned().collect();
            assert!(
                produced.is_subset(&props),
                "{produced:?} not all documented in {props:?}"
            );
            assert!(required.is_subset(&produced));
        }
    }

    /// Keys without which the control-plane type does not deserialise.
    fn needed<T: DeserializeOwned>(full: &impl Serialize) -> BTreeSet<String> {
        let full = serde_json::to_value(full).expect("serialises");
        let without = |k: &String| {
            let mut v = full.clone();
            v.as_object_mut().expect("an object").remove(k);
            v
        };
        keys(&full)
            .into_iter()
            .filter(|k| serde_json::from_value::<T>(without(k)).is_err())
            .collect()
    }

    #[test]
    fn inputs_require_what_the_control_plane_requires() {
        let (_, required) = documented::<ServerInput>();
        assert_eq!(
            needed::<switchboard_control::ServerInput>(&full_input()),
            required
        );
        let (_, required) = documented::<ItemPatch>();
        assert_eq!(
            needed::<switchboard_control::ItemPatch>(&full_patch()),
            required
        );
        let (_, required) = documented::<GroupInput>();
        let group = switchboard_control::GroupInput {
            name: "g".into(),
            members: vec!["a".into()],
            tools: Some(vec![]),
        };
        assert_eq!(needed::<switchboard_control::GroupInput>(&group), required);
    }

    #[test]
    fn items_groups_reports() {
        let item = switchboard_control::ItemView {
            name: "t".into(),
            exported_name: None,
            enabled: true,
            description: None,
            description_override: None,
            rename: None,
        };
        assert_mirrors::<ItemView>(&item, &item);
        assert_mirrors::<ItemPatch>(&full_patch(), &switchboard_control::ItemPatch::default());
        let group = switchboard_control::GroupInput {
            name: "g".into(),
            members: vec![],
            tools: None,
        };
        assert_mirrors::<GroupInput>(&group, &group);
        let report = switchboard_control::ReconcileReport::default();
        assert_mirrors::<ReconcileReport>(&report, &report);
    }

    #[test]
    fn tool_changes() {
        let field = switchboard_control::FieldChange {
            before: json!("a"),
            after: json!("b"),
        };
        assert_mirrors::<FieldChange>(&field, &field);
        let change = switchboard_control::ToolChange {
            tool: "echo".into(),
            status: "changed",
            hidden: true,
            approved: Some(json!({"name": "echo"})),
            current: Some(json!({"name": "echo"})),
            diff: [("description".to_string(), field)].into(),
        };
        let new = switchboard_control::ToolChange {
            approved: None,
            diff: Default::default(),
            ..change.clone()
        };
        assert_mirrors::<ToolChange>(&change, &new);
        let changes = switchboard_control::ToolChanges {
            server: "s".into(),
            on_tool_change: "hide",
            pinned: true,
            connected: true,
            changes: vec![change],
        };
        assert_mirrors::<ToolChanges>(&changes, &changes);
        let approve = switchboard_control::ApproveInput {
            tools: Some(vec!["echo".into()]),
        };
        assert_mirrors::<ApproveInput>(&approve, &switchboard_control::ApproveInput::default());
    }
}
