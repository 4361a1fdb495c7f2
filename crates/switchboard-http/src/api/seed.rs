//! The seed system's routes, with its query parameters, JSON shapes, status codes and orderings.
//!
//! Main service: `GET /api/mcp/tools/`, `POST /api/mcp/add`, `DELETE /api/mcp/`,
//! `GET /api/mcp/list`, `GET /api/mcp/recover`. MCP service: `GET /healthcheck`,
//! `GET /list-remote-proxies`, `POST /add-remote-proxies`, `DELETE /remote-proxies`.
//! In a split deployment the main service reaches the MCP service over HTTP, as the seed's
//! sequence diagrams show; in one process it calls the same operations directly.
//!
//! The MCP-service routes follow the MCP service's policy, as `/mcp` does: with a credential,
//! an admin or a manager of the tenant; without one, where the service is open
//! ([`McpAuth::Optional`], which `serve` allows on loopback only), the anonymous loopback
//! caller, who manages the default tenant's remote proxies through these four routes only
//! (probe a URL, list, mount and unmount remote servers; SSRF-checked, never a stdio server).
//! With `--mcp-auth required` they answer 401 without a credential.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_control::{
    ControlError, check_ssrf, masked_url, now_ms, probe, record_from_spec, record_url, remote_spec,
};
use switchboard_core::url_secrets::percent_encode;

use super::{ApiError, ApiState, McpServiceClient, json_rejection};
use crate::access::McpAuth;
use crate::auth::{Manage, bearer};

/// The seed's main-service routes.
pub(crate) fn main_routes() -> Router<ApiState> {
    Router::new()
        .route("/api/mcp/tools/", get(tools))
        .route("/api/mcp/tools", get(tools))
        .route("/api/mcp/add", post(add))
        .route("/api/mcp/", delete(remove))
        .route("/api/mcp", delete(remove))
        .route("/api/mcp/list", get(list))
        .route("/api/mcp/recover", get(recover))
}

/// The seed's MCP-service (internal) routes.
pub(crate) fn mcp_routes() -> Router<ApiState> {
    Router::new()
        .route("/healthcheck", get(healthcheck))
        .route("/list-remote-proxies", get(list_proxies))
        .route("/add-remote-proxies", post(add_proxy))
        .route("/remote-proxies", delete(remove_proxy))
}

/// Name the audit log gives the anonymous loopback caller of the MCP-service routes.
pub(crate) const LOOPBACK_CALLER: &str = "anonymous (loopback)";

/// Middleware over the MCP-service routes: a request without a credential, on a service open
/// to callers without one, acts as the anonymous loopback caller (a manager of the default
/// tenant for these routes). Any credential sent is checked as usual.
pub(crate) async fn loopback_caller(
    axum::extract::State(auth): axum::extract::State<McpAuth>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if auth == McpAuth::Optional && bearer(req.headers()).is_none() {
        let mut who = switchboard_control::Principal::anonymous();
        who.name = LOOPBACK_CALLER.into();
        who.role = switchboard_control::model::Role::Manager;
        req.extensions_mut().insert(who);
    }
    next.run(req).await
}

#[derive(Deserialize)]
pub(crate) struct ServiceQuery {
    service_name: Option<String>,
    mcp_url: Option<String>,
    transport: Option<String>,
}

fn required(v: Option<String>, name: &str) -> Result<String, ApiError> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {name}")))
}

fn success(message: &str) -> Json<Value> {
    Json(json!({"status": "success", "message": message}))
}

/// `GET /api/mcp/tools/?service_name&mcp_url`: asks the remote server directly.
async fn tools(
    Manage { st, .. }: Manage,
    Query(q): Query<ServiceQuery>,
) -> Result<Json<Value>, ApiError> {
    let url = required(q.mcp_url, "mcp_url")?;
    let name = q.service_name.unwrap_or_else(|| "remote".into());
    let result = async {
        check_ssrf(&st.control.config().ssrf, &url).await?;
        let spec = remote_spec(&name, &url, q.transport.as_deref(), BTreeMap::new())?;
        probe(
            &spec,
            st.control.client(),
            st.control.config().probe_timeout,
        )
        .await
    };
    match result.await {
        Ok(p) => Ok(Json(json!({"status": "success", "tools": p.tools}))),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "tools_failed",
            e.to_string(),
        )),
    }
}

/// `POST /api/mcp/add?mcp_url&service_name`: 409 when the name is taken, validate the
/// connection, persist only after success.
async fn add(
    Manage { st, .. }: Manage,
    Query(q): Query<ServiceQuery>,
) -> Result<Json<Value>, ApiError> {
    let url = required(q.mcp_url, "mcp_url")?;
    let name = required(q.service_name, "service_name")?;
    match &st.mcp_service {
        None => {
            st.control
                .add_remote(&name, &url, q.transport.as_deref(), "admin")
                .await?
        }
        Some(mcp) => add_via_mcp_service(&st, mcp, &name, &url, q.transport.as_deref()).await?,
    }
    Ok(success("Successfully added"))
}

