//! Fixed payloads and the catalog (tools, prompts, resources) of the
//! conformance server, with the names and contents the scenarios check.

use rmcp::model::{
    JsonObject, Prompt, PromptArgument, Resource, ResourceTemplate, Tool, ToolAnnotations,
};
use serde_json::{Value, json};

/// A 1×1 PNG (one opaque blue pixel), generated for this fixture.
pub(crate) const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mOQm/D/PwAFKgKtVPL9fAAAAABJRU5ErkJggg==";

/// A WAV file with eight samples of silence (8 kHz, mono, 16 bit).
pub(crate) const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

pub(crate) const STATIC_TEXT_URI: &str = "test://static-text";
pub(crate) const STATIC_TEXT: &str = "This is the content of the static text resource.";
pub(crate) const STATIC_BINARY_URI: &str = "test://static-binary";
pub(crate) const WATCHED_URI: &str = "test://watched-resource";
pub(crate) const TEMPLATE_URI: &str = "test://template/{id}/data";
pub(crate) const TEMPLATE_PREFIX: &str = "test://template/";
pub(crate) const TEMPLATE_SUFFIX: &str = "/data";

/// Name of the tool that `test_trigger_tool_change` adds and removes.
pub(crate) const DYNAMIC_TOOL: &str = "test_dynamic_tool";
/// Name of the prompt that `test_trigger_prompt_change` adds and removes.
pub(crate) const DYNAMIC_PROMPT: &str = "test_dynamic_prompt";

/// Completion candidates for the arguments of `test_prompt_with_arguments`.
pub(crate) const ARG_CANDIDATES: [&str; 5] = ["paris", "park", "party", "test", "testing"];
/// Completion candidates for `{id}` of the resource template.
pub(crate) const ID_CANDIDATES: [&str; 3] = ["1", "2", "123"];

/// The JSON Schema 2020-12 input schema of `json_schema_2020_12_tool`, with
/// the keywords the `json-schema-2020-12` scenario looks for (`$schema`,
/// `$defs` with an `$anchor`, `$ref`, `allOf`/`anyOf`, `if`/`then`/`else`,
/// `additionalProperties: false`).
fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": { "type": "string" },
                    "city": { "type": "string" }
                }
            }
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" }
        },
        "allOf": [
            { "anyOf": [ { "required": ["phone"] }, { "required": ["email"] } ] }
        ],
        "if": {
            "properties": { "contactMethod": { "const": "phone" } },
            "required": ["contactMethod"]
        },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false
    })
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn no_args() -> JsonObject {
    object(json!({ "type": "object", "properties": {} }))
}

fn string_arg(name: &str, description: &str) -> JsonObject {
    object(json!({
        "type": "object",
        "properties": { name: { "type": "string", "description": description } },
        "required": [name]
    }))
}

fn tool(name: &str, description: &str) -> Tool {
    Tool::new(name.to_owned(), description.to_owned(), no_args())
}

