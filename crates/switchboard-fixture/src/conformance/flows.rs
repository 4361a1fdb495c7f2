//! Tools and prompts that need input from the client, written once as state
//! machines ([`Flow::step`]): given the answers so far (and, for multi-round
//! flows, the state of the previous round) a flow either asks for more input
//! ([`Step::Ask`]) or finishes ([`Step::Done`]).
//!
//! Who answers depends on the era of the request (see `handler.rs`):
//! 2026-07-28 requests get the asks as an `InputRequiredResult` and retry with
//! `inputResponses` (+ `requestState`); legacy sessions are driven by the
//! server, which sends each ask as a real `sampling/createMessage`,
//! `elicitation/create` or `roots/list` request to the client.
//!
//! Answers are untrusted input: one that does not have the expected shape is
//! treated as missing and asked for again (SEP-2322 recommends re-requesting
//! over failing), unknown extra answers are ignored.

use rmcp::{
    ErrorData as McpError,
    model::{
        CallToolResult, ClientCapabilities, ContentBlock, GetPromptResult, JsonObject,
        PromptMessage, Role,
    },
};
use serde_json::{Map, Value, json};

/// The kinds of input a client may be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Elicitation,
    Sampling,
    Roots,
}

impl Kind {
    pub(crate) fn method(self) -> &'static str {
        match self {
            Kind::Elicitation => "elicitation/create",
            Kind::Sampling => "sampling/createMessage",
            Kind::Roots => "roots/list",
        }
    }

    /// Whether `caps` declares this kind.
    pub(crate) fn declared_in(self, caps: &ClientCapabilities) -> bool {
        match self {
            Kind::Elicitation => caps.elicitation.is_some(),
            Kind::Sampling => caps.sampling.is_some(),
            Kind::Roots => caps.roots.is_some(),
        }
    }

    /// The error for a request that needs this kind from a client that did
    /// not declare it (-32021, `data.requiredCapabilities = {"<kind>": {}}`).
    pub(crate) fn missing_error(self) -> McpError {
        let required: ClientCapabilities = serde_json::from_value(match self {
            Kind::Elicitation => json!({ "elicitation": {} }),
            Kind::Sampling => json!({ "sampling": {} }),
            Kind::Roots => json!({ "roots": {} }),
        })
        .unwrap_or_default();
        McpError::missing_required_client_capability(required)
    }
}

/// One input request: the key its answer must come back under, its kind and
/// its `params`.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    pub(crate) key: &'static str,
    pub(crate) kind: Kind,
    pub(crate) params: Value,
}

impl Ask {
    fn elicit(key: &'static str, message: impl Into<String>, schema: Value) -> Self {
        Self {
            key,
            kind: Kind::Elicitation,
            params: json!({
                "mode": "form",
                "message": message.into(),
                "requestedSchema": schema,
            }),
        }
    }

    fn sample(key: &'static str, prompt: impl Into<String>, max_tokens: u32) -> Self {
        Self {
            key,
            kind: Kind::Sampling,
            params: json!({
                "messages": [
                    { "role": "user", "content": { "type": "text", "text": prompt.into() } }
                ],
                "maxTokens": max_tokens,
            }),
        }
    }

    fn roots(key: &'static str) -> Self {
        Self {
            key,
            kind: Kind::Roots,
            params: json!({}),
        }
    }

    /// The `{method, params}` object of an `inputRequests` entry.
    pub(crate) fn to_request(&self) -> Value {
        json!({ "method": self.kind.method(), "params": self.params })
    }
}

/// What a flow wants next.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// More input is needed; `state` (if any) must come back with the answers.
    Ask {
        asks: Vec<Ask>,
        state: Option<Value>,
    },
    /// The flow is complete.
    Done(T),
}

