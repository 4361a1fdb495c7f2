//! [`Connection`]: the closed set of upstream transports behind one calling interface.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard_core::config::{ProtocolMode, ServerSpec, TransportSpec};
use switchboard_core::jsonrpc::{Envelope, notification_message, quote, request_message};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::UpstreamError;
use crate::http::HttpConn;
use crate::mux::{IncomingTx, Mux};
use crate::sse::SseConn;
use crate::stdio::{StderrRing, StdioConn};

/// Something the upstream said about one in-flight request before answering it.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A notification tied to the request (progress, or a log message on its HTTP stream).
    Notification(String),
    /// A server-to-client request made while serving the request (sampling, elicitation, roots).
    ServerRequest(String),
}

/// Per-call settings.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Give up after this long without a response or progress.
    pub timeout: Duration,
    /// Where progress and related messages go; `None` drops them.
    pub events: Option<mpsc::Sender<CallEvent>>,
    /// Whether the request may be re-sent after the upstream lost its session.
    pub retry_safe: bool,
    /// Extra HTTP headers for an HTTP upstream (mirrored `Mcp-Param-*` headers for a
    /// stateless one, `traceparent`/`tracestate` when traced).
    pub headers: Vec<(String, String)>,
}

/// What the upstream said in its `initialize` result.
#[derive(Debug, Clone, Default)]
pub struct InitInfo {
    /// The negotiated protocol revision.
    pub protocol_version: String,
    /// The server's capabilities.
    pub capabilities: Value,
    /// `serverInfo`, as sent.
    pub server_info: Value,
    /// `instructions`, if any.
    pub instructions: Option<String>,
}

impl InitInfo {
    pub(crate) fn from_result(result: &str) -> Result<Self, UpstreamError> {
        let v: Value =
            serde_json::from_str(result).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        Ok(InitInfo {
            protocol_version: v["protocolVersion"]
                .as_str()
                .unwrap_or("2024-11-05")
                .to_string(),
            capabilities: v
                .get("capabilities")
                .cloned()
                .unwrap_or(Value::Object(Default::default())),
            server_info: v.get("serverInfo").cloned().unwrap_or(Value::Null),
            instructions: v
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// True when the server declares capability `name` (`tools`, `prompts`, ...).
    pub fn has(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|v| !v.is_null())
    }
}

/// One live session with an upstream server.
pub enum Connection {
    /// A child process.
    Stdio(StdioConn),
    /// A Streamable HTTP session.
    Http(HttpConn),
    /// A legacy HTTP+SSE session.
    Sse(SseConn),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Connection::Stdio(_) => "stdio",
            Connection::Http(_) => "streamable-http",
            Connection::Sse(_) => "sse",
        };
        f.debug_struct("Connection")
            .field("transport", &kind)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// The capabilities the hub declares to upstreams it initializes.
pub fn client_capabilities() -> &'static str {
    r#"{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}"#
}

/// The shared HTTP client for every remote upstream: keep-alive, no proxy, `TCP_NODELAY`.
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("the HTTP client configuration is valid")
}

/// The settings every upstream HTTP client shares, for callers that add a resolver.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls_provider();
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
}

fn rustls_provider() -> bool {
    // reqwest is built without a bundled crypto provider; the process must pick one before the
    // first TLS handshake. Installing twice is harmless.
    rustls::crypto::ring::default_provider()
        .install_default()
        .is_ok()
}

/// The same server as a legacy HTTP+SSE stream, when `spec` is a Streamable HTTP server whose
/// transport may be detected (`protocol: auto`, the default).
pub fn legacy_sse_of(spec: &ServerSpec) -> Option<ServerSpec> {
    match &spec.transport {
        TransportSpec::StreamableHttp {
            url,
            headers,
            protocol: ProtocolMode::Auto,
        } => Some(ServerSpec {
            transport: TransportSpec::Sse {
                url: url.clone(),
                headers: headers.clone(),
            },
            ..spec.clone()
        }),
        _ => None,
    }
}

