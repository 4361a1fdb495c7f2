//! [`Upstream`]: one configured server's supervisor, connection, catalog and health.
//!
//! A supervisor task owns the lifecycle: connect and initialize, fetch the catalog, serve until
//! the connection dies or the upstream is stopped, then restart with exponential backoff. A stdio
//! server that keeps crashing is marked failed and left alone. Readers never wait on the
//! supervisor: the live connection and catalog are published through `ArcSwap`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use switchboard_core::config::{ServerSpec, SessionMode, TransportSpec};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::catalog::fetch_list;
use crate::mux::{Incoming, IncomingRx};
use crate::{Catalog, Connection, InitInfo, ListKind, StderrRing, UpstreamError};

/// Supervision settings.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Limit for spawning/connecting plus `initialize`.
    pub init_timeout: Duration,
    /// Limit for fetching one list page.
    pub list_timeout: Duration,
    /// Crashes within `crash_window` after which a stdio server is marked failed.
    pub max_crashes: usize,
    /// See `max_crashes`.
    pub crash_window: Duration,
    /// First restart delay; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            init_timeout: Duration::from_secs(60),
            list_timeout: Duration::from_secs(10),
            max_crashes: 5,
            crash_window: Duration::from_secs(60),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Where an upstream is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connecting for the first time.
    Starting,
    /// Connected and serving.
    Ready,
    /// Lost or never got a connection; trying again after a delay.
    Restarting,
    /// Crashed too often; not retried.
    Failed,
    /// Configured as disabled.
    Disabled,
    /// Stopped by the hub.
    Stopped,
}

impl State {
    /// Lower-case name for status output.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Restarting => "restarting",
            State::Failed => "failed",
            State::Disabled => "disabled",
            State::Stopped => "stopped",
        }
    }
}

/// A point-in-time view of an upstream's health.
#[derive(Debug, Clone)]
pub struct Status {
    /// Lifecycle state.
    pub state: State,
    /// The most recent failure, if any.
    pub last_error: Option<String>,
    /// When the current connection became ready.
    pub ready_since: Option<SystemTime>,
    /// Connections lost or failed since start.
    pub restarts: u32,
    /// Lists fetched again after the server said they changed (`list_changed`).
    pub list_refreshes: u32,
    /// Process id of a running stdio server.
    pub pid: Option<u32>,
}

/// What an upstream reports to the hub.
#[derive(Debug)]
pub enum HubEvent {
    /// The upstream's catalog (or its availability) changed.
    CatalogChanged {
        /// Server name.
        server: String,
        /// Which lists changed.
        kinds: Vec<ListKind>,
    },
    /// A notification not tied to any request (`message`, `resources/updated`, ...).
    Notification {
        /// Server name.
        server: String,
        /// Its method.
        method: String,
        /// The whole message.
        text: String,
    },
    /// A server-to-client request no in-flight call claimed.
    ServerRequest {
        /// Server name.
        server: String,
        /// The whole message.
        text: String,
    },
    /// Something a per-client session of the server said outside any call: it belongs to
    /// that client alone.
    ClientMessage {
        /// Server name.
        server: String,
        /// The client session it belongs to.
        client: String,
        /// The connection it came on (to answer requests).
        conn: Arc<Connection>,
        /// The whole message.
        text: String,
        /// True for a request, false for a notification.
        is_request: bool,
    },
}

struct Inner {
    spec: ServerSpec,
    /// The transport that worked, when it was detected rather than configured (a Streamable
    /// HTTP URL that turned out to be a legacy SSE stream): used for the upstream's lifetime.
    detected: ArcSwapOption<ServerSpec>,
    conn: ArcSwapOption<Connection>,
    info: ArcSwapOption<InitInfo>,
    catalog: ArcSwap<Catalog>,
    /// The catalog the server had when its connection was last lost: its names still
    /// resolve (to "unavailable") while it is down.
    last_good: ArcSwapOption<Catalog>,
    status: Mutex<Status>,
    stderr: Arc<StderrRing>,
    cancel: CancellationToken,
    stopped: Notify,
    finished: std::sync::atomic::AtomicBool,
    events: mpsc::Sender<HubEvent>,
    client: reqwest::Client,
    opts: UpstreamOptions,
    /// Connections besides the shared one, by what they are for.
    clients: Mutex<HashMap<ClientKey, Arc<Connection>>>,
    /// One gate per connection being opened, so a key never gets two connections while
    /// opening one never waits for another key's.
    opening: Mutex<HashMap<ClientKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// What an extra connection to an upstream is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    /// A client session's own (`session: per-client`), by client session id.
    Session(String),
    /// Stateless clients that declared exactly these capabilities (their JSON).
    Declaring(String),
    /// A user's own upstream headers: the user, and a digest of the headers.
    Credentials(String, u64),
}

