//! Tool-definition pinning routes: a server's pending tool changes with a field-level diff,
//! and their approval (which re-pins the tools and serves hidden ones again).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Json, Path};
use switchboard_control::{ApproveInput, ToolChanges};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{self, ApiErrorBody};
use super::{ApiResult, ApiState, Manage, path};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_changes))
        .routes(routes!(approve_changes))
}

/// A server's tools whose definition differs from the approved one (changed, added after
/// approval, or removed), each with the approved and current definitions and the fields that
/// differ. Under `--on-tool-change hide` the changed and new ones are hidden from `/mcp`.
#[utoipa::path(get, path = "/api/v1/servers/{name}/tools/changes", tag = "tools",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "Pending changes (empty when every tool matches its pin)", body = schema::ToolChanges),
        (status = 404, description = "No such server", body = ApiErrorBody)))]
async fn list_changes(
    Manage { st, .. }: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ToolChanges>> {
    Ok(Json(st.control.tool_changes(&path(name)?).await?))
}

/// Approve pending tool changes: the named tools (all pending ones when `tools` is absent or
/// there is no body) are pinned to their current definitions, hidden ones are served again and
/// clients get `notifications/tools/list_changed`.
#[utoipa::path(post, path = "/api/v1/servers/{name}/tools/changes/approve", tag = "tools",
    params(("name" = String, Path, description = "Server name")),
    request_body(content = schema::ApproveInput, description = "Optional; absent approves every pending change"),
    responses(
        (status = 200, description = "Approved; the changes still pending", body = schema::ToolChanges),
        (status = 400, description = "Malformed body, or a named tool has no pending change (`invalid`)", body = ApiErrorBody),
        (status = 404, description = "No such server", body = ApiErrorBody),
        (status = 409, description = "The server is not connected, so its current tools are unknown", body = ApiErrorBody)))]
async fn approve_changes(
    Manage { st, who }: Manage,
    name: Result<Path<String>, PathRejection>,
    input: Result<Json<ApproveInput>, JsonRejection>,
) -> ApiResult<Json<ToolChanges>> {
    let name = path(name)?;
    let tools = match input {
        Ok(Json(i)) => i.tools,
        // No body (or no JSON content type): approve everything pending.
        Err(JsonRejection::MissingJsonContentType(_)) => None,
        Err(e) => return Err(super::json_rejection(e)),
    };
    Ok(Json(
        st.control
            .approve_tool_changes(&name, tools, &who.actor())
            .await?,
    ))
}
