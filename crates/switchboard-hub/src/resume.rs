//! Sessions that live on every replica: sealed ids, resuming a session on a replica that has
//! never seen it, and the messages replicas pass each other (through a [`Relay`], PostgreSQL
//! `LISTEN/NOTIFY` in `switchboard serve`).
//!
//! A session's client state is in its sealed id ([`crate::seal`]), so any replica that
//! shares the secret key rebuilds it on the first request it sees: no session table, no
//! sticky routing. What a replica cannot rebuild is a stream another replica holds, or a
//! question another replica asked. Those messages travel through the relay:
//! - a client's answer to a server-to-client request goes to the replica that asked (the
//!   hub's ids for forwarded requests name the replica: `sb-<replica>-<n>`);
//! - a legacy SSE client's `POST /messages` goes to the replica holding its stream;
//! - a resource update for a session whose stream is held elsewhere goes to that stream;
//! - a `DELETE` ends the session on every replica, and later resumptions are refused;
//! - a client's `notifications/cancelled` goes to the replica running the request;
//! - a stateless client's retry of a parked call (multi-round-trip requests, `bridge/mrtr.rs`) goes
//!   to the replica holding the call (its `requestState` names it), and the answer comes back.
//!
//! Without a relay (one replica, SQLite) sealed ids still let a session survive a restart
//! of the hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::hub::{Hub, HubError, HubInner};
use crate::seal::{SEALED_MAX_AGE_SECS, SealedSession, SessionSeal, is_sealed};
use crate::session::{ClientInfo, ClientSession, random_id};
use crate::view::View;

/// How long a retry relayed to the replica holding its parked call waits for the answer.
const RESUME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// Most ended session ids remembered (each is at most 4 KiB; older ones are dropped first).
const MAX_ENDED: usize = 50_000;

/// A message from one replica to the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RelayMessage {
    /// A client's answer to a request that replica `replica` forwarded to it.
    Answer {
        /// The asking replica's tag.
        replica: String,
        /// The session id.
        session: String,
        /// The client's message, as sent.
        body: String,
    },
    /// A client message for the replica holding the session's stream (legacy SSE).
    ToStream {
        /// The session id.
        session: String,
        /// The client's message, as sent.
        body: String,
    },
    /// A message for the client, to be queued on its stream wherever that is attached.
    Push {
        /// The session id.
        session: String,
        /// The message for the client.
        body: String,
    },
    /// A stateless client's retry of a call parked on replica `replica` (its
    /// `requestState` names that replica).
    Resume {
        /// The parked call's holder (the tag in its `requestState`).
        replica: String,
        /// Where the answer goes, and under which number.
        reply_to: String,
        call: u64,
        /// The endpoint's view ([`View::label`]).
        view: String,
        /// The client's request, as sent.
        body: String,
    },
    /// The answer to a [`RelayMessage::Resume`].
    Resumed {
        /// The replica that relayed the retry.
        replica: String,
        call: u64,
        /// The reply for the client.
        body: String,
    },
    /// The client cancelled request `request` (its raw JSON id), which runs on whichever
    /// replica it reached.
    Cancel {
        /// The session id.
        session: String,
        /// The request's id, raw JSON.
        request: String,
    },
    /// The client deleted the session.
    Ended {
        /// The session id.
        session: String,
    },
}

/// Carries [`RelayMessage`]s to the other replicas of the same tenant. Publishing never
/// blocks; a message that cannot be sent is logged and dropped.
pub trait Relay: Send + Sync {
    /// Sends `message` to every other replica, for tenant `tenant`'s hub. False when it
    /// could not be sent (no other replicas to talk to, a full queue).
    fn publish(&self, tenant: &str, message: RelayMessage) -> bool;
}

