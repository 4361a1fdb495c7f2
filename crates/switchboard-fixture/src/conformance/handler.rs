//! [`ConformanceServer`]: the rmcp `ServerHandler` of the conformance mode.

// Logging, sampling and roots are deprecated upstream (SEP-2577); the
// conformance scenarios still exercise them.
#![allow(deprecated)]

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
        ClientCapabilities, CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
        CreateMessageRequestParams, ElicitRequestParams, GetPromptRequestParams, GetPromptResponse,
        GetPromptResult, GetTaskParams, GetTaskResult, Implementation, InputRequest, InputRequests,
        InputRequiredResult, InputResponses, ListPromptsResult, ListResourceTemplatesResult,
        ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
        PaginatedRequestParams, ProgressNotificationParam, PromptMessage, ProtocolVersion,
        ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
        Role, ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionFilter, Tool, UnsubscribeRequestParams, UpdateTaskParams,
    },
    service::{RequestContext, SubscriptionContext, SubscriptionSendError},
    task_manager::TaskManager,
};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::{
    data,
    flows::{self, Ask, Flow, Kind, Step},
    state::{StateError, StateStore},
    tasks,
};

/// Delay between the messages of `test_tool_with_logging` and the progress
/// steps of `test_tool_with_progress`.
const STEP_DELAY: Duration = Duration::from_millis(50);
/// How long `test_reconnection` takes.
const RECONNECTION_DELAY: Duration = Duration::from_millis(200);
/// Upper bound on server-driven rounds of a flow in a legacy session.
const MAX_LEGACY_ROUNDS: usize = 8;

/// A change announced to `subscriptions/listen` streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListChange {
    Tools,
    Prompts,
}

/// State shared by all sessions (and stateless requests) of one server.
struct Shared {
    states: StateStore,
    tasks: TaskManager,
    changes: broadcast::Sender<ListChange>,
    dynamic_tool: AtomicBool,
    dynamic_prompt: AtomicBool,
}

/// State of one legacy session.
#[derive(Default)]
struct Session {
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<HashSet<String>>,
}

/// The conformance-mode MCP server handler. Clones share everything;
/// [`ConformanceServer::new_session`] shares the server-wide state but starts
/// a fresh session (log level, resource subscriptions).
#[derive(Clone)]
pub struct ConformanceServer {
    shared: Arc<Shared>,
    session: Arc<Session>,
}

impl std::fmt::Debug for ConformanceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConformanceServer").finish_non_exhaustive()
    }
}

impl Default for ConformanceServer {
    fn default() -> Self {
        Self::new()
    }
}

