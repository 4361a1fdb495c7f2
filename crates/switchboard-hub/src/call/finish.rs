//! The end of a forwarded call: the upstream's reply made the client's, with the client's id
//! back in place, rewritten URIs restored, what the client's era does not know removed, and
//! failures named by server.

use switchboard_core::jsonrpc::{Envelope, Fields, Splice, array_items, member_span, quote};
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
    // A session-based client does not know `resultType`.
    let strip_result_type = back.eras == Eras::StatelessUpstream;
    restore_reply(&reply, back.id, back.uri_rewrite, strip_result_type)
}

/// Puts the client's id back into the upstream's reply, and rewritten URIs back into it;
/// `strip_result_type` also takes the result's `resultType` out. One parse, one copy.
fn restore_reply(
    reply: &str,
    id: &str,
    uri_rewrite: Option<&(String, String)>,
    strip_result_type: bool,
) -> String {
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
    if strip_result_type
        && let Some(result) = env.result
        && let Some(member) = member_span(reply, result.get(), "resultType")
    {
        sp.replace(reply, &reply[member], "");
    }
    sp.apply(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back(eras: Eras) -> Return<'static> {
        Return {
            id: r#""c-1""#,
            server: "fx",
            eras,
            uri_rewrite: None,
        }
    }

    #[test]
    fn a_reply_gets_the_client_id_and_a_session_client_loses_result_type() {
        let up = r#"{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete","content":[]}}"#;
        assert_eq!(
            finish_call(Ok(up.into()), &back(Eras::Session)),
            r#"{"jsonrpc":"2.0","id":"c-1","result":{"resultType":"complete","content":[]}}"#
        );
        assert_eq!(
            finish_call(Ok(up.into()), &back(Eras::StatelessUpstream)),
            r#"{"jsonrpc":"2.0","id":"c-1","result":{"content":[]}}"#
        );
        let last = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"resultType":"complete"}}"#;
        assert_eq!(
            finish_call(Ok(last.into()), &back(Eras::StatelessUpstream)),
            r#"{"jsonrpc":"2.0","id":"c-1","result":{"content":[]}}"#
        );
    }

    #[test]
    fn rewritten_uris_go_back_to_the_clients() {
        let rewrite = (
            "file:///a".to_string(),
            "switchboard://fx/file:///a".to_string(),
        );
        let back = Return {
            uri_rewrite: Some(&rewrite),
            ..back(Eras::Session)
        };
        let up =
            r#"{"jsonrpc":"2.0","id":7,"result":{"contents":[{"uri":"file:///a","text":"x"}]}}"#;
        assert_eq!(
            finish_call(Ok(up.into()), &back),
            r#"{"jsonrpc":"2.0","id":"c-1","result":{"contents":[{"uri":"switchboard://fx/file:///a","text":"x"}]}}"#
        );
    }
}