/// Keeps ended sessions where every replica finds them, one started later included (the
/// store). Recording never blocks.
pub trait EndedSessions: Send + Sync {
    /// Session `id_hash` (SHA-256 hex of its id) of tenant `tenant` was ended now; the
    /// future completes once that is kept.
    fn record(
        &self,
        tenant: &str,
        id_hash: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// The SHA-256 of a session id, in hex: how ended sessions are remembered.
pub fn session_hash(id: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A hub's part in a group of replicas.
pub(crate) struct ReplicaState {
    /// This process's tag in forwarded request ids.
    pub(crate) tag: String,
    /// The tenant, the seal and the relay, once set.
    joined: OnceLock<Joined>,
    /// Sessions ended by their clients: id hash → when (Unix seconds).
    ended: Mutex<HashMap<String, u64>>,
    /// Retries relayed to the replica holding their parked call, waiting for its answer.
    resuming: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<String>>>,
    next_resume: std::sync::atomic::AtomicU64,
}

struct Joined {
    tenant: String,
    seal: SessionSeal,
    relay: Option<Arc<dyn Relay>>,
    ledger: Option<Arc<dyn EndedSessions>>,
}

impl Default for ReplicaState {
    fn default() -> Self {
        ReplicaState {
            tag: random_id()[..8].to_string(),
            joined: OnceLock::new(),
            ended: Mutex::new(HashMap::new()),
            resuming: Mutex::new(HashMap::new()),
            next_resume: std::sync::atomic::AtomicU64::new(1),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What `initialize`'s params said, for sealing.
fn initialize_claims(params: &serde_json::Value) -> (String, serde_json::Value, serde_json::Value) {
    let requested = params
        .get("protocolVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let get = |k: &str| params.get(k).cloned().unwrap_or(serde_json::Value::Null);
    (requested, get("capabilities"), get("clientInfo"))
}

impl Hub {
    /// Makes this hub's sessions resumable on any replica sharing `seal`'s key (sealed ids),
    /// with `relay` carrying messages between replicas and `ledger` keeping ended sessions,
    /// as tenant `tenant`. Set once; later calls are ignored (false).
    pub fn join_replicas(
        &self,
        tenant: &str,
        seal: SessionSeal,
        relay: Option<Arc<dyn Relay>>,
        ledger: Option<Arc<dyn EndedSessions>>,
    ) -> bool {
        self.inner
            .replica
            .joined
            .set(Joined {
                tenant: tenant.to_string(),
                seal,
                relay,
                ledger,
            })
            .is_ok()
    }

    /// Sessions ended before this process started (id hashes, from the ledger): they are
    /// never resumed here.
    pub fn preload_ended(&self, hashes: impl IntoIterator<Item = String>) {
        let now = now_secs();
        let mut ended = self.inner.replica.ended.lock().expect("ended lock");
        for h in hashes {
            if ended.len() >= MAX_ENDED {
                break;
            }
            ended.insert(h, now);
        }
    }

    /// This process's replica tag (in the ids of requests it forwards to clients).
    pub fn replica_tag(&self) -> &str {
        &self.inner.replica.tag
    }

    /// Opens a session for a client whose `initialize` request is `init` (the whole
    /// message; `None` for a legacy SSE stream, opened before `initialize`), opened with
    /// `credential`. With a seal its id carries what the client declared, so other replicas
    /// can resume it (or, for legacy SSE, relay to it); otherwise, or when that would not
    /// fit a header, the id is random.
    pub fn create_session_for(
        &self,
        view: View,
        capacity: usize,
        init: Option<&str>,
        credential: Option<&str>,
    ) -> Result<Arc<ClientSession>, HubError> {
        let id = self
            .inner
            .replica
            .joined
            .get()
            .and_then(|j| {
                let (requested, capabilities, client_info) = match init {
                    Some(init) => {
                        let msg: serde_json::Value = serde_json::from_str(init).ok()?;
                        initialize_claims(msg.get("params")?)
                    }
                    None => Default::default(),
                };
                j.seal.seal(&SealedSession {
                    view: view.label(),
                    credential: credential.map(str::to_string),
                    protocol_version: requested,
                    capabilities,
                    client_info,
                    issued_at: now_secs(),
                    nonce: random_id()[..8].to_string(),
                })
            })
            .unwrap_or_else(random_id);
        self.register_session(id, view, capacity, credential)
    }

    /// The session `id` on this replica, if `credential` opened it for `view`: the live
    /// one, or, for a sealed id this tenant issued and nobody ended, the session rebuilt
    /// from it (initialized, as its client left it). `None` is an unknown session.
    pub fn resume_session(
        &self,
        id: &str,
        view: &View,
        credential: Option<&str>,
        capacity: usize,
    ) -> Result<Option<Arc<ClientSession>>, HubError> {
        if let Some(s) = self.session(id) {
            // Only the credential that opened a session may use it, here as on a replica
            // that resumes it.
            let same = &s.view == view && s.credential.get().map(String::as_str) == credential;
            return Ok(same.then_some(s));
        }
        let Some(claims) = self.open_sealed(id) else {
            return Ok(None);
        };
        if claims.view != view.label() || claims.credential.as_deref() != credential {
            return Ok(None);
        }
        let session = self.register_session(id.to_string(), view.clone(), capacity, credential)?;
        if session.client.get().is_none() {
            let version = crate::session::negotiate(&claims.protocol_version);
            let _ = session.client.set(ClientInfo {
                protocol_version: version.to_string(),
                capabilities: claims.capabilities,
                client_info: claims.client_info,
            });
            session
                .initialized
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(message = "Resumed a session opened on another replica or before a restart.", session = %short(id), view = %view.label());
        }
        Ok(Some(session))
    }

    /// What a sealed id of this tenant carries, unless its session was ended.
    fn open_sealed(&self, id: &str) -> Option<SealedSession> {
        if !is_sealed(id) {
            return None;
        }
        let joined = self.inner.replica.joined.get()?;
        if self
            .inner
            .replica
            .ended
            .lock()
            .expect("ended lock")
            .contains_key(&session_hash(id))
        {
            return None;
        }
        joined.seal.open(id, now_secs())
    }

    /// True when `id` is a session this tenant issued that a client may still use (live
    /// here, or sealed and not ended), whatever replica holds it.
    pub fn session_exists(&self, id: &str) -> bool {
        self.session(id).is_some() || self.open_sealed(id).is_some()
    }

    /// True when `credential` may use session `id` (the one that opened it), whatever
    /// replica holds it; false for an unknown or ended session.
    pub fn may_use(&self, id: &str, credential: Option<&str>) -> bool {
        match self.session(id) {
            Some(s) => s.credential.get().map(String::as_str) == credential,
            None => self
                .open_sealed(id)
                .is_some_and(|c| c.credential.as_deref() == credential),
        }
    }

    /// The client ended session `id` (`DELETE`): closes it here, refuses to resume it from
    /// now on, tells the other replicas, and returns once the ledger keeps it (a replica
    /// started later refuses it too). True if the session existed.
    pub async fn end_session(&self, id: &str) -> bool {
        let (known, kept) = self.end(id);
        if let Some(kept) = kept {
            kept.await;
        }
        known
    }

    /// [`Hub::end_session`] for callers that cannot wait (a stream's `Drop`): the ledger
    /// keeps it in the background.
    pub fn end_session_now(&self, id: &str) -> bool {
        let (known, kept) = self.end(id);
        if let Some(kept) = kept {
            tokio::spawn(kept);
        }
        known
    }

    #[allow(clippy::type_complexity)]
    fn end(
        &self,
        id: &str,
    ) -> (
        bool,
        Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    ) {
        let known = self.session_exists(id);
        self.close_session(id);
        let mut kept = None;
        if known && is_sealed(id) {
            let hash = self.remember_ended(id);
            if let Some(Joined {
                tenant,
                ledger: Some(ledger),
                ..
            }) = self.inner.replica.joined.get()
            {
                kept = Some(ledger.record(tenant, &hash));
            }
            self.to_replicas(RelayMessage::Ended {
                session: id.to_string(),
            });
        }
        (known, kept)
    }

    /// Remembers that session `id` ended; returns its hash.
    fn remember_ended(&self, id: &str) -> String {
        let hash = session_hash(id);
        let now = now_secs();
        let mut ended = self.inner.replica.ended.lock().expect("ended lock");
        if ended.len() >= MAX_ENDED {
            ended.retain(|_, at| now.saturating_sub(*at) < SEALED_MAX_AGE_SECS);
            if ended.len() >= MAX_ENDED
                && let Some(oldest) = ended
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
            {
                ended.remove(&oldest);
            }
        }
        ended.insert(hash.clone(), now);
        hash
    }

    /// Sends a legacy SSE client's message to the replica holding its stream. False when
    /// there is no relay.
    pub fn relay_to_stream(&self, session: &str, body: String) -> bool {
        self.to_replicas(RelayMessage::ToStream {
            session: session.to_string(),
            body,
        })
    }

    /// Hands a message to the relay, if there is one.
    pub(crate) fn to_replicas(&self, message: RelayMessage) -> bool {
        self.inner.to_replicas(message)
    }

    /// A stateless client's retry whose `requestState` names a call parked on another
    /// replica: sent there, and its answer returned (`None` when the call is parked here,
    /// the state is not one of ours, or there is no relay).
    pub(crate) async fn resume_elsewhere(
        &self,
        session: &ClientSession,
        text: &str,
        state: &str,
    ) -> Option<String> {
        let holder = crate::bridge::mrtr::holder_of(state)?;
        if holder == self.inner.parked.tag() {
            return None;
        }
        let replica = &self.inner.replica;
        let call = replica
            .next_resume
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        replica
            .resuming
            .lock()
            .expect("resuming lock")
            .insert(call, tx);
        let sent = self.to_replicas(RelayMessage::Resume {
            replica: holder.to_string(),
            reply_to: replica.tag.clone(),
            call,
            view: session.view.label(),
            body: text.to_string(),
        });
        let answer = if sent {
            tokio::time::timeout(RESUME_TIMEOUT, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        replica
            .resuming
            .lock()
            .expect("resuming lock")
            .remove(&call);
        if answer.is_none() && sent {
            tracing::warn!(message = "No replica answered a retry of a parked call in time.", holder = %holder);
        }
        answer
    }

    /// A client's `notifications/cancelled` for a request not running here: sent to the
    /// other replicas, where the one running it cancels it.
    pub(crate) fn cancel_elsewhere(&self, session: &ClientSession, request: &str) {
        if is_sealed(&session.id) {
            self.to_replicas(RelayMessage::Cancel {
                session: session.id.clone(),
                request: request.to_string(),
            });
        }
    }

    /// Ends every client stream this replica holds (Streamable HTTP GET streams and legacy
    /// SSE streams) without ending their sessions, so clients reconnect, to another replica
    /// when this one is draining. Requests in flight go on.
    pub fn release_streams(&self) -> usize {
        let sessions = self.inner.all_sessions();
        let mut released = 0;
        for s in sessions.iter().filter(|s| s.has_stream()) {
            s.released.cancel();
            released += 1;
        }
        released
    }

    /// A message another replica relayed to this tenant's hub.
    pub async fn relayed(&self, message: RelayMessage) {
        match message {
            RelayMessage::Answer {
                replica,
                session,
                body,
            } => {
                if replica != self.inner.replica.tag {
                    return;
                }
                let Some(s) = self.session(&session) else {
                    tracing::info!(message = "A relayed answer names a session this replica no longer holds; dropped.", session = %short(&session));
                    return;
                };
                let _ = self.handle(&s, &body, s.sender()).await;
            }
            RelayMessage::ToStream { session, body } => {
                let Some(s) = self.session(&session).filter(|s| s.has_stream()) else {
                    return;
                };
                let hub = self.clone();
                tokio::spawn(async move {
                    let out = s.sender().clone();
                    if let Some(reply) = hub.handle_channel(&s, &body, &out).await {
                        let _ = out.send(reply).await;
                    }
                });
            }
            RelayMessage::Push { session, body } => {
                if let Some(s) = self.session(&session).filter(|s| s.has_stream()) {
                    s.push(body);
                }
            }
            RelayMessage::Resume {
                replica,
                reply_to,
                call,
                view,
                body,
            } => {
                if replica != self.inner.parked.tag() {
                    return;
                }
                let Some(view) = View::from_label(&view) else {
                    return;
                };
                let session = self.stateless_session(view, None);
                let hub = self.clone();
                tokio::spawn(async move {
                    let reply = hub.handle(&session, &body, session.sender()).await;
                    if let Some(body) = reply {
                        hub.to_replicas(RelayMessage::Resumed {
                            replica: reply_to,
                            call,
                            body,
                        });
                    }
                });
            }
            RelayMessage::Resumed {
                replica,
                call,
                body,
            } => {
                if replica != self.inner.replica.tag {
                    return;
                }
                let waiting = self
                    .inner
                    .replica
                    .resuming
                    .lock()
                    .expect("resuming lock")
                    .remove(&call);
                if let Some(tx) = waiting {
                    let _ = tx.send(body);
                }
            }
            RelayMessage::Cancel { session, request } => {
                let running = self
                    .session(&session)
                    .and_then(|s| s.inflight.lock().expect("inflight lock").remove(&request));
                if let Some(t) = running {
                    t.cancel();
                }
            }
            RelayMessage::Ended { session } => {
                let _ = self.remember_ended(&session);
                self.close_session(&session);
            }
        }
    }
}

impl HubInner {
    pub(crate) fn to_replicas(&self, message: RelayMessage) -> bool {
        match self.replica.joined.get() {
            Some(Joined {
                tenant,
                relay: Some(relay),
                ..
            }) => relay.publish(tenant, message),
            _ => false,
        }
    }

    /// Queues `text` on `session`'s stream, or, when the stream is attached on another
    /// replica, sends it there.
    pub(crate) fn push_or_relay(&self, session: &ClientSession, text: String) {
        if session.has_stream() || !is_sealed(&session.id) {
            session.push(text);
            return;
        }
        let message = RelayMessage::Push {
            session: session.id.clone(),
            body: text.clone(),
        };
        if !self.to_replicas(message) {
            session.push(text);
        }
    }
}

/// The start of a long id, for logs.
pub(crate) fn short(id: &str) -> &str {
    id.get(..24).unwrap_or(id)
}
