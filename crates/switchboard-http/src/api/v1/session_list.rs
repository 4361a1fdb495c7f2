//! The operator's view of proxy sessions (seed 002): `GET /api/v1/sessions` lists the tenant's
//! live sessions (ids are never stored, so never shown; a session is named by its prefix) and
//! `DELETE /api/v1/sessions/{prefix}` closes one without its id.
//!
//! Who sees which sessions: admins and managers every session of the tenant they act on (an
//! admin picks it with `X-Switchboard-Tenant`, as with [`super::Manage`]); anyone else only the
//! sessions they opened themselves, under any of their credentials (login or API key). Another
//! tenant's sessions are never listed, and closing one answers 404. Closing by prefix needs the
//! admin or manager role; everyone can close their own sessions by id.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Json;
use serde::Serialize;
use serde_json::{Value, json};
use switchboard_control::{Principal, SessionView};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::ApiErrorBody;
use super::sessions::{SessionDoc, SessionPath};
use super::{ApiResult, ApiState, Caller, Manage, path};
use crate::auth::{plane, target_tenant};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(close_session_by_prefix))
}

/// `GET /api/v1/sessions`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct SessionList {
    /// The live sessions the caller may see, soonest expiry first, without their ids.
    sessions: Vec<SessionDoc>,
}

/// True when `created_by` (named as [`Principal::actor`] names callers) is `who`: the same
/// credential, or for a user any of their credentials (`user:NAME` after a login,
/// `user:NAME (key ID)` with an API key; user names have no spaces).
fn opened_by(who: &Principal, created_by: &str) -> bool {
    if created_by == who.actor() {
        return true;
    }
    let me = format!("user:{}", who.name);
    who.user_id.is_some()
        && created_by
            .strip_prefix(&me)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(" (key "))
}

/// The sessions of `all` that `who` may see: all of them for admins and managers, else the
/// caller's own.
pub(super) fn visible(who: &Principal, all: Vec<SessionView>) -> Vec<SessionView> {
    if who.can_manage() {
        return all;
    }
    all.into_iter()
        .filter(|s| opened_by(who, &s.created_by))
        .collect()
}

/// List the tenant's live proxy sessions.
///
/// Admins and managers see every live session of the tenant they act on (admins pick it with
/// `X-Switchboard-Tenant`); other callers see only the sessions they opened. Ids are not
/// stored, so they are never listed: a session is named by its prefix.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions",
    params(("X-Switchboard-Tenant" = Option<String>, Header, description = "Admins: the tenant to list")),
    responses(
        (status = 200, description = "The live sessions, soonest expiry first", body = SessionList),
        (status = 404, description = "A tenant the caller may not act on", body = ApiErrorBody)))]
async fn list_sessions(
    who: Caller,
    State(st): State<ApiState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let tenant = target_tenant(&who.0, &headers)?;
    let mut sessions = visible(&who.0, plane(&st, &tenant)?.list_sessions().await?);
    sessions.sort_by(|a, b| (a.expires_at_ms, &a.prefix).cmp(&(b.expires_at_ms, &b.prefix)));
    Ok(Json(json!({ "sessions": sessions })))
}

/// Close any live session of the tenant by its prefix (admins and managers).
///
/// The same as closing it by id: its record is deleted (every replica refuses it from then on
/// and drops its mount) and its upstream connection is closed.
#[utoipa::path(delete, path = "/api/v1/sessions/{prefix}", tag = "sessions",
    params(("prefix" = String, Path, description = "The session's prefix, as listed"),
           ("X-Switchboard-Tenant" = Option<String>, Header, description = "Admins: the tenant it belongs to")),
    responses(
        (status = 200, description = "Closed", body = Object),
        (status = 403, description = "Not an admin or manager", body = ApiErrorBody),
        (status = 404, description = "No live session with this prefix in the tenant", body = ApiErrorBody)))]
async fn close_session_by_prefix(m: Manage, prefix: SessionPath) -> ApiResult<Json<Value>> {
    let prefix = path(prefix)?;
    m.st.control.close_session_by_prefix(&prefix).await?;
    tracing::info!(message = "Session closed by prefix.", tenant = %m.tenant(), prefix = %prefix, by = %m.who.actor());
    Ok(Json(
        json!({"status": "success", "message": "session closed"}),
    ))
}