/// A tool or prompt that needs input from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// `test_sampling`.
    Sampling { prompt: String },
    /// `test_elicitation`.
    Elicitation { message: String },
    /// `test_elicitation_sep1034_defaults`.
    Sep1034Defaults,
    /// `test_elicitation_sep1330_enums`.
    Sep1330Enums,
    /// `test_streaming_elicitation`.
    StreamingElicitation,
    /// `test_input_required_result_elicitation`.
    IrrElicitation,
    /// `test_input_required_result_sampling`.
    IrrSampling,
    /// `test_input_required_result_list_roots`.
    IrrListRoots,
    /// `test_input_required_result_request_state`.
    IrrRequestState,
    /// `test_input_required_result_multiple_inputs`.
    IrrMultipleInputs,
    /// `test_input_required_result_multi_round`.
    IrrMultiRound,
    /// `test_input_required_result_tampered_state`.
    IrrTamperedState,
    /// `test_input_required_result_capabilities`.
    IrrCapabilities,
    /// `confirm_delete` when the client did not declare the tasks extension.
    ConfirmDelete { filename: String },
    /// `multi_input` when the client did not declare the tasks extension.
    MultiInput,
}

impl Flow {
    /// The flow behind tool `name`, if any.
    pub(crate) fn for_tool(name: &str, args: &JsonObject) -> Option<Result<Self, McpError>> {
        let string_arg = |key: &str| -> Result<String, McpError> {
            args.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    McpError::invalid_params(format!("argument `{key}` (string) is required"), None)
                })
        };
        let flow = match name {
            "test_sampling" => string_arg("prompt").map(|prompt| Flow::Sampling { prompt }),
            "test_elicitation" => {
                string_arg("message").map(|message| Flow::Elicitation { message })
            }
            "test_elicitation_sep1034_defaults" => Ok(Flow::Sep1034Defaults),
            "test_elicitation_sep1330_enums" => Ok(Flow::Sep1330Enums),
            "test_streaming_elicitation" => Ok(Flow::StreamingElicitation),
            "test_input_required_result_elicitation" => Ok(Flow::IrrElicitation),
            "test_input_required_result_sampling" => Ok(Flow::IrrSampling),
            "test_input_required_result_list_roots" => Ok(Flow::IrrListRoots),
            "test_input_required_result_request_state" => Ok(Flow::IrrRequestState),
            "test_input_required_result_multiple_inputs" => Ok(Flow::IrrMultipleInputs),
            "test_input_required_result_multi_round" => Ok(Flow::IrrMultiRound),
            "test_input_required_result_tampered_state" => Ok(Flow::IrrTamperedState),
            "test_input_required_result_capabilities" => Ok(Flow::IrrCapabilities),
            _ => return None,
        };
        Some(flow)
    }

    /// One step. `state` is the (already verified) state of the previous
    /// round, `answers` the `inputResponses` of this one.
    pub(crate) fn step(
        &self,
        state: Option<&Value>,
        answers: &Map<String, Value>,
        caps: &ClientCapabilities,
    ) -> Result<Step<CallToolResult>, McpError> {
        match self {
            Flow::Sampling { prompt } => {
                let ask = Ask::sample("sampling", prompt.clone(), 100);
                single(ask, answers, caps, |answer| {
                    sampled_text(answer).map(|text| text_result(format!("LLM response: {text}")))
                })
            }
            Flow::Elicitation { message } => {
                let ask = Ask::elicit("elicitation", message.clone(), user_schema());
                single(ask, answers, caps, |answer| {
                    elicited(answer).map(|reply| {
                        text_result(format!(
                            "User response: action={}, content={}",
                            reply.action,
                            reply.content_json()
                        ))
                    })
                })
            }
            Flow::Sep1034Defaults => {
                let ask = Ask::elicit(
                    "defaults",
                    "Please review these values (all have defaults)",
                    sep1034_schema(),
                );
                single(ask, answers, caps, |answer| {
                    elicited(answer).map(|reply| {
                        text_result(format!(
                            "Elicitation completed: action={}, content={}",
                            reply.action,
                            reply.content_json()
                        ))
                    })
                })
            }
            Flow::Sep1330Enums => {
                let ask = Ask::elicit("enums", "Please choose some options", sep1330_schema());
                single(ask, answers, caps, |answer| {
                    elicited(answer).map(|reply| {
                        text_result(format!(
                            "Elicitation completed: action={}, content={}",
                            reply.action,
                            reply.content_json()
                        ))
                    })
                })
            }
            Flow::StreamingElicitation => {
                let ask = Ask::elicit("confirmation", "Continue?", confirm_schema("ok"));
                single(ask, answers, caps, |answer| {
                    elicited(answer).map(|reply| {
                        text_result(format!(
                            "Streaming elicitation done: action={}",
                            reply.action
                        ))
                    })
                })
            }
            Flow::IrrElicitation => {
                let ask = Ask::elicit("user_name", "What is your name?", string_schema("name"));
                single(ask, answers, caps, |answer| {
                    let reply = elicited(answer)?;
                    Some(match reply.accepted_string("name") {
                        Some(name) => text_result(format!("Hello, {name}!")),
                        None => text_result(format!("No name given (action={})", reply.action)),
                    })
                })
            }
            Flow::IrrSampling => {
                let ask = Ask::sample("capital_question", "What is the capital of France?", 100);
                single(ask, answers, caps, |answer| {
                    sampled_text(answer)
                        .map(|text| text_result(format!("Sampling response: {text}")))
                })
            }
            Flow::IrrListRoots => single(Ask::roots("client_roots"), answers, caps, |answer| {
                root_uris(answer)
                    .map(|uris| text_result(format!("Client roots: {}", uris.join(", "))))
            }),
            Flow::IrrRequestState | Flow::IrrTamperedState => {
                let ask = Ask::elicit("confirm", "Please confirm", confirm_schema("ok"));
                require(&[ask.kind], caps)?;
                // Round 2 needs the state of round 1; without it, start over.
                if state.is_some()
                    && let Some(reply) = answers.get("confirm").and_then(elicited)
                {
                    let ok = reply.content.get("ok").and_then(Value::as_bool);
                    return Ok(Step::Done(text_result(format!(
                        "state-ok: requestState verified; action={}, ok={}",
                        reply.action,
                        ok.map_or_else(|| "null".to_owned(), |b| b.to_string())
                    ))));
                }
                Ok(Step::Ask {
                    asks: vec![ask],
                    state: Some(json!({ "round": 1 })),
                })
            }
            Flow::IrrMultipleInputs => {
                let asks = vec![
                    Ask::elicit("user_name", "What is your name?", string_schema("name")),
                    Ask::sample("greeting", "Generate a greeting", 50),
                    Ask::roots("client_roots"),
                ];
                require(&asks.iter().map(|a| a.kind).collect::<Vec<_>>(), caps)?;
                let name = answers
                    .get("user_name")
                    .and_then(elicited)
                    .map(|r| r.accepted_string("name").unwrap_or_default());
                let greeting = answers.get("greeting").and_then(sampled_text);
                let roots = answers.get("client_roots").and_then(root_uris);
                match (state, name, greeting, roots) {
                    (Some(_), Some(name), Some(greeting), Some(roots)) => {
                        Ok(Step::Done(text_result(format!(
                            "Name: {name}; greeting: {greeting}; roots: {}",
                            roots.join(", ")
                        ))))
                    }
                    _ => Ok(Step::Ask {
                        asks,
                        state: Some(json!({ "round": 1 })),
                    }),
                }
            }
            Flow::IrrMultiRound => {
                require(&[Kind::Elicitation], caps)?;
                let step1 = || Step::Ask {
                    asks: vec![Ask::elicit(
                        "step1",
                        "Step 1: What is your name?",
                        string_schema("name"),
                    )],
                    state: Some(json!({ "round": 1 })),
                };
                let Some(state) = state else {
                    return Ok(step1());
                };
                match state.get("round").and_then(Value::as_u64) {
                    Some(1) => match answers.get("step1").and_then(elicited) {
                        Some(reply) => {
                            let name = reply.accepted_string("name").unwrap_or_default();
                            Ok(Step::Ask {
                                asks: vec![Ask::elicit(
                                    "step2",
                                    "Step 2: What is your favorite color?",
                                    string_schema("color"),
                                )],
                                state: Some(json!({ "round": 2, "name": name })),
                            })
                        }
                        None => Ok(step1()),
                    },
                    Some(2) => {
                        let name = state.get("name").and_then(Value::as_str).unwrap_or("");
                        match answers.get("step2").and_then(elicited) {
                            Some(reply) => {
                                let color = reply.accepted_string("color").unwrap_or_default();
                                Ok(Step::Done(text_result(format!(
                                    "{name}'s favorite color is {color}"
                                ))))
                            }
                            None => Ok(Step::Ask {
                                asks: vec![Ask::elicit(
                                    "step2",
                                    "Step 2: What is your favorite color?",
                                    string_schema("color"),
                                )],
                                state: Some(state.clone()),
                            }),
                        }
                    }
                    _ => Err(McpError::invalid_params(
                        "requestState has an unknown round",
                        None,
                    )),
                }
            }
            Flow::ConfirmDelete { filename } => {
                let ask = confirm_delete_ask(filename);
                single(ask, answers, caps, |answer| {
                    elicited(answer)
                        .map(|reply| text_result(confirm_delete_outcome(filename, &reply)))
                })
            }
            Flow::MultiInput => {
                let asks = multi_input_asks();
                require(&[Kind::Elicitation], caps)?;
                let replies: Option<Vec<Elicited>> = asks
                    .iter()
                    .map(|a| answers.get(a.key).and_then(elicited))
                    .collect();
                match replies {
                    Some(replies) => Ok(Step::Done(text_result(multi_input_outcome(&replies)))),
                    None => Ok(Step::Ask { asks, state: None }),
                }
            }
            Flow::IrrCapabilities => {
                let mut asks = Vec::new();
                if Kind::Elicitation.declared_in(caps) {
                    asks.push(Ask::elicit(
                        "user_name",
                        "What is your name?",
                        string_schema("name"),
                    ));
                }
                if Kind::Sampling.declared_in(caps) {
                    asks.push(Ask::sample("greeting", "Generate a greeting", 50));
                }
                if Kind::Roots.declared_in(caps) {
                    asks.push(Ask::roots("client_roots"));
                }
                if asks.is_empty() {
                    return Ok(Step::Done(text_result(
                        "The client declared no input capabilities",
                    )));
                }
                let answered = asks.iter().all(|ask| answers.contains_key(ask.key));
                if answered {
                    let keys: Vec<&str> = asks.iter().map(|a| a.key).collect();
                    Ok(Step::Done(text_result(format!(
                        "Received: {}",
                        keys.join(", ")
                    ))))
                } else {
                    Ok(Step::Ask { asks, state: None })
                }
            }
        }
    }
}

