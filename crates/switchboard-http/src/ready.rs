//! `/health` (liveness) and `/ready` (readiness).
//!
//! `/health` answers 200 while the process serves HTTP. `/ready` says whether this hub can do
//! its job: its listeners are up and the initial reconcile is done (the services only start
//! serving after both), and its store answers a `SELECT 1` within [`PING_TIMEOUT`] (the result
//! is reused for [`PING_CACHE`], so probes never load the database). Upstream servers that are
//! down do not make the hub unready (one broken server must not take every other one out of a
//! load balancer); they are reported in the body: `ready` of `servers`, and each one's state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::{Map, Value, json};
use switchboard_control::{ControlError, ControlPlane};
use switchboard_hub::Hub;

/// Longest wait for the store's answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one store check is reused.
pub const PING_CACHE: Duration = Duration::from_secs(1);

/// What `/ready` checks besides the hub's servers.
#[derive(Clone)]
pub(crate) struct Readiness {
    hub: Hub,
    store: Option<Arc<StoreCheck>>,
}

/// The store and its last check.
pub(crate) struct StoreCheck {
    control: Arc<ControlPlane>,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl StoreCheck {
    pub(crate) fn new(control: Arc<ControlPlane>) -> Arc<Self> {
        Arc::new(StoreCheck {
            control,
            last: Mutex::new(None),
        })
    }

    /// The store's state, from the cache when it is fresh.
    async fn check(&self) -> Result<(), String> {
        if let Some((at, result)) = self.last.lock().expect("ready cache lock").as_ref()
            && at.elapsed() < PING_CACHE
        {
            return result.clone();
        }
        let result = match tokio::time::timeout(PING_TIMEOUT, self.control.ping_store()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(ControlError::Store(e))) => Err(e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the database did not answer within {} ms",
                PING_TIMEOUT.as_millis()
            )),
        };
        let mut last = self.last.lock().expect("ready cache lock");
        let was_ok = last.as_ref().is_none_or(|(_, r)| r.is_ok());
        if let (true, Err(e)) = (was_ok, &result) {
            tracing::warn!(message = "Not ready: the store is unreachable.", error = %e);
        }
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

/// `/health` and `/ready` for `hub`, with the store check when there is a store.
pub(crate) fn routes(hub: Hub, store: Option<Arc<StoreCheck>>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(Readiness { hub, store })
}

async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let servers = r.hub.servers();
    let ready = servers.iter().filter(|s| s.state == "ready").count();
    let states: Map<String, Value> = servers
        .iter()
        .map(|s| (s.name.clone(), Value::from(s.state)))
        .collect();
    let store = match &r.store {
        Some(check) => check.check().await,
        None => Ok(()),
    };
    let mut body = json!({
        "status": if store.is_ok() { "ok" } else { "unavailable" },
        "store": match &store { Ok(()) => "ok".to_string(), Err(e) => e.clone() },
        "servers": servers.len(),
        "ready": ready,
        "states": states,
    });
    if r.store.is_none() {
        body["store"] = Value::Null;
    }
    let status = if store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
