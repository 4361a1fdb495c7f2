//! A user's own upstream credentials: headers (say, their own GitHub token) that their MCP
//! sessions send to one server instead of the server's configured headers of the same names.
//! Sealed at rest like every secret, never shown again.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Json, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_control::ControlError;
use switchboard_control::accounts::Accounts;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::ApiErrorBody;
use super::{ApiResult, ApiState, Caller, body, path};
use crate::api::ApiError;
use crate::auth::plane;

/// These routes have always answered malformed input with the code `bad_request`.
fn answer(e: ControlError) -> ApiError {
    match e {
        ControlError::Invalid(m) => ApiError::bad_request(m),
        e => e.into(),
    }
}

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_credentials))
        .routes(routes!(set_credential, delete_credential))
}

/// `{"servers": [...]}`: the servers you hold credentials for.
#[derive(Serialize, ToSchema)]
pub(super) struct CredentialList {
    servers: Vec<String>,
}

/// `{"headers": {...}}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CredentialInput {
    /// Header names and values, e.g. `{"Authorization": "Bearer ghp_…"}`.
    headers: BTreeMap<String, String>,
}

/// List the servers you hold your own credentials for.
#[utoipa::path(get, path = "/api/v1/me/credentials", tag = "identity",
    responses(
        (status = 200, description = "Server names", body = CredentialList),
        (status = 400, description = "The admin token has no user", body = ApiErrorBody)))]
async fn list_credentials(
    State(st): State<ApiState>,
    Caller(who): Caller,
) -> ApiResult<Json<CredentialList>> {
    let servers = Accounts::new(&st.identity, &who, &who.tenant)
        .own_credentials()
        .await
        .map_err(answer)?;
    Ok(Json(CredentialList { servers }))
}

/// Store your own headers for a server of your tenant (replaces earlier ones). Sessions
/// opened from now on use them.
#[utoipa::path(put, path = "/api/v1/me/credentials/{server}", tag = "identity",
    params(("server" = String, Path, description = "Server name")),
    request_body = CredentialInput,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Malformed body or header", body = ApiErrorBody),
        (status = 404, description = "No such server in your tenant", body = ApiErrorBody)))]
async fn set_credential(
    State(st): State<ApiState>,
    Caller(who): Caller,
    server: Result<Path<String>, PathRejection>,
    input: Result<Json<CredentialInput>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let server = path(server)?;
    let input = body(input)?;
    let accounts = Accounts::new(&st.identity, &who, &who.tenant);
    if who.user_id.is_some() {
        plane(&st, &who.tenant)?;
    }
    accounts
        .set_own_credential(&server, &input.headers)
        .await
        .map_err(answer)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove your own credentials for a server.
#[utoipa::path(delete, path = "/api/v1/me/credentials/{server}", tag = "identity",
    params(("server" = String, Path, description = "Server name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "You hold none for this server", body = ApiErrorBody)))]
async fn delete_credential(
    State(st): State<ApiState>,
    Caller(who): Caller,
    server: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let server = path(server)?;
    Accounts::new(&st.identity, &who, &who.tenant)
        .delete_own_credential(&server)
        .await
        .map_err(answer)?;
    Ok(StatusCode::NO_CONTENT)
}
