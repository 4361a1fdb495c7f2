//! Switchboard's control plane. The store holds what should run; [`ControlPlane::reconcile`]
//! makes the hub's registry match it (on startup, after every change, on demand and when
//! another replica changed the store). The management APIs call the operations here, so the
//! REST API, the seed routes and the CLI share one set of rules.

pub mod accounts;
pub mod activity;
pub mod admin_token;
mod convert;
pub mod guard;
pub mod hashing;
pub mod identity;
pub mod metrics;
mod ops;
pub mod otlp;
mod pins;
mod probe;
pub mod ratelimit;
mod reconcile;
pub mod replicas;
pub mod sessions;
pub mod stdio_policy;
pub mod tenants;
pub mod usage_history;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_core::ssrf::SsrfPolicy;
use switchboard_hub::{Hub, HubError};
use switchboard_store::{Store, StoreError};

pub use convert::{
    MASK, SERVERS_FILE_ACTOR, Secrets, ServerInput, entry_json, entry_json_as, keep_masked_secrets,
    masked_url, record_from_spec, record_url, secret_env_key, secret_placeholder, spec_from_record,
};
pub use guard::{GuardedResolver, Lookup, SsrfRefused, SystemLookup, guarded_client, refusal_in};
pub use identity::{AuthError, Identity, IdentityConfig, Principal, Tokens, Via};
pub use ops::{GroupInput, ItemPatch, ItemView, ServerView};
pub use pins::{ApproveInput, FIRST_USE, FieldChange, ToolChange, ToolChanges};
pub use probe::{Probe, check_ssrf, probe, remote_spec};
pub use reconcile::{ImportReport, ReconcileReport};
pub use sessions::{
    Clock, ManualClock, NewSession, SessionHandle, SessionSettings, SessionView, SystemClock,
};
pub use stdio_policy::{Actor, SpawnRight, StdioAllowlist};
pub use tenants::{HubFactory, Tenants};

/// Why a control operation failed; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such server, group or item.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The input is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The URL points somewhere the SSRF policy forbids.
    #[error("{0}")]
    Forbidden(String),
    /// The server could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// A limit (sessions per tenant or in total) is reached.
    #[error("{0}")]
    Limit(String),
    /// The remote server did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The caller may not define this stdio server (not an admin, and no allowed launcher).
    #[error("{0}")]
    StdioForbidden(String),
    /// The tenant's stdio server limit is reached.
    #[error("{0}")]
    StdioLimit(String),
    /// The caller's role does not allow it.
    #[error("{0}")]
    Denied(String),
    /// Busy right now (for example every password-hashing worker); try again shortly.
    #[error("{0}")]
    Throttled(String),
    /// A fault of the hub's own, not of the request.
    #[error("{0}")]
    Internal(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<HubError> for ControlError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Conflict(n) => {
                ControlError::Conflict(format!("a server or group named {n:?} already exists"))
            }
            HubError::NotFound(n) => {
                ControlError::NotFound(format!("no server or group named {n:?}"))
            }
            HubError::Invalid(m) => ControlError::Invalid(m),
            HubError::TooManySessions(n) => {
                ControlError::Limit(format!("session limit {n} reached"))
            }
        }
    }
}

/// Control-plane settings.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Tenant the control plane manages (one until tenancy lands).
    pub tenant: String,
    /// Rules for URLs that arrive through an API.
    pub ssrf: SsrfPolicy,
    /// Limit for probing a server before adding it.
    pub probe_timeout: Duration,
    /// Whether this process runs the servers (false for `--role main`, where another process
    /// reconciles from the shared store).
    pub apply: bool,
    /// The guarded HTTP client for probes, when the caller already built one (each client
    /// carries its own TLS root store, so sharing one saves memory).
    pub client: Option<reqwest::Client>,
    /// Proxy-session limits and timings.
    pub sessions: sessions::SessionSettings,
    /// The stdio launchers managers may use (`--stdio-allow`).
    pub stdio_allow: Arc<StdioAllowlist>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            tenant: switchboard_store::DEFAULT_TENANT.to_string(),
            ssrf: SsrfPolicy::default(),
            probe_timeout: Duration::from_secs(15),
            apply: true,
            client: None,
            sessions: sessions::SessionSettings::default(),
            stdio_allow: Arc::default(),
        }
    }
}

