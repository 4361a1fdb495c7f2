//! The activity log: one row per MCP operation the hub forwarded or refused, written in
//! batches of one transaction each (on a SQLite file by its own connection, see
//! [`crate::appender`]; on PostgreSQL as multi-row INSERTs) and read newest first with
//! optional filters. Rows never bump the store revision: they are not desired state.

use std::sync::Arc;

use serde::Serialize;

use crate::StoreError;

/// Rows per INSERT statement on PostgreSQL (built per batch).
pub const PG_STATEMENT_ROWS: usize = 500;

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

/// One tool's calls in one hour, for tool search's usage prior.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallHour {
    /// The tool, as the client named it.
    pub target: String,
    /// The hour (Unix milliseconds / 3,600,000).
    pub hour: i64,
    /// Successful calls.
    pub calls: i64,
}

/// Activity storage.
#[async_trait::async_trait]
pub trait ActivityStore: Send + Sync {
    /// Appends `rows` (their ids are ignored) in one transaction.
    async fn insert_activity(&self, rows: Arc<[ActivityRow]>) -> Result<(), StoreError>;
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
    /// A tenant's successful `tools/call`s that reached a server, from `since` to before
    /// `until` (Unix milliseconds), counted per tool and hour: on every endpoint but a
    /// single server's (which names tools without their prefix). The `limit` largest counts.
    async fn tool_call_hours(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<ToolCallHour>, StoreError>;
    /// Deletes rows older than `at`; returns how many.
    async fn delete_activity_before(&self, at: i64) -> Result<u64, StoreError>;
}

pub(crate) const INSERT_ACTIVITY: &str = "INSERT INTO activity_log (at, tenant, principal, \
    endpoint, session, server, method, target, status, error_type, error, duration_us, bytes_in, \
    bytes_out, trace_id, protocol, request, response) ";
/// The single-row INSERT (anonymous `?` placeholders), for SQLite.
pub(crate) fn insert_one() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| format!("{INSERT_ACTIVITY}VALUES ({})", ["?"; 18].join(", ")))
}
pub(crate) const LIST_ACTIVITY: &str = "SELECT id, at, tenant, principal, endpoint, session, \
    server, method, target, status, error_type, error, duration_us, bytes_in, bytes_out, \
    trace_id, protocol, request, response FROM activity_log WHERE tenant = $1 \
    AND ($2 IS NULL OR server = $2) AND ($3 IS NULL OR target = $3) \
    AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR principal = $5) \
    AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) AND ($8 IS NULL OR id < $8) \
    AND ($10 IS NULL OR id >= $10) ORDER BY id DESC LIMIT $9";
pub(crate) const ACTIVITY_SAMPLES: &str = "SELECT at, server, target, status, duration_us \
    FROM activity_log WHERE tenant = $1 AND id >= $2 AND at >= $3 \
    AND ($4 IS NULL OR principal = $4) ORDER BY id DESC LIMIT $5";
pub(crate) const TOOL_CALL_HOURS: &str = "SELECT target, at / 3600000, COUNT(*) \
    FROM activity_log WHERE tenant = $1 AND id >= $2 AND at >= $3 AND at < $4 \
    AND method = 'tools/call' AND status = 'ok' AND server IS NOT NULL \
    AND target IS NOT NULL AND endpoint NOT LIKE 'server:%' \
    GROUP BY target, at / 3600000 ORDER BY 3 DESC LIMIT $5";
pub(crate) const DELETE_ACTIVITY_BEFORE: &str =
    "DELETE FROM activity_log WHERE id < $1 AND at < $2";
/// The first id from which rows start at `$1` or later, found by bisecting the primary key
/// inside the database, in one statement (one round trip instead of one per step). Each step
/// looks at the first row at or after the middle `m` of `[lo, hi)`: if it started before
/// `$1`, the answer is past that row; otherwise (or if there is none) it is at most `m`.
/// `top` is the largest id; `lo > top` means no row started at `$1` or later. The probe is
/// written three times because a recursive reference may not sit inside a subquery
/// (PostgreSQL), and SQLite has no LATERAL join; each is one lookup on the key. min() and
/// max() stand alone so that SQLite reads them off the key.
pub(crate) const ID_FROM: &str = "WITH RECURSIVE b(lo, hi, top) AS (\
    SELECT (SELECT min(id) FROM activity_log), (SELECT max(id) FROM activity_log) + 1, \
    (SELECT max(id) FROM activity_log) \
    UNION ALL SELECT \
    CASE WHEN (SELECT at FROM activity_log WHERE id >= b.lo + (b.hi - b.lo) / 2 \
    ORDER BY id LIMIT 1) < $1 \
    THEN (SELECT id FROM activity_log WHERE id >= b.lo + (b.hi - b.lo) / 2 \
    ORDER BY id LIMIT 1) + 1 ELSE b.lo END, \
    CASE WHEN (SELECT at FROM activity_log WHERE id >= b.lo + (b.hi - b.lo) / 2 \
    ORDER BY id LIMIT 1) < $1 THEN b.hi ELSE b.lo + (b.hi - b.lo) / 2 END, \
    b.top FROM b WHERE b.lo < b.hi) \
    SELECT lo, top FROM b WHERE lo >= hi";

