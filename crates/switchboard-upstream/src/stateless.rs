//! Talking to a stateless (2026-07-28) upstream: each request carries its own `_meta` and
//! the routing headers derived from it; `server/discover` replaces `initialize`.

use serde_json::Value;
use switchboard_core::jsonrpc::{Envelope, Fields, Kind, Splice, object_append_point, quote};
use switchboard_core::protocol::{STATELESS_VERSION, meta, routing_field};

use crate::{InitInfo, UpstreamError};

/// The `_meta` members the hub adds for a stateless upstream, leaving out keys `existing`
/// already has. Client capabilities default to none: without a client to ask, the hub
/// cannot carry a server's questions.
fn meta_members(existing: Option<&Fields<'_>>) -> String {
    let has = |k: &str| existing.is_some_and(|m| m.get(k).is_some());
    let mut out = Vec::new();
    if !has(meta::VERSION) {
        out.push(format!(
            "{}:{}",
            quote(meta::VERSION),
            quote(STATELESS_VERSION)
        ));
    }
    if !has(meta::CLIENT_CAPABILITIES) {
        out.push(format!("{}:{{}}", quote(meta::CLIENT_CAPABILITIES)));
    }
    if !has(meta::CLIENT_INFO) {
        out.push(format!(
            r#"{}:{{"name":"switchboard","version":{}}}"#,
            quote(meta::CLIENT_INFO),
            quote(env!("CARGO_PKG_VERSION"))
        ));
    }
    out.join(",")
}

/// Adds the stateless `_meta` to a request and returns it with its `Mcp-Method` and
/// `Mcp-Name` header values (non-ASCII names are sent base64-encoded).
pub(crate) fn prepare(body: String) -> (String, Option<String>, Option<String>) {
    let Ok(env) = Envelope::parse(&body) else {
        return (body, None, None);
    };
    let method = env.method.as_deref().map(str::to_string);
    if env.kind().ok() != Some(Kind::Request) {
        return (body, method, None);
    }
    let params = env.params.and_then(|p| Fields::parse(p.get()));
    let name = routing_field(env.method())
        .and_then(|f| params.as_ref()?.get_str(f))
        .map(|n| switchboard_core::param_headers::encode(&n));
    let mut sp = Splice::new();
    match (env.params, params.as_ref().and_then(|p| p.get("_meta"))) {
        (Some(_), Some(meta)) => {
            let existing = Fields::parse(meta.get());
            let members = meta_members(existing.as_ref());
            if !members.is_empty()
                && let Some((at, has)) = object_append_point(meta.get())
            {
                let start = switchboard_core::jsonrpc::span_of(&body, meta.get()).start;
                sp.insert(
                    start + at,
                    if has { format!(",{members}") } else { members },
                );
            }
        }
        (Some(raw), None) => {
            if let Some((at, has)) = object_append_point(raw.get()) {
                let start = switchboard_core::jsonrpc::span_of(&body, raw.get()).start;
                let member = format!(r#""_meta":{{{}}}"#, meta_members(None));
                sp.insert(start + at, if has { format!(",{member}") } else { member });
            }
        }
        (None, _) => {
            if let Some((at, _)) = object_append_point(&body) {
                sp.insert(
                    at,
                    format!(r#","params":{{"_meta":{{{}}}}}"#, meta_members(None)),
                );
            }
        }
    }
    let out = if sp.is_empty() { body } else { sp.apply(&body) };
    (out, method, name)
}

/// The params of the hub's `subscriptions/listen` request to a stateless server: every
/// list change, plus updates for the resource URIs some client subscribed to.
pub(crate) fn listen_params(uris: &[String]) -> String {
    serde_json::json!({"notifications": {
        "toolsListChanged": true,
        "promptsListChanged": true,
        "resourcesListChanged": true,
        "resourceSubscriptions": uris,
    }})
    .to_string()
}

/// What a `server/discover` result says, in the shape `initialize` gives.
pub(crate) fn discover_info(result: &str) -> Result<InitInfo, UpstreamError> {
    let v: Value =
        serde_json::from_str(result).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    let supports = v["supportedVersions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == STATELESS_VERSION));
    if !supports {
        return Err(UpstreamError::Protocol(
            "the server does not list 2026-07-28 among its supported versions".into(),
        ));
    }
    Ok(InitInfo {
        protocol_version: STATELESS_VERSION.into(),
        capabilities: v
            .get("capabilities")
            .cloned()
            .unwrap_or(Value::Object(Default::default())),
        server_info: v["_meta"][meta::SERVER_INFO].clone(),
        instructions: v
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_meta_and_names_the_target() {
        let (b, m, n) = prepare(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"é","arguments":{}}}"#.into());
        assert_eq!(m.as_deref(), Some("tools/call"));
        assert_eq!(n.as_deref(), Some("=?base64?w6k=?="));
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        let (b, _, _) = prepare(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into());
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"],
            serde_json::json!({})
        );
        let (b, _, _) = prepare(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":3}}}"#.into());
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["params"]["_meta"]["progressToken"], 3);
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
    }
}
