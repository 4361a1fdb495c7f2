//! `requestState` for Multi Round-Trip Requests (SEP-2322).
//!
//! The state a client echoes back is untrusted. This fixture keeps the real
//! state server-side and hands out an unguessable 128-bit handle, so a handle
//! the server did not issue (tampered, truncated, invented) simply does not
//! resolve and the retry is rejected with -32602. Each handle is bound to the
//! tool (or prompt) that issued it and expires after [`STATE_TTL`]; at most
//! [`MAX_STATES`] are kept (oldest evicted first). All sessions and stateless
//! requests of one server instance share the store, as stateless 2026-07-28
//! retries may arrive on any connection.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use serde_json::Value;

/// How long an issued `requestState` stays valid.
const STATE_TTL: Duration = Duration::from_secs(600);
/// Upper bound on live handles.
const MAX_STATES: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    /// The tool or prompt that issued the handle.
    owner: String,
    data: Value,
    issued: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
}

/// Issued `requestState` handles.
#[derive(Debug, Default)]
pub(crate) struct StateStore {
    inner: Mutex<Inner>,
}

/// Why an echoed `requestState` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateError {
    /// Never issued by this server, evicted, or expired.
    Unknown,
    /// Issued for another tool or prompt.
    WrongOwner,
}

impl StateStore {
    /// Stores `data` for `owner` and returns the opaque handle.
    pub(crate) fn issue(&self, owner: &str, data: Value) -> String {
        let token = random_token();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while inner.order.len() >= MAX_STATES {
            if let Some(oldest) = inner.order.pop_front() {
                inner.entries.remove(&oldest);
            }
        }
        inner.entries.insert(
            token.clone(),
            Entry {
                owner: owner.to_owned(),
                data,
                issued: Instant::now(),
            },
        );
        inner.order.push_back(token.clone());
        token
    }

    /// The data behind `token`, if `owner` issued it and it has not expired.
    pub(crate) fn resolve(&self, owner: &str, token: &str) -> Result<Value, StateError> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = inner.entries.get(token).ok_or(StateError::Unknown)?;
        if entry.issued.elapsed() > STATE_TTL {
            return Err(StateError::Unknown);
        }
        if entry.owner != owner {
            return Err(StateError::WrongOwner);
        }
        Ok(entry.data.clone())
    }
}

/// 32 lowercase hex digits from the OS random source.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Practically unreachable; still unique per process and call.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn issued_state_resolves_only_for_its_owner() {
        let store = StateStore::default();
        let token = store.issue("a", json!({"round": 1}));
        assert_eq!(store.resolve("a", &token), Ok(json!({"round": 1})));
        assert_eq!(store.resolve("b", &token), Err(StateError::WrongOwner));
        assert_eq!(
            store.resolve("a", &format!("{token}-TAMPERED")),
            Err(StateError::Unknown)
        );
    }
}
