//! [`Hub`]: the registry of upstreams, groups, overrides and pins, and the merged catalog
//! built from them; the hub's settings and its lifecycle (start, shutdown).
//!
//! The rest of `Hub` is split by concern: client sessions in `clients.rs`, upstream events
//! in `events.rs`, call limits in `limits.rs`, routing in `route/`, forwarded calls in
//! `call/`, bridges between protocol eras in `bridge/`, replicas in `resume.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use switchboard_core::config::{ServerSpec, TransportSpec};
use switchboard_core::naming::{DEFAULT_SEPARATOR, validate_server_name};
use switchboard_upstream::{HubEvent, ListKind, State, Upstream, UpstreamOptions, http_client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::merged::{GroupDef, Merged, Overrides};
use crate::pins::{OnToolChange, PinEvent, PinState, ToolPins};
use crate::session::ClientSession;
use crate::view::View;

/// Hub-wide settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Separator between server and item names.
    pub separator: String,
    /// Supervision settings for every upstream.
    pub upstream: UpstreamOptions,
    /// Sessions unused for this long are closed.
    pub session_idle_timeout: Duration,
    /// Most concurrent downstream sessions.
    pub max_sessions: usize,
    /// How long a list or an unknown name waits for servers that are still starting for the
    /// first time, so a client that connects right after startup sees the whole catalog.
    pub startup_grace: Duration,
    /// Items per page of a merged list; 0 returns whole lists.
    pub page_size: usize,
    /// The HTTP client for servers supplied through an API (untrusted): one whose resolver
    /// enforces the SSRF policy at connect time. `None` uses the ordinary client.
    pub untrusted_client: Option<reqwest::Client>,
    /// Most upstream calls in flight at once through this hub (0: no limit). A hub serves one
    /// tenant, so this is the per-tenant fairness limit: a call over it waits for a slot (at
    /// most `call_queue_timeout`) without holding up any other tenant.
    pub max_concurrent_calls: usize,
    /// How long a call waits for a slot before it fails.
    pub call_queue_timeout: Duration,
    /// Most stdio servers (child processes) this hub runs (0: no limit).
    pub max_stdio_servers: usize,
    /// What `search_tools` returns on smart endpoints.
    pub smart_mode: crate::smart::SmartMode,
    /// Whether tool search ranks the tools this hub's clients call often higher among
    /// comparable matches (`switchboard_search::usage`).
    pub smart_usage_prior: bool,
    /// Bytes one client stream may have queued (legacy SSE, GET and per-POST event streams);
    /// a client that falls further behind has its stream closed and its session ended.
    pub stream_queue_bytes: usize,
    /// Upstream calls one client session may have in flight; more are refused at once
    /// (0: no limit).
    pub max_calls_per_session: usize,
    /// Upstream calls one credential (API key, user's tokens, admin token) may have in
    /// flight across its sessions; more are refused at once (0: no limit).
    pub max_calls_per_credential: usize,
    /// What to do with a tool whose definition changed since it was approved.
    pub on_tool_change: OnToolChange,
    /// Semantic tool search (an embedder and its cache); `None`: lexical search only.
    pub semantic: Option<Arc<crate::embedder::Semantic>>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            separator: DEFAULT_SEPARATOR.to_string(),
            upstream: UpstreamOptions::default(),
            session_idle_timeout: Duration::from_secs(3600),
            max_sessions: 100_000,
            startup_grace: Duration::from_secs(10),
            page_size: 0,
            untrusted_client: None,
            max_concurrent_calls: 0,
            call_queue_timeout: Duration::from_secs(30),
            max_stdio_servers: 0,
            smart_mode: crate::smart::SmartMode::Full,
            smart_usage_prior: true,
            stream_queue_bytes: crate::outbox::DEFAULT_STREAM_QUEUE_BYTES,
            max_calls_per_session: 0,
            max_calls_per_credential: 0,
            on_tool_change: OnToolChange::default(),
            semantic: None,
        }
    }
}

/// Why a control operation on the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A server or group with that name exists.
    #[error("a server or group named {0:?} already exists")]
    Conflict(String),
    /// No such server or group.
    #[error("no server or group named {0:?}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Too many sessions.
    #[error("the hub has reached its session limit ({0})")]
    TooManySessions(usize),
}

