//! A downstream client's session: its view, what it declared, what it has in flight.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use switchboard_upstream::Connection;
use tokio_util::sync::CancellationToken;

use crate::outbox::{self, Inbox, Outbox};
use crate::stateless::ReplyClass;
use crate::view::View;

/// A request the hub sent to the client, waiting for the client's answer.
pub(crate) enum ForwardedRequest {
    /// An upstream's request: the answer goes back to it.
    Upstream {
        conn: Arc<Connection>,
        /// The id the upstream used, as raw JSON.
        upstream_id: String,
    },
    /// The hub's own question (bridging a stateless upstream's `input_required`).
    Local(tokio::sync::oneshot::Sender<String>),
}

/// What the client said in `initialize`.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Negotiated protocol revision.
    pub protocol_version: String,
    /// The client's declared capabilities.
    pub capabilities: Value,
    /// `clientInfo`, as sent.
    pub client_info: Value,
}

/// One downstream session.
pub struct ClientSession {
    /// Unguessable id (the `Mcp-Session-Id` or SSE `sessionId`).
    pub id: String,
    /// What it sees.
    pub view: View,
    pub(crate) outbound: Outbox,
    outbound_rx: Mutex<Option<Inbox>>,
    streams: AtomicUsize,
    pub(crate) client: OnceLock<ClientInfo>,
    pub(crate) initialized: AtomicBool,
    /// A stateless 2026-07-28 request: version and capabilities come with each request.
    pub(crate) stateless: bool,
    /// A stateless HTTP request's `Mcp-Param-*` headers: (name after the prefix, raw value).
    /// `None` when the request did not come over HTTP.
    pub(crate) param_headers: Option<Vec<(String, String)>>,
    /// The level of `logging/setLevel`, if the client sent one.
    pub(crate) log_level: Mutex<Option<String>>,
    pub(crate) inflight: Mutex<HashMap<String, CancellationToken>>,
    pub(crate) forwarded: Mutex<HashMap<String, ForwardedRequest>>,
    pub(crate) subscriptions: Mutex<HashSet<String>>,
    pub(crate) next_forward: AtomicU64,
    last_seen: AtomicU64,
    /// Fires when the session ends.
    pub closed: CancellationToken,
    /// Fires when this replica gives the client's stream back (draining before exit): the
    /// stream ends, the session does not.
    pub(crate) released: CancellationToken,
    /// The user's own upstream credentials, when they stored some.
    pub(crate) user_headers: OnceLock<UserHeaders>,
    /// Stateless requests in flight on this channel (stdio, legacy SSE), by request id: a
    /// `notifications/cancelled` for one drops it (which cancels it upstream).
    pub(crate) stateless_calls: Mutex<HashMap<String, CancellationToken>>,
    /// Which credential opened it (`key:<id>`, `user:<id>`, `admin-token`), for the
    /// per-credential limit on calls in flight.
    pub(crate) credential: OnceLock<String>,
    /// Upstream calls in flight.
    pub(crate) calls: AtomicUsize,
    /// Who the transport authenticated (login name, `admin-token`, `anonymous`).
    pub(crate) principal: OnceLock<Arc<str>>,
    /// When the session opened.
    pub(crate) created: Instant,
    /// How a stateless request was answered (a [`ReplyClass`]; its session is per request).
    reply_class: AtomicU8,
}

/// A user's own headers for some servers (per-user upstream credentials): calls from their
/// sessions to those servers go over connections that send these instead of the configured
/// headers of the same names.
#[derive(Debug, Clone, Default)]
pub struct UserHeaders {
    /// Whose they are (connections are shared per user).
    pub user: String,
    /// Headers by server name.
    pub by_server: Arc<HashMap<String, std::collections::BTreeMap<String, String>>>,
}

impl ClientSession {
    pub(crate) fn new(id: String, view: View, capacity: usize, max_bytes: usize) -> Self {
        let label = if id.is_empty() {
            "a stateless request's session".to_string()
        } else {
            format!("session {id}")
        };
        let (outbound, rx) = outbox::channel(label, capacity, max_bytes);
        ClientSession {
            id,
            view,
            outbound,
            outbound_rx: Mutex::new(Some(rx)),
            streams: AtomicUsize::new(0),
            client: OnceLock::new(),
            initialized: AtomicBool::new(false),
            stateless: false,
            param_headers: None,
            log_level: Mutex::new(None),
            inflight: Mutex::new(HashMap::new()),
            forwarded: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            next_forward: AtomicU64::new(1),
            last_seen: AtomicU64::new(now_secs()),
            closed: CancellationToken::new(),
            released: CancellationToken::new(),
            user_headers: OnceLock::new(),
            stateless_calls: Mutex::new(HashMap::new()),
            credential: OnceLock::new(),
            calls: AtomicUsize::new(0),
            principal: OnceLock::new(),
            created: Instant::now(),
            reply_class: AtomicU8::new(ReplyClass::Answered as u8),
        }
    }

