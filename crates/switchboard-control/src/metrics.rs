//! Process metrics in the Prometheus text format (0.0.4), named after the OpenTelemetry MCP
//! semantic conventions (`mcp_server_operation_duration_seconds`, ...).
//!
//! Recording is lock-free on the hot path: a histogram is a row of atomic counters, and a
//! labelled family is a map from the rendered label text to its series behind a read-mostly
//! lock (a write lock only when a new series appears). The label text is built in a
//! thread-local buffer, so an observation of an existing series allocates nothing. Each family
//! holds at most [`SERIES_CAP`] series; observations beyond go to one `overflow="true"` series.
//! Gauges that describe state (sessions, upstreams, requests in flight) are read from the hubs
//! when scraped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

/// Most series one family holds.
pub const SERIES_CAP: usize = 2000;

/// Bucket bounds in seconds: the OpenTelemetry MCP recommendation, with sub-10 ms buckets for
/// what the hub answers itself.
pub const BUCKETS: [f64; 18] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// [`BUCKETS`] in nanoseconds (an observation compares integers).
const BUCKET_NS: [u64; BUCKETS.len()] = {
    let mut ns = [0u64; BUCKETS.len()];
    let mut i = 0;
    while i < BUCKETS.len() {
        ns[i] = (BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    ns
};

/// A histogram of durations.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKET_NS.partition_point(|b| *b < ns);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// A counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Series of one metric by label set.
pub struct Family<V> {
    name: &'static str,
    help: &'static str,
    series: RwLock<HashMap<String, Arc<V>>>,
}

thread_local! {
    static LABELS: RefCell<String> = RefCell::new(String::with_capacity(256));
}

fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl<V: Default> Family<V> {
    fn new(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            series: RwLock::new(HashMap::new()),
        }
    }

    /// Runs `f` on the series for `labels` (pairs of name and value; empty values are left
    /// out), creating it if the family has room.
    pub fn with<R>(&self, labels: &[(&str, &str)], f: impl FnOnce(&V) -> R) -> R {
        f(&self.series(labels))
    }

    /// The series for `labels` (see [`Self::with`]), to keep as a handle.
    pub fn series(&self, labels: &[(&str, &str)]) -> Arc<V> {
        LABELS.with(|buf| {
            let mut key = buf.borrow_mut();
            key.clear();
            for (name, value) in labels.iter().filter(|(_, v)| !v.is_empty()) {
                if !key.is_empty() {
                    key.push(',');
                }
                key.push_str(name);
                key.push_str("=\"");
                escape_into(&mut key, value);
                key.push('"');
            }
            if let Some(v) = self.series.read().expect("metrics lock").get(key.as_str()) {
                return v.clone();
            }
            let mut series = self.series.write().expect("metrics lock");
            let key = if series.len() >= SERIES_CAP && !series.contains_key(key.as_str()) {
                "overflow=\"true\"".to_string()
            } else {
                key.clone()
            };
            series.entry(key).or_default().clone()
        })
    }

    fn snapshot(&self) -> Vec<(String, Arc<V>)> {
        let mut v: Vec<_> = self
            .series
            .read()
            .expect("metrics lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.read().expect("metrics lock").len()
    }

    /// True when no series exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn labelled(name: &str, suffix: &str, key: &str, extra: Option<(&str, &str)>) -> String {
    let mut s = format!("{name}{suffix}");
    if key.is_empty() && extra.is_none() {
        return s;
    }
    s.push('{');
    s.push_str(key);
    if let Some((n, v)) = extra {
        if !key.is_empty() {
            s.push(',');
        }
        let _ = write!(s, "{n}=\"{v}\"");
    }
    s.push('}');
    s
}

impl Family<Histogram> {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} histogram", self.name);
        for (key, h) in self.snapshot() {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Ordering::Relaxed);
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{} {cumulative}",
                    labelled(self.name, "_bucket", &key, Some(("le", &le)))
                );
            }
            cumulative += h.counts[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{} {cumulative}",
                labelled(self.name, "_bucket", &key, Some(("le", "+Inf")))
            );
            let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{} {sum}", labelled(self.name, "_sum", &key, None));
            let _ = writeln!(
                out,
                "{} {cumulative}",
                labelled(self.name, "_count", &key, None)
            );
        }
    }
}

impl Family<Counter> {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        for (key, c) in self.snapshot() {
            let _ = writeln!(out, "{} {}", labelled(self.name, "", &key, None), c.get());
        }
    }
}

/// One gauge sample taken at scrape time.
pub struct GaugeSample {
    /// Label pairs.
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: f64,
}

