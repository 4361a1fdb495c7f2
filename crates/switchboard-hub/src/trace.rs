//! Distributed tracing in the OpenTelemetry MCP conventions: W3C trace context in
//! (`params._meta.traceparent`, else the HTTP `traceparent` header) and out (upstream
//! `params._meta` and, for HTTP upstreams, the `traceparent` header), a SERVER span per client
//! request and a CLIENT span per upstream call. Finished spans go to the hub's [`SpanSink`]
//! (the OTLP exporter), which must never block. With no sink set, nothing here runs.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use switchboard_core::jsonrpc::Fields;

mod propagate;

pub(crate) use propagate::Outgoing;

/// Span kind (OTLP numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// The hub answering a client.
    Server = 2,
    /// The hub calling an upstream.
    Client = 3,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A constant string (nothing allocated).
    Static(&'static str),
    /// An integer.
    Int(i64),
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(s.to_string())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s)
    }
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// This span's id.
    pub span_id: [u8; 8],
    /// The parent's span id (remote for a server span continuing a client's trace).
    pub parent_span_id: Option<[u8; 8]>,
    /// The W3C `tracestate` this span was started with.
    pub tracestate: Option<String>,
    /// `{mcp.method.name} {target}`.
    pub name: String,
    /// Server or client.
    pub kind: SpanKind,
    /// Start time.
    pub start: SystemTime,
    /// End time.
    pub end: SystemTime,
    /// Attributes, in the conventions' names.
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// `Some` (the error message, maybe empty) sets status ERROR; `None` leaves it unset.
    pub error: Option<String>,
}

/// Receives finished spans. Runs on the call path: must be cheap and never block.
pub trait SpanSink: Send + Sync {
    /// A span ended.
    fn export(&self, span: Span);
}

/// The hub's span sink and what its spans report.
pub(crate) struct Traced {
    pub(crate) sink: Arc<dyn SpanSink>,
    /// Which requests are recorded.
    pub(crate) sampler: crate::sampler::Sampler,
    pub(crate) tenant: Arc<str>,
    /// `network.transport` of client requests: `tcp` (HTTP) or `pipe` (stdio).
    pub(crate) transport: &'static str,
}

static ENABLED: AtomicBool = AtomicBool::new(false);

pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// True once any hub of this process traces (the HTTP layer reads headers only then).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A W3C trace context: what a `traceparent` carries, plus `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// The span id of the (remote or local) parent.
    pub span_id: [u8; 8],
    /// The sampled flag.
    pub sampled: bool,
    /// Vendor state, passed on unchanged.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`; later versions may append
    /// fields). All-zero ids, version `ff` and malformed values give `None`.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let tp = traceparent.trim();
        let b = tp.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex_byte(&tp[0..2])?;
        if version == 0xff || (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        let mut trace_id = [0u8; 16];
        hex_into(&tp[3..35], &mut trace_id)?;
        let mut span_id = [0u8; 8];
        hex_into(&tp[36..52], &mut span_id)?;
        let flags = hex_byte(&tp[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            tracestate: tracestate
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 512)
                .map(str::to_string),
        })
    }

    /// The `traceparent` naming this context's span.
    pub fn traceparent(&self) -> String {
        propagate::Traceparent::of(self).as_str().to_string()
    }
}

fn hex_byte(s: &str) -> Option<u8> {
    (s.len() == 2 && s.bytes().all(|c| c.is_ascii_hexdigit()))
        .then(|| u8::from_str_radix(s, 16).ok())
        .flatten()
}

fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    for (i, o) in out.iter_mut().enumerate() {
        *o = hex_byte(s.get(2 * i..2 * i + 2)?)?;
    }
    Some(())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends the lower-case hex of `bytes` to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        b = t.to_le_bytes();
    }
    u64::from_le_bytes(b) | 1
}

/// A random non-zero u64 (SplitMix64 over a per-thread seed from the OS).
fn next_u64() -> u64 {
    RNG.with(|s| {
        let mut z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).max(1)
    })
}

pub(crate) fn new_span_id() -> [u8; 8] {
    next_u64().to_be_bytes()
}

pub(crate) fn new_trace_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&next_u64().to_be_bytes());
    id[8..].copy_from_slice(&next_u64().to_be_bytes());
    id
}

/// The trace context of the HTTP request being served (its `traceparent` header).
#[derive(Debug, Clone)]
struct HttpContext(Option<TraceContext>);