/// One server's status, for the local service and the APIs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerStatus {
    /// Name.
    pub name: String,
    /// `stdio`, `streamable-http` or `sse`.
    pub transport: &'static str,
    /// Lifecycle state.
    pub state: &'static str,
    /// Tools currently published.
    pub tools: usize,
    /// Prompts currently published.
    pub prompts: usize,
    /// Resources currently published.
    pub resources: usize,
    /// The most recent failure.
    pub last_error: Option<String>,
    /// Seconds since the connection became ready.
    pub uptime_secs: Option<u64>,
    /// Connections lost or failed since start.
    pub restarts: u32,
    /// Lists fetched again after the server announced a change (a metric, not in the API).
    #[serde(skip)]
    pub list_refreshes: u32,
    /// Process id of a stdio server.
    pub pid: Option<u32>,
    /// The protocol revision negotiated with the server.
    pub protocol: Option<String>,
}

pub(crate) struct HubInner {
    pub(crate) config: HubConfig,
    pub(crate) upstreams: ArcSwap<BTreeMap<String, Upstream>>,
    pub(crate) groups: ArcSwap<BTreeMap<String, GroupDef>>,
    overrides: ArcSwap<Overrides>,
    pub(crate) merged: ArcSwap<Merged>,
    pub(crate) sessions: Mutex<HashMap<String, Arc<ClientSession>>>,
    control: tokio::sync::Mutex<()>,
    /// Stateless clients' calls waiting for answers (multi-round-trip requests).
    pub(crate) parked: crate::bridge::mrtr::ParkedCalls,
    /// True once no server was starting; cleared when a server is added.
    settled: std::sync::atomic::AtomicBool,
    events: mpsc::Sender<HubEvent>,
    client: reqwest::Client,
    cancel: CancellationToken,
    /// Listeners for one server's log messages (`notifications/message`), by server name.
    pub(crate) log_taps: Mutex<HashMap<String, Vec<mpsc::Sender<String>>>>,
    /// Slots for upstream calls (`max_concurrent_calls`).
    pub(crate) call_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// The tool-search index of smart endpoints.
    pub(crate) smart: crate::smart::SmartCatalog,
    /// Upstream calls in flight per credential (`max_calls_per_credential`).
    pub(crate) credential_calls: Mutex<HashMap<String, usize>>,
    /// Approved tool definitions (pinning).
    pins: PinState,
    /// Who hears about finished calls (metrics, activity log), if anyone.
    pub(crate) observed: std::sync::OnceLock<crate::observe::Observed>,
    /// Client requests in flight (counted while observed).
    pub(crate) in_flight: std::sync::atomic::AtomicI64,
    /// Where finished spans go (OTLP traces), if anywhere.
    pub(crate) traced: std::sync::OnceLock<crate::trace::Traced>,
    /// Sealed session ids and what other replicas say (`resume.rs`).
    pub(crate) replica: crate::resume::ReplicaState,
}

/// How many upstream events (catalog changes, notifications, server requests) may wait for the
/// hub's event loop. The loop never waits on an upstream, so a full queue only slows the
/// upstreams that fill it (their own queues then drop, see `switchboard_upstream::INCOMING_QUEUE`).
const EVENT_QUEUE: usize = 1024;

/// The hub. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