async fn add_via_mcp_service(
    st: &ApiState,
    mcp: &McpServiceClient,
    name: &str,
    url: &str,
    transport: Option<&str>,
) -> Result<(), ApiError> {
    let control = &st.control;
    let tenant = &control.config().tenant;
    if control.stored_record(name).await?.is_some() {
        return Err(ControlError::Conflict(format!("service name {name:?} already exists")).into());
    }
    let spec = remote_spec(name, url, transport, BTreeMap::new())?;
    check_ssrf(&control.config().ssrf, url).await?;
    let transport = spec.transport.kind();
    let body = json!({"service_name": name, "mcp_url": url, "transport": transport});
    mcp.call(reqwest::Method::POST, "/add-remote-proxies", Some(body))
        .await?;
    let record = record_from_spec(tenant, &spec, "admin", now_ms());
    if let Err(e) = control.insert_record(&record).await {
        // Persisting failed: take the mount back so nothing is half-registered.
        let _ = mcp
            .call(
                reqwest::Method::DELETE,
                &format!("/remote-proxies?service_name={}", percent_encode(name)),
                None,
            )
            .await;
        return Err(e.into());
    }
    Ok(())
}

/// `DELETE /api/mcp/?service_name&mcp_url`: delete the record first, then unmount.
async fn remove(
    Manage { st, .. }: Manage,
    Query(q): Query<ServiceQuery>,
) -> Result<Json<Value>, ApiError> {
    let name = required(q.service_name, "service_name")?;
    let record = st.control.stored_record(&name).await?;
    let matches = record.as_ref().is_some_and(|r| {
        q.mcp_url
            .as_deref()
            .is_none_or(|u| record_url(r) == Some(u))
    });
    if !matches || !st.control.delete_record(&name).await? {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_recorded",
            format!("server not record: {name:?}"),
        ));
    }
    let unmounted = match &st.mcp_service {
        None => st.control.unmount(&name).await.is_ok(),
        Some(mcp) => {
            let path = format!("/remote-proxies?service_name={}", percent_encode(&name));
            mcp.call(reqwest::Method::DELETE, &path, None).await.is_ok()
        }
    };
    Ok(Json(
        json!({"status": "success", "message": "Successfully deleted", "unmounted": unmounted}),
    ))
}

/// `GET /api/mcp/list`: the tenant's recorded remote servers, with whether each is running.
async fn list(Manage { st, .. }: Manage) -> Result<Json<Value>, ApiError> {
    let records = st.control.stored_records().await?;
    let states = mounted_states(&st).await;
    let list: Vec<Value> = records
        .iter()
        .filter_map(|r| {
            let url = record_url(r)?;
            let running = states.get(&r.name).is_some_and(|s| s == "ready");
            Some(json!({"remote_mcp_server_name": r.name, "remote_mcp_server": masked_url(url), "status": running}))
        })
        .collect();
    Ok(Json(
        json!({"status": "success", "remote_mcp_server_list": list}),
    ))
}

/// Name -> state of every mounted server, from this process or from the MCP service.
async fn mounted_states(st: &ApiState) -> BTreeMap<String, String> {
    match &st.mcp_service {
        None => st
            .control
            .hub()
            .servers()
            .into_iter()
            .map(|s| (s.name, s.state.to_string()))
            .collect(),
        Some(mcp) => {
            let listed = mcp
                .call(reqwest::Method::GET, "/list-remote-proxies", None)
                .await
                .unwrap_or(Value::Null);
            let proxies = listed["proxies"].as_array().cloned().unwrap_or_default();
            proxies
                .iter()
                .filter_map(|p| {
                    Some((
                        p["service_name"].as_str()?.to_string(),
                        p["state"].as_str()?.to_string(),
                    ))
                })
                .collect()
        }
    }
}

/// `GET /api/mcp/recover`: mount what is recorded but not running; fail if any fails, and
/// report every server's outcome either way.
async fn recover(Manage { st, .. }: Manage) -> Result<Response, ApiError> {
    let results = match &st.mcp_service {
        None => st.control.recover().await?,
        Some(mcp) => recover_via_mcp_service(&st, mcp).await?,
    };
    let failed = results.iter().any(|r| r["status"] != "success");
    let (status, message) = if failed {
        (
            StatusCode::BAD_REQUEST,
            "Some servers could not be recovered",
        )
    } else {
        (StatusCode::OK, "Successfully recovered")
    };
    let body = json!({"status": if failed { "error" } else { "success" }, "message": message, "results": results});
    Ok((status, Json(body)).into_response())
}

