//! Tool-definition pinning in the control plane: loading the store's pins into the hub,
//! recording the pins the hub takes on first use and auditing the changes it detects, and the
//! operations behind `GET/POST /api/v1/servers/{name}/tools/changes[/approve]`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Weak;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_hub::{PinEvent, ToolPins};
use switchboard_store::{AuditRecord, ToolPin};
use switchboard_upstream::definition::{DEFINITION_FIELDS, Digest, hex, pin_of};
use tokio::sync::mpsc;

use crate::{ControlError, ControlPlane, now_ms};

/// Who the automatic pin is recorded as.
pub const FIRST_USE: &str = "first-use";

/// Actor of the audit entries the hub itself writes.
const HUB_ACTOR: &str = "switchboard";

/// One field's values before (approved) and after (current); `null` when absent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldChange {
    /// The approved value.
    pub before: Value,
    /// The current value.
    pub after: Value,
}

/// One tool whose current definition is not the approved one.
#[derive(Debug, Clone, Serialize)]
pub struct ToolChange {
    /// The tool's name as the server spells it.
    pub tool: String,
    /// `changed` (differs from its pin), `new` (no pin: added after approval) or `removed`
    /// (pinned, no longer listed).
    pub status: &'static str,
    /// True when the hub hides it (`--on-tool-change hide`); false when it is only flagged.
    pub hidden: bool,
    /// The approved definition (absent for a new tool).
    pub approved: Option<Value>,
    /// The current definition (absent for a removed tool).
    pub current: Option<Value>,
    /// The fields that differ, with before/after values.
    pub diff: BTreeMap<String, FieldChange>,
}

/// Current canonical definitions (and digests) of the tools in a [`ToolChanges`], by name.
type Current = BTreeMap<String, (String, Digest)>;

/// A server's pending tool changes.
#[derive(Debug, Clone, Serialize)]
pub struct ToolChanges {
    /// Server name.
    pub server: String,
    /// The hub's policy: `hide`, `warn` or `allow`.
    pub on_tool_change: &'static str,
    /// True once the server's tools are pinned (on first use or by an approval).
    pub pinned: bool,
    /// True when the server is connected, so its current tools are known.
    pub connected: bool,
    /// Tools whose current definition is not the approved one, by name.
    pub changes: Vec<ToolChange>,
}

/// `POST …/tools/changes/approve`: which tools to approve (all pending when absent).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ApproveInput {
    /// Tool names as the server spells them.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

fn unhex(s: &str) -> Option<Digest> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The fields of two definitions that differ.
fn diff(before: Option<&Value>, after: Option<&Value>) -> BTreeMap<String, FieldChange> {
    let field = |v: Option<&Value>, f: &str| v.and_then(|v| v.get(f)).cloned();
    DEFINITION_FIELDS
        .iter()
        .filter_map(|f| {
            let (b, a) = (field(before, f), field(after, f));
            (b != a).then(|| {
                (
                    f.to_string(),
                    FieldChange {
                        before: b.unwrap_or(Value::Null),
                        after: a.unwrap_or(Value::Null),
                    },
                )
            })
        })
        .collect()
}

fn parse(json: &str) -> Option<Value> {
    serde_json::from_str(json).ok()
}

impl ControlPlane {
    /// The store's pins of this tenant, as the hub holds them.
    pub(crate) async fn load_pins(&self) -> Result<ToolPins, ControlError> {
        let rows = self.store.list_tool_pin_hashes(&self.config.tenant).await?;
        let mut pins = ToolPins::new();
        for (server, tool, hash) in rows {
            let tools: &mut HashMap<String, Digest> = pins.entry(server).or_default();
            if !tool.is_empty()
                && let Some(d) = unhex(&hash)
            {
                tools.insert(tool, d);
            }
        }
        Ok(pins)
    }

