//! `switchboard stdio`: the hub on stdin/stdout, one client, newline-delimited JSON-RPC.

use anyhow::Context;
use switchboard_hub::View;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::build_hub;
use crate::cli::StdioArgs;

pub(crate) async fn run(
    args: StdioArgs,
    servers: switchboard_core::config::ServersFile,
) -> anyhow::Result<()> {
    let groups = super::guard_processes(None)?;
    let hub = build_hub(&args.common, servers).await?;
    let view = match (&args.group, args.smart) {
        (None, false) => View::All,
        (None, true) => View::Smart(None),
        (Some(g), smart) => {
            let segment = if smart {
                format!("{}/{g}", switchboard_hub::SMART_SEGMENT)
            } else {
                g.clone()
            };
            let what = if smart { "group" } else { "group or server" };
            hub.resolve_view(Some(&segment))
                .with_context(|| format!("--group: no {what} named {g:?}"))?
        }
    };
    let session = hub.create_session(view, 1024)?;
    let mut stream = session.attach_stream().context("session stream")?;
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(msg) = stream.recv().await {
            let mut line = msg.into_bytes();
            line.push(b'\n');
            if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            l = lines.next_line() => l,
            _ = wait_for_signal() => break,
            // The client stopped reading stdout and its queue overflowed (logged).
            _ = session.closed.cancelled() => break,
        };
        let Ok(Some(line)) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let hub = hub.clone();
        let session = session.clone();
        tokio::spawn(async move {
            let out = session.sender().clone();
            if let Some(reply) = hub.handle_channel(&session, &line, &out).await {
                let _ = out.send(reply).await;
            }
        });
    }
    hub.shutdown().await;
    groups.stop_all_and_remove();
    writer.abort();
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