/// The server span a client request runs in, for its upstream calls.
#[derive(Clone)]
pub(crate) struct Current {
    /// The server span's context (its span id is the upstream calls' parent).
    pub(crate) ctx: TraceContext,
    pub(crate) sink: Arc<dyn SpanSink>,
}

tokio::task_local! {
    static HTTP: HttpContext;
    static CURRENT: Current;
}

/// Runs `fut` (one HTTP request's handling) with the request's `traceparent`/`tracestate`
/// headers as the fallback parent of the MCP requests it carries.
pub async fn with_http_headers<F: Future>(
    traceparent: Option<&str>,
    tracestate: Option<&str>,
    fut: F,
) -> F::Output {
    let ctx = traceparent.and_then(|tp| TraceContext::parse(tp, tracestate));
    HTTP.scope(HttpContext(ctx), fut).await
}

/// The parent of a client request's server span: `params._meta.traceparent` (with
/// `tracestate`), else the HTTP request's headers.
pub(crate) fn incoming(params: Option<&Fields<'_>>) -> Option<TraceContext> {
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| Fields::parse(m.get()));
    if let Some(meta) = meta
        && let Some(tp) = meta.get_str("traceparent")
    {
        let ts = meta.get_str("tracestate");
        if let Some(ctx) = TraceContext::parse(&tp, ts.as_deref()) {
            return Some(ctx);
        }
    }
    HTTP.try_with(|h| h.0.clone()).ok().flatten()
}

/// Runs `fut` inside the server span `current`.
pub(crate) async fn in_span<F: Future>(current: Current, fut: F) -> F::Output {
    CURRENT.scope(current, fut).await
}

/// A child (CLIENT) span of the current server span, if the request is traced; with
/// `reuse`, the server span's own context (nothing new to report).
pub(crate) fn child(reuse: bool) -> Option<(Current, TraceContext)> {
    CURRENT
        .try_with(|c| {
            let ctx = if reuse {
                c.ctx.clone()
            } else {
                TraceContext {
                    span_id: new_span_id(),
                    ..c.ctx.clone()
                }
            };
            (c.clone(), ctx)
        })
        .ok()
}

/// Starts a client request's SERVER span: its context and its parent's span id. The
/// sampler decides here whether the request is recorded (the context's sampled flag); an
/// unsampled span still carries its context to upstreams.
pub(crate) fn start_server(
    traced: &Traced,
    params: Option<&Fields<'_>>,
) -> (Current, Option<[u8; 8]>) {
    let parent = incoming(params);
    let span_id = new_span_id();
    let (ctx, parent_id) = match parent {
        Some(p) => {
            let id = p.span_id;
            let sampled = traced.sampler.should_sample(&p.trace_id, Some(p.sampled));
            (
                TraceContext {
                    span_id,
                    sampled,
                    ..p
                },
                Some(id),
            )
        }
        None => {
            let trace_id = new_trace_id();
            (
                TraceContext {
                    trace_id,
                    span_id,
                    sampled: traced.sampler.should_sample(&trace_id, None),
                    tracestate: None,
                },
                None,
            )
        }
    };
    let current = Current {
        ctx,
        sink: traced.sink.clone(),
    };
    (current, parent_id)
}

/// What a finished client request reports.
pub(crate) struct Finished<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: Option<&'a str>,
    pub(crate) server: Option<&'a str>,
    pub(crate) session: &'a str,
    /// The raw JSON id.
    pub(crate) request_id: &'a str,
    pub(crate) protocol_version: Option<&'a str>,
    /// (error type, message).
    pub(crate) error: Option<(&'a str, Option<&'a str>)>,
    pub(crate) start: SystemTime,
    pub(crate) duration: std::time::Duration,
}

