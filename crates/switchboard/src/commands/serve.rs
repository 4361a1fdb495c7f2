//! `switchboard serve`: the main service and the MCP service, until SIGINT or SIGTERM. The
//! wiring is [`crate::App`]; this installs the signal handlers, builds the app and serves.

use anyhow::Context;
use switchboard_core::config::ServersFile;

use crate::App;
use crate::cli::ServeArgs;

pub(crate) async fn run(args: ServeArgs, servers: ServersFile) -> anyhow::Result<()> {
    // Caught from the start: a SIGTERM while starting up drains as soon as serving begins
    // instead of killing the process half-started.
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    let app = App::build(args, servers).await?;
    app.serve(async move { signals.recv().await }).await
}

/// SIGTERM and SIGINT, caught once installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
