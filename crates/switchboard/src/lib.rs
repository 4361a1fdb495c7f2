//! The `switchboard` crate's library: the command line, the commands, and [`App`], the wiring
//! of a serving hub that `switchboard serve` runs (and that tests may build in process).

pub mod app;
pub mod cli;
pub mod commands;
mod logjson;

pub use app::App;

/// Percent-encodes `s` for a URL path segment or query value: everything but RFC 3986's
/// unreserved characters becomes `%XX`.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
