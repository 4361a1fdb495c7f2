//! Proxy sessions (seed 002): a caller brings a remote MCP server's URL and credentials and gets
//! a time-limited, prefixed connection to it.
//!
//! A session is a hub server named by its prefix (`trusted: false`, so it connects through the
//! hub's guarded client), which makes its tools appear on the tenant's `/mcp` endpoint as
//! `{prefix}{separator}{tool}` and disappear, with `list_changed`, when it ends. The REST calls
//! use that same upstream connection.
//!
//! The store holds every session (keyed by tenant and the SHA-256 of its id; headers sealed),
//! so a replica that shares the database can serve a session another one created: it mounts
//! the session on first use. Each request re-reads the session row, so a deletion or refresh on
//! one replica is seen by all at once. A background sweeper closes expired sessions (store row
//! and upstream connection) and unmounts sessions that another replica deleted.
//!
//! Secrets (the `token` and header values) live in the upstream's spec in memory and, sealed, in
//! the store. They are never logged: [`SessionRecord`]'s `Debug` is not used here, and errors
//! carry no header values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use switchboard_core::jsonrpc::{error_message, request_message};
use switchboard_hub::HubError;
use switchboard_store::{SessionRecord, StoreError};
use switchboard_upstream::{CallEvent, CallOptions, State, Upstream, UpstreamError};
use tokio::sync::mpsc;

use crate::{ControlError, ControlPlane, check_ssrf, remote_spec};

/// Where session lifetimes get "now" from: the system clock, or a manual one in tests.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Unix milliseconds now.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::now_ms()
    }
}

/// A clock that moves only when told to (tests of expiry).
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    /// A clock showing `start_ms`.
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock {
            ms: AtomicI64::new(start_ms),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// Session limits and timings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Lifetime of a session created without `ttl_seconds` (default 30 minutes).
    pub default_ttl: Duration,
    /// Longest lifetime a session or a refresh may ask for; longer requests are cut to it
    /// (default 24 hours).
    pub max_ttl: Duration,
    /// Most sessions one tenant may hold (counted in the store, so across replicas).
    pub max_per_tenant: usize,
    /// Most sessions mounted in this process, all tenants together (see `live`).
    pub max_total: usize,
    /// Sessions mounted in this process. Every tenant's control plane gets a clone of the same
    /// counter, so `max_total` holds across tenants.
    pub live: Arc<AtomicUsize>,
    /// How often the sweeper looks for expired sessions.
    pub sweep_every: Duration,
    /// How long creating (or mounting on demand) may wait for the remote to connect.
    pub connect_timeout: Duration,
    /// The clock lifetimes are measured with.
    pub clock: Arc<dyn Clock>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            default_ttl: Duration::from_secs(1800),
            max_ttl: Duration::from_secs(24 * 3600),
            max_per_tenant: 100,
            max_total: 1000,
            live: Arc::new(AtomicUsize::new(0)),
            sweep_every: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(15),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What a caller asks for when opening a session.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// The remote server's URL (must pass the SSRF policy).
    pub remote_url: String,
    /// Bearer token, sent as `Authorization: Bearer <token>` unless `headers` has one.
    pub token: Option<String>,
    /// Headers sent on every request to the remote.
    pub headers: BTreeMap<String, String>,
    /// Requested lifetime in seconds (default and cap from [`SessionSettings`]).
    pub ttl_seconds: Option<u64>,
    /// `streamable-http` or `sse`; inferred from the URL when absent.
    pub transport: Option<String>,
}

