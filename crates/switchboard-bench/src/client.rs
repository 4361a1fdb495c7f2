//! A minimal MCP client over Streamable HTTP: one hyper HTTP/1 keep-alive connection each.
//!
//! It is deliberately cheap: requests are pre-formatted strings, replies are read as borrowed
//! JSON (only `id`, `error` and `result.isError` are looked at), and both reply styles of the
//! transport are handled: a plain `application/json` body, or a `text/event-stream` that is read
//! until the event carrying the response (priming events, notifications and server requests
//! before it are skipped).

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use tokio::net::TcpStream;

/// The revision the load generator asks for: the newest every server here speaks. (fastmcp's
/// proxy forwards the client's `MCP-Protocol-Version` header upstream, so anything older than
/// what it negotiated upstream gets a 400 there.)
pub const PROTOCOL_VERSION: &str = "2025-11-25";
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Largest single SSE event accepted (the 5,000-tool list is ~1.5 MB).
const MAX_EVENT: usize = 64 * 1024 * 1024;
/// How long to wait for an SSE body to end after its response event.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

type Body = BoxBody<Bytes, std::convert::Infallible>;

/// Where an MCP endpoint lives: `http://host:port/path`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Socket address to connect to.
    pub addr: SocketAddr,
    /// `host:port` for the `Host` header.
    pub authority: HeaderValue,
    /// Request path, e.g. `/mcp`.
    pub path: String,
    /// `Authorization` header sent with every MCP request (`Bearer sb_…` or `Bearer eyJ…`),
    /// for endpoints that want a credential.
    pub authorization: Option<HeaderValue>,
}

impl Endpoint {
    /// Parses a plain `http://IP:PORT/path` URL (all this tool ever needs).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("not an http:// URL: {url}"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let host = auth.replace("localhost", "127.0.0.1");
        let addr: SocketAddr = host
            .parse()
            .map_err(|e| anyhow::anyhow!("bad address in {url}: {e}"))?;
        Ok(Endpoint {
            addr,
            authority: HeaderValue::from_str(auth)?,
            path: path.to_owned(),
            authorization: None,
        })
    }

    /// The same endpoint at another path (e.g. the main service's `/mcp`).
    pub fn with_path(&self, path: &str) -> Self {
        Endpoint {
            path: path.to_owned(),
            ..self.clone()
        }
    }

    /// The same endpoint, sending `Authorization: Bearer <token>` with every MCP request.
    pub fn with_bearer(&self, token: &str) -> anyhow::Result<Self> {
        let mut v = HeaderValue::from_str(&format!("Bearer {token}"))?;
        v.set_sensitive(true);
        Ok(Endpoint {
            authorization: Some(v),
            ..self.clone()
        })
    }

    /// `http://addr/path`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }
}

/// Why one exchange failed.
#[derive(Debug, Clone)]
pub enum ClientError {
    /// Connect, write or read failed; the connection is dropped.
    Io(String),
    /// A non-success HTTP status.
    Status(u16, String),
    /// A JSON-RPC error response.
    Rpc(i64, String),
    /// A tool result with `isError: true`.
    Tool,
    /// Anything else unexpected (bad JSON, wrong id, short body, missing response).
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "io: {e}"),
            ClientError::Status(s, body) => write!(f, "HTTP {s}: {body}"),
            ClientError::Rpc(code, msg) => write!(f, "JSON-RPC error {code}: {msg}"),
            ClientError::Tool => f.write_str("tool result has isError: true"),
            ClientError::Protocol(e) => write!(f, "protocol: {e}"),
        }
    }
}

fn io(e: impl fmt::Display) -> ClientError {
    ClientError::Io(e.to_string())
}

/// The part of a JSON-RPC message the client checks.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<IgnoredAny>,
    #[serde(default)]
    result: Option<ResultHead>,
    #[serde(default)]
    error: Option<ErrorHead>,
}

#[derive(Deserialize)]
struct ResultHead {
    #[serde(rename = "isError", default)]
    is_error: bool,
    #[serde(rename = "protocolVersion", default)]
    protocol_version: Option<String>,
}