/// Renders a gauge (or a counter read from elsewhere) from samples taken at scrape time.
pub fn render_samples(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[GaugeSample],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for s in samples {
        let mut key = String::new();
        for (n, v) in &s.labels {
            if !key.is_empty() {
                key.push(',');
            }
            key.push_str(n);
            key.push_str("=\"");
            escape_into(&mut key, v);
            key.push('"');
        }
        let _ = writeln!(out, "{} {}", labelled(name, "", &key, None), s.value);
    }
}

/// Every metric the process records.
pub struct Metrics {
    /// What clients asked of the hub.
    pub server_operations: Family<Histogram>,
    /// What the hub asked of upstreams.
    pub client_operations: Family<Histogram>,
    /// How long client sessions lasted.
    pub session_durations: Family<Histogram>,
    /// Store operations (activity-log writes, credential checks).
    pub store_operations: Family<Histogram>,
    /// Activity rows written.
    pub activity_written: Family<Counter>,
    /// Activity rows dropped (queue full or store failure).
    pub activity_dropped: Family<Counter>,
    /// Failed logins and refused credentials.
    pub login_failures: Family<Counter>,
    /// Server URLs refused by the SSRF policy.
    pub ssrf_refusals: Family<Counter>,
    /// Requests refused by a rate limit.
    pub rate_limited: Family<Counter>,
    /// Tool searches.
    pub tool_searches: Family<Histogram>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    server_operations: Family::new(
        "mcp_server_operation_duration_seconds",
        "MCP requests clients sent to the hub, by method, tool, server, tenant and error type.",
    ),
    client_operations: Family::new(
        "mcp_client_operation_duration_seconds",
        "MCP requests the hub sent to upstream servers.",
    ),
    session_durations: Family::new(
        "mcp_server_session_duration_seconds",
        "Lifetime of client sessions, by tenant.",
    ),
    store_operations: Family::new(
        "switchboard_store_operation_duration_seconds",
        "Store operations, by operation.",
    ),
    activity_written: Family::new(
        "switchboard_activity_rows_written_total",
        "Activity-log rows written to the store.",
    ),
    activity_dropped: Family::new(
        "switchboard_activity_rows_dropped_total",
        "Activity-log rows dropped, by reason (queue_full, store_error).",
    ),
    login_failures: Family::new(
        "switchboard_login_failures_total",
        "Failed logins and refused credentials.",
    ),
    ssrf_refusals: Family::new(
        "switchboard_ssrf_refusals_total",
        "Server URLs refused by the SSRF policy.",
    ),
    rate_limited: Family::new(
        "switchboard_rate_limited_total",
        "Requests refused by a rate limit, by scope (key, tenant).",
    ),
    tool_searches: Family::new(
        "switchboard_tool_search_duration_seconds",
        "Tool searches (search_tools, /api/v1/tools/search), by tenant and mode (lexical, or hybrid with the query's embedding).",
    ),
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// The recorded families in the text format.
    pub fn render(&self, out: &mut String) {
        self.server_operations.render(out);
        self.client_operations.render(out);
        self.session_durations.render(out);
        self.store_operations.render(out);
        self.activity_written.render(out);
        self.activity_dropped.render(out);
        self.login_failures.render(out);
        self.ssrf_refusals.render(out);
        self.rate_limited.render(out);
        self.tool_searches.render(out);
    }

    /// Times one store operation.
    pub fn store_op(&self, operation: &str, d: Duration) {
        self.store_operations
            .with(&[("operation", operation)], |h| h.observe(d));
    }
}

/// The labels of one MCP operation, borrowed from the call (empty values are left out).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpLabels<'a> {
    /// `mcp_method_name` (already passed through [`method_label`]).
    pub method: &'a str,
    /// `gen_ai_tool_name`.
    pub tool: &'a str,
    /// `server`.
    pub server: &'a str,
    /// `tenant`.
    pub tenant: &'a str,
    /// `error_type`.
    pub error_type: &'a str,
    /// `mcp_protocol_version`.
    pub protocol_version: &'a str,
}

/// Which operation histogram: what clients asked of the hub, or what it asked of upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `mcp_server_operation_duration_seconds`.
    Server,
    /// `mcp_client_operation_duration_seconds`.
    Client,
}

/// Most handles one thread keeps before it forgets them all.
const HANDLE_CACHE_CAP: usize = 1024;

/// FxHash (as in rustc): a few instructions per word; the keys are short and bounded.
#[derive(Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Handles = HashMap<Box<[u8]>, Arc<Histogram>, std::hash::BuildHasherDefault<FxHasher>>;

thread_local! {
    /// Per thread: the histogram of each operation label set seen, by the raw label values
    /// (length-prefixed), and the buffer the key is built in.
    static HANDLES: RefCell<(Vec<u8>, Handles)> = RefCell::new((Vec::with_capacity(128), Handles::default()));
}

