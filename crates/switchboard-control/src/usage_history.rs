//! The usage prior's memory across restarts: when a tenant's plane starts, the successful
//! tool calls its hub routed in the last [`HISTORY`] are counted in the activity log, per
//! tool and hour (one grouped query, at most [`HISTORY_GROUPS`] groups, given
//! [`READ_TIMEOUT`]), and handed to the hub's tool search, off the start-up path. Calls
//! made after the plane started are left out: the hub counts those itself. A store that
//! cannot answer costs the prior its history, nothing else.

use std::sync::Weak;
use std::time::Duration;

use crate::{ControlPlane, now_ms};

/// How far back the history reaches.
pub const HISTORY: Duration = Duration::from_secs(7 * 86_400);

/// Most (tool, hour) counts read.
pub const HISTORY_GROUPS: i64 = 100_000;

/// How long the read may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

const HOUR_MS: i64 = 3_600_000;

/// Reads the history in the background and hands it to the plane's hub.
pub(crate) fn spawn_loader(control: Weak<ControlPlane>) {
    let started = now_ms();
    tokio::spawn(async move {
        let Some(control) = control.upgrade() else {
            return;
        };
        if !control.hub.usage_prior_enabled() {
            return;
        }
        let (store, hub) = (control.store.clone(), control.hub.clone());
        let tenant = control.config.tenant.clone();
        drop(control);
        let since = started - HISTORY.as_millis() as i64;
        let read = store.tool_call_hours(&tenant, since, started, HISTORY_GROUPS);
        let hours = match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(hours)) => hours,
            Ok(Err(e)) => {
                tracing::warn!(
                    message = "Cannot read the tool call history for the usage prior; it starts empty.",
                    tenant = %tenant,
                    error = %e
                );
                return;
            }
            Err(_) => {
                tracing::warn!(
                    message = "Reading the tool call history for the usage prior timed out; it starts empty.",
                    tenant = %tenant,
                    timeout_s = READ_TIMEOUT.as_secs()
                );
                return;
            }
        };
        tracing::debug!(tenant = %tenant, groups = hours.len(), "usage prior history loaded");
        // An hour's calls count as made in its middle (or at the start, for this hour's).
        hub.add_call_history(hours.into_iter().map(|h| {
            let at = (h.hour * HOUR_MS + HOUR_MS / 2).min(started);
            (h.target, h.calls as f64, at as f64 / 1000.0)
        }));
    });
}
