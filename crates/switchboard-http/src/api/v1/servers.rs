//! Server routes: list, create, read, replace, delete, enable, disable, restart.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Json, Path};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use switchboard_control::{Actor, Principal, ServerInput, ServerView};
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

/// A server view for `who`: the stderr tail of a stdio server (which may print anything the
/// process knows) is shown to admins only.
fn shown_to(who: &Principal, mut view: ServerView) -> ServerView {
    if !who.is_admin() {
        view.stderr_tail = None;
    }
    view
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
        (status = 403, body = ApiErrorBody,
            description = "A stdio server the caller may not define (`stdio_forbidden`): only admins set a stdio command, args, env or cwd; managers use the launchers of `GET /api/v1/settings/stdio-allow`"),
        (status = 409, description = "The name is taken by a server or group", body = ApiErrorBody),
        (status = 429, description = "The tenant's stdio server limit is reached (`stdio_limit`)", body = ApiErrorBody)))]
async fn create_server(
    Manage { st, who }: Manage,
    input: Result<Json<ServerInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ServerView>)> {
    let view = st
        .control
        .create_server(body(input)?, &Actor::of(&who))
        .await?;
    Ok((StatusCode::CREATED, Json(shown_to(&who, view))))
}

/// Show a server, with its status and (for admins) the tail of its stderr.
#[utoipa::path(get, path = "/api/v1/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "The server", body = schema::ServerView),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn get_server(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServerView>> {
    let view = st.control.get_server(&path(name)?).await?;
    Ok(Json(shown_to(&who, view)))
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
        (status = 403, description = "A stdio command, args, env or cwd the caller may not set (`stdio_forbidden`)", body = ApiErrorBody),
        (status = 404, description = "No such server", body = ApiErrorBody),
        (status = 429, description = "Turning it into a stdio server would exceed the tenant's limit (`stdio_limit`)", body = ApiErrorBody)))]
async fn update_server(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
    input: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<ServerView>> {
    let name = path(name)?;
    let input = replace_input(&name, body(input)?)?;
    let view = st
        .control
        .update_server(&name, input, &Actor::of(&who))
        .await?;
    Ok(Json(shown_to(&who, view)))
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
        (status = 404, description = "No such server", body = ApiErrorBody),
        (status = 429, description = "The tenant's stdio server limit is reached (`stdio_limit`)", body = ApiErrorBody)))]
async fn enable_server(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServerView>> {
    let view = st
        .control
        .set_enabled(&path(name)?, true, &Actor::of(&who))
        .await?;
    Ok(Json(shown_to(&who, view)))
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
    let view = st
        .control
        .set_enabled(&path(name)?, false, &Actor::of(&who))
        .await?;
    Ok(Json(shown_to(&who, view)))
}

/// Restart a server with its current configuration.
#[utoipa::path(post, path = "/api/v1/servers/{name}/restart", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "Restarted", body = schema::ServerView),
        (status = 404, description = "No such server, or it is not running", body = ApiErrorBody)))]
async fn restart_server(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServerView>> {
    let view = st.control.restart_server(&path(name)?).await?;
    Ok(Json(shown_to(&who, view)))
}
