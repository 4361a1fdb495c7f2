//! The legacy HTTP+SSE client transport (2024-11-05).
//!
//! `GET` the SSE URL, wait for the `endpoint` event, then `POST` every message to that endpoint;
//! every server message, responses included, arrives on the stream as an event. The session
//! lives exactly as long as the stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderMap, header};
use switchboard_core::jsonrpc::result_message;
use switchboard_core::sse::{Decoder, Event};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::UpstreamError;
use crate::http::header_map;
use crate::mux::{Dispatched, Mux};

const MAX_EVENT: usize = 64 * 1024 * 1024;

/// A legacy SSE session.
pub struct SseConn {
    pub(crate) mux: Arc<Mux>,
    poster: Arc<Poster>,
    closed: watch::Receiver<Option<String>>,
    reader: AbortHandle,
}

struct Poster {
    endpoint: reqwest::Url,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl Poster {
    async fn post(&self, text: String) -> Result<(), UpstreamError> {
        let resp = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(text)
            .send()
            .await
            .map_err(|e| {
                UpstreamError::Transport(format!(
                    "POST to the message endpoint failed: {}",
                    e.without_url()
                ))
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(UpstreamError::Transport(format!(
                "the message endpoint answered HTTP {}",
                resp.status()
            )))
        }
    }
}

impl SseConn {
    pub(crate) async fn connect(
        url: &str,
        headers: &BTreeMap<String, String>,
        client: reqwest::Client,
        mux: Arc<Mux>,
    ) -> Result<Self, UpstreamError> {
        let base = reqwest::Url::parse(url).map_err(|e| {
            let shown = switchboard_core::url_secrets::mask_url_secrets(url, "********");
            UpstreamError::Transport(format!("invalid URL {shown:?}: {e}"))
        })?;
        let headers = header_map(headers)?;
        let mut resp = client
            .get(base.clone())
            .headers(headers.clone())
            .header(header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| {
                UpstreamError::Transport(format!("cannot open the SSE stream: {}", e.without_url()))
            })?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Transport(format!(
                "the SSE URL answered HTTP {}",
                resp.status()
            )));
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            return Err(UpstreamError::NotMcp(format!(
                "the SSE URL answered {:?}, not an event stream",
                crate::error::snippet(&content_type)
            )));
        }
        let mut decoder = Decoder::new(MAX_EVENT);
        let mut backlog: Vec<Event> = Vec::new();
        let endpoint = 'found: loop {
            let chunk = resp
                .chunk()
                .await
                .map_err(|e| {
                    UpstreamError::Transport(format!("SSE stream failed: {}", e.without_url()))
                })?
                .ok_or_else(|| {
                    UpstreamError::Protocol("the SSE stream ended before the endpoint event".into())
                })?;
            let mut events = Vec::new();
            decoder
                .feed(&chunk, &mut events)
                .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
            let mut iter = events.into_iter();
            for ev in iter.by_ref() {
                if ev.kind() == "endpoint" {
                    backlog.extend(iter);
                    break 'found ev.data;
                }
            }
        };
        let endpoint = base
            .join(endpoint.trim())
            .map_err(|e| UpstreamError::Protocol(format!("bad endpoint {endpoint:?}: {e}")))?;
        if endpoint.origin() != base.origin() {
            return Err(UpstreamError::Protocol(format!(
                "the server's message endpoint {} is on another origin than {}; refused",
                endpoint.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            )));
        }
        let poster = Arc::new(Poster {
            endpoint,
            headers,
            client,
        });
        let (tx, closed) = watch::channel(None);
        let reader = tokio::spawn(read_loop(
            resp,
            decoder,
            backlog,
            mux.clone(),
            poster.clone(),
            tx,
        ))
        .abort_handle();
        Ok(SseConn {
            mux,
            poster,
            closed,
            reader,
        })
    }

    pub(crate) fn post_request(&self, id: u64, body: String) {
        let poster = self.poster.clone();
        let mux = self.mux.clone();
        tokio::spawn(async move {
            if let Err(e) = poster.post(body).await {
                mux.fail(id, e);
            }
        });
    }

    pub(crate) async fn post_message(&self, text: String) -> Result<(), UpstreamError> {
        self.poster.post(text).await
    }

    pub(crate) fn post_detached(&self, text: String) {
        let poster = self.poster.clone();
        tokio::spawn(async move {
            let _ = poster.post(text).await;
        });
    }

    pub(crate) async fn closed(&self) -> String {
        let mut rx = self.closed.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            Err(_) => "SSE reader ended".into(),
        }
    }

    pub(crate) fn shutdown(&self) {
        self.reader.abort();
    }
}

impl Drop for SseConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_loop(
    mut resp: reqwest::Response,
    mut decoder: Decoder,
    backlog: Vec<Event>,
    mux: Arc<Mux>,
    poster: Arc<Poster>,
    closed: watch::Sender<Option<String>>,
) {
    let handle = |ev: Event| {
        let mux = &mux;
        let poster = &poster;
        async move {
            if ev.kind() != "message" || ev.data.trim().is_empty() {
                return;
            }
            match mux.dispatch(ev.data, None) {
                Ok(Dispatched::Ping(id)) => {
                    let _ = poster.post(result_message(&id, "{}")).await;
                }
                Ok(Dispatched::Handled) => {}
                Err(why) => {
                    tracing::warn!(message = "Ignored a malformed SSE message from an upstream.", %why)
                }
            }
        }
    };
    for ev in backlog {
        handle(ev).await;
    }
    let reason = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let mut events = Vec::new();
                if let Err(e) = decoder.feed(&chunk, &mut events) {
                    break e.to_string();
                }
                for ev in events {
                    handle(ev).await;
                }
            }
            Ok(None) => break "the SSE stream ended".to_string(),
            Err(e) => break format!("the SSE stream failed: {}", e.without_url()),
        }
    };
    mux.fail_all(&reason);
    let _ = closed.send(Some(reason));
}
