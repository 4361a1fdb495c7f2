//! `subscriptions/listen` (2026-07-28): a stateless client's long-lived request whose stream
//! carries the change notifications it opted into.
//!
//! The hub already tells its registered sessions when lists change and relays
//! `resources/updated` for subscribed URIs. A listen request therefore registers a session
//! of its own for as long as the stream stays open, with the URIs it asked about as that
//! session's subscriptions, and copies what arrives on it to the stream: filtered by the
//! request's choices and tagged with the listen request's id.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_core::jsonrpc::{Fields, notification_message};

use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::reply;
use crate::session::ClientSession;

/// `_meta` key naming the listen request a notification belongs to.
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
const LISTEN_CAPACITY: usize = 256;

/// What one listen stream asked for (and the hub agreed to).
#[derive(Debug, Default, Clone)]
struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    /// URIs as the client names them.
    uris: Vec<String>,
}

impl Filter {
    fn parse(params: Option<&Fields<'_>>) -> Option<Filter> {
        let raw = params?.get("notifications")?;
        let v: Value = serde_json::from_str(raw.get()).ok()?;
        let obj = v.as_object()?;
        let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
        let uris = obj
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Some(Filter {
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            uris,
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.tools {
            m.insert("toolsListChanged".into(), Value::Bool(true));
        }
        if self.prompts {
            m.insert("promptsListChanged".into(), Value::Bool(true));
        }
        if self.resources {
            m.insert("resourcesListChanged".into(), Value::Bool(true));
        }
        if !self.uris.is_empty() {
            m.insert("resourceSubscriptions".into(), json!(self.uris));
        }
        Value::Object(m)
    }

    fn wants(&self, method: &str) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            // The session only receives updates for the URIs it holds.
            "notifications/resources/updated" => !self.uris.is_empty(),
            _ => false,
        }
    }
}

/// Ends the listen session when the stream goes away (the request future is dropped when
/// the client closes the stream): unregisters it and releases its upstream subscriptions.
struct Registration {
    hub: Hub,
    session: Arc<ClientSession>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let uris: Vec<String> = self
            .session
            .subscriptions
            .lock()
            .expect("subs lock")
            .drain()
            .collect();
        self.hub.close_session(&self.session.id);
        for uri in uris {
            self.hub.release_subscription(&self.session, uri);
        }
    }
}

impl Hub {
    /// Serves one `subscriptions/listen` request until the client closes its stream or the
    /// hub shuts down (then the listen result ends the stream).
    pub(crate) async fn listen(
        &self,
        caller: &ClientSession,
        id: &str,
        params: Option<&Fields<'_>>,
        sink: &Outbox,
    ) -> String {
        let Some(mut filter) = Filter::parse(params) else {
            return reply::invalid_params(id, "params.notifications must be an object");
        };
        let session = match self.create_session(caller.view.clone(), LISTEN_CAPACITY) {
            Ok(s) => s,
            Err(e) => return reply::internal(id, &e.to_string()),
        };
        let registration = Registration {
            hub: self.clone(),
            session: session.clone(),
        };
        let Some(mut stream) = session.attach_stream() else {
            return reply::internal(id, "listen stream unavailable");
        };
        // Only URIs this endpoint knows are honoured; each one becomes an upstream
        // subscription unless another client already holds it.
        let merged = self.inner.merged.load_full();
        filter
            .uris
            .retain(|u| merged.resolve_uri(&session.view, u).is_some());
        for uri in &filter.uris {
            self.acquire_subscription(&session, uri.clone()).await;
        }
        session
            .initialized
            .store(true, std::sync::atomic::Ordering::Relaxed);

        let ack =
            json!({"notifications": filter.to_json(), "_meta": {META_SUBSCRIPTION_ID: raw_id(id)}});
        if sink
            .send(notification_message(
                "notifications/subscriptions/acknowledged",
                Some(&ack.to_string()),
            ))
            .await
            .is_err()
        {
            return String::new();
        }
        loop {
            tokio::select! {
                msg = stream.recv() => match msg {
                    Some(text) => {
                        if let Some(out) = tag(&text, &filter, id)
                            && sink.send(out).await.is_err()
                        {
                            break;
                        }
                    }
                    None => break,
                },
                _ = sink.closed() => break,
            }
        }
        drop(stream);
        drop(registration);
        let result = json!({"resultType": "complete", "_meta": {META_SUBSCRIPTION_ID: raw_id(id)}});
        reply::result(id, &result.to_string())
    }

    /// Adds `uri` to a listen session's subscriptions, subscribing upstream when it is the
    /// first holder (session-based upstreams; a stateless upstream has no subscribe call).
    async fn acquire_subscription(&self, session: &ClientSession, uri: String) {
        let first = self.sessions_subscribed_to(&uri) == 0;
        session
            .subscriptions
            .lock()
            .expect("subs lock")
            .insert(uri.clone());
        self.upstream_subscription(session, &uri, "resources/subscribe", first);
    }

    /// The reverse of [`Hub::acquire_subscription`], once the session is gone.
    fn release_subscription(&self, session: &ClientSession, uri: String) {
        let last = self.sessions_subscribed_to(&uri) == 0;
        self.upstream_subscription(session, &uri, "resources/unsubscribe", last);
    }

    /// Tells the upstream of `uri`: a stateless one gets the new set of URIs on its listen
    /// request; a session one gets `method` when `edge` (first holder in, last one out).
    fn upstream_subscription(
        &self,
        session: &ClientSession,
        uri: &str,
        method: &'static str,
        edge: bool,
    ) {
        let merged = self.inner.merged.load_full();
        let Some(target) = merged.resolve_uri(&session.view, uri) else {
            return;
        };
        let (Ok(conn), Some(info)) = (
            target.entry.upstream.connection(),
            target.entry.upstream.info(),
        ) else {
            return;
        };
        let subscribable = info
            .capabilities
            .get("resources")
            .and_then(|r| r.get("subscribe"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if conn.is_stateless() {
            conn.watch_resources(self.subscribed_originals(&target.entry.name));
            return;
        }
        if !edge || !subscribable {
            return;
        }
        let params = json!({"uri": target.original}).to_string();
        tokio::spawn(async move {
            let _ = conn
                .request(method, Some(&params), Duration::from_secs(10))
                .await;
        });
    }
}

/// The request id as a JSON value (ids are strings or integers).
fn raw_id(id: &str) -> Value {
    serde_json::from_str(id).unwrap_or(Value::Null)
}

/// A notification for the listen stream: kept only if the filter wants it, with the
/// subscription id in its `_meta`.
fn tag(text: &str, filter: &Filter, id: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    let method = v.get("method")?.as_str()?.to_string();
    if !filter.wants(&method) {
        return None;
    }
    let params = v
        .as_object_mut()?
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()));
    let meta = params
        .as_object_mut()?
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    meta.as_object_mut()?
        .insert(META_SUBSCRIPTION_ID.into(), raw_id(id));
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_tags() {
        let f = Filter {
            tools: true,
            ..Filter::default()
        };
        let out = tag(
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
            &f,
            "7",
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["params"]["_meta"][META_SUBSCRIPTION_ID], 7);
        assert!(
            tag(
                r#"{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}"#,
                &f,
                "7"
            )
            .is_none()
        );
    }
}
