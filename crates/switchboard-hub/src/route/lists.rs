//! The merged lists (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`), paged with hub cursors, and tool search for the REST API.

use switchboard_core::jsonrpc::Fields;
use switchboard_upstream::ListKind;

use crate::hub::Hub;
use crate::reply;
use crate::session::ClientSession;
use crate::view::View;

impl Hub {
    /// One page of a merged list as `session` sees it (the whole list when pages are off).
    pub(super) async fn list(
        &self,
        session: &ClientSession,
        id: &str,
        params: Option<&Fields<'_>>,
        kind: ListKind,
    ) -> String {
        let cursor = params
            .and_then(|p| p.get("cursor"))
            .filter(|c| c.get() != "null");
        self.settle_startup().await;
        let merged = self.inner.merged.load();
        let page_size = self.config().page_size;
        let from = match cursor {
            None => 0,
            Some(raw) => match serde_json::from_str::<&str>(raw.get())
                .ok()
                .and_then(|c| parse_cursor(c, merged.generation))
            {
                Some(offset) => offset,
                None => {
                    let msg = "invalid or stale cursor: the list changed since it was issued; list again from the start";
                    return reply::invalid_params(id, msg);
                }
            },
        };
        let rendered = merged.rendered(&session.view, kind);
        if page_size == 0 && from == 0 {
            return reply::result(id, &rendered.full);
        }
        let size = if page_size == 0 {
            rendered.len()
        } else {
            page_size
        };
        let to = (from + size).min(rendered.len());
        let next = (to < rendered.len()).then(|| format!("sb1.{:x}.{:x}", merged.generation, to));
        reply::result(id, &rendered.page(from, to, next.as_deref()))
    }

    /// Tool search over what `view` shows (`search_tools` on smart endpoints, the REST API's
    /// `/api/v1/tools/search`), timed for the observer.
    pub async fn search_tools(
        &self,
        view: &View,
        query: &str,
        limit: usize,
        server: Option<&str>,
    ) -> Result<Vec<crate::smart::Found>, crate::smart::SearchError> {
        let started = std::time::Instant::now();
        let merged = self.inner.merged.load_full();
        let qvec = self.inner.smart.query_vector(&merged, query).await;
        let found = self
            .inner
            .smart
            .search(&merged, view, query, limit, server, qvec.as_deref());
        if let (Some(o), Ok(_)) = (self.inner.observed.get(), &found) {
            let mode = if qvec.is_some() { "hybrid" } else { "lexical" };
            o.observer.tool_search(&o.tenant, mode, started.elapsed());
        }
        found
    }
}

/// Reads a hub cursor (`sb1.<generation>.<offset>`), valid only for the snapshot it came from.
fn parse_cursor(cursor: &str, generation: u64) -> Option<usize> {
    let mut parts = cursor.strip_prefix("sb1.")?.split('.');
    let g = u64::from_str_radix(parts.next()?, 16).ok()?;
    let offset = usize::from_str_radix(parts.next()?, 16).ok()?;
    (g == generation && parts.next().is_none()).then_some(offset)
}