#[derive(Deserialize)]
struct ErrorHead {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// What a request's answer said that callers may need.
#[derive(Debug)]
pub struct Answer {
    /// When the response message was complete (before draining the rest of an SSE body).
    pub at: Instant,
    /// `Mcp-Session-Id` of the reply, if any.
    pub session: Option<HeaderValue>,
    /// `result.protocolVersion`, for `initialize`.
    pub protocol_version: Option<String>,
    /// Length of the response message text.
    pub len: usize,
}

/// Messages up to this size are fully parsed; larger ones get [`check_large`].
const FULL_CHECK_MAX: usize = 8 * 1024;

/// Checks one message text; `Ok(None)` when it is not the response to `want_id`.
fn check_message(
    text: &[u8],
    want_id: &str,
) -> Result<Option<(Option<String>, usize)>, ClientError> {
    if text.len() > FULL_CHECK_MAX {
        return check_large(text, want_id);
    }
    let reply: Reply<'_> = serde_json::from_slice(text)
        .map_err(|e| ClientError::Protocol(format!("bad JSON: {e}")))?;
    if reply.method.is_some() {
        return Ok(None); // a notification or server request on the stream
    }
    let Some(id) = reply.id else {
        if let Some(e) = reply.error {
            return Err(ClientError::Rpc(e.code, e.message));
        }
        return Ok(None);
    };
    if id.get().trim_matches('"') != want_id {
        return Ok(None);
    }
    if let Some(e) = reply.error {
        return Err(ClientError::Rpc(e.code, e.message));
    }
    match reply.result {
        Some(r) if r.is_error => Err(ClientError::Tool),
        Some(r) => Ok(Some((r.protocol_version, text.len()))),
        None => Err(ClientError::Protocol(
            "response has neither result nor error".into(),
        )),
    }
}

/// A cheap check for large messages (64 KiB results, 5,000-tool lists), so the single-threaded
/// load generator does not spend its time re-parsing what it measures: the head must carry
/// `"id":<want_id>` and `"result":` (every server here writes the envelope first; errors are
/// never large), the tail must not say `"isError":true`, and the text must look like one object.
fn check_large(text: &[u8], want_id: &str) -> Result<Option<(Option<String>, usize)>, ClientError> {
    let head = &text[..text.len().min(256)];
    let tail = &text[text.len().saturating_sub(256)..];
    let compact = |b: &[u8]| {
        b.iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<Vec<u8>>()
    };
    let (head, tail) = (compact(head), compact(tail));
    if head.first() != Some(&b'{') || tail.last() != Some(&b'}') {
        return Err(ClientError::Protocol(
            "large message is not a JSON object".into(),
        ));
    }
    if memchr::memmem::find(&head, b"\"method\":").is_some() {
        return Ok(None);
    }
    let Some(at) = memchr::memmem::find(&head, b"\"id\":") else {
        return Err(ClientError::Protocol(
            "large message has no id near its start".into(),
        ));
    };
    let id = &head[at + 5..];
    let id = id.strip_prefix(b"\"").unwrap_or(id);
    let matches = id.starts_with(want_id.as_bytes())
        && id.get(want_id.len()).is_some_and(|c| !c.is_ascii_digit());
    if !matches {
        return Ok(None);
    }
    if memchr::memmem::find(&head, b"\"result\":").is_none() {
        return Err(ClientError::Protocol(
            "large message without a result near its start".into(),
        ));
    }
    if memchr::memmem::find(&tail, b"\"isError\":true").is_some() {
        return Err(ClientError::Tool);
    }
    Ok(Some((None, text.len())))
}

/// Splits an event stream into the `data` of each event, using memchr over whole lines.
/// Handles `\n` line ends; a stream with `\r` goes through the general decoder instead.
#[derive(Default)]
struct SseSplitter {
    buf: Vec<u8>,
    /// Where to resume looking for the blank line that ends an event.
    scan: usize,
    fallback: Option<switchboard_core::sse::Decoder>,
}

impl SseSplitter {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), ClientError> {
        if self.fallback.is_none() && memchr::memchr(b'\r', chunk).is_some() {
            let mut dec = switchboard_core::sse::Decoder::new(MAX_EVENT);
            let mut events = Vec::new();
            let pending = std::mem::take(&mut self.buf);
            dec.feed(&pending, &mut events)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            out.extend(events.into_iter().map(|e| e.data.into_bytes()));
            self.fallback = Some(dec);
        }
        if let Some(dec) = &mut self.fallback {
            let mut events = Vec::new();
            dec.feed(chunk, &mut events)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            out.extend(events.into_iter().map(|e| e.data.into_bytes()));
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > MAX_EVENT {
            return Err(ClientError::Protocol("server-sent event too large".into()));
        }
        let mut start = 0;
        while let Some(rel) = memchr::memmem::find(&self.buf[self.scan.max(start)..], b"\n\n") {
            let end = self.scan.max(start) + rel;
            out.push(event_data(&self.buf[start..end]));
            start = end + 2;
            self.scan = start;
        }
        self.buf.drain(..start);
        self.scan = self.buf.len().saturating_sub(1);
        Ok(())
    }
}

/// The joined `data:` lines of one event's text.
fn event_data(event: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut first = true;
    for line in event.split(|&b| b == b'\n') {
        let Some(v) = line.strip_prefix(b"data:") else {
            continue;
        };
        let v = v.strip_prefix(b" ").unwrap_or(v);
        if !first {
            data.push(b'\n');
        }
        data.extend_from_slice(v);
        first = false;
    }
    data
}

/// One HTTP/1 keep-alive connection to an endpoint.
pub struct Conn {
    ep: Endpoint,
    sender: Option<SendRequest<Body>>,
}

impl Conn {
    /// A connection that opens lazily on first use.
    pub fn new(ep: Endpoint) -> Self {
        Conn { ep, sender: None }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Body>, ClientError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = TcpStream::connect(self.ep.addr).await.map_err(io)?;
            tcp.set_nodelay(true).map_err(io)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(io)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let s = self.sender.as_mut().expect("just set");
        s.ready().await.map_err(io)?;
        Ok(s)
    }