impl Connection {
    /// Opens a session: spawn or connect, then `initialize` and `notifications/initialized`.
    pub async fn open(
        spec: &ServerSpec,
        client: &reqwest::Client,
        stderr: Arc<StderrRing>,
        incoming: IncomingTx,
        init_timeout: Duration,
    ) -> Result<(Connection, InitInfo), UpstreamError> {
        Self::open_declaring(
            spec,
            client,
            stderr,
            incoming,
            init_timeout,
            client_capabilities(),
        )
        .await
    }

    /// [`Connection::open`], declaring `capabilities` (a JSON object) in `initialize`.
    ///
    /// A Streamable HTTP server in `auto` mode whose `initialize` fails the way a legacy
    /// HTTP+SSE server makes it fail (400/404/405 or a reply that is not JSON-RPC) is tried
    /// as a legacy SSE stream at the same URL: the specification's backwards-compatibility
    /// procedure. The connection returned then is [`Connection::Sse`].
    pub async fn open_declaring(
        spec: &ServerSpec,
        client: &reqwest::Client,
        stderr: Arc<StderrRing>,
        incoming: IncomingTx,
        init_timeout: Duration,
        capabilities: &str,
    ) -> Result<(Connection, InitInfo), UpstreamError> {
        let first = Self::open_as(
            spec,
            client,
            stderr.clone(),
            incoming.clone(),
            init_timeout,
            capabilities,
        )
        .await;
        let sse = match (&first, legacy_sse_of(spec)) {
            (Err(e), Some(sse)) if e.suggests_legacy_sse() => sse,
            _ => return first,
        };
        let Err(as_http) = first else {
            unreachable!("matched an error above")
        };
        match Self::open_as(&sse, client, stderr, incoming, init_timeout, capabilities).await {
            Ok(opened) => {
                tracing::info!(message = "Upstream speaks the legacy HTTP+SSE transport; using it.", server = %spec.name, streamable_http = %as_http);
                Ok(opened)
            }
            Err(as_sse) => Err(UpstreamError::Transport(format!(
                "as Streamable HTTP: {as_http}; as legacy SSE: {as_sse}"
            ))),
        }
    }

    async fn open_as(
        spec: &ServerSpec,
        client: &reqwest::Client,
        stderr: Arc<StderrRing>,
        incoming: IncomingTx,
        init_timeout: Duration,
        capabilities: &str,
    ) -> Result<(Connection, InitInfo), UpstreamError> {
        let mux =
            Arc::new(Mux::new(incoming).with_limit(&spec.name, crate::max_result_bytes(spec)));
        let mut era = ProtocolMode::Legacy;
        let conn = match &spec.transport {
            TransportSpec::Stdio {
                command,
                args,
                env,
                cwd,
                protocol,
            } => Connection::Stdio({
                era = *protocol;
                StdioConn::spawn(&spec.name, command, args, env, cwd.as_deref(), stderr, mux)?
            }),
            TransportSpec::StreamableHttp {
                url,
                headers,
                protocol,
            } => Connection::Http(HttpConn::new(url, headers, *protocol, client.clone(), mux)?),
            TransportSpec::Sse { url, headers } => {
                let opened = tokio::time::timeout(
                    init_timeout,
                    SseConn::connect(url, headers, client.clone(), mux),
                );
                match opened.await {
                    Ok(r) => Connection::Sse(r?),
                    Err(_) => return Err(UpstreamError::Timeout(init_timeout)),
                }
            }
        };
        match conn.initialize(init_timeout, capabilities, era).await {
            Ok(info) => Ok((conn, info)),
            Err(e) => {
                conn.shutdown().await;
                Err(e)
            }
        }
    }

