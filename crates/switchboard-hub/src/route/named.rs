//! Requests routed by name: `tools/call` and `prompts/get` (by the exported tool or prompt
//! name), and `completion/complete` (by its `ref`, a prompt name or a resource URI). The name
//! is resolved in the merged snapshot and spliced back to the server's own.

use std::sync::Arc;

use serde_json::Value;
use switchboard_core::jsonrpc::{Envelope, Fields, Splice, code, quote};
use switchboard_upstream::ListKind;

use super::Request;
use crate::call::{Call, Route};
use crate::hub::Hub;
use crate::local;
use crate::outbox::Outbox;
use crate::reply;
use crate::session::ClientSession;
use crate::stateless;

impl Hub {
    /// `tools/call` or `prompts/get` (`kind`) for a request parsed elsewhere: the smart
    /// endpoints' `call_tool` routes the `tools/call` it stands for through here.
    pub(crate) async fn call_named(
        &self,
        session: &Arc<ClientSession>,
        text: &str,
        env: &Envelope<'_>,
        params: Option<Fields<'_>>,
        kind: ListKind,
        sink: &Outbox,
    ) -> Option<String> {
        let req = Request {
            session,
            text,
            env,
            params: params.as_ref(),
            sink,
        };
        self.named(&req, kind).await
    }

    /// `tools/call` or `prompts/get` (`kind`): the hub's own tools are answered here, the
    /// rest go to the server that owns the name.
    pub(super) async fn named(&self, req: &Request<'_>, kind: ListKind) -> Option<String> {
        let (id, session) = (req.id(), req.session);
        let Some(params) = req.params else {
            return Some(reply::invalid_params(id, "missing params"));
        };
        let Some(name) = params.get_str("name") else {
            return Some(reply::invalid_params(id, "params.name must be a string"));
        };
        if kind == ListKind::Tools && session.view.is_smart() && crate::smart::is_meta_tool(&name) {
            return crate::smart::call_meta(self, session, req.env, params, &name, req.sink).await;
        }
        if kind == ListKind::Tools && local::is_local_tool(&name) {
            return Some(reply::result(
                id,
                &local::call(self, &name).unwrap_or_default(),
            ));
        }
        let mut merged = self.inner.merged.load_full();
        if merged.resolve_name(&session.view, kind, &name).is_none() {
            // The owner may still be starting: give it the startup grace before giving up.
            self.settle_startup().await;
            merged = self.inner.merged.load_full();
        }
        let Some(target) = merged.resolve_name(&session.view, kind, &name) else {
            let sep = &self.inner.config.separator;
            if let Some(owner) = merged.unavailable_owner(&session.view, kind, &name, sep) {
                return Some(reply::unavailable(
                    id,
                    &owner.name,
                    &owner.upstream.status(),
                ));
            }
            if kind == ListKind::Tools
                && let Some((server, tool)) = merged.held_tool(&session.view, &name)
            {
                return Some(reply::error_with(
                    id,
                    code::INVALID_PARAMS,
                    &format!(
                        "tool {tool} of server {server} changed since it was approved; an \
                         operator must approve the change"
                    ),
                    r#"{"reason":"tool_changed"}"#,
                ));
            }
            let what = if kind == ListKind::Tools {
                "tool"
            } else {
                "prompt"
            };
            return Some(reply::invalid_params(
                id,
                &format!("unknown {what}: {name}"),
            ));
        };
        if kind == ListKind::Tools
            && let Some(why) = param_header_mismatch(session, target.item, params)
        {
            return Some(reply::error(
                id,
                stateless::HEADER_MISMATCH,
                &format!("Header mismatch: {why}"),
            ));
        }
        let mut splice = Splice::new();
        if target.original != name {
            splice.replace(
                req.text,
                params.get("name").expect("name was read").get(),
                quote(&target.original),
            );
        }
        let retry_safe =
            kind != ListKind::Tools || target.item.is_some_and(|t| t.read_only || t.idempotent);
        let route = Route {
            entry: target.entry,
            retry_safe,
            uri_rewrite: None,
            target: Some(&target.original),
        };
        // The usage prior counts a successful call under the tool's `/mcp` name, whichever
        // endpoint named it.
        let exported = (kind == ListKind::Tools && self.inner.smart.counts_calls())
            .then_some(target.exported)
            .flatten();
        let reply = self.forward(Call { req, route, splice }).await;
        // A stateless client's call that needs input from it first answers `input_required`
        // and ends in a retry: only the retry's result counts.
        if let (Some(name), Some(r)) = (exported, &reply)
            && crate::observe::classify(r).is_none()
            && !(session.stateless && crate::bridge::is_input_required(r))
        {
            self.inner.smart.record_call(name);
        }
        reply
    }

    /// `completion/complete`, routed by its `ref`: a prompt's name or a resource's URI.
    pub(super) async fn complete(&self, req: &Request<'_>) -> Option<String> {
        let (id, session) = (req.id(), req.session);
        let reference = req
            .params
            .and_then(|p| p.get("ref"))
            .and_then(|r| Fields::parse(r.get()));
        let Some(reference) = reference else {
            return Some(reply::invalid_params(id, "params.ref must be an object"));
        };
        let merged = self.inner.merged.load_full();
        let kind = reference.get_str("type").unwrap_or_default();
        let (field, target) = match kind.as_ref() {
            "ref/prompt" => {
                let name = reference.get_str("name").unwrap_or_default();
                (
                    "name",
                    merged
                        .resolve_name(&session.view, ListKind::Prompts, &name)
                        .map(|t| (t, name)),
                )
            }
            "ref/resource" => {
                let uri = reference.get_str("uri").unwrap_or_default();
                (
                    "uri",
                    merged.resolve_uri(&session.view, &uri).map(|t| (t, uri)),
                )
            }
            other => {
                return Some(reply::invalid_params(
                    id,
                    &format!("unknown ref type {other:?}"),
                ));
            }
        };
        let Some((target, asked)) = target else {
            return Some(reply::invalid_params(
                id,
                &format!("unknown {field} in ref"),
            ));
        };
        let mut splice = Splice::new();
        if target.original != asked {
            splice.replace(
                req.text,
                reference.get(field).expect("field was read").get(),
                quote(&target.original),
            );
        }
        let route = Route {
            entry: target.entry,
            retry_safe: true,
            uri_rewrite: None,
            target: None,
        };
        self.forward(Call { req, route, splice }).await
    }
}

/// For a stateless HTTP client's `tools/call`: why its `Mcp-Param-*` headers disagree with
/// the arguments, given the tool's `x-mcp-header` declarations.
fn param_header_mismatch(
    session: &ClientSession,
    tool: Option<&switchboard_upstream::Item>,
    params: &Fields<'_>,
) -> Option<String> {
    use switchboard_core::param_headers as ph;
    let sent = session.param_headers.as_ref()?;
    let raw = tool?.raw.get();
    if !raw.contains("x-mcp-header") {
        return None;
    }
    let tool: Value = serde_json::from_str(raw).ok()?;
    let declared = ph::declared(tool.get("inputSchema")?);
    if declared.is_empty() {
        return None;
    }
    let arguments: Value = params
        .get("arguments")
        .and_then(|a| serde_json::from_str(a.get()).ok())
        .unwrap_or(Value::Null);
    ph::mismatch(&declared, &arguments, |name| {
        sent.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    })
}
