//! The fixture's tool catalog (names, descriptions, JSON schemas) and the
//! implementation of every tool.

// Logging, sampling and roots are deprecated upstream (SEP-2577); the
// fixture exercises them on purpose.
#![allow(deprecated)]

use std::{
    sync::{Arc, PoisonError},
    time::Duration,
};

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResult, ContentBlock, CreateMessageRequestParams,
        ElicitRequestParams, ElicitationSchema, JsonObject, LoggingLevel,
        LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
        ResourceUpdatedNotificationParam, SamplingMessage, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{FixtureOptions, server::Fixture};

/// Interval between progress notifications of the `slow` tool.
const SLOW_TICK: Duration = Duration::from_millis(100);

/// Upper bound for the `big` tool, so a typo cannot exhaust memory.
const BIG_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Lines the `garbage` tool writes to stdout; none of them is valid JSON.
const GARBAGE_LINES: &[u8] = b"this is not json\n{broken\n";

/// The built-in tools, by unprefixed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Echo,
    Add,
    Slow,
    Progress,
    Hang,
    Stats,
    Crash,
    Garbage,
    Big,
    AddTool,
    Sample,
    Elicit,
    Roots,
    Log,
    Touch,
}

impl Builtin {
    const ALL: [Builtin; 15] = [
        Builtin::Echo,
        Builtin::Add,
        Builtin::Slow,
        Builtin::Progress,
        Builtin::Hang,
        Builtin::Stats,
        Builtin::Crash,
        Builtin::Garbage,
        Builtin::Big,
        Builtin::AddTool,
        Builtin::Sample,
        Builtin::Elicit,
        Builtin::Roots,
        Builtin::Log,
        Builtin::Touch,
    ];

    fn name(self) -> &'static str {
        match self {
            Builtin::Echo => "echo",
            Builtin::Add => "add",
            Builtin::Slow => "slow",
            Builtin::Progress => "progress",
            Builtin::Hang => "hang",
            Builtin::Stats => "stats",
            Builtin::Crash => "crash",
            Builtin::Garbage => "garbage",
            Builtin::Big => "big",
            Builtin::AddTool => "add_tool",
            Builtin::Sample => "sample",
            Builtin::Elicit => "elicit",
            Builtin::Roots => "roots",
            Builtin::Log => "log",
            Builtin::Touch => "touch",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    fn description(self) -> &'static str {
        match self {
            Builtin::Echo => "Returns `text` unchanged as one text block.",
            Builtin::Add => {
                "Adds `a` and `b`; the sum comes back as text and as structured content."
            }
            Builtin::Slow => {
                "Sleeps `ms` milliseconds, reporting progress every 100 ms when asked to."
            }
            Builtin::Progress => {
                "Emits `steps` progress notifications `interval_ms` apart, then finishes."
            }
            Builtin::Hang => "Never finishes on its own; ends only when the call is cancelled.",
            Builtin::Stats => {
                "Reports cancellation and call counters, the server's pid and the request's `_meta.traceparent`."
            }
            Builtin::Crash => "Exits the server process with `code` (default 3) without replying.",
            Builtin::Garbage => "Writes non-JSON lines to stdout (stdio mode), then returns `ok`.",
            Builtin::Big => "Returns one text block of exactly `bytes` characters.",
            Builtin::AddTool => {
                "Registers an extra tool called `name` and announces the tool list change; with \
                 `description`, gives tool `name` (new or existing) that description instead."
            }
            Builtin::Sample => "Asks the client to sample an LLM reply to `prompt`.",
            Builtin::Elicit => "Asks the client to elicit a form answer for `message`.",
            Builtin::Roots => "Asks the client for its roots and returns them as JSON.",
            Builtin::Log => {
                "Sends a log message notification at `level`, then works `then_ms` more (default 0)."
            }
            Builtin::Touch => {
                "Announces an update of resource `uri` if the session subscribed to it."
            }
        }
    }