/// The control plane: the store, the hub, and the reconciler between them.
pub struct ControlPlane {
    store: Arc<dyn Store>,
    hub: Hub,
    config: ControlConfig,
    client: reqwest::Client,
    /// Serialises reconciles and writes, so store and registry never disagree for long.
    lock: tokio::sync::Mutex<()>,
    /// Servers the reconciler manages (mounted from the store); others were mounted directly.
    managed: Mutex<HashSet<String>>,
    last_revision: Mutex<Option<i64>>,
    /// Proxy sessions mounted by this process.
    session_state: sessions::SessionState,
}

impl ControlPlane {
    /// A control plane over `store` and `hub`.
    pub fn new(store: Arc<dyn Store>, hub: Hub, config: ControlConfig) -> Arc<ControlPlane> {
        let client = config.client.clone().unwrap_or_else(|| {
            guard::guarded_client(config.ssrf.clone(), Arc::new(guard::SystemLookup))
        });
        let sweep_every = config.sessions.sweep_every;
        let control = Arc::new(ControlPlane {
            store,
            hub,
            config,
            // Probes reach API-supplied URLs: check every address at connect time too.
            client,
            lock: tokio::sync::Mutex::new(()),
            managed: Mutex::new(HashSet::new()),
            last_revision: Mutex::new(None),
            session_state: Default::default(),
        });
        sessions::spawn_sweeper(Arc::downgrade(&control), sweep_every);
        usage_history::spawn_loader(Arc::downgrade(&control));
        let (pin_tx, pin_rx) = tokio::sync::mpsc::unbounded_channel();
        control.hub.set_pin_sink(pin_tx);
        pins::spawn_recorder(Arc::downgrade(&control), pin_rx);
        control
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Settings.
    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// The HTTP client used for probes.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Reconciles when the store's revision is not the one this plane last converged to.
    pub async fn reconcile_if_stale(&self, rev: i64) {
        let seen = *self.last_revision.lock().expect("revision lock");
        if seen != Some(rev)
            && let Err(e) = self.reconcile().await
        {
            tracing::warn!(message = "Reconcile failed.", tenant = %self.config.tenant, error = %e);
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl switchboard_store::StoreAccess for ControlPlane {
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// The records and values the control plane hands out. They are the store's types: the HTTP
/// layer names them through here, and reaches the store itself only through the operations.
pub mod model {
    pub use switchboard_store::{
        ActivityQuery, ActivityRow, ActivitySample, ApiKeyRecord, AuditRecord, DEFAULT_TENANT,
        ItemKind, RateLimit, Role, ServerRecord, StoreError, TenantRecord, UserRecord,
    };
}

/// Tenants and identity around one default-tenant control plane, with default identity
/// settings: further tenants get hubs with the plane's hub settings, identity uses the plane's
/// store. For embedding and tests; the binary wires these itself from its flags.
pub async fn embedded(
    control: Arc<ControlPlane>,
) -> Result<(Arc<Tenants>, Arc<Identity>), StoreError> {
    let store = control.store.clone();
    let hub_config = control.hub().config().clone();
    let make_hub: HubFactory = Arc::new(move |_| Hub::new(hub_config.clone()));
    let tenants = Tenants::new(
        store.clone(),
        make_hub,
        control.config().clone(),
        control.clone(),
    );
    let identity = Identity::new(
        store,
        IdentityConfig::default(),
        switchboard_upstream::http_client(),
    )
    .await?;
    Ok((tenants, identity))
}
