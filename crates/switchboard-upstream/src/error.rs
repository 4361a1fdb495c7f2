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
    /// The reply was not JSON-RPC at all (an HTML page, say): not an MCP endpoint of this
    /// transport.
    #[error("not an MCP reply: {0}")]
    NotMcp(String),
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

impl UpstreamError {
    /// True when a Streamable HTTP `initialize` failed the way a legacy HTTP+SSE server makes
    /// it fail (HTTP 400, 404 or 405, or a reply that is not JSON-RPC), so the URL is worth a
    /// try as a legacy SSE stream (the specification's backwards-compatibility procedure).
    pub fn suggests_legacy_sse(&self) -> bool {
        matches!(
            self,
            UpstreamError::HttpStatus(400 | 404 | 405, _) | UpstreamError::NotMcp(_)
        )
    }
}

/// Most bytes of a remote body kept in an error or a log line.
pub const SNIPPET_BYTES: usize = 200;

/// A remote body as it may appear in an error or a log line: at most [`SNIPPET_BYTES`]
/// bytes (cut on a character boundary, `…` marking the cut), on one line (line breaks, tabs
/// and other control characters escaped as `\n`, `\r`, `\t`, `\u{..}`).
pub fn snippet(body: &str) -> String {
    let body = body.trim();
    let mut cut = body.len().min(SNIPPET_BYTES);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 8);
    for c in body[..cut].chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    if cut < body.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_is_one_line_of_at_most_200_bytes() {
        let page = format!("<html>\n<body>\r\n\t{}</body></html>", "é".repeat(300));
        let s = snippet(&page);
        assert!(
            !s.contains('\n') && !s.contains('\r') && !s.contains('\t'),
            "{s}"
        );
        assert!(s.starts_with("<html>\\n<body>\\r\\n\\t"), "{s}");
        assert!(s.ends_with('…'));
        assert!(s.len() <= SNIPPET_BYTES + 3 * 8, "{}", s.len());
        assert_eq!(snippet("  short  "), "short");
        assert_eq!(snippet("a\u{7}b"), "a\\u{7}b");
    }
}