/// A session as the API shows it (never with its secrets).
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    /// The session id: only in the answer to the request that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The server name its tools carry on `/mcp`.
    pub prefix: String,
    /// The remote server's URL.
    pub remote_url: String,
    /// `streamable-http` or `sse`.
    pub transport: String,
    /// When it expires (RFC 3339, UTC).
    pub expires_at: String,
    /// When it expires (Unix milliseconds).
    pub expires_at_ms: i64,
    /// The lifetime a refresh grants by default, in seconds.
    pub ttl_seconds: i64,
    /// Connection state in this process (`ready`, `starting`, `restarting`, or `not mounted`
    /// when this replica has not used it yet).
    pub state: String,
    /// Whether this process has it mounted (its tools on this replica's `/mcp`).
    pub mounted_here: bool,
    /// Who opened it, as the audit log names callers (`user:alice`, `user:alice (key …)`,
    /// `admin-token`).
    pub created_by: String,
    /// When it was opened (RFC 3339, UTC).
    pub created_at: String,
    /// When it was opened (Unix milliseconds).
    pub created_at_ms: i64,
}

/// A live session, resolved for one request.
#[derive(Clone)]
pub struct SessionHandle {
    /// Its prefix (the hub server name).
    pub prefix: String,
    upstream: Upstream,
    hub: switchboard_hub::Hub,
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// The upstream the session is mounted as.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Sends one request to the remote and returns its whole reply message (JSON-RPC text, with
    /// `result` or `error`). With `progress`, a `tools/call`-style request gets a progress
    /// token, and every notification the remote sends about the request while it runs
    /// (progress, log messages) goes to `progress` as message text; log messages the remote
    /// sends on its shared stream while the request runs count too. Requests the
    /// remote makes of the client (sampling, elicitation, roots) are refused: a REST caller
    /// cannot answer them. Dropping the future cancels the request upstream.
    pub async fn request(
        &self,
        method: &str,
        params: Option<&str>,
        progress: Option<mpsc::Sender<String>>,
    ) -> Result<String, ControlError> {
        let conn = self
            .upstream
            .connection()
            .map_err(|e| ControlError::Unreachable(format!("session {}: {e}", self.prefix)))?;
        let id = conn.next_id();
        let params = match (&progress, params) {
            (Some(_), Some(p)) => Some(with_progress_token(p, id)),
            (_, p) => p.map(str::to_string),
        };
        let body = request_message(&id.to_string(), method, params.as_deref());
        let (tx, mut rx) = mpsc::channel::<CallEvent>(64);
        let opts = CallOptions {
            timeout: self.upstream.spec().timeout,
            events: Some(tx),
            retry_safe: false,
            headers: Vec::new(),
        };
        // Log messages that do not travel on the request's own stream (legacy SSE, or an
        // upstream that sends them on its standalone stream) are tapped from the hub.
        let mut logs = progress.as_ref().map(|_| self.hub.tap_logs(&self.prefix));
        let call = conn.call(id, body, opts);
        tokio::pin!(call);
        let mut events_open = true;
        let reply = loop {
            tokio::select! {
                biased;
                log = async { logs.as_mut().expect("guarded by the condition").recv().await }, if logs.is_some() => {
                    match (log, &progress) {
                        (Some(text), Some(out)) => {
                            let _ = out.send(text).await;
                        }
                        _ => logs = None,
                    }
                }
                ev = rx.recv(), if events_open => match ev {
                    Some(CallEvent::Notification(text)) => {
                        if let Some(out) = &progress {
                            // The receiver is gone only when the caller is; the caller then
                            // drops this future, which cancels the call.
                            let _ = out.send(text).await;
                        }
                    }
                    Some(CallEvent::ServerRequest(text)) => refuse(&conn, &text).await,
                    None => events_open = false,
                },
                r = &mut call => break r,
            }
        };
        // Notifications that arrived just before the reply still go out first.
        while let Ok(ev) = rx.try_recv() {
            if let (CallEvent::Notification(text), Some(out)) = (ev, &progress) {
                let _ = out.send(text).await;
            }
        }
        reply.map_err(|e| upstream_error(&self.prefix, e))
    }
}

/// Adds `"_meta":{"progressToken":id}` to a JSON object's text (the connection matches
/// progress to the request by that token).
fn with_progress_token(params: &str, id: u64) -> String {
    let rest = params
        .trim_start()
        .strip_prefix('{')
        .unwrap_or("}")
        .trim_start();
    let sep = if rest.starts_with('}') { "" } else { "," };
    format!("{{\"_meta\":{{\"progressToken\":{id}}}{sep}{rest}")
}

