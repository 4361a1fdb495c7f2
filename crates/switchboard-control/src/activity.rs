//! The hubs' call observer: metrics inline (through cached series handles), and the activity
//! log through a bounded queue to a batching writer that wakes once per [`FLUSH_EVERY`] and
//! writes what gathered in one transaction. A full queue drops the row, counts it and says so
//! once in the log; a call never waits for the log. Written rows are broadcast to live readers.
//! Payloads (with `log_payloads`) are truncated and redacted on the writer, not on the call.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use switchboard_hub::{CallObserver, CallRecord, UpstreamCall};
use switchboard_store::{ActivityRow, Store};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::metrics::{OpLabels, Side, method_label, metrics};

/// Rows the queue holds before it drops.
pub const QUEUE_ROWS: usize = 65_536;
/// Longest a row waits in the writer before its batch is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Longest stored payload (bytes, each of request and reply).
pub const PAYLOAD_CAP: usize = 4096;
/// Keys redacted by default (case-insensitive substring match on object keys).
pub const DEFAULT_REDACT_KEYS: &str = "token,password,secret,api_key,authorization";

/// What the observer records.
#[derive(Debug, Clone)]
pub struct ObserveConfig {
    /// Record metrics.
    pub metrics: bool,
    /// Keep the activity log.
    pub activity: bool,
    /// Store request and reply payloads (truncated, redacted).
    pub log_payloads: bool,
    /// Keys whose values are redacted from payloads.
    pub redact_keys: Vec<String>,
    /// Rows older than this are deleted (`None`: kept).
    pub retention: Option<Duration>,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            metrics: true,
            activity: true,
            log_payloads: false,
            redact_keys: DEFAULT_REDACT_KEYS.split(',').map(str::to_string).collect(),
            retention: Some(Duration::from_secs(7 * 86_400)),
        }
    }
}

/// The activity log's queue and its live feed.
pub struct ActivityLog {
    queue: mpsc::Sender<CallRecord>,
    live: broadcast::Sender<Arc<ActivityRow>>,
    /// Set once a full queue has been reported in the log.
    warned: std::sync::atomic::AtomicBool,
}

impl ActivityLog {
    /// Starts the writer (and the retention sweeper) on `store`; both stop with `shutdown`
    /// after writing what is queued.
    pub fn start(
        store: Arc<dyn Store>,
        config: &ObserveConfig,
        shutdown: CancellationToken,
    ) -> Arc<ActivityLog> {
        let (queue, rx) = mpsc::channel(QUEUE_ROWS);
        let (live, _) = broadcast::channel(4096);
        let log = Arc::new(ActivityLog {
            queue,
            live: live.clone(),
            warned: std::sync::atomic::AtomicBool::new(false),
        });
        let payloads = config
            .log_payloads
            .then(|| Arc::new(Redactor::new(&config.redact_keys)));
        tokio::spawn(write_batches(
            store.clone(),
            rx,
            live,
            payloads,
            shutdown.clone(),
        ));
        if let Some(retention) = config.retention {
            tokio::spawn(sweep(store, retention, shutdown));
        }
        log
    }

    /// Queues a record; drops it when the queue is full (counted in
    /// `switchboard_activity_rows_dropped_total{reason="queue_full"}`, and said once in the log).
    pub fn record(&self, record: CallRecord) {
        if self.queue.try_send(record).is_err() {
            metrics()
                .activity_dropped
                .with(&[("reason", "queue_full")], |c| c.inc());
            if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    message = "The activity log cannot keep up: rows are dropped while its queue is full (counted in switchboard_activity_rows_dropped_total; said once).",
                    queue = QUEUE_ROWS
                );
            }
        }
    }

    /// Rows as they are written, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ActivityRow>> {
        self.live.subscribe()
    }
}

/// The observer every tenant's hub reports to.
pub struct HubObserver {
    metrics: bool,
    payloads: bool,
    activity: Option<Arc<ActivityLog>>,
}

impl HubObserver {
    /// An observer recording what `config` asks, into `activity` (when kept).
    pub fn new(config: &ObserveConfig, activity: Option<Arc<ActivityLog>>) -> Arc<HubObserver> {
        Arc::new(HubObserver {
            metrics: config.metrics,
            payloads: config.log_payloads && activity.is_some(),
            activity: activity.filter(|_| config.activity),
        })
    }
}

impl CallObserver for HubObserver {
    fn call(&self, record: CallRecord) {
        if self.metrics {
            let tool = match (record.method.as_str(), record.known_target) {
                ("tools/call", true) => record.target.as_deref().unwrap_or(""),
                ("tools/call", false) => "other",
                _ => "",
            };
            metrics().observe_operation(
                Side::Server,
                &OpLabels {
                    method: method_label(&record.method),
                    tool,
                    server: record.server.as_deref().unwrap_or(""),
                    tenant: &record.tenant,
                    error_type: record.error_type.as_deref().unwrap_or(""),
                    protocol_version: record.protocol_version.as_deref().unwrap_or(""),
                },
                record.duration,
            );
        }
        if let Some(log) = &self.activity
            && record.is_routed_method()
        {
            log.record(record);
        }
    }

