//! Knobs of one fixture server instance ([`FixtureOptions`]).

/// How a fixture server presents itself and which behaviours it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureOptions {
    /// `serverInfo.name` reported at initialize (default `"fixture"`).
    pub name: String,
    /// Number of extra generated tools `tool_0 .. tool_{n-1}` (default 0).
    pub tools: usize,
    /// Prefix put in front of every built-in and generated tool name.
    pub tool_prefix: Option<String>,
    /// Whether the `crash` tool may end the process. Off by default so an
    /// in-process server cannot kill the test binary; the CLI turns it on.
    pub allow_exit: bool,
    /// Streamable HTTP only: answer with plain `application/json` bodies
    /// instead of SSE. rmcp only supports that in its stateless mode, so this
    /// also turns sessions off (no `Mcp-Session-Id`, no server→client
    /// requests such as `sample`/`elicit`/`roots`).
    pub json_response: bool,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        Self {
            name: "fixture".to_owned(),
            tools: 0,
            tool_prefix: None,
            allow_exit: false,
            json_response: false,
        }
    }
}

impl FixtureOptions {
    /// Defaults with the given server name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the server name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the number of generated `tool_<i>` tools.
    #[must_use]
    pub fn with_tools(mut self, tools: usize) -> Self {
        self.tools = tools;
        self
    }

    /// Sets the tool-name prefix.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.tool_prefix = Some(prefix.into());
        self
    }

    /// Allows or forbids the `crash` tool to exit the process.
    #[must_use]
    pub fn with_allow_exit(mut self, allow: bool) -> Self {
        self.allow_exit = allow;
        self
    }

    /// Switches Streamable HTTP to stateless `application/json` answers.
    #[must_use]
    pub fn with_json_response(mut self, json: bool) -> Self {
        self.json_response = json;
        self
    }

    /// The advertised name of a tool whose unprefixed name is `base`.
    pub(crate) fn tool_name(&self, base: &str) -> String {
        match &self.tool_prefix {
            Some(prefix) => format!("{prefix}{base}"),
            None => base.to_owned(),
        }
    }
}
