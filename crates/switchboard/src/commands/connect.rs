//! `switchboard connect <url>`: a stdio bridge to a running hub's Streamable HTTP endpoint, for
//! desktop clients that only launch commands (like `mcp-remote`). Each JSON-RPC line read on
//! stdin is POSTed (concurrently, so a slow call does not hold up others); JSON replies and
//! SSE events go to stdout one message per line. The `Mcp-Session-Id` the hub returns is sent
//! on every later request, and once a session exists a GET stream carries server-initiated
//! messages. At end of input the session is deleted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use switchboard_core::sse::Decoder;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// What the bridge shares between its tasks.
struct Bridge {
    url: String,
    key: Option<String>,
    http: reqwest::Client,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    out: mpsc::UnboundedSender<String>,
}

impl Bridge {
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(k) = &self.key
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {k}"))
        {
            h.insert(reqwest::header::AUTHORIZATION, v);
        }
        let session = self.session.lock().expect("session lock").clone();
        if let Some(s) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
            h.insert("mcp-session-id", s);
        }
        let protocol = self.protocol.lock().expect("protocol lock").clone();
        if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
            h.insert("mcp-protocol-version", p);
        }
        h
    }

    /// Writes every message of a reply (JSON or SSE) to stdout; notes the session id and the
    /// negotiated protocol version.
    async fn relay(&self, resp: reqwest::Response) -> anyhow::Result<()> {
        if let Some(id) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            *self.session.lock().expect("session lock") = Some(id.to_string());
        }
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let mut resp = resp;
        if !sse {
            let text = resp.text().await?;
            self.emit(&text);
            return Ok(());
        }
        let mut decoder = Decoder::new(64 << 20);
        let mut events = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            decoder
                .feed(&chunk, &mut events)
                .map_err(|e| anyhow::anyhow!("an SSE event of {} bytes is too large", e.0))?;
            for e in events.drain(..) {
                if e.kind() == "message" {
                    self.emit(&e.data);
                }
            }
        }
        Ok(())
    }

    fn emit(&self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        // One message per line: re-serialise to drop any newlines inside the JSON.
        let line = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => {
                if let Some(p) = v["result"]["protocolVersion"].as_str() {
                    *self.protocol.lock().expect("protocol lock") = Some(p.to_string());
                }
                v.to_string()
            }
            Err(_) => text.replace('\n', " "),
        };
        let _ = self.out.send(line);
    }

    /// Sends one line; an HTTP error becomes a JSON-RPC error for the request's id.
    async fn post(self: Arc<Self>, line: String) {
        let id = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("id").cloned())
            .filter(|id| !id.is_null());
        let sent = self
            .http
            .post(&self.url)
            .headers(self.headers())
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(line)
            .send()
            .await;
        let failure = match sent {
            Ok(resp) if resp.status().is_success() => match self.relay(resp).await {
                Ok(()) => return,
                Err(e) => format!("reading the hub's reply failed: {e}"),
            },
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                format!("the hub answered {status}: {}", body.trim())
            }
            Err(e) => format!("cannot reach the hub at {}: {e}", self.url),
        };
        tracing::warn!(message = "Bridge request failed.", error = %failure);
        if let Some(id) = id {
            let reply = serde_json::json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32603, "message": failure}});
            let _ = self.out.send(reply.to_string());
        }
    }

    /// Keeps a GET stream open for server-initiated messages while there is a session.
    async fn listen(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if self.session.lock().expect("session lock").is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let resp = self
                .http
                .get(&self.url)
                .headers(self.headers())
                .header(ACCEPT, "text/event-stream")
                .send()
                .await;
            match resp {
                // The hub offers no stream: nothing to listen to.
                Ok(r) if r.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => return,
                Ok(r) if r.status().is_success() => {
                    backoff = Duration::from_millis(500);
                    if let Err(e) = self.relay(r).await {
                        tracing::debug!(message = "Bridge GET stream ended.", error = %e);
                    }
                }
                Ok(r) => {
                    tracing::debug!(message = "Bridge GET stream refused.", status = %r.status())
                }
                Err(e) => tracing::debug!(message = "Bridge GET stream failed.", error = %e),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}

pub(crate) async fn run(url: &str, key: Option<String>) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    let url = if parsed.path() == "/" {
        parsed.join("mcp")?.to_string()
    } else {
        parsed.to_string()
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let bridge = Arc::new(Bridge {
        url,
        key,
        http: switchboard_upstream::http_client(),
        session: Mutex::new(None),
        protocol: Mutex::new(None),
        out: tx,
    });
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err()
                || stdout.write_all(b"\n").await.is_err()
                || stdout.flush().await.is_err()
            {
                break;
            }
        }
    });
    let listener = tokio::spawn(bridge.clone().listen());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut inflight = tokio::task::JoinSet::new();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        inflight.spawn(bridge.clone().post(line));
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    listener.abort();
    let _ = listener.await;
    let session = bridge.session.lock().expect("session lock").clone();
    if session.is_some() {
        let _ = bridge
            .http
            .delete(&bridge.url)
            .headers(bridge.headers())
            .timeout(Duration::from_secs(2))
            .send()
            .await;
    }
    drop(bridge);
    let _ = writer.await;
    Ok(())
}
