//! The `switchboard-fixture` binary: runs the fixture MCP server over stdio,
//! Streamable HTTP or the legacy HTTP+SSE transport.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchboard_fixture::{FixtureOptions, serve_http, serve_sse, serve_stdio};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-fixture",
    version,
    about = "Switchboard's MCP test/benchmark server"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serve one session over stdin/stdout.
    Stdio {
        #[command(flatten)]
        common: Common,
    },
    /// Serve Streamable HTTP at /mcp.
    Http {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        /// Answer with application/json instead of SSE (stateless: no sessions).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Serve the legacy HTTP+SSE transport at /sse and /messages.
    Sse {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// serverInfo.name reported at initialize.
    #[arg(long, default_value = "fixture")]
    name: String,
    /// Number of extra generated tools tool_0 .. tool_{K-1}.
    #[arg(long, default_value_t = 0)]
    tools: usize,
    /// Prefix for every tool name.
    #[arg(long)]
    prefix: Option<String>,
    /// Serve the conformance server instead (what the official MCP
    /// conformance suite calls); the options above are then ignored.
    #[arg(long)]
    conformance: bool,
}

impl Common {
    fn options(self) -> FixtureOptions {
        FixtureOptions {
            name: self.name,
            tools: self.tools,
            tool_prefix: self.prefix,
            // A separate process may die on request.
            allow_exit: true,
            json_response: false,
        }
    }
}

/// Binds `addr` and prints the single `listening <url>` line.
async fn bind(addr: &str, path: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    let local = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening http://{local}{path}")?;
    stdout.flush()?;
    Ok(listener)
}

/// A token cancelled on Ctrl-C / SIGTERM.
fn shutdown_token() -> CancellationToken {
    let ct = CancellationToken::new();
    let trigger = ct.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        trigger.cancel();
    });
    ct
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    match Cli::parse().mode {
        Mode::Stdio { common } if common.conformance => {
            switchboard_fixture::conformance::serve_stdio().await?;
            std::process::exit(0);
        }
        Mode::Http { addr, common, .. } if common.conformance => {
            let listener = bind(&addr, "/mcp").await?;
            switchboard_fixture::conformance::serve_http(listener, shutdown_token()).await?;
        }
        Mode::Sse { addr, common } if common.conformance => {
            let listener = bind(&addr, "/sse").await?;
            switchboard_fixture::conformance::serve_sse(listener, shutdown_token()).await?;
        }
        Mode::Stdio { common } => {
            serve_stdio(common.options()).await?;
            // Don't wait for a blocked stdin reader on the runtime's way out.
            std::process::exit(0);
        }
        Mode::Http { addr, json, common } => {
            let opts = common.options().with_json_response(json);
            let listener = bind(&addr, "/mcp").await?;
            serve_http(listener, opts, shutdown_token()).await?;
        }
        Mode::Sse { addr, common } => {
            let listener = bind(&addr, "/sse").await?;
            serve_sse(listener, common.options(), shutdown_token()).await?;
        }
    }
    Ok(())
}
