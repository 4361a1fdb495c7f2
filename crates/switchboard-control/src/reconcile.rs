//! The reconciler: make the hub's registry, groups and overrides match the store.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_core::config::ServersFile;
use switchboard_core::formats::Note;
use switchboard_hub::{GroupDef, ItemOverride, Overrides};
use switchboard_store::{
    GroupRecord, ItemKind, ItemSetting, ORIGIN_FILE, ServerRecord, StoreError,
};
use switchboard_upstream::ListKind;

use crate::ops::runs_stdio;
use crate::stdio_policy::{Actor, check_spawn};
use crate::{
    ControlError, ControlPlane, SERVERS_FILE_ACTOR, now_ms, record_from_spec, spec_from_record,
};

/// What one reconcile changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    /// Servers started.
    pub added: Vec<String>,
    /// Servers restarted with a new configuration.
    pub changed: Vec<String>,
    /// Servers stopped and removed.
    pub removed: Vec<String>,
    /// Servers that could not be registered, with why.
    pub failed: Vec<(String, String)>,
}

impl ControlPlane {
    /// Converges the registry to the store. One server's change never touches another.
    pub async fn reconcile(&self) -> Result<ReconcileReport, ControlError> {
        let _guard = self.lock.lock().await;
        self.reconcile_locked().await
    }

    pub(crate) async fn reconcile_locked(&self) -> Result<ReconcileReport, ControlError> {
        if !self.config.apply {
            return Ok(ReconcileReport::default());
        }
        let tenant = &self.config.tenant;
        let revision = self.store.revision().await?;
        let records = self.store.list_servers(tenant).await?;
        let groups = self.store.list_groups(tenant).await?;
        let settings = self.store.list_all_item_settings().await?;
        let mut report = ReconcileReport::default();
        let over = over_stdio_limit(&records, self.hub.config().max_stdio_servers);
        for name in &over {
            report.failed.push((
                name.clone(),
                format!(
                    "not started: the tenant's limit of {} stdio servers is taken by older ones",
                    self.hub.config().max_stdio_servers
                ),
            ));
        }
        if !over.is_empty() {
            tracing::warn!(message = "Stdio servers over the tenant's limit are not started.", tenant = %tenant, servers = ?over);
        }
        // Servers that stop running a process go first, so a swap within the limit never
        // meets a full registry; then the oldest.
        let mut order: Vec<_> = records.iter().filter(|r| !over.contains(&r.name)).collect();
        order.sort_by_key(|r| (runs_stdio(r), r.created_at, r.name.clone()));
        let desired: Vec<(String, _)> = order
            .into_iter()
            .map(|r| (r.name.clone(), spec_from_record(r)))
            .collect();

        let managed: Vec<String> = self
            .managed
            .lock()
            .expect("managed lock")
            .iter()
            .cloned()
            .collect();
        for name in managed
            .iter()
            .filter(|n| !desired.iter().any(|(d, _)| d == *n))
        {
            if self.hub.remove_server(name).await.is_ok() {
                report.removed.push(name.clone());
            }
            self.managed.lock().expect("managed lock").remove(name);
        }
        // Pins before servers: a server that connects must be checked against the store's
        // pins, never trusted on first use because they were not loaded yet.
        self.hub.set_pins(self.load_pins().await?);
        for (name, spec) in desired {
            let outcome = match self.hub.upstream(&name) {
                None => self
                    .hub
                    .add_server(spec)
                    .await
                    .map(|_| report.added.push(name.clone())),
                Some(up) if up.spec() != &spec => self
                    .hub
                    .replace_server(spec)
                    .await
                    .map(|_| report.changed.push(name.clone())),
                Some(_) => Ok(()),
            };
            match outcome {
                Ok(()) => {
                    self.managed.lock().expect("managed lock").insert(name);
                }
                Err(e) => report.failed.push((name, e.to_string())),
            }
        }
        self.hub
            .set_group_defs(group_defs(&groups, &self.hub.server_names()))
            .await?;
        self.hub.set_overrides(overrides(tenant, &settings));
        *self.last_revision.lock().expect("revision lock") = Some(revision);
        if !report.added.is_empty() || !report.changed.is_empty() || !report.removed.is_empty() {
            tracing::info!(message = "Reconciled.", added = ?report.added, changed = ?report.changed, removed = ?report.removed);
        }
        Ok(report)
    }