    /// The endpoint, for opening a fresh connection to it.
    pub fn endpoint_clone(&self) -> Endpoint {
        self.ep.clone()
    }

    /// Drops the connection; the next request opens a new one.
    pub fn reset(&mut self) {
        self.sender = None;
    }

    async fn send(
        &mut self,
        req: Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let r = async { self.sender().await?.send_request(req).await.map_err(io) }.await;
        if r.is_err() {
            self.reset();
        }
        r
    }

    fn builder(
        &self,
        method: Method,
        session: Option<&HeaderValue>,
        version: Option<&HeaderValue>,
    ) -> http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(self.ep.path.as_str())
            .header(HOST, self.ep.authority.clone());
        if let Some(a) = &self.ep.authorization {
            b = b.header(http::header::AUTHORIZATION, a.clone());
        }
        if let Some(s) = session {
            b = b.header(SESSION_HEADER, s.clone());
        }
        if let Some(v) = version {
            b = b.header(VERSION_HEADER, v.clone());
        }
        b
    }

    /// POSTs one request and waits for its response (JSON body or SSE event).
    pub async fn request(
        &mut self,
        body: String,
        want_id: &str,
        session: Option<&HeaderValue>,
        version: Option<&HeaderValue>,
    ) -> Result<Answer, ClientError> {
        let req = self
            .builder(Method::POST, session, version)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(Full::new(Bytes::from(body)).boxed())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let session = resp.headers().get(SESSION_HEADER).cloned();
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            return Err(ClientError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
            ));
        }
        if !is_sse {
            let bytes = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    self.reset();
                    return Err(io(e));
                }
            };
            let at = Instant::now();
            return match check_message(&bytes, want_id)? {
                Some((protocol_version, len)) => Ok(Answer {
                    at,
                    session,
                    protocol_version,
                    len,
                }),
                None => Err(ClientError::Protocol(
                    "JSON reply is not the response to the request".into(),
                )),
            };
        }
        // Event stream: read until the event that carries our response.
        let mut splitter = SseSplitter::default();
        let mut events = Vec::new();
        let mut found: Option<Answer> = None;
        while found.is_none() {
            let frame = match body.frame().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    self.reset();
                    return Err(io(e));
                }
                None => {
                    return Err(ClientError::Protocol(
                        "event stream ended without the response".into(),
                    ));
                }
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            splitter.feed(&chunk, &mut events)?;
            for data in events.drain(..) {
                if data.is_empty() || found.is_some() {
                    continue; // priming event, or anything after the response
                }
                if let Some((protocol_version, len)) = check_message(&data, want_id)? {
                    found = Some(Answer {
                        at: Instant::now(),
                        session: session.clone(),
                        protocol_version,
                        len,
                    });
                }
            }
        }
        // The stream should end right after the response; keep the connection only if it does.
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            loop {
                match body.frame().await {
                    Some(Ok(_)) => continue,
                    Some(Err(_)) => return false,
                    None => return true,
                }
            }
        })
        .await;
        if drained != Ok(true) {
            self.reset();
        }
        Ok(found.expect("loop ends when found"))
    }

    /// POSTs a notification; expects `202 Accepted` (any 2xx passes).
    pub async fn notify(
        &mut self,
        body: String,
        session: Option<&HeaderValue>,
        version: Option<&HeaderValue>,
    ) -> Result<(), ClientError> {
        let req = self
            .builder(Method::POST, session, version)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(Full::new(Bytes::from(body)).boxed())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                self.reset();
                return Err(io(e));
            }
        };
        if !status.is_success() {
            return Err(ClientError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
            ));
        }
        Ok(())
    }

    /// `DELETE` of a session. 405 (a server without session support) counts as success.
    pub async fn delete(
        &mut self,
        session: &HeaderValue,
        version: Option<&HeaderValue>,
    ) -> Result<(), ClientError> {
        let req = self
            .builder(Method::DELETE, Some(session), version)
            .body(Empty::new().boxed())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                self.reset();
                return Err(io(e));
            }
        };
        if status.is_success() || status == StatusCode::METHOD_NOT_ALLOWED {
            Ok(())
        } else {
            Err(ClientError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
            ))
        }
    }

    /// A plain `GET`, returning status and body (for `/ready`).
    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), ClientError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(HOST, self.ep.authority.clone())
            .body(Empty::new().boxed())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map_err(io)?.to_bytes();
        Ok((status, bytes))
    }

    /// A management-API call: `method path` with `Authorization: Bearer <token>` and an optional
    /// JSON body; returns status and body (any status: the caller decides what it expects).
    pub async fn api(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        json: Option<String>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let b = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.ep.authority.clone())
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(ACCEPT, "application/json");
        let req = match json {
            Some(j) => b
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(j)).boxed()),
            None => b.body(Empty::new().boxed()),
        }
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                self.reset();
                return Err(io(e));
            }
        };
        Ok((status, bytes))
    }
}

