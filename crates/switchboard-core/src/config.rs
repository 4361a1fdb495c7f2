//! The servers file: a Claude-Desktop-style `mcpServers` map plus optional `groups`.
//!
//! ```json
//! { "mcpServers": {
//!     "fs":     { "command": "npx", "args": ["-y", "pkg"], "env": {"K": "${HOME}"}, "cwd": "/tmp" },
//!     "remote": { "type": "streamable-http", "url": "https://h/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"} },
//!     "legacy": { "type": "sse", "url": "http://h/sse" } },
//!   "groups": { "dev": ["fs", "remote"] } }
//! ```
//! `${VAR}` and `${VAR:-default}` in any string value are expanded from the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use crate::formats::{Note, ToolSetting};
use crate::formats::{locate, normalize};
use crate::naming::{validate_separator, validate_server_name};

/// What export shows instead of a secret; a file that still holds it is refused.
pub const MASK: &str = "********";

/// Default per-request timeout for an upstream.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Default limit on one message (a result) from a server: 16 MiB.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

/// A loaded, validated servers file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServersFile {
    /// Servers by name, in name order.
    pub servers: BTreeMap<String, ServerSpec>,
    /// Groups by name: member server names.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Things that were accepted but look wrong (unknown keys and such).
    pub warnings: Vec<String>,
    /// Per entry: what was kept, converted or dropped on the way from the file's format.
    pub notes: Vec<Note>,
    /// The format the file was recognised as: `mcpServers`, `vscode` or `mcphub`.
    pub format: &'static str,
    /// Group tool filters (exported names), from MCPHub groups.
    pub group_tools: BTreeMap<String, Vec<String>>,
    /// Per-server tool settings, from MCPHub's `tools`.
    pub tool_settings: BTreeMap<String, BTreeMap<String, ToolSetting>>,
}

/// One configured upstream server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// Unique server name (also its prefix).
    pub name: String,
    /// How to reach it.
    pub transport: TransportSpec,
    /// Per-request timeout, reset by progress.
    pub timeout: Duration,
    /// Configured but not started.
    pub disabled: bool,
    /// One upstream session for all clients, or one per client.
    pub session: SessionMode,
    /// Largest message (a result) accepted from the server, in bytes; `None` takes the hub's
    /// `--max-result-bytes` (default [`DEFAULT_MAX_RESULT_BYTES`]).
    pub max_result_bytes: Option<usize>,
    /// Configured by the operator (servers file) rather than supplied through an API; only
    /// untrusted servers have their connections checked against the SSRF policy.
    pub trusted: bool,
}

/// How many upstream sessions a server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionMode {
    /// One session (one process, for stdio) shared by every client: the default, because it
    /// costs one process or connection no matter how many clients there are.
    #[default]
    Shared,
    /// A session per client, for servers that keep per-client state or ask the client things
    /// (sampling, elicitation, roots) while several clients are active.
    PerClient,
}

impl SessionMode {
    /// `shared` or `per-client`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionMode::Shared => "shared",
            SessionMode::PerClient => "per-client",
        }
    }

    /// Parses `shared` or `per-client`.
    pub fn parse(s: &str) -> Option<SessionMode> {
        match s {
            "shared" => Some(SessionMode::Shared),
            "per-client" | "per_client" => Some(SessionMode::PerClient),
            _ => None,
        }
    }
}

/// How to reach an upstream: a closed set.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportSpec {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// Program to run.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment variables.
        env: BTreeMap<String, String>,
        /// Working directory.
        cwd: Option<PathBuf>,
        /// Which protocol era to speak.
        protocol: ProtocolMode,
    },
    /// Streamable HTTP (2025-03-26 and later).
    StreamableHttp {
        /// Endpoint URL.
        url: String,
        /// Static headers sent on every request.
        headers: BTreeMap<String, String>,
        /// Which protocol era to speak.
        protocol: ProtocolMode,
    },
    /// Legacy HTTP+SSE (2024-11-05).
    Sse {
        /// URL of the SSE stream.
        url: String,
        /// Static headers sent on every request.
        headers: BTreeMap<String, String>,
    },
}

