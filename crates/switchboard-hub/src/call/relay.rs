//! What an upstream sends while serving a call, passed to the client: progress under the
//! client's own token, log messages as they are, and the upstream's own requests (sampling,
//! elicitation, roots) forwarded under hub ids when the client declared what they need.

use std::sync::Arc;

use switchboard_core::jsonrpc::{Envelope, Fields, Splice, quote};
use switchboard_upstream::{CallEvent, Connection};

use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::reply;
use crate::session::{ClientSession, ForwardedRequest};

impl Hub {
    /// Relays one message the upstream sent while serving a request.
    pub(crate) async fn relay(
        &self,
        session: &Arc<ClientSession>,
        conn: &Arc<Connection>,
        ev: CallEvent,
        token: Option<&str>,
        sink: &Outbox,
    ) {
        match ev {
            CallEvent::Notification(text) => {
                // Progress goes back under the client's own token (none asked: dropped);
                // other notifications (log messages) pass as they are.
                let env = Envelope::parse(&text).ok();
                let old = env
                    .as_ref()
                    .filter(|e| e.method() == "notifications/progress")
                    .and_then(|e| e.params)
                    .and_then(|p| Fields::parse(p.get()))
                    .and_then(|f| f.get("progressToken"));
                let out = match (old, token) {
                    (Some(old), Some(tok)) => {
                        let mut sp = Splice::new();
                        sp.replace(&text, old.get(), tok);
                        sp.apply(&text)
                    }
                    (Some(_), None) => return,
                    (None, _) => text.clone(),
                };
                let _ = sink.send(out).await;
            }
            CallEvent::ServerRequest(text) => {
                self.forward_server_request(session, conn, text, sink).await
            }
        }
    }

    /// Sends an upstream's request to the client under a hub id (`sb-<replica>-<n>`), or
    /// refuses it upstream when the client cannot be asked.
    pub(crate) async fn forward_server_request(
        &self,
        session: &Arc<ClientSession>,
        conn: &Arc<Connection>,
        text: String,
        sink: &Outbox,
    ) {
        let Ok(env) = Envelope::parse(&text) else {
            return;
        };
        let needed = needed_capability(env.method());
        if session.stateless {
            // A stateless client has no stream for server requests; bridging them as
            // multi-round-trip requests is not implemented yet.
            let msg =
                "the client uses the stateless protocol and cannot be asked this through the hub";
            let _ = conn.send(reply::method_not_found(env.id_text(), msg)).await;
            return;
        }
        if !needed.is_empty() && !session.client_has(needed) {
            let _ = conn.send(reply::undeclared(env.id_text(), needed)).await;
            return;
        }
        let n = session
            .next_forward
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hub_id = quote(&format!("sb-{}-{n}", self.inner.replica.tag));
        session.forwarded.lock().expect("forwarded lock").insert(
            hub_id.clone(),
            ForwardedRequest::Upstream {
                conn: conn.clone(),
                upstream_id: env.id_text().to_string(),
            },
        );
        let mut sp = Splice::new();
        sp.replace(&text, env.id_text(), hub_id);
        let _ = sink.send(sp.apply(&text)).await;
    }
}

/// The client capability a server-to-client request needs (`""` for any other method).
pub(crate) fn needed_capability(method: &str) -> &'static str {
    match method {
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        _ => "",
    }
}
