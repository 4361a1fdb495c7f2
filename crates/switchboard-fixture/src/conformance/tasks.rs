//! Tools of the Tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`),
//! run on rmcp's [`TaskManager`] when the request declares the extension.
//!
//! * `slow_compute` — sleeps `seconds`, settles as `cancelled` on `tasks/cancel`;
//! * `failing_job` — task-required; completes with a tool error (`isError`);
//! * `protocol_error_job` — fails with a protocol error (task status `failed`);
//! * `confirm_delete` — parks in `input_required` for one elicitation;
//! * `multi_input` — parks for two elicitations at once (partial answers allowed);
//! * `test_tool_with_task` — its task greets the name gathered by MRTR first.
//!
//! Without the extension the task-supporting tools run synchronously (or, for
//! the ones that need input, as ordinary flows) and the task-required ones
//! fail with -32021.

use std::time::Duration;

use rmcp::{
    ErrorData as McpError,
    model::{
        CallToolResult, ClientCapabilities, ContentBlock, CreateTaskResult, InputRequest,
        JsonObject,
    },
    task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions},
};
use serde_json::Value;

use super::flows::{self, Ask};

/// Upper bound on `slow_compute`'s `seconds`.
const MAX_SECONDS: f64 = 600.0;
/// How long `failing_job` works before failing.
const FAILING_JOB_DELAY: Duration = Duration::from_secs(1);
/// How long the task of `test_tool_with_task` works.
const GREETING_TASK_DELAY: Duration = Duration::from_millis(100);

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// -32021 naming the tasks extension in `data.requiredCapabilities`.
pub(crate) fn tasks_required() -> McpError {
    McpError::missing_required_client_capability(
        ClientCapabilities::builder().enable_tasks().build(),
    )
}

/// `slow_compute`'s duration argument.
pub(crate) fn seconds(args: &JsonObject) -> Result<Duration, McpError> {
    let seconds = args
        .get("seconds")
        .and_then(Value::as_f64)
        .ok_or_else(|| McpError::invalid_params("argument `seconds` (number) is required", None))?;
    if !(0.0..=MAX_SECONDS).contains(&seconds) {
        return Err(McpError::invalid_params(
            format!("`seconds` must be between 0 and {MAX_SECONDS}"),
            None,
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub(crate) fn slow_compute_done(label: &str, duration: Duration) -> CallToolResult {
    text(format!(
        "slow_compute{} finished after {:.1}s",
        if label.is_empty() {
            String::new()
        } else {
            format!(" {label}")
        },
        duration.as_secs_f64()
    ))
}

fn input_request(ask: &Ask) -> Result<InputRequest, TaskExit> {
    serde_json::from_value(ask.to_request()).map_err(|e| {
        TaskExit::Error(McpError::internal_error(
            format!("bad input request: {e}"),
            None,
        ))
    })
}

/// Asks one question inside a task and parses the `ElicitResult`.
async fn elicit_in_task(context: &TaskContext, ask: &Ask) -> Result<flows::Elicited, TaskExit> {
    let answer = context.request_input(ask.key, input_request(ask)?).await?;
    flows::elicited(&answer).ok_or_else(|| {
        TaskExit::Error(McpError::invalid_params(
            format!("input response `{}` is not an ElicitResult", ask.key),
            None,
        ))
    })
}

/// Starts `name` as a task and returns its `CreateTaskResult`.
pub(crate) fn spawn(
    manager: &TaskManager,
    name: &str,
    args: &JsonObject,
) -> Result<CreateTaskResult, McpError> {
    let options = TaskOptions::new();
    let task = match name {
        "slow_compute" => {
            let duration = seconds(args)?;
            let label = args
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            manager.spawn(options, move |context| {
                Box::pin(async move {
                    tokio::select! {
                        () = tokio::time::sleep(duration) => Ok(slow_compute_done(&label, duration)),
                        () = context.cancelled() => Err(TaskExit::Cancelled),
                    }
                })
            })
        }
        "failing_job" => manager.spawn(options, |context| {
            Box::pin(async move {
                tokio::select! {
                    () = tokio::time::sleep(FAILING_JOB_DELAY) => Ok(CallToolResult::error(vec![
                        ContentBlock::text("failing_job failed on purpose"),
                    ])),
                    () = context.cancelled() => Err(TaskExit::Cancelled),
                }
            })
        }),
        "protocol_error_job" => manager.spawn(options, |_context| {
            Box::pin(async move {
                Err(TaskExit::Error(McpError::internal_error(
                    "protocol_error_job failed with a protocol error on purpose",
                    None,
                )))
            })
        }),
        "confirm_delete" => {
            let filename = args
                .get("filename")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    McpError::invalid_params("argument `filename` (string) is required", None)
                })?
                .to_owned();
            manager.spawn(options, move |context| {
                Box::pin(async move {
                    let reply =
                        elicit_in_task(&context, &flows::confirm_delete_ask(&filename)).await?;
                    Ok(text(flows::confirm_delete_outcome(&filename, &reply)))
                })
            })
        }
        "multi_input" => manager.spawn(options, |context| {
            Box::pin(async move {
                let asks = flows::multi_input_asks();
                let (first, second) = tokio::join!(
                    elicit_in_task(&context, &asks[0]),
                    elicit_in_task(&context, &asks[1])
                );
                Ok(text(flows::multi_input_outcome(&[first?, second?])))
            })
        }),
        other => {
            return Err(McpError::internal_error(
                format!("{other} is not a task tool"),
                None,
            ));
        }
    };
    Ok(CreateTaskResult::new(task))
}

/// Starts the task of `test_tool_with_task` for `user_name`.
pub(crate) fn spawn_greeting(manager: &TaskManager, user_name: String) -> CreateTaskResult {
    let task = manager.spawn(TaskOptions::new(), move |context| {
        Box::pin(async move {
            tokio::select! {
                () = tokio::time::sleep(GREETING_TASK_DELAY) => {
                    Ok(text(format!("Hello, {user_name}! (greeted by a task)")))
                }
                () = context.cancelled() => Err(TaskExit::Cancelled),
            }
        })
    });
    CreateTaskResult::new(task)
}
