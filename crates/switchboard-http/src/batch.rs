//! JSON-RPC batches, for the revisions that allow them (2024-11-05 and 2025-03-26; later
//! revisions removed them and get -32600).
//!
//! Each element is handled on its own, concurrently, as if it had come alone; progress and
//! server-to-client requests caused by them go on the session's stream. The answer is one
//! array with a response for every request of the batch, in no promised order (JSON-RPC lets
//! the client match them by id).

use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_core::jsonrpc::{code, error_message};
use switchboard_hub::{ClientSession, Hub};

/// Revisions whose sessions may send batches.
const BATCH_REVISIONS: [&str; 2] = ["2024-11-05", "2025-03-26"];

/// True when `text` is a JSON array (a batch), judged by its first significant byte.
pub(crate) fn is_batch(text: &str) -> bool {
    text.trim_start().starts_with('[')
}

/// Why a batch was refused, as a JSON-RPC error message (id null).
pub(crate) struct Refused(pub String);

/// Handles batch `text` on `session`: `Ok(None)` when it held no requests (nothing to answer),
/// `Ok(Some(array))` otherwise.
pub(crate) async fn run(
    hub: &Hub,
    session: &Arc<ClientSession>,
    text: &str,
) -> Result<Option<String>, Refused> {
    let allowed = session
        .client_info()
        .is_some_and(|c| BATCH_REVISIONS.contains(&c.protocol_version.as_str()));
    if !allowed {
        return Err(Refused(error_message(
            "null",
            code::INVALID_REQUEST,
            "batches are allowed only in protocol revisions 2024-11-05 and 2025-03-26",
            None,
        )));
    }
    let elements: Vec<&RawValue> = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(Refused(error_message(
                "null",
                code::PARSE_ERROR,
                &format!("Parse error: {e}"),
                None,
            )));
        }
    };
    if elements.is_empty() {
        return Err(Refused(error_message(
            "null",
            code::INVALID_REQUEST,
            "an empty batch",
            None,
        )));
    }
    let sink = session.sender().clone();
    let replies = futures_util::future::join_all(
        elements
            .iter()
            .map(|element| hub.handle(session, element.get(), &sink)),
    )
    .await;
    let replies: Vec<String> = replies.into_iter().flatten().collect();
    if replies.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!("[{}]", replies.join(","))))
}
