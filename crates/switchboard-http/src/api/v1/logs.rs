//! The activity log over REST: `GET /api/v1/logs` (newest first, filtered, paged with an
//! opaque cursor), `GET /api/v1/logs/stream` (the same filters, live, as server-sent events)
//! and `GET /api/v1/stats` (per server and tool: calls, errors, latency percentiles over a
//! window, and a per-minute series for charts).
//!
//! Who reads what: admins any tenant (`X-Switchboard-Tenant`), managers their own tenant,
//! users only their own rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Json, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use switchboard_control::Principal;
use switchboard_control::identity::parse_retention;
use switchboard_control::model::{ActivityQuery, ActivityRow, Role};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::ApiErrorBody;
use super::{ApiResult, ApiState, Caller, query};
use crate::api::ApiError;
use crate::auth::target_tenant;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_logs))
        .routes(routes!(stream_logs))
        .routes(routes!(stats))
}

/// Most rows `/api/v1/stats` reads for one window (newest first).
pub const STATS_MAX_ROWS: i64 = 200_000;

/// Filters of `GET /api/v1/logs` and `/api/v1/logs/stream`.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub(super) struct LogsQuery {
    /// Only this server.
    server: Option<String>,
    /// Only this tool, prompt or resource URI.
    tool: Option<String>,
    /// `ok` or `error`.
    status: Option<String>,
    /// Only this caller (users always see only themselves).
    principal: Option<String>,
    /// From: Unix milliseconds, or a duration ago (`1h`, `30m`, `7d`).
    since: Option<String>,
    /// Until (exclusive): Unix milliseconds, or a duration ago.
    until: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One page of the activity log.
#[derive(Serialize, ToSchema)]
pub(super) struct LogPage {
    /// Rows, newest first.
    #[schema(value_type = Vec<Object>)]
    items: Vec<ActivityRow>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// Unix milliseconds, or a duration before now.
fn instant(text: &str, what: &str) -> ApiResult<i64> {
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Ok(ms);
    }
    match parse_retention(text) {
        Ok(Some(d)) => Ok(switchboard_control::now_ms() - d.as_millis() as i64),
        _ => Err(bad(format!(
            "{what} must be Unix milliseconds or a duration ago like 1h, 30m or 7d"
        ))),
    }
}

/// The tenant and the principal filter the caller may read.
fn scope(
    who: &Principal,
    headers: &HeaderMap,
    asked: Option<String>,
) -> ApiResult<(String, Option<String>)> {
    let tenant = target_tenant(who, headers)?;
    let principal = match who.role {
        Role::Admin | Role::Manager => asked,
        Role::User => Some(who.name.clone()),
    };
    Ok((tenant, principal))
}

fn activity_query(who: &Principal, headers: &HeaderMap, q: LogsQuery) -> ApiResult<ActivityQuery> {
    let (tenant, principal) = scope(who, headers, q.principal)?;
    if let Some(s) = &q.status
        && s != "ok"
        && s != "error"
    {
        return Err(bad("status must be ok or error"));
    }
    let before = match &q.cursor {
        Some(c) => Some(i64::from_str_radix(c, 36).map_err(|_| bad("invalid cursor"))?),
        None => None,
    };
    Ok(ActivityQuery {
        tenant,
        server: q.server,
        target: q.tool,
        status: q.status,
        principal,
        since: q
            .since
            .as_deref()
            .map(|s| instant(s, "since"))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| instant(s, "until"))
            .transpose()?,
        before,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    })
}

/// The activity log, newest first.
#[utoipa::path(get, path = "/api/v1/logs", tag = "activity",
    params(LogsQuery),
    responses(
        (status = 200, description = "One page of rows, newest first", body = LogPage),
        (status = 400, description = "A malformed filter or cursor", body = ApiErrorBody)))]
async fn list_logs(
    State(st): State<ApiState>,
    Caller(who): Caller,
    headers: HeaderMap,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Json<LogPage>> {
    let q = activity_query(&who, &headers, query(q)?)?;
    let items = st.control.activity(&q).await?;
    let next_cursor = (items.len() as i64 == q.limit)
        .then(|| items.last().map(|r| radix36(r.id)))
        .flatten();
    Ok(Json(LogPage { items, next_cursor }))
}

fn radix36(mut n: i64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

fn matches(q: &ActivityQuery, row: &ActivityRow) -> bool {
    row.tenant == q.tenant
        && q.server
            .as_ref()
            .is_none_or(|s| row.server.as_ref() == Some(s))
        && q.target
            .as_ref()
            .is_none_or(|t| row.target.as_ref() == Some(t))
        && q.status.as_ref().is_none_or(|s| &row.status == s)
        && q.principal
            .as_ref()
            .is_none_or(|p| row.principal.as_ref() == Some(p))
}

/// New activity rows as they are written (`event: activity`, one row of JSON each), with the
/// same filters; a keep-alive comment every 15 s. Rows the reader fell too far behind on are
/// skipped (`event: lagged` says how many).
#[utoipa::path(get, path = "/api/v1/logs/stream", tag = "activity",
    params(LogsQuery),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream"),
        (status = 503, description = "No activity log in this process", body = ApiErrorBody)))]