/// A handle to one supervised upstream server. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

impl Upstream {
    /// Starts supervising `spec` (unless it is disabled).
    pub fn start(
        spec: ServerSpec,
        client: reqwest::Client,
        opts: UpstreamOptions,
        events: mpsc::Sender<HubEvent>,
    ) -> Upstream {
        let disabled = spec.disabled;
        let inner = Arc::new(Inner {
            spec,
            detected: ArcSwapOption::empty(),
            conn: ArcSwapOption::empty(),
            info: ArcSwapOption::empty(),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            last_good: ArcSwapOption::empty(),
            status: Mutex::new(Status {
                state: if disabled {
                    State::Disabled
                } else {
                    State::Starting
                },
                last_error: None,
                ready_since: None,
                restarts: 0,
                list_refreshes: 0,
                pid: None,
            }),
            stderr: Arc::new(StderrRing::new(200)),
            cancel: CancellationToken::new(),
            stopped: Notify::new(),
            finished: std::sync::atomic::AtomicBool::new(disabled),
            events,
            client,
            opts,
            clients: Mutex::new(HashMap::new()),
            opening: Mutex::new(HashMap::new()),
        });
        if !disabled {
            tokio::spawn(supervise(inner.clone()));
        }
        Upstream { inner }
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }

    /// Its configuration.
    pub fn spec(&self) -> &ServerSpec {
        &self.inner.spec
    }

