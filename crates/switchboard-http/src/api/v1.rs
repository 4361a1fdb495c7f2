//! REST API v1 under `/api/v1` (servers, tools and prompts, groups) and its OpenAPI document.

use axum::Router;

use super::ApiState;

/// The `/api/v1` routes.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
}
