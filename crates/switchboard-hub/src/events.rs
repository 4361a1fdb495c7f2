//! What the hub hears from its upstreams, passed to the client sessions that should hear
//! it: catalog changes (merged into one rebuild per burst, then `list_changed`), group
//! changes, notifications (log messages also to log taps, resource updates to subscribers),
//! and server requests outside any call.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_core::jsonrpc::notification_message;
use switchboard_upstream::{HubEvent, ListKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, HubInner};
use crate::merged::GroupDef;
use crate::reply;
use crate::view::View;

impl Hub {
    /// Log messages (`notifications/message`, whole message text) that server `name` sends
    /// outside any request stream, from now until the receiver is dropped. Messages are dropped
    /// when the receiver falls 64 behind.
    pub fn tap_logs(&self, name: &str) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(64);
        self.inner
            .log_taps
            .lock()
            .expect("log taps lock")
            .entry(name.to_string())
            .or_default()
            .push(tx);
        rx
    }
}

impl HubInner {
    /// Tells every initialized session that can see `server` that its lists changed.
    pub(crate) fn notify_list_changed(&self, server: &str, kinds: &[ListKind], removed: bool) {
        let merged = self.merged.load();
        let mut methods: Vec<&str> = kinds
            .iter()
            .map(|k| match k {
                ListKind::Tools => "notifications/tools/list_changed",
                ListKind::Prompts => "notifications/prompts/list_changed",
                ListKind::Resources | ListKind::Templates => "notifications/resources/list_changed",
            })
            .collect();
        methods.dedup();
        let told = self.sessions_where(|s| {
            let visible = match &s.view {
                View::Server(name) => name == server,
                v => removed || merged.in_view(v, server),
            };
            visible && s.initialized.load(std::sync::atomic::Ordering::Relaxed)
        });
        for s in told {
            for m in &methods {
                s.push(notification_message(m, None));
            }
        }
    }

    /// Tells sessions on a group endpoint whose membership or filter changed.
    pub(crate) fn notify_group_change(&self, before: &BTreeMap<String, GroupDef>) {
        let after = self.groups.load();
        let told = self.sessions_where(|s| {
            matches!(&s.view, View::Group(g) if before.get(g) != after.get(g))
                && s.initialized.load(std::sync::atomic::Ordering::Relaxed)
        });
        for s in told {
            for method in [
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
                "notifications/resources/list_changed",
            ] {
                s.push(notification_message(method, None));
            }
        }
    }

    /// Hands a log message to the server's taps, forgetting the ones whose receiver is gone.
    fn tap_log(&self, server: &str, text: &str) {
        let mut taps = self.log_taps.lock().expect("log taps lock");
        if let Some(list) = taps.get_mut(server) {
            list.retain(|tx| !tx.is_closed());
            for tx in list.iter() {
                let _ = tx.try_send(text.to_string());
            }
            if list.is_empty() {
                taps.remove(server);
            }
        }
    }

    fn forward_notification(&self, server: &str, method: &str, text: String) {
        if method == "notifications/subscriptions/acknowledged" {
            // The answer to the hub's own listen request to a stateless upstream.
            return;
        }
        if method == "notifications/message" {
            self.tap_log(server, &text);
        }
        let merged = self.merged.load();
        let uri = if method == "notifications/resources/updated" {
            updated_uri(&text)
        } else {
            None
        };
        let told = self.sessions_where(|s| {
            merged.in_view(&s.view, server)
                && s.initialized.load(std::sync::atomic::Ordering::Relaxed)
        });
        for s in told {
            match &uri {
                Some(u) => {
                    let exported = if matches!(s.view, View::Server(_)) {
                        None
                    } else {
                        merged.exported_uri(server, u)
                    };
                    let shown = exported.unwrap_or(u);
                    if s.subscriptions.lock().expect("subs lock").contains(shown) {
                        let params =
                            format!(r#"{{"uri":{}}}"#, switchboard_core::jsonrpc::quote(shown));
                        self.push_or_relay(&s, notification_message(method, Some(&params)));
                    }
                }
                None => {
                    s.push(text.clone());
                }
            }
        }
    }
}

fn updated_uri(text: &str) -> Option<String> {
    let env = switchboard_core::jsonrpc::Envelope::parse(text).ok()?;
    let fields = switchboard_core::jsonrpc::Fields::parse(env.params?.get())?;
    fields.get_str("uri").map(|u| u.into_owned())
}

pub(crate) async fn event_loop(
    hub: std::sync::Weak<HubInner>,
    mut rx: mpsc::Receiver<HubEvent>,
    cancel: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = rx.recv() => ev,
        };
        let Some(first) = first else { return };
        let Some(hub) = hub.upgrade() else { return };
        // Coalesce a burst (many servers connecting at once) into one rebuild.
        let mut batch = vec![first];
        while let Ok(ev) = rx.try_recv() {
            batch.push(ev);
        }
        let changed: Vec<(String, Vec<ListKind>)> = batch
            .iter()
            .filter_map(|ev| match ev {
                HubEvent::CatalogChanged { server, kinds } => Some((server.clone(), kinds.clone())),
                _ => None,
            })
            .collect();
        if !changed.is_empty() {
            hub.rebuild();
            for (server, kinds) in &changed {
                hub.notify_list_changed(server, kinds, false);
            }
            for (server, kinds) in &changed {
                if kinds.contains(&ListKind::Tools) {
                    hub.check_pins(server);
                }
            }
        }
        for ev in batch {
            match ev {
                HubEvent::CatalogChanged { .. } => {}
                HubEvent::Notification {
                    server,
                    method,
                    text,
                } => hub.forward_notification(&server, &method, text),
                HubEvent::ServerRequest { server, text } => {
                    refuse_server_request(&hub, &server, &text)
                }
                HubEvent::ClientMessage {
                    client,
                    conn,
                    text,
                    is_request,
                    ..
                } => deliver_to_client(Hub { inner: hub.clone() }, &client, conn, text, is_request),
            }
        }
    }
}

/// A per-client upstream session spoke outside any call: only its own client hears it.
fn deliver_to_client(
    hub: Hub,
    client: &str,
    conn: Arc<switchboard_upstream::Connection>,
    text: String,
    is_request: bool,
) {
    let Some(session) = hub.session(client) else {
        return;
    };
    if !is_request {
        session.push(text);
        return;
    }
    tokio::spawn(async move {
        let sink = session.sender().clone();
        hub.forward_server_request(&session, &conn, text, &sink)
            .await;
    });
}

/// A server request that no in-flight call claimed has no client to go to: refuse it.
fn refuse_server_request(hub: &HubInner, server: &str, text: &str) {
    let Ok(env) = switchboard_core::jsonrpc::Envelope::parse(text) else {
        return;
    };
    let reply = reply::method_not_found(
        env.id_text(),
        "the hub has no client to route this request to (it was not made while serving a client's request)",
    );
    if let Some(up) = hub.upstreams.load().get(server)
        && let Ok(conn) = up.connection()
    {
        tokio::spawn(async move {
            let _ = conn.send(reply).await;
        });
    }
}