async fn recover_via_mcp_service(
    st: &ApiState,
    mcp: &McpServiceClient,
) -> Result<Vec<Value>, ApiError> {
    let records = st.control.stored_records().await?;
    let listed = mcp
        .call(reqwest::Method::GET, "/list-remote-proxies", None)
        .await?;
    let mounted: Vec<&str> = listed["proxies"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["service_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut results = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.enabled && !mounted.contains(&r.name.as_str()))
    {
        let Some(url) = record_url(r) else { continue };
        let body = json!({"service_name": r.name, "mcp_url": url, "transport": r.transport.kind()});
        let outcome = match mcp
            .call(reqwest::Method::POST, "/add-remote-proxies", Some(body))
            .await
        {
            Ok(_) => json!({"service_name": r.name, "status": "success"}),
            Err(e) => json!({"service_name": r.name, "status": "error", "message": e.message}),
        };
        results.push(outcome);
    }
    Ok(results)
}

#[derive(Deserialize)]
pub(crate) struct UrlQuery {
    mcp_url: Option<String>,
    transport: Option<String>,
}

/// `GET /healthcheck?mcp_url`: can the hub reach this server?
async fn healthcheck(
    Manage { st, .. }: Manage,
    Query(q): Query<UrlQuery>,
) -> Result<Response, ApiError> {
    let url = required(q.mcp_url, "mcp_url")?;
    let result = async {
        check_ssrf(&st.control.config().ssrf, &url).await?;
        let spec = remote_spec("healthcheck", &url, q.transport.as_deref(), BTreeMap::new())?;
        probe(
            &spec,
            st.control.client(),
            st.control.config().probe_timeout,
        )
        .await
    };
    Ok(match result.await {
        Ok(p) => Json(json!({"status": "success", "connected": true, "message": "connected", "server_info": p.server_info, "protocol_version": p.protocol_version})).into_response(),
        Err(ControlError::Unreachable(m)) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "error", "connected": false, "message": m}))).into_response(),
        Err(e) => return Err(e.into()),
    })
}

/// `GET /list-remote-proxies`: what is mounted now.
async fn list_proxies(Manage { st, .. }: Manage) -> Json<Value> {
    let hub = st.control.hub();
    let proxies: Vec<Value> = hub
        .servers()
        .into_iter()
        .filter_map(|s| {
            let up = hub.upstream(&s.name)?;
            let url = match &up.spec().transport {
                switchboard_core::config::TransportSpec::StreamableHttp { url, .. } | switchboard_core::config::TransportSpec::Sse { url, .. } => url.clone(),
                switchboard_core::config::TransportSpec::Stdio { .. } => return None,
            };
            Some(json!({"service_name": s.name, "mcp_url": masked_url(&url), "transport": s.transport, "state": s.state, "tools": s.tools}))
        })
        .collect();
    Json(json!({"status": "success", "proxies": proxies}))
}

#[derive(Deserialize)]
pub(crate) struct AddProxy {
    service_name: String,
    mcp_url: String,
    #[serde(default)]
    transport: Option<String>,
}

/// `POST /add-remote-proxies {service_name, mcp_url, transport}`: validate, then mount.
async fn add_proxy(
    Manage { st, .. }: Manage,
    body: Result<Json<AddProxy>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(json_rejection)?;
    st.control
        .mount(&b.service_name, &b.mcp_url, b.transport.as_deref())
        .await?;
    Ok(success(&format!(
        "Successfully added proxy {}",
        b.service_name
    )))
}

#[derive(Deserialize)]
pub(crate) struct NameQuery {
    service_name: Option<String>,
}

/// `DELETE /remote-proxies?service_name`: unmount.
async fn remove_proxy(
    Manage { st, .. }: Manage,
    Query(q): Query<NameQuery>,
) -> Result<Json<Value>, ApiError> {
    let name = required(q.service_name, "service_name")?;
    // A remote proxy only: the servers this route family mounts.
    let stdio = st.control.hub().upstream(&name).is_some_and(|u| {
        matches!(
            u.spec().transport,
            switchboard_core::config::TransportSpec::Stdio { .. }
        )
    });
    if stdio {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no remote proxy named {name:?} ({name:?} is a stdio server)"),
        ));
    }
    st.control.unmount(&name).await?;
    Ok(success(&format!("Successfully removed proxy {name}")))
}

impl McpServiceClient {
    /// Calls the MCP service's internal API; a non-2xx answer becomes an `ApiError` with the
    /// same status and the MCP service's message.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mcp_service_unreachable",
                format!("the MCP service at {} is unreachable: {e}", self.base),
            )
        })?;
        let status = resp.status();
        let value: Value = resp
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let message = value["message"]
            .as_str()
            .unwrap_or("the MCP service refused the request")
            .to_string();
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        Err(ApiError::new(status, "mcp_service", message))
    }
}