    /// Opens the session. `era` matters for stdio only (HTTP keeps its own setting): legacy
    /// runs `initialize`; 2026-07-28 runs `server/discover`; auto runs `initialize` and, if
    /// the process answers it with a JSON-RPC error (what a stateless-only server does),
    /// tries `server/discover` on the same process.
    async fn initialize(
        &self,
        timeout: Duration,
        capabilities: &str,
        era: ProtocolMode,
    ) -> Result<InitInfo, UpstreamError> {
        if let Connection::Stdio(c) = self
            && era == ProtocolMode::Stateless
        {
            return self.discover_stdio(c, timeout).await;
        }
        let params = format!(
            r#"{{"protocolVersion":{},"capabilities":{},"clientInfo":{{"name":"switchboard","version":{}}}}}"#,
            quote(crate::CLIENT_PROTOCOL_VERSION),
            capabilities,
            quote(env!("CARGO_PKG_VERSION")),
        );
        let info = match self {
            Connection::Http(h) => h.initialize(&params, timeout).await?,
            _ => {
                let reply = self.request("initialize", Some(&params), timeout).await?;
                let env =
                    Envelope::parse(&reply).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                if let Some(err) = env.error {
                    let refused = UpstreamError::Protocol(format!(
                        "initialize failed: {}",
                        crate::snippet(err.get())
                    ));
                    if let Connection::Stdio(c) = self
                        && era == ProtocolMode::Auto
                    {
                        // A stateless-only server refuses `initialize` with an error.
                        return self.discover_stdio(c, timeout).await.map_err(|_| refused);
                    }
                    return Err(refused);
                }
                let result = env
                    .result
                    .ok_or_else(|| UpstreamError::Protocol("initialize without result".into()))?;
                InitInfo::from_result(result.get())?
            }
        };
        self.send(notification_message("notifications/initialized", None))
            .await?;
        Ok(info)
    }

    /// `server/discover` on a stdio process, switching it to the stateless era on success
    /// and opening its listen request for list changes.
    async fn discover_stdio(
        &self,
        c: &StdioConn,
        timeout: Duration,
    ) -> Result<InitInfo, UpstreamError> {
        c.set_stateless(true);
        let reply = self.request("server/discover", None, timeout).await;
        let info = reply.and_then(|reply| {
            let env =
                Envelope::parse(&reply).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
            if let Some(err) = env.error {
                return Err(UpstreamError::Protocol(format!(
                    "server/discover failed: {}",
                    err.get()
                )));
            }
            let result = env
                .result
                .ok_or_else(|| UpstreamError::Protocol("server/discover without result".into()))?;
            crate::stateless::discover_info(result.get())
        });
        match info {
            Ok(info) => {
                c.relisten();
                Ok(info)
            }
            Err(e) => {
                c.set_stateless(false);
                Err(e)
            }
        }
    }

    fn mux(&self) -> &Mux {
        match self {
            Connection::Stdio(c) => &c.mux,
            Connection::Http(c) => &c.mux,
            Connection::Sse(c) => &c.mux,
        }
    }

    /// A fresh id for a request on this connection.
    pub fn next_id(&self) -> u64 {
        self.mux().next_id()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.mux().pending_count()
    }

    /// Sends a request the hub originates and waits for the whole reply message.
    pub async fn request(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Duration,
    ) -> Result<String, UpstreamError> {
        let id = self.next_id();
        let body = request_message(&id.to_string(), method, params);
        let opts = CallOptions {
            timeout,
            events: None,
            retry_safe: true,
            headers: Vec::new(),
        };
        self.call(id, body, opts).await
    }