    /// The transport in use: the configured one, or the one detected at the configured URL
    /// (`sse` for a Streamable HTTP URL that turned out to be a legacy SSE stream).
    pub fn transport_kind(&self) -> &'static str {
        self.inner.connect_spec().transport.kind()
    }

    /// The live connection, if ready.
    pub fn connection(&self) -> Result<Arc<Connection>, UpstreamError> {
        self.inner.conn.load_full().ok_or_else(|| {
            let st = self.status();
            let why = match st.last_error {
                Some(e) => format!("{}: {e}", st.state.as_str()),
                None => st.state.as_str().to_string(),
            };
            UpstreamError::NotConnected(why)
        })
    }

    /// The connection to use for client `client`: the shared one, or (for `per-client`
    /// servers) the client's own, opened on first use.
    pub async fn connection_for(&self, client: &str) -> Result<Arc<Connection>, UpstreamError> {
        let shared = self.connection()?;
        if self.inner.spec.session == SessionMode::Shared || client.is_empty() {
            return Ok(shared);
        }
        self.open_client(
            ClientKey::Session(client.to_string()),
            &self.inner.connect_spec(),
            crate::client_capabilities(),
        )
        .await
    }

    /// A session of its own that declares exactly `capabilities` in `initialize`, for the
    /// stateless clients that declare them, so a session-based remote server asks them only
    /// what they can answer. Remote servers only: a stdio server stays one process whatever
    /// clients declare (its shared connection declared what the hub can bridge, and what a
    /// client lacks is refused per request). At most [`MAX_DECLARING`] such sessions per
    /// server; past that, the shared one.
    pub async fn connection_declaring(
        &self,
        capabilities: &str,
    ) -> Result<Arc<Connection>, UpstreamError> {
        let shared = self.connection()?;
        if capabilities == crate::client_capabilities() || self.transport_kind() == "stdio" {
            return Ok(shared);
        }
        let key = ClientKey::Declaring(capabilities.to_string());
        let known = {
            let clients = self.inner.clients.lock().expect("clients lock");
            let declaring = clients
                .keys()
                .filter(|k| matches!(k, ClientKey::Declaring(_)))
                .count();
            clients.contains_key(&key) || declaring < MAX_DECLARING
        };
        if !known {
            return Ok(shared);
        }
        self.open_client(key, &self.inner.connect_spec(), capabilities)
            .await
    }

    /// A connection that sends `headers` instead of the configured ones of the same names (a
    /// user's own credentials), shared by every session of `owner` with these headers and
    /// opened on first use. A stdio server has no headers: its shared connection is used.
    pub async fn connection_with_headers(
        &self,
        owner: &str,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<Arc<Connection>, UpstreamError> {
        let mut spec = (*self.inner.connect_spec()).clone();
        let configured = match &mut spec.transport {
            TransportSpec::StreamableHttp { headers, .. } | TransportSpec::Sse { headers, .. } => {
                headers
            }
            TransportSpec::Stdio { .. } => return self.connection(),
        };
        for (name, value) in headers {
            configured.retain(|k, _| !k.eq_ignore_ascii_case(name));
            configured.insert(name.clone(), value.clone());
        }
        // The key changes with the headers, so new credentials get a new connection.
        let digest = headers
            .iter()
            .flat_map(|(k, v)| k.bytes().chain([0]).chain(v.bytes()).chain([0]))
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        self.open_client(
            ClientKey::Credentials(owner.to_string(), digest),
            &spec,
            crate::client_capabilities(),
        )
        .await
    }

    /// The connection registered under `key`, opened with `spec` on first use.
    async fn open_client(
        &self,
        key: ClientKey,
        spec: &ServerSpec,
        capabilities: &str,
    ) -> Result<Arc<Connection>, UpstreamError> {
        if let Some(c) = self.inner.clients.lock().expect("clients lock").get(&key) {
            return Ok(c.clone());
        }
        let gate = self
            .inner
            .opening
            .lock()
            .expect("opening lock")
            .entry(key.clone())
            .or_default()
            .clone();
        let _guard = gate.lock().await;
        if let Some(c) = self.inner.clients.lock().expect("clients lock").get(&key) {
            return Ok(c.clone());
        }
        let (tx, rx) = crate::mux::incoming_channel();
        let opened = Connection::open_declaring(
            spec,
            &self.inner.client,
            self.inner.stderr.clone(),
            tx,
            self.inner.opts.init_timeout,
            capabilities,
        )
        .await;
        let result = opened.map(|(conn, _)| {
            let conn = Arc::new(conn);
            self.inner
                .clients
                .lock()
                .expect("clients lock")
                .insert(key.clone(), conn.clone());
            tokio::spawn(serve_client(
                self.inner.clone(),
                key.clone(),
                conn.clone(),
                rx,
            ));
            conn
        });
        // Whoever waits at this gate finds the connection (or tries again on failure).
        let mut opening = self.inner.opening.lock().expect("opening lock");
        if opening.get(&key).is_some_and(|g| Arc::ptr_eq(g, &gate)) {
            opening.remove(&key);
        }
        result
    }

    /// Closes client `client`'s own session, if it has one.
    pub async fn release_client(&self, client: &str) {
        let conn = self
            .inner
            .clients
            .lock()
            .expect("clients lock")
            .remove(&ClientKey::Session(client.to_string()));
        if let Some(c) = conn {
            c.shutdown().await;
        }
    }

    /// Number of per-client sessions open.
    pub fn client_sessions(&self) -> usize {
        self.inner.clients.lock().expect("clients lock").len()
    }

    /// What the server said in `initialize`.
    pub fn info(&self) -> Option<Arc<InitInfo>> {
        self.inner.info.load_full()
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.load_full()
    }

    /// While the server is down: the catalog it had when its connection was last lost (none
    /// if it never came up). Lists leave a down server out, but its names stay known.
    pub fn last_catalog(&self) -> Option<Arc<Catalog>> {
        if self.inner.conn.load().is_some() {
            return None;
        }
        self.inner.last_good.load_full()
    }

    /// Health and lifecycle.
    pub fn status(&self) -> Status {
        self.inner.status.lock().expect("status lock").clone()
    }

    /// The last `n` stderr lines (stdio servers).
    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        self.inner.stderr.tail(n)
    }

    /// Stops the supervisor and closes the connection (stdio: the whole process group).
    pub async fn stop(&self) {
        self.inner.cancel.cancel();
        let clients: Vec<Arc<Connection>> = self
            .inner
            .clients
            .lock()
            .expect("clients lock")
            .drain()
            .map(|(_, c)| c)
            .collect();
        for c in clients {
            c.shutdown().await;
        }
        while !self
            .inner
            .finished
            .load(std::sync::atomic::Ordering::Acquire)
        {
            let wait = self.inner.stopped.notified();
            if self
                .inner
                .finished
                .load(std::sync::atomic::Ordering::Acquire)
            {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), wait).await;
        }
    }
}

