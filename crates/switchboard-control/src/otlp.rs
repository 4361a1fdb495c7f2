//! The OTLP trace exporter: finished spans go into a bounded queue (a full queue drops the
//! span and counts it; a request never waits), and a background task posts them in batches
//! as OTLP/HTTP JSON (`POST {endpoint}/v1/traces`, `application/json`: hex ids, unix nanos as
//! strings, attributes as key/AnyValue) with a timeout, logging at most one line a minute
//! about failed exports. Our own small exporter rather than `opentelemetry-otlp`: no prost,
//! no SDK, and the hub's reqwest client.
//!
//! Configured by the standard variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is),
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended), `OTEL_EXPORTER_OTLP_HEADERS` and
//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`,
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, and `OTEL_TRACES_EXPORTER=none` / `OTEL_SDK_DISABLED`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use switchboard_hub::trace::{AttrValue, Span, SpanSink, hex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The full traces URL (`…/v1/traces`).
    pub url: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// `service.name`.
    pub service_name: String,
    /// Other resource attributes.
    pub resource: Vec<(String, String)>,
    /// Per-export timeout.
    pub timeout: Duration,
    /// Longest a span waits before its batch is sent.
    pub delay: Duration,
    /// Spans the queue holds before it drops.
    pub queue: usize,
    /// Most spans in one export.
    pub batch: usize,
}

