//! Multi-round-trip requests for stateless clients in front of session-based upstreams
//! (docs/protocol.md §3).
//!
//! A legacy upstream asks its questions (elicitation, sampling, roots) as real requests in the
//! middle of a call. A 2026-07-28 client cannot receive those, so the hub parks the call,
//! answers the client with `resultType: "input_required"` carrying the questions and an opaque
//! `requestState`, and, when the client retries with `inputResponses`, answers the upstream's
//! requests and keeps waiting for the call. Parked calls expire; dropping one cancels the
//! upstream call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::jsonrpc::{Envelope, Fields, code, error_message, quote, result_message};
use switchboard_upstream::{CallEvent, Connection, UpstreamError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::session::random_id;

/// How long a call that has asked one question waits for more before the client gets
/// them in one `input_required` round.
pub(crate) const GATHER: Duration = Duration::from_millis(50);

/// How long a parked call waits for the client's retry.
const PARK_TTL: Duration = Duration::from_secs(600);

/// What a call running in the background reports.
pub(crate) enum Progress {
    /// A notification to relay (progress).
    Note(String),
    /// A question from the upstream (a server-to-client request, whole text).
    Ask(String),
    /// The call's outcome.
    Done(Result<String, UpstreamError>),
}

/// A call running in its own task; aborting it cancels the upstream request.
pub(crate) struct Running {
    pub(crate) rx: mpsc::Receiver<Progress>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    /// Starts `conn.call(...)` in a task that reports through a channel.
    pub(crate) fn start(
        conn: Arc<Connection>,
        up_id: u64,
        body: String,
        opts: switchboard_upstream::CallOptions,
    ) -> Running {
        let (tx, rx) = mpsc::channel(16);
        let (ev_tx, mut ev_rx) = mpsc::channel::<CallEvent>(64);
        let opts = switchboard_upstream::CallOptions {
            events: Some(ev_tx),
            ..opts
        };
        let task = tokio::spawn(async move {
            let call = conn.call(up_id, body, opts);
            tokio::pin!(call);
            loop {
                tokio::select! {
                    biased;
                    Some(ev) = ev_rx.recv() => {
                        let p = match ev {
                            CallEvent::Notification(t) => Progress::Note(t),
                            CallEvent::ServerRequest(t) => Progress::Ask(t),
                        };
                        if tx.send(p).await.is_err() {
                            return;
                        }
                    }
                    r = &mut call => {
                        while let Ok(ev) = ev_rx.try_recv() {
                            if let CallEvent::Notification(t) = ev {
                                let _ = tx.send(Progress::Note(t)).await;
                            }
                        }
                        let _ = tx.send(Progress::Done(r)).await;
                        return;
                    }
                }
            }
        });
        Running { rx, task }
    }
}

/// One question an upstream asked during a parked call.
#[derive(Clone)]
pub(crate) struct Ask {
    /// The key in `inputRequests`/`inputResponses`.
    pub(crate) key: String,
    /// The upstream request's id, raw.
    pub(crate) upstream_id: String,
    /// The upstream request's whole text.
    pub(crate) text: String,
}

/// A call waiting for the client's answers.
pub(crate) struct Parked {
    pub(crate) running: Running,
    pub(crate) conn: Arc<Connection>,
    /// Questions asked: key, the upstream request's raw id, the request's text.
    pub(crate) asked: Vec<Ask>,
    pub(crate) server: String,
    pub(crate) progress_token: Option<String>,
    expires: Instant,
}

/// The hub's parked calls, by `requestState` (`sbrs1.<holder>.<random>`: the holder tag
/// tells another replica where a retry must go).
pub(crate) struct ParkedCalls {
    map: Mutex<HashMap<String, Parked>>,
    tag: String,
}

impl Default for ParkedCalls {
    fn default() -> Self {
        ParkedCalls {
            map: Mutex::new(HashMap::new()),
            tag: random_id()[..8].to_string(),
        }
    }
}

/// The holder tag of a `requestState` this hub's kind issued.
pub(crate) fn holder_of(state: &str) -> Option<&str> {
    state
        .strip_prefix("sbrs1.")?
        .split_once('.')
        .map(|(t, _)| t)
}

impl ParkedCalls {
    /// This hub's tag in the states it issues.
    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }

    /// Parks a call; returns the `requestState` that resumes it.
    pub(crate) fn park(
        &self,
        running: Running,
        conn: Arc<Connection>,
        asked: Vec<Ask>,
        server: String,
        progress_token: Option<String>,
    ) -> String {
        let state = format!("sbrs1.{}.{}", self.tag, random_id());
        let parked = Parked {
            running,
            conn,
            asked,
            server,
            progress_token,
            expires: Instant::now() + PARK_TTL,
        };
        let mut map = self.map.lock().expect("parked lock");
        map.retain(|_, p| p.expires > Instant::now());
        map.insert(state.clone(), parked);
        state
    }

    /// Takes the parked call for `state`, if it exists and has not expired.
    pub(crate) fn take(&self, state: &str) -> Option<Parked> {
        let parked = self.map.lock().expect("parked lock").remove(state)?;
        (parked.expires > Instant::now()).then_some(parked)
    }

    /// Drops expired parked calls (cancelling their upstream calls).
    pub(crate) fn purge(&self) {
        self.map
            .lock()
            .expect("parked lock")
            .retain(|_, p| p.expires > Instant::now());
    }
}

/// The `input_required` result for the questions in `asks`.
pub(crate) fn input_required(id: &str, asks: &[Ask], state: &str) -> String {
    let mut requests = String::from("{");
    for (i, ask) in asks.iter().enumerate() {
        let (key, text) = (&ask.key, &ask.text);
        let Ok(env) = Envelope::parse(text) else {
            continue;
        };
        if i > 0 {
            requests.push(',');
        }
        requests.push_str(&quote(key));
        requests.push_str(r#":{"method":"#);
        requests.push_str(&quote(env.method()));
        if let Some(p) = env.params {
            requests.push_str(r#","params":"#);
            requests.push_str(p.get());
        }
        requests.push('}');
    }
    requests.push('}');
    let result = format!(
        r#"{{"resultType":"input_required","inputRequests":{requests},"requestState":{}}}"#,
        quote(state)
    );
    result_message(id, &result)
}

/// Answers each parked question from the client's `inputResponses`; returns the questions
/// that got no answer (to ask again).
pub(crate) async fn answer(parked: &Parked, responses: Option<&Fields<'_>>) -> Vec<Ask> {
    let mut missing = Vec::new();
    for ask in &parked.asked {
        match responses
            .and_then(|r| r.get(&ask.key))
            .filter(|v| v.get().trim_start().starts_with('{'))
        {
            Some(value) => {
                let _ = parked
                    .conn
                    .send(result_message(&ask.upstream_id, value.get()))
                    .await;
            }
            None => missing.push(ask.clone()),
        }
    }
    missing
}

/// An error reply for a retry whose `requestState` is unknown or expired.
pub(crate) fn unknown_state(id: &str) -> String {
    error_message(
        id,
        code::INVALID_PARAMS,
        "unknown or expired requestState: send the request again without it",
        None,
    )
}