async fn refuse(conn: &switchboard_upstream::Connection, text: &str) {
    let Ok(env) = switchboard_core::jsonrpc::Envelope::parse(text) else {
        return;
    };
    let reply = error_message(
        env.id_text(),
        switchboard_core::jsonrpc::code::METHOD_NOT_FOUND,
        "this call came through the REST session API, whose caller cannot answer requests",
        None,
    );
    let _ = conn.send(reply).await;
}

fn upstream_error(prefix: &str, e: UpstreamError) -> ControlError {
    match e {
        UpstreamError::Timeout(d) => ControlError::Timeout(format!(
            "session {prefix}: the remote did not answer within {d:?}"
        )),
        other => ControlError::Unreachable(format!("session {prefix}: {other}")),
    }
}

/// The session state a control plane keeps in memory: which sessions this process mounted.
#[derive(Default)]
pub(crate) struct SessionState {
    /// id hash -> prefix of sessions mounted on this process's hub.
    mounted: Mutex<HashMap<String, String>>,
    /// id hashes of sessions mounted but not yet recorded (being created): the sweeper must
    /// not take them for sessions deleted elsewhere.
    creating: Mutex<HashSet<String>>,
    /// Serialises creations, so the per-tenant limit is not overrun by a burst.
    create: tokio::sync::Mutex<()>,
}

/// Hex SHA-256 of a session id: the only form in which ids are stored.
pub fn hash_id(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new session id: 256 random bits, hex.
fn new_session_id() -> String {
    random_hex(32)
}

/// A new prefix: `s` and 12 hex digits (letters and digits only, so it is a valid server name
/// whatever the separator).
fn new_prefix() -> String {
    format!("s{}", random_hex(6))
}

/// The headers sent upstream: `headers`, plus `Authorization: Bearer <token>` unless `headers`
/// already has an `Authorization` header (in any case), which wins.
pub fn upstream_headers(
    headers: &BTreeMap<String, String>,
    token: Option<&str>,
) -> BTreeMap<String, String> {
    let mut out = headers.clone();
    let has_auth = headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("authorization"));
    if let Some(token) = token.filter(|t| !t.is_empty())
        && !has_auth
    {
        out.insert("Authorization".into(), format!("Bearer {token}"));
    }
    out
}

/// `2025-01-31T12:34:56Z` for Unix milliseconds (UTC, whole seconds).
pub use switchboard_core::time::rfc3339;

fn not_found() -> ControlError {
    ControlError::NotFound(
        "no such session: it never existed, expired or was closed (create a new one with POST /api/v1/server)"
            .into(),
    )
}

impl ControlPlane {
    fn session_settings(&self) -> &SessionSettings {
        &self.config.sessions
    }

    fn now(&self) -> i64 {
        self.config.sessions.clock.now_ms()
    }

    /// The lifetime for a requested `ttl_seconds`: the default when absent, at most the cap.
    fn ttl_for(&self, requested: Option<u64>) -> Duration {
        let s = self.session_settings();
        requested
            .map(Duration::from_secs)
            .unwrap_or(s.default_ttl)
            .clamp(Duration::from_secs(1), s.max_ttl)
    }

