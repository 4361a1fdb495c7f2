//! Group routes: list, create, read, replace, delete.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Json, Path};
use axum::http::StatusCode;
use serde::Serialize;
use switchboard_control::GroupInput;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{self, ApiErrorBody};
use super::{ApiResult, ApiState, Manage, body, path};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
}

/// `{"groups": [...]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct GroupList {
    /// Every group.
    #[schema(value_type = Vec<schema::GroupInput>)]
    groups: Vec<GroupInput>,
}

/// List groups.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, description = "Every group", body = GroupList)))]
async fn list_groups(Manage { st, .. }: Manage) -> ApiResult<Json<GroupList>> {
    Ok(Json(GroupList {
        groups: st.control.list_groups().await?,
    }))
}

/// Create a group, served at `/mcp/{name}`.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups",
    request_body = schema::GroupInput,
    responses(
        (status = 201, description = "Created", body = schema::GroupInput),
        (status = 400, description = "Malformed body, invalid name or unknown member", body = ApiErrorBody),
        (status = 409, description = "The name is taken by a server or group", body = ApiErrorBody)))]
async fn create_group(
    Manage { st, .. }: Manage,
    input: Result<Json<GroupInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<GroupInput>)> {
    Ok((
        StatusCode::CREATED,
        Json(st.control.create_group(body(input)?).await?),
    ))
}

/// Show a group.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses(
        (status = 200, description = "The group", body = schema::GroupInput),
        (status = 404, description = "No such group", body = ApiErrorBody)))]
async fn get_group(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<GroupInput>> {
    Ok(Json(st.control.get_group(&path(name)?).await?))
}

/// Replace a group's members and tool filter.
#[utoipa::path(put, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    request_body = schema::GroupInput,
    responses(
        (status = 200, description = "Replaced", body = schema::GroupInput),
        (status = 400, description = "Malformed body, a rename or unknown member", body = ApiErrorBody),
        (status = 404, description = "No such group", body = ApiErrorBody)))]
async fn update_group(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
    input: Result<Json<GroupInput>, JsonRejection>,
) -> ApiResult<Json<GroupInput>> {
    let name = path(name)?;
    Ok(Json(st.control.update_group(&name, body(input)?).await?))
}

/// Delete a group (its servers stay).
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group", body = ApiErrorBody)))]
async fn delete_group(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    st.control.delete_group(&path(name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