/// Ends a SERVER span (exported when sampled).
pub(crate) fn finish_server(
    traced: &Traced,
    current: &Current,
    parent: Option<[u8; 8]>,
    f: &Finished<'_>,
) {
    if !current.ctx.sampled {
        return;
    }
    let mut attributes: Vec<(&'static str, AttrValue)> = Vec::with_capacity(12);
    attributes.push(("mcp.method.name", f.method.into()));
    if !f.session.is_empty() {
        attributes.push(("mcp.session.id", f.session.into()));
    }
    target_attributes(&mut attributes, f.method, f.target);
    if let Some(id) = request_id(f.request_id) {
        attributes.push(("jsonrpc.request.id", id.into()));
    }
    if let Some(v) = f.protocol_version {
        attributes.push(("mcp.protocol.version", v.into()));
    }
    attributes.push(("network.transport", AttrValue::Static(traced.transport)));
    if traced.transport == "tcp" {
        attributes.push(("network.protocol.name", AttrValue::Static("http")));
    }
    attributes.push(("switchboard.tenant", (*traced.tenant).into()));
    if let Some(s) = f.server {
        attributes.push(("switchboard.server.name", s.into()));
    }
    if let Some((t, _)) = f.error {
        error_attributes(&mut attributes, t);
    }
    current.sink.export(Span {
        trace_id: current.ctx.trace_id,
        span_id: current.ctx.span_id,
        parent_span_id: parent,
        tracestate: current.ctx.tracestate.clone(),
        name: span_name(f.method, f.target),
        kind: SpanKind::Server,
        start: f.start,
        end: f.start + f.duration,
        attributes,
        error: f.error.map(|(_, m)| m.unwrap_or_default().to_string()),
    });
}

/// What a finished upstream call reports.
pub(crate) struct UpstreamCallInfo<'a> {
    pub(crate) method: &'a str,
    /// The tool or prompt name as the upstream spells it, or the URI.
    pub(crate) target: Option<&'a str>,
    pub(crate) server: &'a str,
    pub(crate) transport: &'a switchboard_core::config::TransportSpec,
    pub(crate) protocol_version: Option<String>,
    /// The hub's id for the upstream request.
    pub(crate) request_id: u64,
}

