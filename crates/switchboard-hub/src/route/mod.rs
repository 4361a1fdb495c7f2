//! Routing of client messages: [`Hub::handle`] parses each message once, answers what the
//! hub owns and hands the rest to the room that serves its method.
//!
//! - `observed.rs`: a request timed, traced and reported to the observer.
//! - `handshake.rs`: `initialize`, `server/discover`, `ping`, `logging/setLevel`.
//! - `lists.rs`: the merged `*/list` results, paged, and tool search.
//! - `named.rs`: `tools/call`, `prompts/get` and `completion/complete`, routed by name.
//! - `resources.rs`: `resources/read`, `subscribe` and `unsubscribe`, routed by URI.
//! - `tasks.rs`: the Tasks extension's `tasks/*`.
//! - `inbound.rs`: what a client sends that is not a request (notifications, answers).
//! - `channel.rs`: channels that carry both eras (stdio, legacy SSE).
//!
//! A routed request becomes a [`crate::call::Call`]; relayed messages are never
//! re-serialised (the call splices ids, names and tokens into the client's own bytes).

mod channel;
mod handshake;
mod inbound;
mod lists;
mod named;
mod observed;
mod resources;
mod tasks;

use std::sync::Arc;

use switchboard_core::jsonrpc::{Envelope, Fields, Kind};
use switchboard_core::protocol::Era;
use switchboard_upstream::ListKind;

use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::reply;
use crate::session::ClientSession;
use crate::stateless::{self, ReplyClass};

/// Protocol revisions the hub speaks with session-era clients, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = switchboard_core::protocol::SESSION_VERSIONS;
/// The newest of them.
pub const LATEST_VERSION: &str = switchboard_core::protocol::LATEST_SESSION_VERSION;

/// One client request being served, parsed once: what every room reads.
pub(crate) struct Request<'a> {
    pub(crate) session: &'a Arc<ClientSession>,
    /// The client's bytes; a relayed request is spliced from them.
    pub(crate) text: &'a str,
    pub(crate) env: &'a Envelope<'a>,
    /// The members of `params` (`None` when it has none).
    pub(crate) params: Option<&'a Fields<'a>>,
    /// Where messages tied to the request (progress, questions) go before its reply.
    pub(crate) sink: &'a Outbox,
}

impl<'a> Request<'a> {
    /// The request's id, raw.
    pub(crate) fn id(&self) -> &'a str {
        self.env.id_text()
    }

    /// The request's method.
    pub(crate) fn method(&self) -> &'a str {
        self.env.method()
    }
}

impl Hub {
    /// Handles one message from a client. Returns the response for a request (`None` for
    /// notifications, responses, and requests the client cancelled). Messages tied to the
    /// request (progress, server-to-client requests) go to `sink` before the response.
    pub async fn handle(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        sink: &Outbox,
    ) -> Option<String> {
        session.touch();
        let env = match Envelope::parse(text) {
            Ok(env) => env,
            Err(e) => {
                tracing::info!(
                    message = "Refused a malformed message from a client.",
                    session = %session.id,
                    code = e.code(),
                    reason = %e
                );
                return Some(reply::error(e.id_text(), e.code(), &e.to_string()));
            }
        };
        let params = env.params.and_then(|p| Fields::parse(p.get()));
        self.route(session, text, &env, params.as_ref(), sink).await
    }

    /// [`Hub::handle`] for a message already parsed (`params`: the members of its params).
    pub(crate) async fn handle_parsed(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Option<&Fields<'_>>,
        sink: &Outbox,
    ) -> Option<String> {
        session.touch();
        self.route(session, text, env, params, sink).await
    }

    /// Serves a parsed message by its kind.
    async fn route(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Option<&Fields<'_>>,
        sink: &Outbox,
    ) -> Option<String> {
        match env.kind().ok()? {
            Kind::Request => {
                let req = Request {
                    session,
                    text,
                    env,
                    params,
                    sink,
                };
                match (self.inner.observed.get(), self.inner.traced.get()) {
                    (None, None) => self.handle_request(&req).await,
                    seen => self.observed_request(seen, &req).await,
                }
            }
            Kind::Notification => {
                self.handle_notification(session, env, params);
                None
            }
            Kind::Response => {
                self.handle_response(session, text, env).await;
                None
            }
        }
    }

    /// A request in the client's era: a stateless one is checked first and its reply gets
    /// what 2026-07-28 adds to results.
    async fn handle_request(&self, req: &Request<'_>) -> Option<String> {
        let id = req.id();
        if req.env.params.is_some() && req.params.is_none() {
            return Some(reply::invalid_params(id, "params must be an object"));
        }
        match req.session.era() {
            Era::Session => self.dispatch(req).await,
            Era::Stateless => {
                if let Err(reply) = stateless::prelude(req.session, id, req.params) {
                    req.session.set_reply_class(ReplyClass::Refused);
                    return Some(reply);
                }
                let method = req.method();
                if stateless::removed(method) {
                    req.session.set_reply_class(ReplyClass::UnknownMethod);
                    return Some(reply::method_not_found(
                        id,
                        &format!("method not found: {method} (removed in 2026-07-28)"),
                    ));
                }
                let reply = self.dispatch(req).await?;
                let (reply, class) = stateless::finish(reply, method);
                req.session.set_reply_class(class);
                Some(reply)
            }
        }
    }

    /// The method table.
    async fn dispatch(&self, req: &Request<'_>) -> Option<String> {
        let (id, session, params) = (req.id(), req.session, req.params);
        let stateless = session.era() == Era::Stateless;
        let reply = match req.method() {
            "server/discover" => self.discover(session, id),
            "initialize" => reply::result(id, &self.initialize(session, params)),
            "ping" => reply::result(id, "{}"),
            "tools/list" => self.list(session, id, params, ListKind::Tools).await,
            "prompts/list" => self.list(session, id, params, ListKind::Prompts).await,
            "resources/list" => self.list(session, id, params, ListKind::Resources).await,
            "resources/templates/list" => self.list(session, id, params, ListKind::Templates).await,
            "tools/call" => return self.named(req, ListKind::Tools).await,
            "prompts/get" => return self.named(req, ListKind::Prompts).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                return self.by_uri(req).await;
            }
            "completion/complete" => return self.complete(req).await,
            "subscriptions/listen" if stateless => {
                let reply = self.listen(session, id, params, req.sink).await;
                return Some(reply).filter(|r| !r.is_empty());
            }
            "tasks/get" | "tasks/update" | "tasks/cancel" if stateless => {
                return self.task(req).await;
            }
            "logging/setLevel" => self.set_level(req),
            other => reply::method_not_found(id, &format!("method not found: {other}")),
        };
        Some(reply)
    }
}
