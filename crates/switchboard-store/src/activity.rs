//! The activity log: one row per MCP operation the hub forwarded or refused, written in
//! batches (one transaction; on SQLite, prepared multi-row INSERTs of a few fixed sizes) and
//! read newest first with optional filters. Rows never bump the store revision: they are not
//! desired state.

use serde::Serialize;

use crate::StoreError;

/// Most rows one INSERT statement writes on SQLite (18 bound columns each: well under its
/// bind-parameter limit). A batch is written as statements of power-of-two sizes up to this,
/// so each connection prepares at most nine distinct statements once and reuses them,
/// whatever the batch sizes.
pub const ACTIVITY_BATCH_ROWS: usize = 256;

/// Rows per INSERT statement on PostgreSQL (built per batch, not cached).
pub const PG_STATEMENT_ROWS: usize = 500;

/// Columns bound per row.
const INSERT_COLUMNS: usize = 18;

/// The INSERT for `rows` rows, built once per size and placeholder style: `$1`, `$2`, ...
/// (`numbered`, PostgreSQL) or `?` (SQLite, which binds anonymous parameters by position;
/// for numbered ones the driver looks each name up, a cost that grows with the statement).
/// `rows` must be a power of two up to [`ACTIVITY_BATCH_ROWS`].
pub(crate) fn insert_statement(rows: usize, numbered: bool) -> &'static str {
    use std::fmt::Write as _;
    use std::sync::OnceLock;
    const SIZES: usize = ACTIVITY_BATCH_ROWS.trailing_zeros() as usize + 1;
    static TEXT: [[OnceLock<String>; SIZES]; 2] = [const { [const { OnceLock::new() }; SIZES] }; 2];
    debug_assert!(rows.is_power_of_two() && rows <= ACTIVITY_BATCH_ROWS);
    TEXT[usize::from(numbered)][rows.trailing_zeros() as usize].get_or_init(|| {
        let mut sql = String::with_capacity(INSERT_ACTIVITY.len() + rows * 120);
        sql.push_str(INSERT_ACTIVITY);
        sql.push_str("VALUES ");
        let mut n = 0;
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..INSERT_COLUMNS {
                n += 1;
                let sep = if c == 0 { "" } else { ", " };
                let _ = if numbered {
                    write!(sql, "{sep}${n}")
                } else {
                    write!(sql, "{sep}?")
                };
            }
            sql.push(')');
        }
        sql
    })
}

/// `rows` split into runs of power-of-two lengths, longest first, each at most
/// [`ACTIVITY_BATCH_ROWS`].
pub(crate) fn statement_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let n = ACTIVITY_BATCH_ROWS.min(1 << rows.len().ilog2());
        let (chunk, rest) = rows.split_at(n);
        rows = rest;
        Some(chunk)
    })
}

/// One activity row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ActivityRow {
    /// Increasing id (assigned by the store; 0 before insertion).
    pub id: i64,
    /// When the operation started (Unix milliseconds).
    pub at: i64,
    /// Tenant whose hub served it.
    pub tenant: String,
    /// Who called (login name, `admin-token`, `anonymous`), when known.
    pub principal: Option<String>,
    /// The endpoint's view (`all`, `group:g`, `server:s`, `smart`, ...).
    pub endpoint: String,
    /// The client's session id (none for stateless requests).
    pub session: Option<String>,
    /// The server that owned the call, when it was routed.
    pub server: Option<String>,
    /// JSON-RPC method.
    pub method: String,
    /// Tool or prompt name, or resource URI, as the client named it.
    pub target: Option<String>,
    /// `ok` or `error`.
    pub status: String,
    /// `tool_error` or a JSON-RPC error code, for errors.
    pub error_type: Option<String>,
    /// The error message (capped).
    pub error: Option<String>,
    /// Microseconds from the request to the reply.
    pub duration_us: i64,
    /// Request bytes.
    pub bytes_in: i64,
    /// Reply bytes.
    pub bytes_out: i64,
    /// W3C trace id, when the client sent a `traceparent`.
    pub trace_id: Option<String>,
    /// The session's protocol revision.
    pub protocol: Option<String>,
    /// The request's params (truncated, redacted), only with payload logging on.
    pub request: Option<String>,
    /// The reply (truncated, redacted), only with payload logging on.
    pub response: Option<String>,
}

/// Which activity rows to list: one tenant's, newest first.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    /// The tenant.
    pub tenant: String,
    /// Only this server.
    pub server: Option<String>,
    /// Only this tool, prompt or URI.
    pub target: Option<String>,
    /// Only `ok` or `error`.
    pub status: Option<String>,
    /// Only this principal.
    pub principal: Option<String>,
    /// At or after (Unix milliseconds).
    pub since: Option<i64>,
    /// Before (Unix milliseconds).
    pub until: Option<i64>,
    /// Rows with an id below this (paging).
    pub before: Option<i64>,
    /// At most this many (clamped to 1..=1000).
    pub limit: i64,
}

