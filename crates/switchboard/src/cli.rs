//! Command-line interface: every flag also reads a `SWITCHBOARD_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Switchboard: one MCP endpoint in front of many MCP servers.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the hub: the main service and the MCP service.
    Serve(Box<ServeArgs>),
    /// Run the hub on stdin/stdout, for a desktop client's config.
    Stdio(StdioArgs),
    /// Check a servers file and exit (0 when valid, 2 when not).
    Validate(CommonArgs),
    /// Manage the servers of a running hub through its API.
    Servers {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: ServersAction,
    },
    /// Manage tenants of a running hub (admin).
    Tenants {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: TenantsAction,
    },
    /// Manage users of a running hub (admin or manager).
    Users {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Manage API keys of a running hub.
    Keys {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Bridge stdin/stdout to a running hub's MCP endpoint (for desktop clients' configs).
    Connect {
        /// The hub's MCP endpoint, e.g. http://127.0.0.1:5011/mcp (`/mcp` when no path).
        url: String,
        /// API key or token, sent as `Authorization: Bearer`.
        #[arg(long, env = "SWITCHBOARD_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// Show the activity log of a running hub (one row per MCP operation).
    Logs {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        args: LogsArgs,
    },
    /// Ask a running hub to connect to an MCP server URL and list its tools.
    Check {
        #[command(flatten)]
        api: ApiArgs,
        /// The server's URL (a path ending in /sse means legacy SSE).
        url: String,
        /// Force the transport: sse or streamable-http.
        #[arg(long = "type")]
        transport: Option<String>,
    },
}

/// Where the hub's management API is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// Base URL of the main service.
    #[arg(
        long,
        env = "SWITCHBOARD_API_URL",
        default_value = "http://127.0.0.1:5010",
        global = true
    )]
    pub(crate) api_url: String,
    /// Admin token.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub(crate) token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Act on this tenant (admins; sent as `X-Switchboard-Tenant`).
    #[arg(long, env = "SWITCHBOARD_TENANT", global = true)]
    pub(crate) tenant: Option<String>,
}

/// `switchboard logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Keep printing new rows as they are written.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// Only this server.
    #[arg(long)]
    pub(crate) server: Option<String>,
    /// Only this tool (prompt or resource URI).
    #[arg(long)]
    pub(crate) tool: Option<String>,
    /// Only `ok` or `error`.
    #[arg(long, value_parser = ["ok", "error"])]
    pub(crate) status: Option<String>,
    /// Only rows from this long ago on (e.g. `1h`, `30m`, `7d`), or Unix milliseconds.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// How many rows to show (the newest; at most 1000).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: u32,
}

/// `switchboard tenants …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TenantsAction {
    /// List tenants.
    List,
    /// Create a tenant.
    Add {
        /// Its name.
        name: String,
    },
    /// Delete an empty tenant with its users and keys.
    Rm {
        /// Its name.
        name: String,
    },
}

/// `switchboard users …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UsersAction {
    /// List the tenant's users.
    List,
    /// Create a user; the password comes from SWITCHBOARD_NEW_PASSWORD or stdin's first line.
    Add {
        /// Login name.
        username: String,
        /// admin, manager or user.
        #[arg(long, default_value = "user")]
        role: String,
        /// A group or server the user may use over MCP (repeatable; default: all).
        #[arg(long = "grant")]
        grants: Vec<String>,
    },
    /// Delete a user (by id) with their keys.
    Rm {
        /// The user's id.
        id: String,
    },
}