    /// Forgets that a server is store-managed (it was mounted or removed directly).
    pub(crate) fn set_managed(&self, name: &str, managed: bool) {
        let mut set = self.managed.lock().expect("managed lock");
        if managed {
            set.insert(name.to_string());
        } else {
            set.remove(name);
        }
    }

    /// Imports a servers file through an API into the store: entries whose name is free are
    /// added (owned by the API), the others are left as they are and reported. Every entry to
    /// add is checked first (the right to launch its stdio command, the tenant's stdio limit),
    /// so a refused import stores nothing.
    pub async fn import(
        &self,
        file: &ServersFile,
        actor: &Actor,
    ) -> Result<ImportReport, ControlError> {
        let _guard = self.lock.lock().await;
        let tenant = &self.config.tenant;
        let mut report = ImportReport {
            format: file.format.to_string(),
            notes: file.notes.clone(),
            ..ImportReport::default()
        };
        let taken: BTreeSet<String> = self
            .store
            .list_servers(tenant)
            .await?
            .into_iter()
            .map(|r| r.name)
            .chain(
                self.store
                    .list_groups(tenant)
                    .await?
                    .into_iter()
                    .map(|g| g.name),
            )
            .collect();
        let mut new = Vec::new();
        for spec in file.servers.values() {
            if taken.contains(&spec.name) {
                report.kept.push(spec.name.clone());
                report.notes.push(Note {
                    entry: format!("mcpServers.{}", spec.name),
                    action: "kept",
                    detail: "the name is taken: the existing server is left as it is".into(),
                });
                continue;
            }
            check_spawn(
                actor,
                &self.config.stdio_allow,
                &spec.name,
                &spec.transport,
                None,
            )?;
            new.push(record_from_spec(tenant, spec, &actor.name, now_ms()));
        }
        let new_stdio = new.iter().filter(|r| runs_stdio(r)).count();
        if new_stdio > 0 && actor.name != SERVERS_FILE_ACTOR {
            let what = format!("the import's {new_stdio} enabled stdio servers");
            self.check_stdio_room(&what, new_stdio).await?;
        }
        for record in &new {
            match self.store.insert_server(record).await {
                Ok(()) => {
                    report.added.push(record.name.clone());
                    self.apply_tool_settings(file, &record.name).await?;
                }
                // Taken since the list above: left as it is.
                Err(StoreError::Conflict) => report.kept.push(record.name.clone()),
                Err(e) => return Err(e.into()),
            }
        }
        self.import_groups(file, &mut report).await?;
        self.reconcile_locked().await?;
        Ok(report)
    }