/// How a flow ended.
enum Outcome<T> {
    Done(T),
    /// 2026-07-28: the client must answer and retry.
    Input(InputRequiredResult),
    /// Legacy session: the client could not or would not answer.
    Failed(String),
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn severity(level: LoggingLevel) -> u8 {
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

/// Whether the request is served under the stateless 2026-07-28 rules.
fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn input_required(asks: &[Ask], state: Option<String>) -> Result<InputRequiredResult, McpError> {
    let mut requests = InputRequests::new();
    for ask in asks {
        let request: InputRequest = serde_json::from_value(ask.to_request())
            .map_err(|e| McpError::internal_error(format!("bad input request: {e}"), None))?;
        requests.insert(ask.key.to_owned(), request);
    }
    Ok(InputRequiredResult::new(Some(requests), state))
}

impl ConformanceServer {
    /// A new server instance.
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(64);
        Self {
            shared: Arc::new(Shared {
                states: StateStore::default(),
                tasks: TaskManager::new(),
                changes,
                dynamic_tool: AtomicBool::new(false),
                dynamic_prompt: AtomicBool::new(false),
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

    /// Sends a log message if the request (2026-07-28: `_meta` logLevel) or
    /// the session (legacy: `logging/setLevel`, default everything) allows it.
    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        let threshold = if is_stateless(context) {
            match context.meta.log_level() {
                Some(min) => min,
                None => return,
            }
        } else {
            lock(&self.session.log_level).unwrap_or(LoggingLevel::Debug)
        };
        if severity(level) < severity(threshold) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, Value::String(message.to_owned()))
            .with_logger("conformance-fixture");
        if let Err(error) = context.peer.notify_logging_message(param).await {
            tracing::debug!(%error, "could not send log message");
        }
    }

    /// Runs one round (2026-07-28) or all rounds (legacy) of a flow owned by
    /// the tool or prompt `owner`.
    async fn drive<T>(
        &self,
        owner: &str,
        context: &RequestContext<RoleServer>,
        input_responses: Option<InputResponses>,
        request_state: Option<String>,
        step: impl Fn(
            Option<&Value>,
            &Map<String, Value>,
            &ClientCapabilities,
        ) -> Result<Step<T>, McpError>,
    ) -> Result<Outcome<T>, McpError> {
        let caps = context.client_capabilities().unwrap_or_default();
        if is_stateless(context) {
            let state = match request_state {
                Some(token) => Some(self.shared.states.resolve(owner, &token).map_err(|e| {
                    let why = match e {
                        StateError::Unknown => "was not issued by this server or has expired",
                        StateError::WrongOwner => "was issued for another request",
                    };
                    McpError::invalid_params(
                        format!("requestState failed verification: it {why}"),
                        None,
                    )
                })?),
                None => None,
            };
            let answers: Map<String, Value> =
                input_responses.unwrap_or_default().into_iter().collect();
            return match step(state.as_ref(), &answers, &caps)? {
                Step::Done(result) => Ok(Outcome::Done(result)),
                Step::Ask { asks, state } => {
                    let token = state.map(|s| self.shared.states.issue(owner, s));
                    Ok(Outcome::Input(input_required(&asks, token)?))
                }
            };
        }
        // Legacy session: ask the client ourselves, round after round.
        let mut state: Option<Value> = None;
        let mut answers = Map::new();
        for _ in 0..MAX_LEGACY_ROUNDS {
            let next = match step(state.as_ref(), &answers, &caps) {
                Ok(next) => next,
                Err(error) if error.code.0 == -32021 => {
                    return Ok(Outcome::Failed(format!(
                        "the client did not declare a capability this needs: {}",
                        error.data.map_or_else(String::new, |d| d.to_string())
                    )));
                }
                Err(error) => return Err(error),
            };
            match next {
                Step::Done(result) => return Ok(Outcome::Done(result)),
                Step::Ask {
                    asks,
                    state: next_state,
                } => {
                    // A round's questions are independent: ask them all at once, as the
                    // stateless protocol does in one `input_required` result.
                    answers = Map::new();
                    let replies =
                        futures_util::future::join_all(asks.iter().map(|a| fulfil(a, context)))
                            .await;
                    for (ask, reply) in asks.iter().zip(replies) {
                        match reply {
                            Ok(answer) => {
                                answers.insert(ask.key.to_owned(), answer);
                            }
                            Err(error) => {
                                return Ok(Outcome::Failed(format!(
                                    "{} failed: {error}",
                                    ask.kind.method()
                                )));
                            }
                        }
                    }
                    state = next_state;
                }
            }
        }
        Ok(Outcome::Failed("too many rounds".to_owned()))
    }

    fn announce(&self, change: ListChange) {
        // No receivers just means no open listen stream.
        let _ = self.shared.changes.send(change);
    }

    async fn trigger_change(
        &self,
        change: ListChange,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let (flag, what) = match change {
            ListChange::Tools => (&self.shared.dynamic_tool, data::DYNAMIC_TOOL),
            ListChange::Prompts => (&self.shared.dynamic_prompt, data::DYNAMIC_PROMPT),
        };
        let present = !flag.fetch_xor(true, Ordering::SeqCst);
        self.announce(change);
        if !is_stateless(context) {
            let sent = match change {
                ListChange::Tools => context.peer.notify_tool_list_changed().await,
                ListChange::Prompts => context.peer.notify_prompt_list_changed().await,
            };
            if let Err(error) = sent {
                tracing::debug!(%error, "could not send list_changed");
            }
        }
        text(format!(
            "{what} is now {}",
            if present { "present" } else { "absent" }
        ))
    }

    async fn simple_tool(
        &self,
        name: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        Ok(match name {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(data::PNG_BASE64, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(data::WAV_BASE64, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                )
                .with_mime_type("text/plain"),
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(data::PNG_BASE64, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        r#"{"test":"data","value":123}"#,
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" => {
                for (i, message) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(STEP_DELAY).await;
                    }
                    self.log(context, LoggingLevel::Info, message).await;
                }
                text("Logging test completed")
            }
            "test_error_handling" => {
                tool_error("This tool intentionally returns an error for testing")
            }
            "test_tool_with_progress" => {
                let token = context.meta.get_progress_token();
                for (i, (progress, message)) in
                    [(0.0, "Starting"), (50.0, "Halfway"), (100.0, "Done")]
                        .into_iter()
                        .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(STEP_DELAY).await;
                    }
                    if let Some(token) = &token {
                        let param = ProgressNotificationParam::new(token.clone(), progress)
                            .with_total(100.0)
                            .with_message(message);
                        if let Err(error) = context.peer.notify_progress(param).await {
                            tracing::debug!(%error, "could not send progress");
                        }
                    }
                }
                text("Progress test completed")
            }
            "json_schema_2020_12_tool" => text("json_schema_2020_12_tool called"),
            "test_reconnection" => {
                tokio::time::sleep(RECONNECTION_DELAY).await;
                text("Reconnection test completed")
            }
            "test_missing_capability" => {
                let caps = context.client_capabilities().unwrap_or_default();
                // The same refusal in both eras: the 2026-07-28 code is an ordinary
                // server-defined error code for a session client, and a hub in front of
                // this server relays it to the stateless client whose declarations the
                // session carries.
                if !Kind::Sampling.declared_in(&caps) {
                    return Err(Kind::Sampling.missing_error());
                }
                text("The client declared sampling")
            }
            "test_logging_tool" => {
                self.log(context, LoggingLevel::Info, "test_logging_tool ran")
                    .await;
                text("Logged (where the request allowed it)")
            }
            "test_trigger_tool_change" => self.trigger_change(ListChange::Tools, context).await,
            "test_trigger_prompt_change" => self.trigger_change(ListChange::Prompts, context).await,
            data::DYNAMIC_TOOL if self.shared.dynamic_tool.load(Ordering::SeqCst) => {
                text("The dynamic tool is here")
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("Unknown tool: {other}"),
                    Some(json!({ "name": other })),
                ));
            }
        })
    }
}

