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

use switchboard_core::jsonrpc::{Envelope, Fields, quote};
use switchboard_upstream::{CallEvent, Connection, UpstreamError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::call::{Eras, Return, finish_call, needed_capability};
use crate::hub::Hub;
use crate::reply;
use crate::route::Request;
use crate::session::{ClientSession, random_id};

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

/// The upstream side of a stateless client's call: what keeps it going across the client's
/// rounds.
pub(crate) struct Leg {
    pub(crate) running: Running,
    pub(crate) conn: Arc<Connection>,
    pub(crate) server: String,
    /// The client's progress token, raw.
    pub(crate) progress_token: Option<String>,
}

/// A call waiting for the client's answers.
pub(crate) struct Parked {
    pub(crate) leg: Leg,
    /// Questions asked: key, the upstream request's raw id, the request's text.
    pub(crate) asked: Vec<Ask>,
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
    pub(crate) fn park(&self, leg: Leg, asked: Vec<Ask>) -> String {
        let state = format!("sbrs1.{}.{}", self.tag, random_id());
        let parked = Parked {
            leg,
            asked,
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
    reply::result(id, &result)
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
                    .leg
                    .conn
                    .send(reply::result(&ask.upstream_id, value.get()))
                    .await;
            }
            None => missing.push(ask.clone()),
        }
    }
    missing
}

/// An error reply for a retry whose `requestState` is unknown or expired.
pub(crate) fn unknown_state(id: &str) -> String {
    reply::invalid_params(
        id,
        "unknown or expired requestState: send the request again without it",
    )
}

impl Hub {
    /// Runs a stateless client's call until it ends or the upstream asks something; questions
    /// park the call and become an `input_required` result.
    pub(crate) async fn drive(
        &self,
        req: &Request<'_>,
        uri_rewrite: Option<&(String, String)>,
        mut leg: Leg,
    ) -> String {
        let (id, session) = (req.id(), req.session);
        let mut asks: Vec<Ask> = Vec::new();
        loop {
            // Questions that come close together (a session-based server asking several
            // things at once) go to the client in one round.
            let next = if asks.is_empty() {
                leg.running.rx.recv().await
            } else {
                tokio::time::timeout(GATHER, leg.running.rx.recv())
                    .await
                    .ok()
                    .flatten()
            };
            match next {
                Some(Progress::Note(t)) => {
                    let token = leg.progress_token.as_deref();
                    let note = CallEvent::Notification(t);
                    self.relay(session, &leg.conn, note, token, req.sink).await;
                }
                Some(Progress::Ask(t)) => {
                    match admit_question(session, &leg.conn, t, asks.len()).await {
                        Ok(ask) => asks.push(ask),
                        // Not a question for the client (refused upstream): carry on.
                        Err("") => {}
                        // The call needs what the client did not declare: it fails (and the
                        // upstream call is cancelled when `leg` is dropped).
                        Err(needed) => return reply::missing_capability(id, needed),
                    }
                }
                Some(Progress::Done(outcome)) => {
                    let back = Return {
                        id,
                        server: &leg.server,
                        eras: Eras::StatelessClient,
                        uri_rewrite,
                    };
                    return finish_call(outcome, &back);
                }
                None if asks.is_empty() => {
                    return reply::internal(id, "the call ended without an answer");
                }
                None => {
                    let state = self.inner.parked.park(leg, asks.clone());
                    return input_required(id, &asks, &state);
                }
            }
        }
    }

    /// A stateless client's retry: answer the parked questions, then keep driving the call.
    pub(crate) async fn resume(
        &self,
        req: &Request<'_>,
        state: &str,
        uri_rewrite: Option<&(String, String)>,
    ) -> String {
        let id = req.id();
        let Some(parked) = self.inner.parked.take(state) else {
            return unknown_state(id);
        };
        let responses = req
            .params
            .and_then(|p| p.get("inputResponses"))
            .and_then(|r| Fields::parse(r.get()));
        let missing = answer(&parked, responses.as_ref()).await;
        if !missing.is_empty() {
            let state = self.inner.parked.park(parked.leg, missing.clone());
            return input_required(id, &missing, &state);
        }
        self.drive(req, uri_rewrite, parked.leg).await
    }
}

/// A question the client may be asked. One it did not declare is refused upstream, and
/// the capability it needs is returned as the error.
async fn admit_question(
    session: &ClientSession,
    conn: &Arc<Connection>,
    text: String,
    n: usize,
) -> Result<Ask, &'static str> {
    let Ok(env) = Envelope::parse(&text) else {
        return Err("");
    };
    let needed = needed_capability(env.method());
    if needed.is_empty() || !session.client_has(needed) {
        let _ = conn.send(reply::undeclared(env.id_text(), needed)).await;
        return Err(needed);
    }
    Ok(Ask {
        key: format!("q{}", n + 1),
        upstream_id: env.id_text().to_string(),
        text: text.clone(),
    })
}
