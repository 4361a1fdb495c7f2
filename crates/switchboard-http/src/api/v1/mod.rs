//! REST API v1 under `/api/v1` (servers, tools and prompts, groups, import/export, reconcile)
//! and its OpenAPI 3.1 document.
//!
//! Every handler carries a `#[utoipa::path]` attribute and is registered with
//! `utoipa_axum::routes!`, so the router and the document are built from the same list: a
//! route cannot exist without being documented, nor be documented without existing. Every
//! route but login, refresh and the liveness route `GET /api/v1/health` requires a bearer
//! credential (the `Caller` or `Manage` extractor comes first; see `crate::auth`).

mod config;
mod credentials;
mod groups;
mod identity;
mod items;
mod logs;
mod pins;
mod schema;
mod search;
mod seed_doc;
mod servers;
mod session_list;
mod sessions;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Json, Path, Query};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, json_rejection};
pub(crate) use crate::auth::{Caller, Manage};

type ApiResult<T> = Result<T, ApiError>;

/// The `/api/v1` routes.
pub(crate) fn routes() -> Router<ApiState> {
    build().0.merge(sessions::resource_route())
}

/// The static part of the document: info, tags, the seed's routes (documented here, served by
/// `api::seed`) and the shared error schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard management API",
        description = "Manage the MCP servers behind the hub. Every route but login and refresh needs `Authorization: Bearer <credential>`: an API key (`sb_...`), an access token from `/api/v1/auth/login`, or the admin token. Admins act on another tenant with `X-Switchboard-Tenant: <name>`. \
                       Errors are `{\"status\":\"error\",\"error\":code,\"message\":...}`."
    ),
    tags(
        (name = "servers", description = "Configured MCP servers and their live status"),
        (name = "tools", description = "Per-tool settings: hide, rename, describe; pending tool-definition changes and their approval"),
        (name = "prompts", description = "Per-prompt settings: hide, rename, describe"),
        (name = "groups", description = "Named subsets of servers served at /mcp/{group}"),
        (name = "config", description = "Servers-file import/export and reconciliation"),
        (name = "sessions", description = "Proxy sessions to remote MCP servers (seed 002), health"),
        (name = "seed", description = "The seed system's compatible routes"),
        (name = "auth", description = "Log in, refresh and revoke tokens"),
        (name = "identity", description = "Tenants, users, API keys, the caller, the audit log"),
        (name = "activity", description = "The activity log of MCP operations, live, and statistics"),
        (name = "meta", description = "This document")
    ),
    paths(
        seed_doc::tools,
        seed_doc::add,
        seed_doc::remove,
        seed_doc::list,
        seed_doc::recover,
        sessions::session_resource
    ),
    components(schemas(schema::ApiErrorBody))
)]
struct ApiDoc;

/// The router and its document, from one list of handlers.
fn build() -> (Router<ApiState>, Document) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(servers::routes())
        .merge(items::routes())
        .merge(pins::routes())
        .merge(groups::routes())
        .merge(config::routes())
        .merge(identity::routes())
        .merge(credentials::routes())
        .merge(sessions::routes())
        .merge(session_list::routes())
        .merge(search::routes())
        .merge(logs::routes())
        .routes(routes!(openapi))
        .split_for_parts();
    add_security(&mut doc);
    (router, doc)
}

/// Bearer security for every operation, and the 401 every operation can answer.
fn add_security(doc: &mut Document) {
    let bearer = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An API key, an access token, or the admin token"))
            .build(),
    );
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", bearer);
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    let unauthorized = ResponseBuilder::new()
        .description("Missing, wrong, expired or revoked credential")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ApiErrorBody",
                ))))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        // Operations that set their own security (the open health route) keep it.
        for op in ops.into_iter().flatten().filter(|op| op.security.is_none()) {
            op.responses
                .responses
                .entry("401".into())
                .or_insert_with(|| unauthorized.clone().into());
        }
    }
}

/// The document as served (built once).
static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(build().1).expect("the document serialises"));

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi(_: Caller) -> Json<Value> {
    Json(DOCUMENT.clone())
}

/// The path parameter, or a 400 in the API's error shape.
fn path<T>(p: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The query string, or a 400 in the API's error shape.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The JSON body, or a 400 in the API's error shape.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(v)| v).map_err(json_rejection)
}
