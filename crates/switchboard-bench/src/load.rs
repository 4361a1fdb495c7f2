//! The closed-loop load generator and its statistics.
//!
//! Each virtual client owns one connection and one session and sends its next request as soon
//! as the previous one is answered. Clients are set up first (connect + initialize), then all
//! start together: a warm-up whose requests are not counted, then the measured window. Only
//! requests that complete inside the window count; latencies are kept exactly (a `Vec<u32>` of
//! microseconds) and sorted once at the end.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{ClientError, Conn, Endpoint, Session};

/// What every virtual client does in a loop.
#[derive(Debug, Clone)]
pub enum Work {
    /// One request: `method` with raw JSON `params`. `min_len` is the smallest acceptable
    /// response message, to catch truncated results.
    Request {
        method: &'static str,
        params: String,
        min_len: usize,
    },
    /// A whole new session per iteration: initialize + initialized + DELETE.
    Connect,
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where to send.
    pub endpoint: Endpoint,
    /// Virtual clients (connections).
    pub concurrency: usize,
    /// Uncounted time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// What to send.
    pub work: Work,
}

/// The outcome of one run (or the median of several).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    /// Operations completed successfully inside the window.
    pub requests: u64,
    /// Failed operations (setup failures included).
    pub errors: u64,
    /// Length of the window, seconds.
    pub seconds: f64,
    /// `requests / seconds`.
    pub throughput: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Slowest operation, µs.
    pub max_us: f64,
    /// The first error seen, for the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// Nearest-rank percentile of a sorted slice.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of some values (mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl RunStats {
    /// Statistics from raw latencies.
    pub fn from_latencies(
        mut lat: Vec<u32>,
        errors: u64,
        seconds: f64,
        first_error: Option<String>,
    ) -> Self {
        lat.sort_unstable();
        RunStats {
            requests: lat.len() as u64,
            errors,
            seconds,
            throughput: if seconds > 0.0 {
                lat.len() as f64 / seconds
            } else {
                0.0
            },
            p50_us: percentile(&lat, 50.0),
            p99_us: percentile(&lat, 99.0),
            max_us: lat.last().copied().map(f64::from).unwrap_or(0.0),
            first_error,
        }
    }

    /// Per-metric medians across rounds; counts are summed.
    pub fn median_of(rounds: &[RunStats]) -> RunStats {
        let pick = |f: fn(&RunStats) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        RunStats {
            requests: rounds.iter().map(|r| r.requests).sum(),
            errors: rounds.iter().map(|r| r.errors).sum(),
            seconds: rounds.iter().map(|r| r.seconds).sum(),
            throughput: pick(|r| r.throughput),
            p50_us: pick(|r| r.p50_us),
            p99_us: pick(|r| r.p99_us),
            max_us: pick(|r| r.max_us),
            first_error: rounds.iter().find_map(|r| r.first_error.clone()),
        }
    }
}

