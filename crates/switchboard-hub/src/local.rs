//! The local service: tools built into the hub, on every endpoint, unaffected by upstreams.

use serde_json::json;

use crate::hub::Hub;

/// Exported name of the `list_servers` tool.
pub const LIST_SERVERS: &str = "switchboard__list_servers";

const LIST_SERVERS_DEF: &str = r#"{"name":"switchboard__list_servers","title":"List servers","description":"List the MCP servers behind this Switchboard hub with their transport, state, tool count and last error.","inputSchema":{"type":"object","properties":{}},"annotations":{"readOnlyHint":true,"idempotentHint":true,"openWorldHint":false}}"#;

/// The raw definitions of every local tool.
pub fn tool_definitions() -> [&'static str; 1] {
    [LIST_SERVERS_DEF]
}

/// True when `name` is a local tool.
pub fn is_local_tool(name: &str) -> bool {
    name == LIST_SERVERS
}

/// Runs a local tool and returns its `CallToolResult` JSON.
pub fn call(hub: &Hub, name: &str) -> Option<String> {
    match name {
        LIST_SERVERS => {
            let servers = hub.servers();
            let structured = json!({ "servers": servers });
            let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
            Some(json!({ "content": [{ "type": "text", "text": text }], "structuredContent": structured, "isError": false }).to_string())
        }
        _ => None,
    }
}
