//! The stateless 2026-07-28 protocol for clients: per-request `_meta`, `server/discover`,
//! `resultType`, cache hints. Upstreams behind the hub are reached in their own era; the
//! hub adds what a stateless client expects to their results.

use std::sync::Arc;

use serde_json::Value;
use switchboard_core::jsonrpc::{
    Envelope, Fields, Kind, Splice, code, error_message, object_append_point, quote, result_message,
};

use crate::hub::Hub;
use crate::session::{ClientInfo, ClientSession};

pub use switchboard_core::protocol::STATELESS_VERSION;
pub use switchboard_core::protocol::codes::{
    HEADER_MISMATCH, MISSING_CAPABILITY, UNSUPPORTED_VERSION,
};
pub use switchboard_core::protocol::meta::{
    CLIENT_CAPABILITIES as META_CAPABILITIES, CLIENT_INFO as META_CLIENT_INFO,
    LOG_LEVEL as META_LOG_LEVEL, VERSION as META_VERSION,
};

/// Checks a stateless request's `_meta` and records the client's declarations on its session.
/// Returns the error reply when the request cannot be served.
pub(crate) fn prelude(
    session: &ClientSession,
    id: &str,
    params: Option<&Fields<'_>>,
) -> Result<(), String> {
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| Fields::parse(m.get()));
    let Some(meta) = meta else {
        return Err(error_message(
            id,
            code::INVALID_PARAMS,
            &format!("missing params._meta[{META_VERSION:?}]"),
            None,
        ));
    };
    let Some(version) = meta.get_str(META_VERSION) else {
        return Err(error_message(
            id,
            code::INVALID_PARAMS,
            &format!("missing _meta[{META_VERSION:?}]"),
            None,
        ));
    };
    if version != STATELESS_VERSION {
        let data = format!(
            r#"{{"supported":[{}],"requested":{}}}"#,
            quote(STATELESS_VERSION),
            quote(&version)
        );
        return Err(error_message(
            id,
            UNSUPPORTED_VERSION,
            &format!("unsupported protocol version {version:?}"),
            Some(&data),
        ));
    }
    let Some(caps) = meta.get(META_CAPABILITIES) else {
        return Err(error_message(
            id,
            code::INVALID_PARAMS,
            &format!("missing _meta[{META_CAPABILITIES:?}]"),
            None,
        ));
    };
    let parse = |raw: Option<&serde_json::value::RawValue>| {
        raw.and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or(Value::Null)
    };
    let _ = session.client.set(ClientInfo {
        protocol_version: STATELESS_VERSION.to_string(),
        capabilities: parse(Some(caps)),
        client_info: parse(meta.get(META_CLIENT_INFO)),
    });
    Ok(())
}

/// Methods 2026-07-28 removed: a stateless client gets "method not found" for them.
pub(crate) fn removed(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "logging/setLevel"
            | "resources/subscribe"
            | "resources/unsubscribe"
    )
}