/// What one virtual client brings back.
#[derive(Default)]
struct ClientResult {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl ClientResult {
    fn error(&mut self, e: &ClientError) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// Longest any one operation may take before it counts as an error (a hung server must not
/// hang the benchmark).
const OP_TIMEOUT: Duration = Duration::from_secs(30);

fn timed_out() -> ClientError {
    ClientError::Io(format!("no answer within {OP_TIMEOUT:?}"))
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Runs one closed-loop load and returns its statistics.
pub async fn run(spec: &LoadSpec) -> RunStats {
    // Set-up: every client connects (and for request work, initializes) before the clock starts.
    let mut setups = Vec::with_capacity(spec.concurrency);
    for _ in 0..spec.concurrency {
        let ep = spec.endpoint.clone();
        let connect_only = matches!(spec.work, Work::Connect);
        setups.push(tokio::spawn(async move {
            let conn = Conn::new(ep);
            if connect_only {
                Ok(Client::Bare(conn))
            } else {
                Session::open(conn)
                    .await
                    .map(Client::Session)
                    .map_err(|(_, e)| e)
            }
        }));
    }
    let mut clients = Vec::with_capacity(spec.concurrency);
    let mut setup_errors = ClientResult::default();
    for s in setups {
        match s.await {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(e)) => setup_errors.error(&e),
            Err(e) => setup_errors.error(&ClientError::Protocol(format!("client task: {e}"))),
        }
    }
    let start = Instant::now() + Duration::from_millis(1);
    let window_start = start + spec.warmup;
    let end = window_start + spec.duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let work = spec.work.clone();
        tasks.push(tokio::spawn(async move {
            client.run(work, window_start, end).await
        }));
    }
    let mut all = Vec::new();
    let mut errors = setup_errors.errors;
    let mut first_error = setup_errors.first_error;
    for t in tasks {
        match t.await {
            Ok(r) => {
                if all.is_empty() {
                    all = r.latencies;
                } else {
                    all.extend_from_slice(&r.latencies);
                }
                errors += r.errors;
                if first_error.is_none() {
                    first_error = r.first_error;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("client task: {e}"));
            }
        }
    }
    RunStats::from_latencies(all, errors, spec.duration.as_secs_f64(), first_error)
}

enum Client {
    Bare(Conn),
    Session(Session),
}

impl Client {
    async fn run(self, work: Work, window_start: Instant, end: Instant) -> ClientResult {
        let mut out = ClientResult {
            latencies: Vec::with_capacity(4096),
            ..Default::default()
        };
        match (self, work) {
            (
                Client::Session(mut s),
                Work::Request {
                    method,
                    params,
                    min_len,
                },
            ) => {
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let r = match tokio::time::timeout(OP_TIMEOUT, s.call(method, &params)).await {
                        Ok(r) => r,
                        Err(_) => {
                            s.conn.reset();
                            Err(timed_out())
                        }
                    };
                    let counted = t0 >= window_start;
                    match r {
                        Ok(a) if a.len < min_len => {
                            if counted {
                                out.error(&ClientError::Protocol(format!(
                                    "response of {} bytes, expected at least {min_len}",
                                    a.len
                                )));
                            }
                        }
                        Ok(a) => {
                            if counted && a.at <= end {
                                out.latencies.push(micros(a.at - t0));
                            }
                        }
                        Err(e) => {
                            if Instant::now() <= end {
                                out.error(&e);
                            }
                        }
                    }
                }
                // Not timed: leave no session behind.
                let (_, r) = s.close().await;
                if let Err(e) = r {
                    out.error(&e);
                }
            }
            (Client::Bare(mut conn), Work::Connect) => {
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let ep = conn.endpoint_clone();
                    let op = async move {
                        match Session::open(conn).await {
                            Ok(s) => s.close().await,
                            Err((c, e)) => (c, Err(e)),
                        }
                    };
                    let r = match tokio::time::timeout(OP_TIMEOUT, op).await {
                        Ok((c, r)) => {
                            conn = c;
                            r
                        }
                        Err(_) => {
                            conn = Conn::new(ep);
                            Err(timed_out())
                        }
                    };
                    let done = Instant::now();
                    match r {
                        Ok(()) => {
                            if t0 >= window_start && done <= end {
                                out.latencies.push(micros(done - t0));
                            }
                        }
                        Err(e) => {
                            if done <= end {
                                out.error(&e);
                            }
                        }
                    }
                }
            }
            _ => out.error(&ClientError::Protocol(
                "client and work kinds do not match".into(),
            )),
        }
        out
    }
}

/// Opens `count` initialized sessions over `connections` connections and keeps them open
/// (returns their ids). Each open is timed; the stats describe the opens.
pub async fn open_idle_sessions(
    ep: &Endpoint,
    count: usize,
    connections: usize,
) -> (RunStats, Vec<http::HeaderValue>) {
    let connections = connections.clamp(1, count.max(1));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..connections {
        let share = count / connections + usize::from(k < count % connections);
        let ep = ep.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(ep);
            let mut res = ClientResult::default();
            let mut ids = Vec::with_capacity(share);
            for _ in 0..share {
                let t0 = Instant::now();
                match Session::open(conn).await {
                    Ok(s) => {
                        res.latencies.push(micros(t0.elapsed()));
                        if let Some(id) = s.id {
                            ids.push(id);
                        }
                        conn = s.conn;
                    }
                    Err((c, e)) => {
                        res.error(&e);
                        conn = c;
                    }
                }
            }
            (res, ids)
        }));
    }
    let mut lat = Vec::with_capacity(count);
    let mut ids = Vec::with_capacity(count);
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok((r, i)) => {
                lat.extend(r.latencies);
                ids.extend(i);
                errors += r.errors;
                if first_error.is_none() {
                    first_error = r.first_error;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("client task: {e}"));
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    (
        RunStats::from_latencies(lat, errors, secs, first_error),
        ids,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn medians_across_rounds() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let a = RunStats::from_latencies(vec![10, 20, 30], 0, 1.0, None);
        let b = RunStats::from_latencies(vec![40, 50], 1, 1.0, Some("x".into()));
        let c = RunStats::from_latencies(vec![5], 0, 1.0, None);
        let m = RunStats::median_of(&[a, b, c]);
        assert_eq!(m.requests, 6);
        assert_eq!(m.errors, 1);
        assert_eq!(m.throughput, 2.0);
        assert_eq!(m.first_error.as_deref(), Some("x"));
    }
}
