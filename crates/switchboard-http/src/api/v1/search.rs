//! `GET /api/v1/tools/search`: the smart endpoints' `search_tools` for the dashboard and
//! scripts. It searches exactly what the caller could reach over MCP: their tenant, and a
//! group they are granted (or everything, with the grant of `/mcp`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Json, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_hub::View;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::ApiErrorBody;
use super::{ApiResult, ApiState, Caller, query};
use crate::api::{ApiError, control_for};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(search_tools))
}

/// Query of `GET /api/v1/tools/search`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SearchQuery {
    /// What the tool should do, in natural language.
    q: String,
    /// How many tools to return (1 to 50, default 10).
    limit: Option<usize>,
    /// Search only this group's tools (as `/mcp/$smart/{group}` does).
    group: Option<String>,
    /// Only tools of this server.
    server: Option<String>,
}

/// One tool found.
#[derive(Serialize, ToSchema)]
pub(super) struct FoundTool {
    /// The prefixed name to call it by (`server__tool`).
    name: String,
    server: String,
    /// Relevance, higher is better, comparable within one search only: BM25F over the best
    /// hit's (or cosine plus BM25F with an embedding model), plus the usage prior.
    score: f32,
    /// The definition as `/mcp` lists it.
    #[schema(value_type = Object)]
    tool: Value,
}

/// `{"tools": [...]}`, best first.
#[derive(Serialize, ToSchema)]
pub(super) struct SearchResult {
    tools: Vec<FoundTool>,
}

/// Search tools by what they do.
#[utoipa::path(get, path = "/api/v1/tools/search", tag = "tools",
    params(SearchQuery),
    responses(
        (status = 200, description = "Tools found, best first", body = SearchResult),
        (status = 400, description = "Empty or overlong query, or a limit outside 1..=50", body = ApiErrorBody),
        (status = 404, description = "No group of that name the caller may use", body = ApiErrorBody)))]
async fn search_tools(
    State(st): State<ApiState>,
    caller: Caller,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<SearchResult>> {
    let q = query(q)?;
    let hub = control_for(&st, &caller)?.hub().clone();
    let who = &caller.0;
    let view = match &q.group {
        Some(g) => {
            let segment = format!("{}/{g}", switchboard_hub::SMART_SEGMENT);
            match hub.resolve_view(Some(&segment)) {
                Some(v) if who.may_use(g) => v,
                _ => {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        format!("no group named {g:?}"),
                    ));
                }
            }
        }
        None if who.sees_everything() => View::Smart(None),
        None => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this credential may search only some groups; pass group=<name>",
            ));
        }
    };
    let limit = q.limit.unwrap_or(switchboard_hub::SMART_DEFAULT_LIMIT);
    let found = hub
        .search_tools(&view, &q.q, limit, q.server.as_deref())
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(SearchResult {
        tools: found
            .into_iter()
            .map(|f| FoundTool {
                name: f.name,
                server: f.server,
                score: f.score,
                tool: f.def,
            })
            .collect(),
    }))
}
