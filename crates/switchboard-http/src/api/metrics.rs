//! `GET /metrics`: the Prometheus text format. On the main service it needs the admin token,
//! an admin, or a credential with the `metrics` grant, unless `--metrics-public`; on the
//! listener of its own (`--metrics-addr`) it needs nothing.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;
use crate::auth::{bearer, identify, unauthorized};

/// The grant that lets a non-admin credential read `/metrics`.
pub const METRICS_GRANT: &str = "metrics";

/// `/metrics` behind the credential check (or none with `metrics_public`).
pub(crate) fn routes(api: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(guarded))
        .with_state(api)
}

/// `/metrics` without a credential (its own listener).
pub(crate) fn public_routes(api: ApiState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(api): State<ApiState>| async move { exposition(&api) }),
        )
        .with_state(api)
}

async fn guarded(State(api): State<ApiState>, headers: HeaderMap) -> Response {
    if !api.metrics_public {
        let Some(token) = bearer(&headers) else {
            return unauthorized("/metrics needs Authorization: Bearer <credential>");
        };
        match identify(&api, token).await {
            Err(r) => return r,
            Ok(who) if who.is_admin() || who.grants.iter().any(|g| g == METRICS_GRANT) => {}
            Ok(_) => {
                return super::ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "reading /metrics needs an admin or the metrics grant",
                )
                .into_response();
            }
        }
    }
    exposition(&api)
}

fn exposition(api: &ApiState) -> Response {
    let mut out = String::with_capacity(16 * 1024);
    switchboard_control::metrics::metrics().render(&mut out);
    switchboard_control::activity::render_state(&mut out, &api.tenants);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