/// `{"jsonrpc":"2.0","id":<id>,"method":<method>,"params":<params>}` with pre-quoted pieces.
pub fn request_body(id: &str, method: &str, params: &str) -> String {
    let mut s = String::with_capacity(48 + id.len() + method.len() + params.len());
    s.push_str(r#"{"jsonrpc":"2.0","id":"#);
    s.push_str(id);
    s.push_str(r#","method":""#);
    s.push_str(method);
    s.push_str(r#"","params":"#);
    s.push_str(params);
    s.push('}');
    s
}

/// One client session: a connection plus the session id and negotiated revision.
pub struct Session {
    /// The connection it uses.
    pub conn: Conn,
    /// `Mcp-Session-Id`, absent for stateless servers.
    pub id: Option<HeaderValue>,
    /// Value for the `MCP-Protocol-Version` header.
    pub version: Option<HeaderValue>,
    next_id: u64,
}

impl Session {
    /// initialize + notifications/initialized on `conn`.
    pub async fn open(mut conn: Conn) -> Result<Session, (Conn, ClientError)> {
        let params = format!(
            r#"{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"switchboard-bench","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let answer = match conn
            .request(request_body("0", "initialize", &params), "0", None, None)
            .await
        {
            Ok(a) => a,
            Err(e) => return Err((conn, e)),
        };
        let version = answer
            .protocol_version
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok());
        let id = answer.session;
        if let Err(e) = conn
            .notify(
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
                id.as_ref(),
                version.as_ref(),
            )
            .await
        {
            return Err((conn, e));
        }
        Ok(Session {
            conn,
            id,
            version,
            next_id: 1,
        })
    }

    /// Sends `method` with `params` (raw JSON text) and waits for the response.
    pub async fn call(&mut self, method: &str, params: &str) -> Result<Answer, ClientError> {
        let id = self.next_id.to_string();
        self.next_id += 1;
        let body = request_body(&id, method, params);
        self.conn
            .request(body, &id, self.id.as_ref(), self.version.as_ref())
            .await
    }

    /// The same session used through `conn` (e.g. a connection to another replica), with its
    /// own request ids, far from this handle's so the two never send the same one.
    pub fn continued_on(&self, conn: Conn) -> Session {
        Session {
            conn,
            id: self.id.clone(),
            version: self.version.clone(),
            next_id: self.next_id + 1_000_000,
        }
    }

    /// Ends the session (DELETE) when it has an id; returns the connection.
    pub async fn close(mut self) -> (Conn, Result<(), ClientError>) {
        let r = match &self.id {
            Some(id) => self.conn.delete(id, self.version.as_ref()).await,
            None => Ok(()),
        };
        (self.conn, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        let ep = Endpoint::parse("http://127.0.0.1:8080/mcp").unwrap();
        assert_eq!(ep.addr.port(), 8080);
        assert_eq!(ep.path, "/mcp");
        assert_eq!(ep.authority, "127.0.0.1:8080");
        assert_eq!(ep.url(), "http://127.0.0.1:8080/mcp");
        assert!(Endpoint::parse("https://x/mcp").is_err());
    }

    #[test]
    fn checks_messages() {
        let ok = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":false}}"#;
        assert!(check_message(ok, "7").unwrap().is_some());
        assert!(check_message(ok, "8").unwrap().is_none());
        let note = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#;
        assert!(check_message(note, "7").unwrap().is_none());
        let tool_err = br#"{"jsonrpc":"2.0","id":"7","result":{"isError":true}}"#;
        assert!(matches!(
            check_message(tool_err, "7"),
            Err(ClientError::Tool)
        ));
        let rpc_err = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"no"}}"#;
        assert!(matches!(
            check_message(rpc_err, "7"),
            Err(ClientError::Rpc(-32602, _))
        ));
        let init = br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18"}}"#;
        assert_eq!(
            check_message(init, "0").unwrap().unwrap().0.as_deref(),
            Some("2025-06-18")
        );
    }

    #[test]
    fn checks_large_messages_cheaply() {
        let text = format!(
            r#"{{"jsonrpc":"2.0","id":12,"result":{{"content":[{{"type":"text","text":"{}"}}],"isError":false}}}}"#,
            "x".repeat(70_000)
        );
        assert_eq!(
            check_message(text.as_bytes(), "12").unwrap().unwrap().1,
            text.len()
        );
        assert!(check_message(text.as_bytes(), "1").unwrap().is_none());
        let bad = text.replace(r#""isError":false"#, r#""isError":true"#);
        assert!(matches!(
            check_message(bad.as_bytes(), "12"),
            Err(ClientError::Tool)
        ));
        assert!(check_message(&text.as_bytes()[..20_000], "12").is_err());
    }

    #[test]
    fn splits_event_streams() {
        let mut sp = SseSplitter::default();
        let mut out = Vec::new();
        let stream =
            b"data: \nid: 0\nretry: 3000\n\ndata: {\"a\":1}\nid: 1\n\ndata: x\ndata: y\n\n";
        for chunk in stream.chunks(5) {
            sp.feed(chunk, &mut out).unwrap();
        }
        assert_eq!(
            out,
            vec![b"".to_vec(), br#"{"a":1}"#.to_vec(), b"x\ny".to_vec()]
        );
        let mut sp = SseSplitter::default();
        let mut out = Vec::new();
        sp.feed(b"data: a\r\n\r\ndata: b\n\n", &mut out).unwrap();
        assert_eq!(out, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn builds_request_bodies() {
        let b = request_body("3", "tools/call", r#"{"name":"echo"}"#);
        assert_eq!(
            b,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo"}}"#
        );
        let _: serde_json::Value = serde_json::from_str(&b).unwrap();
    }
}
