//! The `switchboard` binary: parses the command line and hands off to a command.

mod cli;
mod commands;
mod logjson;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    commands::run(cli)
}
