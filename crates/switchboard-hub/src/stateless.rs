//! The stateless 2026-07-28 protocol's rules for clients: per-request `_meta` checks,
//! methods it removed, `resultType` and cache hints added to results, and the `_meta` a
//! request carries upstream. Upstreams behind the hub are reached in their own era; the hub
//! adds what a stateless client expects to their results. (`server/discover` is in
//! `route/handshake.rs`, mixed-era channels in `route/channel.rs`.)

use serde_json::Value;
use switchboard_core::jsonrpc::{Envelope, Fields, Splice, code, object_append_point, quote};

use crate::reply;
use crate::session::{ClientInfo, ClientSession};

pub use switchboard_core::protocol::STATELESS_VERSION;
pub use switchboard_core::protocol::codes::{
    HEADER_MISMATCH, MISSING_CAPABILITY, UNSUPPORTED_VERSION,
};
pub use switchboard_core::protocol::meta::{
    CLIENT_CAPABILITIES as META_CAPABILITIES, CLIENT_INFO as META_CLIENT_INFO,
    LOG_LEVEL as META_LOG_LEVEL, VERSION as META_VERSION,
};

/// How a stateless request was answered, for a transport that signals it outside the message
/// (over HTTP: 200, 400 or 404). The hub sets it on the request's session from the reply it
/// built or relayed; nothing parses the reply again to find out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplyClass {
    /// A result, or an error about the operation itself (a tool's bad arguments, say).
    Answered = 0,
    /// Refused at the protocol level: `_meta` missing or malformed, an unsupported version,
    /// an undeclared capability, routing headers that contradict the body.
    Refused = 1,
    /// A method the server does not have (or 2026-07-28 removed).
    UnknownMethod = 2,
}

impl ReplyClass {
    pub(crate) fn from_u8(v: u8) -> ReplyClass {
        match v {
            1 => ReplyClass::Refused,
            2 => ReplyClass::UnknownMethod,
            _ => ReplyClass::Answered,
        }
    }

    /// The class of an error reply's code.
    fn of_code(code: &str) -> ReplyClass {
        let Ok(code) = code.trim().parse::<i64>() else {
            return ReplyClass::Answered;
        };
        match code {
            HEADER_MISMATCH | MISSING_CAPABILITY | UNSUPPORTED_VERSION => ReplyClass::Refused,
            code::METHOD_NOT_FOUND => ReplyClass::UnknownMethod,
            _ => ReplyClass::Answered,
        }
    }
}

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
        return Err(reply::invalid_params(
            id,
            &format!("missing params._meta[{META_VERSION:?}]"),
        ));
    };
    let Some(version) = meta.get_str(META_VERSION) else {
        return Err(reply::invalid_params(
            id,
            &format!("missing _meta[{META_VERSION:?}]"),
        ));
    };
    if version != STATELESS_VERSION {
        let data = format!(
            r#"{{"supported":[{}],"requested":{}}}"#,
            quote(STATELESS_VERSION),
            quote(&version)
        );
        return Err(reply::error_with(
            id,
            UNSUPPORTED_VERSION,
            &format!("unsupported protocol version {version:?}"),
            &data,
        ));
    }
    let Some(caps) = meta.get(META_CAPABILITIES) else {
        return Err(reply::invalid_params(
            id,
            &format!("missing _meta[{META_CAPABILITIES:?}]"),
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

/// Adds `resultType` (and, for lists, `ttlMs`/`cacheScope`) to a result that lacks them,
/// gives "resource not found" the code 2026-07-28 uses, and says how the request was answered.
pub(crate) fn finish(reply: String, method: &str) -> (String, ReplyClass) {
    let Ok(env) = Envelope::parse(&reply) else {
        return (reply, ReplyClass::Answered);
    };
    if let Some(err) = env.error {
        let Some(c) = Fields::parse(err.get()).and_then(|f| f.get("code")) else {
            return (reply, ReplyClass::Answered);
        };
        let class = ReplyClass::of_code(c.get());
        if c.get() == "-32002" {
            let mut sp = Splice::new();
            sp.replace(&reply, c.get(), code::INVALID_PARAMS.to_string());
            return (sp.apply(&reply), class);
        }
        return (reply, class);
    }
    (
        add_result_fields(&reply, &env, method),
        ReplyClass::Answered,
    )
}

/// [`finish`] for a result.
fn add_result_fields(reply: &str, env: &Envelope<'_>, method: &str) -> String {
    let Some(result) = env.result else {
        return reply.to_string();
    };
    let Some(fields) = Fields::parse(result.get()) else {
        return reply.to_string();
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
        return reply.to_string();
    }
    let raw = result.get();
    let Some((at, has_members)) = object_append_point(raw) else {
        return reply.to_string();
    };
    let offset = switchboard_core::jsonrpc::span_of(reply, raw).start;
    let mut sp = Splice::new();
    sp.insert(
        offset + at,
        if has_members {
            format!(",{extra}")
        } else {
            extra
        },
    );
    sp.apply(reply)
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