    /// Sends request `body` (whose id must be `id`) and waits for the reply message text.
    ///
    /// The timeout restarts whenever the request reports progress. If the returned future is
    /// dropped before it completes (client gone, cancelled, timed out), the upstream is sent
    /// `notifications/cancelled` for it.
    pub async fn call(
        &self,
        id: u64,
        body: String,
        opts: CallOptions,
    ) -> Result<String, UpstreamError> {
        // Events go straight to the caller's sink; the timeout restarts lazily (checked when it
        // fires) from the time of the last event.
        let mut rx = self.mux().register(id, opts.events.clone());
        let mut guard = CancelOnDrop {
            conn: self,
            id,
            armed: true,
        };
        // HTTP requests run inside this future (polled below), not in a task of their own.
        let mut post: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>> =
            match self {
                Connection::Stdio(c) => {
                    c.write(c.outgoing(body)).await;
                    None
                }
                Connection::Sse(c) => {
                    c.post_request(id, body);
                    None
                }
                Connection::Http(c) => Some(Box::pin(c.run_request(
                    id,
                    body,
                    opts.retry_safe,
                    opts.headers.clone(),
                ))),
            };
        let mut deadline = Instant::now() + opts.timeout;
        let result = loop {
            tokio::select! {
                biased;
                r = &mut rx => break r.unwrap_or_else(|_| Err(UpstreamError::Closed("request abandoned".into()))),
                _ = async { post.as_mut().expect("guarded by the condition").await }, if post.is_some() => post = None,
                _ = sleep_until(deadline) => {
                    match self.mux().last_event(id).map(|t| t + opts.timeout) {
                        Some(later) if later > Instant::now() => deadline = later,
                        _ => break Err(UpstreamError::Timeout(opts.timeout)),
                    }
                }
            }
        };
        // Completed or failed by the transport: nothing to cancel. A timeout still cancels.
        guard.armed = matches!(result, Err(UpstreamError::Timeout(_)));
        result
    }

    /// Sends a notification or a response (to a server request).
    pub async fn send(&self, text: String) -> Result<(), UpstreamError> {
        if let Ok(env) = Envelope::parse(&text)
            && env.method.is_none()
        {
            self.mux().answered(env.id_text());
        }
        match self {
            Connection::Stdio(c) => {
                c.write(text).await;
                Ok(())
            }
            Connection::Http(c) => c.post_message(text).await,
            Connection::Sse(c) => c.post_message(text).await,
        }
    }

    fn send_detached(&self, text: String) {
        match self {
            Connection::Stdio(c) => c.write_detached(text),
            Connection::Http(c) => c.post_detached(text),
            Connection::Sse(c) => c.post_detached(text),
        }
    }

    /// Resolves when the connection has died on its own.
    pub async fn closed(&self) -> String {
        match self {
            Connection::Stdio(c) => c.closed().await,
            Connection::Http(c) => c.closed().await,
            Connection::Sse(c) => c.closed().await,
        }
    }

    /// Ends the session: stdio processes are stopped with their whole process group.
    pub async fn shutdown(&self) {
        self.mux().fail_all("the server is shutting down");
        match self {
            Connection::Stdio(c) => c.shutdown().await,
            Connection::Http(c) => c.shutdown().await,
            Connection::Sse(c) => c.shutdown(),
        }
    }

    /// For a stateless server: the resource URIs to hear `notifications/resources/updated`
    /// for (a session server is asked with `resources/subscribe` instead).
    pub fn watch_resources(&self, uris: Vec<String>) {
        match self {
            Connection::Http(c) => c.watch_resources(uris),
            Connection::Stdio(c) if c.is_stateless() => c.watch_resources(uris),
            _ => {}
        }
    }

    /// True when this is a stateless 2026-07-28 connection (HTTP or stdio).
    pub fn is_stateless(&self) -> bool {
        match self {
            Connection::Http(c) => c.is_stateless(),
            Connection::Stdio(c) => c.is_stateless(),
            Connection::Sse(_) => false,
        }
    }

    /// Process id of a stdio server.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Connection::Stdio(c) => c.pid(),
            _ => None,
        }
    }
}

/// Sends `notifications/cancelled` if a call is abandoned before its answer arrived.
struct CancelOnDrop<'a> {
    conn: &'a Connection,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let was_pending = self.conn.mux().forget(self.id);
        if self.armed || was_pending {
            let params = format!(
                r#"{{"requestId":{},"reason":"cancelled by the client or timed out"}}"#,
                self.id
            );
            self.conn.send_detached(notification_message(
                "notifications/cancelled",
                Some(&params),
            ));
        }
    }
}
