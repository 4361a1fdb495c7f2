//! The MCP revisions the hub speaks, and the facts about them that more than one crate needs:
//! the two eras, the version strings, the stateless revision's `_meta` keys, routing headers
//! and error codes, and which request field a routing header names. `docs/protocol.md` says
//! what the hub does with them.
//!
//! Words used across the code base: a **client session** is a downstream client's MCP session
//! with the hub (`Mcp-Session-Id`, a legacy SSE stream, a stdio client); an **upstream
//! connection** is the hub's own session with an upstream server (shared, or one per client
//! session for `session: per-client` servers); a **proxy session** is seed 002's temporary,
//! prefixed remote server with a time to live.

/// The stateless revision: no `initialize`, every request carries its own `_meta`.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// The session-era revisions, oldest first (`initialize` negotiates one of them).
pub const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The newest session-era revision, offered when a client asks for one the hub does not know.
pub const LATEST_SESSION_VERSION: &str = "2025-11-25";

/// How a peer speaks: with a session negotiated by `initialize`, or statelessly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2024-11-05 through 2025-11-25: `initialize`, then requests within a session.
    Session,
    /// 2026-07-28: `server/discover`, and every request carries its own `_meta`.
    Stateless,
}

impl Era {
    /// The era of a negotiated or declared protocol version.
    pub fn of_version(version: &str) -> Era {
        if version == STATELESS_VERSION {
            Era::Stateless
        } else {
            Era::Session
        }
    }
}

/// `_meta` keys of the stateless revision.
pub mod meta {
    /// The request's protocol revision.
    pub const VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The client's capabilities.
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// The client's name and version.
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    /// The log level a request opts into.
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// The server's name and version, in a `server/discover` result.
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
}

/// HTTP headers of the stateless revision (lower case, as `http::HeaderName` stores them).
pub mod headers {
    /// The request's protocol revision (also sent by session-era clients after `initialize`).
    pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
    /// The request's method.
    pub const METHOD: &str = "mcp-method";
    /// The request's target: see [`super::routing_field`].
    pub const NAME: &str = "mcp-name";
    /// Prefix of the headers that mirror tool arguments declared with `x-mcp-header`.
    pub const PARAM_PREFIX: &str = "mcp-param-";
}

/// JSON-RPC error codes the stateless revision adds.
pub mod codes {
    /// A routing header differs from the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The request needs a client capability it did not declare.
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// The protocol revision is not supported.
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// The params field whose value the `Mcp-Name` header carries for `method`, if any.
pub fn routing_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_follow_the_version() {
        assert_eq!(Era::of_version(STATELESS_VERSION), Era::Stateless);
        for v in SESSION_VERSIONS {
            assert_eq!(Era::of_version(v), Era::Session);
        }
        assert_eq!(SESSION_VERSIONS.last(), Some(&LATEST_SESSION_VERSION));
    }

    #[test]
    fn named_methods_have_a_routing_field() {
        assert_eq!(routing_field("tools/call"), Some("name"));
        assert_eq!(routing_field("resources/read"), Some("uri"));
        assert_eq!(routing_field("tasks/cancel"), Some("taskId"));
        assert_eq!(routing_field("tools/list"), None);
    }
}
