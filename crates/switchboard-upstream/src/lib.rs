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
mod modern;
mod mux;
mod pgroups;
mod sse;
mod stdio;
mod supervisor;

pub use catalog::{Catalog, Item, ListKind, fetch_list};
pub use connection::{
    CallEvent, CallOptions, Connection, InitInfo, client_capabilities, http_client,
    http_client_builder,
};
pub use error::{SNIPPET_BYTES, UpstreamError, snippet};
pub use mux::Incoming;
pub use pgroups::{ProcessGroups, become_subreaper};
pub use stdio::StderrRing;
pub use supervisor::{HubEvent, State, Status, Upstream, UpstreamOptions};

/// The protocol revision the hub asks for when it initializes a legacy upstream.
pub const CLIENT_PROTOCOL_VERSION: &str = "2025-11-25";