/// How far a row's time may run behind the rows written before it: rows are appended as calls
/// finish but carry the time a call started, and replicas' clocks differ. Statistics search
/// ids from this far before their window and then filter by time exactly, so they miss
/// nothing unless a call ran longer than this (or clocks differ by more).
pub const TIME_DISORDER_MS: i64 = 10 * 60 * 1000;

/// Implements [`ActivityStore`] for `$store` (invoke after `impl_store!` in the same module;
/// the store appends rows with its own `append_activity`).
macro_rules! impl_activity {
    ($store:ident) => {
        use std::sync::Arc;

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
            async fn insert_activity(&self, rows: Arc<[ActivityRow]>) -> Result<(), StoreError> {
                if rows.is_empty() {
                    return Ok(());
                }
                self.append_activity(rows).await
            }

            async fn list_activity(
                &self,
                q: &ActivityQuery,
            ) -> Result<Vec<ActivityRow>, StoreError> {
                // A time window becomes an id range too (the log has no index on time): a
                // filter that few rows match then reads the window, not the whole table.
                // Rows that started at `since` or later have ids from the first row at
                // `since - TIME_DISORDER_MS`; rows that started before `until` have ids
                // below the first row at `until + TIME_DISORDER_MS`.
                let from = match q.since {
                    Some(since) => match self
                        .activity_id_from(since.saturating_sub(act::TIME_DISORDER_MS))
                        .await?
                    {
                        Some(id) => Some(id),
                        None => return Ok(Vec::new()),
                    },
                    None => None,
                };
                let mut before = q.before;
                if let Some(until) = q.until {
                    let upto = self
                        .activity_id_from(until.saturating_add(act::TIME_DISORDER_MS))
                        .await?;
                    if let Some(upto) = upto {
                        before = Some(before.map_or(upto, |b| b.min(upto)));
                    }
                }
                let rows = sqlx::query(act::LIST_ACTIVITY)
                    .bind(q.tenant.clone())
                    .bind(q.server.clone())
                    .bind(q.target.clone())
                    .bind(q.status.clone())
                    .bind(q.principal.clone())
                    .bind(q.since)
                    .bind(q.until)
                    .bind(before)
                    .bind(q.limit.clamp(1, 1000))
                    .bind(from)
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
                let Some(from) = self
                    .activity_id_from(since.saturating_sub(act::TIME_DISORDER_MS))
                    .await?
                else {
                    return Ok(Vec::new());
                };
                let rows = sqlx::query(act::ACTIVITY_SAMPLES)
                    .bind(tenant.to_string())
                    .bind(from)
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

            async fn tool_call_hours(
                &self,
                tenant: &str,
                since: i64,
                until: i64,
                limit: i64,
            ) -> Result<Vec<act::ToolCallHour>, StoreError> {
                let Some(from) = self
                    .activity_id_from(since.saturating_sub(act::TIME_DISORDER_MS))
                    .await?
                else {
                    return Ok(Vec::new());
                };
                let rows: Vec<(String, i64, i64)> = sqlx::query_as(act::TOOL_CALL_HOURS)
                    .bind(tenant.to_string())
                    .bind(from)
                    .bind(since)
                    .bind(until)
                    .bind(limit.max(1))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(target, hour, calls)| act::ToolCallHour {
                        target,
                        hour,
                        calls,
                    })
                    .collect())
            }

            async fn delete_activity_before(&self, at: i64) -> Result<u64, StoreError> {
                // The rows before the first id at `at` that are old enough: the range read is
                // what is deleted. A straggler (a long call, a replica's clock) past that id
                // goes in a later sweep, once the first id at the cutoff has passed it.
                let upto = self.activity_id_from(at).await?.unwrap_or(i64::MAX);
                Ok(sqlx::query(act::DELETE_ACTIVITY_BEFORE)
                    .bind(upto)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?
                    .rows_affected())
            }
        }

        impl $store {
            /// An id from which the rows that started at or after `at` begin, found by
            /// bisecting the primary key in one statement ([`act::ID_FROM`], about 2·log₂(rows)
            /// key lookups; ids grow with time, up to [`act::TIME_DISORDER_MS`]); `None` when no
            /// row started at or after `at`.
            async fn activity_id_from(&self, at: i64) -> Result<Option<i64>, StoreError> {
                let found: Option<(i64, i64)> = sqlx::query_as(act::ID_FROM)
                    .bind(at)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(found.and_then(|(lo, top)| (lo <= top).then_some(lo)))
            }
        }
    };
}
pub(crate) use impl_activity;