impl TransportSpec {
    /// Short transport name as used in the file and in status output.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Stdio { .. } => "stdio",
            TransportSpec::StreamableHttp { .. } => "streamable-http",
            TransportSpec::Sse { .. } => "sse",
        }
    }
}

/// Which protocol era the hub speaks to a Streamable HTTP or stdio server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolMode {
    /// Sessions first (`initialize`); if the server refuses them the way a stateless-only
    /// server does (HTTP 400/404/405; on stdio a JSON-RPC error reply), switch to 2026-07-28.
    /// Legacy first, because the hub bridges everything a session-based server can do
    /// (including server-to-client requests).
    #[default]
    Auto,
    /// Always sessions (2025-03-26 .. 2025-11-25).
    Legacy,
    /// Always the stateless 2026-07-28 protocol.
    Stateless,
}

impl ProtocolMode {
    /// Parses `auto`, `legacy` or `2026-07-28` (also `modern`, an older spelling).
    pub fn parse(s: &str) -> Option<ProtocolMode> {
        match s {
            "auto" => Some(ProtocolMode::Auto),
            "legacy" | "2025-11-25" | "2025-06-18" | "2025-03-26" => Some(ProtocolMode::Legacy),
            "2026-07-28" | "modern" => Some(ProtocolMode::Stateless),
            _ => None,
        }
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolMode::Auto => "auto",
            ProtocolMode::Legacy => "legacy",
            ProtocolMode::Stateless => "2026-07-28",
        }
    }
}

/// A problem in a servers file: which file, which entry, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The entry path inside it, such as `mcpServers.github.url`.
    pub entry: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The 1-based line of the entry in the file, when known.
    pub line: Option<usize>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        match &self.entry {
            Some(e) => write!(f, ": {}: {}", e, self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where `${VAR}` values come from; tests pass a map instead of touching the process env.
pub trait VarSource {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
    /// True when strings must be taken as they are, without expansion.
    fn literal(&self) -> bool {
        false
    }
}

/// The process environment.
pub struct ProcessEnv;

impl VarSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl VarSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Reads and validates a servers file.
pub fn load_servers_file(
    path: &Path,
    vars: &dyn VarSource,
    separator: &str,
) -> Result<ServersFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        entry: None,
        message: format!("cannot read the file: {e}"),
        line: None,
    })?;
    parse_servers_file(path, &text, vars, separator)
}

/// Parses and validates servers-file text; `path` only labels errors.
pub fn parse_servers_file(
    path: &Path,
    text: &str,
    vars: &dyn VarSource,
    separator: &str,
) -> Result<ServersFile, ConfigError> {
    let err = |entry: Option<String>, message: String| ConfigError {
        file: path.to_path_buf(),
        line: entry.as_deref().and_then(|e| locate(text, e)),
        entry,
        message,
    };
    validate_separator(separator).map_err(|m| err(None, m))?;
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| err(None, format!("not valid JSON for a servers file: {e}")))?;
    let Value::Object(doc) = doc else {
        return Err(err(None, "a servers file is a JSON object".into()));
    };
    let n = normalize(&doc, separator)
        .map_err(|(entry, m)| err((!entry.is_empty()).then_some(entry), m))?;
    let mut out = ServersFile {
        format: crate::formats::detect(&doc),
        notes: n.notes,
        group_tools: n.group_tools,
        tool_settings: n.tool_settings,
        ..ServersFile::default()
    };
    for note in &out.notes {
        if note.action == "dropped" {
            out.warnings.push(format!(
                "{}: {}: {}",
                path.display(),
                note.entry,
                note.detail
            ));
        }
    }
    let section = if out.format == "vscode" {
        "servers"
    } else {
        "mcpServers"
    };
    for (name, value) in n.servers {
        let entry = format!("{section}.{name}");
        validate_server_name(&name, separator).map_err(|m| err(Some(entry.clone()), m))?;
        refuse_masks(&value).map_err(|(f, m)| err(Some(join_entry(&entry, Some(f))), m))?;
        let spec = parse_server(&name, &value, vars, &mut out.warnings)
            .map_err(|(field, m)| err(Some(join_entry(&entry, field)), m))?;
        if vars.literal() {
            for field in ["url", "headers", "env", "args", "command", "cwd"] {
                if value
                    .get(field)
                    .is_some_and(|v| v.to_string().contains("${"))
                {
                    out.notes.push(Note {
                        entry: entry.clone(),
                        action: "kept",
                        detail: format!(
                            "{field}: ${{VAR}} placeholders are stored as they are (the hub does not \
                             expand variables in uploaded files; `switchboard servers import` \
                             expands them from your environment)"
                        ),
                    });
                }
            }
        }
        out.servers.insert(name, spec);
    }
    for (group, members) in n.groups {
        let entry = format!("groups.{group}");
        validate_server_name(&group, separator).map_err(|m| err(Some(entry.clone()), m))?;
        if out.servers.contains_key(&group) {
            return Err(err(
                Some(entry),
                format!("{group:?} is both a group and a server; names must be unique"),
            ));
        }
        let list: Vec<String> = serde_json::from_value(members).map_err(|_| {
            err(
                Some(entry.clone()),
                "a group must be an array of server names".into(),
            )
        })?;
        for m in &list {
            if !out.servers.contains_key(m) {
                return Err(err(Some(entry.clone()), format!("unknown server {m:?}")));
            }
        }
        out.groups.insert(group, list);
    }
    Ok(out)
}

