//! The operations the management APIs share: servers, tools and prompts, groups, and the
//! seed's add/delete/recover flows. Every write goes to the store first, then the registry is
//! reconciled, under one lock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_hub::ServerStatus;
use switchboard_store::{
    ActivityQuery, ActivityRow, ActivitySample, GroupRecord, ItemKind, ItemSetting, ServerRecord,
    StoreError, TransportRecord,
};
use switchboard_upstream::ListKind;

use crate::stdio_policy::{Actor, check_spawn};
use crate::{
    ControlError, ControlPlane, ServerInput, check_ssrf, entry_json, keep_masked_secrets, now_ms,
    probe, record_from_spec, record_url, remote_spec,
};

/// A server as the API shows it: configuration (secrets masked), bookkeeping and live status.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    /// Name.
    pub name: String,
    /// The servers-file entry, secrets masked.
    pub config: Value,
    /// Whether it should run.
    pub enabled: bool,
    /// `shared` or `per-client`.
    pub session: String,
    /// Who owns it: `file` (the servers file) or `api`.
    pub origin: String,
    /// Who created it.
    pub created_by: String,
    /// When (Unix ms).
    pub created_at: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// When (Unix ms).
    pub updated_at: i64,
    /// Live state from the registry.
    pub status: Option<ServerStatus>,
    /// Last stderr lines (stdio servers, detail view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<Vec<String>>,
}

/// A tool or prompt with the operator's settings.
#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    /// The name as the server spells it.
    pub name: String,
    /// The name on `/mcp` (absent while hidden).
    pub exported_name: Option<String>,
    /// Visible.
    pub enabled: bool,
    /// The server's own description.
    pub description: Option<String>,
    /// The operator's description, if set.
    pub description_override: Option<String>,
    /// The operator's rename, if set.
    pub rename: Option<String>,
}

/// A change to one tool's or prompt's settings; absent fields stay as they are. An empty
/// string clears `description`/`rename`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ItemPatch {
    /// Show or hide.
    pub enabled: Option<bool>,
    /// Description override.
    pub description: Option<String>,
    /// New name (before prefixing).
    pub rename: Option<String>,
}

/// A group as the API accepts it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GroupInput {
    /// Name (shared namespace with servers).
    #[serde(default)]
    pub name: String,
    /// Member servers.
    #[serde(default)]
    pub members: Vec<String>,
    /// Exported tool names visible through the group (all when absent).
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

fn list_kind(kind: ItemKind) -> ListKind {
    match kind {
        ItemKind::Tool => ListKind::Tools,
        ItemKind::Prompt => ListKind::Prompts,
    }
}

impl ControlPlane {
    fn view(&self, r: &ServerRecord, detail: bool) -> ServerView {
        let up = self.hub.upstream(&r.name);
        let status = self.hub.servers().into_iter().find(|s| s.name == r.name);
        let stderr_tail = match (&r.transport, up) {
            (TransportRecord::Stdio { .. }, Some(up)) if detail => Some(up.stderr_tail(50)),
            _ => None,
        };
        ServerView {
            name: r.name.clone(),
            config: entry_json(r, false),
            enabled: r.enabled,
            session: r.session_mode.clone(),
            origin: r.origin.clone(),
            created_by: r.created_by.clone(),
            created_at: r.created_at,
            updated_by: r.updated_by.clone(),
            updated_at: r.updated_at,
            status,
            stderr_tail,
        }
    }

