//! Channels that carry both eras: stdio, and a legacy SSE session. A request whose `_meta`
//! names a protocol revision, on a channel that has not sent `initialize`, is served
//! statelessly on a session of its own; everything else goes to the channel's session.

use std::sync::Arc;

use switchboard_core::jsonrpc::{Envelope, Fields, Kind};

use crate::hub::Hub;
use crate::session::ClientSession;
use crate::stateless::META_VERSION;

/// How a message on a channel that carries both eras is to be served.
enum Marked {
    /// A request marked 2026-07-28 (its `_meta` names a protocol revision) on a channel that
    /// did not `initialize`: served statelessly. Holds the request's id.
    Stateless(String),
    /// A `notifications/cancelled` naming a request: the id.
    Cancel(String),
    /// Anything else: the channel's own session.
    Session,
}

fn marked(channel: &ClientSession, env: &Envelope<'_>, params: Option<&Fields<'_>>) -> Marked {
    match env.kind() {
        Ok(Kind::Request) if channel.client_info().is_none() => {
            let versioned = params
                .and_then(|p| p.get("_meta"))
                .and_then(|m| Fields::parse(m.get()))
                .is_some_and(|m| m.get(META_VERSION).is_some());
            if versioned {
                Marked::Stateless(env.id_text().to_string())
            } else {
                Marked::Session
            }
        }
        Ok(Kind::Notification) if env.method() == "notifications/cancelled" => params
            .and_then(|p| p.get("requestId"))
            .map_or(Marked::Session, |id| Marked::Cancel(id.get().to_string())),
        _ => Marked::Session,
    }
}

/// Forgets a channel's stateless request when it ends, however it ends.
struct InFlight<'a> {
    channel: &'a ClientSession,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.channel
            .stateless_calls
            .lock()
            .expect("stateless calls lock")
            .remove(&self.id);
    }
}

impl Hub {
    /// One message from a channel that carries both eras: stdio, or a legacy SSE session. A
    /// request whose `_meta` names a protocol revision, on a channel that has not sent
    /// `initialize`, is a stateless 2026-07-28 request: it is served on a session of its own,
    /// exactly as over Streamable HTTP (`_meta` checks, `resultType` and cache hints), with
    /// its progress and reply on `sink`. Everything else goes to the channel's session.
    pub async fn handle_channel(
        &self,
        channel: &Arc<ClientSession>,
        text: &str,
        sink: &crate::outbox::Outbox,
    ) -> Option<String> {
        // Parsed once here, and not again by the session that serves it; a malformed message
        // goes to the channel's session, which reports it.
        let Ok(env) = Envelope::parse(text) else {
            return self.handle(channel, text, sink).await;
        };
        let params = env.params.and_then(|p| Fields::parse(p.get()));
        let params = params.as_ref();
        match marked(channel, &env, params) {
            Marked::Stateless(id) => {
                let session = self.stateless_session(channel.view.clone(), None);
                if let Some(h) = channel.user_headers.get() {
                    session.set_user_headers(h.clone());
                }
                let cancel = tokio_util::sync::CancellationToken::new();
                channel
                    .stateless_calls
                    .lock()
                    .expect("stateless calls lock")
                    .insert(id.clone(), cancel.clone());
                let _forget = InFlight { channel, id };
                tokio::select! {
                    reply = self.handle_parsed(&session, text, &env, params, sink) => reply,
                    // Cancelled: the request is dropped (and so cancelled upstream), unanswered.
                    _ = cancel.cancelled() => None,
                }
            }
            Marked::Cancel(id) => {
                let cancel = channel
                    .stateless_calls
                    .lock()
                    .expect("stateless calls lock")
                    .remove(&id);
                match cancel {
                    Some(c) => {
                        c.cancel();
                        None
                    }
                    None => self.handle_parsed(channel, text, &env, params, sink).await,
                }
            }
            Marked::Session => self.handle_parsed(channel, text, &env, params, sink).await,
        }
    }
}
