//! Per-row cost of `insert_activity` on a SQLite file, measured with callgrind: appends
//! N rows (first argument) in batches (second argument, default 500) of realistic
//! `tools/call` rows into a fresh database in the temp directory, then deletes it.
//! `DROP_IDX=a,b` drops those indexes first, to price each index. The per-row cost is
//! the difference of two runs divided by the difference of their row counts:
//!
//! ```text
//! cargo build --release -p switchboard-store --example activity_insert
//! valgrind --tool=callgrind target/release/examples/activity_insert 1000
//! valgrind --tool=callgrind target/release/examples/activity_insert 11000
//! ```
use switchboard_store::{ActivityRow, ActivityStore, SecretKey, SqliteStore};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("usage: activity_insert ROWS [BATCH]");
    let batch: usize = std::env::args().nth(2).map_or(500, |b| b.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("act-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("s.db").display());
    let store = SqliteStore::connect(&url, SecretKey::generate().unwrap())
        .await
        .unwrap();
    if let Ok(drop) = std::env::var("DROP_IDX") {
        let c = rusqlite::Connection::open(dir.join("s.db")).unwrap();
        for i in drop.split(',') {
            c.execute_batch(&format!("DROP INDEX {i}")).unwrap();
        }
    }
    let rows: Vec<ActivityRow> = (0..batch)
        .map(|i| ActivityRow {
            at: 1_700_000_000_000 + i as i64,
            tenant: "default".into(),
            principal: Some("alice".into()),
            endpoint: "all".into(),
            session: Some("0123456789abcdef0123456789abcdef".into()),
            server: Some(format!("s{}", i % 10)),
            method: "tools/call".into(),
            target: Some(format!("s{}__tool{}", i % 10, i % 7)),
            status: "ok".into(),
            duration_us: 250,
            bytes_in: 120,
            bytes_out: 300,
            protocol: Some("2025-11-25".into()),
            ..Default::default()
        })
        .collect();
    let mut done = 0;
    while done < n {
        store.insert_activity(rows.clone().into()).await.unwrap();
        done += batch;
    }
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