    /// Records which credential opened the session (once).
    pub fn set_credential(&self, key: String) {
        let _ = self.credential.set(key);
    }

    /// Attaches the user's own upstream credentials (once, before the first call).
    pub fn set_user_headers(&self, headers: UserHeaders) {
        let _ = self.user_headers.set(headers);
    }

    /// Names who uses the session (once, before the first call), for logs and metrics.
    pub fn set_principal(&self, principal: Arc<str>) {
        let _ = self.principal.set(principal);
    }

    /// Who uses the session, when the transport said.
    pub fn principal(&self) -> Option<&Arc<str>> {
        self.principal.get()
    }

    /// How the hub answered this stateless request: the HTTP transport's status comes from it.
    pub fn reply_class(&self) -> ReplyClass {
        ReplyClass::from_u8(self.reply_class.load(Ordering::Relaxed))
    }

    pub(crate) fn set_reply_class(&self, class: ReplyClass) {
        self.reply_class.store(class as u8, Ordering::Relaxed);
    }

    /// True for a stateless (2026-07-28) request's session.
    pub fn is_stateless(&self) -> bool {
        self.stateless
    }

    /// The era its client speaks.
    pub(crate) fn era(&self) -> switchboard_core::protocol::Era {
        if self.stateless {
            switchboard_core::protocol::Era::Stateless
        } else {
            switchboard_core::protocol::Era::Session
        }
    }

    /// What the client declared, once it has initialized.
    pub fn client_info(&self) -> Option<&ClientInfo> {
        self.client.get()
    }

    /// True when the client declared capability `name` (`sampling`, `elicitation`, `roots`).
    pub fn client_has(&self, name: &str) -> bool {
        self.client
            .get()
            .is_some_and(|c| c.capabilities.get(name).is_some_and(|v| !v.is_null()))
    }

    /// The sending end of the session's stream, for transports where every message (responses
    /// included) travels on it (legacy SSE, stdio). Overflowing it ends the session.
    pub fn sender(&self) -> &Outbox {
        &self.outbound
    }

    /// Queues an unsolicited message for the client's stream; dropped if the stream is full
    /// (a Streamable HTTP client need not have a stream open to receive them).
    pub fn push(&self, text: String) -> bool {
        self.outbound.offer(text)
    }

    /// Takes the receiving end of the session's stream (unsolicited messages, and for SSE and
    /// stdio every message). Only one holder at a time; the guard gives it back when dropped.
    pub fn attach_stream(self: &Arc<Self>) -> Option<StreamGuard> {
        let rx = self.outbound_rx.lock().expect("stream lock").take()?;
        self.streams.fetch_add(1, Ordering::Relaxed);
        Some(StreamGuard {
            session: self.clone(),
            rx: Some(rx),
        })
    }

    /// True while a client stream is attached.
    pub fn has_stream(&self) -> bool {
        self.streams.load(Ordering::Relaxed) > 0
    }

    /// Marks the session as used now.
    pub fn touch(&self) {
        self.last_seen.store(now_secs(), Ordering::Relaxed);
    }

    /// How long since the session was last used.
    pub fn idle_for(&self) -> Duration {
        Duration::from_secs(now_secs().saturating_sub(self.last_seen.load(Ordering::Relaxed)))
    }

    /// The log level for requests to stateless upstreams, which send log messages only when
    /// a request asks: the client's `logging/setLevel`, else everything (a session server
    /// logs at will until told otherwise).
    pub(crate) fn log_level(&self) -> String {
        self.log_level
            .lock()
            .expect("log level lock")
            .clone()
            .unwrap_or_else(|| "debug".into())
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().expect("inflight lock").len()
    }
}

/// The attached receiving end of a session's stream.
pub struct StreamGuard {
    session: Arc<ClientSession>,
    rx: Option<Inbox>,
}

impl StreamGuard {
    /// The next message for the client; `None` when the session closed.
    pub async fn recv(&mut self) -> Option<String> {
        let rx = self.rx.as_mut()?;
        tokio::select! {
            m = rx.recv() => m,
            _ = self.session.closed.cancelled() => None,
            _ = self.session.released.cancelled() => None,
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.session.touch();
        // An overflowed queue stays closed: the session is ending.
        if let Some(rx) = self.rx.take()
            && !self.session.outbound.has_overflowed()
        {
            *self.session.outbound_rx.lock().expect("stream lock") = Some(rx);
        }
        self.session.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 128 random bits as 32 hex digits.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    let mut s = String::with_capacity(32);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The revision the hub speaks with a client that asked for `requested` in `initialize`.
pub(crate) fn negotiate(requested: &str) -> &'static str {
    use crate::route::{LATEST_VERSION, SUPPORTED_VERSIONS};
    SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(LATEST_VERSION)
}
