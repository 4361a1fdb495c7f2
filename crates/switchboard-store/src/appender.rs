//! The SQLite activity appender: activity-log rows go into a file database through a
//! connection of their own, on a blocking thread, as one prepared single-row INSERT bound
//! and stepped per row inside one transaction per batch.
//!
//! Why not the pool: through sqlx each batch is a multi-row statement whose every value is
//! boxed into an argument list and handed to the driver's worker thread, and SQLite runs
//! the multi-row VALUES list as a co-routine. One prepared single-row statement stepped per
//! row skips the boxing and the co-routine: about 10% fewer instructions per row (34.6k to
//! 31.3k with the old three indexes, `examples/activity_insert.rs` under callgrind). Most
//! of a row's cost is SQLite's B-tree work per index, which is why the log keeps one index
//! besides its primary key (migration 0012; README "Observability cost").
//!
//! The connection opens lazily (after the pool has migrated the schema) and is dropped after
//! any error, so the next batch reopens it. Its `synchronous` is `NORMAL`: in WAL mode a
//! power cut can lose the last committed batches of the log (never corrupt the file), which
//! is what an activity log can afford; the store's own records keep the pool's setting.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use crate::StoreError;
use crate::activity::{ActivityRow, insert_one};

/// How long a batch waits for SQLite's write lock (held by another writer) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes activity rows into one SQLite file.
pub(crate) struct Appender {
    path: PathBuf,
    conn: Arc<Mutex<Option<Connection>>>,
}

impl Appender {
    /// An appender for the database file at `path` (opened on first use).
    pub(crate) fn new(path: PathBuf) -> Appender {
        Appender {
            path,
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// Appends `rows` in one transaction, on a blocking thread.
    pub(crate) async fn append(&self, rows: Arc<[ActivityRow]>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock poisons it; the connection inside is dropped
            // and reopened like after any error.
            let mut slot = conn.lock().unwrap_or_else(|p| {
                let mut slot = p.into_inner();
                *slot = None;
                slot
            });
            let result = match slot.as_mut() {
                Some(c) => write(c, &rows),
                None => open(&path).and_then(|mut c| {
                    let r = write(&mut c, &rows);
                    *slot = Some(c);
                    r
                }),
            };
            if result.is_err() {
                *slot = None;
            }
            result.map_err(|e| StoreError::Backend(format!("activity log: {e}")))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("activity log writer stopped: {e}")))?
    }
}

fn open(path: &std::path::Path) -> Result<Connection, rusqlite::Error> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(c)
}

fn write(c: &mut Connection, rows: &[ActivityRow]) -> Result<(), rusqlite::Error> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare(insert_one())?;
        for r in rows {
            insert.execute(params![
                r.at,
                r.tenant,
                r.principal,
                r.endpoint,
                r.session,
                r.server,
                r.method,
                r.target,
                r.status,
                r.error_type,
                r.error,
                r.duration_us,
                r.bytes_in,
                r.bytes_out,
                r.trace_id,
                r.protocol,
                r.request,
                r.response,
            ])?;
        }
    }
    tx.commit()
}