    fn tool_search(&self, tenant: &str, mode: &str, duration: Duration) {
        if self.metrics {
            metrics()
                .tool_searches
                .with(&[("tenant", tenant), ("mode", mode)], |h| {
                    h.observe(duration)
                });
        }
    }

    fn upstream_call(&self, call: &UpstreamCall<'_>) {
        if !self.metrics {
            return;
        }
        metrics().observe_operation(
            Side::Client,
            &OpLabels {
                method: method_label(call.method),
                tool: call.tool.unwrap_or(""),
                server: call.server,
                tenant: call.tenant,
                error_type: call.error_type.unwrap_or(""),
                protocol_version: call.protocol_version.unwrap_or(""),
            },
            call.duration,
        );
    }

    fn session_closed(&self, tenant: &str, lifetime: Duration) {
        if self.metrics {
            metrics()
                .session_durations
                .with(&[("tenant", tenant)], |h| h.observe(lifetime));
        }
    }

    fn wants_payloads(&self) -> bool {
        self.payloads
    }
}

fn row_of(r: CallRecord, redactor: Option<&Redactor>) -> ActivityRow {
    let (request, response) = match (r.payload, redactor) {
        (Some((req, resp)), Some(red)) => (Some(red.apply(&req)), Some(red.apply(&resp))),
        _ => (None, None),
    };
    ActivityRow {
        id: 0,
        at: r
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        tenant: r.tenant.to_string(),
        principal: r.principal.map(|p| p.to_string()),
        endpoint: r.endpoint,
        session: Some(r.session).filter(|s| !s.is_empty()),
        server: r.server,
        method: r.method,
        target: r.target,
        status: if r.error_type.is_some() {
            "error"
        } else {
            "ok"
        }
        .into(),
        error_type: r.error_type,
        error: r.error_message,
        duration_us: r.duration.as_micros() as i64,
        bytes_in: r.bytes_in as i64,
        bytes_out: r.bytes_out as i64,
        trace_id: r.trace_id,
        protocol: r.protocol_version,
        request,
        response,
    }
}

/// Most rows one flush writes (in one transaction).
const FLUSH_ROWS: usize = 4096;

async fn write_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<CallRecord>,
    live: broadcast::Sender<Arc<ActivityRow>>,
    redactor: Option<Arc<Redactor>>,
    shutdown: CancellationToken,
) {
    let mut records = Vec::with_capacity(FLUSH_ROWS);
    loop {
        records.clear();
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            // Shutting down: write what is queued, then stop.
            rx.close();
            while rx.recv_many(&mut records, FLUSH_ROWS).await > 0 {
                flush(&store, &live, &mut records, redactor.as_deref()).await;
            }
            return;
        };
        records.push(first);
        // Let the batch gather without polling the queue: a sender then finds no waker to
        // wake, so a call costs the queue push alone, and the writer wakes once per batch.
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => {}
            _ = shutdown.cancelled() => {}
        }
        loop {
            let queued = rx.len().min(FLUSH_ROWS - records.len());
            if queued > 0 {
                rx.recv_many(&mut records, queued).await;
            }
            flush(&store, &live, &mut records, redactor.as_deref()).await;
            if rx.is_empty() {
                break;
            }
        }
    }
}

async fn flush(
    store: &Arc<dyn Store>,
    live: &broadcast::Sender<Arc<ActivityRow>>,
    records: &mut Vec<CallRecord>,
    redactor: Option<&Redactor>,
) {
    let rows: Arc<[ActivityRow]> = records.drain(..).map(|r| row_of(r, redactor)).collect();
    let started = std::time::Instant::now();
    let result = store.insert_activity(rows.clone()).await;
    metrics().store_op("activity_insert", started.elapsed());
    match result {
        Ok(()) => {
            metrics()
                .activity_written
                .with(&[], |c| c.add(rows.len() as u64));
            if live.receiver_count() > 0 {
                for row in rows.iter() {
                    let _ = live.send(Arc::new(row.clone()));
                }
            }
        }
        Err(e) => {
            metrics()
                .activity_dropped
                .with(&[("reason", "store_error")], |c| c.add(rows.len() as u64));
            tracing::warn!(message = "Cannot write activity-log rows; they are dropped.", rows = rows.len(), error = %e);
        }
    }
}

