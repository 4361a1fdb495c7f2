//! Tool and prompt routes: list a server's items with their settings, patch one, reset one.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Json, Path};
use axum::http::StatusCode;
use serde::Serialize;
use switchboard_control::model::ItemKind;
use switchboard_control::{ItemPatch, ItemView};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{self, ApiErrorBody};
use super::{ApiResult, ApiState, Manage, body, path};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_tools))
        .routes(routes!(patch_tool, reset_tool))
        .routes(routes!(list_prompts))
        .routes(routes!(patch_prompt, reset_prompt))
}

/// `{"tools": [...]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct ToolList {
    /// The server's tools, hidden ones included.
    #[schema(value_type = Vec<schema::ItemView>)]
    tools: Vec<ItemView>,
}

/// `{"prompts": [...]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct PromptList {
    /// The server's prompts, hidden ones included.
    #[schema(value_type = Vec<schema::ItemView>)]
    prompts: Vec<ItemView>,
}

type ItemPath = Result<Path<(String, String)>, PathRejection>;

async fn set(
    st: &ApiState,
    kind: ItemKind,
    p: ItemPath,
    patch: Result<Json<ItemPatch>, JsonRejection>,
) -> ApiResult<Json<ItemView>> {
    let (server, item) = path(p)?;
    Ok(Json(
        st.control
            .set_item(&server, kind, &item, body(patch)?)
            .await?,
    ))
}

async fn reset(st: &ApiState, kind: ItemKind, p: ItemPath) -> ApiResult<StatusCode> {
    let (server, item) = path(p)?;
    st.control.reset_item(&server, kind, &item).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List a server's tools with their settings.
#[utoipa::path(get, path = "/api/v1/servers/{name}/tools", tag = "tools",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "The tools (empty while the server is not running)", body = ToolList),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn list_tools(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ToolList>> {
    Ok(Json(ToolList {
        tools: st.control.list_items(&path(name)?, ItemKind::Tool).await?,
    }))
}

/// Hide, show, rename or re-describe one tool on `/mcp`.
#[utoipa::path(patch, path = "/api/v1/servers/{name}/tools/{tool}", tag = "tools",
    params(
        ("name" = String, Path, description = "Server name"),
        ("tool" = String, Path, description = "Tool name as the server spells it")),
    request_body = schema::ItemPatch,
    responses(
        (status = 200, description = "The tool with its new settings", body = schema::ItemView),
        (status = 400, description = "Malformed body or invalid rename", body = ApiErrorBody),
        (status = 404, description = "No such server or tool", body = ApiErrorBody)))]
async fn patch_tool(
    Manage { st, .. }: Manage,
    p: ItemPath,
    patch: Result<Json<ItemPatch>, JsonRejection>,
) -> ApiResult<Json<ItemView>> {
    set(&st, ItemKind::Tool, p, patch).await
}

/// Drop one tool's settings (back to the server's own name and description, visible).
#[utoipa::path(delete, path = "/api/v1/servers/{name}/tools/{tool}", tag = "tools",
    params(
        ("name" = String, Path, description = "Server name"),
        ("tool" = String, Path, description = "Tool name as the server spells it")),
    responses(
        (status = 204, description = "Reset"),
        (status = 404, description = "The tool has no settings", body = ApiErrorBody)))]
async fn reset_tool(Manage { st, .. }: Manage, p: ItemPath) -> ApiResult<StatusCode> {
    reset(&st, ItemKind::Tool, p).await
}

/// List a server's prompts with their settings.
#[utoipa::path(get, path = "/api/v1/servers/{name}/prompts", tag = "prompts",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "The prompts (empty while the server is not running)", body = PromptList),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn list_prompts(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<PromptList>> {
    Ok(Json(PromptList {
        prompts: st
            .control
            .list_items(&path(name)?, ItemKind::Prompt)
            .await?,
    }))
}

/// Hide, show, rename or re-describe one prompt on `/mcp`.
#[utoipa::path(patch, path = "/api/v1/servers/{name}/prompts/{prompt}", tag = "prompts",
    params(
        ("name" = String, Path, description = "Server name"),
        ("prompt" = String, Path, description = "Prompt name as the server spells it")),
    request_body = schema::ItemPatch,
    responses(
        (status = 200, description = "The prompt with its new settings", body = schema::ItemView),
        (status = 400, description = "Malformed body or invalid rename", body = ApiErrorBody),
        (status = 404, description = "No such server or prompt", body = ApiErrorBody)))]
async fn patch_prompt(
    Manage { st, .. }: Manage,
    p: ItemPath,
    patch: Result<Json<ItemPatch>, JsonRejection>,
) -> ApiResult<Json<ItemView>> {
    set(&st, ItemKind::Prompt, p, patch).await
}

/// Drop one prompt's settings.
#[utoipa::path(delete, path = "/api/v1/servers/{name}/prompts/{prompt}", tag = "prompts",
    params(
        ("name" = String, Path, description = "Server name"),
        ("prompt" = String, Path, description = "Prompt name as the server spells it")),
    responses(
        (status = 204, description = "Reset"),
        (status = 404, description = "The prompt has no settings", body = ApiErrorBody)))]
async fn reset_prompt(Manage { st, .. }: Manage, p: ItemPath) -> ApiResult<StatusCode> {
    reset(&st, ItemKind::Prompt, p).await
}
