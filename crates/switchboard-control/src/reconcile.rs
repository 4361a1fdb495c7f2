//! The reconciler: make the hub's registry, groups and overrides match the store.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchboard_core::config::ServersFile;
use switchboard_hub::{GroupDef, ItemOverride, Overrides};
use switchboard_store::{GroupRecord, ItemKind, StoreError};
use switchboard_upstream::ListKind;

use crate::{ControlError, ControlPlane, now_ms, record_from_spec, spec_from_record};

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
        let desired: BTreeMap<String, _> = records
            .iter()
            .map(|r| (r.name.clone(), spec_from_record(r)))
            .collect();

        let managed: Vec<String> = self
            .managed
            .lock()
            .expect("managed lock")
            .iter()
            .cloned()
            .collect();
        for name in managed.iter().filter(|n| !desired.contains_key(*n)) {
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

    /// Imports a servers file into the store: entries whose name is free are added, others
    /// are left as they are. Returns the names added.
    pub async fn import(
        &self,
        file: &ServersFile,
        actor: &str,
    ) -> Result<Vec<String>, ControlError> {
        let _guard = self.lock.lock().await;
        let tenant = &self.config.tenant;
        let mut added = Vec::new();
        for spec in file.servers.values() {
            let record = record_from_spec(tenant, spec, actor, now_ms());
            match self.store.insert_server(&record).await {
                Ok(()) => added.push(spec.name.clone()),
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