async fn sweep(store: Arc<dyn Store>, retention: Duration, shutdown: CancellationToken) {
    let every = (retention / 10).clamp(Duration::from_millis(200), Duration::from_secs(60));
    loop {
        let cutoff = crate::now_ms() - retention.as_millis() as i64;
        match store.delete_activity_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(message = "Activity rows past retention deleted.", rows = n),
            Err(e) => {
                tracing::warn!(message = "Cannot delete old activity-log rows.", error = %e)
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Redacts configured keys from JSON payloads and truncates them.
pub struct Redactor {
    keys: Vec<String>,
}

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

impl Redactor {
    /// Redacts values under keys containing any of `keys` (case-insensitive).
    pub fn new(keys: &[String]) -> Redactor {
        Redactor {
            keys: keys
                .iter()
                .map(|k| k.trim().to_ascii_lowercase())
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    /// `text` redacted (when it is JSON) and cut to [`PAYLOAD_CAP`] bytes.
    pub fn apply(&self, text: &str) -> String {
        let redacted = match serde_json::from_str::<Value>(text) {
            Ok(mut v) => {
                self.walk(&mut v);
                v.to_string()
            }
            Err(_) => text.to_string(),
        };
        truncate(redacted, PAYLOAD_CAP)
    }

    fn walk(&self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let lower = k.to_ascii_lowercase();
                    if self.keys.iter().any(|s| lower.contains(s.as_str())) {
                        *v = Value::String(REDACTED.into());
                    } else {
                        self.walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.walk(i)),
            _ => {}
        }
    }
}

fn truncate(mut s: String, cap: usize) -> String {
    if s.len() > cap {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The scrape-time part of `/metrics`: per tenant, sessions open and requests in flight; per
/// server, its state (one series per state, 1 for the current one), restarts and published
/// tools; stdio processes per tenant.
pub fn render_state(out: &mut String, tenants: &crate::Tenants) {
    use crate::metrics::{GaugeSample, render_samples};
    let mut sessions = Vec::new();
    let mut in_flight = Vec::new();
    let mut state = Vec::new();
    let mut restarts = Vec::new();
    let mut refreshes = Vec::new();
    let mut tools = Vec::new();
    let mut stdio = Vec::new();
    for plane in tenants.all() {
        let tenant = plane.config().tenant.clone();
        let hub = plane.hub();
        sessions.push(GaugeSample {
            labels: vec![("tenant", tenant.clone())],
            value: hub.session_count() as f64,
        });
        in_flight.push(GaugeSample {
            labels: vec![("tenant", tenant.clone())],
            value: hub.calls_in_flight() as f64,
        });
        let mut processes = 0;
        for s in hub.servers() {
            processes += usize::from(s.pid.is_some());
            for st in [
                "starting",
                "ready",
                "restarting",
                "failed",
                "stopped",
                "disabled",
            ] {
                state.push(GaugeSample {
                    labels: vec![
                        ("tenant", tenant.clone()),
                        ("server", s.name.clone()),
                        ("state", st.to_string()),
                    ],
                    value: f64::from(u8::from(s.state == st)),
                });
            }
            restarts.push(GaugeSample {
                labels: vec![("tenant", tenant.clone()), ("server", s.name.clone())],
                value: f64::from(s.restarts),
            });
            refreshes.push(GaugeSample {
                labels: vec![("tenant", tenant.clone()), ("server", s.name.clone())],
                value: f64::from(s.list_refreshes),
            });
            tools.push(GaugeSample {
                labels: vec![("tenant", tenant.clone()), ("server", s.name.clone())],
                value: s.tools as f64,
            });
        }
        stdio.push(GaugeSample {
            labels: vec![("tenant", tenant)],
            value: processes as f64,
        });
    }
    render_samples(
        out,
        "mcp_server_sessions_open",
        "gauge",
        "Client sessions open, by tenant.",
        &sessions,
    );
    render_samples(
        out,
        "switchboard_calls_in_flight",
        "gauge",
        "Client requests being answered, by tenant.",
        &in_flight,
    );
    render_samples(
        out,
        "switchboard_upstream_state",
        "gauge",
        "Upstream server state: 1 for the current state.",
        &state,
    );
    render_samples(
        out,
        "switchboard_upstream_restarts_total",
        "counter",
        "Upstream connections lost or failed since start.",
        &restarts,
    );
    render_samples(
        out,
        "switchboard_upstream_list_refreshes_total",
        "counter",
        "Lists fetched again after an upstream announced a change (list_changed).",
        &refreshes,
    );
    render_samples(
        out,
        "switchboard_upstream_tools",
        "gauge",
        "Tools each upstream publishes.",
        &tools,
    );
    render_samples(
        out,
        "switchboard_stdio_processes",
        "gauge",
        "Running stdio server processes, by tenant.",
        &stdio,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_redacted_by_key_and_truncated() {
        let r = Redactor::new(
            &DEFAULT_REDACT_KEYS
                .split(',')
                .map(String::from)
                .collect::<Vec<_>>(),
        );
        let out = r.apply(
            r#"{"name":"x","arguments":{"API_KEY":"k1","nested":[{"password":"p"}],"q":"hello"}}"#,
        );
        assert!(!out.contains("k1") && !out.contains("\"p\""), "{out}");
        assert!(out.contains("hello") && out.contains(REDACTED), "{out}");
        let long = format!("{{\"q\":\"{}\"}}", "x".repeat(10_000));
        assert_eq!(r.apply(&long).len(), PAYLOAD_CAP);
    }
}
