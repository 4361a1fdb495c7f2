//! The Streamable HTTP client transport (2025-03-26 .. 2025-11-25 sessions).
//!
//! One upstream session is shared by every downstream client. Each request is its own POST,
//! answered either as JSON or as an event stream carrying related notifications before the
//! response. A 404 for the session re-initializes it; the request is re-sent once when it is
//! safe to repeat.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use switchboard_core::config::ProtocolMode;
use switchboard_core::jsonrpc::{Envelope, request_message, result_message};
use switchboard_core::sse::Decoder;
use tokio_util::sync::CancellationToken;

use crate::UpstreamError;
use crate::connection::InitInfo;
use crate::error::snippet;
use crate::mux::{Dispatched, Mux};

const MAX_EVENT: usize = 64 * 1024 * 1024;
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

#[derive(Default)]
struct Session {
    id: Option<HeaderValue>,
    version: Option<HeaderValue>,
    generation: u64,
    /// Stateless 2026-07-28: every request carries its own `_meta` and routing headers.
    stateless: bool,
}

const STATELESS: &str = switchboard_core::protocol::STATELESS_VERSION;

struct Shared {
    mux: Arc<Mux>,
    url: reqwest::Url,
    headers: HeaderMap,
    client: reqwest::Client,
    session: ArcSwap<Session>,
    reinit: tokio::sync::Mutex<()>,
    init_params: OnceLock<String>,
    protocol: ProtocolMode,
    shutdown: CancellationToken,
    /// Resource URIs the listen request to a stateless server subscribes to.
    listen_uris: std::sync::Mutex<Vec<String>>,
    /// Fires when `listen_uris` changed (the listen request is then re-sent).
    listen_changed: tokio::sync::Notify,
}

/// A Streamable HTTP session with one upstream.
pub struct HttpConn {
    pub(crate) mux: Arc<Mux>,
    shared: Arc<Shared>,
}

/// Builds a header map from configured headers; names and values were validated at load time.
pub(crate) fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, UpstreamError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::try_from(k.as_str())
            .map_err(|_| UpstreamError::Transport(format!("invalid header name {k:?}")))?;
        let value = HeaderValue::try_from(v.as_str())
            .map_err(|_| UpstreamError::Transport(format!("invalid value for header {k:?}")))?;
        map.insert(name, value);
    }
    Ok(map)
}

impl HttpConn {
    pub(crate) fn new(
        url: &str,
        headers: &BTreeMap<String, String>,
        protocol: ProtocolMode,
        client: reqwest::Client,
        mux: Arc<Mux>,
    ) -> Result<Self, UpstreamError> {
        let url = reqwest::Url::parse(url).map_err(|e| {
            let shown = switchboard_core::url_secrets::mask_url_secrets(url, "********");
            UpstreamError::Transport(format!("invalid URL {shown:?}: {e}"))
        })?;
        let mut headers = header_map(headers)?;
        // Built once: every POST clones this map instead of parsing the same headers again.
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT_BOTH));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let shared = Arc::new(Shared {
            mux: mux.clone(),
            url,
            headers,
            client,
            session: ArcSwap::from_pointee(Session::default()),
            reinit: tokio::sync::Mutex::new(()),
            init_params: OnceLock::new(),
            protocol,
            shutdown: CancellationToken::new(),
            listen_uris: std::sync::Mutex::new(Vec::new()),
            listen_changed: tokio::sync::Notify::new(),
        });
        Ok(HttpConn { mux, shared })
    }

    pub(crate) async fn initialize(
        &self,
        params: &str,
        timeout: Duration,
    ) -> Result<InitInfo, UpstreamError> {
        let _ = self.shared.init_params.set(params.to_string());
        let info = tokio::time::timeout(timeout, self.shared.open_session())
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))??;
        // Unsolicited messages: the session's GET stream, or for a stateless server a
        // `subscriptions/listen` request for every list change.
        let shared = self.shared.clone();
        tokio::spawn(async move { shared.listen().await });
        Ok(info)
    }

    /// Sends request `id` and dispatches everything in its reply into the pending table. The
    /// caller polls this future in its own task (no spawn); dropping it aborts the request.
    pub(crate) async fn run_request(
        &self,
        id: u64,
        body: String,
        retry_safe: bool,
        headers: Vec<(String, String)>,
    ) {
        self.shared
            .run_request(id, body, retry_safe, &headers)
            .await;
    }

    pub(crate) async fn post_message(&self, text: String) -> Result<(), UpstreamError> {
        self.shared.post_message(text).await
    }

    /// For a stateless server: the resource URIs whose `notifications/resources/updated` the
    /// hub's listen request asks for (it is re-sent when they change).
    pub(crate) fn watch_resources(&self, mut uris: Vec<String>) {
        uris.sort();
        uris.dedup();
        let mut current = self.shared.listen_uris.lock().expect("listen lock");
        if *current != uris {
            *current = uris;
            drop(current);
            self.shared.listen_changed.notify_one();
        }
    }

    /// True when the session is the stateless 2026-07-28 protocol.
    pub(crate) fn is_stateless(&self) -> bool {
        self.shared.session.load().stateless
    }

    pub(crate) fn post_detached(&self, text: String) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _ = shared.post_message(text).await;
        });
    }

    pub(crate) async fn closed(&self) -> String {
        self.shared.shutdown.cancelled().await;
        "session closed".into()
    }

    pub(crate) async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let session = self.shared.session.load();
        if let Some(id) = &session.id {
            let req = self
                .shared
                .client
                .delete(self.shared.url.clone())
                .headers(self.shared.headers.clone())
                .header("mcp-session-id", id);
            let _ = tokio::time::timeout(Duration::from_secs(2), req.send()).await;
        }
    }
}