/// Adds `resultType` (and, for lists, `ttlMs`/`cacheScope`) to a result that lacks them, and
/// gives "resource not found" the code 2026-07-28 uses.
pub(crate) fn finish(reply: String, method: &str) -> String {
    let Ok(env) = Envelope::parse(&reply) else {
        return reply;
    };
    if let Some(err) = env.error {
        let legacy_not_found = Fields::parse(err.get())
            .and_then(|f| f.get("code"))
            .is_some_and(|c| c.get() == "-32002");
        if legacy_not_found && let Some(c) = Fields::parse(err.get()).and_then(|f| f.get("code")) {
            let mut sp = Splice::new();
            sp.replace(&reply, c.get(), code::INVALID_PARAMS.to_string());
            return sp.apply(&reply);
        }
        return reply;
    }
    let Some(result) = env.result else {
        return reply;
    };
    let Some(fields) = Fields::parse(result.get()) else {
        return reply;
    };
    let mut extra = String::new();
    if fields.get("resultType").is_none() {
        extra.push_str(r#""resultType":"complete""#);
    }
    let cacheable = matches!(
        method,
        "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "server/discover"
    );
    if cacheable && fields.get("ttlMs").is_none() {
        push_field(&mut extra, r#""ttlMs":0"#);
    }
    if cacheable && fields.get("cacheScope").is_none() {
        // Parts come from legacy upstreams and views may differ per caller: never shared.
        push_field(&mut extra, r#""cacheScope":"private""#);
    }
    if extra.is_empty() {
        return reply;
    }
    let raw = result.get();
    let Some((at, has_members)) = object_append_point(raw) else {
        return reply;
    };
    let offset = switchboard_core::jsonrpc::span_of(&reply, raw).start;
    let mut sp = Splice::new();
    sp.insert(
        offset + at,
        if has_members {
            format!(",{extra}")
        } else {
            extra
        },
    );
    sp.apply(&reply)
}

/// A request's `_meta` as a legacy upstream session should see it: without the stateless
/// protocol's keys, and with the progress token replaced by the hub's own.
pub(crate) fn upstream_meta(meta: &str, progress: Option<u64>) -> String {
    let Some(fields) = Fields::parse(meta) else {
        return meta.to_string();
    };
    let mut out = String::with_capacity(meta.len());
    out.push('{');
    for (key, value) in &fields.entries {
        if key.starts_with("io.modelcontextprotocol/") {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&quote(key));
        out.push(':');
        match (key.as_ref(), progress) {
            ("progressToken", Some(id)) => out.push_str(&id.to_string()),
            _ => out.push_str(value.get()),
        }
    }
    out.push('}');
    out
}

/// The capabilities of a session client that the hub can carry to a stateless upstream (it
/// asks the client for real): sampling, elicitation and roots, as the client declared them.
pub(crate) fn bridgeable_capabilities(session: &ClientSession) -> String {
    let Some(caps) = session.client_info().map(|c| &c.capabilities) else {
        return "{}".into();
    };
    let mut out = serde_json::Map::new();
    for key in ["sampling", "elicitation", "roots"] {
        if let Some(v) = caps.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out).to_string()
}

/// A request's `_meta` with the hub's progress token, the given client capabilities and the
/// log level the session client asked for.
pub(crate) fn with_capabilities(
    meta: &str,
    progress: Option<u64>,
    caps: &str,
    log_level: &str,
) -> String {
    let Some(fields) = Fields::parse(meta) else {
        return meta.to_string();
    };
    let mut out = String::with_capacity(meta.len() + caps.len() + 64);
    out.push('{');
    for (key, value) in &fields.entries {
        if key == META_CAPABILITIES || key == META_LOG_LEVEL {
            continue;
        }
        out.push_str(&quote(key));
        out.push(':');
        match (key.as_ref(), progress) {
            ("progressToken", Some(id)) => out.push_str(&id.to_string()),
            _ => out.push_str(value.get()),
        }
        out.push(',');
    }
    out.push_str(r#""io.modelcontextprotocol/clientCapabilities":"#);
    out.push_str(caps);
    out.push_str(&format!(",{}:{}", quote(META_LOG_LEVEL), quote(log_level)));
    out.push('}');
    out
}

fn push_field(out: &mut String, field: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(field);
}

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

fn marked(channel: &ClientSession, text: &str) -> Marked {
    let Ok(env) = Envelope::parse(text) else {
        return Marked::Session;
    };
    let params = env.params.and_then(|p| Fields::parse(p.get()));
    match env.kind() {
        Ok(Kind::Request) if channel.client_info().is_none() => {
            let versioned = params
                .as_ref()
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
            .as_ref()
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
        match marked(channel, text) {
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
                    reply = self.handle(&session, text, sink) => reply,
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
                    None => self.handle(channel, text, sink).await,
                }
            }
            Marked::Session => self.handle(channel, text, sink).await,
        }
    }

    /// `server/discover`: what the hub supports, for stateless clients.
    pub(crate) fn discover(&self, session: &ClientSession, id: &str) -> String {
        let versions = crate::router::SUPPORTED_VERSIONS
            .iter()
            .chain([STATELESS_VERSION].iter())
            .map(|v| quote(v))
            .collect::<Vec<_>>()
            .join(",");
        // Extensions (Tasks) are the upstream's to offer, and only where requests about them
        // can be routed back to it: on a stateless server's own endpoint.
        let extensions = match &session.view {
            crate::view::View::Server(s) => self
                .upstream(s)
                .and_then(|u| u.info())
                .filter(|i| crate::router::is_stateless(i))
                .and_then(|i| i.capabilities.get("extensions").cloned())
                .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()))
                .map(|e| format!(r#","extensions":{e}"#)),
            _ => None,
        }
        .unwrap_or_default();
        let result = format!(
            r#"{{"supportedVersions":[{versions}],"capabilities":{{"tools":{{"listChanged":true}},"prompts":{{"listChanged":true}},"resources":{{"subscribe":true,"listChanged":true}},"completions":{{}}{extensions}}},"instructions":{},"ttlMs":0,"cacheScope":"private","resultType":"complete","_meta":{{"io.modelcontextprotocol/serverInfo":{{"name":"switchboard","title":"Switchboard MCP hub","version":{}}}}}}}"#,
            quote(&self.instructions_for(&session.view)),
            quote(env!("CARGO_PKG_VERSION")),
        );
        result_message(id, &result)
    }
}
