//! The Tasks extension's `tasks/get`, `tasks/update` and `tasks/cancel` (2026-07-28): routed
//! to the server of a single-server endpoint when that server speaks the stateless protocol.
//! A task id names no server, so merged endpoints do not offer the extension (see
//! `server/discover`).

use switchboard_core::jsonrpc::Splice;

use super::Request;
use crate::call::{Call, Route, is_stateless};
use crate::hub::Hub;
use crate::reply;
use crate::view::View;

impl Hub {
    /// One `tasks/*` request.
    pub(super) async fn task(&self, req: &Request<'_>) -> Option<String> {
        let merged = self.inner.merged.load_full();
        let entry = match &req.session.view {
            View::Server(s) => merged.entry(s),
            _ => None,
        };
        let Some(entry) = entry.filter(|e| e.upstream.info().is_some_and(|i| is_stateless(&i)))
        else {
            return Some(reply::method_not_found(
                req.id(),
                &format!(
                    "method not found: {} (the Tasks extension is offered only on a single stateless server's endpoint)",
                    req.method()
                ),
            ));
        };
        let route = Route {
            entry,
            retry_safe: req.method() == "tasks/get",
            uri_rewrite: None,
            target: None,
        };
        self.forward(Call {
            req,
            route,
            splice: Splice::new(),
        })
        .await
    }
}
