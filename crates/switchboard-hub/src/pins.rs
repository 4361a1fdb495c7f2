//! Tool-definition pinning (rug-pull detection) in the hub.
//!
//! The hub holds the approved digest of every pinned tool ([`ToolPins`], loaded from the store
//! by the control plane). Each catalog fetch hashes the tools once ([`switchboard_upstream::definition`]),
//! so checking costs a map lookup and happens only when a catalog changes:
//! - A server whose catalog is seen ready for the first time, with no pins at all, is pinned
//!   as it is (trust on first use) and a [`PinEvent::FirstUse`] asks the control plane to
//!   record it.
//! - A pinned server's tool whose digest differs from its pin, or that has no pin (a tool
//!   added after approval), is a change: logged once at warn, reported once as a
//!   [`PinEvent::Changed`] (the control plane audits it), and under
//!   [`OnToolChange::Hide`] left out of every list and refused on call (see `merged.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use switchboard_upstream::definition::{Digest, pin_of};
use tokio::sync::mpsc;

/// What the hub does when a tool's definition differs from the approved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnToolChange {
    /// Hide the tool from every list and refuse calls to it until an operator approves.
    Hide,
    /// Keep it visible; log, audit and flag it in the API.
    #[default]
    Warn,
    /// Do nothing (pins are still recorded, so a stricter mode has a baseline).
    Allow,
}

impl OnToolChange {
    /// `hide`, `warn` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnToolChange::Hide => "hide",
            OnToolChange::Warn => "warn",
            OnToolChange::Allow => "allow",
        }
    }
}

impl std::str::FromStr for OnToolChange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hide" => Ok(OnToolChange::Hide),
            "warn" => Ok(OnToolChange::Warn),
            "allow" => Ok(OnToolChange::Allow),
            other => Err(format!(
                "unknown tool-change policy {other:?}: use hide, warn or allow"
            )),
        }
    }
}

/// Approved digests: server -> tool name (as the server spells it) -> digest. A server present
/// with an empty map was approved with no tools.
pub type ToolPins = HashMap<String, HashMap<String, Digest>>;

/// One tool pinned on first use.
#[derive(Debug, Clone)]
pub struct PinnedTool {
    /// Its name as the server spells it.
    pub name: String,
    /// Its canonical definition.
    pub definition: String,
    /// SHA-256 of `definition`.
    pub digest: Digest,
}

/// What the hub tells the control plane about pins.
#[derive(Debug, Clone)]
pub enum PinEvent {
    /// A server was seen ready with no pins: these are its tools, approved on first use.
    FirstUse {
        /// Server name.
        server: String,
        /// Its tools.
        tools: Vec<PinnedTool>,
    },
    /// A tool's definition differs from its pin, or the tool has none (added after approval).
    Changed {
        /// Server name.
        server: String,
        /// Tool name as the server spells it.
        tool: String,
        /// True when the tool has no pin.
        new: bool,
        /// Its current definition (canonical JSON).
        definition: String,
        /// True when the tool is hidden (`hide`), false when only flagged (`warn`).
        hidden: bool,
    },
}

/// The hub's pin state.
#[derive(Default)]
pub(crate) struct PinState {
    /// The approved digests.
    pub(crate) pins: ArcSwap<ToolPins>,
    /// Set once the control plane loaded the store's pins; until then nothing is pinned on
    /// first use (a restart must not trust a changed catalog before the old pins are known).
    loaded: AtomicBool,
    /// Servers pinned on first use whose pins the store may not hold yet: a reload keeps them.
    unsaved: Mutex<HashSet<String>>,
    /// Per server, the changes already reported (tool -> current digest), so each is logged
    /// and audited once.
    reported: Mutex<HashMap<String, BTreeMap<String, Digest>>>,
    /// Where [`PinEvent`]s go.
    sink: Mutex<Option<mpsc::UnboundedSender<PinEvent>>>,
}

impl PinState {
    pub(crate) fn set_sink(&self, tx: mpsc::UnboundedSender<PinEvent>) {
        *self.sink.lock().expect("pin sink lock") = Some(tx);
    }

    fn emit(&self, event: PinEvent) {
        if let Some(tx) = self.sink.lock().expect("pin sink lock").as_ref() {
            let _ = tx.send(event);
        }
    }

