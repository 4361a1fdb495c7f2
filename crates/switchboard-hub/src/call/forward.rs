//! Sending a [`Call`]: the caller's claims on the limits, the upstream connection to use, the
//! request's bytes for the upstream's era, and the loop that relays what the upstream sends
//! until it answers or the client cancels.

use std::sync::Arc;

use switchboard_core::jsonrpc::{Splice, object_append_point, quote, span_of};
use switchboard_upstream::{CallEvent, CallOptions, Connection, Upstream, UpstreamError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Call, Eras, Return, era_of, finish_call, is_stateless, progress_token};
use crate::bridge::mrtr;
use crate::hub::Hub;
use crate::reply;
use crate::route::Request;
use crate::session::ClientSession;
use crate::stateless;
use crate::trace::Outgoing;

impl Hub {
    /// Sends the client's request to the route's upstream and relays everything back.
    pub(crate) async fn forward(&self, call: Call<'_>) -> Option<String> {
        let Call {
            req,
            route,
            mut splice,
        } = call;
        let (id, session, text) = (req.id(), req.session, req.text);
        let server: &str = &route.entry.name;
        let upstream = &route.entry.upstream;
        // Held until the call ends: this client's and this credential's share...
        let _claim = match self.inner.claim_call(session) {
            Ok(claim) => claim,
            // -32000: a server error that the client can fix by waiting.
            Err(message) => return Some(reply::error(id, -32000, &message)),
        };
        // ...and the tenant's share of upstream concurrency.
        let _slot = match self.inner.call_slot().await {
            Ok(slot) => slot,
            Err(message) => return Some(reply::internal(id, &message)),
        };
        let conn = match open(session, server, upstream).await {
            Ok(c) => c,
            Err(e) => return Some(reply::internal(id, &format!("server {server:?}: {e}"))),
        };
        let eras = Eras::of(session.era(), era_of(&conn));
        let back = Return {
            id,
            server,
            eras,
            uri_rewrite: route.uri_rewrite.as_ref(),
        };
        if eras == Eras::StatelessClient
            && let Some(state) = req.params.and_then(|p| p.get_str("requestState"))
        {
            // A retry of a parked call: answer its questions and keep driving it.
            if let Some(reply) = self.resume_elsewhere(session, text, &state).await {
                return Some(reply);
            }
            return Some(self.resume(req, &state, back.uri_rewrite).await);
        }
        let up_id = conn.next_id();
        splice.replace(
            text,
            req.env.id.expect("requests have ids").get(),
            up_id.to_string(),
        );
        // Traced: a CLIENT span for the call (a parked multi-round-trip call has none: the
        // upstream's parent is the server span), its context in `_meta` and the headers.
        let traced = crate::trace::child(eras == Eras::StatelessClient);
        let outgoing = traced.as_ref().map(|(_, ctx)| Outgoing::of(ctx));
        let token = progress_token(req.params);
        upstream_meta(req, eras, &mut splice, token, up_id, outgoing.as_ref());
        let body = splice.apply(text);
        let trace_headers = outgoing.map_or_else(Vec::new, |o| o.headers());
        if eras == Eras::StatelessClient {
            // Questions the upstream asks mid-call become multi-round-trip requests.
            let opts = CallOptions {
                timeout: upstream.spec().timeout,
                events: None,
                retry_safe: route.retry_safe,
                headers: trace_headers,
            };
            let leg = mrtr::Leg {
                running: mrtr::Running::start(conn.clone(), up_id, body, opts),
                conn,
                server: server.to_string(),
                progress_token: token.map(str::to_string),
            };
            return Some(self.drive(req, back.uri_rewrite, leg).await);
        }
        let retry_base = (eras == Eras::StatelessUpstream).then(|| body.clone());
        let cancel = CancellationToken::new();
        session
            .inflight
            .lock()
            .expect("inflight lock")
            .insert(id.to_string(), cancel.clone());
        let (ev_tx, mut ev_rx) = mpsc::channel::<CallEvent>(64);
        let mut headers = match (&session.param_headers, eras) {
            // Both sides stateless: the checked `Mcp-Param-*` headers travel on (§5.2).
            (Some(sent), Eras::Stateless) => sent
                .iter()
                .map(|(n, v)| (format!("mcp-param-{n}"), v.clone()))
                .collect(),
            _ => Vec::new(),
        };
        headers.extend(trace_headers);
        // Only a sampled call builds what its CLIENT span reports.
        let traced = traced.filter(|(_, ctx)| ctx.sampled);
        let upstream_target = traced.as_ref().and(route.target);
        let opts = CallOptions {
            timeout: upstream.spec().timeout,
            events: Some(ev_tx),
            retry_safe: route.retry_safe,
            headers,
        };
        let up_started = std::time::Instant::now();
        let call = conn.call(up_id, body, opts);
        tokio::pin!(call);
        let outcome = loop {
            tokio::select! {
                biased;
                r = &mut call => break Some(r),
                Some(ev) = ev_rx.recv() => self.relay(session, &conn, ev, token, req.sink).await,
                _ = cancel.cancelled() => break None,
            }
        };
        while let Ok(ev) = ev_rx.try_recv() {
            self.relay(session, &conn, ev, token, req.sink).await;
        }
        session.inflight.lock().expect("inflight lock").remove(id);
        let mut outcome = outcome?;
        if let Some((current, ctx)) = &traced {
            crate::trace::finish_client(
                current,
                ctx,
                &crate::trace::UpstreamCallInfo {
                    method: req.method(),
                    target: upstream_target,
                    server,
                    transport: &upstream.spec().transport,
                    protocol_version: upstream.info().map(|i| i.protocol_version.clone()),
                    request_id: up_id,
                },
                &outcome,
                up_started,
            );
        }
        if let Some(o) = self.inner.observed.get() {
            let info = upstream.info();
            crate::observe::report_upstream(
                o,
                server,
                info.as_deref(),
                req.env,
                req.params,
                &outcome,
                up_started,
            );
        }
        if let (Some(base), Ok(reply)) = (retry_base, &outcome) {
            // A stateless upstream asks through `input_required`: ask the client for real.
            let timeout = upstream.spec().timeout;
            outcome = self
                .bridge_input_required(session, &conn, base, reply.clone(), timeout, req.sink)
                .await;
        }
        Some(finish_call(outcome, &back))
    }
}

