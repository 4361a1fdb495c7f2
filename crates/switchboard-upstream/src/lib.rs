//! Switchboard's upstream side: one [`Upstream`] per configured server, owning its connection.
//!
//! A [`Connection`] is a closed enum over the three client transports (stdio, Streamable HTTP,
//! legacy HTTP+SSE). Each multiplexes many concurrent requests from many downstream clients over
//! one upstream session, remapping JSON-RPC ids so replies never cross. The [`Upstream`]
//! supervisor connects, initializes, fetches the catalog, restarts with backoff, and reports
//! events to the hub.

mod catalog;
mod connection;
pub mod definition;
mod error;
mod http;
mod mux;
mod pgroups;
mod sse;
mod stateless;
mod stdio;
mod supervisor;

pub use catalog::{Catalog, Item, ListKind, fetch_list};
pub use connection::{
    CallEvent, CallOptions, Connection, InitInfo, client_capabilities, http_client,
    http_client_builder,
};
pub use error::{SNIPPET_BYTES, UpstreamError, snippet};
pub use mux::{INCOMING_QUEUE, Incoming, IncomingRx, IncomingTx, incoming_channel};
pub use pgroups::{ProcessGroups, become_subreaper};
pub use stdio::StderrRing;
pub use supervisor::{HubEvent, State, Status, Upstream, UpstreamOptions};

static DEFAULT_MAX_RESULT_BYTES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(switchboard_core::config::DEFAULT_MAX_RESULT_BYTES);

/// Sets the process-wide result size limit for servers without their own `max_result_bytes`
/// (`--max-result-bytes`). Connections opened afterwards use it.
pub fn set_default_max_result_bytes(bytes: usize) {
    DEFAULT_MAX_RESULT_BYTES.store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The result size limit of `spec`: its own, else the process-wide default.
pub fn max_result_bytes(spec: &switchboard_core::config::ServerSpec) -> usize {
    spec.max_result_bytes
        .unwrap_or_else(|| DEFAULT_MAX_RESULT_BYTES.load(std::sync::atomic::Ordering::Relaxed))
}

/// The protocol revision the hub asks for when it initializes a legacy upstream.
pub const CLIENT_PROTOCOL_VERSION: &str = "2025-11-25";
