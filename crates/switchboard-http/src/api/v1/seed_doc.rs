//! OpenAPI descriptions of the seed's main-service routes (`/api/mcp/*`), which `api::seed`
//! serves. The functions below are never called: they carry the `#[utoipa::path]` attributes
//! for routes whose handlers keep the seed's exact shapes in another module.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::schema::ApiErrorBody;

/// Query of the seed routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct ServiceQuery {
    /// Server name.
    service_name: Option<String>,
    /// Remote server URL (must pass the SSRF policy).
    mcp_url: Option<String>,
    /// `streamable-http` (default) or `sse`.
    transport: Option<String>,
}

/// `{"status":"success","message":...}`.
#[derive(Serialize, ToSchema)]
struct SeedSuccess {
    #[schema(example = "success")]
    status: String,
    message: String,
}

/// The remote server's tools, asked directly.
#[derive(Serialize, ToSchema)]
struct SeedTools {
    #[schema(example = "success")]
    status: String,
    /// The tools as the server lists them.
    tools: Vec<serde_json::Value>,
}

/// The delete answer.
#[derive(Serialize, ToSchema)]
struct SeedDeleted {
    #[schema(example = "success")]
    status: String,
    message: String,
    /// Whether the running server was stopped too.
    unmounted: bool,
}

/// One recorded remote server.
#[derive(Serialize, ToSchema)]
struct SeedServer {
    remote_mcp_server_name: String,
    remote_mcp_server: String,
    /// True when it is running and ready.
    status: bool,
}

/// The recorded remote servers.
#[derive(Serialize, ToSchema)]
struct SeedList {
    #[schema(example = "success")]
    status: String,
    remote_mcp_server_list: Vec<SeedServer>,
}

/// One server's recovery outcome.
#[derive(Serialize, ToSchema)]
struct SeedOutcome {
    service_name: String,
    /// `success` or `error`.
    status: String,
    /// Why it failed.
    message: Option<String>,
}

/// The recovery report.
#[derive(Serialize, ToSchema)]
struct SeedRecover {
    /// `success` or `error`.
    status: String,
    message: String,
    results: Vec<SeedOutcome>,
}

/// Ask a remote server for its tools without adding it.
#[utoipa::path(get, path = "/api/mcp/tools/", tag = "seed", operation_id = "seed_tools", params(ServiceQuery),
    responses(
        (status = 200, description = "The server's tools", body = SeedTools),
        (status = 400, description = "Missing `mcp_url`, refused or unreachable URL (`tools_failed`)", body = ApiErrorBody)))]
pub(super) async fn tools() {}

/// Add a remote server: refused when the name is taken, probed, then stored and started.
#[utoipa::path(post, path = "/api/mcp/add", tag = "seed", operation_id = "seed_add", params(ServiceQuery),
    responses(
        (status = 200, description = "Added", body = SeedSuccess),
        (status = 400, description = "Missing parameter, invalid name or SSRF refusal", body = ApiErrorBody),
        (status = 409, description = "The name is taken", body = ApiErrorBody),
        (status = 503, description = "The server could not be reached", body = ApiErrorBody)))]
pub(super) async fn add() {}

/// Delete a recorded remote server (`mcp_url`, when given, must match), then stop it.
#[utoipa::path(delete, path = "/api/mcp/", tag = "seed", operation_id = "seed_delete", params(ServiceQuery),
    responses(
        (status = 200, description = "Deleted", body = SeedDeleted),
        (status = 400, description = "Missing `service_name` or no such record (`not_recorded`)", body = ApiErrorBody)))]
pub(super) async fn remove() {}

/// The recorded remote servers and whether each runs.
#[utoipa::path(get, path = "/api/mcp/list", tag = "seed", operation_id = "seed_list",
    responses((status = 200, description = "The list", body = SeedList)))]
pub(super) async fn list() {}

/// Start every recorded server that is not running.
#[utoipa::path(get, path = "/api/mcp/recover", tag = "seed", operation_id = "seed_recover",
    responses(
        (status = 200, description = "All recovered", body = SeedRecover),
        (status = 400, description = "Some failed (each outcome listed)", body = SeedRecover)))]
pub(super) async fn recover() {}
