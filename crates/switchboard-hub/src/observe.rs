//! Call observation: the one hook where every MCP request the hub answers (routed, answered
//! locally or refused) becomes a [`CallRecord`], handed to the hub's [`CallObserver`] without
//! blocking. Without an observer nothing is built (one `OnceLock` load per request).

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use memchr::memmem;
use switchboard_core::jsonrpc::{Envelope, Fields};

/// Longest error message a record keeps (bytes, cut at a character boundary).
pub const ERROR_MESSAGE_CAP: usize = 512;

/// One finished (or refused) client request.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// When it started.
    pub at: SystemTime,
    /// The hub's tenant.
    pub tenant: Arc<str>,
    /// Who called, when the transport authenticated them.
    pub principal: Option<Arc<str>>,
    /// The endpoint's view label.
    pub endpoint: String,
    /// Client session id (empty for stateless requests).
    pub session: String,
    /// JSON-RPC method.
    pub method: String,
    /// The owning server, when the request named something routable.
    pub server: Option<String>,
    /// Tool or prompt name, or resource URI.
    pub target: Option<String>,
    /// True when `target` exists in the merged catalog (a bounded metric label).
    pub known_target: bool,
    /// `None` for success; `tool_error`, or the JSON-RPC error code, for failures.
    pub error_type: Option<String>,
    /// The error message (capped at [`ERROR_MESSAGE_CAP`]).
    pub error_message: Option<String>,
    /// Time to the reply.
    pub duration: Duration,
    /// Request size.
    pub bytes_in: usize,
    /// Reply size.
    pub bytes_out: usize,
    /// Trace id from the request's `_meta.traceparent`.
    pub trace_id: Option<String>,
    /// The session's protocol revision.
    pub protocol_version: Option<String>,
    /// The request's `params` and the reply, only when the observer asks for payloads.
    pub payload: Option<(String, String)>,
}

impl CallRecord {
    /// True for methods that name something on an upstream (tools, prompts, resources,
    /// completions, tasks): these are the rows of the activity log.
    pub fn is_routed_method(&self) -> bool {
        routed_method(&self.method)
    }
}

/// One call the hub made to an upstream.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamCall<'a> {
    /// The hub's tenant.
    pub tenant: &'a str,
    /// Server name.
    pub server: &'a str,
    /// JSON-RPC method.
    pub method: &'a str,
    /// Tool name for `tools/call` (as the server spells it).
    pub tool: Option<&'a str>,
    /// `None` for success.
    pub error_type: Option<&'a str>,
    /// The negotiated protocol revision with the upstream.
    pub protocol_version: Option<&'a str>,
    /// How long the upstream took.
    pub duration: Duration,
}

/// Receives the hub's records. Every method runs on the call path: implementations must be
/// cheap and must never block (no awaits, no contended locks; queue anything slow).
pub trait CallObserver: Send + Sync {
    /// A client request finished.
    fn call(&self, record: CallRecord);
    /// An upstream call finished.
    fn upstream_call(&self, _call: &UpstreamCall<'_>) {}
    /// A client session ended after `lifetime`.
    fn session_closed(&self, _tenant: &str, _lifetime: Duration) {}
    /// A tool search (`search_tools` or the REST search) took `duration`; `mode` is
    /// `lexical` or `hybrid` (query embedding included).
    fn tool_search(&self, _tenant: &str, _mode: &str, _duration: Duration) {}
    /// True when records should carry request and reply payloads.
    fn wants_payloads(&self) -> bool {
        false
    }
}

/// The hub's observer and the tenant it reports as.
pub(crate) struct Observed {
    pub(crate) tenant: Arc<str>,
    pub(crate) observer: Arc<dyn CallObserver>,
}

pub(crate) fn routed_method(method: &str) -> bool {
    matches!(
        method,
        "tools/call"
            | "prompts/get"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "completion/complete"
            | "tasks/get"
            | "tasks/update"
            | "tasks/cancel"
    )
}

/// Whether `text` has an `"error":` member, and an `"isError": true` one: two vectorised
/// substring scans, no parsing. Inside a JSON string the quotes would be escaped
/// (`\"error\"`), so a match is a member name of some object.
fn error_members(text: &str) -> (bool, bool) {
    static ERROR: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\"error\""));
    static IS_ERROR: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\"isError\""));
    let bytes = text.as_bytes();
    let value_after = |mut j: usize| {
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if bytes.get(j) != Some(&b':') {
            return None;
        }
        j += 1;
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        Some(&bytes[j..])
    };
    let error = ERROR.find_iter(bytes).any(|i| value_after(i + 7).is_some());
    let is_error = IS_ERROR
        .find_iter(bytes)
        .any(|i| value_after(i + 9).is_some_and(|v| v.starts_with(b"true")));
    (error, is_error)
}

