//! `switchboard serve`: the main service and the MCP service, until SIGINT or SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::build_hub;
use crate::cli::{Role, ServeArgs};

pub(crate) async fn run(args: ServeArgs, servers: switchboard_core::config::ServersFile) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data directory {}", args.data_dir.display()))?;
    // Bind before starting any upstream, so a taken port fails fast and leaves nothing behind.
    let main = match args.role {
        Role::All | Role::Main => Some(bind(args.main_addr, "main").await?),
        Role::Mcp => None,
    };
    let mcp = match args.role {
        Role::All | Role::Mcp => Some(bind(args.mcp_addr, "MCP").await?),
        Role::Main => None,
    };
    let hub = build_hub(&args.common, servers).await?;
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(l) = main {
        tracing::info!(message = "Main service listening.", addr = %l.local_addr()?);
        tasks.spawn(switchboard_http::serve(l, switchboard_http::main_router(hub.clone()), shutdown.clone()));
    }
    if let Some(l) = mcp {
        tracing::info!(message = "MCP service listening.", addr = %l.local_addr()?, mcp = %format!("http://{}/mcp", l.local_addr()?));
        tasks.spawn(switchboard_http::serve(l, switchboard_http::mcp_router(hub.clone()), shutdown.clone()));
    }
    tokio::select! {
        _ = wait_for_signal() => tracing::info!(message = "Shutting down."),
        Some(r) = tasks.join_next() => {
            if let Ok(Err(e)) = r {
                tracing::error!(message = "A listener failed.", error = %e);
            }
        }
    }
    shutdown.cancel();
    // Stop every upstream (stdio process groups included) before the process exits.
    hub.shutdown().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} }).await;
    Ok(())
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} for the {what} service"))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