/// Every static tool, in a fixed order (tools/list must be deterministic).
pub(crate) fn tools() -> Vec<Tool> {
    vec![
        tool("test_simple_text", "Returns one text content block"),
        tool("test_image_content", "Returns one PNG image content block"),
        tool("test_audio_content", "Returns one WAV audio content block"),
        tool(
            "test_embedded_resource",
            "Returns an embedded text resource",
        ),
        tool(
            "test_multiple_content_types",
            "Returns text, image and embedded resource content",
        ),
        tool(
            "test_tool_with_logging",
            "Sends three info log messages while it runs",
        ),
        tool(
            "test_error_handling",
            "Always fails with a tool error (isError: true)",
        ),
        tool(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100",
        ),
        Tool::new(
            "test_sampling",
            "Asks the client's LLM (sampling/createMessage) and returns its answer",
            string_arg("prompt", "The prompt to send to the LLM"),
        ),
        Tool::new(
            "test_elicitation",
            "Asks the user for a username and email (elicitation/create)",
            string_arg("message", "The message to show the user"),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Elicitation whose fields all have default values (SEP-1034)",
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Elicitation with every enum schema variant (SEP-1330)",
        ),
        Tool::new(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            object(json_schema_2020_12()),
        ),
        tool(
            "test_reconnection",
            "Answers after a short delay (SSE polling / reconnection tests)",
        ),
        tool(
            "test_missing_capability",
            "Requires the client's sampling capability",
        ),
        tool(
            "test_streaming_elicitation",
            "Needs one elicitation answer before it completes",
        ),
        tool(
            "test_logging_tool",
            "Sends one info log message (only where the request allows logging)",
        ),
        tool(
            "test_trigger_tool_change",
            "Adds or removes test_dynamic_tool and announces the tools list change",
        )
        .with_annotations(ToolAnnotations::new().read_only(false)),
        tool(
            "test_trigger_prompt_change",
            "Adds or removes test_dynamic_prompt and announces the prompts list change",
        )
        .with_annotations(ToolAnnotations::new().read_only(false)),
        tool(
            "test_input_required_result_elicitation",
            "Needs an elicitation answer (key user_name)",
        ),
        tool(
            "test_input_required_result_sampling",
            "Needs a sampling answer (key capital_question)",
        ),
        tool(
            "test_input_required_result_list_roots",
            "Needs the client's roots (key client_roots)",
        ),
        tool(
            "test_input_required_result_request_state",
            "Needs a confirmation and round-trips requestState",
        ),
        tool(
            "test_input_required_result_multiple_inputs",
            "Needs an elicitation, a sampling and a roots answer at once",
        ),
        tool(
            "test_input_required_result_multi_round",
            "Needs two elicitation answers in two rounds",
        ),
        tool(
            "test_input_required_result_tampered_state",
            "Needs a confirmation; rejects a requestState it did not issue",
        ),
        tool(
            "test_input_required_result_capabilities",
            "Asks only for the kinds of input the client declared",
        ),
        // Tasks extension (SEP-2663) fixtures, named as the tasks-* scenarios expect.
        Tool::new(
            "greet",
            "Sync-only: returns Hello, {name}!",
            string_arg("name", "Who to greet"),
        ),
        Tool::new(
            "slow_compute",
            "Task-supporting: sleeps `seconds` seconds, then returns; settles as cancelled on tasks/cancel",
            object(json!({
                "type": "object",
                "properties": {
                    "seconds": { "type": "number", "minimum": 0, "description": "How long to work" },
                    "label": { "type": "string", "description": "Echoed in the result" }
                },
                "required": ["seconds"]
            })),
        ),
        tool(
            "failing_job",
            "Task-required: fails with a tool error (isError) after about a second",
        ),
        tool(
            "protocol_error_job",
            "Task-supporting: fails with a protocol error",
        ),
        Tool::new(
            "confirm_delete",
            "Task-supporting: asks for a confirmation (elicitation), then answers",
            string_arg("filename", "The file to delete (nothing is deleted)"),
        ),
        tool(
            "multi_input",
            "Task-supporting: asks two elicitation questions at once",
        ),
        tool(
            "test_tool_with_task",
            "Task-required: asks for a name (input_required), then runs as a task",
        ),
        Tool::new(
            PARAM_HEADER_TOOL,
            "Echoes `region`, which clients must mirror into the Mcp-Param-Region header",
            param_header_schema(),
        ),
    ]
}

/// The tool with an `x-mcp-header` parameter (SEP-2243).
pub(crate) const PARAM_HEADER_TOOL: &str = "test_param_header";

/// The input schema of [`PARAM_HEADER_TOOL`].
pub(crate) fn param_header_schema() -> JsonObject {
    object(json!({
        "type": "object",
        "properties": {
            "region": {
                "type": "string",
                "description": "Mirrored into the Mcp-Param-Region header",
                "x-mcp-header": "Region"
            }
        },
        "required": ["region"]
    }))
}

/// The tool `test_trigger_tool_change` toggles.
pub(crate) fn dynamic_tool() -> Tool {
    tool(
        DYNAMIC_TOOL,
        "Present every other test_trigger_tool_change call",
    )
}

fn argument(name: &str, description: &str) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(true)
}

/// Every static prompt, in a fixed order.
pub(crate) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A prompt without arguments"),
            None,
        ),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with two arguments"),
            Some(vec![
                argument("arg1", "First test argument"),
                argument("arg2", "Second test argument"),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt embedding a resource"),
            Some(vec![argument(
                "resourceUri",
                "URI of the resource to embed",
            )]),
        ),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt with an image"),
            None,
        ),
        Prompt::new(
            "test_input_required_result_prompt",
            Some("A prompt that needs an elicitation answer (key user_context)"),
            None,
        ),
    ]
}

/// The prompt `test_trigger_prompt_change` toggles.
pub(crate) fn dynamic_prompt() -> Prompt {
    Prompt::new(
        DYNAMIC_PROMPT,
        Some("Present every other test_trigger_prompt_change call"),
        None,
    )
}

/// The direct resources.
pub(crate) fn resources() -> Vec<Resource> {
    vec![
        Resource::new(STATIC_TEXT_URI, "static-text")
            .with_description("A static text resource")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY_URI, "static-binary")
            .with_description("A static binary (PNG) resource")
            .with_mime_type("image/png"),
        Resource::new(WATCHED_URI, "watched-resource")
            .with_description("A resource clients may subscribe to")
            .with_mime_type("text/plain"),
    ]
}

/// The resource templates.
pub(crate) fn resource_templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(TEMPLATE_URI, "template-data")
            .with_description("JSON data for any id")
            .with_mime_type("application/json"),
    ]
}