/// The flow of prompt `test_input_required_result_prompt`.
pub(crate) fn prompt_step(
    answers: &Map<String, Value>,
    caps: &ClientCapabilities,
) -> Result<Step<GetPromptResult>, McpError> {
    let ask = Ask::elicit(
        "user_context",
        "What context should the prompt use?",
        string_schema("context"),
    );
    require(&[ask.kind], caps)?;
    match answers.get("user_context").and_then(elicited) {
        Some(reply) => {
            let context = reply.accepted_string("context").unwrap_or_default();
            Ok(Step::Done(
                GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    format!("Answer using this context: {context}"),
                )])
                .with_description("A prompt built from elicited context"),
            ))
        }
        None => Ok(Step::Ask {
            asks: vec![ask],
            state: None,
        }),
    }
}

/// Round 1 of `test_tool_with_task`: the name the task will greet.
pub(crate) fn task_name_step(
    answers: &Map<String, Value>,
    caps: &ClientCapabilities,
) -> Result<Step<String>, McpError> {
    let ask = Ask::elicit("user_name", "What is your name?", string_schema("name"));
    require(&[ask.kind], caps)?;
    match answers.get("user_name").and_then(elicited) {
        Some(reply) => Ok(Step::Done(
            reply.accepted_string("name").unwrap_or_default(),
        )),
        None => Ok(Step::Ask {
            asks: vec![ask],
            state: None,
        }),
    }
}

