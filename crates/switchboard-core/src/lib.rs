//! Switchboard's domain core: the JSON-RPC envelope, name rules, the servers file. No IO.

pub mod config;
pub mod formats;
pub mod jsonrpc;
pub mod naming;
pub mod param_headers;
pub mod sse;
pub mod ssrf;
pub mod url_secrets;
