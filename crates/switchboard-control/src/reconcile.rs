//! The reconciler: make the hub's registry, groups and overrides match the store.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_core::config::ServersFile;
use switchboard_hub::{GroupDef, ItemOverride, Overrides};
use switchboard_store::{GroupRecord, ItemKind, StoreError};
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

    /// Imports a servers file into the store: entries whose name is free are added, others
    /// are left as they are. Returns the names added. Every entry to add is checked first (the
    /// right to launch its stdio command, the tenant's stdio limit), so a refused import
    /// stores nothing. The operator's servers file is not refused over the limit: the
    /// reconciler starts the oldest servers up to it.
    pub async fn import(
        &self,
        file: &ServersFile,
        actor: &Actor,
    ) -> Result<Vec<String>, ControlError> {
        let _guard = self.lock.lock().await;
        let tenant = &self.config.tenant;
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
        for spec in file.servers.values().filter(|s| !taken.contains(&s.name)) {
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
        let mut added = Vec::new();
        for record in &new {
            match self.store.insert_server(record).await {
                Ok(()) => added.push(record.name.clone()),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for (name, members) in &file.groups {
            let record = GroupRecord {
                tenant: tenant.clone(),
                name: name.clone(),
                members: members.clone(),
                tools: None,
            };
            match self.store.insert_group(&record).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.reconcile_locked().await?;
        Ok(added)
    }

    /// The store as a servers file (`{"mcpServers": ..., "groups": ...}`), secrets in clear
    /// when `reveal` (the CLI's export to a local file), masked otherwise.
    pub async fn export(&self, reveal: bool) -> Result<serde_json::Value, ControlError> {
        let tenant = &self.config.tenant;
        let servers = self.store.list_servers(tenant).await?;
        let groups = self.store.list_groups(tenant).await?;
        let mut mcp = serde_json::Map::new();
        for r in &servers {
            mcp.insert(r.name.clone(), crate::entry_json(r, reveal));
        }
        let groups: serde_json::Map<String, serde_json::Value> = groups
            .into_iter()
            .map(|g| (g.name, serde_json::json!(g.members)))
            .collect();
        Ok(serde_json::json!({"mcpServers": mcp, "groups": groups}))
    }
}

/// Names of the enabled stdio servers beyond `limit` (0: none), the newest ones: servers run
/// oldest first (creation time, then name within one millisecond), so the same ones run after
/// every restart whatever their names.
fn over_stdio_limit(records: &[switchboard_store::ServerRecord], limit: usize) -> BTreeSet<String> {
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
