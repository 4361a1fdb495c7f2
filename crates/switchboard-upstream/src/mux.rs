//! The pending-request table one upstream connection shares among all its callers.
//!
//! Every request the hub sends upstream gets a connection-unique integer id; the table maps it
//! back to the waiting caller. Progress tokens the hub sends upstream are that same integer, so a
//! `notifications/progress` finds its caller through the same table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_core::jsonrpc::{Envelope, Fields, Kind, Raw, id_as_u64};
use tokio::sync::{mpsc, oneshot};

use crate::UpstreamError;
use crate::connection::CallEvent;

/// How many messages from one upstream connection may wait for the hub to take them. The hub
/// takes them at once except while it refreshes a list after `list_changed`; past this, an
/// upstream that floods the hub loses messages (counted and logged), not memory.
pub const INCOMING_QUEUE: usize = 4096;

/// The sending end of a connection's queue of [`Incoming`] messages.
pub type IncomingTx = mpsc::Sender<Incoming>;
/// The receiving end of a connection's queue of [`Incoming`] messages.
pub type IncomingRx = mpsc::Receiver<Incoming>;

/// A queue for one connection's [`Incoming`] messages, bounded at [`INCOMING_QUEUE`].
pub fn incoming_channel() -> (IncomingTx, IncomingRx) {
    mpsc::channel(INCOMING_QUEUE)
}

/// A message from the upstream that is not the answer to one of the hub's requests.
#[derive(Debug)]
pub enum Incoming {
    /// A notification (`list_changed`, `message`, `resources/updated`, ...), as raw text.
    Notification {
        /// Its method.
        method: String,
        /// The whole message.
        text: String,
    },
    /// A server-to-client request no in-flight call claimed, as raw text.
    Request {
        /// Its method.
        method: String,
        /// The whole message.
        text: String,
    },
}

pub(crate) struct Pending {
    done: oneshot::Sender<Result<String, UpstreamError>>,
    events: Option<mpsc::Sender<CallEvent>>,
    /// When the upstream last said something about this request (restarts its timeout).
    last_event: Option<tokio::time::Instant>,
    /// Server-to-client requests routed to this call and not yet answered.
    awaiting: usize,
    /// When a server request was last routed to this call.
    last_asked: Option<tokio::time::Instant>,
}

/// Server requests this close together come from the same call.
const BURST: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) struct Mux {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    incoming: IncomingTx,
    /// Messages dropped because the hub's queue for this connection was full.
    dropped: AtomicU64,
    /// Server requests routed to a call, by the request's raw id: which call asked.
    asked_by: Mutex<HashMap<String, u64>>,
    /// The server's name, for errors.
    server: String,
    /// Messages larger than this fail the call they answer (`max_result_bytes`).
    max_message: usize,
}

/// What `dispatch` did with a message, for transports that must answer some messages themselves.
pub(crate) enum Dispatched {
    Handled,
    /// A `ping` from the server: the transport should answer it.
    Ping(String),
}

impl Mux {
    pub(crate) fn new(incoming: IncomingTx) -> Self {
        Mux {
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            incoming,
            dropped: AtomicU64::new(0),
            asked_by: Mutex::new(HashMap::new()),
            server: String::new(),
            max_message: usize::MAX,
        }
    }

    /// Names the server and sets its message size limit.
    pub(crate) fn with_limit(mut self, server: &str, max_message: usize) -> Self {
        self.server = server.to_string();
        self.max_message = max_message;
        self
    }

    /// The message size limit (`max_result_bytes`).
    pub(crate) fn max_message(&self) -> usize {
        self.max_message
    }

