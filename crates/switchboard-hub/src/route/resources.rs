//! Requests routed by resource URI: `resources/read`, `resources/subscribe` and
//! `resources/unsubscribe`, and the session subscriptions behind the last two (counted
//! across clients, since clients share an upstream connection).

use switchboard_core::jsonrpc::{Envelope, Splice, quote};

use super::Request;
use crate::call::{Call, Route};
use crate::hub::Hub;
use crate::reply;
use crate::session::ClientSession;

impl Hub {
    /// `resources/read`, `resources/subscribe` or `resources/unsubscribe`.
    pub(super) async fn by_uri(&self, req: &Request<'_>) -> Option<String> {
        let (id, session) = (req.id(), req.session);
        let Some(params) = req.params else {
            return Some(reply::invalid_params(id, "missing params"));
        };
        let Some(uri) = params.get_str("uri") else {
            return Some(reply::invalid_params(id, "params.uri must be a string"));
        };
        let merged = self.inner.merged.load_full();
        let Some(target) = merged.resolve_uri(&session.view, &uri) else {
            return Some(reply::resource_not_found(id, &uri, session.era()));
        };
        let method = req.method();
        if method != "resources/read"
            && let Ok(conn) = target.entry.upstream.connection()
            && conn.is_stateless()
        {
            // A stateless upstream has no subscribe call: the hub's listen request to it
            // carries every URI its clients subscribed to.
            {
                let mut subs = session.subscriptions.lock().expect("subs lock");
                if method == "resources/subscribe" {
                    subs.insert(uri.to_string());
                } else {
                    subs.remove(uri.as_ref());
                }
            }
            let server = target.entry.name.clone();
            conn.watch_resources(self.subscribed_originals(&server));
            return Some(reply::result(id, "{}"));
        }
        if method == "resources/unsubscribe" && self.others_subscribed(session, &uri) {
            session
                .subscriptions
                .lock()
                .expect("subs lock")
                .remove(uri.as_ref());
            return Some(reply::result(id, "{}"));
        }
        let mut splice = Splice::new();
        let rewritten = target.original != uri;
        if rewritten {
            splice.replace(
                req.text,
                params.get("uri").expect("uri was read").get(),
                quote(&target.original),
            );
        }
        let uri_rewrite = rewritten.then(|| (target.original.clone(), uri.to_string()));
        let route = Route {
            entry: target.entry,
            retry_safe: true,
            uri_rewrite,
            target: Some(&target.original),
        };
        let reply = self.forward(Call { req, route, splice }).await?;
        if method != "resources/read" {
            let ok = Envelope::parse(&reply).is_ok_and(|e| e.result.is_some());
            if ok {
                let mut subs = session.subscriptions.lock().expect("subs lock");
                if method == "resources/subscribe" {
                    subs.insert(uri.to_string());
                } else {
                    subs.remove(uri.as_ref());
                }
            }
        }
        Some(reply)
    }

    /// True when sessions other than `session` hold a subscription to `uri` (subscriptions
    /// on a shared upstream connection are reference counted across clients).
    fn others_subscribed(&self, session: &ClientSession, uri: &str) -> bool {
        self.sessions_subscribed_to(uri)
            > usize::from(
                session
                    .subscriptions
                    .lock()
                    .expect("subs lock")
                    .contains(uri),
            )
    }

    /// The upstream URIs of `server` that some session subscribed to.
    pub(crate) fn subscribed_originals(&self, server: &str) -> Vec<String> {
        let merged = self.inner.merged.load_full();
        let mut out = Vec::new();
        for s in self.all_sessions() {
            let subs: Vec<String> = s
                .subscriptions
                .lock()
                .expect("subs lock")
                .iter()
                .cloned()
                .collect();
            for uri in subs {
                if let Some(t) = merged.resolve_uri(&s.view, &uri)
                    && t.entry.name == server
                {
                    out.push(t.original);
                }
            }
        }
        out
    }

    /// How many sessions subscribed to `uri`.
    pub(crate) fn sessions_subscribed_to(&self, uri: &str) -> usize {
        self.all_sessions()
            .iter()
            .filter(|s| s.subscriptions.lock().expect("subs lock").contains(uri))
            .count()
    }
}
