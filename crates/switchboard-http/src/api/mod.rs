//! The management side of the HTTP services: admin-token authentication, the error shape
//! every management route uses, and the routers (REST API v1 and the seed's routes).

pub(crate) mod audit;
pub(crate) mod metrics;
pub(crate) mod seed;
pub(crate) mod v1;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;
use switchboard_control::{ControlError, ControlPlane, Identity, Tenants};

pub use crate::auth::AdminAuth;

/// What management routes share.
#[derive(Clone)]
pub struct ApiState {
    /// The control plane (store + hub) a request acts on: the default tenant's, replaced by
    /// the target tenant's in the `Manage` extractor.
    pub control: Arc<ControlPlane>,
    /// Every tenant's control plane.
    pub tenants: Arc<Tenants>,
    /// Credentials and the audit log.
    pub identity: Arc<Identity>,
    /// The admin credential.
    pub auth: Arc<AdminAuth>,
    /// In split mode (`--role main`), the MCP service the main service calls.
    pub mcp_service: Option<McpServiceClient>,
    /// The activity log's live feed (`None`: no activity log in this process).
    pub activity: Option<Arc<switchboard_control::activity::ActivityLog>>,
    /// `/metrics` needs no credential.
    pub metrics_public: bool,
}

impl ApiState {
    /// State for one default-tenant control plane: further tenants get hubs with the same
    /// settings, identity uses the plane's store. For embedding and tests.
    pub async fn with_defaults(
        control: Arc<ControlPlane>,
        auth: AdminAuth,
    ) -> Result<ApiState, switchboard_control::model::StoreError> {
        let (tenants, identity) = switchboard_control::embedded(control.clone()).await?;
        Ok(ApiState {
            control,
            tenants,
            identity,
            auth: Arc::new(auth),
            mcp_service: None,
            activity: None,
            metrics_public: false,
        })
    }
}

/// The main service's client for the MCP service's internal API (split deployments).
#[derive(Clone)]
pub struct McpServiceClient {
    /// Base URL, e.g. `http://127.0.0.1:5011`.
    pub base: String,
    /// The admin token to present.
    pub token: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

/// An error from a management route: `{"status":"error","error":code,"message":...}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with code `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(message = "Management request failed.", status = %self.status, error = %self.message);
        }
        let body = json!({"status": "error", "error": self.code, "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            ControlError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ControlError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", m),
            ControlError::Forbidden(m) => ApiError::new(StatusCode::BAD_REQUEST, "ssrf_refused", m),
            ControlError::Unreachable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unreachable", m)
            }
            ControlError::Limit(m) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "session_limit", m)
            }
            ControlError::Timeout(m) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", m)
            }
            ControlError::StdioForbidden(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "stdio_forbidden", m)
            }
            ControlError::StdioLimit(m) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "stdio_limit", m)
            }
            ControlError::Denied(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            ControlError::Throttled(m) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", m)
            }
            ControlError::Internal(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
            ControlError::Store(e) => ApiError::from_store(e),
        }
    }
}

impl ApiError {
    /// A store failure: 503 `store_unavailable` when the database cannot be reached (the
    /// request may succeed later), else 500 `store`.
    pub fn from_store(e: switchboard_control::model::StoreError) -> Self {
        match e {
            switchboard_control::model::StoreError::Unavailable(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("the database is unavailable, try again later: {m}"),
            ),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
        }
    }
}

/// The control plane that serves the caller's tenant. Every handler that needs one goes
/// through here, so per-tenant control planes change this function only.
pub(crate) fn control_for(
    state: &ApiState,
    caller: &crate::auth::Caller,
) -> Result<Arc<ControlPlane>, ApiError> {
    crate::auth::plane(state, &caller.0.tenant)
}

/// A JSON body that failed to parse is the client's fault: 400 with the parser's words.
pub(crate) fn json_rejection(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::bad_request(format!("invalid JSON body: {}", e.body_text()))
}
