//! What a client learns about the hub itself: `initialize` (session era), `server/discover`
//! (stateless era), the instructions both carry, and `logging/setLevel`.

use serde_json::Value;
use switchboard_core::jsonrpc::{Fields, quote};

use crate::hub::Hub;
use crate::reply;
use crate::session::{ClientInfo, ClientSession};
use crate::stateless::STATELESS_VERSION;
use crate::view::View;

impl Hub {
    /// `initialize`: negotiates the revision, records what the client declared, and returns
    /// the result (raw JSON).
    pub(super) fn initialize(
        &self,
        session: &ClientSession,
        params: Option<&Fields<'_>>,
    ) -> String {
        let requested = params
            .and_then(|p| p.get_str("protocolVersion"))
            .unwrap_or_default();
        let version = crate::session::negotiate(&requested);
        let raw = |k: &str| -> Value {
            params
                .and_then(|p| p.get(k))
                .and_then(|v| serde_json::from_str(v.get()).ok())
                .unwrap_or(Value::Null)
        };
        let _ = session.client.set(ClientInfo {
            protocol_version: version.to_string(),
            capabilities: raw("capabilities"),
            client_info: raw("clientInfo"),
        });
        let instructions = self.instructions_for(&session.view);
        format!(
            r#"{{"protocolVersion":{},"capabilities":{{"tools":{{"listChanged":true}},"prompts":{{"listChanged":true}},"resources":{{"subscribe":true,"listChanged":true}},"completions":{{}},"logging":{{}}}},"serverInfo":{{"name":"switchboard","title":"Switchboard MCP hub","version":{}}},"instructions":{}}}"#,
            quote(version),
            quote(env!("CARGO_PKG_VERSION")),
            quote(&instructions),
        )
    }

    /// `server/discover`: what the hub supports, for stateless clients.
    pub(super) fn discover(&self, session: &ClientSession, id: &str) -> String {
        let versions = super::SUPPORTED_VERSIONS
            .iter()
            .chain([STATELESS_VERSION].iter())
            .map(|v| quote(v))
            .collect::<Vec<_>>()
            .join(",");
        // Extensions (Tasks) are the upstream's to offer, and only where requests about them
        // can be routed back to it: on a stateless server's own endpoint.
        let extensions = match &session.view {
            View::Server(s) => self
                .upstream(s)
                .and_then(|u| u.info())
                .filter(|i| crate::call::is_stateless(i))
                .and_then(|i| i.capabilities.get("extensions").cloned())
                .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()))
                .map(|e| format!(r#","extensions":{e}"#)),
            _ => None,
        }
        .unwrap_or_default();
        let result = format!(
            r#"{{"supportedVersions":[{versions}],"capabilities":{{"tools":{{"listChanged":true}},"prompts":{{"listChanged":true}},"resources":{{"subscribe":true,"listChanged":true}},"completions":{{}}{extensions}}},"instructions":{},"ttlMs":0,"cacheScope":"private","resultType":"complete","_meta":{{"io.modelcontextprotocol/serverInfo":{{"name":"switchboard","title":"Switchboard MCP hub","version":{}}}}}}}"#,
            quote(&self.instructions_for(&session.view)),
            quote(env!("CARGO_PKG_VERSION")),
        );
        reply::result(id, &result)
    }

    /// The instructions an endpoint gives its clients.
    pub(crate) fn instructions_for(&self, view: &View) -> String {
        match view {
            View::Server(s) => {
                let own = self
                    .upstream(s)
                    .and_then(|u| u.info())
                    .and_then(|i| i.instructions.clone());
                own.unwrap_or_else(|| {
                    format!("Tools of the MCP server {s:?}, served through Switchboard.")
                })
            }
            View::Smart(_) => format!(
                "Switchboard smart endpoint: the tools of every server this endpoint covers are searched, not listed. Call {} with what you want to do, {} for a tool's full definition, and {} with the tool's full name and arguments.",
                crate::smart::SEARCH_TOOLS,
                crate::smart::DESCRIBE_TOOL,
                crate::smart::CALL_TOOL,
            ),
            _ => {
                let merged = self.inner.merged.load();
                let names: Vec<&str> = merged
                    .entries
                    .iter()
                    .filter(|e| merged.in_view(view, &e.name))
                    .map(|e| e.name.as_str())
                    .collect();
                format!(
                    "Switchboard hub in front of {} MCP server(s): {}. Tool and prompt names are prefixed with the server name and {:?}.",
                    names.len(),
                    names.join(", "),
                    self.config().separator
                )
            }
        }
    }

    /// `logging/setLevel`: remembered for the session, and passed on to every server it sees
    /// that logs.
    pub(super) fn set_level(&self, req: &super::Request<'_>) -> String {
        let session = req.session;
        let merged = self.inner.merged.load_full();
        let params = req.env.params.map(|p| p.get().to_string());
        if let Some(level) = req.params.and_then(|p| p.get_str("level")) {
            *session.log_level.lock().expect("log level lock") = Some(level.into_owned());
        }
        for entry in merged
            .entries
            .iter()
            .filter(|e| merged.in_view(&session.view, &e.name))
        {
            let has_logging = entry.upstream.info().is_some_and(|i| i.has("logging"));
            if let (true, Ok(conn)) = (has_logging, entry.upstream.connection()) {
                let params = params.clone();
                tokio::spawn(async move {
                    let _ = conn
                        .request(
                            "logging/setLevel",
                            params.as_deref(),
                            std::time::Duration::from_secs(10),
                        )
                        .await;
                });
            }
        }
        reply::result(req.id(), "{}")
    }
}