/// Refuses the mask export shows instead of a secret: importing it would store `********` as
/// the real header or environment value.
fn refuse_masks(value: &Value) -> Result<(), (&'static str, String)> {
    for field in ["headers", "env"] {
        if let Some(Value::Object(m)) = value.get(field) {
            for (k, v) in m {
                if v.as_str().is_some_and(|s| s.contains(MASK)) {
                    return Err((
                        field,
                        format!(
                            "the value of {k:?} is the mask {MASK:?} that export shows instead of \
                             a secret; put the real value or a ${{VAR}} placeholder"
                        ),
                    ));
                }
            }
        }
    }
    if value
        .get("url")
        .and_then(Value::as_str)
        .is_some_and(|u| u.contains(MASK))
    {
        return Err((
            "url",
            format!("contains the mask {MASK:?} instead of a secret; put the real value"),
        ));
    }
    Ok(())
}

fn join_entry(entry: &str, field: Option<&str>) -> String {
    match field {
        Some(f) => format!("{entry}.{f}"),
        None => entry.to_string(),
    }
}

type FieldError = (Option<&'static str>, String);

const KNOWN_KEYS: &[&str] = &[
    "command",
    "args",
    "env",
    "cwd",
    "type",
    "transport",
    "url",
    "headers",
    "timeout",
    "disabled",
    "enabled",
    "session",
    "protocol",
    "max_result_bytes",
];

/// Parses one server entry given as JSON (the API's input), with the file's rules. `vars`
/// expands `${VAR}`; `None` takes every string literally.
pub fn parse_server_value(
    name: &str,
    value: &Value,
    vars: Option<&dyn VarSource>,
    separator: &str,
) -> Result<ServerSpec, String> {
    validate_server_name(name, separator)?;
    let mut warnings = Vec::new();
    let literal = Literal;
    let trusted = vars.is_some();
    let vars: &dyn VarSource = vars.unwrap_or(&literal);
    let mut spec =
        parse_server(name, value, vars, &mut warnings).map_err(|(field, m)| match field {
            Some(f) => format!("{f}: {m}"),
            None => m,
        })?;
    spec.trusted = trusted;
    Ok(spec)
}

/// A variable source that turns expansion off.
struct Literal;

impl VarSource for Literal {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn literal(&self) -> bool {
        true
    }
}

fn parse_server(
    name: &str,
    value: &Value,
    vars: &dyn VarSource,
    warnings: &mut Vec<String>,
) -> Result<ServerSpec, FieldError> {
    let obj = value
        .as_object()
        .ok_or((None, "a server entry must be a JSON object".to_string()))?;
    for key in obj.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            warnings.push(format!("mcpServers.{name}: unknown key {key:?} ignored"));
        }
    }
    let kind = match obj.get("type").or_else(|| obj.get("transport")) {
        Some(Value::String(t)) => Some(normalize_type(t).ok_or((
            Some("type"),
            format!("unknown type {t:?}; use \"stdio\", \"streamable-http\" or \"sse\""),
        ))?),
        Some(_) => return Err((Some("type"), "must be a string".into())),
        None => None,
    };
    let has_command = obj.contains_key("command");
    let has_url = obj.contains_key("url");
    let kind = match (kind, has_command, has_url) {
        (Some(k), _, _) => k,
        (None, true, false) => "stdio",
        (None, false, true) => "streamable-http",
        (None, true, true) => {
            return Err((
                None,
                "has both \"command\" and \"url\"; set \"type\"".into(),
            ));
        }
        (None, false, false) => {
            return Err((None, "needs \"command\" (stdio) or \"url\" (remote)".into()));
        }
    };
    let protocol = match obj.get("protocol") {
        None | Some(Value::Null) => ProtocolMode::Auto,
        Some(Value::String(p)) => ProtocolMode::parse(p).ok_or((
            Some("protocol"),
            format!("must be \"auto\", \"legacy\" or \"2026-07-28\", not {p:?}"),
        ))?,
        Some(_) => return Err((Some("protocol"), "must be a string".into())),
    };
    let transport = match kind {
        "stdio" => {
            let command =
                expand(&req_str(obj, "command")?, vars).map_err(|m| (Some("command"), m))?;
            if command.trim().is_empty() {
                return Err((Some("command"), "must not be empty".into()));
            }
            let args = str_list(obj, "args")?
                .iter()
                .map(|a| expand(a, vars))
                .collect::<Result<_, _>>()
                .map_err(|m| (Some("args"), m))?;
            let env = str_map(obj, "env", vars)?;
            let cwd = opt_str(obj, "cwd")?
                .map(|c| expand(&c, vars).map(PathBuf::from))
                .transpose()
                .map_err(|m| (Some("cwd"), m))?;
            TransportSpec::Stdio {
                command,
                args,
                env,
                cwd,
                protocol,
            }
        }
        remote => {
            let url = expand(&req_str(obj, "url")?, vars).map_err(|m| (Some("url"), m))?;
            check_url(&url).map_err(|m| (Some("url"), m))?;
            let headers = str_map(obj, "headers", vars)?;
            for (k, v) in &headers {
                if !k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                    || v.bytes().any(|b| b == b'\r' || b == b'\n')
                {
                    return Err((Some("headers"), format!("invalid header {k:?}")));
                }
            }
            if remote == "sse" {
                TransportSpec::Sse { url, headers }
            } else {
                TransportSpec::StreamableHttp {
                    url,
                    headers,
                    protocol,
                }
            }
        }
    };
    let timeout = match obj.get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(v) => {
            let secs = v.as_f64().filter(|s| *s > 0.0 && *s <= 86_400.0).ok_or((
                Some("timeout"),
                "must be a number of seconds between 0 and 86400".to_string(),
            ))?;
            Duration::from_secs_f64(secs)
        }
    };
    let flag = |key: &'static str| match obj.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err((
            Some(key),
            format!("must be true or false (a JSON boolean), not {other}"),
        )),
    };
    let disabled = match (flag("disabled")?, flag("enabled")?) {
        (Some(d), Some(e)) if d == e => {
            return Err((
                Some("enabled"),
                format!("contradicts \"disabled\": {d}; keep one of the two"),
            ));
        }
        (Some(d), _) => d,
        (None, Some(e)) => !e,
        (None, None) => false,
    };
    let session = match obj.get("session") {
        None | Some(Value::Null) => SessionMode::Shared,
        Some(Value::String(m)) => SessionMode::parse(m).ok_or((
            Some("session"),
            format!("must be \"shared\" or \"per-client\", not {m:?}"),
        ))?,
        Some(_) => return Err((Some("session"), "must be a string".into())),
    };
    let max_result_bytes = match obj.get("max_result_bytes") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n >= 1024 && *n <= 1 << 30).ok_or((
            Some("max_result_bytes"),
            format!("must be a whole number of bytes between 1024 and 1073741824, not {v}"),
        ))? as usize),
    };
    Ok(ServerSpec {
        name: name.to_string(),
        transport,
        timeout,
        disabled,
        session,
        max_result_bytes,
        trusted: true,
    })
}