async fn stream_logs(
    State(st): State<ApiState>,
    Caller(who): Caller,
    headers: HeaderMap,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let q = activity_query(&who, &headers, query(q)?)?;
    let Some(log) = &st.activity else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the activity log is off in this process",
        ));
    };
    let rx = log.subscribe();
    let q = Arc::new(q);
    let events = stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(row) => Some((Some(row), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(message = "A log stream reader lagged.", skipped = n);
                Some((None, rx))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
    .filter_map(move |row| {
        let q = q.clone();
        async move {
            match row {
                Some(row) if matches(&q, &row) => Some(Bytes::from(switchboard_core::sse::encode(
                    Some("activity"),
                    None,
                    &serde_json::to_string(&*row).unwrap_or_default(),
                ))),
                Some(_) => None,
                None => Some(Bytes::from_static(b"event: lagged\ndata: {}\n\n")),
            }
        }
    });
    Ok(crate::streamable::with_keepalive_raw(events))
}

/// `window`: how far back (`1h` default, at most 7 days).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StatsQuery {
    /// How far back, e.g. `15m`, `1h`, `24h` (default `1h`, at most `7d`).
    window: Option<String>,
}

/// Figures for one server and tool.
#[derive(Serialize, ToSchema, Debug)]
pub(super) struct ToolStats {
    server: Option<String>,
    tool: Option<String>,
    calls: u64,
    errors: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
}

/// Figures for one minute.
#[derive(Serialize, ToSchema, Debug)]
pub(super) struct MinuteStats {
    /// Start of the minute (Unix milliseconds).
    at: i64,
    calls: u64,
    errors: u64,
    p95_ms: f64,
}

/// `GET /api/v1/stats`.
#[derive(Serialize, ToSchema)]
pub(super) struct Stats {
    /// The window, in seconds.
    window_secs: u64,
    /// Its start (Unix milliseconds).
    since: i64,
    calls: u64,
    errors: u64,
    /// True when the window held more than the rows read (the newest were used).
    truncated: bool,
    /// Per server and tool, most calls first.
    items: Vec<ToolStats>,
    /// Per minute, oldest first.
    series: Vec<MinuteStats>,
}

/// The `p`-th percentile of sorted `xs` (nearest rank), in milliseconds.
fn percentile_ms(xs: &[i64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1] as f64 / 1000.0
}

/// Calls, errors and latency percentiles per server and tool over a window.
#[utoipa::path(get, path = "/api/v1/stats", tag = "activity",
    params(StatsQuery),
    responses(
        (status = 200, description = "Figures over the window", body = Stats),
        (status = 400, description = "A malformed window", body = ApiErrorBody)))]
async fn stats(
    State(st): State<ApiState>,
    Caller(who): Caller,
    headers: HeaderMap,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> ApiResult<Json<Stats>> {
    let q = query(q)?;
    let window = match parse_retention(q.window.as_deref().unwrap_or("1h")) {
        Ok(Some(d)) if d.as_secs() >= 1 && d.as_secs() <= 7 * 86_400 => d,
        _ => return Err(bad("window must be a duration from 1s to 7d, e.g. 1h")),
    };
    let (tenant, principal) = scope(&who, &headers, None)?;
    let since = switchboard_control::now_ms() - window.as_millis() as i64;
    let samples = st
        .control
        .activity_samples(&tenant, principal.as_deref(), since, STATS_MAX_ROWS)
        .await?;
    let truncated = samples.len() as i64 >= STATS_MAX_ROWS;
    // Errors and durations (µs) per (server, tool) and per minute.
    type Tally = (u64, Vec<i64>);
    let mut by_tool: BTreeMap<(Option<String>, Option<String>), Tally> = BTreeMap::new();
    let mut by_minute: BTreeMap<i64, Tally> = BTreeMap::new();
    let mut errors = 0;
    for s in &samples {
        errors += u64::from(s.error);
        let e = by_tool
            .entry((s.server.clone(), s.target.clone()))
            .or_default();
        e.0 += u64::from(s.error);
        e.1.push(s.duration_us);
        let m = by_minute.entry(s.at - s.at.rem_euclid(60_000)).or_default();
        m.0 += u64::from(s.error);
        m.1.push(s.duration_us);
    }
    let mut items: Vec<ToolStats> = by_tool
        .into_iter()
        .map(|((server, tool), (errors, mut d))| {
            d.sort_unstable();
            ToolStats {
                server,
                tool,
                calls: d.len() as u64,
                errors,
                p50_ms: percentile_ms(&d, 50.0),
                p95_ms: percentile_ms(&d, 95.0),
                p99_ms: percentile_ms(&d, 99.0),
            }
        })
        .collect();
    items.sort_by_key(|t| std::cmp::Reverse(t.calls));
    let series = by_minute
        .into_iter()
        .map(|(at, (errors, mut d))| {
            d.sort_unstable();
            MinuteStats {
                at,
                calls: d.len() as u64,
                errors,
                p95_ms: percentile_ms(&d, 95.0),
            }
        })
        .collect();
    Ok(Json(Stats {
        window_secs: window.as_secs(),
        since,
        calls: samples.len() as u64,
        errors,
        truncated,
        items,
        series,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let xs: Vec<i64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&xs, 50.0), 50.0);
        assert_eq!(percentile_ms(&xs, 95.0), 95.0);
        assert_eq!(percentile_ms(&xs, 99.0), 99.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }

    #[test]
    fn cursors_round_trip() {
        for n in [1, 35, 36, 123_456_789] {
            assert_eq!(i64::from_str_radix(&radix36(n), 36).unwrap(), n);
        }
    }
}
