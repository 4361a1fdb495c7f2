//! A session client before a stateless upstream (docs/protocol.md §4): while the upstream
//! answers `input_required`, each of its questions goes to the client as a real request,
//! and the upstream is asked again with the answers and its byte-exact `requestState`.
//! `is_input_required` tells such a reply apart (the usage prior counts only a call's end).

use std::sync::Arc;

use switchboard_core::jsonrpc::{
    Envelope, Fields, Splice, object_append_point, quote, request_message, span_of,
};
use switchboard_upstream::{CallOptions, Connection, UpstreamError};

use crate::call::needed_capability;
use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::session::{ClientSession, ForwardedRequest};

/// One `input_required` question: its key, method and raw params.
type Question = (String, String, Option<String>);

/// Most rounds of questions one call may ask.
const MAX_ROUNDS: usize = 8;

impl Hub {
    /// Answers the upstream's `input_required` rounds by asking the client, retrying `base`
    /// (the request as first sent upstream) with the answers. At most eight rounds.
    pub(crate) async fn bridge_input_required(
        &self,
        session: &ClientSession,
        conn: &Arc<Connection>,
        base: String,
        mut reply: String,
        timeout: std::time::Duration,
        sink: &Outbox,
    ) -> Result<String, UpstreamError> {
        for _ in 0..MAX_ROUNDS {
            let Some((requests, state)) = input_required_parts(&reply) else {
                return Ok(reply);
            };
            let mut answers = Vec::new();
            for (key, method, params) in requests {
                let answer = self
                    .ask_client(session, &method, params.as_deref(), timeout, sink)
                    .await?;
                answers.push(format!("{}:{}", quote(&key), answer));
            }
            let up_id = conn.next_id();
            let body = retry_body(
                &base,
                up_id,
                &format!("{{{}}}", answers.join(",")),
                state.as_deref(),
            )
            .ok_or_else(|| UpstreamError::Protocol("cannot build the retry request".into()))?;
            let opts = CallOptions {
                timeout,
                events: None,
                retry_safe: false,
                headers: Vec::new(),
            };
            reply = conn.call(up_id, body, opts).await?;
        }
        Err(UpstreamError::Protocol(
            "the server kept asking for input after eight rounds".into(),
        ))
    }

    /// Sends one request to the client and waits for its result (raw JSON).
    async fn ask_client(
        &self,
        session: &ClientSession,
        method: &str,
        params: Option<&str>,
        timeout: std::time::Duration,
        sink: &Outbox,
    ) -> Result<String, UpstreamError> {
        let needed = needed_capability(method);
        if needed.is_empty() || !session.client_has(needed) {
            return Err(UpstreamError::Protocol(format!(
                "the server needs {method}, which this client did not declare"
            )));
        }
        let n = session
            .next_forward
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hub_id = quote(&format!("sb-{}-{n}", self.inner.replica.tag));
        let (tx, rx) = tokio::sync::oneshot::channel();
        session
            .forwarded
            .lock()
            .expect("forwarded lock")
            .insert(hub_id.clone(), ForwardedRequest::Local(tx));
        let _ = sink.send(request_message(&hub_id, method, params)).await;
        let answer = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))?
            .map_err(|_| UpstreamError::Closed("the client went away".into()))?;
        let env = Envelope::parse(&answer).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        match (env.result, env.error) {
            (Some(r), _) => Ok(r.get().to_string()),
            (None, Some(e)) => Err(UpstreamError::Protocol(format!(
                "the client refused {method}: {}",
                e.get()
            ))),
            _ => Err(UpstreamError::Protocol(
                "the client's answer has no result".into(),
            )),
        }
    }
}

/// True for an `input_required` result (the first leg of a stateless call that needs input).
pub(crate) fn is_input_required(reply: &str) -> bool {
    reply.contains("input_required")
        && Envelope::parse(reply)
            .ok()
            .and_then(|e| Fields::parse(e.result?.get()))
            .is_some_and(|r| r.get_str("resultType").as_deref() == Some("input_required"))
}

/// The questions (key, method, params) and the raw `requestState` of an `input_required`
/// reply; `None` for any other reply.
fn input_required_parts(reply: &str) -> Option<(Vec<Question>, Option<String>)> {
    let env = Envelope::parse(reply).ok()?;
    let result = Fields::parse(env.result?.get())?;
    if result.get_str("resultType").as_deref() != Some("input_required") {
        return None;
    }
    let state = result.get("requestState").map(|s| s.get().to_string());
    let requests = Fields::parse(result.get("inputRequests")?.get())?;
    let parts = requests
        .entries
        .iter()
        .filter_map(|(key, raw)| {
            let req = Fields::parse(raw.get())?;
            let method = req.get_str("method")?.into_owned();
            Some((
                key.to_string(),
                method,
                req.get("params").map(|p| p.get().to_string()),
            ))
        })
        .collect();
    Some((parts, state))
}

/// The original upstream request with a new id, plus `inputResponses` and `requestState`.
fn retry_body(base: &str, up_id: u64, responses: &str, state: Option<&str>) -> Option<String> {
    let env = Envelope::parse(base).ok()?;
    let params = env.params?;
    let (at, has_members) = object_append_point(params.get())?;
    let start = span_of(base, params.get()).start;
    let comma = if has_members { "," } else { "" };
    let mut sp = Splice::new();
    sp.replace(base, env.id?.get(), up_id.to_string());
    let state = state
        .map(|s| format!(r#","requestState":{s}"#))
        .unwrap_or_default();
    sp.insert(
        start + at,
        format!(r#"{comma}"inputResponses":{responses}{state}"#),
    );
    Some(sp.apply(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_input_required_result_is_one() {
        assert!(is_input_required(
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType": "input_required","inputRequests":{}}}"#
        ));
        assert!(!is_input_required(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"input_required"}]}}"#
        ));
        assert!(!is_input_required(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"input_required"}}"#
        ));
    }
}
