//! The fixture's MCP behaviour: [`Fixture`], an rmcp `ServerHandler` with
//! tools, prompts, resources, completion and logging, plus the in-memory
//! duplex transport used by the SSE bridge and by tests.

// Logging, sampling and roots are marked deprecated upstream (SEP-2577), but
// exercising them is exactly what a gateway fixture is for.
#![allow(deprecated)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError, RwLock},
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        CompletionInfo, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        LoggingLevel, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage,
        ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
        ResourceContents, ResourceTemplate, Role, ServerCapabilities, ServerConfig,
        SetLevelRequestParams, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
    },
    service::{RequestContext, serve_server_with_ct},
    transport::async_rw::AsyncRwTransport,
};
use tokio::io::DuplexStream;
use tokio_util::sync::CancellationToken;

use crate::{FixtureOptions, FixtureStats, stdio::StdoutLines, tools};

/// Completion candidates for the `name` argument of the `greeting` prompt.
const GREETING_NAMES: [&str; 3] = ["alice", "albert", "bob"];

/// Buffer size of each direction of an in-memory duplex session.
const DUPLEX_BUFFER: usize = 256 * 1024;

/// State shared by every session of one fixture instance.
pub(crate) struct Shared {
    pub(crate) opts: FixtureOptions,
    /// Built-in and generated tools, names already prefixed.
    pub(crate) static_tools: Vec<Tool>,
    /// Tools registered at run time through `add_tool`.
    pub(crate) dynamic_tools: RwLock<Vec<Tool>>,
    /// Descriptions replaced at run time through `add_tool` (a tool changing under its
    /// clients, as in a rug pull), by tool name.
    pub(crate) redescribed: RwLock<std::collections::HashMap<String, String>>,
    pub(crate) stats: FixtureStats,
    /// Line-atomic access to the process's stdout (stdio mode only).
    pub(crate) stdout: Option<StdoutLines>,
}

/// State private to one MCP session.
#[derive(Default)]
pub(crate) struct Session {
    pub(crate) subscriptions: Mutex<HashSet<String>>,
    pub(crate) min_log_level: Mutex<Option<LoggingLevel>>,
}

/// The fixture MCP server handler.
///
/// Cloning shares everything; [`Fixture::new_session`] shares the instance
/// state (counters, dynamically added tools) but starts fresh per-session
/// state (resource subscriptions, log level).
#[derive(Clone)]
pub struct Fixture {
    pub(crate) shared: Arc<Shared>,
    pub(crate) session: Arc<Session>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("opts", &self.shared.opts)
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// A new fixture instance.
    pub fn new(opts: FixtureOptions) -> Self {
        Self::build(opts, None)
    }

    pub(crate) fn with_stdout(opts: FixtureOptions, stdout: StdoutLines) -> Self {
        Self::build(opts, Some(stdout))
    }

    fn build(opts: FixtureOptions, stdout: Option<StdoutLines>) -> Self {
        let static_tools = tools::catalog(&opts);
        Self {
            shared: Arc::new(Shared {
                opts,
                static_tools,
                dynamic_tools: RwLock::new(Vec::new()),
                redescribed: RwLock::default(),
                stats: FixtureStats::default(),
                stdout,
            }),
            session: Arc::default(),
        }
    }

    /// Another session of the same instance.
    #[must_use]
    pub fn new_session(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            session: Arc::default(),
        }
    }

    /// The options this instance was built with.
    pub fn options(&self) -> &FixtureOptions {
        &self.shared.opts
    }

    /// Live counters of this instance.
    pub fn stats(&self) -> FixtureStats {
        self.shared.stats.clone()
    }

    /// Serves a new session of this instance over an in-memory pipe and
    /// returns the client end (newline-delimited JSON-RPC both ways). The
    /// session ends when the returned stream is dropped or `ct` is cancelled.
    pub fn serve_duplex(&self, ct: CancellationToken) -> DuplexStream {
        let (client_end, server_end) = tokio::io::duplex(DUPLEX_BUFFER);
        let (read, write) = tokio::io::split(server_end);
        let transport = AsyncRwTransport::new_server(read, write);
        let handler = self.new_session();
        tokio::spawn(async move {
            match serve_server_with_ct(handler, transport, ct).await {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(error) => tracing::debug!(%error, "duplex session ended before initialize"),
            }
        });
        client_end
    }

    /// Every tool currently advertised.
    pub(crate) fn all_tools(&self) -> Vec<Tool> {
        let dynamic = self
            .shared
            .dynamic_tools
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut all = Vec::with_capacity(self.shared.static_tools.len() + dynamic.len());
        all.extend(self.shared.static_tools.iter().cloned());
        all.extend(dynamic.iter().cloned());
        drop(dynamic);
        all.into_iter().map(|t| self.redescribe(t)).collect()
    }

    /// `tool` with the description `add_tool` gave it, if any.
    fn redescribe(&self, mut tool: Tool) -> Tool {
        let described = self
            .shared
            .redescribed
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = described.get(tool.name.as_ref()) {
            tool.description = Some(d.clone().into());
        }
        tool
    }

    fn find_tool(&self, name: &str) -> Option<Tool> {
        if let Some(tool) = self.shared.static_tools.iter().find(|t| t.name == name) {
            return Some(self.redescribe(tool.clone()));
        }
        let found = self
            .shared
            .dynamic_tools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|t| t.name == name)
            .cloned();
        found.map(|t| self.redescribe(t))
    }
}