/// Sends one input request to a legacy client and returns its answer as JSON.
async fn fulfil(ask: &Ask, context: &RequestContext<RoleServer>) -> Result<Value, String> {
    let to_value = |v: Result<Value, serde_json::Error>| v.map_err(|e| e.to_string());
    match ask.kind {
        Kind::Elicitation => {
            let params: ElicitRequestParams =
                serde_json::from_value(ask.params.clone()).map_err(|e| e.to_string())?;
            let reply = context
                .peer
                .create_elicitation(params)
                .await
                .map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(reply))
        }
        Kind::Sampling => {
            let params: CreateMessageRequestParams =
                serde_json::from_value(ask.params.clone()).map_err(|e| e.to_string())?;
            let reply = context
                .peer
                .create_message(params)
                .await
                .map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(reply))
        }
        Kind::Roots => {
            let reply = context.peer.list_roots().await.map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(reply))
        }
    }
}

fn text_resource(uri: &str, mime: &str, text: impl Into<String>) -> ReadResourceResponse {
    ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type(mime)]).into()
}

fn required_arg<'a>(
    args: Option<&'a rmcp::model::JsonObject>,
    name: &str,
) -> Result<&'a str, McpError> {
    args.and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            McpError::invalid_params(format!("missing required argument `{name}`"), None)
        })
}