    pub(crate) async fn record(&self, name: &str) -> Result<ServerRecord, ControlError> {
        self.store
            .get_server(&self.config.tenant, name)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("no server named {name:?}")))
    }

    /// Every server with its status.
    pub async fn list_servers(&self) -> Result<Vec<ServerView>, ControlError> {
        let records = self.store.list_servers(&self.config.tenant).await?;
        Ok(records.iter().map(|r| self.view(r, false)).collect())
    }

    /// One server with its status and stderr tail.
    pub async fn get_server(&self, name: &str) -> Result<ServerView, ControlError> {
        Ok(self.view(&self.record(name).await?, true))
    }

    /// Adds a server to the store and starts it. Remote URLs pass the SSRF policy; a stdio
    /// server needs the right to launch it and room under the tenant's stdio limit.
    pub async fn create_server(
        &self,
        input: ServerInput,
        actor: &Actor,
    ) -> Result<ServerView, ControlError> {
        let spec = input
            .to_spec(&self.hub.config().separator)
            .map_err(ControlError::Invalid)?;
        check_spawn(
            actor,
            &self.config.stdio_allow,
            &spec.name,
            &spec.transport,
            None,
        )?;
        if let Some(url) = &input.url {
            check_ssrf(&self.config.ssrf, url).await?;
        }
        let record = record_from_spec(&self.config.tenant, &spec, &actor.name, now_ms());
        let _guard = self.lock.lock().await;
        // A live proxy session holds its prefix as a server name on the hub: recording a server
        // under it would make the reconciler replace the session's mount.
        if self.is_session_mount(&record.name) {
            return Err(ControlError::Conflict(format!(
                "{:?} is the prefix of a live proxy session; choose another name",
                record.name
            )));
        }
        if runs_stdio(&record) {
            self.check_stdio_room(&format!("{:?}", record.name), 1)
                .await?;
        }
        self.store
            .insert_server(&record)
            .await
            .map_err(|e| conflict(e, &record.name))?;
        self.reconcile_locked().await?;
        Ok(self.view(&record, true))
    }

    /// Refuses `adding` more enabled stdio servers (for `what`) over the tenant's limit,
    /// counting the enabled stdio servers in the store. Call with the lock held, so two writers
    /// cannot both see room for one more.
    pub(crate) async fn check_stdio_room(
        &self,
        what: &str,
        adding: usize,
    ) -> Result<(), ControlError> {
        let limit = self.hub.config().max_stdio_servers;
        if limit == 0 {
            return Ok(());
        }
        let records = self.store.list_servers(&self.config.tenant).await?;
        let running = records.iter().filter(|r| runs_stdio(r)).count();
        if running + adding <= limit {
            return Ok(());
        }
        tracing::warn!(message = "Refused a stdio server over the tenant's limit.", tenant = %self.config.tenant, what = %what, enabled = running, adding, limit);
        Err(ControlError::StdioLimit(format!(
            "{what}: this tenant has {running} enabled stdio servers and may run at most \
             {limit} (--max-stdio-servers-per-tenant); disable or remove one first"
        )))
    }

    /// Replaces a server's configuration; masked secrets keep their stored values.
    pub async fn update_server(
        &self,
        name: &str,
        mut input: ServerInput,
        actor: &Actor,
    ) -> Result<ServerView, ControlError> {
        if input.name.is_empty() {
            input.name = name.to_string();
        }
        if input.name != name {
            return Err(ControlError::Invalid(
                "renaming a server is not supported: delete and add it".into(),
            ));
        }
        let old = self.record(name).await?;
        keep_masked_secrets(&mut input, &old);
        if input.session.is_none() {
            input.session = Some(old.session_mode.clone());
        }
        // An era set on the server survives a replace that keeps its kind (stdio stays
        // stdio, a URL stays a URL) without naming one.
        let same_kind = match &old.transport {
            TransportRecord::Stdio { .. } => input.command.is_some(),
            _ => input.url.is_some(),
        };
        if input.protocol.is_none() && old.protocol != "auto" && same_kind {
            input.protocol = Some(old.protocol.clone());
        }
        let spec = input
            .to_spec(&self.hub.config().separator)
            .map_err(ControlError::Invalid)?;
        check_spawn(
            actor,
            &self.config.stdio_allow,
            name,
            &spec.transport,
            Some(&old.transport),
        )?;
        if let Some(url) = &input.url
            && record_url(&old) != Some(url.as_str())
        {
            check_ssrf(&self.config.ssrf, url).await?;
        }
        let mut record = record_from_spec(&self.config.tenant, &spec, &actor.name, now_ms());
        record.created_by = old.created_by.clone();
        record.created_at = old.created_at;
        // An API edit takes a file-owned entry over: the file no longer changes it.
        record.origin = switchboard_store::ORIGIN_API.to_string();
        log_takeover(&old);
        let _guard = self.lock.lock().await;
        if runs_stdio(&record) && !runs_stdio(&old) {
            self.check_stdio_room(&format!("{name:?}"), 1).await?;
        }
        self.store.update_server(&record).await?;
        self.reconcile_locked().await?;
        Ok(self.view(&record, true))
    }

    /// Removes a server from the store, then from the registry.
    pub async fn delete_server(&self, name: &str) -> Result<(), ControlError> {
        let _guard = self.lock.lock().await;
        if !self.store.delete_server(&self.config.tenant, name).await? {
            return Err(ControlError::NotFound(format!("no server named {name:?}")));
        }
        self.reconcile_locked().await?;
        Ok(())
    }

    /// Enables or disables a server.
    pub async fn set_enabled(
        &self,
        name: &str,
        enabled: bool,
        actor: &Actor,
    ) -> Result<ServerView, ControlError> {
        let _guard = self.lock.lock().await;
        let mut record = self.record(name).await?;
        log_takeover(&record);
        record.origin = switchboard_store::ORIGIN_API.to_string();
        let was_running = runs_stdio(&record);
        record.enabled = enabled;
        if runs_stdio(&record) && !was_running {
            self.check_stdio_room(&format!("{name:?}"), 1).await?;
        }
        record.updated_by = actor.name.clone();
        record.updated_at = now_ms();
        self.store.update_server(&record).await?;
        self.reconcile_locked().await?;
        Ok(self.view(&record, true))
    }

    /// Restarts a running server with its current configuration.
    pub async fn restart_server(&self, name: &str) -> Result<ServerView, ControlError> {
        let record = self.record(name).await?;
        if !record.enabled {
            return Err(ControlError::Conflict(format!(
                "server {name:?} is disabled; enable it instead of restarting it"
            )));
        }
        self.hub.restart_server(name).await?;
        Ok(self.view(&record, true))
    }

    /// A server's tools or prompts with the operator's settings (hidden ones included).
    pub async fn list_items(
        &self,
        server: &str,
        kind: ItemKind,
    ) -> Result<Vec<ItemView>, ControlError> {
        self.record(server).await?;
        let settings: BTreeMap<String, ItemSetting> = self
            .store
            .list_item_settings(&self.config.tenant, server)
            .await?
            .into_iter()
            .filter(|s| s.kind == kind)
            .map(|s| (s.name.clone(), s))
            .collect();
        let exported = self.hub.exported_names(server, list_kind(kind));
        let Some(up) = self.hub.upstream(server) else {
            return Ok(Vec::new());
        };
        let catalog = up.catalog();
        let items = catalog.list(list_kind(kind)).iter().map(|item| {
            let raw: Value = serde_json::from_str(item.raw.get()).unwrap_or(Value::Null);
            let s = settings.get(&item.key);
            ItemView {
                name: item.key.clone(),
                exported_name: exported.get(&item.key).cloned(),
                enabled: s.is_none_or(|s| s.enabled),
                description: raw
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                description_override: s.and_then(|s| s.description.clone()),
                rename: s.and_then(|s| s.rename.clone()),
            }
        });
        Ok(items.collect())
    }

    /// Changes one tool's or prompt's settings.
    pub async fn set_item(
        &self,
        server: &str,
        kind: ItemKind,
        name: &str,
        patch: ItemPatch,
    ) -> Result<ItemView, ControlError> {
        if let Some(r) = patch.rename.as_deref().filter(|r| !r.is_empty())
            && (r.len() > 64
                || !r
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)))
        {
            return Err(ControlError::Invalid(
                "rename: 1-64 characters of A-Z a-z 0-9 _ - .".into(),
            ));
        }
        let (setting_enabled, setting_description, setting_rename) = {
            let _guard = self.lock.lock().await;
            self.record(server).await?;
            let current = self
                .store
                .list_item_settings(&self.config.tenant, server)
                .await?;
            let old = current
                .into_iter()
                .find(|s| s.kind == kind && s.name == name);
            let non_empty = |v: Option<String>, old: Option<String>| match v {
                Some(s) if s.is_empty() => None,
                Some(s) => Some(s),
                None => old,
            };
            let setting = ItemSetting {
                tenant: self.config.tenant.clone(),
                server: server.to_string(),
                kind,
                name: name.to_string(),
                enabled: patch
                    .enabled
                    .unwrap_or(old.as_ref().is_none_or(|o| o.enabled)),
                description: non_empty(
                    patch.description,
                    old.as_ref().and_then(|o| o.description.clone()),
                ),
                rename: non_empty(patch.rename, old.as_ref().and_then(|o| o.rename.clone())),
            };
            self.store.upsert_item_setting(&setting).await?;
            self.reconcile_locked().await?;
            (
                setting.enabled,
                setting.description.clone(),
                setting.rename.clone(),
            )
        };
        // A server that is down lists nothing: the setting still applies once it is back.
        let listed = self
            .list_items(server, kind)
            .await?
            .into_iter()
            .find(|i| i.name == name);
        Ok(listed.unwrap_or_else(|| ItemView {
            name: name.to_string(),
            exported_name: None,
            enabled: setting_enabled,
            description: None,
            description_override: setting_description,
            rename: setting_rename,
        }))
    }

    /// Removes one tool's or prompt's settings.
    pub async fn reset_item(
        &self,
        server: &str,
        kind: ItemKind,
        name: &str,
    ) -> Result<(), ControlError> {
        let _guard = self.lock.lock().await;
        if !self
            .store
            .delete_item_setting(&self.config.tenant, server, kind, name)
            .await?
        {
            return Err(ControlError::NotFound(format!(
                "no settings for {} {name:?} of {server:?}",
                kind.as_str()
            )));
        }
        self.reconcile_locked().await?;
        Ok(())
    }

    /// Every group.
    pub async fn list_groups(&self) -> Result<Vec<GroupInput>, ControlError> {
        let groups = self.store.list_groups(&self.config.tenant).await?;
        Ok(groups
            .into_iter()
            .map(|g| GroupInput {
                name: g.name,
                members: g.members,
                tools: g.tools,
            })
            .collect())
    }

    /// One group.
    pub async fn get_group(&self, name: &str) -> Result<GroupInput, ControlError> {
        self.list_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| ControlError::NotFound(format!("no group named {name:?}")))
    }

    /// Creates a group.
    pub async fn create_group(&self, input: GroupInput) -> Result<GroupInput, ControlError> {
        let record = self.group_record(input).await?;
        let _guard = self.lock.lock().await;
        self.store
            .insert_group(&record)
            .await
            .map_err(|e| conflict(e, &record.name))?;
        self.reconcile_locked().await?;
        Ok(GroupInput {
            name: record.name,
            members: record.members,
            tools: record.tools,
        })
    }

    /// Replaces a group's members and tool filter.
    pub async fn update_group(
        &self,
        name: &str,
        mut input: GroupInput,
    ) -> Result<GroupInput, ControlError> {
        if input.name.is_empty() {
            input.name = name.to_string();
        }
        if input.name != name {
            return Err(ControlError::Invalid(
                "renaming a group is not supported".into(),
            ));
        }
        let record = self.group_record(input).await?;
        let _guard = self.lock.lock().await;
        self.store
            .update_group(&record)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ControlError::NotFound(format!("no group named {name:?}")),
                e => e.into(),
            })?;
        self.reconcile_locked().await?;
        Ok(GroupInput {
            name: record.name,
            members: record.members,
            tools: record.tools,
        })
    }

    /// Deletes a group.
    pub async fn delete_group(&self, name: &str) -> Result<(), ControlError> {
        let _guard = self.lock.lock().await;
        if !self.store.delete_group(&self.config.tenant, name).await? {
            return Err(ControlError::NotFound(format!("no group named {name:?}")));
        }
        self.reconcile_locked().await?;
        Ok(())
    }

    async fn group_record(&self, input: GroupInput) -> Result<GroupRecord, ControlError> {
        switchboard_core::naming::validate_server_name(&input.name, &self.hub.config().separator)
            .map_err(|m| ControlError::Invalid(format!("name: {m}")))?;
        let servers = self.store.list_servers(&self.config.tenant).await?;
        if let Some(m) = input
            .members
            .iter()
            .find(|m| !servers.iter().any(|s| &s.name == *m))
        {
            return Err(ControlError::Invalid(format!(
                "members: no server named {m:?}"
            )));
        }
        Ok(GroupRecord {
            tenant: self.config.tenant.clone(),
            name: input.name,
            members: input.members,
            tools: input.tools,
        })
    }

    /// Seed flow `POST /api/mcp/add`: refuse a taken name, probe the server, and only then
    /// persist and mount it.
    pub async fn add_remote(
        &self,
        name: &str,
        url: &str,
        transport: Option<&str>,
        actor: &str,
    ) -> Result<(), ControlError> {
        switchboard_core::naming::validate_server_name(name, &self.hub.config().separator)
            .map_err(|m| ControlError::Invalid(format!("service_name: {m}")))?;
        if self
            .store
            .get_server(&self.config.tenant, name)
            .await?
            .is_some()
        {
            return Err(ControlError::Conflict(format!(
                "service name {name:?} already exists"
            )));
        }
        let spec = remote_spec(name, url, transport, BTreeMap::new())?;
        check_ssrf(&self.config.ssrf, url).await?;
        probe(&spec, &self.client, self.config.probe_timeout).await?;
        let record = record_from_spec(&self.config.tenant, &spec, actor, now_ms());
        let _guard = self.lock.lock().await;
        self.store
            .insert_server(&record)
            .await
            .map_err(|e| conflict(e, name))?;
        self.reconcile_locked().await?;
        Ok(())
    }

    /// Seed flows: the tenant's record of `name`, as stored.
    pub async fn stored_record(&self, name: &str) -> Result<Option<ServerRecord>, ControlError> {
        Ok(self.store.get_server(&self.config.tenant, name).await?)
    }

    /// Seed flows: every record of the tenant, as stored.
    pub async fn stored_records(&self) -> Result<Vec<ServerRecord>, ControlError> {
        Ok(self.store.list_servers(&self.config.tenant).await?)
    }

    /// Seed flow in split mode: record a server the MCP service has already mounted (no
    /// reconcile here: the MCP service runs it).
    pub async fn insert_record(&self, record: &ServerRecord) -> Result<(), ControlError> {
        Ok(self.store.insert_server(record).await?)
    }

    /// One page of the activity log.
    pub async fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRow>, ControlError> {
        Ok(self.store.list_activity(query).await?)
    }

    /// A tenant's activity since `since` (optionally one principal's), newest first, at most
    /// `limit` rows: what statistics are computed from.
    pub async fn activity_samples(
        &self,
        tenant: &str,
        principal: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<ActivitySample>, ControlError> {
        Ok(self
            .store
            .activity_samples(tenant, principal, since, limit)
            .await?)
    }

    /// Whether the store answers (a trivial query).
    pub async fn ping_store(&self) -> Result<(), ControlError> {
        Ok(self.store.ping().await?)
    }

    /// Seed flow `DELETE /api/mcp/`: remove the record first; `false` when there was none.
    pub async fn delete_record(&self, name: &str) -> Result<bool, ControlError> {
        let _guard = self.lock.lock().await;
        Ok(self.store.delete_server(&self.config.tenant, name).await?)
    }

    /// MCP service `POST /add-remote-proxies`: probe and mount without touching the store.
    pub async fn mount(
        &self,
        name: &str,
        url: &str,
        transport: Option<&str>,
    ) -> Result<(), ControlError> {
        switchboard_core::naming::validate_server_name(name, &self.hub.config().separator)
            .map_err(|m| ControlError::Invalid(format!("service_name: {m}")))?;
        if self.hub.upstream(name).is_some() {
            return Err(ControlError::Conflict(format!(
                "a proxy named {name:?} is already mounted"
            )));
        }
        let mut spec = remote_spec(name, url, transport, BTreeMap::new())?;
        check_ssrf(&self.config.ssrf, url).await?;
        probe(&spec, &self.client, self.config.probe_timeout).await?;
        // A stored record for the same name keeps its own timeout and headers.
        if let Some(r) = self.store.get_server(&self.config.tenant, name).await?
            && record_url(&r) == Some(url)
        {
            spec = crate::spec_from_record(&r);
        }
        self.hub.add_server(spec).await?;
        let stored = self
            .store
            .get_server(&self.config.tenant, name)
            .await?
            .is_some();
        self.set_managed(name, stored);
        Ok(())
    }

    /// MCP service `DELETE /remote-proxies`: unmount without touching the store.
    pub async fn unmount(&self, name: &str) -> Result<(), ControlError> {
        self.hub.remove_server(name).await?;
        self.set_managed(name, false);
        Ok(())
    }

    /// Seed flow `GET /api/mcp/recover`: mount every recorded server that is not running,
    /// reporting each outcome.
    pub async fn recover(&self) -> Result<Vec<Value>, ControlError> {
        let records = self.store.list_servers(&self.config.tenant).await?;
        let running = self.hub.server_names();
        let mut outcomes = Vec::new();
        for r in records
            .iter()
            .filter(|r| r.enabled && !running.contains(&r.name))
        {
            let outcome = match self.hub.add_server(crate::spec_from_record(r)).await {
                Ok(()) => {
                    self.set_managed(&r.name, true);
                    json!({"service_name": r.name, "status": "success"})
                }
                Err(e) => {
                    json!({"service_name": r.name, "status": "error", "message": e.to_string()})
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

/// One line when an API write takes a server over from the servers file.
fn log_takeover(old: &ServerRecord) {
    if old.origin == switchboard_store::ORIGIN_FILE {
        tracing::info!(message = "API edit of a server from the servers file: the API owns it now, and the file no longer changes it.", server = %old.name);
    }
}

/// True for an enabled stdio server: one that runs a process and counts against the limit.
pub(crate) fn runs_stdio(r: &ServerRecord) -> bool {
    r.enabled && matches!(r.transport, TransportRecord::Stdio { .. })
}

fn conflict(e: StoreError, name: &str) -> ControlError {
    match e {
        StoreError::Conflict => {
            ControlError::Conflict(format!("a server or group named {name:?} already exists"))
        }
        e => e.into(),
    }
}