    /// Makes the servers the file owns match the servers file (at start when the file
    /// changed, and whenever it changes while running): new names are added and owned by the
    /// file, file-owned entries take the file's changes (one log line per server naming the
    /// changed fields), file-owned entries the file no longer lists are removed. Names that
    /// exist but were created (or last edited) through the API are left alone and reported.
    pub async fn sync_servers_file(
        &self,
        file: &ServersFile,
    ) -> Result<ImportReport, ControlError> {
        let _guard = self.lock.lock().await;
        let tenant = &self.config.tenant;
        let mut report = ImportReport {
            format: file.format.to_string(),
            notes: file.notes.clone(),
            ..ImportReport::default()
        };
        let existing: BTreeMap<String, ServerRecord> = self
            .store
            .list_servers(tenant)
            .await?
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        for spec in file.servers.values() {
            let mut record = record_from_spec(tenant, spec, SERVERS_FILE_ACTOR, now_ms());
            match existing.get(&spec.name) {
                None => match self.store.insert_server(&record).await {
                    Ok(()) => report.added.push(spec.name.clone()),
                    // A group holds the name.
                    Err(StoreError::Conflict) => {
                        tracing::warn!(message = "Servers file entry skipped: a group has its name.", server = %spec.name);
                        report.conflicts.push(spec.name.clone());
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                },
                Some(old) if old.origin == ORIGIN_FILE => {
                    let changed = changed_fields(old, &record);
                    if !changed.is_empty() {
                        record.created_by = old.created_by.clone();
                        record.created_at = old.created_at;
                        self.store.update_server(&record).await?;
                        tracing::info!(message = "Servers file changed a server.", server = %spec.name, changed = %changed.join(", "));
                        report.updated.push(spec.name.clone());
                    }
                }
                Some(_) => {
                    tracing::warn!(message = "Servers file entry ignored: a server of that name was created through the API, which owns it.", server = %spec.name);
                    report.conflicts.push(spec.name.clone());
                    report.notes.push(Note {
                        entry: format!("mcpServers.{}", spec.name),
                        action: "dropped",
                        detail:
                            "a server of that name is owned by the API; the file's entry is ignored"
                                .into(),
                    });
                    continue;
                }
            }
            self.apply_tool_settings(file, &spec.name).await?;
        }
        for (name, old) in &existing {
            if old.origin == ORIGIN_FILE && !file.servers.contains_key(name) {
                self.store.delete_server(tenant, name).await?;
                tracing::info!(message = "Servers file no longer lists a server; removed it.", server = %name);
                report.removed.push(name.clone());
            }
        }
        self.import_groups(file, &mut report).await?;
        self.reconcile_locked().await?;
        Ok(report)
    }

    /// Groups of the file whose name is free are added; others are left as they are.
    async fn import_groups(
        &self,
        file: &ServersFile,
        report: &mut ImportReport,
    ) -> Result<(), ControlError> {
        for (name, members) in &file.groups {
            let record = GroupRecord {
                tenant: self.config.tenant.clone(),
                name: name.clone(),
                members: members.clone(),
                tools: file.group_tools.get(name).cloned(),
            };
            match self.store.insert_group(&record).await {
                Ok(()) => report.groups_added.push(name.clone()),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Stores the file's per-tool settings of one server (MCPHub's `tools`).
    async fn apply_tool_settings(
        &self,
        file: &ServersFile,
        server: &str,
    ) -> Result<(), ControlError> {
        for (tool, s) in file.tool_settings.get(server).into_iter().flatten() {
            self.store
                .upsert_item_setting(&ItemSetting {
                    tenant: self.config.tenant.clone(),
                    server: server.to_string(),
                    kind: ItemKind::Tool,
                    name: tool.clone(),
                    enabled: s.enabled,
                    description: s.description.clone(),
                    rename: None,
                })
                .await?;
        }
        Ok(())
    }

    /// The store as a servers file (`{"mcpServers": ..., "groups": ...}`), secrets in clear
    /// when `reveal` (the CLI's export to a local file), otherwise as
    /// `${SWITCHBOARD_SECRET_<SERVER>_<KEY>}` placeholders, so the file loads again.
    pub async fn export(&self, reveal: bool) -> Result<serde_json::Value, ControlError> {
        let tenant = &self.config.tenant;
        let servers = self.store.list_servers(tenant).await?;
        let groups = self.store.list_groups(tenant).await?;
        let how = if reveal {
            crate::Secrets::Reveal
        } else {
            crate::Secrets::Placeholder
        };
        let mut mcp = serde_json::Map::new();
        for r in &servers {
            mcp.insert(r.name.clone(), crate::entry_json_as(r, how));
        }
        let groups: serde_json::Map<String, serde_json::Value> = groups
            .into_iter()
            .map(|g| (g.name, serde_json::json!(g.members)))
            .collect();
        Ok(serde_json::json!({"mcpServers": mcp, "groups": groups}))
    }
}

/// What an import or a servers-file sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// The format the file was recognised as.
    pub format: String,
    /// Servers added.
    pub added: Vec<String>,
    /// File-owned servers changed by the file.
    pub updated: Vec<String>,
    /// File-owned servers the file no longer lists, removed.
    pub removed: Vec<String>,
    /// Names that were taken: left as they are.
    pub kept: Vec<String>,
    /// Names in the file that the API owns (or a group holds): the file's entry is ignored.
    pub conflicts: Vec<String>,
    /// Groups added.
    pub groups_added: Vec<String>,
    /// Per entry: what was kept, converted or dropped.
    pub notes: Vec<Note>,
}

fn inner<'a>(
    v: Option<&'a serde_json::Value>,
    empty: &'a serde_json::Map<String, serde_json::Value>,
) -> Option<&'a serde_json::Map<String, serde_json::Value>> {
    match v {
        Some(serde_json::Value::Object(m)) => Some(m),
        None => Some(empty),
        _ => None,
    }
}