impl Metrics {
    /// Records one operation. The series handle is looked up in a per-thread cache keyed by
    /// the raw label values: no label text is built, no lock taken and nothing allocated once
    /// a label set has been seen on the thread.
    pub fn observe_operation(&self, side: Side, labels: &OpLabels<'_>, d: Duration) {
        HANDLES.with(|cell| {
            let (key, handles) = &mut *cell.borrow_mut();
            key.clear();
            key.push(side as u8);
            for part in [
                labels.method,
                labels.tool,
                labels.server,
                labels.tenant,
                labels.error_type,
                labels.protocol_version,
            ] {
                key.extend_from_slice(&(part.len() as u32).to_le_bytes());
                key.extend_from_slice(part.as_bytes());
            }
            if let Some(h) = handles.get(key.as_slice()) {
                h.observe(d);
                return;
            }
            let family = match side {
                Side::Server => &self.server_operations,
                Side::Client => &self.client_operations,
            };
            let h = family.series(&[
                ("mcp_method_name", labels.method),
                ("gen_ai_tool_name", labels.tool),
                ("server", labels.server),
                ("tenant", labels.tenant),
                ("error_type", labels.error_type),
                ("mcp_protocol_version", labels.protocol_version),
            ]);
            h.observe(d);
            if handles.len() >= HANDLE_CACHE_CAP {
                handles.clear();
            }
            handles.insert(key.as_slice().into(), h);
        });
    }
}

/// Methods used as label values as they are; anything else is `other`.
pub fn method_label(method: &str) -> &str {
    match method {
        "initialize"
        | "ping"
        | "tools/list"
        | "tools/call"
        | "prompts/list"
        | "prompts/get"
        | "resources/list"
        | "resources/templates/list"
        | "resources/read"
        | "resources/subscribe"
        | "resources/unsubscribe"
        | "completion/complete"
        | "logging/setLevel"
        | "server/discover"
        | "subscriptions/listen"
        | "tasks/get"
        | "tasks/update"
        | "tasks/cancel" => method,
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_put_each_observation_in_its_bucket() {
        let f: Family<Histogram> = Family::new("t_seconds", "test");
        f.with(&[("a", "x")], |h| h.observe(Duration::from_micros(50)));
        f.with(&[("a", "x")], |h| h.observe(Duration::from_millis(3)));
        f.with(&[("a", "x"), ("b", "")], |h| {
            h.observe(Duration::from_secs(1000))
        });
        let mut out = String::new();
        f.render(&mut out);
        assert!(
            out.contains("t_seconds_bucket{a=\"x\",le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{a=\"x\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{a=\"x\",le=\"300\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{a=\"x\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("t_seconds_count{a=\"x\"} 3\n"), "{out}");
    }

    #[test]
    fn cached_handles_record_into_the_labelled_series() {
        let labels = OpLabels {
            method: "tools/call",
            tool: "echo",
            server: "s",
            tenant: "handle-test",
            error_type: "",
            protocol_version: "2025-11-25",
        };
        for _ in 0..3 {
            metrics().observe_operation(Side::Server, &labels, Duration::from_micros(50));
        }
        // Same values, other side; and a label set differing in one value only.
        metrics().observe_operation(Side::Client, &labels, Duration::from_micros(50));
        let other = OpLabels {
            error_type: "tool_error",
            ..labels
        };
        metrics().observe_operation(Side::Server, &other, Duration::from_millis(3));
        let mut out = String::new();
        metrics().render(&mut out);
        let series = "{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"echo\",server=\"s\",tenant=\"handle-test\",mcp_protocol_version=\"2025-11-25\"}";
        assert!(
            out.contains(&format!(
                "mcp_server_operation_duration_seconds_count{series} 3\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "mcp_client_operation_duration_seconds_count{series} 1\n"
            )),
            "{out}"
        );
        assert!(
            out.contains("mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"echo\",server=\"s\",tenant=\"handle-test\",error_type=\"tool_error\",mcp_protocol_version=\"2025-11-25\"} 1\n"),
            "{out}"
        );
    }

    #[test]
    fn families_stop_growing_at_the_cap() {
        let f: Family<Counter> = Family::new("c_total", "test");
        for i in 0..SERIES_CAP + 10 {
            f.with(&[("n", &i.to_string())], Counter::inc);
        }
        assert_eq!(f.len(), SERIES_CAP + 1);
        let mut out = String::new();
        f.render(&mut out);
        assert!(out.contains("c_total{overflow=\"true\"} 10\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        let f: Family<Counter> = Family::new("e_total", "test");
        f.with(&[("n", "a\"b\\c\nd")], Counter::inc);
        let mut out = String::new();
        f.render(&mut out);
        assert!(out.contains("e_total{n=\"a\\\"b\\\\c\\nd\"} 1"), "{out}");
    }
}
