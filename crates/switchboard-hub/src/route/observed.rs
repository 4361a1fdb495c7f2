//! A client request timed, traced as a SERVER span and reported to the hub's observer: the
//! one place a request's outcome is recorded. Taken only when an observer or a span sink is
//! set; otherwise [`Hub::handle`] goes straight to the request's room. A request the sampler
//! leaves out, with no observer, only runs inside its span's context (so upstreams get it):
//! nothing is located, classified or built for it.

use switchboard_core::jsonrpc::Fields;
use switchboard_upstream::ListKind;

use super::Request;
use crate::hub::Hub;
use crate::local;
use crate::session::ClientSession;
use crate::stateless;

/// What is listening: the observer, the span sink, or both.
pub(super) type Seen<'a> = (
    Option<&'a crate::observe::Observed>,
    Option<&'a crate::trace::Traced>,
);

impl Hub {
    /// [`Hub::handle_request`], timed and reported to the hub's observer and traced as a
    /// SERVER span.
    pub(super) async fn observed_request(
        &self,
        (observed, traced): Seen<'_>,
        req: &Request<'_>,
    ) -> Option<String> {
        let (session, env, params) = (req.session, req.env, req.params);
        let span = traced.map(|t| crate::trace::start_server(t, params));
        let recording = span
            .as_ref()
            .is_some_and(|(current, _)| current.ctx.sampled);
        if observed.is_none() && !recording {
            // Unsampled and unobserved: only the context travels on to the upstreams.
            let handling = self.handle_request(req);
            return match span {
                Some((current, _)) => crate::trace::in_span(current, handling).await,
                None => handling.await,
            };
        }
        let started = std::time::Instant::now();
        let at = std::time::SystemTime::now();
        let _in_flight = observed.map(|_| crate::observe::InFlight::enter(&self.inner.in_flight));
        let method = env.method();
        let (server, target, known_target) = self.locate(session, method, params);
        let trace_id = match (observed, &span) {
            (None, _) => None,
            (Some(_), Some((current, _))) => Some(crate::trace::hex(&current.ctx.trace_id)),
            (Some(_), None) => params
                .and_then(|p| p.get("_meta"))
                .and_then(|m| Fields::parse(m.get()))
                .and_then(|m| m.get_str("traceparent"))
                .and_then(|tp| crate::observe::trace_id_of(&tp).map(str::to_string)),
        };
        let wants_payloads = observed.is_some_and(|o| o.observer.wants_payloads());
        let request = wants_payloads.then(|| env.params.map(|p| p.get().to_string()));
        let handling = self.handle_request(req);
        let reply = match &span {
            Some((current, _)) => crate::trace::in_span(current.clone(), handling).await,
            None => handling.await,
        };
        let duration = started.elapsed();
        let (error_type, error_message) = match reply.as_deref().and_then(crate::observe::classify)
        {
            Some((t, m)) => (Some(t), m),
            None => (None, None),
        };
        let protocol_version = if session.stateless {
            Some(stateless::STATELESS_VERSION.to_string())
        } else {
            session.client.get().map(|c| c.protocol_version.clone())
        };
        if let (Some(t), Some((current, parent)), true) = (traced, &span, recording) {
            crate::trace::finish_server(
                t,
                current,
                *parent,
                &crate::trace::Finished {
                    method,
                    target: target.as_deref(),
                    server: server.as_deref(),
                    session: &session.id,
                    request_id: env.id_text(),
                    protocol_version: protocol_version.as_deref(),
                    error: error_type.as_deref().map(|t| (t, error_message.as_deref())),
                    start: at,
                    duration,
                },
            );
        }
        let Some(observed) = observed else {
            return reply;
        };
        observed.observer.call(crate::observe::CallRecord {
            at,
            tenant: observed.tenant.clone(),
            principal: session.principal.get().cloned(),
            endpoint: session.view.label(),
            session: session.id.clone(),
            method: method.to_string(),
            server,
            target,
            known_target,
            error_type,
            error_message,
            duration,
            bytes_in: req.text.len(),
            bytes_out: reply.as_ref().map_or(0, String::len),
            trace_id,
            protocol_version,
            payload: request.map(|r| (r.unwrap_or_default(), reply.clone().unwrap_or_default())),
        });
        reply
    }

    /// The server and item a request names: (server, tool/prompt name or URI, whether the
    /// name is in the merged catalog).
    fn locate(
        &self,
        session: &ClientSession,
        method: &str,
        params: Option<&Fields<'_>>,
    ) -> (Option<String>, Option<String>, bool) {
        let kind = match method {
            "tools/call" => ListKind::Tools,
            "prompts/get" => ListKind::Prompts,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let Some(uri) = params.and_then(|p| p.get_str("uri")) else {
                    return (None, None, false);
                };
                let merged = self.inner.merged.load();
                let server = merged
                    .resolve_uri(&session.view, &uri)
                    .map(|t| t.entry.name.clone());
                let known = server.is_some();
                return (server, Some(uri.into_owned()), known);
            }
            _ => return (None, None, false),
        };
        let Some(mut name) = params.and_then(|p| p.get_str("name")) else {
            return (None, None, false);
        };
        if kind == ListKind::Tools && session.view.is_smart() && name == crate::smart::CALL_TOOL {
            // A smart endpoint's `call_tool` is recorded as the tool it calls.
            // (`call_meta` refuses a meta-tool or a missing name: that stays `call_tool`.)
            match params
                .and_then(|p| p.get("arguments"))
                .and_then(|a| Fields::parse(a.get()))
                .and_then(|a| a.get_str("name"))
            {
                Some(inner) if !crate::smart::is_meta_tool(&inner) => name = inner,
                _ => return (None, Some(name.into_owned()), true),
            }
        }
        if kind == ListKind::Tools
            && ((session.view.is_smart() && crate::smart::is_meta_tool(&name))
                || local::is_local_tool(&name))
        {
            return (None, Some(name.into_owned()), true);
        }
        let merged = self.inner.merged.load();
        let server = merged
            .resolve_name(&session.view, kind, &name)
            .map(|t| t.entry.name.clone());
        let known = server.is_some();
        (server, Some(name.into_owned()), known)
    }
}
