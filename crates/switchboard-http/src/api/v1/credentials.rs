//! A user's own upstream credentials: headers (say, their own GitHub token) that their MCP
//! sessions send to one server instead of the server's configured headers of the same names.
//! Sealed at rest like every secret, never shown again.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Json, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_control::now_ms;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::ApiErrorBody;
use super::{ApiResult, ApiState, Caller, body, path};
use crate::api::ApiError;
use crate::api::auth::plane;

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

fn own_user(who: &switchboard_control::Principal) -> ApiResult<&str> {
    who.user_id.as_deref().ok_or_else(|| {
        ApiError::bad_request("the admin token has no user of its own: log in as a user")
    })
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
    let user = own_user(&who)?;
    Ok(Json(CredentialList {
        servers: st.identity.store().list_user_credentials(user).await?,
    }))
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
    let user = own_user(&who)?;
    let control = plane(&st, &who.tenant)?;
    if control
        .store()
        .get_server(&who.tenant, &server)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no server named {server:?}"),
        ));
    }
    if input.headers.is_empty() {
        return Err(ApiError::bad_request(
            "give at least one header, or DELETE to remove your credentials",
        ));
    }
    for (name, value) in &input.headers {
        let ok = axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && axum::http::HeaderValue::from_str(value).is_ok();
        if !ok {
            return Err(ApiError::bad_request(format!(
                "header {name:?} is not a valid HTTP header name and value"
            )));
        }
    }
    st.identity
        .store()
        .set_user_credential(user, &who.tenant, &server, &input.headers, now_ms())
        .await?;
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
    let user = own_user(&who)?;
    if st
        .identity
        .store()
        .delete_user_credential(user, &server)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("you hold no credentials for {server:?}"),
        ))
    }
}