    /// Opens a session: checks the URL, connects to the remote and waits until it answered
    /// `initialize` and its lists, then records the session. Returns the view with the id.
    ///
    /// Errors: `Invalid` (bad URL or transport), `Forbidden` (SSRF refusal), `Limit` (too many
    /// sessions), `Unreachable` (the remote did not come up within the connect timeout).
    pub async fn create_session(
        &self,
        input: NewSession,
        actor: &str,
    ) -> Result<SessionView, ControlError> {
        let headers = upstream_headers(&input.headers, input.token.as_deref());
        // Validate the URL and transport before anything else (a throwaway name for the spec).
        let probe_spec = remote_spec(
            "session",
            &input.remote_url,
            input.transport.as_deref(),
            BTreeMap::new(),
        )?;
        let transport = probe_spec.transport.kind().to_string();
        check_ssrf(&self.config.ssrf, &input.remote_url).await?;
        let ttl = self.ttl_for(input.ttl_seconds);
        let settings = self.session_settings().clone();

        let _serial = self.session_state.create.lock().await;
        let held = self.store.list_sessions(&self.config.tenant).await?;
        let now = self.now();
        let live_here = held.iter().filter(|r| r.expires_at > now).count();
        if live_here >= settings.max_per_tenant {
            return Err(ControlError::Limit(format!(
                "this tenant already holds {live_here} sessions (limit {}); close one with DELETE /api/v1/server/{{id}} or wait for one to expire",
                settings.max_per_tenant
            )));
        }
        let id = new_session_id();
        let id_hash = hash_id(&id);
        let mut record = SessionRecord {
            tenant: self.config.tenant.clone(),
            id_hash: id_hash.clone(),
            prefix: String::new(),
            remote_url: input.remote_url.clone(),
            transport,
            headers,
            ttl_secs: ttl.as_secs() as i64,
            created_by: actor.to_string(),
            created_at: now,
            expires_at: 0,
        };
        self.session_state
            .creating
            .lock()
            .expect("sessions lock")
            .insert(id_hash.clone());
        let created = self.create_recorded(&mut record, &held, ttl).await;
        self.session_state
            .creating
            .lock()
            .expect("sessions lock")
            .remove(&id_hash);
        let up = created?;
        tracing::info!(message = "Session opened.", tenant = %record.tenant, prefix = %record.prefix, ttl_secs = record.ttl_secs);
        let mut view = self.session_view(&record, Some(&up));
        view.session_id = Some(id);
        Ok(view)
    }

