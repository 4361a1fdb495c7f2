//! Switchboard's domain core: the JSON-RPC envelope, the protocol's revisions, name rules, the
//! servers file. No network IO.

pub mod config;
pub mod formats;
pub mod jsonrpc;
pub mod naming;
pub mod param_headers;
pub mod protocol;
pub mod sse;
pub mod ssrf;
pub mod time;
pub mod url_secrets;
