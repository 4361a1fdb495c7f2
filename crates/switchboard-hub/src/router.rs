//! Request handling: answer what the hub owns, route the rest to the owning upstream.
//!
//! Relayed messages are never re-serialised: the router splices the id, the routed name or URI
//! and the progress token into the client's own bytes, and splices the client's id back into
//! the upstream's reply.

use std::sync::Arc;

use serde_json::Value;
use switchboard_core::jsonrpc::{
    Envelope, Fields, Kind, Splice, array_items, code, error_message, quote, result_message,
};
use switchboard_upstream::{CallEvent, CallOptions, Connection, ListKind, UpstreamError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::local;
use crate::merged::Entry;
use crate::mrtr;
use crate::outbox::Outbox;
use crate::session::{ClientInfo, ClientSession, ForwardedRequest};
use crate::stateless;
use crate::view::View;

/// Protocol revisions the hub speaks with session-era clients, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = switchboard_core::protocol::SESSION_VERSIONS;
/// The newest of them.
pub const LATEST_VERSION: &str = switchboard_core::protocol::LATEST_SESSION_VERSION;

type Params<'a> = Option<Fields<'a>>;

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
                return Some(error_message(e.id_text(), e.code(), &e.to_string(), None));
            }
        };
        let params: Params<'_> = env.params.and_then(|p| Fields::parse(p.get()));
        match env.kind().ok()? {
            Kind::Request => match (self.inner.observed.get(), self.inner.traced.get()) {
                (None, None) => self.handle_request(session, text, &env, params, sink).await,
                (observed, traced) => {
                    let seen = (observed, traced);
                    self.observed_request(seen, session, text, &env, params, sink)
                        .await
                }
            },
            Kind::Notification => {
                self.handle_notification(session, &env, params);
                None
            }
            Kind::Response => {
                self.handle_response(session, text, &env).await;
                None
            }
        }
    }

    /// [`Self::handle_request`], timed and reported to the hub's observer and traced as a
    /// SERVER span: the one place a client request's outcome is recorded.
    async fn observed_request(
        &self,
        (observed, traced): (
            Option<&crate::observe::Observed>,
            Option<&crate::trace::Traced>,
        ),
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Params<'_>,
        sink: &crate::outbox::Outbox,
    ) -> Option<String> {
        let started = std::time::Instant::now();
        let at = std::time::SystemTime::now();
        let _in_flight = observed.map(|_| crate::observe::InFlight::enter(&self.inner.in_flight));
        let method = env.method();
        let (server, target, known_target) = self.locate(session, method, params.as_ref());
        let span = traced.map(|t| crate::trace::start_server(t, params.as_ref()));
        let trace_id = match &span {
            Some((current, _)) => Some(crate::trace::hex(&current.ctx.trace_id)),
            None => params
                .as_ref()
                .and_then(|p| p.get("_meta"))
                .and_then(|m| Fields::parse(m.get()))
                .and_then(|m| m.get_str("traceparent"))
                .and_then(|tp| crate::observe::trace_id_of(&tp).map(str::to_string)),
        };
        let wants_payloads = observed.is_some_and(|o| o.observer.wants_payloads());
        let request = wants_payloads.then(|| env.params.map(|p| p.get().to_string()));
        let handling = self.handle_request(session, text, env, params, sink);
        let reply = match &span {
            Some((current, _)) => crate::trace::in_span(current.clone(), handling).await,
            None => handling.await,
        };
        let duration = started.elapsed();
        let (error_type, error_message) = match reply.as_deref().and_then(crate::observe::classify)
        {
            Some((t, m)) => (Some(t), m),
            None => (None, None),
        };
        let protocol_version = if session.stateless {
            Some(stateless::STATELESS_VERSION.to_string())
        } else {
            session.client.get().map(|c| c.protocol_version.clone())
        };
        if let (Some(t), Some((current, parent))) = (traced, &span) {
            crate::trace::finish_server(
                t,
                current,
                *parent,
                &crate::trace::Finished {
                    method,
                    target: target.as_deref(),
                    server: server.as_deref(),
                    session: &session.id,
                    request_id: env.id_text(),
                    protocol_version: protocol_version.as_deref(),
                    error: error_type.as_deref().map(|t| (t, error_message.as_deref())),
                    start: at,
                    duration,
                },
            );
        }
        let Some(observed) = observed else {
            return reply;
        };
        observed.observer.call(crate::observe::CallRecord {
            at,
            tenant: observed.tenant.clone(),
            principal: session.principal.get().cloned(),
            endpoint: session.view.label(),
            session: session.id.clone(),
            method: method.to_string(),
            server,
            target,
            known_target,
            error_type,
            error_message,
            duration,
            bytes_in: text.len(),
            bytes_out: reply.as_ref().map_or(0, String::len),
            trace_id,
            protocol_version,
            payload: request.map(|r| (r.unwrap_or_default(), reply.clone().unwrap_or_default())),
        });
        reply
    }

    /// The server and item a request names: (server, tool/prompt name or URI, whether the
    /// name is in the merged catalog).
    fn locate(
        &self,
        session: &ClientSession,
        method: &str,
        params: Option<&Fields<'_>>,
    ) -> (Option<String>, Option<String>, bool) {
        let kind = match method {
            "tools/call" => ListKind::Tools,
            "prompts/get" => ListKind::Prompts,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let Some(uri) = params.and_then(|p| p.get_str("uri")) else {
                    return (None, None, false);
                };
                let merged = self.inner.merged.load();
                let server = merged
                    .resolve_uri(&session.view, &uri)
                    .map(|t| t.entry.name.clone());
                let known = server.is_some();
                return (server, Some(uri.into_owned()), known);
            }
            _ => return (None, None, false),
        };
        let Some(name) = params.and_then(|p| p.get_str("name")) else {
            return (None, None, false);
        };
        if kind == ListKind::Tools
            && ((session.view.is_smart() && crate::smart::is_meta_tool(&name))
                || local::is_local_tool(&name))
        {
            return (None, Some(name.into_owned()), true);
        }
        let merged = self.inner.merged.load();
        let server = merged
            .resolve_name(&session.view, kind, &name)
            .map(|t| t.entry.name.clone());
        let known = server.is_some();
        (server, Some(name.into_owned()), known)
    }

    async fn handle_request(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Params<'_>,
        sink: &Outbox,
    ) -> Option<String> {
        let id = env.id_text();
        if env.params.is_some() && params.is_none() {
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                "params must be an object",
                None,
            ));
        }
        if session.stateless {
            if let Err(reply) = stateless::prelude(session, id, params.as_ref()) {
                return Some(reply);
            }
            let method = env.method().to_string();
            if stateless::removed(&method) {
                return Some(error_message(
                    id,
                    code::METHOD_NOT_FOUND,
                    &format!("method not found: {method} (removed in 2026-07-28)"),
                    None,
                ));
            }
            let reply = self.dispatch(session, text, env, params, sink).await?;
            return Some(stateless::finish(reply, &method));
        }
        self.dispatch(session, text, env, params, sink).await
    }

    async fn dispatch(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Params<'_>,
        sink: &Outbox,
    ) -> Option<String> {
        let id = env.id_text();
        let reply = match env.method() {
            "server/discover" => self.discover(session, id),
            "initialize" => result_message(id, &self.initialize(session, params.as_ref())),
            "ping" => result_message(id, "{}"),
            "tools/list" => {
                self.list(session, id, params.as_ref(), ListKind::Tools)
                    .await
            }
            "prompts/list" => {
                self.list(session, id, params.as_ref(), ListKind::Prompts)
                    .await
            }
            "resources/list" => {
                self.list(session, id, params.as_ref(), ListKind::Resources)
                    .await
            }
            "resources/templates/list" => {
                self.list(session, id, params.as_ref(), ListKind::Templates)
                    .await
            }
            "tools/call" => {
                return self
                    .call_named(session, text, env, params, ListKind::Tools, sink)
                    .await;
            }
            "prompts/get" => {
                return self
                    .call_named(session, text, env, params, ListKind::Prompts, sink)
                    .await;
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                return self.call_uri(session, text, env, params, sink).await;
            }
            "completion/complete" => return self.complete(session, text, env, params, sink).await,
            "subscriptions/listen" if session.stateless => {
                let reply = self.listen(session, id, params.as_ref(), sink).await;
                return Some(reply).filter(|r| !r.is_empty());
            }
            "tasks/get" | "tasks/update" | "tasks/cancel" if session.stateless => {
                return self.call_task(session, text, env, params, sink).await;
            }
            "logging/setLevel" => self.set_level(session, env),
            other => error_message(
                id,
                code::METHOD_NOT_FOUND,
                &format!("method not found: {other}"),
                None,
            ),
        };
        Some(reply)
    }

    fn initialize(&self, session: &ClientSession, params: Option<&Fields<'_>>) -> String {
        let requested = params
            .and_then(|p| p.get_str("protocolVersion"))
            .unwrap_or_default();
        let version = crate::session::negotiate(&requested);
        let raw = |k: &str| -> Value {
            params
                .and_then(|p| p.get(k))
                .and_then(|v| serde_json::from_str(v.get()).ok())
                .unwrap_or(Value::Null)
        };
        let _ = session.client.set(ClientInfo {
            protocol_version: version.to_string(),
            capabilities: raw("capabilities"),
            client_info: raw("clientInfo"),
        });
        let instructions = self.instructions_for(&session.view);
        format!(
            r#"{{"protocolVersion":{},"capabilities":{{"tools":{{"listChanged":true}},"prompts":{{"listChanged":true}},"resources":{{"subscribe":true,"listChanged":true}},"completions":{{}},"logging":{{}}}},"serverInfo":{{"name":"switchboard","title":"Switchboard MCP hub","version":{}}},"instructions":{}}}"#,
            quote(version),
            quote(env!("CARGO_PKG_VERSION")),
            quote(&instructions),
        )
    }

    pub(crate) fn instructions_for(&self, view: &View) -> String {
        match view {
            View::Server(s) => {
                let own = self
                    .upstream(s)
                    .and_then(|u| u.info())
                    .and_then(|i| i.instructions.clone());
                own.unwrap_or_else(|| {
                    format!("Tools of the MCP server {s:?}, served through Switchboard.")
                })
            }
            View::Smart(_) => format!(
                "Switchboard smart endpoint: the tools of every server this endpoint covers are searched, not listed. Call {} with what you want to do, {} for a tool's full definition, and {} with the tool's full name and arguments.",
                crate::smart::SEARCH_TOOLS,
                crate::smart::DESCRIBE_TOOL,
                crate::smart::CALL_TOOL,
            ),
            _ => {
                let merged = self.inner.merged.load();
                let names: Vec<&str> = merged
                    .entries
                    .iter()
                    .filter(|e| merged.in_view(view, &e.name))
                    .map(|e| e.name.as_str())
                    .collect();
                format!(
                    "Switchboard hub in front of {} MCP server(s): {}. Tool and prompt names are prefixed with the server name and {:?}.",
                    names.len(),
                    names.join(", "),
                    self.config().separator
                )
            }
        }
    }

    async fn list(
        &self,
        session: &ClientSession,
        id: &str,
        params: Option<&Fields<'_>>,
        kind: ListKind,
    ) -> String {
        let cursor = params
            .and_then(|p| p.get("cursor"))
            .filter(|c| c.get() != "null");
        self.settle_startup().await;
        let merged = self.inner.merged.load();
        let page_size = self.config().page_size;
        let from = match cursor {
            None => 0,
            Some(raw) => match serde_json::from_str::<&str>(raw.get())
                .ok()
                .and_then(|c| parse_cursor(c, merged.generation))
            {
                Some(offset) => offset,
                None => {
                    let msg = "invalid or stale cursor: the list changed since it was issued; list again from the start";
                    return error_message(id, code::INVALID_PARAMS, msg, None);
                }
            },
        };
        let rendered = merged.rendered(&session.view, kind);
        if page_size == 0 && from == 0 {
            return result_message(id, &rendered.full);
        }
        let size = if page_size == 0 {
            rendered.len()
        } else {
            page_size
        };
        let to = (from + size).min(rendered.len());
        let next = (to < rendered.len()).then(|| format!("sb1.{:x}.{:x}", merged.generation, to));
        result_message(id, &rendered.page(from, to, next.as_deref()))
    }

    fn set_level(&self, session: &ClientSession, env: &Envelope<'_>) -> String {
        let merged = self.inner.merged.load_full();
        let params = env.params.map(|p| p.get().to_string());
        if let Some(level) = env
            .params
            .and_then(|p| Fields::parse(p.get()))
            .and_then(|p| p.get_str("level"))
        {
            *session.log_level.lock().expect("log level lock") = Some(level.into_owned());
        }
        for entry in merged
            .entries
            .iter()
            .filter(|e| merged.in_view(&session.view, &e.name))
        {
            let has_logging = entry.upstream.info().is_some_and(|i| i.has("logging"));
            if let (true, Ok(conn)) = (has_logging, entry.upstream.connection()) {
                let params = params.clone();
                tokio::spawn(async move {
                    let _ = conn
                        .request(
                            "logging/setLevel",
                            params.as_deref(),
                            std::time::Duration::from_secs(10),
                        )
                        .await;
                });
            }
        }
        result_message(env.id_text(), "{}")
    }

    pub(crate) async fn call_named(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Params<'_>,
        kind: ListKind,
        sink: &Outbox,
    ) -> Option<String> {
        let id = env.id_text();
        let Some(params) = params else {
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                "missing params",
                None,
            ));
        };
        let Some(name) = params.get_str("name") else {
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                "params.name must be a string",
                None,
            ));
        };
        if kind == ListKind::Tools && session.view.is_smart() && crate::smart::is_meta_tool(&name) {
            return crate::smart::call_meta(self, session, env, &params, &name, sink).await;
        }
        if kind == ListKind::Tools && local::is_local_tool(&name) {
            return Some(result_message(
                id,
                &local::call(self, &name).unwrap_or_default(),
            ));
        }
        let mut merged = self.inner.merged.load_full();
        if merged.resolve_name(&session.view, kind, &name).is_none() {
            // The owner may still be starting: give it the startup grace before giving up.
            self.settle_startup().await;
            merged = self.inner.merged.load_full();
        }
        let Some(target) = merged.resolve_name(&session.view, kind, &name) else {
            let sep = &self.inner.config.separator;
            if let Some(owner) = merged.unavailable_owner(&session.view, kind, &name, sep) {
                return Some(unavailable(id, &owner.name, &owner.upstream.status()));
            }
            if kind == ListKind::Tools
                && let Some((server, tool)) = merged.held_tool(&session.view, &name)
            {
                return Some(error_message(
                    id,
                    code::INVALID_PARAMS,
                    &format!(
                        "tool {tool} of server {server} changed since it was approved; an \
                         operator must approve the change"
                    ),
                    Some(r#"{"reason":"tool_changed"}"#),
                ));
            }
            let what = if kind == ListKind::Tools {
                "tool"
            } else {
                "prompt"
            };
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                &format!("unknown {what}: {name}"),
                None,
            ));
        };
        if kind == ListKind::Tools
            && let Some(why) = param_header_mismatch(session, target.item, &params)
        {
            return Some(error_message(
                id,
                stateless::HEADER_MISMATCH,
                &format!("Header mismatch: {why}"),
                None,
            ));
        }
        let mut splice = Splice::new();
        if target.original != name {
            splice.replace(
                text,
                params.get("name").expect("name was read").get(),
                quote(&target.original),
            );
        }
        let retry_safe =
            kind != ListKind::Tools || target.item.is_some_and(|t| t.read_only || t.idempotent);
        let route = Route {
            entry: target.entry,
            retry_safe,
            uri_rewrite: None,
        };
        self.forward(session, text, env, Some(&params), splice, route, sink)
            .await
    }

    /// Tool search over what `view` shows (the REST API's `/api/v1/tools/search`).
    pub async fn search_tools(
        &self,
        view: &View,
        query: &str,
        limit: usize,
        server: Option<&str>,
    ) -> Result<Vec<crate::smart::Found>, crate::smart::SearchError> {
        let merged = self.inner.merged.load_full();
        let qvec = self.inner.smart.query_vector(&merged, query).await;
        self.inner
            .smart
            .search(&merged, view, query, limit, server, qvec.as_deref())
    }

    async fn call_uri(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Params<'_>,
        sink: &Outbox,
    ) -> Option<String> {
        let id = env.id_text();
        let Some(params) = params else {
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                "missing params",
                None,
            ));
        };
        let Some(uri) = params.get_str("uri") else {
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                "params.uri must be a string",
                None,
            ));
        };
        let merged = self.inner.merged.load_full();
        let Some(target) = merged.resolve_uri(&session.view, &uri) else {
            return Some(not_found(session, id, &uri));
        };
        let method = env.method();
        if method != "resources/read"
            && let Ok(conn) = target.entry.upstream.connection()
            && conn.is_stateless()
        {
            // A stateless upstream has no subscribe call: the hub's listen request to it
            // carries every URI its clients subscribed to.
            {
                let mut subs = session.subscriptions.lock().expect("subs lock");
                if method == "resources/subscribe" {
                    subs.insert(uri.to_string());
                } else {
                    subs.remove(uri.as_ref());
                }
            }
            let server = target.entry.name.clone();
            conn.watch_resources(self.subscribed_originals(&server));
            return Some(result_message(id, "{}"));
        }
        if method == "resources/unsubscribe" && self.others_subscribed(session, &uri) {
            session
                .subscriptions
                .lock()
                .expect("subs lock")
                .remove(uri.as_ref());
            return Some(result_message(id, "{}"));
        }
        let mut splice = Splice::new();
        let rewritten = target.original != uri;
        if rewritten {
            splice.replace(
                text,
                params.get("uri").expect("uri was read").get(),
                quote(&target.original),
            );
        }
        let uri_rewrite = rewritten.then(|| (target.original.clone(), uri.to_string()));
        let route = Route {
            entry: target.entry,
            retry_safe: true,
            uri_rewrite,
        };
        let reply = self
            .forward(session, text, env, Some(&params), splice, route, sink)
            .await?;
        let ok = Envelope::parse(&reply).is_ok_and(|e| e.result.is_some());
        if ok {
            let mut subs = session.subscriptions.lock().expect("subs lock");
            match method {
                "resources/subscribe" => {
                    subs.insert(uri.to_string());
                }
                "resources/unsubscribe" => {
                    subs.remove(uri.as_ref());
                }
                _ => {}
            }
        }
        Some(reply)
    }

    fn others_subscribed(&self, session: &ClientSession, uri: &str) -> bool {
        // Subscriptions on a shared upstream session are reference counted across clients.
        self.sessions_subscribed_to(uri)
            > usize::from(
                session
                    .subscriptions
                    .lock()
                    .expect("subs lock")
                    .contains(uri),
            )
    }

    async fn complete(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Params<'_>,
        sink: &Outbox,
    ) -> Option<String> {
        let id = env.id_text();
        let reference = params
            .as_ref()
            .and_then(|p| p.get("ref"))
            .and_then(|r| Fields::parse(r.get()));
        let Some(reference) = reference else {
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                "params.ref must be an object",
                None,
            ));
        };
        let merged = self.inner.merged.load_full();
        let kind = reference.get_str("type").unwrap_or_default();
        let (field, target) = match kind.as_ref() {
            "ref/prompt" => {
                let name = reference.get_str("name").unwrap_or_default();
                (
                    "name",
                    merged
                        .resolve_name(&session.view, ListKind::Prompts, &name)
                        .map(|t| (t, name)),
                )
            }
            "ref/resource" => {
                let uri = reference.get_str("uri").unwrap_or_default();
                (
                    "uri",
                    merged.resolve_uri(&session.view, &uri).map(|t| (t, uri)),
                )
            }
            other => {
                return Some(error_message(
                    id,
                    code::INVALID_PARAMS,
                    &format!("unknown ref type {other:?}"),
                    None,
                ));
            }
        };
        let Some((target, asked)) = target else {
            return Some(error_message(
                id,
                code::INVALID_PARAMS,
                &format!("unknown {field} in ref"),
                None,
            ));
        };
        let mut splice = Splice::new();
        if target.original != asked {
            splice.replace(
                text,
                reference.get(field).expect("field was read").get(),
                quote(&target.original),
            );
        }
        let route = Route {
            entry: target.entry,
            retry_safe: true,
            uri_rewrite: None,
        };
        self.forward(session, text, env, params.as_ref(), splice, route, sink)
            .await
    }

    /// The Tasks extension's `tasks/*` requests (2026-07-28): routed to the server of a
    /// single-server endpoint when that server speaks the stateless protocol. A task id names
    /// no server, so merged endpoints do not offer the extension (see `discover`).
    async fn call_task(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Params<'_>,
        sink: &Outbox,
    ) -> Option<String> {
        let id = env.id_text();
        let merged = self.inner.merged.load_full();
        let entry = match &session.view {
            View::Server(s) => merged.entry(s),
            _ => None,
        };
        let Some(entry) = entry.filter(|e| e.upstream.info().is_some_and(|i| is_stateless(&i)))
        else {
            return Some(error_message(
                id,
                code::METHOD_NOT_FOUND,
                &format!(
                    "method not found: {} (the Tasks extension is offered only on a single stateless server's endpoint)",
                    env.method()
                ),
                None,
            ));
        };
        let route = Route {
            entry,
            retry_safe: env.method() == "tasks/get",
            uri_rewrite: None,
        };
        self.forward(
            session,
            text,
            env,
            params.as_ref(),
            Splice::new(),
            route,
            sink,
        )
        .await
    }

    /// Sends the client's request to the route's upstream and relays everything back.
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Option<&Fields<'_>>,
        mut splice: Splice,
        route: Route<'_>,
        sink: &Outbox,
    ) -> Option<String> {
        let id = env.id_text();
        let server = route.entry.name.clone();
        let upstream = route.entry.upstream.clone();
        // Held until the call ends: this client's and this credential's share...
        let _claim = match self.inner.claim_call(session) {
            Ok(claim) => claim,
            Err(message) => {
                // -32000: a server error that the client can fix by waiting.
                return Some(error_message(id, -32000, &message, None));
            }
        };
        // ...and the tenant's share of upstream concurrency.
        let _slot = match self.inner.call_slot().await {
            Ok(slot) => slot,
            Err(message) => {
                return Some(error_message(id, code::INTERNAL_ERROR, &message, None));
            }
        };
        // The user's own credentials for this server, if they stored some.
        let own = session
            .user_headers
            .get()
            .and_then(|u| u.by_server.get(&server).map(|h| (u.user.as_str(), h)));
        let opened = match (upstream.info(), own) {
            (_, Some((user, headers))) => upstream.connection_with_headers(user, headers).await,
            // A session-based remote server learns what this stateless client declared
            // through a session that declares just that, so it asks only what the client can
            // answer (a stdio server keeps its one process: `connection_declaring`).
            (Some(info), None) if session.stateless && !is_stateless(&info) => {
                let caps = stateless::bridgeable_capabilities(session);
                upstream.connection_declaring(&caps).await
            }
            // Every other client shares the server's one connection (one process for a stdio
            // server), which declared the union of what the hub can bridge (sampling,
            // elicitation, roots). What this client did not declare is refused per request
            // when the server asks (`admit_question`, `forward_server_request`).
            _ => upstream.connection_for(&session.id).await,
        };
        let conn = match opened {
            Ok(c) => c,
            Err(e) => {
                return Some(error_message(
                    id,
                    code::INTERNAL_ERROR,
                    &format!("server {server:?}: {e}"),
                    None,
                ));
            }
        };
        // Both sides stateless: the request, its `requestState` and the upstream's
        // `input_required` pass through untouched (the hub keeps no state for the call).
        let end_to_end = session.stateless && conn.is_stateless();
        if session.stateless
            && !end_to_end
            && let Some(state) = params.and_then(|p| p.get_str("requestState"))
        {
            if let Some(reply) = self.resume_elsewhere(session, text, &state).await {
                return Some(reply);
            }
            return Some(
                self.resume(
                    session,
                    id,
                    &state,
                    params,
                    sink,
                    route.uri_rewrite.as_ref(),
                )
                .await,
            );
        }
        let up_id = conn.next_id();
        splice.replace(
            text,
            env.id.expect("requests have ids").get(),
            up_id.to_string(),
        );
        let token = progress_token(params);
        let meta = params.and_then(|p| p.get("_meta"));
        match meta {
            // The client's own declarations go upstream: the upstream may ask it directly.
            Some(_) if end_to_end => {
                if let Some(tok) = token {
                    splice.replace(text, tok, up_id.to_string());
                }
            }
            // A legacy upstream session must not see the stateless protocol's own keys.
            Some(meta) if session.stateless => {
                splice.replace(
                    text,
                    meta.get(),
                    stateless::upstream_meta(meta.get(), token.map(|_| up_id)),
                );
            }
            // A stateless upstream learns what this client can be asked (the hub asks it).
            Some(meta) if conn.is_stateless() => {
                let caps = stateless::bridgeable_capabilities(session);
                splice.replace(
                    text,
                    meta.get(),
                    stateless::with_capabilities(
                        meta.get(),
                        token.map(|_| up_id),
                        &caps,
                        &session.log_level(),
                    ),
                );
            }
            None if conn.is_stateless() => {
                if let Some(p) = env.params
                    && let Some((at, has)) = switchboard_core::jsonrpc::object_append_point(p.get())
                {
                    let start = switchboard_core::jsonrpc::span_of(text, p.get()).start;
                    let caps = stateless::bridgeable_capabilities(session);
                    let member = format!(
                        r#"{}"_meta":{{"io.modelcontextprotocol/clientCapabilities":{caps},{}:{}}}"#,
                        if has { "," } else { "" },
                        quote(stateless::META_LOG_LEVEL),
                        quote(&session.log_level()),
                    );
                    splice.insert(start + at, member);
                }
            }
            _ => {
                if let Some(tok) = token {
                    splice.replace(text, tok, up_id.to_string());
                }
            }
        }
        let body = splice.apply(text);
        // Traced: a CLIENT span for the call (a parked multi-round-trip call has none: the
        // upstream's parent is the server span), its context in `_meta` and the headers.
        let mrtr = session.stateless && !end_to_end;
        let traced = crate::trace::child(mrtr);
        let (body, trace_headers) = crate::trace::propagate(body, traced.as_ref());
        if mrtr {
            // Questions the upstream asks mid-call become multi-round-trip requests.
            let opts = CallOptions {
                timeout: upstream.spec().timeout,
                events: None,
                retry_safe: route.retry_safe,
                headers: trace_headers,
            };
            let running = mrtr::Running::start(conn.clone(), up_id, body, opts);
            let token = token.map(str::to_string);
            return Some(
                self.drive(
                    session,
                    id,
                    running,
                    conn,
                    server,
                    token,
                    sink,
                    route.uri_rewrite.as_ref(),
                )
                .await,
            );
        }
        let retry_base = (conn.is_stateless() && !end_to_end).then(|| body.clone());
        let cancel = CancellationToken::new();
        session
            .inflight
            .lock()
            .expect("inflight lock")
            .insert(id.to_string(), cancel.clone());
        let (ev_tx, mut ev_rx) = mpsc::channel::<CallEvent>(64);
        let mut headers = match (&session.param_headers, end_to_end) {
            // Both sides stateless: the checked `Mcp-Param-*` headers travel on (§5.2).
            (Some(sent), true) => sent
                .iter()
                .map(|(n, v)| (format!("mcp-param-{n}"), v.clone()))
                .collect(),
            _ => Vec::new(),
        };
        headers.extend(trace_headers);
        let upstream_target = traced
            .as_ref()
            .and_then(|_| crate::trace::target_of(&body, env.method()));
        let opts = CallOptions {
            timeout: upstream.spec().timeout,
            events: Some(ev_tx),
            retry_safe: route.retry_safe,
            headers,
        };
        let up_started = std::time::Instant::now();
        let call = conn.call(up_id, body, opts);
        tokio::pin!(call);
        let outcome = loop {
            tokio::select! {
                biased;
                r = &mut call => break Some(r),
                Some(ev) = ev_rx.recv() => self.relay(session, &conn, ev, token, sink).await,
                _ = cancel.cancelled() => break None,
            }
        };
        while let Ok(ev) = ev_rx.try_recv() {
            self.relay(session, &conn, ev, token, sink).await;
        }
        session.inflight.lock().expect("inflight lock").remove(id);
        let mut outcome = outcome?;
        if let Some((current, ctx)) = &traced {
            crate::trace::finish_client(
                current,
                ctx,
                &crate::trace::UpstreamCallInfo {
                    method: env.method(),
                    target: upstream_target.as_deref(),
                    server: &server,
                    transport: &upstream.spec().transport,
                    protocol_version: upstream.info().map(|i| i.protocol_version.clone()),
                    request_id: up_id,
                },
                &outcome,
                up_started,
            );
        }
        if let Some(o) = self.inner.observed.get() {
            let info = upstream.info();
            crate::observe::report_upstream(
                o,
                &server,
                info.as_deref(),
                env,
                params,
                &outcome,
                up_started,
            );
        }
        if let (Some(base), Ok(reply)) = (retry_base, &outcome) {
            // A stateless upstream asks through `input_required`: ask the client for real.
            let timeout = upstream.spec().timeout;
            outcome = self
                .bridge_input_required(session, &conn, base, reply.clone(), timeout, sink)
                .await;
        }
        Some(finish_call(
            outcome,
            id,
            &server,
            &conn,
            session,
            route.uri_rewrite.as_ref(),
        ))
    }

    /// docs/protocol.md §4: while a stateless upstream answers `input_required`, send each of its
    /// questions to the (session-based) client as a real request, then retry upstream with the
    /// answers and the byte-exact `requestState`. At most eight rounds.
    async fn bridge_input_required(
        &self,
        session: &ClientSession,
        conn: &Arc<Connection>,
        base: String,
        mut reply: String,
        timeout: std::time::Duration,
        sink: &Outbox,
    ) -> Result<String, UpstreamError> {
        for _ in 0..8 {
            let Some((requests, state)) = input_required_parts(&reply) else {
                return Ok(reply);
            };
            let mut answers = Vec::new();
            for (key, method, params) in requests {
                let answer = self
                    .ask_client(session, &method, params.as_deref(), timeout, sink)
                    .await?;
                answers.push(format!("{}:{}", quote(&key), answer));
            }
            let up_id = conn.next_id();
            let body = retry_body(
                &base,
                up_id,
                &format!("{{{}}}", answers.join(",")),
                state.as_deref(),
            )
            .ok_or_else(|| UpstreamError::Protocol("cannot build the retry request".into()))?;
            let opts = CallOptions {
                timeout,
                events: None,
                retry_safe: false,
                headers: Vec::new(),
            };
            reply = conn.call(up_id, body, opts).await?;
        }
        Err(UpstreamError::Protocol(
            "the server kept asking for input after eight rounds".into(),
        ))
    }

    /// Sends one request to the client and waits for its result (raw JSON).
    async fn ask_client(
        &self,
        session: &ClientSession,
        method: &str,
        params: Option<&str>,
        timeout: std::time::Duration,
        sink: &Outbox,
    ) -> Result<String, UpstreamError> {
        let needed = needed_capability(method);
        if needed.is_empty() || !session.client_has(needed) {
            return Err(UpstreamError::Protocol(format!(
                "the server needs {method}, which this client did not declare"
            )));
        }
        let n = session
            .next_forward
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hub_id = quote(&format!("sb-{}-{n}", self.inner.replica.tag));
        let (tx, rx) = tokio::sync::oneshot::channel();
        session
            .forwarded
            .lock()
            .expect("forwarded lock")
            .insert(hub_id.clone(), ForwardedRequest::Local(tx));
        let _ = sink
            .send(switchboard_core::jsonrpc::request_message(
                &hub_id, method, params,
            ))
            .await;
        let answer = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))?
            .map_err(|_| UpstreamError::Closed("the client went away".into()))?;
        let env = Envelope::parse(&answer).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        match (env.result, env.error) {
            (Some(r), _) => Ok(r.get().to_string()),
            (None, Some(e)) => Err(UpstreamError::Protocol(format!(
                "the client refused {method}: {}",
                e.get()
            ))),
            _ => Err(UpstreamError::Protocol(
                "the client's answer has no result".into(),
            )),
        }
    }

    /// Runs a stateless client's call until it ends or the upstream asks something; questions
    /// park the call and become an `input_required` result.
    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        session: &Arc<ClientSession>,
        id: &str,
        mut running: mrtr::Running,
        conn: Arc<Connection>,
        server: String,
        token: Option<String>,
        sink: &Outbox,
        uri_rewrite: Option<&(String, String)>,
    ) -> String {
        let mut asks: Vec<mrtr::Ask> = Vec::new();
        loop {
            // Questions that come close together (a session-based server asking several
            // things at once) go to the client in one round.
            let next = if asks.is_empty() {
                running.rx.recv().await
            } else {
                tokio::time::timeout(mrtr::GATHER, running.rx.recv())
                    .await
                    .ok()
                    .flatten()
            };
            match next {
                Some(mrtr::Progress::Note(t)) => {
                    self.relay(
                        session,
                        &conn,
                        CallEvent::Notification(t),
                        token.as_deref(),
                        sink,
                    )
                    .await;
                }
                Some(mrtr::Progress::Ask(t)) => {
                    match self.admit_question(session, &conn, t, asks.len()).await {
                        Ok(ask) => asks.push(ask),
                        // Not a question for the client (refused upstream): carry on.
                        Err("") => {}
                        // The call needs what the client did not declare: it fails (and the
                        // upstream call is cancelled when `running` is dropped).
                        Err(needed) => {
                            let data =
                                format!(r#"{{"requiredCapabilities":{{{}:{{}}}}}}"#, quote(needed));
                            return error_message(
                                id,
                                stateless::MISSING_CAPABILITY,
                                &format!("Missing required client capability: {needed}"),
                                Some(&data),
                            );
                        }
                    }
                }
                Some(mrtr::Progress::Done(outcome)) => {
                    return finish_call(outcome, id, &server, &conn, session, uri_rewrite);
                }
                None if asks.is_empty() => {
                    return error_message(
                        id,
                        code::INTERNAL_ERROR,
                        "the call ended without an answer",
                        None,
                    );
                }
                None => {
                    let state = self
                        .inner
                        .parked
                        .park(running, conn, asks.clone(), server, token);
                    return mrtr::input_required(id, &asks, &state);
                }
            }
        }
    }

    /// A question the client may be asked. One it did not declare is refused upstream, and
    /// the capability it needs is returned as the error.
    async fn admit_question(
        &self,
        session: &ClientSession,
        conn: &Arc<Connection>,
        text: String,
        n: usize,
    ) -> Result<mrtr::Ask, &'static str> {
        let Ok(env) = Envelope::parse(&text) else {
            return Err("");
        };
        let needed = needed_capability(env.method());
        if needed.is_empty() || !session.client_has(needed) {
            let msg = format!("the client did not declare the {needed:?} capability");
            let _ = conn
                .send(error_message(
                    env.id_text(),
                    code::METHOD_NOT_FOUND,
                    &msg,
                    None,
                ))
                .await;
            return Err(needed);
        }
        Ok(mrtr::Ask {
            key: format!("q{}", n + 1),
            upstream_id: env.id_text().to_string(),
            text: text.clone(),
        })
    }

    /// A stateless client's retry: answer the parked questions, then keep driving the call.
    async fn resume(
        &self,
        session: &Arc<ClientSession>,
        id: &str,
        state: &str,
        params: Option<&Fields<'_>>,
        sink: &Outbox,
        uri_rewrite: Option<&(String, String)>,
    ) -> String {
        let Some(parked) = self.inner.parked.take(state) else {
            return mrtr::unknown_state(id);
        };
        let responses = params
            .and_then(|p| p.get("inputResponses"))
            .and_then(|r| Fields::parse(r.get()));
        let missing = mrtr::answer(&parked, responses.as_ref()).await;
        let mrtr::Parked {
            running,
            conn,
            server,
            progress_token,
            ..
        } = parked;
        if !missing.is_empty() {
            let state =
                self.inner
                    .parked
                    .park(running, conn, missing.clone(), server, progress_token);
            return mrtr::input_required(id, &missing, &state);
        }
        self.drive(
            session,
            id,
            running,
            conn,
            server,
            progress_token,
            sink,
            uri_rewrite,
        )
        .await
    }

    /// Relays one message the upstream sent while serving a request.
    async fn relay(
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
            let reply = error_message(env.id_text(), code::METHOD_NOT_FOUND, msg, None);
            let _ = conn.send(reply).await;
            return;
        }
        if !needed.is_empty() && !session.client_has(needed) {
            let msg = format!("the client did not declare the {needed:?} capability");
            let reply = error_message(env.id_text(), code::METHOD_NOT_FOUND, &msg, None);
            let _ = conn.send(reply).await;
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

    async fn handle_response(&self, session: &ClientSession, text: &str, env: &Envelope<'_>) {
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

    fn handle_notification(&self, session: &ClientSession, env: &Envelope<'_>, params: Params<'_>) {
        match env.method() {
            "notifications/initialized" => session
                .initialized
                .store(true, std::sync::atomic::Ordering::Relaxed),
            "notifications/cancelled" => {
                let Some(req) = params.as_ref().and_then(|p| p.get("requestId")) else {
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

    /// The upstream URIs of `server` that some session subscribed to.
    pub(crate) fn subscribed_originals(&self, server: &str) -> Vec<String> {
        let merged = self.inner.merged.load_full();
        let mut out = Vec::new();
        for s in self.all_sessions() {
            let subs: Vec<String> = s
                .subscriptions
                .lock()
                .expect("subs lock")
                .iter()
                .cloned()
                .collect();
            for uri in subs {
                if let Some(t) = merged.resolve_uri(&s.view, &uri)
                    && t.entry.name == server
                {
                    out.push(t.original);
                }
            }
        }
        out
    }

    pub(crate) fn sessions_subscribed_to(&self, uri: &str) -> usize {
        self.all_sessions()
            .iter()
            .filter(|s| s.subscriptions.lock().expect("subs lock").contains(uri))
            .count()
    }
}

/// For a stateless HTTP client's `tools/call`: why its `Mcp-Param-*` headers disagree with
/// the arguments, given the tool's `x-mcp-header` declarations.
fn param_header_mismatch(
    session: &ClientSession,
    tool: Option<&switchboard_upstream::Item>,
    params: &Fields<'_>,
) -> Option<String> {
    use switchboard_core::param_headers as ph;
    let sent = session.param_headers.as_ref()?;
    let raw = tool?.raw.get();
    if !raw.contains("x-mcp-header") {
        return None;
    }
    let tool: Value = serde_json::from_str(raw).ok()?;
    let declared = ph::declared(tool.get("inputSchema")?);
    if declared.is_empty() {
        return None;
    }
    let arguments: Value = params
        .get("arguments")
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .unwrap_or(Value::Null);
    ph::mismatch(&declared, &arguments, |name| {
        sent.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    })
}

/// True when an upstream was reached with `server/discover` (the stateless revision).
pub(crate) fn is_stateless(info: &switchboard_upstream::InitInfo) -> bool {
    switchboard_core::protocol::Era::of_version(&info.protocol_version)
        == switchboard_core::protocol::Era::Stateless
}

/// Reads a hub cursor (`sb1.<generation>.<offset>`), valid only for the snapshot it came from.
fn parse_cursor(cursor: &str, generation: u64) -> Option<usize> {
    let mut parts = cursor.strip_prefix("sb1.")?.split('.');
    let g = u64::from_str_radix(parts.next()?, 16).ok()?;
    let offset = usize::from_str_radix(parts.next()?, 16).ok()?;
    (g == generation && parts.next().is_none()).then_some(offset)
}

/// Where a request goes and how to treat its reply.
struct Route<'a> {
    entry: &'a Entry,
    retry_safe: bool,
    /// `(upstream uri, client uri)` when the hub rewrote a resource URI.
    uri_rewrite: Option<(String, String)>,
}

fn not_found(session: &ClientSession, id: &str, uri: &str) -> String {
    // 2026-07-28 moved "resource not found" to -32602; older revisions use -32002.
    let legacy = !session.stateless;
    let code = if legacy {
        code::RESOURCE_NOT_FOUND
    } else {
        code::INVALID_PARAMS
    };
    let data = format!(r#"{{"uri":{}}}"#, quote(uri));
    error_message(id, code, &format!("resource not found: {uri}"), Some(&data))
}

/// The raw progress token of a request, if it asked for progress.
fn progress_token<'a>(params: Option<&Fields<'a>>) -> Option<&'a str> {
    let meta = Fields::parse(params?.get("_meta")?.get())?;
    meta.get("progressToken").map(|t| t.get())
}

/// Puts the client's id back into the upstream's reply, and rewritten URIs back into it.
fn restore_reply(reply: &str, id: &str, uri_rewrite: Option<&(String, String)>) -> String {
    let Ok(env) = Envelope::parse(reply) else {
        return error_message(
            id,
            code::INTERNAL_ERROR,
            "the server sent an unreadable reply",
            None,
        );
    };
    let mut sp = Splice::new();
    match env.id {
        Some(raw) => {
            sp.replace(reply, raw.get(), id);
        }
        None => {
            return error_message(
                id,
                code::INTERNAL_ERROR,
                "the server replied without an id",
                None,
            );
        }
    }
    if let (Some((original, exported)), Some(result)) = (uri_rewrite, env.result)
        && let Some(fields) = Fields::parse(result.get())
        && let Some(contents) = fields.get("contents").and_then(|c| array_items(c.get()))
    {
        for item in contents {
            if let Some(f) = Fields::parse(item.get())
                && let Some(u) = f.get("uri")
                && f.get_str("uri").as_deref() == Some(original.as_str())
            {
                sp.replace(reply, u.get(), quote(exported));
            }
        }
    }
    sp.apply(reply)
}

/// One `input_required` question: its key, method and raw params.
type Question = (String, String, Option<String>);

/// The client capability a server-to-client request needs (`""` for any other method).
/// The answer to a request for a known server that cannot serve it now (-32603, the code of
/// every "server unavailable" error): its name, state and last error.
fn unavailable(id: &str, server: &str, status: &switchboard_upstream::Status) -> String {
    let state = status.state.as_str();
    let message = match &status.last_error {
        Some(e) => format!("server {server:?} is unavailable ({state}): {e}"),
        None => format!("server {server:?} is unavailable ({state})"),
    };
    let data =
        serde_json::json!({"server": server, "state": state, "lastError": status.last_error});
    error_message(id, code::INTERNAL_ERROR, &message, Some(&data.to_string()))
}

fn needed_capability(method: &str) -> &'static str {
    match method {
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        _ => "",
    }
}

/// The questions (key, method, params) and the raw `requestState` of an `input_required`
/// reply; `None` for any other reply.
fn input_required_parts(reply: &str) -> Option<(Vec<Question>, Option<String>)> {
    let env = Envelope::parse(reply).ok()?;
    let result = Fields::parse(env.result?.get())?;
    if result.get_str("resultType").as_deref() != Some("input_required") {
        return None;
    }
    let state = result.get("requestState").map(|s| s.get().to_string());
    let requests = Fields::parse(result.get("inputRequests")?.get())?;
    let parts = requests
        .entries
        .iter()
        .filter_map(|(key, raw)| {
            let req = Fields::parse(raw.get())?;
            let method = req.get_str("method")?.into_owned();
            Some((
                key.to_string(),
                method,
                req.get("params").map(|p| p.get().to_string()),
            ))
        })
        .collect();
    Some((parts, state))
}

/// The original upstream request with a new id, plus `inputResponses` and `requestState`.
fn retry_body(base: &str, up_id: u64, responses: &str, state: Option<&str>) -> Option<String> {
    let env = Envelope::parse(base).ok()?;
    let params = env.params?;
    let (at, has_members) = switchboard_core::jsonrpc::object_append_point(params.get())?;
    let start = switchboard_core::jsonrpc::span_of(base, params.get()).start;
    let comma = if has_members { "," } else { "" };
    let mut sp = Splice::new();
    sp.replace(base, env.id?.get(), up_id.to_string());
    let state = state
        .map(|s| format!(r#","requestState":{s}"#))
        .unwrap_or_default();
    sp.insert(
        start + at,
        format!(r#"{comma}"inputResponses":{responses}{state}"#),
    );
    Some(sp.apply(base))
}

/// The client's reply for a finished upstream call: its id back in place, errors named.
fn finish_call(
    outcome: Result<String, UpstreamError>,
    id: &str,
    server: &str,
    conn: &Connection,
    session: &ClientSession,
    uri_rewrite: Option<&(String, String)>,
) -> String {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(UpstreamError::Timeout(d)) => {
            let msg = format!(
                "server {server:?} did not answer within {}s; the request was cancelled",
                d.as_secs_f64()
            );
            return error_message(id, code::REQUEST_TIMEOUT, &msg, None);
        }
        Err(e @ UpstreamError::ResultTooLarge { .. }) => {
            tracing::warn!(message = "Refused an oversized result.", server, reason = %e);
            return error_message(id, code::INTERNAL_ERROR, &e.to_string(), None);
        }
        Err(e) => {
            return error_message(
                id,
                code::INTERNAL_ERROR,
                &format!("server {server:?}: {e}"),
                None,
            );
        }
    };
    let restored = restore_reply(&reply, id, uri_rewrite);
    if conn.is_stateless() && !session.stateless {
        // A session-based client does not know `resultType`.
        return strip_result_type(restored);
    }
    restored
}

fn strip_result_type(reply: String) -> String {
    let stripped = Envelope::parse(&reply).ok().and_then(|env| {
        let result = env.result?.get();
        switchboard_core::jsonrpc::remove_member(&reply, result, "resultType")
    });
    stripped.unwrap_or(reply)
}

impl Hub {
    pub(crate) fn all_sessions(&self) -> Vec<Arc<ClientSession>> {
        self.inner.all_sessions()
    }
}