    /// Mounts a new session under a fresh prefix, then records it with its expiry.
    async fn create_recorded(
        &self,
        record: &mut SessionRecord,
        held: &[SessionRecord],
        ttl: Duration,
    ) -> Result<Upstream, ControlError> {
        let id_hash = record.id_hash.clone();
        // A fresh prefix that no server, group or session of this tenant uses.
        let mut mounted = None;
        for _ in 0..4 {
            record.prefix = new_prefix();
            if held.iter().any(|r| r.prefix == record.prefix) {
                continue;
            }
            match self.mount_session(record).await {
                Ok(up) => {
                    mounted = Some(up);
                    break;
                }
                Err(ControlError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(up) = mounted else {
            return Err(ControlError::Conflict(
                "could not find a free session prefix; try again".into(),
            ));
        };
        // Connected and listed: only now does the session exist for anyone.
        record.expires_at = self.now() + ttl.as_millis() as i64;
        if let Err(e) = self.store.insert_session(record).await {
            self.unmount_session(&id_hash).await;
            return Err(match e {
                StoreError::Conflict => {
                    ControlError::Conflict("session id or prefix clash; try again".into())
                }
                e => e.into(),
            });
        }
        Ok(up)
    }

    /// Mounts a recorded session on this process's hub and waits for it to connect.
    async fn mount_session(&self, record: &SessionRecord) -> Result<Upstream, ControlError> {
        let settings = self.session_settings();
        if settings.live.load(Ordering::SeqCst) >= settings.max_total {
            return Err(ControlError::Limit(format!(
                "the hub holds its maximum of {} sessions; try again later",
                settings.max_total
            )));
        }
        let spec = remote_spec(
            &record.prefix,
            &record.remote_url,
            Some(&record.transport),
            record.headers.clone(),
        )?;
        match self.hub.add_server(spec).await {
            Ok(()) => {}
            Err(HubError::Conflict(n)) => {
                return Err(ControlError::Conflict(format!(
                    "the name {n:?} is taken on this hub"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        settings.live.fetch_add(1, Ordering::SeqCst);
        self.session_state
            .mounted
            .lock()
            .expect("sessions lock")
            .insert(record.id_hash.clone(), record.prefix.clone());
        let Some(up) = self.hub.upstream(&record.prefix) else {
            self.unmount_session(&record.id_hash).await;
            return Err(ControlError::Unreachable("the session was closed".into()));
        };
        match wait_ready(&up, settings.connect_timeout).await {
            Ok(()) => Ok(up),
            Err(why) => {
                self.unmount_session(&record.id_hash).await;
                Err(ControlError::Unreachable(format!(
                    "cannot connect to {}: {why}",
                    redact(&record.remote_url)
                )))
            }
        }
    }

    /// Removes a session's mount from this process (if it has one) and closes its upstream.
    async fn unmount_session(&self, id_hash: &str) {
        let prefix = self
            .session_state
            .mounted
            .lock()
            .expect("sessions lock")
            .remove(id_hash);
        if let Some(prefix) = prefix {
            self.config.sessions.live.fetch_sub(1, Ordering::SeqCst);
            let _ = self.hub.remove_server(&prefix).await;
        }
    }

    /// The live session `id` of this tenant, mounted here if another replica created it.
    /// An expired session is closed on the spot and reported as not found.
    pub async fn session(&self, id: &str) -> Result<SessionHandle, ControlError> {
        let record = self.live_record(id).await?;
        let mounted = self
            .session_state
            .mounted
            .lock()
            .expect("sessions lock")
            .get(&record.id_hash)
            .cloned();
        let up = match mounted.and_then(|p| self.hub.upstream(&p)) {
            Some(up) => up,
            None => {
                let _serial = self.session_state.create.lock().await;
                // Another request may have mounted it while this one waited.
                let again = self
                    .session_state
                    .mounted
                    .lock()
                    .expect("sessions lock")
                    .get(&record.id_hash)
                    .cloned();
                match again.and_then(|p| self.hub.upstream(&p)) {
                    Some(up) => up,
                    None => self.mount_session(&record).await?,
                }
            }
        };
        Ok(SessionHandle {
            prefix: record.prefix,
            upstream: up,
            hub: self.hub.clone(),
        })
    }

    /// The store's record of session `id`, if it exists and has not expired.
    async fn live_record(&self, id: &str) -> Result<SessionRecord, ControlError> {
        if id.is_empty() || id.len() > 256 {
            return Err(not_found());
        }
        let id_hash = hash_id(id);
        let record = self
            .store
            .get_session(&self.config.tenant, &id_hash)
            .await?
            .ok_or_else(not_found)?;
        if record.expires_at <= self.now() {
            self.end_session(&id_hash).await?;
            return Err(not_found());
        }
        Ok(record)
    }

    /// Describes session `id`.
    pub async fn describe_session(&self, id: &str) -> Result<SessionView, ControlError> {
        let record = self.live_record(id).await?;
        let up = self.mounted_upstream(&record.id_hash);
        Ok(self.session_view(&record, up.as_ref()))
    }

    fn mounted_upstream(&self, id_hash: &str) -> Option<Upstream> {
        let prefix = self
            .session_state
            .mounted
            .lock()
            .expect("sessions lock")
            .get(id_hash)
            .cloned();
        prefix.and_then(|p| self.hub.upstream(&p))
    }

    /// Extends session `id` by `ttl_seconds` (or its own lifetime) from now; returns the new
    /// expiry in Unix milliseconds.
    pub async fn refresh_session(
        &self,
        id: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<i64, ControlError> {
        let record = self.live_record(id).await?;
        let ttl = match ttl_seconds {
            Some(t) => self.ttl_for(Some(t)),
            None => self.ttl_for(Some(record.ttl_secs.max(1) as u64)),
        };
        let expires_at = self.now() + ttl.as_millis() as i64;
        if !self
            .store
            .set_session_expiry(&self.config.tenant, &record.id_hash, expires_at)
            .await?
        {
            return Err(not_found());
        }
        Ok(expires_at)
    }

    /// Closes session `id`: deletes its record and closes its upstream connection.
    pub async fn close_session(&self, id: &str) -> Result<(), ControlError> {
        let id_hash = hash_id(id);
        if !self.end_session(&id_hash).await? {
            return Err(not_found());
        }
        Ok(())
    }

    /// Closes the live session with this prefix (an operator's way to stop a session without
    /// its id), with the effect of [`ControlPlane::close_session`]: the record is deleted, so
    /// every replica refuses it at once and unmounts it on its next sweep. An unknown prefix, an
    /// expired session (closed on the spot) and another tenant's session are `NotFound`.
    pub async fn close_session_by_prefix(&self, prefix: &str) -> Result<(), ControlError> {
        let now = self.now();
        let record = self
            .store
            .list_sessions(&self.config.tenant)
            .await?
            .into_iter()
            .find(|r| r.prefix == prefix)
            .ok_or_else(not_found)?;
        if !self.end_session(&record.id_hash).await? || record.expires_at <= now {
            return Err(not_found());
        }
        Ok(())
    }

    /// Deletes a session's record and unmounts it here; `false` if the record was already gone.
    async fn end_session(&self, id_hash: &str) -> Result<bool, ControlError> {
        let deleted = self
            .store
            .delete_session(&self.config.tenant, id_hash)
            .await?;
        self.unmount_session(id_hash).await;
        if deleted {
            tracing::info!(message = "Session closed.", tenant = %self.config.tenant);
        }
        Ok(deleted)
    }

    /// The tenant's live sessions (no ids: they are not stored).
    pub async fn list_sessions(&self) -> Result<Vec<SessionView>, ControlError> {
        let now = self.now();
        let records = self.store.list_sessions(&self.config.tenant).await?;
        Ok(records
            .iter()
            .filter(|r| r.expires_at > now)
            .map(|r| {
                let up = self.mounted_upstream(&r.id_hash);
                self.session_view(r, up.as_ref())
            })
            .collect())
    }

    /// True when a proxy session is mounted here under `name` (its prefix).
    pub(crate) fn is_session_mount(&self, name: &str) -> bool {
        self.session_state
            .mounted
            .lock()
            .expect("sessions lock")
            .values()
            .any(|prefix| prefix == name)
    }

    /// Sessions mounted in this process for this tenant.
    pub fn mounted_sessions(&self) -> usize {
        self.session_state
            .mounted
            .lock()
            .expect("sessions lock")
            .len()
    }

    /// One sweep: closes expired sessions (record and connection) and unmounts sessions whose
    /// record another replica deleted. Returns how many mounts it closed here.
    pub async fn sweep_sessions(&self) -> Result<usize, ControlError> {
        // Mounts to check, taken before reading the store: a session recorded after the
        // snapshot cannot be mistaken for one deleted elsewhere.
        let candidates: Vec<String> = {
            let creating = self.session_state.creating.lock().expect("sessions lock");
            self.session_state
                .mounted
                .lock()
                .expect("sessions lock")
                .keys()
                .filter(|h| !creating.contains(*h))
                .cloned()
                .collect()
        };
        let now = self.now();
        let records = self.store.list_sessions(&self.config.tenant).await?;
        let mut gone: Vec<String> = Vec::new();
        for r in records.iter().filter(|r| r.expires_at <= now) {
            // Whichever replica deletes the row first logs it; every replica unmounts.
            self.store
                .delete_session(&self.config.tenant, &r.id_hash)
                .await?;
            gone.push(r.id_hash.clone());
        }
        let known: HashSet<&str> = records
            .iter()
            .filter(|r| r.expires_at > now)
            .map(|r| r.id_hash.as_str())
            .collect();
        let orphans: Vec<String> = candidates
            .into_iter()
            .filter(|h| !known.contains(h.as_str()))
            .collect();
        gone.extend(orphans);
        gone.sort();
        gone.dedup();
        let mut closed = 0;
        for h in &gone {
            let had = self
                .session_state
                .mounted
                .lock()
                .expect("sessions lock")
                .contains_key(h);
            self.unmount_session(h).await;
            closed += usize::from(had);
        }
        if !gone.is_empty() {
            tracing::info!(message = "Sessions expired or closed elsewhere.", tenant = %self.config.tenant, count = gone.len());
        }
        Ok(closed)
    }

    /// Closes every session mount of this process (the records stay for other replicas).
    pub async fn unmount_all_sessions(&self) {
        let hashes: Vec<String> = self
            .session_state
            .mounted
            .lock()
            .expect("sessions lock")
            .keys()
            .cloned()
            .collect();
        for h in hashes {
            self.unmount_session(&h).await;
        }
    }

    fn session_view(&self, r: &SessionRecord, up: Option<&Upstream>) -> SessionView {
        SessionView {
            session_id: None,
            prefix: r.prefix.clone(),
            remote_url: crate::masked_url(&r.remote_url),
            transport: r.transport.clone(),
            expires_at: rfc3339(r.expires_at),
            expires_at_ms: r.expires_at,
            ttl_seconds: r.ttl_secs,
            state: up.map_or_else(
                || "not mounted".to_string(),
                |u| u.status().state.as_str().to_string(),
            ),
            mounted_here: up.is_some(),
            created_by: r.created_by.clone(),
            created_at: rfc3339(r.created_at),
            created_at_ms: r.created_at,
        }
    }
}

/// Runs [`ControlPlane::sweep_sessions`] every `sweep_every` until the control plane is dropped.
pub(crate) fn spawn_sweeper(control: Weak<ControlPlane>, every: Duration) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(control) = control.upgrade() else {
                return;
            };
            if let Err(e) = control.sweep_sessions().await {
                tracing::warn!(message = "Session sweep failed.", error = %e);
            }
        }
    });
}

/// Waits until the upstream is ready; the reason it failed otherwise.
async fn wait_ready(up: &Upstream, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let st = up.status();
        match st.state {
            State::Ready => return Ok(()),
            State::Starting => {}
            _ => {
                return Err(st
                    .last_error
                    .unwrap_or_else(|| format!("the connection is {}", st.state.as_str())));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("no answer within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `scheme://host[:port]/path` of a URL: no credentials, query or fragment, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}{}", u.scheme(), u.path()),
                None => format!("{}://{host}{}", u.scheme(), u.path()),
            }
        }
        Err(_) => "the remote URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799_000), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn authorization_in_headers_wins_over_the_token() {
        let mut h = BTreeMap::new();
        assert_eq!(
            upstream_headers(&h, Some("t1"))["Authorization"],
            "Bearer t1"
        );
        h.insert("authorization".to_string(), "Basic x".to_string());
        let out = upstream_headers(&h, Some("t1"));
        assert_eq!(out.len(), 1);
        assert_eq!(out["authorization"], "Basic x");
        assert!(upstream_headers(&BTreeMap::new(), None).is_empty());
    }

    #[test]
    fn the_progress_token_is_spliced_in() {
        assert_eq!(
            with_progress_token(r#"{"name":"x"}"#, 7),
            r#"{"_meta":{"progressToken":7},"name":"x"}"#
        );
        assert_eq!(
            with_progress_token("{ }", 7),
            r#"{"_meta":{"progressToken":7}}"#
        );
    }

    #[test]
    fn ids_are_long_and_prefixes_are_valid_names() {
        let id = new_session_id();
        assert_eq!(id.len(), 64);
        assert_ne!(id, new_session_id());
        assert_eq!(hash_id(&id).len(), 64);
        let p = new_prefix();
        assert_eq!(p.len(), 13);
        switchboard_core::naming::validate_server_name(&p, "-").unwrap();
        switchboard_core::naming::validate_server_name(&p, "__").unwrap();
    }
}
