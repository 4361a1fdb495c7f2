//! The activity-log writer alone, on a real store: a sustained stream of call records at a
//! fixed rate is written without drops and without growing memory, and the last hour of a
//! large table is listed quickly. `ACTIVITY_BENCH=1` runs the full-size measurement (10,000
//! calls/s for 10 s, then 1,000,000 rows) and prints the figures; the default run is a small,
//! fast check of the same properties. `ACTIVITY_BENCH_PG=1` uses PostgreSQL
//! (`SWITCHBOARD_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432`) instead of SQLite.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use switchboard_control::activity::{ActivityLog, ObserveConfig};
use switchboard_control::metrics::metrics;
use switchboard_hub::CallRecord;
use switchboard_store::{ActivityQuery, ActivityRow, SecretKey, Store};
use tokio_util::sync::CancellationToken;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn record(i: u64) -> CallRecord {
    CallRecord {
        at: SystemTime::now(),
        tenant: "bench".into(),
        principal: Some("alice".into()),
        endpoint: "all".into(),
        session: "0123456789abcdef0123456789abcdef".into(),
        method: "tools/call".into(),
        server: Some(format!("s{}", i % 10)),
        target: Some(format!("s{}__tool{}", i % 10, i % 7)),
        known_target: true,
        error_type: i.is_multiple_of(50).then(|| "tool_error".into()),
        error_message: i.is_multiple_of(50).then(|| "boom".into()),
        duration: Duration::from_micros(100 + i % 900),
        bytes_in: 120,
        bytes_out: 300,
        trace_id: None,
        protocol_version: Some("2025-11-25".into()),
        payload: None,
    }
}

struct Db {
    url: String,
    drop_pg: Option<String>,
    _dir: Option<std::path::PathBuf>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(name) = &self.drop_pg {
            psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        if let Some(d) = &self._dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn pg_base() -> String {
    std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .arg(format!("{}/postgres", pg_base()))
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn database() -> Db {
    let tag = switchboard_control::identity::random_hex(6);
    if std::env::var("ACTIVITY_BENCH_PG").is_ok() {
        let name = format!("switchboard_actbench_{tag}");
        psql(&format!("CREATE DATABASE {name}"));
        return Db {
            url: format!("{}/{name}", pg_base()),
            drop_pg: Some(name),
            _dir: None,
        };
    }
    let dir = std::env::temp_dir().join(format!("sb-actbench-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    Db {
        url: format!("sqlite://{}", dir.join("store.db").display()),
        drop_pg: None,
        _dir: Some(dir),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_keeps_up_with_a_sustained_call_rate_and_the_last_hour_lists_fast() {
    let full = std::env::var("ACTIVITY_BENCH").is_ok();
    let (rate, secs, table_rows) = if full {
        (10_000u64, 10u64, 1_000_000usize)
    } else {
        (2_000, 2, 20_000)
    };
    let db = database();
    let store: Arc<dyn Store> = switchboard_store::open(&db.url, SecretKey::from_bytes([7; 32]))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let log = ActivityLog::start(store.clone(), &ObserveConfig::default(), shutdown.clone());
    let dropped = || {
        let mut out = String::new();
        metrics().render(&mut out);
        out.lines()
            .filter(|l| l.starts_with("switchboard_activity_rows_dropped_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    let dropped_before = dropped();
    let written_before = 0;
    let rss_start = rss_kib();
    let mut rss_mid = 0;
    // Ten bursts a... every 10 ms, `rate / 100` records.
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while started.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due.min(rate * secs) {
            log.record(record(sent));
            sent += 1;
        }
        if rss_mid == 0 && started.elapsed() > Duration::from_secs(secs / 2) {
            rss_mid = rss_kib();
        }
    }
    let offered = started.elapsed();
    // Wait for the writer to drain.
    let deadline = Instant::now() + Duration::from_secs(30);
    let count = || {
        let store = store.clone();
        async move {
            let mut n = 0;
            let mut before = None;
            loop {
                let page = store
                    .list_activity(&ActivityQuery {
                        tenant: "bench".into(),
                        before,
                        limit: 1000,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                n += page.len() as u64;
                match page.last() {
                    Some(r) if page.len() == 1000 => before = Some(r.id),
                    _ => return n,
                }
            }
        }
    };
    let written_total = || {
        let mut out = String::new();
        metrics().render(&mut out);
        out.lines()
            .filter(|l| l.starts_with("switchboard_activity_rows_written_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    while Instant::now() < deadline {
        if written_total() - written_before + (dropped() - dropped_before) >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    let rss_end = rss_kib();
    let written = count().await;
    let lost = dropped() - dropped_before;
    println!(
        "writer: offered {sent} rows in {:.1} s ({:.0}/s); all written by {:.1} s ({written} rows); dropped {lost}; RSS start {rss_start}, mid-run {rss_mid}, drained {rss_end} KiB",
        offered.as_secs_f64(),
        sent as f64 / offered.as_secs_f64(),
        drained.as_secs_f64(),
    );
    assert_eq!(lost, 0, "the writer fell behind {rate} rows/s");
    assert_eq!(written, sent);
    assert!(
        drained < offered + Duration::from_secs(2),
        "the writer needed {drained:?} for {offered:?} of calls"
    );
    shutdown.cancel();

    // Fill the table to `table_rows` (spread over two hours) and time the dashboard's reads.
    let now = switchboard_control::now_ms();
    let mut filled = written as usize;
    let mut batch = Vec::with_capacity(500);
    let fill_start = Instant::now();
    while filled < table_rows {
        batch.clear();
        for i in 0..500.min(table_rows - filled) {
            let n = (filled + i) as i64;
            batch.push(ActivityRow {
                at: now - 7_200_000 + n * 7_200_000 / table_rows as i64,
                tenant: "bench".into(),
                endpoint: "all".into(),
                method: "tools/call".into(),
                server: Some(format!("s{}", n % 10)),
                target: Some(format!("s{}__tool{}", n % 10, n % 7)),
                status: if n % 50 == 0 { "error" } else { "ok" }.into(),
                duration_us: 100 + n % 900,
                ..Default::default()
            });
        }
        filled += batch.len();
        store
            .insert_activity(std::mem::take(&mut batch).into())
            .await
            .unwrap();
    }
    let fill = fill_start.elapsed();
    let t = Instant::now();
    let page = store
        .list_activity(&ActivityQuery {
            tenant: "bench".into(),
            since: Some(now - 3_600_000),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let list_latency = t.elapsed();
    let t = Instant::now();
    let filtered = store
        .list_activity(&ActivityQuery {
            tenant: "bench".into(),
            since: Some(now - 3_600_000),
            target: Some("s0__tool0".into()),
            status: Some("error".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let filtered_latency = t.elapsed();
    let t = Instant::now();
    let samples = store
        .activity_samples("bench", None, now - 3_600_000, 200_000)
        .await
        .unwrap();
    let samples_latency = t.elapsed();
    println!(
        "table of {filled} rows (filled in {:.1} s): last hour, 100 newest: {:.1} ms; filtered by tool and status: {:.1} ms ({} rows); stats samples of the last hour ({} rows): {:.0} ms",
        fill.as_secs_f64(),
        list_latency.as_secs_f64() * 1000.0,
        filtered_latency.as_secs_f64() * 1000.0,
        filtered.len(),
        samples.len(),
        samples_latency.as_secs_f64() * 1000.0,
    );
    assert_eq!(page.len(), 100);
    assert!(list_latency < Duration::from_secs(1), "{list_latency:?}");
}
