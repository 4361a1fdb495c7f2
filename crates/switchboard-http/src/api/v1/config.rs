//! Servers-file import and export, on-demand reconciliation, and the stdio settings managers
//! work within (`GET /api/v1/settings/stdio-allow`).

use std::path::Path;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Json, Query};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_control::{Actor, ReconcileReport, check_ssrf, stdio_policy};
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
        .routes(routes!(stdio_allow))
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
    /// Show secret values (headers, env, URL query values) in clear instead of
    /// `${SWITCHBOARD_SECRET_<SERVER>_<KEY>}` placeholders (admins only).
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
        (status = 400, description = "Malformed JSON, an invalid entry (`invalid`, naming it) or an SSRF refusal", body = ApiErrorBody),
        (status = 403, description = "A stdio entry the caller may not define (`stdio_forbidden`); nothing is imported", body = ApiErrorBody),
        (status = 429, description = "The new stdio entries would exceed the tenant's limit (`stdio_limit`); nothing is imported", body = ApiErrorBody)))]
async fn import(
    Manage { st, who }: Manage,
    file: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<ImportResult>> {
    let text = body(file)?.to_string();
    let file = parse_file(&text, &st.control.hub().config().separator)?;
    check_urls(&st, &file).await?;
    let r = st.control.import(&file, &Actor::of(&who)).await?;
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
        (status = 400, description = "Malformed query", body = ApiErrorBody),
        (status = 403, description = "`reveal=true` by a caller who is not an admin", body = ApiErrorBody)))]
async fn export(
    Manage { st, who }: Manage,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q)?;
    if q.reveal && !who.is_admin() {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "reveal=true (secrets in clear) is for admins; export without it shows them as ********",
        ));
    }
    Ok(Json(st.control.export(q.reveal).await?))
}

/// Make the running servers match the store now.
#[utoipa::path(post, path = "/api/v1/reconcile", tag = "config",
    responses((status = 200, description = "What changed", body = schema::ReconcileReport)))]
async fn reconcile(Manage { st, .. }: Manage) -> ApiResult<Json<ReconcileReport>> {
    Ok(Json(st.control.reconcile().await?))
}

/// `GET /api/v1/settings/stdio-allow`: what the caller may launch as a stdio server.
#[derive(Serialize, ToSchema)]
pub(super) struct StdioAllow {
    /// `true` for admins: any command, args, env and cwd.
    may_define_any: bool,
    /// The launchers (argv prefixes, `*` within one argument) managers may use.
    allow: Vec<String>,
    /// Environment variables a manager may not set on a stdio server.
    refused_env: Vec<String>,
    /// Prefixes of refused environment variables (case-insensitive).
    refused_env_prefixes: Vec<String>,
    /// Managers may not set `cwd`.
    cwd_allowed: bool,
    /// Enabled stdio servers a tenant may have (0: no limit).
    max_stdio_servers: usize,
}

/// What the caller may launch as a stdio server.
///
/// Admins may define any stdio server. Managers may add remote servers, or stdio servers
/// whose argv starts with one of `allow` (set by the operator with `--stdio-allow`), without
/// `cwd` and without the refused environment variables.
#[utoipa::path(get, path = "/api/v1/settings/stdio-allow", tag = "config",
    responses((status = 200, description = "The stdio rules for the caller", body = StdioAllow)))]
async fn stdio_allow(Manage { st, who }: Manage) -> Json<StdioAllow> {
    let allow = &st.control.config().stdio_allow;
    let admin = who.is_admin();
    Json(StdioAllow {
        may_define_any: admin,
        allow: allow.entries(),
        refused_env: stdio_policy::REFUSED_ENV
            .iter()
            .map(|s| s.to_string())
            .collect(),
        refused_env_prefixes: stdio_policy::REFUSED_ENV_PREFIXES
            .iter()
            .map(|s| format!("{s}*"))
            .collect(),
        cwd_allowed: admin,
        max_stdio_servers: st.control.hub().config().max_stdio_servers,
    })
}
