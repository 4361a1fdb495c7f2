//! The hub's own replies to a client (or to an upstream that asked something): results and
//! JSON-RPC errors, built in one place so each refusal keeps one code and one wording.
//!
//! `id` is always the raw JSON text of the request's id.

use switchboard_core::jsonrpc::{code, error_message, quote, result_message};
use switchboard_core::protocol::Era;
use switchboard_upstream::UpstreamError;

/// A successful reply carrying `result` (raw JSON).
pub(crate) fn result(id: &str, result: &str) -> String {
    result_message(id, result)
}

/// An error reply without data.
pub(crate) fn error(id: &str, code: i64, message: &str) -> String {
    error_message(id, code, message, None)
}

/// An error reply with `data` (raw JSON).
pub(crate) fn error_with(id: &str, code: i64, message: &str, data: &str) -> String {
    error_message(id, code, message, Some(data))
}

/// -32602: the request's params are wrong.
pub(crate) fn invalid_params(id: &str, message: &str) -> String {
    error(id, code::INVALID_PARAMS, message)
}

/// -32601: no such method here (or a question the asker may not put to this client).
pub(crate) fn method_not_found(id: &str, message: &str) -> String {
    error(id, code::METHOD_NOT_FOUND, message)
}

/// -32603: the hub or the upstream failed.
pub(crate) fn internal(id: &str, message: &str) -> String {
    error(id, code::INTERNAL_ERROR, message)
}

/// The answer to a request for a known server that cannot serve it now (-32603, the code of
/// every "server unavailable" error): its name, state and last error.
pub(crate) fn unavailable(id: &str, server: &str, status: &switchboard_upstream::Status) -> String {
    let state = status.state.as_str();
    let message = match &status.last_error {
        Some(e) => format!("server {server:?} is unavailable ({state}): {e}"),
        None => format!("server {server:?} is unavailable ({state})"),
    };
    let data =
        serde_json::json!({"server": server, "state": state, "lastError": status.last_error});
    error_with(id, code::INTERNAL_ERROR, &message, &data.to_string())
}

/// "Resource not found": -32002 for session-era clients, -32602 for stateless ones
/// (2026-07-28 moved it).
pub(crate) fn resource_not_found(id: &str, uri: &str, client: Era) -> String {
    let code = match client {
        Era::Session => code::RESOURCE_NOT_FOUND,
        Era::Stateless => code::INVALID_PARAMS,
    };
    let data = format!(r#"{{"uri":{}}}"#, quote(uri));
    error_with(id, code, &format!("resource not found: {uri}"), &data)
}

/// A server's question refused because the client did not declare the capability it needs
/// (sent to the upstream, under the upstream's id).
pub(crate) fn undeclared(upstream_id: &str, needed: &str) -> String {
    let msg = format!("the client did not declare the {needed:?} capability");
    method_not_found(upstream_id, &msg)
}

/// A stateless client's call that needs a capability the client did not declare.
pub(crate) fn missing_capability(id: &str, needed: &str) -> String {
    let data = format!(r#"{{"requiredCapabilities":{{{}:{{}}}}}}"#, quote(needed));
    error_with(
        id,
        crate::stateless::MISSING_CAPABILITY,
        &format!("Missing required client capability: {needed}"),
        &data,
    )
}

/// The client's reply for an upstream call that failed: a timeout (-32001) or anything else
/// (-32603), naming the server.
pub(crate) fn upstream_failed(id: &str, server: &str, e: &UpstreamError) -> String {
    match e {
        UpstreamError::Timeout(d) => {
            let msg = format!(
                "server {server:?} did not answer within {}s; the request was cancelled",
                d.as_secs_f64()
            );
            error(id, code::REQUEST_TIMEOUT, &msg)
        }
        UpstreamError::ResultTooLarge { .. } => {
            tracing::warn!(message = "Refused an oversized result.", server, reason = %e);
            internal(id, &e.to_string())
        }
        e => internal(id, &format!("server {server:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_codes_and_wording() {
        assert_eq!(
            invalid_params("1", "missing params"),
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"missing params"}}"#
        );
        assert_eq!(
            resource_not_found(r#""a""#, "file:///x", Era::Session),
            r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32002,"message":"resource not found: file:///x","data":{"uri":"file:///x"}}}"#
        );
        assert_eq!(
            resource_not_found(r#""a""#, "file:///x", Era::Stateless),
            r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"resource not found: file:///x","data":{"uri":"file:///x"}}}"#
        );
        assert_eq!(
            missing_capability("2", "elicitation"),
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32021,"message":"Missing required client capability: elicitation","data":{"requiredCapabilities":{"elicitation":{}}}}}"#
        );
        assert_eq!(
            undeclared("9", "roots"),
            r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32601,"message":"the client did not declare the \"roots\" capability"}}"#
        );
    }

    #[test]
    fn upstream_failures_name_the_server() {
        let timeout = UpstreamError::Timeout(std::time::Duration::from_millis(1500));
        assert_eq!(
            upstream_failed("3", "fx", &timeout),
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"server \"fx\" did not answer within 1.5s; the request was cancelled"}}"#
        );
        let closed = UpstreamError::Closed("gone".into());
        let reply = upstream_failed("3", "fx", &closed);
        assert!(
            reply.starts_with(
                r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"server \"fx\": "#
            ),
            "{reply}"
        );
    }
}