/// Ends a CLIENT span for an upstream call (exported when sampled).
pub(crate) fn finish_client(
    current: &Current,
    ctx: &TraceContext,
    call: &UpstreamCallInfo<'_>,
    outcome: &Result<String, switchboard_upstream::UpstreamError>,
    started: std::time::Instant,
) {
    use switchboard_core::config::TransportSpec;
    if !ctx.sampled {
        return;
    }
    let duration = started.elapsed();
    let end = SystemTime::now();
    let (error_type, message) = match outcome {
        Ok(reply) => match crate::observe::classify(reply) {
            Some((t, m)) => (Some(t), m),
            None => (None, None),
        },
        Err(switchboard_upstream::UpstreamError::Timeout(_)) => (
            Some(switchboard_core::jsonrpc::code::REQUEST_TIMEOUT.to_string()),
            Some(
                outcome
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
        ),
        Err(e) => (Some("transport_error".to_string()), Some(e.to_string())),
    };
    let mut attributes: Vec<(&'static str, AttrValue)> = Vec::with_capacity(12);
    attributes.push(("mcp.method.name", call.method.into()));
    target_attributes(&mut attributes, call.method, call.target);
    attributes.push((
        "jsonrpc.request.id",
        AttrValue::Str(call.request_id.to_string()),
    ));
    if let Some(v) = &call.protocol_version {
        attributes.push(("mcp.protocol.version", v.as_str().into()));
    }
    match call.transport {
        TransportSpec::Stdio { .. } => {
            attributes.push(("network.transport", AttrValue::Static("pipe")))
        }
        TransportSpec::StreamableHttp { url, .. } | TransportSpec::Sse { url, .. } => {
            attributes.push(("network.transport", AttrValue::Static("tcp")));
            attributes.push(("network.protocol.name", AttrValue::Static("http")));
            let (host, port) = address_of(url);
            if let Some(host) = host {
                attributes.push(("server.address", AttrValue::Str(host)));
            }
            if let Some(port) = port {
                attributes.push(("server.port", AttrValue::Int(i64::from(port))));
            }
        }
    }
    attributes.push(("switchboard.server.name", call.server.into()));
    if let Some(t) = &error_type {
        error_attributes(&mut attributes, t);
    }
    current.sink.export(Span {
        trace_id: ctx.trace_id,
        span_id: ctx.span_id,
        parent_span_id: Some(current.ctx.span_id),
        tracestate: ctx.tracestate.clone(),
        name: span_name(call.method, call.target),
        kind: SpanKind::Client,
        start: end - duration,
        end,
        attributes,
        error: error_type.map(|_| message.unwrap_or_default()),
    });
}

/// An upstream URL with its host and port.
type Address = (String, Option<String>, Option<u16>);

thread_local! {
    /// The host and port of the upstream URLs seen on this thread (parsed once each).
    static ADDRESSES: std::cell::RefCell<Vec<Address>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `server.address` and `server.port` of an upstream URL, from a small per-thread cache.
fn address_of(url: &str) -> (Option<String>, Option<u16>) {
    ADDRESSES.with(|cell| {
        let mut seen = cell.borrow_mut();
        if let Some((_, host, port)) = seen.iter().find(|(u, _, _)| u == url) {
            return (host.clone(), *port);
        }
        let (host, port) = match url::Url::parse(url) {
            Ok(u) => (u.host_str().map(str::to_string), u.port_or_known_default()),
            Err(_) => (None, None),
        };
        if seen.len() >= 64 {
            seen.clear();
        }
        seen.push((url.to_string(), host.clone(), port));
        (host, port)
    })
}

/// `{method} {target}`: the target is a tool or prompt name (never a URI, which would make
/// span names high-cardinality).
pub(crate) fn span_name(method: &str, target: Option<&str>) -> String {
    match (method, target) {
        ("tools/call" | "prompts/get", Some(t)) => format!("{method} {t}"),
        _ => method.to_string(),
    }
}

/// The conventions' attributes naming what `method` acts on.
pub(crate) fn target_attributes(
    attrs: &mut Vec<(&'static str, AttrValue)>,
    method: &str,
    target: Option<&str>,
) {
    let Some(t) = target else { return };
    match method {
        "tools/call" => {
            attrs.push(("gen_ai.tool.name", t.into()));
            attrs.push(("gen_ai.operation.name", AttrValue::Static("execute_tool")));
        }
        "prompts/get" => attrs.push(("gen_ai.prompt.name", t.into())),
        m if m.starts_with("resources/") => attrs.push(("mcp.resource.uri", t.into())),
        _ => {}
    }
}

/// `jsonrpc.request.id` from a raw id: a string's contents, a number's text; `None` for null.
pub(crate) fn request_id(raw: &str) -> Option<String> {
    match raw {
        "" | "null" => None,
        r if r.starts_with('"') => serde_json::from_str::<String>(r).ok(),
        r => Some(r.to_string()),
    }
}

/// Error attributes: `error.type` always, `rpc.response.status_code` for a JSON-RPC code.
pub(crate) fn error_attributes(attrs: &mut Vec<(&'static str, AttrValue)>, error_type: &str) {
    attrs.push(("error.type", error_type.into()));
    if error_type.starts_with('-') || error_type.bytes().all(|b| b.is_ascii_digit()) {
        attrs.push(("rpc.response.status_code", error_type.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn traceparents_parse_and_format() {
        let ctx = TraceContext::parse(TP, Some("rojo=1")).unwrap();
        assert_eq!(hex(&ctx.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(hex(&ctx.span_id), "b7ad6b7169203331");
        assert!(ctx.sampled);
        assert_eq!(ctx.tracestate.as_deref(), Some("rojo=1"));
        assert_eq!(ctx.traceparent(), TP);
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319x-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad}");
        }
        // A later version may carry more fields.
        assert!(TraceContext::parse(&format!("01{}-zz", &TP[2..]), None).is_some());
        let unsampled = TraceContext::parse(&TP.replace("-01", "-00"), None).unwrap();
        assert!(!unsampled.sampled);
    }

    #[test]
    fn ids_are_random_and_non_zero() {
        let (a, b) = (new_span_id(), new_span_id());
        assert_ne!(a, b);
        assert_ne!(a, [0; 8]);
        assert_ne!(new_trace_id(), new_trace_id());
    }

    #[test]
    fn names_and_attributes_follow_the_conventions() {
        assert_eq!(span_name("tools/call", Some("echo")), "tools/call echo");
        assert_eq!(
            span_name("resources/read", Some("file:///x")),
            "resources/read"
        );
        assert_eq!(span_name("tools/list", None), "tools/list");
        assert_eq!(request_id(r#""abc""#).as_deref(), Some("abc"));
        assert_eq!(request_id("7").as_deref(), Some("7"));
        assert_eq!(request_id("null"), None);
        let mut attrs = Vec::new();
        error_attributes(&mut attrs, "-32602");
        error_attributes(&mut attrs, "tool_error");
        assert_eq!(attrs.len(), 3);
    }
}