impl Hub {
    /// Creates an empty hub and starts its event loop and session sweeper.
    pub fn new(config: HubConfig) -> Hub {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let merged = Merged::build(
            &BTreeMap::new(),
            &BTreeMap::new(),
            &Overrides::new(),
            (&ToolPins::new(), config.on_tool_change),
            &config.separator,
        );
        let hub = Hub {
            inner: Arc::new(HubInner {
                upstreams: ArcSwap::from_pointee(BTreeMap::new()),
                groups: ArcSwap::from_pointee(BTreeMap::new()),
                overrides: ArcSwap::from_pointee(Overrides::new()),
                merged: ArcSwap::from_pointee(merged),
                sessions: Mutex::new(HashMap::new()),
                control: tokio::sync::Mutex::new(()),
                parked: Default::default(),
                settled: std::sync::atomic::AtomicBool::new(true),
                events: tx,
                client: http_client(),
                cancel: CancellationToken::new(),
                log_taps: Mutex::new(HashMap::new()),
                call_slots: (config.max_concurrent_calls > 0)
                    .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_calls))),
                smart: crate::smart::SmartCatalog::new(
                    config.semantic.clone(),
                    config.smart_usage_prior,
                ),
                credential_calls: Mutex::new(HashMap::new()),
                pins: PinState::default(),
                observed: std::sync::OnceLock::new(),
                in_flight: std::sync::atomic::AtomicI64::new(0),
                traced: std::sync::OnceLock::new(),
                replica: Default::default(),
                config,
            }),
        };
        tokio::spawn(crate::events::event_loop(
            Arc::downgrade(&hub.inner),
            rx,
            hub.inner.cancel.clone(),
        ));
        tokio::spawn(crate::clients::sweep_sessions(
            Arc::downgrade(&hub.inner),
            hub.inner.cancel.clone(),
        ));
        if hub.inner.config.semantic.is_some() {
            tokio::spawn(crate::smart::embed_loop(
                Arc::downgrade(&hub.inner),
                hub.inner.cancel.clone(),
            ));
        }
        hub
    }

    /// Reports every finished client request and upstream call of this hub to `observer`,
    /// as tenant `tenant`. Set once; later calls are ignored (false).
    pub fn observe(&self, tenant: &str, observer: Arc<dyn crate::observe::CallObserver>) -> bool {
        self.inner
            .observed
            .set(crate::observe::Observed {
                tenant: tenant.into(),
                observer,
            })
            .is_ok()
    }

    /// Sends a span per client request and per upstream call of this hub to `sink`, as
    /// tenant `tenant`, for the requests `sampler` picks (the others only propagate their
    /// context); `transport` is the clients' `network.transport` (`tcp` or `pipe`).
    /// Set once; later calls are ignored (false).
    pub fn trace(
        &self,
        tenant: &str,
        sink: Arc<dyn crate::trace::SpanSink>,
        sampler: crate::sampler::Sampler,
        transport: &'static str,
    ) -> bool {
        crate::trace::enable();
        let traced = crate::trace::Traced {
            sink,
            sampler,
            tenant: tenant.into(),
            transport,
        };
        self.inner.traced.set(traced).is_ok()
    }

    /// Client requests in flight (counted only while an observer is set).
    pub fn calls_in_flight(&self) -> i64 {
        self.inner
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The hub's settings.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Adds and starts a server. Fails if the name is taken by a server or a group.
    pub async fn add_server(&self, spec: ServerSpec) -> Result<(), HubError> {
        validate_server_name(&spec.name, &self.inner.config.separator)
            .map_err(HubError::Invalid)?;
        let _guard = self.inner.control.lock().await;
        let current = self.inner.upstreams.load_full();
        if current.contains_key(&spec.name) || self.inner.groups.load().contains_key(&spec.name) {
            return Err(HubError::Conflict(spec.name));
        }
        self.inner.check_stdio_limit(&current, &spec, None)?;
        let up = Upstream::start(
            spec.clone(),
            self.inner.client_for(&spec),
            self.inner.config.upstream.clone(),
            self.inner.events.clone(),
        );
        let mut next = (*current).clone();
        next.insert(up.name().to_string(), up);
        self.inner.upstreams.store(Arc::new(next));
        self.inner
            .settled
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.inner.rebuild();
        Ok(())
    }

    /// Waits (at most `startup_grace`) while any server is connecting for the first time.
    pub(crate) async fn settle_startup(&self) {
        if self
            .inner
            .settled
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        if self.wait_settled(self.inner.config.startup_grace).await {
            self.inner
                .settled
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // A server that just became ready may not be in the snapshot yet: rebuild now
        // rather than wait for the event loop.
        self.inner.rebuild();
    }

    /// Stops and removes a server. Other servers are not touched.
    pub async fn remove_server(&self, name: &str) -> Result<(), HubError> {
        let removed = {
            let _guard = self.inner.control.lock().await;
            let current = self.inner.upstreams.load_full();
            let Some(up) = current.get(name).cloned() else {
                return Err(HubError::NotFound(name.to_string()));
            };
            let mut next = (*current).clone();
            next.remove(name);
            self.inner.upstreams.store(Arc::new(next));
            let mut groups = (*self.inner.groups.load_full()).clone();
            for def in groups.values_mut() {
                def.members.retain(|m| m != name);
            }
            self.inner.groups.store(Arc::new(groups));
            self.inner.pins.forget(name);
            self.inner.rebuild();
            up
        };
        self.inner.notify_list_changed(name, &ListKind::ALL, true);
        removed.stop().await;
        Ok(())
    }

    /// Replaces the group definitions (members only, no tool filter).
    pub async fn set_groups(&self, groups: BTreeMap<String, Vec<String>>) -> Result<(), HubError> {
        let defs = groups
            .into_iter()
            .map(|(g, members)| {
                (
                    g,
                    GroupDef {
                        members,
                        tools: None,
                    },
                )
            })
            .collect();
        self.set_group_defs(defs).await
    }

    /// Replaces the group definitions. Members must be existing servers.
    pub async fn set_group_defs(&self, groups: BTreeMap<String, GroupDef>) -> Result<(), HubError> {
        let _guard = self.inner.control.lock().await;
        let ups = self.inner.upstreams.load_full();
        for (g, def) in &groups {
            validate_server_name(g, &self.inner.config.separator).map_err(HubError::Invalid)?;
            if ups.contains_key(g) {
                return Err(HubError::Conflict(g.clone()));
            }
            if let Some(m) = def.members.iter().find(|m| !ups.contains_key(*m)) {
                return Err(HubError::NotFound(m.clone()));
            }
        }
        let before = self.inner.groups.swap(Arc::new(groups));
        self.inner.rebuild();
        self.inner.notify_group_change(&before);
        Ok(())
    }

    /// Replaces every tool and prompt override.
    pub fn set_overrides(&self, overrides: Overrides) {
        let before = self.inner.overrides.swap(Arc::new(overrides));
        self.inner.rebuild();
        let after = self.inner.overrides.load();
        let mut touched: BTreeSet<(String, ListKind)> = BTreeSet::new();
        for (k, v) in before.iter() {
            if after.get(k) != Some(v) {
                touched.insert((k.0.clone(), k.1));
            }
        }
        for (k, v) in after.iter() {
            if before.get(k) != Some(v) {
                touched.insert((k.0.clone(), k.1));
            }
        }
        for (server, kind) in touched {
            self.inner.notify_list_changed(&server, &[kind], false);
        }
    }

    /// Where pin events (tools pinned on first use, changes detected) go: the control plane,
    /// which records them in the store.
    pub fn set_pin_sink(&self, tx: mpsc::UnboundedSender<PinEvent>) {
        self.inner.pins.set_sink(tx);
    }

    /// Replaces the approved tool definitions with `pins` (the store's). Servers pinned on first
    /// use whose pins are not saved yet keep theirs. Until this is first called, nothing is
    /// pinned on first use. Under `hide`, sessions that see a server whose pins changed get
    /// `notifications/tools/list_changed`.
    pub fn set_pins(&self, pins: ToolPins) {
        let changed = self.inner.pins.replace(pins);
        if changed.is_empty() {
            return;
        }
        self.inner.rebuild();
        for server in &changed {
            if self.inner.config.on_tool_change == OnToolChange::Hide {
                self.inner
                    .notify_list_changed(server, &[ListKind::Tools], false);
            }
            self.inner.check_pins(server);
        }
    }

    /// Replaces a server's configuration: only that server is restarted.
    pub async fn replace_server(&self, spec: ServerSpec) -> Result<(), HubError> {
        let old = {
            let _guard = self.inner.control.lock().await;
            let current = self.inner.upstreams.load_full();
            let Some(old) = current.get(&spec.name).cloned() else {
                return Err(HubError::NotFound(spec.name));
            };
            self.inner
                .check_stdio_limit(&current, &spec, Some(&spec.name))?;
            let up = Upstream::start(
                spec.clone(),
                self.inner.client_for(&spec),
                self.inner.config.upstream.clone(),
                self.inner.events.clone(),
            );
            let mut next = (*current).clone();
            next.insert(up.name().to_string(), up);
            self.inner.upstreams.store(Arc::new(next));
            self.inner.rebuild();
            old
        };
        self.inner
            .notify_list_changed(old.name(), &ListKind::ALL, false);
        old.stop().await;
        Ok(())
    }

    /// Restarts a server with its current configuration.
    pub async fn restart_server(&self, name: &str) -> Result<(), HubError> {
        let spec = self
            .upstream(name)
            .ok_or_else(|| HubError::NotFound(name.to_string()))?
            .spec()
            .clone();
        self.replace_server(spec).await
    }

    /// Original name -> exported name of a server's visible tools or prompts.
    pub fn exported_names(&self, server: &str, kind: ListKind) -> HashMap<String, String> {
        self.inner.merged.load().exported_names(server, kind)
    }

    /// Group definitions.
    pub fn group_defs(&self) -> Arc<BTreeMap<String, GroupDef>> {
        self.inner.groups.load_full()
    }

    /// The handle of server `name`.
    pub fn upstream(&self, name: &str) -> Option<Upstream> {
        self.inner.upstreams.load().get(name).cloned()
    }

    /// Server names.
    pub fn server_names(&self) -> Vec<String> {
        self.inner.upstreams.load().keys().cloned().collect()
    }

    /// Status of every server, in name order.
    pub fn servers(&self) -> Vec<ServerStatus> {
        self.inner
            .upstreams
            .load()
            .values()
            .map(server_status)
            .collect()
    }

    /// Waits until no server is still starting, or `timeout` passes. True if all settled.
    pub async fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending = self
                .inner
                .upstreams
                .load()
                .values()
                .any(|u| u.status().state == State::Starting);
            if !pending {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Maps an endpoint path segment to a view: a group first, then a server.
    pub fn resolve_view(&self, segment: Option<&str>) -> Option<View> {
        if let Some(rest) = segment.and_then(|s| s.strip_prefix(crate::view::SMART_SEGMENT)) {
            return match rest.strip_prefix('/') {
                None if rest.is_empty() => Some(View::Smart(None)),
                Some(g) if self.inner.groups.load().contains_key(g) => {
                    Some(View::Smart(Some(g.to_string())))
                }
                _ => None,
            };
        }
        match segment {
            None | Some("") => Some(View::All),
            Some(name) if self.inner.groups.load().contains_key(name) => {
                Some(View::Group(name.to_string()))
            }
            Some(name) if self.inner.upstreams.load().contains_key(name) => {
                Some(View::Server(name.to_string()))
            }
            _ => None,
        }
    }

    /// Stops every upstream (stdio process groups included) and closes every session.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let sessions: Vec<_> = self
            .inner
            .sessions
            .lock()
            .expect("sessions lock")
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in sessions {
            crate::clients::close(&s);
        }
        let ups = self.inner.upstreams.load_full();
        let stops = ups.values().map(|u| u.stop());
        futures_join_all(stops).await;
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    // Stop servers concurrently: each may wait seconds for its process group.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = set.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

fn server_status(u: &Upstream) -> ServerStatus {
    let st = u.status();
    let cat = u.catalog();
    ServerStatus {
        name: u.name().to_string(),
        transport: u.transport_kind(),
        state: st.state.as_str(),
        tools: cat.tools.len(),
        prompts: cat.prompts.len(),
        resources: cat.resources.len(),
        last_error: st.last_error,
        uptime_secs: st
            .ready_since
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs()),
        restarts: st.restarts,
        list_refreshes: st.list_refreshes,
        pid: st.pid,
        protocol: u.info().map(|i| i.protocol_version.clone()),
    }
}

impl HubInner {
    /// Refuses a stdio server over `max_stdio_servers` (`replacing`: the name it replaces).
    fn check_stdio_limit(
        &self,
        current: &BTreeMap<String, Upstream>,
        spec: &ServerSpec,
        replacing: Option<&str>,
    ) -> Result<(), HubError> {
        let limit = self.config.max_stdio_servers;
        // A disabled server runs no process: it does not count.
        let is_stdio =
            |s: &ServerSpec| !s.disabled && matches!(s.transport, TransportSpec::Stdio { .. });
        if limit == 0 || !is_stdio(spec) {
            return Ok(());
        }
        let running = current
            .values()
            .filter(|u| Some(u.name()) != replacing && is_stdio(u.spec()))
            .count();
        if running >= limit {
            return Err(HubError::Invalid(format!(
                "this tenant already runs {running} stdio servers (limit {limit}); remove one or \
                 raise --max-stdio-servers-per-tenant"
            )));
        }
        Ok(())
    }

    /// Servers from the operator's file use the ordinary client; API-supplied ones the guarded one.
    fn client_for(&self, spec: &ServerSpec) -> reqwest::Client {
        match (&self.config.untrusted_client, spec.trusted) {
            (Some(guarded), false) => guarded.clone(),
            _ => self.client.clone(),
        }
    }

    pub(crate) fn rebuild(&self) {
        let merged = Merged::build(
            &self.upstreams.load(),
            &self.groups.load(),
            &self.overrides.load(),
            (&self.pins.pins.load(), self.config.on_tool_change),
            &self.config.separator,
        );
        self.merged.store(Arc::new(merged));
    }

    /// Checks a ready server's tools against their pins (pins them on first use). A server
    /// that is not connected has an empty catalog and is left alone.
    pub(crate) fn check_pins(&self, server: &str) {
        let Some(up) = self.upstreams.load().get(server).cloned() else {
            return;
        };
        if up.connection().is_err() {
            return;
        }
        let catalog = up.catalog();
        let tools: Vec<_> = catalog
            .tools
            .iter()
            .map(|i| (i.key.as_str(), i.raw.get(), i.digest))
            .collect();
        self.pins.check(server, &tools, self.config.on_tool_change);
    }
}
