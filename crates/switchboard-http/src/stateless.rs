//! Stateless 2026-07-28 requests on the same `/mcp` URL: recognising them, checking the
//! routing headers against the body, and the HTTP statuses their errors carry.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_core::jsonrpc::{Envelope, Fields};
use switchboard_core::protocol::headers::{METHOD, NAME, PARAM_PREFIX, PROTOCOL_VERSION};
use switchboard_core::protocol::meta::VERSION as META_VERSION;
use switchboard_core::protocol::routing_field;
use switchboard_hub::{HEADER_MISMATCH, ReplyClass, STATELESS_VERSION};

/// A request without a session that names the stateless revision (header or `_meta`).
pub(crate) fn is_stateless(headers: &HeaderMap, env: &Envelope<'_>) -> bool {
    if headers.get(PROTOCOL_VERSION).and_then(|v| v.to_str().ok()) == Some(STATELESS_VERSION) {
        return true;
    }
    meta_version(env).is_some()
}

fn meta_version(env: &Envelope<'_>) -> Option<String> {
    let params = Fields::parse(env.params?.get())?;
    let meta = Fields::parse(params.get("_meta")?.get())?;
    meta.get_str(META_VERSION).map(|v| v.into_owned())
}

fn mismatch(id: &str, what: &str) -> Response {
    let body = switchboard_core::jsonrpc::error_message(
        id,
        HEADER_MISMATCH,
        &format!("Header mismatch: {what}"),
        None,
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Checks `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` against the body.
pub(crate) fn check_headers(headers: &HeaderMap, env: &Envelope<'_>) -> Result<(), Response> {
    let id = env.id_text();
    let mismatch = |what: &str| mismatch(id, what);
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().map(decode_header_value))
    };
    let body_version = meta_version(env);
    match (get(PROTOCOL_VERSION), &body_version) {
        (Some(Ok(Some(h))), Some(b)) if &h != b => {
            return Err(mismatch("MCP-Protocol-Version differs from _meta"));
        }
        (Some(Ok(None)) | Some(Err(_)), _) => {
            return Err(mismatch("MCP-Protocol-Version is malformed"));
        }
        (None, _) => return Err(mismatch("MCP-Protocol-Version header is required")),
        _ => {}
    }
    match get(METHOD) {
        Some(Ok(Some(m))) if m == env.method() => {}
        Some(_) => return Err(mismatch("Mcp-Method differs from the body's method")),
        None => return Err(mismatch("Mcp-Method header is required")),
    }
    if let Some(field) = routing_field(env.method()) {
        let body = env
            .params
            .and_then(|p| Fields::parse(p.get()))
            .and_then(|f| f.get_str(field).map(|v| v.into_owned()));
        match (get(NAME), body) {
            (Some(Ok(Some(h))), Some(b)) if h == b => {}
            (None, _) => return Err(mismatch("Mcp-Name header is required")),
            _ => return Err(mismatch(&format!("Mcp-Name differs from params.{field}"))),
        }
    }
    Ok(())
}

/// The request's `Mcp-Param-*` headers: (name after the prefix, raw value).
pub(crate) fn param_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let suffix = name.as_str().strip_prefix(PARAM_PREFIX)?;
            Some((suffix.to_string(), value.to_str().ok()?.to_string()))
        })
        .collect()
}

/// Header values may be sent as `=?base64?<b64>?=` (checked strictly); anything else is
/// taken as is.
fn decode_header_value(v: &str) -> Option<String> {
    switchboard_core::param_headers::decode(v)
}

/// Gives a JSON reply the status the stateless revision prescribes for how the hub answered:
/// 400 for a protocol-level refusal, 404 for an unknown method, else 200. A streamed reply
/// has sent its 200 already.
pub(crate) fn with_status(mut resp: Response, class: ReplyClass) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json && resp.status() == StatusCode::OK {
        *resp.status_mut() = match class {
            ReplyClass::Answered => StatusCode::OK,
            ReplyClass::Refused => StatusCode::BAD_REQUEST,
            ReplyClass::UnknownMethod => StatusCode::NOT_FOUND,
        };
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_header_values() {
        assert_eq!(
            decode_header_value("=?base64?aMOpbGxv?=").as_deref(),
            Some("héllo")
        );
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
    }
}