/// The fields of a server entry that differ (names only: values may be secrets).
fn changed_fields(old: &ServerRecord, new: &ServerRecord) -> Vec<String> {
    let a = crate::entry_json_as(old, crate::Secrets::Reveal);
    let b = crate::entry_json_as(new, crate::Secrets::Reveal);
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        if x == y {
            continue;
        }
        match (inner(x, &empty), inner(y, &empty)) {
            (Some(x), Some(y)) if k == "headers" || k == "env" => {
                let inner: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                out.extend(
                    inner
                        .into_iter()
                        .filter(|i| x.get(*i) != y.get(*i))
                        .map(|i| format!("{k}.{i}")),
                );
            }
            _ => out.push(k.clone()),
        }
    }
    if old.origin != new.origin {
        out.push("origin".into());
    }
    out
}

/// Names of the enabled stdio servers beyond `limit` (0: none), the newest ones: servers run
/// oldest first (creation time, then name within one millisecond), so the same ones run after
/// every restart whatever their names.
fn over_stdio_limit(records: &[ServerRecord], limit: usize) -> BTreeSet<String> {
    if limit == 0 {
        return BTreeSet::new();
    }
    let mut stdio: Vec<_> = records.iter().filter(|r| runs_stdio(r)).collect();
    stdio.sort_by_key(|r| (r.created_at, r.name.clone()));
    stdio
        .into_iter()
        .skip(limit)
        .map(|r| r.name.clone())
        .collect()
}

fn group_defs(groups: &[GroupRecord], servers: &[String]) -> BTreeMap<String, GroupDef> {
    let known: BTreeSet<&String> = servers.iter().collect();
    groups
        .iter()
        .filter(|g| !known.contains(&g.name))
        .map(|g| {
            let members = g
                .members
                .iter()
                .filter(|m| known.contains(m))
                .cloned()
                .collect();
            let tools = g.tools.as_ref().map(|t| t.iter().cloned().collect());
            (g.name.clone(), GroupDef { members, tools })
        })
        .collect()
}

fn overrides(tenant: &str, settings: &[switchboard_store::ItemSetting]) -> Overrides {
    settings
        .iter()
        .filter(|s| s.tenant == tenant)
        .map(|s| {
            let kind = match s.kind {
                ItemKind::Tool => ListKind::Tools,
                ItemKind::Prompt => ListKind::Prompts,
            };
            let ov = ItemOverride {
                enabled: s.enabled,
                description: s.description.clone(),
                rename: s.rename.clone(),
            };
            ((s.server.clone(), kind, s.name.clone()), ov)
        })
        .collect()
}