    /// Replaces the pins with the store's; servers pinned on first use and not yet saved keep
    /// their in-memory pins. Returns the servers whose pins changed.
    pub(crate) fn replace(&self, mut next: ToolPins) -> Vec<String> {
        let current = self.pins.load_full();
        {
            let mut unsaved = self.unsaved.lock().expect("unsaved lock");
            unsaved.retain(|s| !next.contains_key(s));
            for s in unsaved.iter() {
                if let Some(p) = current.get(s) {
                    next.insert(s.clone(), p.clone());
                }
            }
        }
        let mut changed: Vec<String> = current
            .keys()
            .chain(next.keys())
            .filter(|s| current.get(*s) != next.get(*s))
            .cloned()
            .collect();
        changed.sort();
        changed.dedup();
        self.pins.store(std::sync::Arc::new(next));
        self.loaded.store(true, Ordering::Release);
        changed
    }

    /// Forgets a removed server.
    pub(crate) fn forget(&self, server: &str) {
        self.unsaved.lock().expect("unsaved lock").remove(server);
        self.reported.lock().expect("reported lock").remove(server);
        self.pins.rcu(|p| {
            let mut p = (**p).clone();
            p.remove(server);
            p
        });
    }

    /// Checks a ready server's tools against its pins (pinning them on first use). `tools`
    /// are (name, raw object, digest) of its current catalog.
    pub(crate) fn check(
        &self,
        server: &str,
        tools: &[(&str, &str, Option<Digest>)],
        mode: OnToolChange,
    ) {
        if !self.loaded.load(Ordering::Acquire) {
            return;
        }
        let pins = self.pins.load_full();
        let Some(approved) = pins.get(server) else {
            let pinned: Vec<PinnedTool> = tools
                .iter()
                .filter_map(|(name, raw, _)| {
                    let (definition, digest) = pin_of(raw)?;
                    Some(PinnedTool {
                        name: name.to_string(),
                        definition,
                        digest,
                    })
                })
                .collect();
            let map: HashMap<String, Digest> =
                pinned.iter().map(|t| (t.name.clone(), t.digest)).collect();
            self.pins.rcu(|p| {
                let mut p = (**p).clone();
                p.entry(server.to_string()).or_insert_with(|| map.clone());
                p
            });
            self.unsaved
                .lock()
                .expect("unsaved lock")
                .insert(server.to_string());
            tracing::info!(message = "Tool definitions pinned on first use.", %server, tools = pinned.len());
            self.emit(PinEvent::FirstUse {
                server: server.to_string(),
                tools: pinned,
            });
            return;
        };
        let drift: BTreeMap<String, Digest> = tools
            .iter()
            .filter_map(|(name, _, digest)| {
                let digest = (*digest)?;
                (approved.get(*name) != Some(&digest)).then(|| (name.to_string(), digest))
            })
            .collect();
        let fresh: Vec<(String, bool)> = {
            let mut reported = self.reported.lock().expect("reported lock");
            let before = reported.remove(server).unwrap_or_default();
            let fresh = drift
                .iter()
                .filter(|(tool, d)| before.get(*tool) != Some(*d))
                .map(|(tool, _)| (tool.clone(), !approved.contains_key(tool)))
                .collect();
            if !drift.is_empty() {
                reported.insert(server.to_string(), drift);
            }
            fresh
        };
        if mode == OnToolChange::Allow {
            return;
        }
        let hidden = mode == OnToolChange::Hide;
        for (tool, new) in fresh {
            let what = if new {
                "a tool added after approval"
            } else {
                "its definition changed since it was approved"
            };
            let action = if hidden {
                "hidden until an operator approves it"
            } else {
                "still served (--on-tool-change warn)"
            };
            tracing::warn!(message = "Tool definition changed.", %server, %tool, change = what, action);
            let definition = tools
                .iter()
                .find(|(n, _, _)| *n == tool)
                .and_then(|(_, raw, _)| pin_of(raw))
                .map(|(c, _)| c)
                .unwrap_or_default();
            self.emit(PinEvent::Changed {
                server: server.to_string(),
                tool,
                new,
                definition,
                hidden,
            });
        }
    }
}

/// True when `mode` hides a tool of `server` with `digest` under `pins`: the server is pinned
/// and the tool's digest is not its pin.
pub(crate) fn is_held(
    pins: &ToolPins,
    mode: OnToolChange,
    server: &str,
    tool: &str,
    digest: Option<&Digest>,
) -> bool {
    mode == OnToolChange::Hide
        && pins
            .get(server)
            .is_some_and(|p| digest.is_none_or(|d| p.get(tool) != Some(d)))
}