/// How a reply failed: `None` for success, else (error type, message). A reply with neither
/// an `"error":` member nor an `"isError": true` one is a success without parsing it (the
/// common `"isError":false` costs a scan, not a parse).
pub fn classify(reply: &str) -> Option<(String, Option<String>)> {
    let (has_error, has_is_error) = error_members(reply);
    if !has_error && !has_is_error {
        return None;
    }
    let env = Envelope::parse(reply).ok()?;
    if let Some(err) = env.error {
        let fields = Fields::parse(err.get());
        let code = fields
            .as_ref()
            .and_then(|f| f.get("code"))
            .map(|c| c.get().to_string())
            .unwrap_or_else(|| "error".into());
        let message = fields
            .as_ref()
            .and_then(|f| f.get_str("message"))
            .map(|m| cap(&m));
        return Some((code, message));
    }
    if has_is_error {
        let result = Fields::parse(env.result?.get())?;
        if result.get("isError").is_some_and(|v| v.get() == "true") {
            let message = result
                .get("content")
                .and_then(|c| switchboard_core::jsonrpc::array_items(c.get()))
                .and_then(|items| {
                    items
                        .iter()
                        .find_map(|i| Fields::parse(i.get())?.get_str("text").map(|t| cap(&t)))
                });
            return Some(("tool_error".into(), message));
        }
    }
    None
}

/// `text` cut to at most [`ERROR_MESSAGE_CAP`] bytes at a character boundary.
pub fn cap(text: &str) -> String {
    if text.len() <= ERROR_MESSAGE_CAP {
        return text.to_string();
    }
    let mut end = ERROR_MESSAGE_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well formed.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    (trace.len() == 32
        && span.len() == 16
        && trace.bytes().all(|b| b.is_ascii_hexdigit())
        && trace != "00000000000000000000000000000000")
        .then_some(trace)
}

/// Counts a request in flight until dropped (also when the client goes away mid-call).
pub(crate) struct InFlight<'a>(&'a std::sync::atomic::AtomicI64);

impl<'a> InFlight<'a> {
    pub(crate) fn enter(counter: &'a std::sync::atomic::AtomicI64) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Tells the observer how an upstream call went.
pub(crate) fn report_upstream(
    o: &Observed,
    server: &str,
    info: Option<&switchboard_upstream::InitInfo>,
    env: &Envelope<'_>,
    params: Option<&Fields<'_>>,
    outcome: &Result<String, switchboard_upstream::UpstreamError>,
    started: std::time::Instant,
) {
    let duration = started.elapsed();
    let classified = match outcome {
        Ok(reply) => classify(reply).map(|(t, _)| t),
        Err(switchboard_upstream::UpstreamError::Timeout(_)) => {
            Some(switchboard_core::jsonrpc::code::REQUEST_TIMEOUT.to_string())
        }
        Err(_) => Some("transport_error".to_string()),
    };
    let method = env.method();
    let tool = (method == "tools/call")
        .then(|| params.and_then(|p| p.get_str("name")))
        .flatten();
    o.observer.upstream_call(&UpstreamCall {
        tenant: &o.tenant,
        server,
        method,
        tool: tool.as_deref(),
        error_type: classified.as_deref(),
        protocol_version: info.map(|i| i.protocol_version.as_str()),
        duration,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_errors_and_tool_errors_are_told_apart() {
        assert_eq!(classify(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}"#),
            None
        );
        let (t, m) = classify(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"boom"}],"isError":true}}"#,
        )
        .unwrap();
        assert_eq!((t.as_str(), m.as_deref()), ("tool_error", Some("boom")));
        let (t, m) = classify(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool: x"}}"#,
        )
        .unwrap();
        assert_eq!(
            (t.as_str(), m.as_deref()),
            ("-32602", Some("unknown tool: x"))
        );
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError" : false}}"#),
            None
        );
        let (t, _) = classify(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"isError"}],"isError" :
             true}}"#,
        )
        .unwrap();
        assert_eq!(t, "tool_error");
        // "error" inside a successful result's text is not an error.
        assert_eq!(
            classify(
                r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"\"error\""}]}}"#
            ),
            None
        );
    }

    #[test]
    fn long_messages_are_capped_at_a_character_boundary() {
        let long = "é".repeat(ERROR_MESSAGE_CAP);
        let capped = cap(&long);
        assert!(capped.len() <= ERROR_MESSAGE_CAP);
        assert!(long.starts_with(&capped));
    }

    #[test]
    fn trace_ids_come_from_well_formed_traceparents_only() {
        assert_eq!(
            trace_id_of("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(trace_id_of("00-xyz-b7ad6b7169203331-01"), None);
        assert_eq!(trace_id_of("garbage"), None);
    }
}