/// Serves a fresh fixture instance over an in-memory pipe and returns the
/// client end; see [`Fixture::serve_duplex`].
pub fn spawn_duplex(opts: FixtureOptions) -> DuplexStream {
    Fixture::new(opts).serve_duplex(CancellationToken::new())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Numeric severity of a log level (higher is more severe).
pub(crate) fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl Fixture {
    /// Whether a message at `level` passes the session's `logging/setLevel`.
    pub(crate) fn log_enabled(&self, level: LoggingLevel) -> bool {
        match *lock(&self.session.min_log_level) {
            Some(min) => severity(level) >= severity(min),
            None => true,
        }
    }

    pub(crate) fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.session.subscriptions).contains(uri)
    }
}

fn text_resource(uri: &str, text: String) -> ReadResourceResponse {
    ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("text/plain"),
    ])
    .into()
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                self.shared.opts.name.clone(),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Switchboard fixture server for tests and benchmarks.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.all_tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.find_tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.shared.stats.record_call();
        self.dispatch(request, context).await.map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let greeting = Prompt::new(
            "greeting",
            Some("Greets someone by name"),
            Some(vec![
                PromptArgument::new("name")
                    .with_description("Who to greet")
                    .with_required(true),
            ]),
        );
        let simple = Prompt::new("simple", Some("A prompt without arguments"), None);
        Ok(ListPromptsResult::with_all_items(vec![greeting, simple]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        match request.name.as_str() {
            "greeting" => {
                let name = request
                    .arguments
                    .as_ref()
                    .and_then(|args| args.get("name"))
                    .and_then(|value| value.as_str())
                    .ok_or_else(|| {
                        McpError::invalid_params("prompt `greeting` requires `name`", None)
                    })?;
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    format!("Hello, {name}!"),
                )])
                .with_description("A friendly greeting")
                .into())
            }
            "simple" => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "A simple prompt",
            )])
            .into()),
            other => Err(McpError::invalid_params(
                format!("unknown prompt `{other}`"),
                None,
            )),
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let values = if request.r#ref.as_prompt_name() == Some("greeting")
            && request.argument.name == "name"
        {
            GREETING_NAMES
                .iter()
                .filter(|candidate| candidate.starts_with(request.argument.value.as_str()))
                .map(|candidate| (*candidate).to_owned())
                .collect()
        } else {
            Vec::new()
        };
        let completion =
            CompletionInfo::new(values).map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(completion))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        *lock(&self.session.min_log_level) = Some(request.level);
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new("fixture://info", "info")
                .with_description("Names this fixture server")
                .with_mime_type("text/plain"),
            Resource::new("test://static-text", "static-text")
                .with_description("A constant text resource")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("fixture://item/{id}", "item")
                .with_description("One numbered item")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.as_str();
        match uri {
            "fixture://info" => Ok(text_resource(
                uri,
                format!("fixture {}", self.shared.opts.name),
            )),
            "test://static-text" => Ok(text_resource(uri, "static text".to_owned())),
            _ => match uri.strip_prefix("fixture://item/") {
                Some(id) if !id.is_empty() => Ok(text_resource(uri, format!("item {id}"))),
                _ => Err(McpError::resource_not_found(
                    format!("no resource at {uri}"),
                    None,
                )),
            },
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        lock(&self.session.subscriptions).insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        lock(&self.session.subscriptions).remove(&request.uri);
        Ok(())
    }
}