/// `switchboard keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysAction {
    /// List keys (managers: the tenant's; users: their own).
    List,
    /// Create a key; prints it once.
    Create {
        /// A label.
        name: String,
        /// For this user id (admins and managers; default: yourself).
        #[arg(long)]
        user: Option<String>,
        /// Limit it to a group or server (repeatable; default: the user's grants).
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// Lifetime in seconds (default: none).
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// Revoke a key (by id).
    Revoke {
        /// The key's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServersAction {
    /// List servers with their state.
    List,
    /// Show one server: configuration (secrets masked), owner, state, stderr tail.
    Show {
        /// Server name.
        name: String,
    },
    /// Restart a running server with its current configuration.
    Restart {
        /// Server name.
        name: String,
    },
    /// Add a server.
    Add(AddArgs),
    /// Remove a server.
    Rm {
        /// Server name.
        name: String,
    },
    /// Start a disabled server.
    Enable {
        /// Server name.
        name: String,
    },
    /// Stop a server but keep its configuration.
    Disable {
        /// Server name.
        name: String,
    },
    /// Add every server of a config file whose name is free, with a per-entry report.
    Import {
        /// The file: servers file / Claude Desktop / Cursor / Windsurf / Cline
        /// ({"mcpServers": ...}), VS Code ({"servers", "inputs"}) or MCPHub's mcp_settings.json.
        file: std::path::PathBuf,
    },
    /// Print the servers as a servers file.
    Export {
        /// Include secret values (headers, env) in clear.
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Server name.
    pub(crate) name: String,
    /// Remote server URL.
    #[arg(long, conflicts_with = "command")]
    pub(crate) url: Option<String>,
    /// Transport for a URL: streamable-http (default) or sse.
    #[arg(long = "type")]
    pub(crate) transport: Option<String>,
    /// Header for a remote server, as NAME=VALUE (repeatable).
    #[arg(long = "header")]
    pub(crate) headers: Vec<String>,
    /// Program for a stdio server.
    #[arg(long)]
    pub(crate) command: Option<String>,
    /// Argument for the program (repeatable).
    #[arg(long = "arg", allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,
    /// Environment variable for the program, as NAME=VALUE (repeatable).
    #[arg(long = "env")]
    pub(crate) env: Vec<String>,
    /// Working directory for the program.
    #[arg(long)]
    pub(crate) cwd: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long)]
    pub(crate) timeout: Option<f64>,
    /// Add it disabled.
    #[arg(long)]
    pub(crate) disabled: bool,
}