/// The confirmation `confirm_delete` asks for.
pub(crate) fn confirm_delete_ask(filename: &str) -> Ask {
    Ask::elicit(
        "confirm",
        format!("Delete {filename}?"),
        confirm_schema("confirm"),
    )
}

pub(crate) fn confirm_delete_outcome(filename: &str, reply: &Elicited) -> String {
    let confirmed = reply.action == "accept"
        && reply.content.get("confirm").and_then(Value::as_bool) != Some(false);
    if confirmed {
        format!("Deleted {filename} (nothing was really deleted)")
    } else {
        format!("Kept {filename} (action={})", reply.action)
    }
}

/// The two questions `multi_input` asks at once.
pub(crate) fn multi_input_asks() -> Vec<Ask> {
    vec![
        Ask::elicit("first", "First question: your name?", string_schema("name")),
        Ask::elicit(
            "second",
            "Second question: your nickname?",
            string_schema("name"),
        ),
    ]
}

pub(crate) fn multi_input_outcome(replies: &[Elicited]) -> String {
    let parts: Vec<String> = replies
        .iter()
        .map(|r| format!("{}:{}", r.action, r.content_json()))
        .collect();
    format!("Received {} answers: {}", replies.len(), parts.join(", "))
}

/// A one-question flow: asks `ask` until `finish` accepts the answer.
fn single(
    ask: Ask,
    answers: &Map<String, Value>,
    caps: &ClientCapabilities,
    finish: impl FnOnce(&Value) -> Option<CallToolResult>,
) -> Result<Step<CallToolResult>, McpError> {
    require(&[ask.kind], caps)?;
    match answers.get(ask.key).and_then(finish) {
        Some(result) => Ok(Step::Done(result)),
        None => Ok(Step::Ask {
            asks: vec![ask],
            state: None,
        }),
    }
}

