//! A client request forwarded to one upstream: a [`Call`], sent, relayed while it runs,
//! and finished into the client's reply.
//!
//! - `forward.rs`: claims, the upstream connection, the request's bytes, the relay loop.
//! - `relay.rs`: what the upstream sends while serving a call (progress, log messages, its
//!   own requests to the client).
//! - `finish.rs`: the upstream's reply made the client's (its id, URIs, errors named).
//!
//! Which eras meet is decided once per call ([`Eras`]); a call whose eras differ is bridged
//! (`crate::bridge`).

mod finish;
mod forward;
mod relay;

pub(crate) use finish::{Return, finish_call};
pub(crate) use relay::needed_capability;

use switchboard_core::jsonrpc::{Fields, Splice};
use switchboard_core::protocol::Era;
use switchboard_upstream::Connection;

use crate::merged::Entry;
use crate::route::Request;

/// A client request on its way to one upstream.
pub(crate) struct Call<'a> {
    /// The client's request, as parsed on the way in.
    pub(crate) req: &'a Request<'a>,
    /// Where it goes.
    pub(crate) route: Route<'a>,
    /// Edits to the client's bytes decided by the room (the server's own name or URI); the
    /// upstream id, progress token and `_meta` are added when the call is sent.
    pub(crate) splice: Splice,
}

/// Where a request goes and how to treat its reply.
pub(crate) struct Route<'a> {
    pub(crate) entry: &'a Entry,
    /// The upstream transport may send it again after a lost connection.
    pub(crate) retry_safe: bool,
    /// `(upstream uri, client uri)` when the hub rewrote a resource URI.
    pub(crate) uri_rewrite: Option<(String, String)>,
    /// The tool, prompt or resource URI as the upstream is asked for it (the CLIENT span's
    /// target), when the request names one.
    pub(crate) target: Option<&'a str>,
}

/// The client's era and the upstream connection's, decided once when the connection is
/// open: everything era-specific about a call follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eras {
    /// Both session-based: ids, names and progress tokens are spliced, the rest relayed.
    Session,
    /// Both stateless: the request, its `_meta`, `Mcp-Param-*` headers, `requestState` and
    /// the upstream's `input_required` pass end to end (the hub keeps no state for the call).
    Stateless,
    /// A stateless client before a session upstream: the upstream's questions become
    /// multi-round-trip requests (`bridge/mrtr.rs`), and the stateless protocol's `_meta` keys
    /// are kept from the upstream.
    StatelessClient,
    /// A session client before a stateless upstream: the upstream learns what the client can
    /// be asked, its `input_required` is answered by asking the client
    /// (`bridge/input_required.rs`), and `resultType` is kept from the client.
    StatelessUpstream,
}

impl Eras {
    /// The pairing of a client in era `client` with an upstream in era `upstream`.
    pub(crate) fn of(client: Era, upstream: Era) -> Eras {
        match (client, upstream) {
            (Era::Session, Era::Session) => Eras::Session,
            (Era::Stateless, Era::Stateless) => Eras::Stateless,
            (Era::Stateless, Era::Session) => Eras::StatelessClient,
            (Era::Session, Era::Stateless) => Eras::StatelessUpstream,
        }
    }
}

/// The era an upstream connection speaks.
pub(crate) fn era_of(conn: &Connection) -> Era {
    if conn.is_stateless() {
        Era::Stateless
    } else {
        Era::Session
    }
}

/// True when an upstream was reached with `server/discover` (the stateless revision).
pub(crate) fn is_stateless(info: &switchboard_upstream::InitInfo) -> bool {
    Era::of_version(&info.protocol_version) == Era::Stateless
}

/// The raw progress token of a request, if it asked for progress.
pub(crate) fn progress_token<'a>(params: Option<&Fields<'a>>) -> Option<&'a str> {
    let meta = Fields::parse(params?.get("_meta")?.get())?;
    meta.get("progressToken").map(|t| t.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pairing_of_eras_has_its_own_value() {
        assert_eq!(Eras::of(Era::Session, Era::Session), Eras::Session);
        assert_eq!(Eras::of(Era::Stateless, Era::Stateless), Eras::Stateless);
        assert_eq!(
            Eras::of(Era::Stateless, Era::Session),
            Eras::StatelessClient
        );
        assert_eq!(
            Eras::of(Era::Session, Era::Stateless),
            Eras::StatelessUpstream
        );
    }
}
