//! The registry of client sessions: opening, finding, counting and closing them, and the
//! sweeper that closes idle ones. (A session itself is `session.rs`; sessions that live on
//! every replica are `resume.rs`.)

use std::sync::Arc;
use std::time::Duration;

use switchboard_upstream::Upstream;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, HubError, HubInner};
use crate::session::{ClientSession, random_id};
use crate::view::View;

impl Hub {
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

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.lock().expect("sessions lock").len()
    }

    /// Every registered session.
    pub(crate) fn all_sessions(&self) -> Vec<Arc<ClientSession>> {
        self.inner.all_sessions()
    }
}

impl HubInner {
    /// The sessions `keep` accepts, chosen under the lock: a fan-out to a few of 10,000
    /// sessions touches only those few.
    pub(crate) fn sessions_where(
        &self,
        keep: impl Fn(&ClientSession) -> bool,
    ) -> Vec<Arc<ClientSession>> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .values()
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }

    pub(crate) fn all_sessions(&self) -> Vec<Arc<ClientSession>> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .values()
            .cloned()
            .collect()
    }
}

/// Cancels what a closed session has in flight.
pub(crate) fn close(s: &ClientSession) {
    s.closed.cancel();
    for (_, t) in s.inflight.lock().expect("inflight lock").drain() {
        t.cancel();
    }
}

/// Closes sessions idle for longer than the configured timeout (and drops expired parked
/// calls), every 30 seconds until the hub stops.
pub(crate) async fn sweep_sessions(hub: std::sync::Weak<HubInner>, cancel: CancellationToken) {
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