/// Fails with -32021 unless `caps` declares every kind in `kinds`.
fn require(kinds: &[Kind], caps: &ClientCapabilities) -> Result<(), McpError> {
    match kinds.iter().find(|kind| !kind.declared_in(caps)) {
        Some(kind) => Err(kind.missing_error()),
        None => Ok(()),
    }
}

fn text_result(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// A parsed `ElicitResult`.
pub(crate) struct Elicited {
    pub(crate) action: String,
    pub(crate) content: Map<String, Value>,
}

impl Elicited {
    pub(crate) fn accepted_string(&self, key: &str) -> Option<String> {
        if self.action != "accept" {
            return None;
        }
        self.content
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    pub(crate) fn content_json(&self) -> String {
        Value::Object(self.content.clone()).to_string()
    }
}

/// Reads an `ElicitResult`; `None` unless it is an object with a valid
/// `action` (and, if present, an object `content`).
pub(crate) fn elicited(answer: &Value) -> Option<Elicited> {
    let object = answer.as_object()?;
    let action = object.get("action")?.as_str()?;
    if !matches!(action, "accept" | "decline" | "cancel") {
        return None;
    }
    let content = match object.get("content") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return None,
    };
    Some(Elicited {
        action: action.to_owned(),
        content,
    })
}

/// The text of a `CreateMessageResult` (single content block or array).
pub(crate) fn sampled_text(answer: &Value) -> Option<String> {
    let content = answer.as_object()?.get("content")?;
    let block_text = |block: &Value| -> Option<String> {
        (block.get("type")?.as_str()? == "text")
            .then(|| block.get("text")?.as_str().map(str::to_owned))
            .flatten()
    };
    match content {
        Value::Array(blocks) => blocks.iter().find_map(block_text),
        block => block_text(block),
    }
}

/// The root URIs of a `ListRootsResult`.
pub(crate) fn root_uris(answer: &Value) -> Option<Vec<String>> {
    answer
        .as_object()?
        .get("roots")?
        .as_array()?
        .iter()
        .map(|root| root.get("uri")?.as_str().map(str::to_owned))
        .collect()
}

fn string_schema(field: &str) -> Value {
    json!({
        "type": "object",
        "properties": { field: { "type": "string" } },
        "required": [field]
    })
}

fn confirm_schema(field: &str) -> Value {
    json!({
        "type": "object",
        "properties": { field: { "type": "boolean" } },
        "required": [field]
    })
}

fn user_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" }
        },
        "required": ["username", "email"]
    })
}

fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": { "type": "boolean", "description": "Verified?", "default": true }
        }
    })
}

fn sep1330_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" }
                ]
            },
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
            },
            "titledMulti": {
                "type": "array",
                "items": {
                    "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" }
                    ]
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ElicitRequestParams, InputRequest};

    use super::*;

    fn all_caps() -> ClientCapabilities {
        serde_json::from_value(json!({"sampling": {}, "elicitation": {}, "roots": {}})).unwrap()
    }

    /// Every schema survives rmcp's typed elicitation model unchanged, so
    /// neither era loses a keyword on the way to the client.
    #[test]
    fn elicitation_schemas_round_trip_through_rmcp() {
        for schema in [
            user_schema(),
            sep1034_schema(),
            sep1330_schema(),
            string_schema("name"),
            confirm_schema("ok"),
        ] {
            let ask = Ask::elicit("k", "m", schema);
            let params: ElicitRequestParams =
                serde_json::from_value(ask.params.clone()).expect("elicit params");
            assert_eq!(serde_json::to_value(&params).unwrap(), ask.params);
            let request: InputRequest =
                serde_json::from_value(ask.to_request()).expect("input request");
            assert_eq!(serde_json::to_value(&request).unwrap(), ask.to_request());
        }
        let ask = Ask::sample("s", "p", 100);
        let request: InputRequest =
            serde_json::from_value(ask.to_request()).expect("input request");
        assert_eq!(serde_json::to_value(&request).unwrap(), ask.to_request());
        // rmcp leaves out the empty `params` of roots/list (optional on the wire).
        let request: InputRequest =
            serde_json::from_value(Ask::roots("r").to_request()).expect("input request");
        assert_eq!(
            serde_json::to_value(&request).unwrap()["method"],
            "roots/list"
        );
    }

    #[test]
    fn multi_round_flow_walks_three_rounds() {
        let caps = all_caps();
        let flow = Flow::IrrMultiRound;
        let Step::Ask {
            state: Some(s1), ..
        } = flow.step(None, &Map::new(), &caps).unwrap()
        else {
            panic!("round 1 must ask with state");
        };
        let answers = json!({"step1": {"action": "accept", "content": {"name": "Alice"}}});
        let Step::Ask {
            state: Some(s2),
            asks,
        } = flow
            .step(Some(&s1), answers.as_object().unwrap(), &caps)
            .unwrap()
        else {
            panic!("round 2 must ask with state");
        };
        assert_eq!(asks[0].key, "step2");
        let answers = json!({"step2": {"action": "accept", "content": {"color": "blue"}}});
        let Step::Done(result) = flow
            .step(Some(&s2), answers.as_object().unwrap(), &caps)
            .unwrap()
        else {
            panic!("round 3 must complete");
        };
        assert_eq!(
            serde_json::to_value(&result).unwrap()["content"][0]["text"],
            "Alice's favorite color is blue"
        );
    }

    #[test]
    fn invalid_answers_are_asked_again() {
        let caps = all_caps();
        for answers in [
            json!({"user_name": 12345}),
            json!({"wrong_key": {"action": "accept"}}),
        ] {
            let step = Flow::IrrElicitation
                .step(None, answers.as_object().unwrap(), &caps)
                .unwrap();
            assert!(matches!(step, Step::Ask { .. }));
        }
    }

    #[test]
    fn undeclared_capability_is_refused_or_skipped() {
        let sampling_only: ClientCapabilities =
            serde_json::from_value(json!({"sampling": {}})).unwrap();
        let error = Flow::IrrElicitation
            .step(None, &Map::new(), &sampling_only)
            .unwrap_err();
        assert_eq!(error.code.0, -32021);
        let Step::Ask { asks, .. } = Flow::IrrCapabilities
            .step(None, &Map::new(), &sampling_only)
            .unwrap()
        else {
            panic!("must ask for sampling");
        };
        assert!(asks.iter().all(|a| a.kind == Kind::Sampling));
    }
}