fn normalize_type(t: &str) -> Option<&'static str> {
    match t.to_ascii_lowercase().as_str() {
        "stdio" => Some("stdio"),
        "streamable-http" | "streamable_http" | "streamablehttp" | "http" => {
            Some("streamable-http")
        }
        "sse" => Some("sse"),
        _ => None,
    }
}

/// Checks that a URL is absolute http(s) with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no valid host"));
    }
    Ok(())
}

fn req_str(obj: &serde_json::Map<String, Value>, key: &'static str) -> Result<String, FieldError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err((Some(key), "must be a string".into())),
        None => Err((Some(key), "is required".into())),
    }
}

fn opt_str(
    obj: &serde_json::Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, FieldError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err((Some(key), "must be a string".into())),
    }
}

fn str_list(
    obj: &serde_json::Map<String, Value>,
    key: &'static str,
) -> Result<Vec<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or((Some(key), "must be an array of strings".to_string()))
            })
            .collect(),
        Some(_) => Err((Some(key), "must be an array of strings".into())),
    }
}

fn str_map(
    obj: &serde_json::Map<String, Value>,
    key: &'static str,
    vars: &dyn VarSource,
) -> Result<BTreeMap<String, String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err((Some(key), format!("value of {k:?} must be a string"))),
                };
                Ok((k.clone(), expand(&s, vars).map_err(|m| (Some(key), m))?))
            })
            .collect(),
        Some(_) => Err((Some(key), "must be an object of strings".into())),
    }
}

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. An unset variable without a
/// default is an error naming it.
pub fn expand(s: &str, vars: &dyn VarSource) -> Result<String, String> {
    if !s.contains('$') || vars.literal() {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed \"${{\" in {s:?}"))?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name {name:?}"));
            }
            match (vars.var(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(format!("environment variable {name} is not set")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("TOKEN".to_string(), "t0k".to_string()),
            ("HOME".to_string(), "/home/u".to_string()),
        ])
    }

    fn parse(text: &str) -> Result<ServersFile, ConfigError> {
        parse_servers_file(Path::new("servers.json"), text, &vars(), "__")
    }

    #[test]
    fn parses_all_transports_and_groups() {
        let f = parse(
            r#"{"mcpServers":{
                "fs":{"command":"npx","args":["-y","x","${HOME}"],"env":{"A":"${MISSING:-d}"},"cwd":"/tmp"},
                "remote":{"type":"streamable-http","url":"https://h/mcp","headers":{"Authorization":"Bearer ${TOKEN}"},"timeout":5},
                "legacy":{"type":"sse","url":"http://h/sse"}},
              "groups":{"dev":["fs","remote"]}}"#,
        )
        .unwrap();
        assert_eq!(f.servers.len(), 3);
        match &f.servers["fs"].transport {
            TransportSpec::Stdio {
                args,
                env,
                protocol,
                ..
            } => {
                assert_eq!(args[2], "/home/u");
                assert_eq!(env["A"], "d");
                assert_eq!(*protocol, ProtocolMode::Auto);
            }
            other => panic!("{other:?}"),
        }
        match &f.servers["remote"].transport {
            TransportSpec::StreamableHttp {
                headers, protocol, ..
            } => {
                assert_eq!(headers["Authorization"], "Bearer t0k");
                assert_eq!(*protocol, ProtocolMode::Auto);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.servers["remote"].timeout, Duration::from_secs(5));
        assert_eq!(f.servers["legacy"].transport.kind(), "sse");
        assert_eq!(f.groups["dev"], vec!["fs", "remote"]);
    }

    #[test]
    fn stdio_entries_take_a_protocol() {
        let f = parse(
            r#"{"mcpServers":{"s":{"command":"srv","protocol":"2026-07-28"},
                "l":{"command":"srv","protocol":"legacy"}}}"#,
        )
        .unwrap();
        let era = |n: &str| match &f.servers[n].transport {
            TransportSpec::Stdio { protocol, .. } => *protocol,
            other => panic!("{other:?}"),
        };
        assert_eq!(era("s"), ProtocolMode::Stateless);
        assert_eq!(era("l"), ProtocolMode::Legacy);
        let e = parse(r#"{"mcpServers":{"x":{"command":"srv","protocol":"2099"}}}"#).unwrap_err();
        assert_eq!(e.entry.as_deref(), Some("mcpServers.x.protocol"));
    }

    #[test]
    fn errors_name_the_entry() {
        let e = parse(r#"{"mcpServers":{"x":{"type":"sse","url":"ftp://h"}}}"#).unwrap_err();
        assert_eq!(e.entry.as_deref(), Some("mcpServers.x.url"));
        assert!(
            e.to_string()
                .starts_with("servers.json:1: mcpServers.x.url: "),
            "{e}"
        );
        let e = parse(r#"{"mcpServers":{"x":{"command":"a","env":{"K":"${NOPE}"}}}}"#).unwrap_err();
        assert!(e.message.contains("NOPE"), "{e}");
        let e = parse(r#"{"mcpServers":{"bad name":{"command":"a"}}}"#).unwrap_err();
        assert_eq!(e.entry.as_deref(), Some("mcpServers.bad name"));
        let e = parse(r#"{"mcpServers":{"a":{"command":"a"}},"groups":{"a":["a"]}}"#).unwrap_err();
        assert!(e.message.contains("both a group and a server"));
        let e = parse(r#"{"mcpServers":{"a":{"command":"a"}},"groups":{"g":["b"]}}"#).unwrap_err();
        assert!(e.message.contains("unknown server"));
        assert!(parse("{").is_err());
        assert!(parse("{}").is_err());
    }

    #[test]
    fn errors_carry_the_line_of_the_entry() {
        let text = "{\n  \"mcpServers\": {\n    \"ok\": {\"command\": \"a\"},\n    \"x\": {\n      \"type\": \"sse\",\n      \"url\": \"ftp://h\"\n    }\n  }\n}\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.to_string()
                .starts_with("servers.json:6: mcpServers.x.url: "),
            "{e}"
        );
    }

    #[test]
    fn the_export_mask_is_refused_naming_entry_and_field() {
        let e = parse(r#"{"mcpServers":{"r":{"url":"https://h/mcp","headers":{"Authorization":"********"}}}}"#)
            .unwrap_err();
        assert_eq!(e.entry.as_deref(), Some("mcpServers.r.headers"));
        assert!(
            e.message.contains("Authorization") && e.message.contains("mask"),
            "{e}"
        );
        let e = parse(r#"{"mcpServers":{"s":{"command":"a","env":{"API_KEY":"********"}}}}"#)
            .unwrap_err();
        assert_eq!(e.entry.as_deref(), Some("mcpServers.s.env"));
    }

    #[test]
    fn mcphub_groups_as_an_array_load() {
        let f = parse(
            r#"{"mcpServers":{"a":{"command":"a"},"b":{"command":"b"}},
                "groups":[{"name":"g","servers":["a",{"name":"b","tools":"all"}]}]}"#,
        )
        .unwrap();
        assert_eq!(f.groups["g"], vec!["a", "b"]);
        assert_eq!(f.format, "mcphub");
    }

    #[test]
    fn a_non_boolean_disabled_is_an_error_naming_file_entry_and_field() {
        for (field, value) in [
            ("disabled", r#""yes""#),
            ("disabled", "1"),
            ("disabled", "null"),
            ("enabled", r#""no""#),
        ] {
            let text = format!(r#"{{"mcpServers":{{"x":{{"command":"a","{field}":{value}}}}}}}"#);
            let e = parse(&text).unwrap_err();
            assert_eq!(
                e.entry.as_deref(),
                Some(format!("mcpServers.x.{field}").as_str())
            );
            assert!(
                e.to_string().starts_with(&format!(
                    "servers.json:1: mcpServers.x.{field}: must be true or false"
                )),
                "{e}"
            );
            assert!(e.message.contains(value), "{e}");
        }
        let e = parse(r#"{"mcpServers":{"x":{"command":"a","disabled":true,"enabled":true}}}"#)
            .unwrap_err();
        assert_eq!(e.entry.as_deref(), Some("mcpServers.x.enabled"));
        let f = parse(r#"{"mcpServers":{"x":{"command":"a","disabled":true,"enabled":false}}}"#)
            .unwrap();
        assert!(f.servers["x"].disabled);
    }

    #[test]
    fn expands_variables() {
        let v = vars();
        assert_eq!(expand("a${TOKEN}b$$c$", &v).unwrap(), "at0kb$c$");
        assert!(expand("${", &v).is_err());
    }
}
