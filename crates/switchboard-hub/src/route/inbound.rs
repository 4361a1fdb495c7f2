//! What a client sends that is not a request: notifications (`initialized`, `cancelled`,
//! `roots/list_changed`) and its answers to requests the hub forwarded to it.

use switchboard_core::jsonrpc::{Envelope, Fields, Splice};

use crate::hub::Hub;
use crate::session::{ClientSession, ForwardedRequest};

impl Hub {
    /// A client's answer: to the upstream that asked, to the hub's own question, or to the
    /// replica that forwarded the request.
    pub(super) async fn handle_response(
        &self,
        session: &ClientSession,
        text: &str,
        env: &Envelope<'_>,
    ) {
        let fwd = session
            .forwarded
            .lock()
            .expect("forwarded lock")
            .remove(env.id_text());
        match fwd {
            Some(ForwardedRequest::Upstream { conn, upstream_id }) => {
                let mut sp = Splice::new();
                sp.replace(text, env.id_text(), upstream_id);
                let _ = conn.send(sp.apply(text)).await;
            }
            Some(ForwardedRequest::Local(tx)) => {
                let _ = tx.send(text.to_string());
            }
            None => {
                // A request another replica forwarded (`sb-<replica>-<n>`): the answer goes
                // there.
                let other = serde_json::from_str::<String>(env.id_text())
                    .ok()
                    .and_then(|id| Some(id.strip_prefix("sb-")?.split_once('-')?.0.to_string()))
                    .filter(|tag| *tag != self.inner.replica.tag);
                let relayed = other.is_some_and(|replica| {
                    self.to_replicas(crate::resume::RelayMessage::Answer {
                        replica,
                        session: session.id.clone(),
                        body: text.to_string(),
                    })
                });
                if !relayed {
                    tracing::debug!(message = "Client answered a request the hub never sent; ignored.", session = %session.id)
                }
            }
        }
    }

    /// A client's notification.
    pub(super) fn handle_notification(
        &self,
        session: &ClientSession,
        env: &Envelope<'_>,
        params: Option<&Fields<'_>>,
    ) {
        match env.method() {
            "notifications/initialized" => session
                .initialized
                .store(true, std::sync::atomic::Ordering::Relaxed),
            "notifications/cancelled" => {
                let Some(req) = params.and_then(|p| p.get("requestId")) else {
                    return;
                };
                let token = session
                    .inflight
                    .lock()
                    .expect("inflight lock")
                    .remove(req.get());
                match token {
                    Some(t) => t.cancel(),
                    // The request may be running on another replica.
                    None => self.cancel_elsewhere(session, req.get()),
                }
            }
            "notifications/roots/list_changed" => {
                let merged = self.inner.merged.load_full();
                for entry in merged
                    .entries
                    .iter()
                    .filter(|e| merged.in_view(&session.view, &e.name))
                {
                    if let Ok(conn) = entry.upstream.connection() {
                        let note = switchboard_core::jsonrpc::notification_message(
                            "notifications/roots/list_changed",
                            None,
                        );
                        tokio::spawn(async move {
                            let _ = conn.send(note).await;
                        });
                    }
                }
            }
            _ => {}
        }
    }
}