impl OtlpConfig {
    /// The configuration from `--otlp-endpoint` (a base URL, like `OTEL_EXPORTER_OTLP_ENDPOINT`)
    /// and the environment read through `env`; `None` when traces are off.
    pub fn from_env(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return None;
        }
        let url = match (
            flag.filter(|f| !f.is_empty()),
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        ) {
            (Some(base), _) => traces_url(base),
            (None, Some(url)) => url,
            (None, None) => traces_url(&get("OTEL_EXPORTER_OTLP_ENDPOINT")?),
        };
        let mut headers = parse_pairs(&get("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default());
        headers.extend(parse_pairs(
            &get("OTEL_EXPORTER_OTLP_TRACES_HEADERS").unwrap_or_default(),
        ));
        let millis = |k: &str, default: u64| {
            Duration::from_millis(get(k).and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        let count = |k: &str, default: usize| {
            get(k)
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        Some(OtlpConfig {
            url,
            headers,
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "switchboard".into()),
            resource: parse_pairs(&get("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default())
                .into_iter()
                .filter(|(k, _)| k != "service.name")
                .collect(),
            timeout: millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000),
            delay: millis("OTEL_BSP_SCHEDULE_DELAY", 1_000),
            queue: count("OTEL_BSP_MAX_QUEUE_SIZE", 8_192),
            batch: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        })
    }
}

/// `base` + `/v1/traces`.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

/// `k1=v1,k2=v2` (values percent-decoded), as the OTLP variables write headers.
fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(h) = std::str::from_utf8(&b[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The exporter's queue; a [`SpanSink`].
pub struct OtlpExporter {
    queue: mpsc::Sender<Span>,
    dropped: AtomicU64,
}

impl OtlpExporter {
    /// Starts the export task; it sends what is queued and stops with `shutdown`.
    pub fn start(
        config: OtlpConfig,
        client: reqwest::Client,
        shutdown: CancellationToken,
    ) -> Arc<OtlpExporter> {
        let (queue, rx) = mpsc::channel(config.queue);
        tokio::spawn(export_loop(config, client, rx, shutdown));
        Arc::new(OtlpExporter {
            queue,
            dropped: AtomicU64::new(0),
        })
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl SpanSink for OtlpExporter {
    fn export(&self, span: Span) {
        if self.queue.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How often the exporter looks at its queue while a batch gathers.
const POLL_EVERY: Duration = Duration::from_millis(20);

async fn export_loop(
    config: OtlpConfig,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Span>,
    shutdown: CancellationToken,
) {
    let mut failures = Failures::default();
    let mut batch = Vec::with_capacity(config.batch);
    loop {
        // Wait for a first span, then let the batch gather while looking at the queue every
        // POLL_EVERY instead of waiting on it: a request that ends a span then finds no
        // waker to wake (the push alone), and the exporter wakes 50 times a second at most.
        let first = tokio::select! {
            s = rx.recv() => s,
            _ = shutdown.cancelled() => None,
        };
        let stop = match first {
            None => true,
            Some(s) => {
                batch.push(s);
                let deadline = tokio::time::Instant::now() + config.delay;
                loop {
                    let stop = tokio::select! {
                        _ = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL_EVERY)) => false,
                        _ = shutdown.cancelled() => true,
                    };
                    while batch.len() < config.batch {
                        match rx.try_recv() {
                            Ok(s) => batch.push(s),
                            Err(_) => break,
                        }
                    }
                    if stop
                        || batch.len() >= config.batch
                        || tokio::time::Instant::now() >= deadline
                    {
                        break stop;
                    }
                }
            }
        };
        if stop {
            rx.close();
            while let Ok(s) = rx.try_recv() {
                batch.push(s);
            }
        }
        for chunk in batch.chunks(config.batch) {
            send(&config, &client, chunk, &mut failures).await;
        }
        batch.clear();
        if stop {
            return;
        }
    }
}

/// Rate-limited reporting of failed exports: one line a minute at most.
#[derive(Default)]
struct Failures {
    since_last_line: u64,
    last_line: Option<Instant>,
}

async fn send(config: &OtlpConfig, client: &reqwest::Client, spans: &[Span], f: &mut Failures) {
    if spans.is_empty() {
        return;
    }
    let body = encode(&config.service_name, &config.resource, spans);
    let mut req = client
        .post(&config.url)
        .header("content-type", "application/json")
        .timeout(config.timeout)
        .body(body);
    for (k, v) in &config.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let error = match req.send().await {
        Ok(r) if r.status().is_success() => return,
        Ok(r) => format!("HTTP {}", r.status()),
        Err(e) => e.to_string(),
    };
    f.since_last_line += 1;
    if f.last_line
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
    {
        tracing::warn!(
            message = "Could not export spans to the OTLP endpoint.",
            url = %config.url,
            error = %error,
            failed_exports = f.since_last_line,
            spans = spans.len()
        );
        f.since_last_line = 0;
        f.last_line = Some(Instant::now());
    }
}

/// Appends `s` as a JSON string (quoted, escaped).
fn push_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        // Nothing to escape (the usual names and ids): copied as is.
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Appends `{"key":K,"value":{"stringValue":V}}` or `{… "intValue":"N"}` (OTLP JSON writes
/// 64-bit integers as strings).
fn push_attr(out: &mut Vec<u8>, key: &str, value: &AttrValue) {
    out.extend_from_slice(b"{\"key\":");
    push_str(out, key);
    match value {
        AttrValue::Str(v) => {
            out.extend_from_slice(b",\"value\":{\"stringValue\":");
            push_str(out, v);
        }
        AttrValue::Static(v) => {
            out.extend_from_slice(b",\"value\":{\"stringValue\":");
            push_str(out, v);
        }
        AttrValue::Int(i) => {
            out.extend_from_slice(format!(",\"value\":{{\"intValue\":\"{i}\"").as_bytes());
        }
    }
    out.extend_from_slice(b"}}");
}

fn nanos(t: std::time::SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// One `ExportTraceServiceRequest` in the OTLP JSON mapping, written straight into the body
/// (no intermediate JSON tree: this runs for every batch of spans).
pub fn encode(service_name: &str, resource: &[(String, String)], spans: &[Span]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(256 + spans.len() * 640);
    out.extend_from_slice(b"{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    push_attr(
        &mut out,
        "service.name",
        &AttrValue::Str(service_name.to_string()),
    );
    for (k, v) in resource {
        out.push(b',');
        push_attr(&mut out, k, &AttrValue::Str(v.clone()));
    }
    out.extend_from_slice(b"]},\"scopeSpans\":[{\"scope\":{\"name\":\"switchboard\",\"version\":");
    push_str(&mut out, env!("CARGO_PKG_VERSION"));
    out.extend_from_slice(b"},\"spans\":[");
    for (n, s) in spans.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let _ = write!(
            out,
            r#"{{"traceId":"{}","spanId":"{}","#,
            hex(&s.trace_id),
            hex(&s.span_id)
        );
        if let Some(p) = s.parent_span_id {
            let _ = write!(out, r#""parentSpanId":"{}","#, hex(&p));
        }
        if let Some(ts) = &s.tracestate {
            out.extend_from_slice(b"\"traceState\":");
            push_str(&mut out, ts);
            out.push(b',');
        }
        out.extend_from_slice(b"\"name\":");
        push_str(&mut out, &s.name);
        let _ = write!(
            out,
            r#","kind":{},"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":["#,
            s.kind as u8,
            nanos(s.start),
            nanos(s.end)
        );
        for (i, (k, v)) in s.attributes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_attr(&mut out, k, v);
        }
        out.extend_from_slice(b"],\"status\":{");
        if let Some(m) = &s.error {
            // STATUS_CODE_ERROR = 2.
            out.extend_from_slice(b"\"code\":2,\"message\":");
            push_str(&mut out, m);
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}]}]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use switchboard_hub::trace::SpanKind;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_standard_variables_configure_the_exporter() {
        assert_eq!(OtlpConfig::from_env(None, env(&[])), None);
        let c = OtlpConfig::from_env(
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x=1"),
                ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod"),
            ]),
        )
        .unwrap();
        assert_eq!(c.url, "http://c:4318/v1/traces");
        assert_eq!(c.service_name, "switchboard");
        assert_eq!(
            c.headers,
            vec![("api-key".into(), "a b".into()), ("x".into(), "1".into())]
        );
        assert_eq!(c.resource.len(), 1);
        let c = OtlpConfig::from_env(
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
                ("OTEL_SERVICE_NAME", "hub-a"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.url.as_str(), c.service_name.as_str()),
            ("http://t:1/custom", "hub-a")
        );
        let c = OtlpConfig::from_env(Some("http://flag:4318"), env(&[])).unwrap();
        assert_eq!(c.url, "http://flag:4318/v1/traces");
        assert_eq!(
            OtlpConfig::from_env(
                Some("http://flag:4318"),
                env(&[("OTEL_TRACES_EXPORTER", "none")])
            ),
            None
        );
    }

    #[test]
    fn spans_encode_in_the_otlp_json_mapping() {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let span = Span {
            trace_id: [0xab; 16],
            span_id: [1, 2, 3, 4, 5, 6, 7, 8],
            parent_span_id: Some([9; 8]),
            tracestate: Some("a=b".into()),
            name: "tools/call echo".into(),
            kind: SpanKind::Server,
            start,
            end: start + Duration::from_millis(2),
            attributes: vec![
                ("mcp.method.name", "tools/call".into()),
                ("server.port", AttrValue::Int(4318)),
            ],
            error: Some("boom".into()),
        };
        let v: serde_json::Value = serde_json::from_slice(&encode("svc", &[], &[span])).unwrap();
        let rs = &v["resourceSpans"][0];
        assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
        assert_eq!(
            rs["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
        let s = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "abababababababababababababababab");
        assert_eq!(s["spanId"], "0102030405060708");
        assert_eq!(s["parentSpanId"], "0909090909090909");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1700000000123456789");
        assert_eq!(s["endTimeUnixNano"], "1700000000125456789");
        assert_eq!(s["traceState"], "a=b");
        assert_eq!(s["attributes"][0]["value"]["stringValue"], "tools/call");
        assert_eq!(s["attributes"][1]["value"]["intValue"], "4318");
        assert_eq!(
            s["status"],
            serde_json::json!({"code": 2, "message": "boom"})
        );
        // Two spans, one without parent, error or tracestate, and resource attributes.
        let plain = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            tracestate: None,
            name: "tools/list \"quoted\"".into(),
            kind: SpanKind::Client,
            start,
            end: start,
            attributes: vec![],
            error: None,
        };
        let res = [("deployment.environment".to_string(), "prod".to_string())];
        let body = encode("svc", &res, &[plain.clone(), plain]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let spans = &v["resourceSpans"][0]["scopeSpans"][0]["spans"];
        assert_eq!(spans.as_array().unwrap().len(), 2);
        assert_eq!(spans[1]["name"], "tools/list \"quoted\"");
        assert_eq!(spans[1]["status"], serde_json::json!({}));
        assert!(spans[1].get("parentSpanId").is_none());
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][1]["value"]["stringValue"],
            "prod"
        );
    }
}