    fn input_schema(self) -> Value {
        match self {
            Builtin::Echo => object_schema(&[("text", "string", "Text to return")], &["text"]),
            Builtin::Add => object_schema(
                &[
                    ("a", "number", "First addend"),
                    ("b", "number", "Second addend"),
                ],
                &["a", "b"],
            ),
            Builtin::Slow => {
                object_schema(&[("ms", "integer", "How long to sleep, in ms")], &["ms"])
            }
            Builtin::Progress => object_schema(
                &[
                    ("steps", "integer", "Number of progress notifications"),
                    (
                        "interval_ms",
                        "integer",
                        "Delay before each notification, in ms",
                    ),
                ],
                &["steps", "interval_ms"],
            ),
            Builtin::Hang | Builtin::Stats | Builtin::Garbage | Builtin::Roots => {
                object_schema(&[], &[])
            }
            Builtin::Crash => object_schema(&[("code", "integer", "Process exit code")], &[]),
            Builtin::Big => object_schema(
                &[("bytes", "integer", "Length of the returned text")],
                &["bytes"],
            ),
            Builtin::AddTool => object_schema(
                &[
                    ("name", "string", "Name of the new tool"),
                    (
                        "description",
                        "string",
                        "Description to give it (or an existing tool)",
                    ),
                ],
                &["name"],
            ),
            Builtin::Sample => object_schema(
                &[("prompt", "string", "User message to sample a reply for")],
                &["prompt"],
            ),
            Builtin::Elicit => object_schema(
                &[("message", "string", "Message shown to the user")],
                &["message"],
            ),
            Builtin::Log => json!({
                "type": "object",
                "properties": {
                    "level": {
                        "type": "string",
                        "enum": ["debug", "info", "notice", "warning", "error",
                                 "critical", "alert", "emergency"],
                        "description": "Log level"
                    },
                    "message": {"type": "string", "description": "Log payload"},
                    "then_ms": {"type": "integer", "description": "Keep working this long after logging"}
                },
                "required": ["level", "message"]
            }),
            Builtin::Touch => object_schema(&[("uri", "string", "Resource URI")], &["uri"]),
        }
    }

    fn output_schema(self) -> Option<Value> {
        match self {
            Builtin::Add => Some(json!({
                "type": "object",
                "properties": {"sum": {"type": "number"}},
                "required": ["sum"]
            })),
            Builtin::Stats => Some(json!({
                "type": "object",
                "properties": {
                    "cancelled": {"type": "integer"},
                    "calls": {"type": "integer"},
                    "pid": {"type": "integer"},
                    "traceparent": {"type": ["string", "null"]}
                },
                "required": ["cancelled", "calls", "pid"]
            })),
            _ => None,
        }
    }
}

/// `{"type":"object","properties":{..},"required":[..]}` from a compact list.
fn object_schema(properties: &[(&str, &str, &str)], required: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, ty, description)| {
            (
                (*name).to_owned(),
                json!({"type": ty, "description": description}),
            )
        })
        .collect();
    let mut schema = json!({"type": "object", "properties": props});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn into_object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

/// Built-in tools followed by the generated `tool_<i>` ones, all prefixed.
pub(crate) fn catalog(opts: &FixtureOptions) -> Vec<Tool> {
    let mut tools = Vec::with_capacity(Builtin::ALL.len() + opts.tools);
    for builtin in Builtin::ALL {
        let mut tool = Tool::new(
            opts.tool_name(builtin.name()),
            builtin.description(),
            into_object(builtin.input_schema()),
        );
        if let Some(output) = builtin.output_schema() {
            tool = tool.with_raw_output_schema(into_object(output));
        }
        tools.push(tool);
    }
    for i in 0..opts.tools {
        tools.push(Tool::new(
            opts.tool_name(&format!("tool_{i}")),
            format!("Generated fixture tool number {i}; echoes its arguments."),
            into_object(object_schema(
                &[("value", "string", "Any text; echoed back")],
                &[],
            )),
        ));
    }
    tools
}

