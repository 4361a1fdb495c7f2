//! Errors from talking to an upstream server, classified for the router.

use std::time::Duration;

/// Why an upstream request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The server is not connected (starting, restarting, failed or disabled).
    #[error("server is not connected ({0})")]
    NotConnected(String),
    /// The connection ended while the request was in flight.
    #[error("connection to the server closed: {0}")]
    Closed(String),
    /// No answer within the request timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The transport failed (spawn, network).
    #[error("{0}")]
    Transport(String),
    /// The server answered with an HTTP error status.
    #[error("{1}")]
    HttpStatus(u16, String),
    /// The server answered something that is not MCP.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A message from the server is larger than its `max_result_bytes`.
    #[error("result from server {server} is {bytes} bytes, over the limit of {limit}")]
    ResultTooLarge {
        /// The server's name.
        server: String,
        /// How large the message is (at least; reading stopped at the limit when it could).
        bytes: usize,
        /// The server's limit.
        limit: usize,
    },
    /// The upstream session expired and the request could not safely be retried.
    #[error(
        "the server's session expired and the request was not retried because it may not be idempotent"
    )]
    SessionExpired,
}