/// Which services this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// Both services in one process.
    All,
    /// Only the main service.
    Main,
    /// Only the MCP service.
    Mcp,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct CommonArgs {
    /// Claude-Desktop-style servers file: {"mcpServers": {...}, "groups": {...}}.
    #[arg(long, env = "SWITCHBOARD_SERVERS")]
    pub(crate) servers: Option<PathBuf>,
    /// Separator between server and tool names in exported names.
    #[arg(long, env = "SWITCHBOARD_SEPARATOR", default_value = "__")]
    pub(crate) separator: String,
    /// Browser origins allowed on the MCP endpoints besides loopback and same-host (comma-separated, `*` for any).
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", default_value = "")]
    pub(crate) allowed_origins: String,
    /// Host names local clients may use to reach the hub besides loopback names (comma-separated).
    #[arg(long, env = "SWITCHBOARD_ALLOWED_HOSTS", default_value = "")]
    pub(crate) allowed_hosts: String,
    /// Items per page of merged lists (0: whole lists, no cursors).
    #[arg(long, env = "SWITCHBOARD_PAGE_SIZE", default_value_t = 0)]
    pub(crate) page_size: usize,
    /// Upstream calls one tenant may have in flight; more wait (up to 30 s) for a slot, without
    /// holding up other tenants (0: no limit).
    #[arg(long, env = "SWITCHBOARD_MAX_CALLS_PER_TENANT", default_value_t = 256)]
    pub(crate) max_calls_per_tenant: usize,
    /// stdio servers (child processes) one tenant may run (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_STDIO_SERVERS_PER_TENANT",
        default_value_t = 64
    )]
    pub(crate) max_stdio_servers_per_tenant: usize,
    /// What `search_tools` on smart endpoints (`/mcp/$smart`) returns: `full` definitions, or
    /// `compact` names and one-line descriptions (clients then call `describe_tool`).
    #[arg(long, env = "SWITCHBOARD_SMART_MODE", value_enum, default_value_t = SmartModeArg::Full)]
    pub(crate) smart_mode: SmartModeArg,
    /// Rank tools by their query match only: without this, among tools that match a search
    /// about equally well, the ones this tenant's clients call more often come first (calls
    /// counted since start, plus the last 7 days of the activity log).
    #[arg(long, env = "SWITCHBOARD_NO_SMART_USAGE_PRIOR")]
    pub(crate) no_smart_usage_prior: bool,
    /// Upstream calls one client session may have in flight; more are refused at once with
    /// JSON-RPC error -32000 (0: no limit).
    #[arg(long, env = "SWITCHBOARD_MAX_CALLS_PER_SESSION", default_value_t = 32)]
    pub(crate) max_calls_per_session: usize,
    /// Upstream calls one credential (API key, a user's tokens, the admin token) may have in
    /// flight across its sessions; more are refused at once (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CALLS_PER_CREDENTIAL",
        default_value_t = 64
    )]
    pub(crate) max_calls_per_credential: usize,
    /// Bytes one client stream (legacy SSE, GET or per-POST event stream) may have queued; a
    /// client that falls further behind is disconnected and its session ended.
    #[arg(long, env = "SWITCHBOARD_STREAM_QUEUE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub(crate) stream_queue_bytes: usize,
    /// What to do with a tool whose definition (name, title, description, schemas,
    /// annotations) changed since it was approved: `hide` it until an operator approves,
    /// `warn` (log, audit, flag in the API, keep serving) or `allow`.
    #[arg(long, env = "SWITCHBOARD_ON_TOOL_CHANGE", default_value = "warn",
          value_parser = ["hide", "warn", "allow"])]
    pub(crate) on_tool_change: String,
    /// Largest message (a result) accepted from a server without its own `max_result_bytes`;
    /// a larger one fails its call with -32603.
    #[arg(long, env = "SWITCHBOARD_MAX_RESULT_BYTES", default_value_t = switchboard_core::config::DEFAULT_MAX_RESULT_BYTES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=1 << 30))]
    pub(crate) max_result_bytes: usize,
    /// Semantic tool search with a local sentence-embedding model: a directory with
    /// config.json, tokenizer.json and model.safetensors (a BERT-family model such as
    /// all-MiniLM-L6-v2), run in-process on CPU. Unset: lexical search only.
    #[arg(
        long,
        env = "SWITCHBOARD_EMBEDDING_MODEL",
        conflicts_with = "embedding_url"
    )]
    pub(crate) embedding_model: Option<PathBuf>,
    /// Semantic tool search through an OpenAI-compatible embeddings URL (POST, e.g.
    /// https://api.openai.com/v1/embeddings) instead of a local model.
    #[arg(long, env = "SWITCHBOARD_EMBEDDING_URL")]
    pub(crate) embedding_url: Option<String>,
    /// Bearer key for --embedding-url.
    #[arg(long, env = "SWITCHBOARD_EMBEDDING_KEY", hide_env_values = true)]
    pub(crate) embedding_key: Option<String>,
    /// Model name sent to --embedding-url.
    #[arg(
        long,
        env = "SWITCHBOARD_EMBEDDING_MODEL_NAME",
        default_value = "text-embedding-3-small"
    )]
    pub(crate) embedding_model_name: String,
    /// Runtime worker threads (default: half the CPUs, at least one).
    #[arg(long, env = "SWITCHBOARD_THREADS")]
    pub(crate) threads: Option<usize>,
    /// Log filter (tracing syntax), e.g. "info" or "switchboard_upstream=debug".
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info")]
    pub(crate) log: String,
    /// Log lines as text, or as one JSON object per line (for log collectors).
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    /// Directory for the hub's state.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = "./switchboard-data"
    )]
    pub(crate) data_dir: PathBuf,
    /// Address of the main service (management API, dashboard).
    #[arg(long, env = "SWITCHBOARD_MAIN_ADDR", default_value = "127.0.0.1:5010")]
    pub(crate) main_addr: SocketAddr,
    /// Address of the MCP service (/mcp, /sse).
    #[arg(long, env = "SWITCHBOARD_MCP_ADDR", default_value = "127.0.0.1:5011")]
    pub(crate) mcp_addr: SocketAddr,
    /// Which services to run.
    #[arg(long, env = "SWITCHBOARD_ROLE", value_enum, default_value = "all")]
    pub(crate) role: Role,
    /// Store: `sqlite://PATH`, `sqlite::memory:` or `postgres://…` (default: SQLite in the data dir).
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
    /// Key for secrets at rest (64 hex digits); default: generated into the data dir.
    #[arg(long, env = "SWITCHBOARD_SECRET_KEY", hide_env_values = true)]
    pub(crate) secret_key: Option<String>,
    /// Admin bearer token for the management API; default: generated on first start and printed once.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,
    /// With `--role main`: base URL of the MCP service's internal API.
    #[arg(long, env = "SWITCHBOARD_MCP_SERVICE_URL")]
    pub(crate) mcp_service_url: Option<String>,
    /// Networks API-supplied URLs may reach despite the SSRF rules (comma-separated CIDRs).
    #[arg(long, env = "SWITCHBOARD_SSRF_ALLOW_CIDRS", default_value = "")]
    pub(crate) ssrf_allow_cidrs: String,
    /// Networks API-supplied URLs may never reach (comma-separated CIDRs).
    #[arg(long, env = "SWITCHBOARD_SSRF_DENY_CIDRS", default_value = "")]
    pub(crate) ssrf_deny_cidrs: String,
    /// Host names API-supplied URLs may never reach (comma-separated; subdomains included).
    #[arg(long, env = "SWITCHBOARD_SSRF_DENY_HOSTS", default_value = "")]
    pub(crate) ssrf_deny_hosts: String,
    /// A launcher managers may use for stdio servers, e.g. "npx -y @modelcontextprotocol/*"
    /// (repeatable; env: comma-separated). Matched on the argv prefix word for word, `*`
    /// within one argument. Admins may define any stdio server; without this, managers none.
    #[arg(
        long = "stdio-allow",
        env = "SWITCHBOARD_STDIO_ALLOW",
        value_delimiter = ','
    )]
    pub(crate) stdio_allow: Vec<String>,
    /// On SIGTERM or Ctrl-C: stop accepting, give client streams back (clients reconnect,
    /// to another replica behind a load balancer), and let requests in flight finish for at
    /// most this many seconds before upstream servers are stopped.
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT", default_value_t = 10.0)]
    pub(crate) drain_timeout: f64,
    /// How often to check the store for changes made by other processes, in milliseconds.
    #[arg(
        long,
        env = "SWITCHBOARD_RECONCILE_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub(crate) reconcile_interval_ms: u64,
    /// Whether the MCP service's endpoints demand credentials. `optional` serves the default
    /// tenant to callers without one and is refused on a non-loopback address.
    #[arg(
        long,
        env = "SWITCHBOARD_MCP_AUTH",
        value_enum,
        default_value = "optional"
    )]
    pub(crate) mcp_auth: McpAuthArg,
    /// Seconds a client has to send a request's head (also while a keep-alive connection
    /// waits for its next request).
    #[arg(long, env = "SWITCHBOARD_HEADER_TIMEOUT", default_value_t = 30.0)]
    pub(crate) header_timeout: f64,
    /// Seconds a client has to send a whole request body after its head (else 408).
    #[arg(long, env = "SWITCHBOARD_BODY_TIMEOUT", default_value_t = 60.0)]
    pub(crate) body_timeout: f64,
    /// Seconds a connection may stay open with no request in progress (open streams count
    /// as requests in progress).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub(crate) idle_timeout: f64,
    /// Connections one source address may hold open per service; more are closed at once
    /// (0: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP",
        default_value_t = 256
    )]
    pub(crate) max_connections_per_ip: usize,
    /// Largest MCP request body (`/mcp`, `/messages`) in bytes; larger ones answer 413.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub(crate) max_body_bytes: usize,
    /// Public base URL of the hub (for the OAuth metadata documents); default: from `Host`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Creates (or resets the password of) the bootstrap admin user `admin` in the default
    /// tenant, so the dashboard and `/api/v1/auth/login` work without the admin token.
    #[arg(long, env = "SWITCHBOARD_ADMIN_PASSWORD", hide_env_values = true)]
    pub(crate) admin_password: Option<String>,
    /// Also accept access tokens from this OAuth issuer (its `iss`)...
    #[arg(long, env = "SWITCHBOARD_OAUTH_ISSUER", requires = "oauth_jwks_url")]
    pub(crate) oauth_issuer: Option<String>,
    /// ...signed by a key published at this JWKS URL...
    #[arg(long, env = "SWITCHBOARD_OAUTH_JWKS_URL", requires = "oauth_issuer")]
    pub(crate) oauth_jwks_url: Option<String>,
    /// ...and issued for this audience (default: the public URL + `/mcp`). The token's `sub`
    /// must be the user name of a user of this hub.
    #[arg(long, env = "SWITCHBOARD_OAUTH_AUDIENCE")]
    pub(crate) oauth_audience: Option<String>,
    /// How long audit-log rows are kept, e.g. `90d`, `12h`, `30m` (`off`: forever).
    #[arg(long, env = "SWITCHBOARD_AUDIT_RETENTION", default_value = "90d")]
    pub(crate) audit_retention: String,
    /// Requests per second and burst per credential (API key, or user for access tokens) on
    /// the MCP endpoints and the management API, as `RATE:BURST` (`off`: no limit).
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_KEY", default_value = "50:100")]
    pub(crate) rate_limit_key: String,
    /// Requests per second and burst per tenant, over all its credentials (`off`: no limit).
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LIMIT_TENANT",
        default_value = "500:1000"
    )]
    pub(crate) rate_limit_tenant: String,
    /// Serve `GET /metrics` without a credential (default: the admin token, an admin, or a
    /// credential with the `metrics` grant).
    #[arg(long, env = "SWITCHBOARD_METRICS_PUBLIC")]
    pub(crate) metrics_public: bool,
    /// Also serve `/metrics` (without a credential) on this address of its own.
    #[arg(long, env = "SWITCHBOARD_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// Record no metrics.
    #[arg(long, env = "SWITCHBOARD_NO_METRICS")]
    pub(crate) no_metrics: bool,
    /// Keep no activity log (one row per MCP operation).
    #[arg(long, env = "SWITCHBOARD_NO_ACTIVITY_LOG")]
    pub(crate) no_activity_log: bool,
    /// How long activity-log rows are kept, e.g. `7d`, `12h` (`off`: forever).
    #[arg(long, env = "SWITCHBOARD_ACTIVITY_RETENTION", default_value = "7d")]
    pub(crate) activity_retention: String,
    /// Store each operation's arguments and result in the activity log (4 KiB each, secrets
    /// redacted).
    #[arg(long, env = "SWITCHBOARD_LOG_PAYLOADS")]
    pub(crate) log_payloads: bool,
    /// Export traces (a span per MCP request and per upstream call) as OTLP/HTTP JSON to this
    /// collector base URL (`/v1/traces` is appended). The standard `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// and `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables also turn traces on; off otherwise.
    #[arg(long, value_name = "URL")]
    pub(crate) otlp_endpoint: Option<String>,
    /// Export the traces of this share of requests (0 to 1), decided from the trace id; a
    /// client's sampled flag decides for the requests that carry one (`parentbased_traceidratio`).
    /// Wins over the standard `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` variables;
    /// default: every request (`parentbased_always_on`).
    #[arg(long, env = "SWITCHBOARD_TRACE_SAMPLE_RATIO", value_name = "R")]
    pub(crate) trace_sample_ratio: Option<String>,
    /// Keys whose values are redacted from logged payloads (case-insensitive substrings).
    #[arg(
        long,
        env = "SWITCHBOARD_REDACT_KEYS",
        value_delimiter = ',',
        default_value = "token,password,secret,api_key,authorization"
    )]
    pub(crate) redact_keys: Vec<String>,
}