/// One row's figures for statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivitySample {
    /// When (Unix milliseconds).
    pub at: i64,
    /// Server, when routed.
    pub server: Option<String>,
    /// Tool, prompt or URI.
    pub target: Option<String>,
    /// True for an error.
    pub error: bool,
    /// Microseconds.
    pub duration_us: i64,
}

/// Activity storage.
#[async_trait::async_trait]
pub trait ActivityStore: Send + Sync {
    /// Appends `rows` (their ids are ignored) in one transaction.
    async fn insert_activity(&self, rows: &[ActivityRow]) -> Result<(), StoreError>;
    /// Lists rows newest first.
    async fn list_activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityRow>, StoreError>;
    /// A tenant's rows since `since` (optionally one principal's), newest first, at most
    /// `limit`.
    async fn activity_samples(
        &self,
        tenant: &str,
        principal: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<ActivitySample>, StoreError>;
    /// Deletes rows older than `at`; returns how many.
    async fn delete_activity_before(&self, at: i64) -> Result<u64, StoreError>;
}

pub(crate) const INSERT_ACTIVITY: &str = "INSERT INTO activity_log (at, tenant, principal, \
    endpoint, session, server, method, target, status, error_type, error, duration_us, bytes_in, \
    bytes_out, trace_id, protocol, request, response) ";
pub(crate) const LIST_ACTIVITY: &str = "SELECT id, at, tenant, principal, endpoint, session, \
    server, method, target, status, error_type, error, duration_us, bytes_in, bytes_out, \
    trace_id, protocol, request, response FROM activity_log WHERE tenant = $1 \
    AND ($2 IS NULL OR server = $2) AND ($3 IS NULL OR target = $3) \
    AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR principal = $5) \
    AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) AND ($8 IS NULL OR id < $8) \
    ORDER BY id DESC LIMIT $9";
pub(crate) const ACTIVITY_SAMPLES: &str = "SELECT at, server, target, status, duration_us \
    FROM activity_log WHERE tenant = $1 AND at >= $2 AND ($3 IS NULL OR principal = $3) \
    ORDER BY at DESC LIMIT $4";
pub(crate) const DELETE_ACTIVITY_BEFORE: &str = "DELETE FROM activity_log WHERE at < $1";

/// Implements [`ActivityStore`] for `$store` (invoke after `impl_store!` in the same module).
macro_rules! impl_activity {
    ($store:ident, $db:ty, numbered: $numbered:expr) => {
        use $crate::activity::{
            self as act, ActivityQuery, ActivityRow, ActivitySample, ActivityStore,
        };

        fn activity_row(row: &DbRow) -> Result<ActivityRow, StoreError> {
            Ok(ActivityRow {
                id: row.try_get(0).map_err(db_error)?,
                at: row.try_get(1).map_err(db_error)?,
                tenant: row.try_get(2).map_err(db_error)?,
                principal: row.try_get(3).map_err(db_error)?,
                endpoint: row.try_get(4).map_err(db_error)?,
                session: row.try_get(5).map_err(db_error)?,
                server: row.try_get(6).map_err(db_error)?,
                method: row.try_get(7).map_err(db_error)?,
                target: row.try_get(8).map_err(db_error)?,
                status: row.try_get(9).map_err(db_error)?,
                error_type: row.try_get(10).map_err(db_error)?,
                error: row.try_get(11).map_err(db_error)?,
                duration_us: row.try_get(12).map_err(db_error)?,
                bytes_in: row.try_get(13).map_err(db_error)?,
                bytes_out: row.try_get(14).map_err(db_error)?,
                trace_id: row.try_get(15).map_err(db_error)?,
                protocol: row.try_get(16).map_err(db_error)?,
                request: row.try_get(17).map_err(db_error)?,
                response: row.try_get(18).map_err(db_error)?,
            })
        }

        #[async_trait::async_trait]
        impl ActivityStore for $store {
            async fn insert_activity(&self, rows: &[ActivityRow]) -> Result<(), StoreError> {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                if $numbered {
                    // PostgreSQL: one statement per 500 rows, built per batch. The cached
                    // power-of-two statements below kept up only half the rate here
                    // (activity_writer with ACTIVITY_BENCH_PG=1: 18 s for 10 s of 10,000
                    // rows/s), so this backend keeps the form measured to keep up.
                    for chunk in rows.chunks(act::PG_STATEMENT_ROWS) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(act::INSERT_ACTIVITY);
                        qb.push_values(chunk, |mut b, r| {
                            b.push_bind(r.at)
                                .push_bind(r.tenant.as_str())
                                .push_bind(r.principal.as_deref())
                                .push_bind(r.endpoint.as_str())
                                .push_bind(r.session.as_deref())
                                .push_bind(r.server.as_deref())
                                .push_bind(r.method.as_str())
                                .push_bind(r.target.as_deref())
                                .push_bind(r.status.as_str())
                                .push_bind(r.error_type.as_deref())
                                .push_bind(r.error.as_deref())
                                .push_bind(r.duration_us)
                                .push_bind(r.bytes_in)
                                .push_bind(r.bytes_out)
                                .push_bind(r.trace_id.as_deref())
                                .push_bind(r.protocol.as_deref())
                                .push_bind(r.request.as_deref())
                                .push_bind(r.response.as_deref());
                        });
                        qb.build().execute(&mut *tx).await.map_err(db_error)?;
                    }
                    return tx.commit().await.map_err(db_error);
                }
                for chunk in act::statement_chunks(rows) {
                    let mut q = sqlx::query(act::insert_statement(chunk.len(), $numbered));
                    for r in chunk {
                        // Borrowed: the rows outlive the statement, so no string is copied.
                        q = q
                            .bind(r.at)
                            .bind(r.tenant.as_str())
                            .bind(r.principal.as_deref())
                            .bind(r.endpoint.as_str())
                            .bind(r.session.as_deref())
                            .bind(r.server.as_deref())
                            .bind(r.method.as_str())
                            .bind(r.target.as_deref())
                            .bind(r.status.as_str())
                            .bind(r.error_type.as_deref())
                            .bind(r.error.as_deref())
                            .bind(r.duration_us)
                            .bind(r.bytes_in)
                            .bind(r.bytes_out)
                            .bind(r.trace_id.as_deref())
                            .bind(r.protocol.as_deref())
                            .bind(r.request.as_deref())
                            .bind(r.response.as_deref());
                    }
                    q.execute(&mut *tx).await.map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)
            }

            async fn list_activity(
                &self,
                q: &ActivityQuery,
            ) -> Result<Vec<ActivityRow>, StoreError> {
                let rows = sqlx::query(act::LIST_ACTIVITY)
                    .bind(q.tenant.clone())
                    .bind(q.server.clone())
                    .bind(q.target.clone())
                    .bind(q.status.clone())
                    .bind(q.principal.clone())
                    .bind(q.since)
                    .bind(q.until)
                    .bind(q.before)
                    .bind(q.limit.clamp(1, 1000))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter().map(activity_row).collect()
            }

            async fn activity_samples(
                &self,
                tenant: &str,
                principal: Option<&str>,
                since: i64,
                limit: i64,
            ) -> Result<Vec<ActivitySample>, StoreError> {
                let rows = sqlx::query(act::ACTIVITY_SAMPLES)
                    .bind(tenant.to_string())
                    .bind(since)
                    .bind(principal.map(str::to_string))
                    .bind(limit.max(1))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        let status: String = row.try_get(3).map_err(db_error)?;
                        Ok(ActivitySample {
                            at: row.try_get(0).map_err(db_error)?,
                            server: row.try_get(1).map_err(db_error)?,
                            target: row.try_get(2).map_err(db_error)?,
                            error: status != "ok",
                            duration_us: row.try_get(4).map_err(db_error)?,
                        })
                    })
                    .collect()
            }