/// What a `tools/call` name resolves to.
enum Target {
    Builtin(Builtin),
    /// A generated `tool_<i>` or a tool added through `add_tool`: both echo.
    Echoing,
}

fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn bad_arg(key: &str, expected: &str) -> McpError {
    McpError::invalid_params(format!("argument `{key}` must be {expected}"), None)
}

/// Typed access to `tools/call` arguments.
struct Args<'a>(Option<&'a JsonObject>);

impl Args<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.and_then(|args| args.get(key))
    }

    fn string(&self, key: &str) -> Result<String, McpError> {
        self.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad_arg(key, "a string"))
    }

    fn number(&self, key: &str) -> Result<&serde_json::Number, McpError> {
        match self.get(key) {
            Some(Value::Number(n)) => Ok(n),
            _ => Err(bad_arg(key, "a number")),
        }
    }

    fn count(&self, key: &str) -> Result<u64, McpError> {
        self.get(key)
            .and_then(|v| {
                v.as_u64().or_else(|| {
                    v.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
            })
            .ok_or_else(|| bad_arg(key, "a non-negative integer"))
    }

    fn optional_int(&self, key: &str) -> Result<Option<i64>, McpError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad_arg(key, "an integer")),
        }
    }
}

fn cancelled_error() -> McpError {
    McpError::internal_error("request cancelled", None)
}

impl Fixture {
    fn resolve(&self, name: &str) -> Option<Target> {
        let dynamic = self
            .shared
            .dynamic_tools
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if dynamic.iter().any(|t| t.name == name) {
            return Some(Target::Echoing);
        }
        drop(dynamic);
        let base = match &self.shared.opts.tool_prefix {
            Some(prefix) => name.strip_prefix(prefix.as_str())?,
            None => name,
        };
        if let Some(builtin) = Builtin::from_name(base) {
            return Some(Target::Builtin(builtin));
        }
        let index: usize = base.strip_prefix("tool_")?.parse().ok()?;
        // Reject non-canonical spellings such as `tool_01`.
        (index < self.shared.opts.tools && base == format!("tool_{index}"))
            .then_some(Target::Echoing)
    }

