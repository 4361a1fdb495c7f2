//! The `switchboard` crate's library: the command line, the commands, and [`App`], the wiring
//! of a serving hub that `switchboard serve` runs (and that tests may build in process).

pub mod app;
pub mod cli;
pub mod commands;
mod logjson;

pub use app::App;

pub use switchboard_core::url_secrets::percent_encode as url_encode;