impl Inner {
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().expect("status lock"));
    }

    /// Tells the hub a list changed. Waits while the hub's event queue is full: a catalog
    /// change is never dropped.
    async fn emit_catalog(&self, kinds: Vec<ListKind>) {
        let _ = self
            .events
            .send(HubEvent::CatalogChanged {
                server: self.spec.name.clone(),
                kinds,
            })
            .await;
    }

    /// The spec to connect with: the detected transport once one was, else the configured.
    fn connect_spec(&self) -> Arc<ServerSpec> {
        self.detected
            .load_full()
            .unwrap_or_else(|| Arc::new(self.spec.clone()))
    }

    fn is_stdio(&self) -> bool {
        matches!(self.spec.transport, TransportSpec::Stdio { .. })
    }
}

async fn supervise(inner: Arc<Inner>) {
    let mut crashes: VecDeque<Instant> = VecDeque::new();
    let mut consecutive = 0u32;
    loop {
        let outcome = tokio::select! {
            _ = inner.cancel.cancelled() => break,
            r = connect(&inner) => r,
        };
        match outcome {
            Ok((conn, incoming)) => {
                consecutive = 0;
                let started = Instant::now();
                let died = serve(&inner, &conn, incoming).await;
                inner.conn.store(None);
                let last = inner.catalog.swap(Arc::new(Catalog::default()));
                inner.last_good.store(Some(last));
                inner.emit_catalog(ListKind::ALL.to_vec()).await;
                conn.shutdown().await;
                let Some(reason) = died else { break };
                tracing::warn!(message = "Upstream connection lost.", server = %inner.spec.name, %reason);
                inner.set_status(|s| {
                    s.last_error = Some(reason);
                    s.ready_since = None;
                    s.pid = None;
                    s.restarts += 1;
                });
                if started.elapsed() > inner.opts.crash_window {
                    crashes.clear();
                }
            }
            Err(e) => {
                tracing::warn!(message = "Upstream failed to start.", server = %inner.spec.name, error = %e);
                inner.set_status(|s| {
                    s.last_error = Some(e.to_string());
                    s.restarts += 1;
                });
            }
        }
        let now = Instant::now();
        crashes.push_back(now);
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > inner.opts.crash_window)
        {
            crashes.pop_front();
        }
        if inner.is_stdio() && crashes.len() >= inner.opts.max_crashes {
            tracing::error!(message = "Upstream keeps crashing; giving up.", server = %inner.spec.name, crashes = crashes.len());
            inner.set_status(|s| s.state = State::Failed);
            inner.cancel.cancelled().await;
            break;
        }
        inner.set_status(|s| s.state = State::Restarting);
        let delay = backoff(&inner.opts, consecutive);
        consecutive += 1;
        tokio::select! {
            _ = inner.cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    inner.set_status(|s| {
        if s.state != State::Failed {
            s.state = State::Stopped;
        }
        s.pid = None;
    });
    inner
        .finished
        .store(true, std::sync::atomic::Ordering::Release);
    inner.stopped.notify_waiters();
}

fn backoff(opts: &UpstreamOptions, n: u32) -> Duration {
    let factor = 1u32 << n.min(16);
    (opts.backoff_base * factor).min(opts.backoff_max)
}

/// Key prefix of the sessions opened for a set of declared client capabilities.
/// Sessions per remote server opened for particular declared client capabilities.
const MAX_DECLARING: usize = 8;

type Connected = (Arc<Connection>, IncomingRx);

async fn connect(inner: &Arc<Inner>) -> Result<Connected, UpstreamError> {
    let (tx, rx) = crate::mux::incoming_channel();
    let spec = inner.connect_spec();
    let (conn, info) = Connection::open(
        &spec,
        &inner.client,
        inner.stderr.clone(),
        tx,
        inner.opts.init_timeout,
    )
    .await?;
    if matches!(conn, Connection::Sse(_)) && inner.detected.load().is_none() {
        // Detected, not configured: remember it, so reconnects go straight to it.
        inner
            .detected
            .store(crate::connection::legacy_sse_of(&spec).map(Arc::new));
    }
    let conn = Arc::new(conn);
    let mut catalog = Catalog::default();
    for kind in ListKind::ALL {
        if !info.has(kind.capability()) {
            continue;
        }
        match fetch_list(&conn, kind, inner.opts.list_timeout).await {
            Ok(items) => catalog = catalog.with(kind, items),
            Err(e) => {
                tracing::warn!(message = "Upstream list failed; left out.", server = %inner.spec.name, list = kind.method(), error = %e);
            }
        }
    }
    let pid = conn.pid();
    inner.info.store(Some(Arc::new(info)));
    inner.catalog.store(Arc::new(catalog));
    inner.conn.store(Some(conn.clone()));
    inner.set_status(|s| {
        s.state = State::Ready;
        s.ready_since = Some(SystemTime::now());
        s.pid = pid;
    });
    tracing::info!(message = "Upstream ready.", server = %inner.spec.name, transport = spec.transport.kind());
    inner.emit_catalog(ListKind::ALL.to_vec()).await;
    Ok((conn, rx))
}

/// Serves a live connection; returns why it died, or `None` when stopped on purpose.
async fn serve(
    inner: &Arc<Inner>,
    conn: &Arc<Connection>,
    mut incoming: IncomingRx,
) -> Option<String> {
    loop {
        tokio::select! {
            _ = inner.cancel.cancelled() => return None,
            reason = conn.closed() => return Some(reason),
            Some(msg) = incoming.recv() => handle_incoming(inner, conn, msg).await,
        }
    }
}

/// Relays what a per-client session says outside calls to its client, until it closes.
async fn serve_client(
    inner: Arc<Inner>,
    key: ClientKey,
    conn: Arc<Connection>,
    mut rx: IncomingRx,
) {
    loop {
        let msg = tokio::select! {
            _ = inner.cancel.cancelled() => break,
            _ = conn.closed() => break,
            m = rx.recv() => m,
        };
        let Some(msg) = msg else { break };
        let (text, is_request) = match msg {
            Incoming::Notification { method, .. }
                if ListKind::from_list_changed(&method).is_some() =>
            {
                // The catalog comes from the shared session. A session opened for a set of
                // client capabilities serves stateless clients, who hear of changes only on
                // their listen streams: pass the announcement on.
                if matches!(key, ClientKey::Declaring(_))
                    && let Some(kinds) = ListKind::from_list_changed(&method)
                {
                    inner.emit_catalog(kinds.to_vec()).await;
                }
                continue;
            }
            Incoming::Notification { text, .. } => (text, false),
            Incoming::Request { text, .. } => (text, true),
        };
        // Only a client session's own connection has one client to tell; what the others
        // say outside a call has nobody to go to.
        let ClientKey::Session(client) = &key else {
            continue;
        };
        let event = HubEvent::ClientMessage {
            server: inner.spec.name.clone(),
            client: client.clone(),
            conn: conn.clone(),
            text,
            is_request,
        };
        let _ = inner.events.send(event).await;
    }
    let mut clients = inner.clients.lock().expect("clients lock");
    if clients.get(&key).is_some_and(|c| Arc::ptr_eq(c, &conn)) {
        clients.remove(&key);
    }
}

async fn handle_incoming(inner: &Arc<Inner>, conn: &Arc<Connection>, msg: Incoming) {
    let server = inner.spec.name.clone();
    match msg {
        Incoming::Notification { method, text } => {
            if let Some(kinds) = ListKind::from_list_changed(&method) {
                let mut catalog = (*inner.catalog.load_full()).clone();
                for &kind in kinds {
                    match fetch_list(conn, kind, inner.opts.list_timeout).await {
                        Ok(items) => catalog = catalog.with(kind, items),
                        Err(e) => {
                            tracing::warn!(message = "Refreshing an upstream list failed.", %server, error = %e)
                        }
                    }
                }
                inner.catalog.store(Arc::new(catalog));
                inner.set_status(|s| s.list_refreshes += kinds.len() as u32);
                inner.emit_catalog(kinds.to_vec()).await;
            } else {
                let _ = inner
                    .events
                    .send(HubEvent::Notification {
                        server,
                        method,
                        text,
                    })
                    .await;
            }
        }
        Incoming::Request { text, .. } => {
            let _ = inner
                .events
                .send(HubEvent::ServerRequest { server, text })
                .await;
        }
    }
}