/// The upstream connection a client's call goes over.
async fn open(
    session: &ClientSession,
    server: &str,
    upstream: &Upstream,
) -> Result<Arc<Connection>, UpstreamError> {
    // The user's own credentials for this server, if they stored some.
    let own = session
        .user_headers
        .get()
        .and_then(|u| u.by_server.get(server).map(|h| (u.user.as_str(), h)));
    match (upstream.info(), own) {
        (_, Some((user, headers))) => upstream.connection_with_headers(user, headers).await,
        // A session-based remote server learns what this stateless client declared
        // through a session that declares just that, so it asks only what the client can
        // answer (a stdio server keeps its one process: `connection_declaring`).
        (Some(info), None) if session.stateless && !is_stateless(&info) => {
            let caps = stateless::bridgeable_capabilities(session);
            upstream.connection_declaring(&caps).await
        }
        // Every other client shares the server's one connection (one process for a stdio
        // server), which declared the union of what the hub can bridge (sampling,
        // elicitation, roots). What this client did not declare is refused per request
        // when the server asks (`admit_question`, `forward_server_request`).
        _ => upstream.connection_for(&session.id).await,
    }
}

/// Splices the request's `_meta` as the upstream's era needs it: the hub's id as progress
/// token, without the stateless keys for a session upstream, with what the client can be
/// asked for a stateless one; and the call's trace context, when traced.
fn upstream_meta(
    req: &Request<'_>,
    eras: Eras,
    splice: &mut Splice,
    token: Option<&str>,
    up_id: u64,
    trace: Option<&Outgoing<'_>>,
) {
    let (text, session) = (req.text, req.session);
    let meta = req.params.and_then(|p| p.get("_meta"));
    // A `_meta` the hub rebuilds carries the context in the rebuilt text.
    let with_context = |meta: String| match trace {
        Some(t) => t.in_meta(meta),
        None => meta,
    };
    match (eras, meta) {
        // A legacy upstream session must not see the stateless protocol's own keys.
        (Eras::StatelessClient, Some(meta)) => {
            splice.replace(
                text,
                meta.get(),
                with_context(stateless::upstream_meta(meta.get(), token.map(|_| up_id))),
            );
            return;
        }
        // A stateless upstream learns what this client can be asked (the hub asks it).
        (Eras::StatelessUpstream, Some(meta)) => {
            let caps = stateless::bridgeable_capabilities(session);
            splice.replace(
                text,
                meta.get(),
                with_context(stateless::with_capabilities(
                    meta.get(),
                    token.map(|_| up_id),
                    &caps,
                    &session.log_level(),
                )),
            );
            return;
        }
        (Eras::StatelessUpstream | Eras::Stateless, None) => {
            if let Some(p) = req.env.params
                && let Some((at, has)) = object_append_point(p.get())
            {
                let start = span_of(text, p.get()).start;
                let caps = stateless::bridgeable_capabilities(session);
                let mut member = format!(
                    r#"{}"_meta":{{"io.modelcontextprotocol/clientCapabilities":{caps},{}:{}"#,
                    if has { "," } else { "" },
                    quote(stateless::META_LOG_LEVEL),
                    quote(&session.log_level()),
                );
                if let Some(t) = trace {
                    member.push(',');
                    t.push_members(&mut member, true);
                }
                member.push('}');
                splice.insert(start + at, member);
                return;
            }
        }
        // Both stateless, the client's own declarations go upstream: the upstream may ask it
        // directly. Both session-based: only the progress token changes.
        (Eras::Stateless | Eras::Session | Eras::StatelessClient, _) => {
            if let Some(tok) = token {
                splice.replace(text, tok, up_id.to_string());
            }
        }
    }
    // The client's own `_meta`, or none: the context is spliced into the client's bytes.
    if let Some(t) = trace {
        t.splice_request(splice, text, req.env.params.map(|p| p.get()), req.params);
    }
}
