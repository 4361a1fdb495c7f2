//! [`Hub`]: the registry of upstreams, the merged catalog, and the downstream sessions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use switchboard_core::config::{ServerSpec, TransportSpec};
use switchboard_core::jsonrpc::{error_message, notification_message};
use switchboard_core::naming::{DEFAULT_SEPARATOR, validate_server_name};
use switchboard_upstream::{HubEvent, ListKind, State, Upstream, UpstreamOptions, http_client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::merged::{GroupDef, Merged, Overrides};
use crate::pins::{OnToolChange, PinEvent, PinState, ToolPins};
use crate::session::{ClientSession, random_id};
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
    /// Process id of a stdio server.
    pub pid: Option<u32>,
    /// The protocol revision negotiated with the server.
    pub protocol: Option<String>,
}

pub(crate) struct HubInner {
    pub(crate) config: HubConfig,
    upstreams: ArcSwap<BTreeMap<String, Upstream>>,
    groups: ArcSwap<BTreeMap<String, GroupDef>>,
    overrides: ArcSwap<Overrides>,
    pub(crate) merged: ArcSwap<Merged>,
    pub(crate) sessions: Mutex<HashMap<String, Arc<ClientSession>>>,
    control: tokio::sync::Mutex<()>,
    /// Stateless clients' calls waiting for answers (multi-round-trip requests).
    pub(crate) parked: crate::mrtr::ParkedCalls,
    /// True once no server was starting; cleared when a server is added.
    settled: std::sync::atomic::AtomicBool,
    events: mpsc::UnboundedSender<HubEvent>,
    client: reqwest::Client,
    cancel: CancellationToken,
    /// Listeners for one server's log messages (`notifications/message`), by server name.
    log_taps: Mutex<HashMap<String, Vec<mpsc::Sender<String>>>>,
    /// Slots for upstream calls (`max_concurrent_calls`).
    pub(crate) call_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// The tool-search index of smart endpoints.
    pub(crate) smart: crate::smart::SmartCatalog,
    /// Upstream calls in flight per credential (`max_calls_per_credential`).
    credential_calls: Mutex<HashMap<String, usize>>,
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

/// The hub. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

impl Hub {
    /// Creates an empty hub and starts its event loop and session sweeper.
    pub fn new(config: HubConfig) -> Hub {
        let (tx, rx) = mpsc::unbounded_channel();
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
                smart: crate::smart::SmartCatalog::new(config.semantic.clone()),
                credential_calls: Mutex::new(HashMap::new()),
                pins: PinState::default(),
                observed: std::sync::OnceLock::new(),
                in_flight: std::sync::atomic::AtomicI64::new(0),
                traced: std::sync::OnceLock::new(),
                replica: Default::default(),
                config,
            }),
        };
        tokio::spawn(event_loop(
            Arc::downgrade(&hub.inner),
            rx,
            hub.inner.cancel.clone(),
        ));
        tokio::spawn(sweep_sessions(
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
    /// tenant `tenant`; `transport` is the clients' `network.transport` (`tcp` or `pipe`).
    /// Set once; later calls are ignored (false).
    pub fn trace(
        &self,
        tenant: &str,
        sink: Arc<dyn crate::trace::SpanSink>,
        transport: &'static str,
    ) -> bool {
        crate::trace::enable();
        let traced = crate::trace::Traced {
            sink,
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

    /// Opens a session for `view`; its stream buffers up to `capacity` messages.
    pub fn create_session(
        &self,
        view: View,
        capacity: usize,
    ) -> Result<Arc<ClientSession>, HubError> {
        self.register_session(random_id(), view, capacity, None)
    }

    /// Registers a new session under `id`, opened by `credential` (an existing one of that
    /// id is returned as is).
    pub(crate) fn register_session(
        &self,
        id: String,
        view: View,
        capacity: usize,
        credential: Option<&str>,
    ) -> Result<Arc<ClientSession>, HubError> {
        let session = ClientSession::new(id, view, capacity, self.inner.config.stream_queue_bytes);
        if let Some(c) = credential {
            session.set_credential(c.to_string());
        }
        let session = Arc::new(session);
        // A client that stops reading its stream loses the session (the warning is logged by
        // the queue); closing it cancels its calls and frees what it held.
        let hub = Arc::downgrade(&self.inner);
        let id = session.id.clone();
        session.outbound.on_overflow(move || {
            if let Some(inner) = hub.upgrade() {
                let id = id.clone();
                tokio::spawn(async move {
                    Hub { inner }.close_session(&id);
                });
            }
        });
        let mut sessions = self.inner.sessions.lock().expect("sessions lock");
        if let Some(existing) = sessions.get(&session.id) {
            return Ok(existing.clone());
        }
        if sessions.len() >= self.inner.config.max_sessions {
            return Err(HubError::TooManySessions(self.inner.config.max_sessions));
        }
        sessions.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// A session for one stateless (2026-07-28) request: not registered, never pushed to.
    /// `param_headers` are an HTTP request's `Mcp-Param-*` headers (name after the prefix,
    /// raw value); `None` for other transports.
    pub fn stateless_session(
        &self,
        view: View,
        param_headers: Option<Vec<(String, String)>>,
    ) -> Arc<ClientSession> {
        let mut session =
            ClientSession::new(String::new(), view, 1, self.inner.config.stream_queue_bytes);
        session.stateless = true;
        session.param_headers = param_headers;
        session
            .initialized
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Arc::new(session)
    }

    /// A live session by id.
    pub fn session(&self, id: &str) -> Option<Arc<ClientSession>> {
        self.inner
            .sessions
            .lock()
            .expect("sessions lock")
            .get(id)
            .cloned()
    }

    /// Ends a session: cancels what it has in flight. True if it existed.
    pub fn close_session(&self, id: &str) -> bool {
        let removed = self
            .inner
            .sessions
            .lock()
            .expect("sessions lock")
            .remove(id);
        match removed {
            Some(s) => {
                close(&s);
                if let Some(o) = self.inner.observed.get() {
                    o.observer.session_closed(&o.tenant, s.created.elapsed());
                }
                self.release_client(id);
                true
            }
            None => false,
        }
    }

    /// Closes a client's own upstream sessions (servers in `per-client` mode).
    fn release_client(&self, id: &str) {
        let ups: Vec<Upstream> = self
            .inner
            .upstreams
            .load()
            .values()
            .filter(|u| u.client_sessions() > 0)
            .cloned()
            .collect();
        for up in ups {
            let id = id.to_string();
            tokio::spawn(async move { up.release_client(&id).await });
        }
    }

    /// Log messages (`notifications/message`, whole message text) that server `name` sends
    /// outside any request stream, from now until the receiver is dropped. Messages are dropped
    /// when the receiver falls 64 behind.
    pub fn tap_logs(&self, name: &str) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(64);
        self.inner
            .log_taps
            .lock()
            .expect("log taps lock")
            .entry(name.to_string())
            .or_default()
            .push(tx);
        rx
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.lock().expect("sessions lock").len()
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
            close(&s);
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

/// One upstream call counted against its session and credential; released when dropped.
pub(crate) struct CallClaim {
    hub: Arc<HubInner>,
    session: Arc<ClientSession>,
    credential: Option<String>,
}

impl Drop for CallClaim {
    fn drop(&mut self) {
        self.session
            .calls
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(key) = &self.credential {
            let mut counts = self
                .hub
                .credential_calls
                .lock()
                .expect("credential calls lock");
            if let Some(n) = counts.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

fn close(s: &ClientSession) {
    s.closed.cancel();
    for (_, t) in s.inflight.lock().expect("inflight lock").drain() {
        t.cancel();
    }
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

    /// Counts one more upstream call for `session` and its credential, or refuses it at once
    /// when either already has its limit in flight (so one client cannot use up the
    /// tenant's slots and make the others wait).
    pub(crate) fn claim_call(
        self: &Arc<Self>,
        session: &Arc<ClientSession>,
    ) -> Result<CallClaim, String> {
        use std::sync::atomic::Ordering;
        let per_session = self.config.max_calls_per_session;
        let before = session.calls.fetch_add(1, Ordering::AcqRel);
        if per_session > 0 && before >= per_session {
            session.calls.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "too many calls in flight for this session (limit {per_session}); wait for one \
                 to finish"
            ));
        }
        let credential = session.credential.get().cloned();
        if let Some(key) = &credential {
            let limit = self.config.max_calls_per_credential;
            let mut counts = self.credential_calls.lock().expect("credential calls lock");
            let n = counts.entry(key.clone()).or_insert(0);
            if limit > 0 && *n >= limit {
                drop(counts);
                session.calls.fetch_sub(1, Ordering::AcqRel);
                return Err(format!(
                    "too many calls in flight for this credential (limit {limit}); wait for one \
                     to finish"
                ));
            }
            *n += 1;
        }
        Ok(CallClaim {
            hub: self.clone(),
            session: session.clone(),
            credential,
        })
    }

    /// Waits for an upstream call slot (`max_concurrent_calls`); `Err` after the queue timeout.
    pub(crate) async fn call_slot(
        &self,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, String> {
        let Some(slots) = &self.call_slots else {
            return Ok(None);
        };
        match tokio::time::timeout(
            self.config.call_queue_timeout,
            slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(format!(
                "this tenant has {} upstream calls in flight (its limit) and none finished within \
                 {} ms; retry later",
                self.config.max_concurrent_calls,
                self.config.call_queue_timeout.as_millis()
            )),
        }
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
    fn check_pins(&self, server: &str) {
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

    pub(crate) fn all_sessions(&self) -> Vec<Arc<ClientSession>> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .values()
            .cloned()
            .collect()
    }

    /// Tells every initialized session that can see `server` that its lists changed.
    fn notify_list_changed(&self, server: &str, kinds: &[ListKind], removed: bool) {
        let merged = self.merged.load();
        let mut methods: Vec<&str> = kinds
            .iter()
            .map(|k| match k {
                ListKind::Tools => "notifications/tools/list_changed",
                ListKind::Prompts => "notifications/prompts/list_changed",
                ListKind::Resources | ListKind::Templates => "notifications/resources/list_changed",
            })
            .collect();
        methods.dedup();
        for s in self.all_sessions() {
            let visible = match &s.view {
                View::Server(name) => name == server,
                v => removed || merged.in_view(v, server),
            };
            if visible && s.initialized.load(std::sync::atomic::Ordering::Relaxed) {
                for m in &methods {
                    s.push(notification_message(m, None));
                }
            }
        }
    }

    /// Tells sessions on a group endpoint whose membership or filter changed.
    fn notify_group_change(&self, before: &BTreeMap<String, GroupDef>) {
        let after = self.groups.load();
        for s in self.all_sessions() {
            let View::Group(g) = &s.view else { continue };
            if before.get(g) != after.get(g)
                && s.initialized.load(std::sync::atomic::Ordering::Relaxed)
            {
                s.push(notification_message(
                    "notifications/tools/list_changed",
                    None,
                ));
                s.push(notification_message(
                    "notifications/prompts/list_changed",
                    None,
                ));
                s.push(notification_message(
                    "notifications/resources/list_changed",
                    None,
                ));
            }
        }
    }

    /// Hands a log message to the server's taps, forgetting the ones whose receiver is gone.
    fn tap_log(&self, server: &str, text: &str) {
        let mut taps = self.log_taps.lock().expect("log taps lock");
        if let Some(list) = taps.get_mut(server) {
            list.retain(|tx| !tx.is_closed());
            for tx in list.iter() {
                let _ = tx.try_send(text.to_string());
            }
            if list.is_empty() {
                taps.remove(server);
            }
        }
    }

    fn forward_notification(&self, server: &str, method: &str, text: String) {
        if method == "notifications/subscriptions/acknowledged" {
            // The answer to the hub's own listen request to a stateless upstream.
            return;
        }
        if method == "notifications/message" {
            self.tap_log(server, &text);
        }
        let merged = self.merged.load();
        let uri = if method == "notifications/resources/updated" {
            updated_uri(&text)
        } else {
            None
        };
        for s in self.all_sessions() {
            if !merged.in_view(&s.view, server)
                || !s.initialized.load(std::sync::atomic::Ordering::Relaxed)
            {
                continue;
            }
            match &uri {
                Some(u) => {
                    let exported = if matches!(s.view, View::Server(_)) {
                        None
                    } else {
                        merged.exported_uri(server, u)
                    };
                    let shown = exported.unwrap_or(u);
                    if s.subscriptions.lock().expect("subs lock").contains(shown) {
                        let params =
                            format!(r#"{{"uri":{}}}"#, switchboard_core::jsonrpc::quote(shown));
                        self.push_or_relay(&s, notification_message(method, Some(&params)));
                    }
                }
                None => {
                    s.push(text.clone());
                }
            }
        }
    }
}

fn updated_uri(text: &str) -> Option<String> {
    let env = switchboard_core::jsonrpc::Envelope::parse(text).ok()?;
    let fields = switchboard_core::jsonrpc::Fields::parse(env.params?.get())?;
    fields.get_str("uri").map(|u| u.into_owned())
}

async fn event_loop(
    hub: std::sync::Weak<HubInner>,
    mut rx: mpsc::UnboundedReceiver<HubEvent>,
    cancel: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = rx.recv() => ev,
        };
        let Some(first) = first else { return };
        let Some(hub) = hub.upgrade() else { return };
        // Coalesce a burst (many servers connecting at once) into one rebuild.
        let mut batch = vec![first];
        while let Ok(ev) = rx.try_recv() {
            batch.push(ev);
        }
        let changed: Vec<(String, Vec<ListKind>)> = batch
            .iter()
            .filter_map(|ev| match ev {
                HubEvent::CatalogChanged { server, kinds } => Some((server.clone(), kinds.clone())),
                _ => None,
            })
            .collect();
        if !changed.is_empty() {
            hub.rebuild();
            for (server, kinds) in &changed {
                hub.notify_list_changed(server, kinds, false);
            }
            for (server, kinds) in &changed {
                if kinds.contains(&ListKind::Tools) {
                    hub.check_pins(server);
                }
            }
        }
        for ev in batch {
            match ev {
                HubEvent::CatalogChanged { .. } => {}
                HubEvent::Notification {
                    server,
                    method,
                    text,
                } => hub.forward_notification(&server, &method, text),
                HubEvent::ServerRequest { server, text } => {
                    refuse_server_request(&hub, &server, &text)
                }
                HubEvent::ClientMessage {
                    client,
                    conn,
                    text,
                    is_request,
                    ..
                } => deliver_to_client(Hub { inner: hub.clone() }, &client, conn, text, is_request),
            }
        }
    }
}

/// A per-client upstream session spoke outside any call: only its own client hears it.
fn deliver_to_client(
    hub: Hub,
    client: &str,
    conn: Arc<switchboard_upstream::Connection>,
    text: String,
    is_request: bool,
) {
    let Some(session) = hub.session(client) else {
        return;
    };
    if !is_request {
        session.push(text);
        return;
    }
    tokio::spawn(async move {
        let sink = session.sender().clone();
        hub.forward_server_request(&session, &conn, text, &sink)
            .await;
    });
}

/// A server request that no in-flight call claimed has no client to go to: refuse it.
fn refuse_server_request(hub: &HubInner, server: &str, text: &str) {
    let Ok(env) = switchboard_core::jsonrpc::Envelope::parse(text) else {
        return;
    };
    let reply = error_message(
        env.id_text(),
        switchboard_core::jsonrpc::code::METHOD_NOT_FOUND,
        "the hub has no client to route this request to (it was not made while serving a client's request)",
        None,
    );
    if let Some(up) = hub.upstreams.load().get(server)
        && let Ok(conn) = up.connection()
    {
        tokio::spawn(async move {
            let _ = conn.send(reply).await;
        });
    }
}

async fn sweep_sessions(hub: std::sync::Weak<HubInner>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        let Some(hub) = hub.upgrade() else { return };
        let limit = hub.config.session_idle_timeout;
        let expired: Vec<String> = {
            let sessions = hub.sessions.lock().expect("sessions lock");
            sessions
                .values()
                .filter(|s| s.idle_for() > limit && s.in_flight() == 0 && !s.has_stream())
                .map(|s| s.id.clone())
                .collect()
        };
        hub.parked.purge();
        let handle = Hub { inner: hub };
        for id in expired {
            handle.close_session(&id);
        }
    }
}
