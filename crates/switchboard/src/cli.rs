//! Command-line interface: every flag also reads a `SWITCHBOARD_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Switchboard: one MCP endpoint in front of many MCP servers.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the hub: the main service and the MCP service.
    Serve(ServeArgs),
    /// Run the hub on stdin/stdout, for a desktop client's config.
    Stdio(StdioArgs),
    /// Check a servers file and exit (0 when valid, 2 when not).
    Validate(CommonArgs),
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

#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Claude-Desktop-style servers file: {"mcpServers": {...}, "groups": {...}}.
    #[arg(long, env = "SWITCHBOARD_SERVERS")]
    pub(crate) servers: Option<PathBuf>,
    /// Separator between server and tool names in exported names.
    #[arg(long, env = "SWITCHBOARD_SEPARATOR", default_value = "__")]
    pub(crate) separator: String,
    /// Log filter (tracing syntax), e.g. "info" or "switchboard_upstream=debug".
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info")]
    pub(crate) log: String,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    /// Directory for the hub's state.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "./switchboard-data")]
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
}

#[derive(Debug, Args)]
pub(crate) struct StdioArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    /// Serve only this group or server (names unprefixed for a single server).
    #[arg(long, env = "SWITCHBOARD_GROUP")]
    pub(crate) group: Option<String>,
}