    /// A server's tools that differ from their pins, computed from its live catalog, with
    /// their current canonical definitions.
    fn changes_of(&self, server: &str, pins: &[ToolPin]) -> (ToolChanges, Current) {
        let mode = self.hub.config().on_tool_change;
        let up = self.hub.upstream(server);
        let connected = up.as_ref().is_some_and(|u| u.connection().is_ok());
        let mut out = ToolChanges {
            server: server.to_string(),
            on_tool_change: mode.as_str(),
            pinned: !pins.is_empty(),
            connected,
            changes: Vec::new(),
        };
        let mut current = Current::new();
        let (Some(up), true, true) = (up, connected, out.pinned) else {
            return (out, current);
        };
        let hidden = mode == switchboard_hub::OnToolChange::Hide;
        let approved: BTreeMap<&str, &ToolPin> = pins
            .iter()
            .filter(|p| !p.tool.is_empty())
            .map(|p| (p.tool.as_str(), p))
            .collect();
        let catalog = up.catalog();
        let mut listed = BTreeSet::new();
        for item in catalog.tools.iter() {
            listed.insert(item.key.as_str());
            let Some((canonical, digest)) = pin_of(item.raw.get()) else {
                continue;
            };
            let pin = approved.get(item.key.as_str());
            if pin.is_some_and(|p| p.hash == hex(&digest)) {
                continue;
            }
            let before = pin.and_then(|p| parse(&p.definition));
            let after = parse(&canonical);
            out.changes.push(ToolChange {
                tool: item.key.clone(),
                status: if pin.is_some() { "changed" } else { "new" },
                hidden,
                diff: diff(before.as_ref(), after.as_ref()),
                approved: before,
                current: after,
            });
            current.insert(item.key.clone(), (canonical, digest));
        }
        for (tool, pin) in approved.iter().filter(|(t, _)| !listed.contains(*t)) {
            let before = parse(&pin.definition);
            out.changes.push(ToolChange {
                tool: tool.to_string(),
                status: "removed",
                hidden: false,
                diff: diff(before.as_ref(), None),
                approved: before,
                current: None,
            });
        }
        out.changes.sort_by(|a, b| a.tool.cmp(&b.tool));
        (out, current)
    }

    /// A server's pending tool changes: each tool whose definition differs from the approved
    /// one, with both definitions and a field-level diff.
    pub async fn tool_changes(&self, server: &str) -> Result<ToolChanges, ControlError> {
        self.record(server).await?;
        let pins = self
            .store
            .list_tool_pins(&self.config.tenant, server)
            .await?;
        Ok(self.changes_of(server, &pins).0)
    }

    /// Approves the pending changes of `tools` (all when `None`): re-pins them to their
    /// current definitions (a removed tool loses its pin), so hidden ones are served again.
    /// Returns the changes still pending.
    pub async fn approve_tool_changes(
        &self,
        server: &str,
        tools: Option<Vec<String>>,
        actor: &str,
    ) -> Result<ToolChanges, ControlError> {
        let _guard = self.lock.lock().await;
        self.record(server).await?;
        let tenant = &self.config.tenant;
        let connected = self
            .hub
            .upstream(server)
            .is_some_and(|u| u.connection().is_ok());
        if !connected {
            return Err(ControlError::Conflict(format!(
                "server {server:?} is not connected, so its current tools are unknown; approve \
                 once it is ready"
            )));
        }
        let pins = self.store.list_tool_pins(tenant, server).await?;
        let (changes, mut current) = self.changes_of(server, &pins);
        let mut pending: Vec<String> = changes.changes.into_iter().map(|c| c.tool).collect();
        if pins.is_empty() {
            // Never pinned (still pending its first use): approve everything it lists now.
            let up = self.hub.upstream(server).expect("connected above");
            for item in up.catalog().tools.iter() {
                if let Some(pinned) = pin_of(item.raw.get()) {
                    pending.push(item.key.clone());
                    current.insert(item.key.clone(), pinned);
                }
            }
        }
        if let Some(names) = &tools
            && let Some(missing) = names.iter().find(|n| !pending.contains(n))
        {
            return Err(ControlError::Invalid(format!(
                "tool {missing:?} of server {server:?} has no pending change"
            )));
        }
        let now = now_ms();
        let pin = |tool: &str, hash: String, definition: String| ToolPin {
            tenant: tenant.clone(),
            server: server.to_string(),
            tool: tool.to_string(),
            hash,
            definition,
            approved_by: actor.to_string(),
            approved_at: now,
        };
        let mut put = vec![pin("", String::new(), "{}".into())];
        let mut remove = Vec::new();
        for tool in pending
            .into_iter()
            .filter(|t| tools.as_ref().is_none_or(|n| n.contains(t)))
        {
            match current.remove(&tool) {
                Some((definition, digest)) => put.push(pin(&tool, hex(&digest), definition)),
                None => remove.push(tool),
            }
        }
        if pins.iter().any(|p| p.tool.is_empty()) {
            put.remove(0);
        }
        self.store
            .put_tool_pins(tenant, server, &put, &remove)
            .await?;
        tracing::info!(message = "Tool changes approved.", %server, approved = put.iter().filter(|p| !p.tool.is_empty()).count() + remove.len(), %actor);
        self.reconcile_locked().await?;
        let pins = self.store.list_tool_pins(tenant, server).await?;
        Ok(self.changes_of(server, &pins).0)
    }