impl Shared {
    fn post(&self, body: impl Into<bytes::Bytes>, session: &Session) -> reqwest::RequestBuilder {
        let body: bytes::Bytes = body.into();
        if session.stateless {
            return self.post_stateless(String::from_utf8_lossy(&body).into_owned());
        }
        let mut req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body);
        if let Some(id) = &session.id {
            req = req.header("mcp-session-id", id);
        }
        if let Some(v) = &session.version {
            req = req.header("mcp-protocol-version", v);
        }
        req
    }

    /// A stateless request: `_meta` added to the body, routing headers from it.
    fn post_stateless(&self, body: String) -> reqwest::RequestBuilder {
        let (body, method, name) = crate::stateless::prepare(body);
        let mut req = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header("mcp-protocol-version", STATELESS)
            .body(body);
        if let Some(m) = method {
            req = req.header(switchboard_core::protocol::headers::METHOD, m);
        }
        if let Some(n) = name {
            req = req.header(switchboard_core::protocol::headers::NAME, n);
        }
        req
    }

    /// Opens the session in the configured era; `auto` falls back to the stateless protocol
    /// only when the server refuses `initialize` the way a stateless-only server does.
    async fn open_session(&self) -> Result<InitInfo, UpstreamError> {
        match self.protocol {
            ProtocolMode::Legacy => self.handshake(0).await,
            ProtocolMode::Stateless => self.discover().await,
            ProtocolMode::Auto => match self.handshake(0).await {
                Err(UpstreamError::HttpStatus(400 | 404 | 405, why)) => match self.discover().await
                {
                    Ok(info) => Ok(info),
                    Err(_) => Err(UpstreamError::HttpStatus(400, why)),
                },
                other => other,
            },
        }
    }

    /// `server/discover`: the stateless protocol's opening.
    async fn discover(&self) -> Result<InitInfo, UpstreamError> {
        let id = self.mux.next_id();
        let body = request_message(&id.to_string(), "server/discover", None);
        let stateless = Session {
            stateless: true,
            version: HeaderValue::from_static(STATELESS).into(),
            ..Session::default()
        };
        let resp = self
            .post(body, &stateless)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), resp).await);
        }
        let reply = read_single_reply(resp, id).await?;
        let env = Envelope::parse(&reply).map_err(|e| not_mcp(&e, &reply))?;
        if let Some(err) = env.error {
            return Err(UpstreamError::Protocol(format!(
                "server/discover failed: {}",
                snippet(err.get())
            )));
        }
        let result = env
            .result
            .ok_or_else(|| UpstreamError::Protocol("server/discover without result".into()))?;
        let info = crate::stateless::discover_info(result.get())?;
        self.session.store(Arc::new(Session {
            generation: 1,
            ..stateless
        }));
        Ok(info)
    }

    /// Runs `initialize` + `notifications/initialized` and installs the new session, unless
    /// another task already replaced generation `seen`.
    async fn handshake(&self, seen: u64) -> Result<InitInfo, UpstreamError> {
        let _guard = self.reinit.lock().await;
        let current = self.session.load_full();
        if current.generation != seen {
            return Ok(InitInfo::default());
        }
        let params = self.init_params.get().cloned().unwrap_or_default();
        let id = self.mux.next_id();
        let body = request_message(&id.to_string(), "initialize", Some(&params));
        let resp = self
            .post(body, &Session::default())
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(status_error(status, resp).await);
        }
        let session_id = resp.headers().get("mcp-session-id").cloned();
        let reply = read_single_reply(resp, id).await?;
        let env = Envelope::parse(&reply).map_err(|e| not_mcp(&e, &reply))?;
        if let Some(err) = env.error {
            return Err(UpstreamError::Protocol(format!(
                "initialize failed: {}",
                snippet(err.get())
            )));
        }
        let result = env
            .result
            .ok_or_else(|| UpstreamError::Protocol("initialize without result".into()))?;
        let info = InitInfo::from_result(result.get())?;
        let version = HeaderValue::try_from(info.protocol_version.as_str()).ok();
        let session = Session {
            id: session_id,
            version,
            generation: current.generation + 1,
            stateless: false,
        };
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string();
        let resp = self.post(note, &session).send().await.map_err(transport)?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), resp).await);
        }
        self.session.store(Arc::new(session));
        Ok(info)
    }

    async fn run_request(
        &self,
        id: u64,
        body: String,
        retry_safe: bool,
        headers: &[(String, String)],
    ) {
        // Bytes: a retry re-sends the same buffer without copying it.
        let body = bytes::Bytes::from(body);
        let mut attempt = 0;
        loop {
            let session = self.session.load_full();
            let mut req = self.post(body.clone(), &session);
            // Mirrored `Mcp-Param-*` headers (stateless only) and trace context (any era).
            for (name, value) in headers {
                req = req.header(name.as_str(), value.as_str());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return self.mux.fail(id, transport(e)),
            };
            let status = resp.status();
            if status == StatusCode::NOT_FOUND && session.id.is_some() {
                // The upstream forgot our session: start a new one.
                let renewed = self.handshake(session.generation).await;
                if let Err(e) = renewed {
                    return self.mux.fail(id, e);
                }
                if retry_safe && attempt == 0 {
                    attempt += 1;
                    continue;
                }
                return self.mux.fail(id, UpstreamError::SessionExpired);
            }
            if session.stateless && status.is_client_error() {
                // A stateless server answers errors such as -32021 (missing capability) or
                // -32602 with a 4xx status and a JSON-RPC error: that error is the reply.
                let text = match resp.text().await {
                    Ok(t) => t,
                    Err(e) => return self.mux.fail(id, transport(e)),
                };
                if is_error_reply(&text, id) && self.mux.dispatch(text.clone(), Some(id)).is_ok() {
                    return;
                }
                let err = format!("HTTP {status} from the server: {}", snippet(&text));
                return self
                    .mux
                    .fail(id, UpstreamError::HttpStatus(status.as_u16(), err));
            }
            if !status.is_success() {
                let err = status_error(status, resp).await;
                return self.mux.fail(id, err);
            }
            return self.read_reply(resp, id).await;
        }
    }

    /// Reads a POST's reply (JSON or event stream), dispatching every message in it.
    async fn read_reply(&self, resp: reqwest::Response, id: u64) {
        if is_event_stream(&resp) {
            if let Err(e) = self.read_stream(resp, Some(id)).await {
                return self.mux.fail(id, e);
            }
            // The stream ended; if the answer never came, say so.
            self.mux.fail(
                id,
                UpstreamError::Closed("the response stream ended without a response".into()),
            );
            return;
        }
        match self.read_capped(resp).await {
            Err(e) => self.mux.fail(id, e),
            Ok(text) if text.trim().is_empty() => self
                .mux
                .fail(id, UpstreamError::Protocol("empty response body".into())),
            Ok(text) => {
                if let Err(why) = self.mux.dispatch(text, Some(id)) {
                    self.mux.fail(id, UpstreamError::Protocol(why));
                }
            }
        }
    }

    /// A JSON reply body, refused as soon as it is known to be over the server's
    /// `max_result_bytes` (from `Content-Length`, else while reading), so it is never held whole.
    async fn read_capped(&self, mut resp: reqwest::Response) -> Result<String, UpstreamError> {
        let limit = self.mux.max_message();
        if let Some(len) = resp.content_length()
            && len > limit as u64
        {
            let err = self
                .mux
                .too_large(usize::try_from(len).unwrap_or(usize::MAX));
            tracing::warn!(message = "Refused an oversized reply from an upstream.", url = %self.url, reason = %err);
            return Err(err);
        }
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                let err = self.mux.too_large(body.len() + chunk.len());
                tracing::warn!(message = "Refused an oversized reply from an upstream.", url = %self.url, reason = %err);
                return Err(err);
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body)
            .map_err(|_| UpstreamError::Protocol("the reply body is not UTF-8".into()))
    }

    /// Dispatches every event of a stream until it ends (or, for a POST, until `id` is answered).
    async fn read_stream(
        &self,
        mut resp: reqwest::Response,
        id: Option<u64>,
    ) -> Result<(), UpstreamError> {
        let limit = self.mux.max_message().min(MAX_EVENT);
        let mut decoder = Decoder::new(limit);
        let mut events = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            decoder.feed(&chunk, &mut events).map_err(|e| {
                let err = self.mux.too_large(limit + 1);
                tracing::warn!(message = "Refused an oversized event from an upstream.", url = %self.url, reason = %e);
                err
            })?;
            for ev in events.drain(..) {
                if ev.kind() != "message" || ev.data.trim().is_empty() {
                    continue;
                }
                match self.mux.dispatch(ev.data, id) {
                    Ok(Dispatched::Ping(pid)) => {
                        let _ = self.post_message(result_message(&pid, "{}")).await;
                    }
                    Ok(Dispatched::Handled) => {}
                    Err(why) => {
                        let url = switchboard_core::url_secrets::mask_url_secrets(
                            self.url.as_str(),
                            "********",
                        );
                        tracing::warn!(message = "Ignored a malformed message from an upstream.", %url, %why)
                    }
                }
            }
            if let Some(id) = id
                && !self.mux_has(id)
            {
                // Answered. Read the rest of the stream (servers close it right after the
                // answer) in the background, so the pooled connection is reused, not reopened.
                tokio::spawn(async move {
                    let drain = async { while let Ok(Some(_)) = resp.chunk().await {} };
                    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
                });
                return Ok(());
            }
        }
        Ok(())
    }

    fn mux_has(&self, id: u64) -> bool {
        self.mux.is_pending(id)
    }

    async fn post_message(&self, text: String) -> Result<(), UpstreamError> {
        let session = self.session.load_full();
        let resp = self.post(text, &session).send().await.map_err(transport)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(resp.status(), resp).await)
        }
    }

    /// Keeps the standalone GET stream open for unsolicited messages, if the server offers one.
    async fn listen(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let session = self.session.load_full();
            let mut headers = self.headers.clone();
            headers.insert(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.remove(header::CONTENT_TYPE);
            let mut req = self.client.get(self.url.clone()).headers(headers);
            if let Some(id) = &session.id {
                req = req.header("mcp-session-id", id);
            }
            if let Some(v) = &session.version {
                req = req.header("mcp-protocol-version", v);
            }
            if session.stateless {
                let filter = {
                    let uris = self.listen_uris.lock().expect("listen lock");
                    crate::stateless::listen_params(&uris)
                };
                let body = request_message(
                    r#""switchboard-listen""#,
                    "subscriptions/listen",
                    Some(&filter),
                );
                req = self.post_stateless(body);
            }
            let outcome = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = req.send() => r,
            };
            match outcome {
                Ok(resp) if resp.status().is_success() && is_event_stream(&resp) => {
                    failures = 0;
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = self.read_stream(resp, None) => {}
                        // New resource subscriptions: listen again with them.
                        _ = self.listen_changed.notified() => continue,
                    }
                }
                // 405: the server offers no GET stream. Nothing to listen to.
                Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => return,
                _ => failures += 1,
            }
            if failures > 20 {
                return;
            }
            let wait = Duration::from_millis(250 * u64::from(failures.clamp(1, 20)));
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Reads the reply to `id` from a JSON body or an event stream, ignoring anything else.
async fn read_single_reply(mut resp: reqwest::Response, id: u64) -> Result<String, UpstreamError> {
    if !is_event_stream(&resp) {
        return resp.text().await.map_err(transport);
    }
    let mut decoder = Decoder::new(MAX_EVENT);
    let mut events = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        decoder
            .feed(&chunk, &mut events)
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        for ev in events.drain(..) {
            if let Ok(env) = Envelope::parse(&ev.data)
                && env.method.is_none()
                && switchboard_core::jsonrpc::id_as_u64(env.id_text()) == Some(id)
            {
                return Ok(ev.data);
            }
        }
    }
    Err(UpstreamError::Protocol(
        "the stream ended without a reply to initialize".into(),
    ))
}

/// A reply to `initialize` or `server/discover` that is not JSON-RPC (an HTML page, say).
fn not_mcp(e: &impl std::fmt::Display, body: &str) -> UpstreamError {
    UpstreamError::NotMcp(format!("{e}; the server sent: {}", snippet(body)))
}

fn transport(e: reqwest::Error) -> UpstreamError {
    // The URL may carry secrets in its query: the message never shows it.
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    UpstreamError::Transport(msg)
}

/// True when `text` is a JSON-RPC error response to request `id`.
fn is_error_reply(text: &str, id: u64) -> bool {
    Envelope::parse(text).is_ok_and(|env| env.error.is_some() && env.id_text() == id.to_string())
}

async fn status_error(status: StatusCode, resp: reqwest::Response) -> UpstreamError {
    let body = resp.text().await.unwrap_or_default();
    UpstreamError::HttpStatus(
        status.as_u16(),
        format!("HTTP {status} from the server: {}", snippet(&body)),
    )
}
