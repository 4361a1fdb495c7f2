//! The conformance server over the legacy HTTP+SSE transport (2024-11-05): the fixture's
//! SSE bridge (`crate::sse`) with one conformance server per session.

use axum::Router;
use rmcp::{service::serve_server_with_ct, transport::async_rw::AsyncRwTransport};
use tokio::io::DuplexStream;
use tokio_util::sync::CancellationToken;

use super::ConformanceServer;

/// Buffer of each direction of a session's in-memory pipe.
const PIPE_BUFFER: usize = 256 * 1024;

/// Starts one conformance session on an in-memory pipe; returns the client end.
fn open_session(server: &ConformanceServer, ct: CancellationToken) -> DuplexStream {
    let (client_end, server_end) = tokio::io::duplex(PIPE_BUFFER);
    let (read, write) = tokio::io::split(server_end);
    let handler = server.new_session();
    tokio::spawn(async move {
        let transport = AsyncRwTransport::new_server(read, write);
        match serve_server_with_ct(handler, transport, ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "sse session ended before initialize"),
        }
    });
    client_end
}

/// The `/sse` + `/messages` routes for the conformance server.
pub(super) fn router(server: ConformanceServer, ct: CancellationToken) -> Router {
    crate::sse::session_router(
        std::sync::Arc::new(move |session_ct| open_session(&server, session_ct)),
        ct,
    )
}