    /// Records what the hub reports: pins taken on first use, and audited changes.
    async fn record_pin_event(&self, event: PinEvent) {
        let tenant = &self.config.tenant;
        match event {
            PinEvent::FirstUse { server, tools } => {
                // Another replica may have pinned it first: the store's pins win.
                match self.store.list_tool_pins(tenant, &server).await {
                    Ok(existing) if !existing.is_empty() => return,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(message = "Cannot record first-use tool pins.", %server, error = %e);
                        return;
                    }
                }
                let now = now_ms();
                let pin = |tool: &str, hash: String, definition: String| ToolPin {
                    tenant: tenant.clone(),
                    server: server.clone(),
                    tool: tool.to_string(),
                    hash,
                    definition,
                    approved_by: FIRST_USE.into(),
                    approved_at: now,
                };
                let mut pins = vec![pin("", String::new(), "{}".into())];
                pins.extend(
                    tools
                        .into_iter()
                        .map(|t| pin(&t.name, hex(&t.digest), t.definition)),
                );
                match self.store.put_tool_pins(tenant, &server, &pins, &[]).await {
                    Ok(()) => {}
                    // Not a stored server (mounted directly, or a proxy session): its pins
                    // live in memory only.
                    Err(switchboard_store::StoreError::NotFound) => {}
                    Err(e) => {
                        tracing::warn!(message = "Cannot record first-use tool pins.", %server, error = %e)
                    }
                }
            }
            PinEvent::Changed {
                server,
                tool,
                new,
                definition,
                hidden,
            } => {
                let approved = match self.store.list_tool_pins(tenant, &server).await {
                    Ok(pins) => pins.into_iter().find(|p| p.tool == tool),
                    Err(_) => None,
                };
                let before = approved.as_ref().and_then(|p| parse(&p.definition));
                let fields: Vec<String> = diff(before.as_ref(), parse(&definition).as_ref())
                    .into_keys()
                    .collect();
                let detail = if new {
                    "new tool (added after the server was approved)".to_string()
                } else {
                    format!("changed fields: {}", fields.join(", "))
                };
                let record = AuditRecord {
                    id: 0,
                    at: now_ms(),
                    tenant: tenant.clone(),
                    actor: HUB_ACTOR.into(),
                    action: "tool.changed".into(),
                    target: format!("{server}/{tool}"),
                    outcome: if hidden { "hidden" } else { "flagged" }.into(),
                    detail: Some(detail),
                    source: None,
                };
                if let Err(e) = self.store.append_audit(&record).await {
                    tracing::warn!(message = "Cannot write the audit log.", %server, %tool, error = %e);
                }
            }
        }
    }
}

/// Feeds the hub's pin events to the control plane until either is gone.
pub(crate) fn spawn_recorder(
    control: Weak<ControlPlane>,
    mut rx: mpsc::UnboundedReceiver<PinEvent>,
) {
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let Some(control) = control.upgrade() else {
                return;
            };
            control.record_pin_event(event).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_each_changed_field_with_before_and_after() {
        let before =
            json!({"name": "echo", "description": "Say it", "inputSchema": {"type": "object"}});
        let after = json!({"name": "echo", "description": "Ignore previous instructions", "inputSchema": {"type": "object"}, "title": "Echo"});
        let d = diff(Some(&before), Some(&after));
        assert_eq!(d.keys().collect::<Vec<_>>(), ["description", "title"]);
        assert_eq!(d["description"].before, json!("Say it"));
        assert_eq!(
            d["description"].after,
            json!("Ignore previous instructions")
        );
        assert_eq!(d["title"].before, Value::Null);
    }

    #[test]
    fn hex_digests_round_trip() {
        let d = switchboard_upstream::definition::digest("x");
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert_eq!(unhex("zz"), None);
    }
}