impl ServerHandler for ConformanceServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_completions()
            .enable_logging()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "switchboard-conformance-fixture",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Switchboard's MCP conformance fixture (tests only).")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = data::tools();
        if self.shared.dynamic_tool.load(Ordering::SeqCst) {
            tools.push(data::dynamic_tool());
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // Only the x-mcp-header tool: rmcp then checks its Mcp-Param-* headers
        // (and its arguments); every other tool validates its own arguments.
        (name == data::PARAM_HEADER_TOOL).then(|| {
            Tool::new(
                data::PARAM_HEADER_TOOL,
                "Echoes `region` (Mcp-Param-Region)",
                data::param_header_schema(),
            )
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        let args = request.arguments.clone().unwrap_or_default();
        let tasks_declared = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        let flow = match name.as_str() {
            "greet" => {
                let who = required_arg(Some(&args), "name")?;
                return Ok(text(format!("Hello, {who}!")).into());
            }
            data::PARAM_HEADER_TOOL => {
                let region = required_arg(Some(&args), "region")?;
                return Ok(text(format!("region={region}")).into());
            }
            "slow_compute" | "failing_job" | "protocol_error_job" | "confirm_delete"
            | "multi_input"
                if tasks_declared =>
            {
                return tasks::spawn(&self.shared.tasks, &name, &args).map(Into::into);
            }
            "failing_job" | "test_tool_with_task" if !tasks_declared => {
                return Err(tasks::tasks_required());
            }
            "slow_compute" => {
                let duration = tasks::seconds(&args)?;
                let label = args.get("label").and_then(Value::as_str).unwrap_or("");
                return tokio::select! {
                    () = tokio::time::sleep(duration) => Ok(tasks::slow_compute_done(label, duration).into()),
                    () = context.ct.cancelled() => Err(McpError::internal_error("cancelled", None)),
                };
            }
            "protocol_error_job" => {
                return Err(McpError::internal_error(
                    "protocol_error_job failed with a protocol error on purpose",
                    None,
                ));
            }
            "test_tool_with_task" => {
                let outcome = self
                    .drive(
                        &name,
                        &context,
                        request.input_responses,
                        request.request_state,
                        |_, answers, caps| flows::task_name_step(answers, caps),
                    )
                    .await?;
                return Ok(match outcome {
                    Outcome::Done(user) => tasks::spawn_greeting(&self.shared.tasks, user).into(),
                    Outcome::Input(input) => input.into(),
                    Outcome::Failed(why) => tool_error(format!("{name}: {why}")).into(),
                });
            }
            "confirm_delete" => Flow::ConfirmDelete {
                filename: required_arg(Some(&args), "filename")?.to_owned(),
            },
            "multi_input" => Flow::MultiInput,
            _ => match Flow::for_tool(&name, &args) {
                Some(flow) => flow?,
                None => return self.simple_tool(&name, &context).await.map(Into::into),
            },
        };
        let outcome = self
            .drive(
                &name,
                &context,
                request.input_responses,
                request.request_state,
                |state, answers, caps| flow.step(state, answers, caps),
            )
            .await?;
        Ok(match outcome {
            Outcome::Done(result) => result.into(),
            Outcome::Input(input) => input.into(),
            Outcome::Failed(why) => tool_error(format!("{name}: {why}")).into(),
        })
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        Ok(GetTaskResult::new(
            self.shared.tasks.get_task(&request.task_id)?,
        ))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared
            .tasks
            .update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.tasks.cancel_task(&request.task_id)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let mut prompts = data::prompts();
        if self.shared.dynamic_prompt.load(Ordering::SeqCst) {
            prompts.push(data::dynamic_prompt());
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = request.arguments.as_ref();
        let result = match request.name.as_str() {
            "test_simple_prompt" => GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "This is a simple prompt for testing.",
            )])
            .with_description("A simple prompt"),
            "test_prompt_with_arguments" => {
                let arg1 = required_arg(args, "arg1")?;
                let arg2 = required_arg(args, "arg2")?;
                GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
                )])
                .with_description("A prompt with arguments")
            }
            "test_prompt_with_embedded_resource" => {
                let uri = required_arg(args, "resourceUri")?;
                GetPromptResult::new(vec![
                    PromptMessage::new(
                        Role::User,
                        ContentBlock::resource(
                            ResourceContents::text("Embedded resource content for testing.", uri)
                                .with_mime_type("text/plain"),
                        ),
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ])
                .with_description("A prompt with an embedded resource")
            }
            "test_prompt_with_image" => GetPromptResult::new(vec![
                PromptMessage::new(
                    Role::User,
                    ContentBlock::image(data::PNG_BASE64, "image/png"),
                ),
                PromptMessage::new_text(Role::User, "Please analyze the image above."),
            ])
            .with_description("A prompt with an image"),
            "test_input_required_result_prompt" => {
                let outcome = self
                    .drive(
                        "test_input_required_result_prompt",
                        &context,
                        request.input_responses,
                        request.request_state,
                        |_, answers, caps| flows::prompt_step(answers, caps),
                    )
                    .await?;
                return match outcome {
                    Outcome::Done(result) => Ok(result.into()),
                    Outcome::Input(input) => Ok(input.into()),
                    Outcome::Failed(why) => Err(McpError::internal_error(why, None)),
                };
            }
            data::DYNAMIC_PROMPT if self.shared.dynamic_prompt.load(Ordering::SeqCst) => {
                GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    "The dynamic prompt is here.",
                )])
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("Unknown prompt: {other}"),
                    Some(json!({ "name": other })),
                ));
            }
        };
        Ok(result.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let prefix = request.argument.value.as_str();
        let candidates: &[&str] =
            if request.r#ref.as_prompt_name() == Some("test_prompt_with_arguments") {
                &data::ARG_CANDIDATES
            } else if request.argument.name == "id" {
                &data::ID_CANDIDATES
            } else {
                &[]
            };
        let values: Vec<String> = candidates
            .iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| (*c).to_owned())
            .collect();
        let completion =
            CompletionInfo::new(values).map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(completion))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        *lock(&self.session.log_level) = Some(request.level);
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(data::resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            data::resource_templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.as_str();
        match uri {
            data::STATIC_TEXT_URI => Ok(text_resource(uri, "text/plain", data::STATIC_TEXT)),
            data::STATIC_BINARY_URI => Ok(ReadResourceResult::new(vec![
                ResourceContents::blob(data::PNG_BASE64, uri).with_mime_type("image/png"),
            ])
            .into()),
            data::WATCHED_URI => Ok(text_resource(
                uri,
                "text/plain",
                "Watched resource content.",
            )),
            _ => {
                let id = uri
                    .strip_prefix(data::TEMPLATE_PREFIX)
                    .and_then(|rest| rest.strip_suffix(data::TEMPLATE_SUFFIX))
                    .filter(|id| !id.is_empty() && !id.contains('/'));
                match id {
                    Some(id) => Ok(text_resource(
                        uri,
                        "application/json",
                        json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") })
                            .to_string(),
                    )),
                    None => Err(McpError::resource_not_found(
                        "Resource not found",
                        Some(json!({ "uri": uri })),
                    )),
                }
            }
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

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Everything requested (the SDK also intersects with the advertised
        // capabilities).
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.shared.changes.subscribe();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => {
                    let sent = match change {
                        Ok(ListChange::Tools) => context.sink().notify_tool_list_changed().await,
                        Ok(ListChange::Prompts) => context.sink().notify_prompt_list_changed().await,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    };
                    match sent {
                        Ok(()) => {}
                        Err(SubscriptionSendError::SubscriptionClosed) => return Ok(()),
                        // A kind outside the accepted filter is refused by the
                        // sink: that is the point of the filter.
                        Err(error) => tracing::debug!(%error, "listen notification not sent"),
                    }
                }
            }
        }
    }
}
