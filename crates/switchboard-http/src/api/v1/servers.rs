//! Server routes: list, create, read, replace, delete, enable, disable, restart.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Json, Path};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use switchboard_control::{ServerInput, ServerView};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{self, ApiErrorBody};
use super::{ApiResult, ApiState, Manage, body, path};
use crate::api::ApiError;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, update_server, delete_server))
        .routes(routes!(enable_server))
        .routes(routes!(disable_server))
        .routes(routes!(restart_server))
}

/// `{"servers": [...]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct ServerList {
    /// Every configured server with its live status.
    #[schema(value_type = Vec<schema::ServerView>)]
    servers: Vec<ServerView>,
}

/// List servers.
#[utoipa::path(get, path = "/api/v1/servers", tag = "servers",
    responses((status = 200, description = "Every server", body = ServerList)))]
async fn list_servers(Manage { st, .. }: Manage) -> ApiResult<Json<ServerList>> {
    Ok(Json(ServerList {
        servers: st.control.list_servers().await?,
    }))
}

/// Add a server.
///
/// Stored first, then started; clients connected to `/mcp` are told the tool list changed.
#[utoipa::path(post, path = "/api/v1/servers", tag = "servers",
    request_body = schema::ServerInput,
    responses(
        (status = 201, description = "Added", body = schema::ServerView),
        (status = 400, body = ApiErrorBody,
            description = "Malformed body, invalid configuration (`invalid`) or a URL the SSRF policy refuses (`ssrf_refused`)"),
        (status = 409, description = "The name is taken by a server or group", body = ApiErrorBody)))]
async fn create_server(
    Manage { st, who }: Manage,
    input: Result<Json<ServerInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ServerView>)> {
    let view = st.control.create_server(body(input)?, &who.actor()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Show a server, with its status and the tail of its stderr.
#[utoipa::path(get, path = "/api/v1/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "The server", body = schema::ServerView),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn get_server(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServerView>> {
    Ok(Json(st.control.get_server(&path(name)?).await?))
}

/// Replace a server's configuration.
///
/// A full replace: absent fields take their defaults. Secret values sent back as `********`
/// keep the stored ones. Only this server restarts.
#[utoipa::path(put, path = "/api/v1/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    request_body = schema::ServerInput,
    responses(
        (status = 200, description = "Replaced", body = schema::ServerView),
        (status = 400, description = "Malformed body, invalid configuration, a rename, or an SSRF refusal", body = ApiErrorBody),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn update_server(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
    input: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<ServerView>> {
    let name = path(name)?;
    let input = replace_input(&name, body(input)?)?;
    Ok(Json(
        st.control.update_server(&name, input, &who.actor()).await?,
    ))
}

/// A replace body may leave `name` out: the path names the server.
fn replace_input(name: &str, mut body: Value) -> ApiResult<ServerInput> {
    if let Value::Object(m) = &mut body {
        m.entry("name")
            .or_insert_with(|| Value::String(name.to_string()));
    }
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Delete a server: removed from the store, then stopped.
#[utoipa::path(delete, path = "/api/v1/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn delete_server(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    st.control.delete_server(&path(name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a server (start it).
#[utoipa::path(post, path = "/api/v1/servers/{name}/enable", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "Enabled", body = schema::ServerView),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn enable_server(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServerView>> {
    Ok(Json(
        st.control
            .set_enabled(&path(name)?, true, &who.actor())
            .await?,
    ))
}

/// Disable a server (stop it, keep its configuration).
#[utoipa::path(post, path = "/api/v1/servers/{name}/disable", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "Disabled", body = schema::ServerView),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn disable_server(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServerView>> {
    Ok(Json(
        st.control
            .set_enabled(&path(name)?, false, &who.actor())
            .await?,
    ))
}

/// Restart a server with its current configuration.
#[utoipa::path(post, path = "/api/v1/servers/{name}/restart", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "Restarted", body = schema::ServerView),
        (status = 404, description = "No such server, or it is not running", body = ApiErrorBody)))]
async fn restart_server(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServerView>> {
    Ok(Json(st.control.restart_server(&path(name)?).await?))
}
