//! The usage prior's memory across restarts: when a tenant's plane starts, the tool calls its
//! hub routed in the last [`HISTORY`] are read back from the activity log (at most
//! [`HISTORY_ROWS`] rows, newest first) and counted into the hub's tool search, off the
//! start-up path. A store that cannot answer costs the prior its history, nothing else.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use crate::{ControlPlane, now_ms};

/// How far back the history reaches.
pub const HISTORY: Duration = Duration::from_secs(7 * 86_400);

/// Most activity rows read for it.
pub const HISTORY_ROWS: i64 = 200_000;

/// Reads the history in the background and hands it to the plane's hub.
pub(crate) fn spawn_loader(control: Weak<ControlPlane>) {
    tokio::spawn(async move {
        let Some(control) = control.upgrade() else {
            return;
        };
        if !control.hub.usage_prior_enabled() {
            return;
        }
        let tenant = control.config.tenant.clone();
        let since = now_ms() - HISTORY.as_millis() as i64;
        let samples = match control
            .store
            .activity_samples(&tenant, None, since, HISTORY_ROWS)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    message = "Cannot read the tool call history for the usage prior; it starts empty.",
                    tenant = %tenant,
                    error = %e
                );
                return;
            }
        };
        // Calls the hub routed (it knew the server), as it counts them itself: by their
        // `/mcp` name, which a single server's endpoint (`/mcp/{server}`) leaves unprefixed.
        let sep = &control.hub.config().separator;
        let mut calls: HashMap<String, u32> = HashMap::new();
        for s in samples {
            let (Some(server), Some(tool)) = (s.server, s.target) else {
                continue;
            };
            if s.method != "tools/call" {
                continue;
            }
            let name = if s.endpoint == format!("server:{server}") {
                format!("{server}{sep}{tool}")
            } else {
                tool
            };
            *calls.entry(name).or_default() += 1;
        }
        tracing::debug!(tenant = %tenant, tools = calls.len(), "usage prior history loaded");
        control.hub.add_call_history(calls);
    });
}