    /// Runs one `tools/call`.
    pub(crate) async fn dispatch(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let Some(target) = self.resolve(&request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        };
        let args = Args(request.arguments.as_ref());
        let builtin = match target {
            Target::Echoing => {
                let echoed = request
                    .arguments
                    .clone()
                    .map_or(Value::Object(JsonObject::new()), Value::Object);
                return Ok(text_result(echoed.to_string()));
            }
            Target::Builtin(builtin) => builtin,
        };
        match builtin {
            Builtin::Echo => Ok(text_result(args.string("text")?)),
            Builtin::Add => add(&args),
            Builtin::Slow => self.slow(args.count("ms")?, &context).await,
            Builtin::Progress => {
                self.progress(args.count("steps")?, args.count("interval_ms")?, &context)
                    .await
            }
            Builtin::Hang => {
                context.ct.cancelled().await;
                self.shared.stats.record_cancel();
                Err(cancelled_error())
            }
            Builtin::Stats => {
                let stats = &self.shared.stats;
                // The trace context the caller propagated in `_meta`, if any.
                let traceparent = context.meta.get("traceparent").cloned();
                Ok(CallToolResult::structured(json!({
                    "cancelled": stats.cancelled(),
                    "calls": stats.calls(),
                    "pid": std::process::id(),
                    "traceparent": traceparent,
                })))
            }
            Builtin::Crash => {
                let code = args.optional_int("code")?.unwrap_or(3);
                if self.shared.opts.allow_exit {
                    tracing::warn!(code, "crash tool called; exiting");
                    std::process::exit(i32::try_from(code).unwrap_or(3));
                }
                Ok(tool_error(
                    "crash is disabled for this fixture (allow_exit = false)",
                ))
            }
            Builtin::Garbage => {
                if let Some(stdout) = &self.shared.stdout {
                    stdout.write_lines(GARBAGE_LINES.to_vec());
                }
                Ok(text_result("ok"))
            }
            Builtin::Big => {
                let bytes = args.count("bytes")?;
                if bytes > BIG_MAX_BYTES {
                    return Err(bad_arg("bytes", "at most 512 MiB"));
                }
                let len = usize::try_from(bytes).map_err(|_| bad_arg("bytes", "addressable"))?;
                Ok(text_result("x".repeat(len)))
            }
            Builtin::AddTool => {
                let description = args.get("description").and_then(Value::as_str);
                match description {
                    Some(d) => {
                        self.redescribe_tool(args.string("name")?, d, &context)
                            .await
                    }
                    None => self.add_tool(args.string("name")?, &context).await,
                }
            }
            Builtin::Sample => sample(args.string("prompt")?, &context).await,
            Builtin::Elicit => elicit(args.string("message")?, &context).await,
            Builtin::Roots => match context.peer.list_roots().await {
                Ok(roots) => Ok(text_result(
                    serde_json::to_string(&roots).unwrap_or_else(|_| "{}".to_owned()),
                )),
                Err(error) => Ok(tool_error(format!("roots/list failed: {error}"))),
            },
            Builtin::Log => self.log(&args, &context).await,
            Builtin::Touch => {
                let uri = args.string("uri")?;
                if !self.is_subscribed(&uri) {
                    return Ok(text_result(format!("not subscribed {uri}")));
                }
                let notified = context
                    .peer
                    .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone()))
                    .await;
                match notified {
                    Ok(()) => Ok(text_result(format!("touched {uri}"))),
                    Err(error) => Ok(tool_error(format!("notification failed: {error}"))),
                }
            }
        }
    }

    async fn slow(
        &self,
        ms: u64,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let token = context.meta.get_progress_token();
        let total = Duration::from_millis(ms);
        let start = Instant::now();
        loop {
            let elapsed = start.elapsed();
            if elapsed >= total {
                break;
            }
            let nap = (total - elapsed).min(SLOW_TICK);
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                () = context.ct.cancelled() => {
                    self.shared.stats.record_cancel();
                    return Err(cancelled_error());
                }
            }
            if let Some(token) = &token {
                let done = start.elapsed().min(total).as_millis();
                notify_progress(context, token, done as f64, ms as f64, None).await;
            }
        }
        Ok(text_result(format!("slept {ms}")))
    }

    async fn progress(
        &self,
        steps: u64,
        interval_ms: u64,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let token = context.meta.get_progress_token();
        let interval = Duration::from_millis(interval_ms);
        for step in 1..=steps {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = context.ct.cancelled() => {
                    self.shared.stats.record_cancel();
                    return Err(cancelled_error());
                }
            }
            if let Some(token) = &token {
                let message = format!("step {step}");
                notify_progress(context, token, step as f64, steps as f64, Some(message)).await;
            }
        }
        Ok(text_result(format!("done {steps}")))
    }

    async fn add_tool(
        &self,
        name: String,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        if name.is_empty() {
            return Err(bad_arg("name", "a non-empty string"));
        }
        if self.shared.static_tools.iter().any(|t| t.name == name) {
            return Ok(tool_error(format!("tool `{name}` already exists")));
        }
        let tool = Tool::new(
            name.clone(),
            "Added at run time; echoes its arguments as JSON text.",
            into_object(json!({"type": "object"})),
        );
        {
            let mut dynamic = self
                .shared
                .dynamic_tools
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            match dynamic.iter_mut().find(|t| t.name == name) {
                Some(existing) => *existing = tool,
                None => dynamic.push(tool),
            }
        }
        if let Err(error) = context.peer.notify_tool_list_changed().await {
            tracing::debug!(%error, "could not send tools/list_changed");
        }
        Ok(text_result(format!("added {name}")))
    }

    /// Gives tool `name` (adding it when it does not exist) the description `description`,
    /// and announces the tool list change: a tool changing under its clients.
    async fn redescribe_tool(
        &self,
        name: String,
        description: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        if name.is_empty() {
            return Err(bad_arg("name", "a non-empty string"));
        }
        let exists = self.shared.static_tools.iter().any(|t| t.name == name)
            || self
                .shared
                .dynamic_tools
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|t| t.name == name);
        if !exists {
            let tool = Tool::new(
                name.clone(),
                description.to_owned(),
                into_object(json!({"type": "object"})),
            );
            self.shared
                .dynamic_tools
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(tool);
        }
        self.shared
            .redescribed
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), description.to_owned());
        if let Err(error) = context.peer.notify_tool_list_changed().await {
            tracing::debug!(%error, "could not send tools/list_changed");
        }
        Ok(text_result(format!("described {name}")))
    }

    async fn log(
        &self,
        args: &Args<'_>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let level_name = args.string("level")?;
        let level: LoggingLevel = serde_json::from_value(Value::String(level_name))
            .map_err(|_| bad_arg("level", "an MCP log level"))?;
        let message = args.string("message")?;
        if self.log_enabled(level) {
            let sent = context
                .peer
                .notify_logging_message(LoggingMessageNotificationParam::new(
                    level,
                    Value::String(message),
                ))
                .await;
            if let Err(error) = sent {
                return Ok(tool_error(format!("notification failed: {error}")));
            }
        }
        // A server may send the log message on another stream than the call's reply, so a
        // tool that ends at once can see its reply overtake it; real tools log while working.
        if let Some(ms) = args.optional_int("then_ms")?.filter(|ms| *ms > 0) {
            tokio::time::sleep(std::time::Duration::from_millis(ms.min(60_000) as u64)).await;
        }
        Ok(text_result("logged"))
    }
}

