//! `TestApp`: a hub with a store, the control plane and both HTTP services (main and MCP) on
//! ephemeral loopback ports, in this process, built the way a test needs it:
//! `TestApp::builder().token(T).postgres().start().await`.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use switchboard_control::{ControlConfig, ControlPlane, Identity, IdentityConfig, SessionSettings};
use switchboard_core::ssrf::{SsrfPolicy, parse_cidrs};
use switchboard_http::{AdminAuth, ApiState, McpAuth, ServiceOptions};
use switchboard_hub::{Hub, HubConfig};
use switchboard_store::{SecretKey, Store, StoreAccess};
use tokio_util::sync::CancellationToken;

use super::api::{ApiClient, ServesApi};
use super::{McpClient, PgDatabase, bind, init};

/// The SSRF policy of the tests: loopback allowed (the fixtures live there), the rest as
/// shipped.
pub fn loopback_policy() -> SsrfPolicy {
    SsrfPolicy {
        allow_cidrs: parse_cidrs("127.0.0.0/8").unwrap(),
        ..Default::default()
    }
}

/// Where the store lives.
enum Db {
    Memory,
    Postgres(&'static str),
    Url(String),
}

type IdentityFn = Box<dyn FnOnce(SocketAddr) -> IdentityConfig>;

/// The settings of a [`TestApp`]; `start` builds it.
pub struct TestAppBuilder {
    token: String,
    db: Db,
    key: Option<SecretKey>,
    hub: HubConfig,
    guarded: bool,
    tenant: String,
    sessions: Option<SessionSettings>,
    identity: Option<IdentityFn>,
    mcp_auth: McpAuth,
    reconcile: bool,
    sync_tenants: bool,
    stdio_allow: Option<switchboard_control::StdioAllowlist>,
    error_codes: bool,
    servers: Vec<Value>,
}

/// A running hub with both services; [`TestApp::as_`] makes API requests to the main service.
pub struct TestApp {
    pub state: ApiState,
    pub control: Arc<ControlPlane>,
    pub hub: Hub,
    pub main: SocketAddr,
    pub mcp: SocketAddr,
    pub api: ApiClient,
    pub token: String,
    shutdown: CancellationToken,
    _db: Option<PgDatabase>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            token: "t0ken-for-tests-123".into(),
            db: Db::Memory,
            key: None,
            hub: HubConfig::default(),
            guarded: false,
            tenant: switchboard_store::DEFAULT_TENANT.into(),
            sessions: None,
            identity: None,
            mcp_auth: McpAuth::Optional,
            reconcile: false,
            sync_tenants: false,
            stdio_allow: None,
            error_codes: false,
            servers: Vec::new(),
        }
    }

    /// `http://<main service><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.main)
    }

    /// `http://<MCP service><path>`.
    pub fn mcp_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.mcp)
    }

    /// An MCP client connected to `path` of the MCP service.
    pub async fn client(&self, path: &str) -> McpClient {
        McpClient::connect(&self.mcp_url(path)).await
    }

    /// Adds a server through the API (as the admin).
    pub async fn add(&self, name: &str, mut entry: Value) -> Value {
        entry["name"] = serde_json::json!(name);
        self.admin()
            .post("/api/v1/servers", entry)
            .expect(201)
            .await
    }

    /// The server's view once its state is `state`.
    pub async fn wait_state(&self, name: &str, state: &str) -> Value {
        let path = format!("/api/v1/servers/{name}");
        let mut last = Value::Null;
        for _ in 0..500 {
            last = self.admin().get(&path).expect(200).await;
            if last["status"]["state"] == state {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{name} never became {state}: {last}");
    }

    pub async fn ready(&self, name: &str) -> Value {
        self.wait_state(name, "ready").await
    }

    /// The names of the servers the API lists.
    pub async fn server_names(&self) -> Vec<String> {
        let list = self.admin().get("/api/v1/servers").expect(200).await;
        list["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The store under the default tenant's control plane.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.control.store()
    }

    /// Stops the services and every tenant's hub.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.state.tenants.shutdown().await;
    }
}

impl TestAppBuilder {
    /// The admin token (the default is a fixed test token).
    pub fn token(mut self, token: &str) -> Self {
        self.token = token.into();
        self
    }

    /// The store on a PostgreSQL database made for this app (dropped with it).
    pub fn postgres(mut self, purpose: &'static str) -> Self {
        self.db = Db::Postgres(purpose);
        self
    }

    /// The store at `url` (e.g. a SQLite file that outlives the app).
    pub fn database(mut self, url: &str) -> Self {
        self.db = Db::Url(url.into());
        self
    }

    /// The store's secret key (the default is a fresh random one).
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The default tenant's hub settings.
    pub fn hub(mut self, config: HubConfig) -> Self {
        self.hub = config;
        self
    }

    /// Untrusted servers connect through the SSRF-guarded client.
    pub fn guarded(mut self) -> Self {
        self.guarded = true;
        self
    }

    /// The control plane's tenant.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Proxy-session settings (clock, sweeper).
    pub fn sessions(mut self, settings: SessionSettings) -> Self {
        self.sessions = Some(settings);
        self
    }

    /// Identity settings, made from the main service's address.
    pub fn identity(mut self, make: impl FnOnce(SocketAddr) -> IdentityConfig + 'static) -> Self {
        self.identity = Some(Box::new(make));
        self
    }

    pub fn mcp_auth(mut self, auth: McpAuth) -> Self {
        self.mcp_auth = auth;
        self
    }

    /// Reconciles the store before serving (servers a previous app stored start again).
    pub fn reconcile(mut self) -> Self {
        self.reconcile = true;
        self
    }

    /// Starts every tenant's plane the store holds before serving.
    pub fn sync_tenants(mut self) -> Self {
        self.sync_tenants = true;
        self
    }

    /// The stdio allowlist (`--stdio-allow`).
    pub fn stdio_allow(mut self, allow: switchboard_control::StdioAllowlist) -> Self {
        self.stdio_allow = Some(allow);
        self
    }

    /// `expect` also checks the error shape of 401, 403, 404 and 429 answers.
    pub fn error_codes(mut self) -> Self {
        self.error_codes = true;
        self
    }

    /// Servers added through the API once the app runs (each a `POST /api/v1/servers` body).
    pub fn servers(mut self, entries: impl IntoIterator<Item = Value>) -> Self {
        self.servers.extend(entries);
        self
    }

    pub async fn start(self) -> TestApp {
        init();
        let key = self
            .key
            .unwrap_or_else(|| SecretKey::generate().expect("key"));
        let (db, url) = match self.db {
            Db::Memory => (None, "sqlite::memory:".to_string()),
            Db::Url(u) => (None, u),
            Db::Postgres(purpose) => {
                let db = PgDatabase::create(purpose);
                let url = db.url();
                (Some(db), url)
            }
        };
        let store = switchboard_store::open(&url, key).await.expect("store");
        let mut hub_config = self.hub;
        let mut config = ControlConfig {
            tenant: self.tenant,
            ssrf: loopback_policy(),
            ..Default::default()
        };
        if self.guarded {
            let guarded = switchboard_control::guarded_client(
                loopback_policy(),
                Arc::new(switchboard_control::SystemLookup),
            );
            hub_config.untrusted_client = Some(guarded.clone());
            config.client = Some(guarded);
        }
        if let Some(s) = self.sessions {
            config.sessions = s;
        }
        if let Some(allow) = self.stdio_allow {
            config.stdio_allow = Arc::new(allow);
        }
        let hub = Hub::new(hub_config);
        let control = ControlPlane::new(store.clone(), hub.clone(), config);
        if self.reconcile {
            control.reconcile().await.expect("reconcile");
        }
        let mut state =
            ApiState::with_defaults(control.clone(), AdminAuth::from_token(&self.token))
                .await
                .expect("api state");
        if self.sync_tenants {
            state.tenants.sync().await.expect("tenants");
        }
        let ((main_l, main), (mcp_l, mcp)) = (bind().await, bind().await);
        if let Some(make) = self.identity {
            state.identity = Identity::new(store, make(main), reqwest::Client::new())
                .await
                .expect("identity");
        }
        let options = ServiceOptions {
            mcp_auth: self.mcp_auth,
            ..ServiceOptions::default()
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(switchboard_http::serve(
            main_l,
            switchboard_http::main_service(state.clone(), &options),
            shutdown.clone(),
        ));
        tokio::spawn(switchboard_http::serve(
            mcp_l,
            switchboard_http::mcp_service(state.clone(), &options),
            shutdown.clone(),
        ));
        let mut api = ApiClient::new(format!("http://{main}"));
        api.error_codes = self.error_codes;
        let app = TestApp {
            state,
            control,
            hub,
            main,
            mcp,
            api,
            token: self.token,
            shutdown,
            _db: db,
        };
        for entry in self.servers {
            app.admin().post("/api/v1/servers", entry).expect(201).await;
        }
        app
    }
}

impl ServesApi for TestApp {
    fn api_client(&self) -> &ApiClient {
        &self.api
    }

    fn admin_token(&self) -> &str {
        &self.token
    }
}