impl ServeArgs {
    /// The arguments of `switchboard serve <words…>` (flags and `SWITCHBOARD_*` variables, as
    /// on the command line), for building an [`crate::App`] in process.
    pub fn from_words<I, T>(words: I) -> Result<ServeArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv = ["switchboard".into(), "serve".into()]
            .into_iter()
            .chain(words.into_iter().map(Into::into));
        match Cli::try_parse_from(argv)?.command {
            Command::Serve(args) => Ok(*args),
            _ => unreachable!("the words follow `serve`"),
        }
    }
}

/// `--mcp-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum McpAuthArg {
    /// Credentials select a tenant; without one, the default tenant.
    Optional,
    /// Every request carries a credential.
    Required,
}

/// `--smart-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SmartModeArg {
    /// Each result with its full definition.
    Full,
    /// Names and one-line descriptions only.
    Compact,
}

#[derive(Debug, Args)]
pub(crate) struct StdioArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    /// Serve only this group or server (names unprefixed for a single server).
    #[arg(long, env = "SWITCHBOARD_GROUP")]
    pub(crate) group: Option<String>,
    /// Serve the smart endpoint's meta-tools (search_tools, describe_tool, call_tool) over
    /// everything, or over `--group`, instead of the tools themselves.
    #[arg(long, env = "SWITCHBOARD_SMART")]
    pub(crate) smart: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `2026-12-06T01:02:03Z  INFO target: message key=value`.
    Text,
    /// `{"ts":…,"level":"INFO","target":…,"message":…,"key":value}`.
    Json,
}