fn add(args: &Args<'_>) -> Result<CallToolResult, McpError> {
    let a = args.number("a")?;
    let b = args.number("b")?;
    let integer_sum = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.checked_add(y).map(Value::from),
        _ => None,
    };
    let sum = match integer_sum {
        Some(sum) => sum,
        None => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Err(bad_arg("a/b", "finite numbers"));
            };
            Value::from(x + y)
        }
    };
    let mut result = text_result(sum.to_string());
    result.structured_content = Some(json!({ "sum": sum }));
    Ok(result)
}

async fn notify_progress(
    context: &RequestContext<RoleServer>,
    token: &ProgressToken,
    progress: f64,
    total: f64,
    message: Option<String>,
) {
    let mut param = ProgressNotificationParam::new(token.clone(), progress).with_total(total);
    if let Some(message) = message {
        param = param.with_message(message);
    }
    if let Err(error) = context.peer.notify_progress(param).await {
        tracing::debug!(%error, "could not send progress");
    }
}

async fn sample(
    prompt: String,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    match context.peer.create_message(params).await {
        Ok(reply) => {
            let text = reply
                .message
                .content
                .iter()
                .find_map(|block| block.as_text().map(|t| t.text.clone()))
                .unwrap_or_default();
            Ok(text_result(format!("sampled: {text}")))
        }
        Err(error) => Ok(tool_error(format!("sampling failed: {error}"))),
    }
}

async fn elicit(
    message: String,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let schema = ElicitationSchema::builder()
        .required_string("answer")
        .build()
        .map_err(|e| McpError::internal_error(e, None))?;
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    };
    match context.peer.create_elicitation(params).await {
        Ok(reply) => {
            let action = serde_json::to_value(&reply.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let content = reply
                .content
                .map_or_else(|| "null".to_owned(), |c| c.to_string());
            Ok(text_result(format!("elicited: {action} {content}")))
        }
        Err(error) => Ok(tool_error(format!("elicitation failed: {error}"))),
    }
}
