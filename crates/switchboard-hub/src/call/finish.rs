//! The end of a forwarded call: the upstream's reply made the client's, with the client's id
//! back in place, rewritten URIs restored, what the client's era does not know removed, and
//! failures named by server.

use switchboard_core::jsonrpc::{Envelope, Fields, Splice, array_items, quote, remove_member};
use switchboard_upstream::UpstreamError;

use super::Eras;
use crate::reply;

/// How a call's reply goes back to the client.
pub(crate) struct Return<'a> {
    /// The client's request id, raw.
    pub(crate) id: &'a str,
    /// The server that served it (named in errors).
    pub(crate) server: &'a str,
    pub(crate) eras: Eras,
    /// `(upstream uri, client uri)` when the hub rewrote a resource URI.
    pub(crate) uri_rewrite: Option<&'a (String, String)>,
}

/// The client's reply for a finished upstream call: its id back in place, errors named.
pub(crate) fn finish_call(outcome: Result<String, UpstreamError>, back: &Return<'_>) -> String {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(e) => return reply::upstream_failed(back.id, back.server, &e),
    };
    let restored = restore_reply(&reply, back.id, back.uri_rewrite);
    if back.eras == Eras::StatelessUpstream {
        // A session-based client does not know `resultType`.
        return strip_result_type(restored);
    }
    restored
}

/// Puts the client's id back into the upstream's reply, and rewritten URIs back into it.
fn restore_reply(reply: &str, id: &str, uri_rewrite: Option<&(String, String)>) -> String {
    let Ok(env) = Envelope::parse(reply) else {
        return reply::internal(id, "the server sent an unreadable reply");
    };
    let Some(raw) = env.id else {
        return reply::internal(id, "the server replied without an id");
    };
    let mut sp = Splice::new();
    sp.replace(reply, raw.get(), id);
    if let (Some((original, exported)), Some(result)) = (uri_rewrite, env.result)
        && let Some(fields) = Fields::parse(result.get())
        && let Some(contents) = fields.get("contents").and_then(|c| array_items(c.get()))
    {
        for item in contents {
            if let Some(f) = Fields::parse(item.get())
                && let Some(u) = f.get("uri")
                && f.get_str("uri").as_deref() == Some(original.as_str())
            {
                sp.replace(reply, u.get(), quote(exported));
            }
        }
    }
    sp.apply(reply)
}

fn strip_result_type(reply: String) -> String {
    let stripped = Envelope::parse(&reply).ok().and_then(|env| {
        let result = env.result?.get();
        remove_member(&reply, result, "resultType")
    });
    stripped.unwrap_or(reply)
}