            async fn delete_activity_before(&self, at: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(act::DELETE_ACTIVITY_BEFORE)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?
                    .rows_affected())
            }
        }
    };
}
pub(crate) use impl_activity;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_into_power_of_two_statements() {
        let rows: Vec<usize> = (0..1000).collect();
        let sizes: Vec<usize> = statement_chunks(&rows).map(<[usize]>::len).collect();
        assert_eq!(sizes, [256, 256, 256, 128, 64, 32, 8]);
        let back: Vec<usize> = statement_chunks(&rows).flatten().copied().collect();
        assert_eq!(back, rows, "every row once, in order");
        assert_eq!(statement_chunks::<u8>(&[]).count(), 0);
    }

    #[test]
    fn statements_bind_every_column_of_every_row() {
        let one = insert_statement(1, true);
        assert!(one.ends_with("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"), "{one}");
        let all = insert_statement(ACTIVITY_BATCH_ROWS, true);
        assert_eq!(all.matches('(').count(), ACTIVITY_BATCH_ROWS + 1);
        assert!(all.ends_with(&format!("${})", ACTIVITY_BATCH_ROWS * INSERT_COLUMNS)));
        assert!(std::ptr::eq(one, insert_statement(1, true)), "built once");
        let anonymous = insert_statement(ACTIVITY_BATCH_ROWS, false);
        assert_eq!(
            anonymous.matches('?').count(),
            ACTIVITY_BATCH_ROWS * INSERT_COLUMNS
        );
        assert!(!anonymous.contains('$'));
    }
}
