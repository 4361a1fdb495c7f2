//! Servers-file import and export, and on-demand reconciliation.

use std::path::Path;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_control::{ReconcileReport, check_ssrf};
use switchboard_core::config::{ServersFile, TransportSpec, VarSource, parse_servers_file};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{self, ApiErrorBody};
use super::{ApiResult, ApiState, Manage, body, query};
use crate::api::ApiError;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(export))
        .routes(routes!(reconcile))
}

/// What an import did, per entry.
#[derive(Serialize, ToSchema)]
pub(super) struct ImportResult {
    /// The format the file was recognised as: `mcpServers` (Claude Desktop, Cursor,
    /// Windsurf, Cline), `vscode` or `mcphub`.
    format: String,
    /// Names of the servers added.
    added: Vec<String>,
    /// Names that were taken: the existing servers are left as they are.
    kept: Vec<String>,
    /// Groups added.
    groups_added: Vec<String>,
    /// Per entry: what was kept, converted or dropped on the way from the file's format.
    #[schema(value_type = Vec<Object>)]
    notes: Vec<switchboard_core::formats::Note>,
}

/// Query of `GET /api/v1/export`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    /// Show secret values (headers, env) in clear instead of
    /// `${SWITCHBOARD_SECRET_<SERVER>_<KEY>}` placeholders.
    #[serde(default)]
    reveal: bool,
}

/// Takes every string as it is: a `${VAR}` in an uploaded file names a variable of the
/// client's machine, never of the hub's environment.
struct Literal;

impl VarSource for Literal {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn literal(&self) -> bool {
        true
    }
}

fn parse_file(text: &str, separator: &str) -> ApiResult<ServersFile> {
    parse_servers_file(Path::new("request body"), text, &Literal, separator).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid",
            e.to_string(),
        )
    })
}

/// Every remote URL in `file` must pass the SSRF policy, as for a single add.
async fn check_urls(st: &ApiState, file: &ServersFile) -> ApiResult<()> {
    for spec in file.servers.values() {
        if let TransportSpec::StreamableHttp { url, .. } | TransportSpec::Sse { url, .. } =
            &spec.transport
        {
            check_ssrf(&st.control.config().ssrf, url).await?;
        }
    }
    Ok(())
}

/// Import a servers file.
///
/// Takes the servers file, Claude Desktop / Cursor / Windsurf / Cline `mcpServers` files,
/// VS Code's `servers` + `inputs` and MCPHub's `mcp_settings.json`. Validated whole before
/// anything is stored; entries whose name is free are added and started (owned by the API),
/// the others are left as they are. A literal `********` (the export mask) is refused.
#[utoipa::path(post, path = "/api/v1/import", tag = "config",
    request_body = schema::ImportFile,
    responses(
        (status = 200, description = "Imported", body = ImportResult),
        (status = 400, description = "Malformed JSON, an invalid entry (`invalid`, naming it) or an SSRF refusal", body = ApiErrorBody)))]
async fn import(
    Manage { st, who }: Manage,
    file: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<ImportResult>> {
    let text = body(file)?.to_string();
    let file = parse_file(&text, &st.control.hub().config().separator)?;
    check_urls(&st, &file).await?;
    let r = st.control.import(&file, &who.actor()).await?;
    Ok(Json(ImportResult {
        format: r.format,
        added: r.added,
        kept: r.kept,
        groups_added: r.groups_added,
        notes: r.notes,
    }))
}

/// Export the store as a servers file.
#[utoipa::path(get, path = "/api/v1/export", tag = "config",
    params(ExportQuery),
    responses(
        (status = 200, description = "The servers file; secrets masked unless `reveal=true`", body = schema::ServersFile),
        (status = 400, description = "Malformed query", body = ApiErrorBody)))]
async fn export(
    Manage { st, .. }: Manage,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q)?;
    Ok(Json(st.control.export(q.reveal).await?))
}

/// Make the running servers match the store now.
#[utoipa::path(post, path = "/api/v1/reconcile", tag = "config",
    responses((status = 200, description = "What changed", body = schema::ReconcileReport)))]
async fn reconcile(Manage { st, .. }: Manage) -> ApiResult<Json<ReconcileReport>> {
    Ok(Json(st.control.reconcile().await?))
}
