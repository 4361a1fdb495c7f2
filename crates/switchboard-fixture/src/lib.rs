//! Switchboard's fixture MCP server: a real upstream speaking the protocol over
//! stdio, Streamable HTTP, legacy HTTP+SSE, plus a hand-written raw HTTP server
//! for byte-fidelity tests.
//!
//! The MCP behaviour lives in [`Fixture`] (an `rmcp` server handler); the
//! transport modules only decide how bytes reach it:
//!
//! * [`serve_stdio`] — newline-delimited JSON on stdin/stdout (the binary's
//!   `stdio` mode);
//! * [`serve_http`] / [`spawn_http`] — rmcp's Streamable HTTP service at `/mcp`;
//! * [`serve_sse`] / [`spawn_sse`] — our own 2024-11-05 HTTP+SSE transport at
//!   `/sse` + `/messages`, bridged to one rmcp server per SSE stream;
//! * [`spawn_duplex`] — an in-memory pipe, for tests that need no sockets;
//! * [`spawn_raw_http`] — a scripted Streamable HTTP endpoint that does not
//!   use rmcp's typed model at all and records every request body.
//!
//! [`conformance`] is a separate server (the binary's `--conformance` mode)
//! exposing what the official MCP conformance suite's scenarios call.

pub mod conformance;
mod handle;
mod http;
mod options;
mod raw;
mod server;
mod sse;
mod stdio;
mod tools;

pub use handle::{FixtureServer, FixtureStats, SeenRequest};
pub use http::{serve_http, spawn_http};
pub use options::FixtureOptions;
pub use raw::{RawResponses, spawn_raw_http};
pub use server::{Fixture, spawn_duplex};
pub use sse::{serve_sse, spawn_sse};
pub use stdio::serve_stdio;