    /// The error for a message of `bytes` bytes over the limit.
    pub(crate) fn too_large(&self, bytes: usize) -> UpstreamError {
        UpstreamError::ResultTooLarge {
            server: self.server.clone(),
            bytes,
            limit: self.max_message,
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register(
        &self,
        id: u64,
        events: Option<mpsc::Sender<CallEvent>>,
    ) -> oneshot::Receiver<Result<String, UpstreamError>> {
        let (done, rx) = oneshot::channel();
        self.pending.lock().expect("mux lock").insert(
            id,
            Pending {
                done,
                events,
                last_event: None,
                awaiting: 0,
                last_asked: None,
            },
        );
        rx
    }

    /// Forgets a request (answered elsewhere, cancelled or timed out). True if it was pending.
    pub(crate) fn forget(&self, id: u64) -> bool {
        let was = self.pending.lock().expect("mux lock").remove(&id).is_some();
        if was {
            self.asked_by
                .lock()
                .expect("asked lock")
                .retain(|_, call| *call != id);
        }
        was
    }

    /// Completes a request with an error (the write or POST failed).
    pub(crate) fn fail(&self, id: u64, err: UpstreamError) {
        let p = self.pending.lock().expect("mux lock").remove(&id);
        if let Some(p) = p {
            let _ = p.done.send(Err(err));
        }
    }

    /// Fails every pending request: the connection is gone.
    pub(crate) fn fail_all(&self, reason: &str) {
        let drained: Vec<Pending> = self
            .pending
            .lock()
            .expect("mux lock")
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in drained {
            let _ = p.done.send(Err(UpstreamError::Closed(reason.to_string())));
        }
    }

    /// Routes one message from the upstream. `origin` is the id of the request whose HTTP
    /// response stream carried it, when known.
    pub(crate) fn dispatch(&self, text: String, origin: Option<u64>) -> Result<Dispatched, String> {
        if text.len() > self.max_message {
            return Err(self.refuse_oversized(&text, origin));
        }
        let env = match Envelope::parse(&text) {
            Ok(env) => env,
            Err(e) => {
                // A malformed reply to a pending request fails that request now; it would
                // otherwise wait out the whole timeout.
                if e.is_reply()
                    && let Some(id) = id_as_u64(e.id_text())
                    && let Some(p) = self.pending.lock().expect("mux lock").remove(&id)
                {
                    let _ = p.done.send(Err(UpstreamError::Protocol(format!(
                        "the server sent a malformed reply: {e}"
                    ))));
                }
                return Err(e.to_string());
            }
        };
        match env.kind().map_err(|e| e.to_string())? {
            Kind::Response => {
                let Some(id) = id_as_u64(env.id_text()) else {
                    return Err(format!(
                        "response with an id the hub never sent: {}",
                        env.id_text()
                    ));
                };
                let p = self.pending.lock().expect("mux lock").remove(&id);
                match p {
                    Some(p) => {
                        let _ = p.done.send(Ok(text));
                    }
                    None => {
                        tracing::debug!(message = "Response to a request no longer pending.", id)
                    }
                }
                Ok(Dispatched::Handled)
            }
            Kind::Notification => {
                let method = env.method().to_string();
                let target = match method.as_str() {
                    "notifications/progress" => progress_token(env.params).or(origin),
                    "notifications/message" => origin,
                    _ => None,
                };
                if let Some(id) = target
                    && self.send_event(id, CallEvent::Notification(text.clone()))
                {
                    return Ok(Dispatched::Handled);
                }
                if method == "notifications/progress" {
                    // Progress for a request that already finished: nothing to do.
                    return Ok(Dispatched::Handled);
                }
                self.pass_on(Incoming::Notification { method, text });
                Ok(Dispatched::Handled)
            }
            Kind::Request => {
                let method = env.method().to_string();
                if method == "ping" {
                    return Ok(Dispatched::Ping(env.id_text().to_string()));
                }
                let request_id = env.id_text().to_string();
                if let Some(id) = origin.or_else(|| self.sole_candidate())
                    && self.send_event(id, CallEvent::ServerRequest(text.clone()))
                {
                    self.note_asked(id, request_id);
                    return Ok(Dispatched::Handled);
                }
                self.pass_on(Incoming::Request { method, text });
                Ok(Dispatched::Handled)
            }
        }
    }

    /// Queues a message for the hub; when the queue is full the message is dropped, counted,
    /// and logged on the first drop and every 1,000th after it.
    fn pass_on(&self, msg: Incoming) {
        if let Err(mpsc::error::TrySendError::Full(msg)) = self.incoming.try_send(msg) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n % 1000 == 1 {
                let method = match &msg {
                    Incoming::Notification { method, .. } | Incoming::Request { method, .. } => {
                        method.as_str()
                    }
                };
                tracing::warn!(message = "Upstream sends faster than the hub takes its messages; dropped.", server = %self.server, method, dropped = n, queue = INCOMING_QUEUE);
            }
        }
    }

    /// Fails the call an oversized message answers (by its id, else the request whose
    /// response carried it) and says why.
    fn refuse_oversized(&self, text: &str, origin: Option<u64>) -> String {
        let err = self.too_large(text.len());
        let id = match Envelope::parse(text) {
            Ok(env) if env.method.is_none() => id_as_u64(env.id_text()),
            Ok(_) => None,
            Err(e) if e.is_reply() => id_as_u64(e.id_text()),
            Err(_) => None,
        }
        .or(origin);
        let why = err.to_string();
        if let Some(id) = id {
            self.fail(id, err);
        }
        why
    }

    /// On a shared channel nothing says which call a server request belongs to. It belongs
    /// to the only call that can hear it. With several: to the only one not waiting for an
    /// answer; failing that (every call is waiting), to the only one asked something within
    /// [`BURST`] (a server asking several questions at once). Anything else is ambiguous.
    fn sole_candidate(&self) -> Option<u64> {
        let map = self.pending.lock().expect("mux lock");
        let listening: Vec<(u64, &Pending)> = map
            .iter()
            .filter(|(_, p)| p.events.is_some())
            .map(|(id, p)| (*id, p))
            .collect();
        let sole = |ids: Vec<u64>| match ids.as_slice() {
            [id] => Some(*id),
            _ => None,
        };
        if let [(id, _)] = listening.as_slice() {
            return Some(*id);
        }
        let idle: Vec<u64> = listening
            .iter()
            .filter(|(_, p)| p.awaiting == 0)
            .map(|(id, _)| *id)
            .collect();
        if !idle.is_empty() {
            return sole(idle);
        }
        let now = tokio::time::Instant::now();
        sole(
            listening
                .iter()
                .filter(|(_, p)| p.last_asked.is_some_and(|t| now - t < BURST))
                .map(|(id, _)| *id)
                .collect(),
        )
    }

    fn note_asked(&self, call: u64, request_id: String) {
        if let Some(p) = self.pending.lock().expect("mux lock").get_mut(&call) {
            p.awaiting += 1;
            p.last_asked = Some(tokio::time::Instant::now());
        }
        self.asked_by
            .lock()
            .expect("asked lock")
            .insert(request_id, call);
    }

    /// The hub answered server request `request_id` (raw id): its call may be asked again.
    pub(crate) fn answered(&self, request_id: &str) {
        let call = self.asked_by.lock().expect("asked lock").remove(request_id);
        if let Some(call) = call
            && let Some(p) = self.pending.lock().expect("mux lock").get_mut(&call)
        {
            p.awaiting = p.awaiting.saturating_sub(1);
        }
    }

    /// When request `id` last had an event, if it had one.
    pub(crate) fn last_event(&self, id: u64) -> Option<tokio::time::Instant> {
        self.pending
            .lock()
            .expect("mux lock")
            .get(&id)
            .and_then(|p| p.last_event)
    }

    fn send_event(&self, id: u64, ev: CallEvent) -> bool {
        let sink = {
            let mut map = self.pending.lock().expect("mux lock");
            match map.get_mut(&id) {
                Some(p) => {
                    p.last_event = Some(tokio::time::Instant::now());
                    p.events.clone()
                }
                None => return false,
            }
        };
        match sink {
            // A slow consumer loses progress rather than stalling the whole connection.
            Some(tx) => {
                let _ = tx.try_send(ev);
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_pending(&self, id: u64) -> bool {
        self.pending.lock().expect("mux lock").contains_key(&id)
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.pending.lock().expect("mux lock").len()
    }
}

fn progress_token(params: Option<Raw<'_>>) -> Option<u64> {
    let fields = Fields::parse(params?.get())?;
    id_as_u64(fields.get("progressToken")?.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_upstream_loses_messages_past_the_queue_not_memory() {
        let (tx, mut rx) = incoming_channel();
        let mux = Mux::new(tx).with_limit("flood", usize::MAX);
        let total = INCOMING_QUEUE + 10;
        for i in 0..total {
            let text = format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","data":{i}}}}}"#
            );
            assert!(matches!(mux.dispatch(text, None), Ok(Dispatched::Handled)));
        }
        assert_eq!(mux.dropped.load(Ordering::Relaxed), 10);
        let mut queued = 0;
        while let Ok(msg) = rx.try_recv() {
            if queued == 0 {
                assert!(
                    matches!(&msg, Incoming::Notification { text, .. } if text.contains(r#""data":0"#)),
                    "the oldest messages are kept: {msg:?}"
                );
            }
            queued += 1;
        }
        assert_eq!(queued, INCOMING_QUEUE);
        // Once the hub has taken them, messages flow again.
        let text = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#;
        mux.dispatch(text.to_string(), None).unwrap();
        assert!(rx.try_recv().is_ok());
    }
}
