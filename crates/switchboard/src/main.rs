//! The `switchboard` binary: parses the command line and hands off to a command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = switchboard::cli::Cli::parse();
    switchboard::commands::run(cli)
}
