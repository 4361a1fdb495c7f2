//! Bridges between the eras: what the hub does so a client and an upstream that speak
//! different revisions of MCP (or a stateless client that wants notifications) still meet.
//!
//! - `mrtr.rs`: a stateless client before a session upstream; the upstream's mid-call
//!   questions become multi-round-trip requests.
//! - `input_required.rs`: a session client before a stateless upstream; the upstream's
//!   `input_required` questions are asked of the client for real.
//! - `listen.rs`: `subscriptions/listen`, a stateless client's notification stream.

mod input_required;
pub(crate) use input_required::is_input_required;
mod listen;
pub(crate) mod mrtr;
