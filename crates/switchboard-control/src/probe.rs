//! Talking to a remote server directly, outside the registry: SSRF checks and probes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard_core::config::{ServerSpec, TransportSpec, check_url};
use switchboard_core::ssrf::SsrfPolicy;
use switchboard_upstream::{Connection, ListKind, StderrRing, fetch_list};

use crate::ControlError;

/// Checks a URL that arrived through an API: scheme, credentials, host deny list, and every
/// address the host resolves to (through the system resolver). See [`crate::guard::check_url`].
pub async fn check_ssrf(policy: &SsrfPolicy, url: &str) -> Result<(), ControlError> {
    crate::guard::check_url(policy, &crate::guard::SystemLookup, url).await
}

/// What a probe learned.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The negotiated protocol revision.
    pub protocol_version: String,
    /// `serverInfo`.
    pub server_info: Value,
    /// The server's tools, as it listed them.
    pub tools: Vec<Value>,
}

/// The spec of a remote server at `url`; the transport is `sse` when asked, or when the
/// path ends in `/sse` and no transport is given.
pub fn remote_spec(
    name: &str,
    url: &str,
    transport: Option<&str>,
    headers: BTreeMap<String, String>,
) -> Result<ServerSpec, ControlError> {
    check_url(url).map_err(ControlError::Invalid)?;
    let sse = match transport {
        Some("sse") => true,
        Some("streamable-http" | "streamable_http" | "http" | "streamableHttp") => false,
        Some("stdio") => {
            return Err(ControlError::StdioForbidden(format!(
                "{name:?}: this route adds remote servers only (a URL); a stdio server is \
                 defined through POST /api/v1/servers, by an admin or with an allowed launcher"
            )));
        }
        Some(other) => {
            return Err(ControlError::Invalid(format!(
                "unknown transport {other:?}: use \"sse\" or \"streamable-http\""
            )));
        }
        None => url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .ends_with("/sse"),
    };
    let transport = if sse {
        TransportSpec::Sse {
            url: url.into(),
            headers,
        }
    } else {
        TransportSpec::StreamableHttp {
            url: url.into(),
            headers,
            protocol: Default::default(),
        }
    };
    Ok(ServerSpec {
        name: name.into(),
        transport,
        timeout: switchboard_core::config::DEFAULT_TIMEOUT,
        disabled: false,
        session: Default::default(),
        max_result_bytes: None,
        trusted: false,
    })
}

/// Connects to a server, initializes, lists its tools and disconnects.
pub async fn probe(
    spec: &ServerSpec,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<Probe, ControlError> {
    let (tx, _rx) = switchboard_upstream::incoming_channel();
    let ring = Arc::new(StderrRing::new(20));
    let (conn, info) = Connection::open(spec, client, ring, tx, timeout)
        .await
        .map_err(|e| {
            ControlError::Unreachable(format!("cannot connect to {}: {e}", describe(spec)))
        })?;
    let tools = if info.has("tools") {
        fetch_list(&conn, ListKind::Tools, timeout).await
    } else {
        Ok(Vec::new())
    };
    conn.shutdown().await;
    let tools = tools.map_err(|e| ControlError::Unreachable(format!("tools/list failed: {e}")))?;
    let tools = tools
        .iter()
        .filter_map(|t| serde_json::from_str(t.raw.get()).ok())
        .collect();
    Ok(Probe {
        protocol_version: info.protocol_version.clone(),
        server_info: info.server_info.clone(),
        tools,
    })
}

fn describe(spec: &ServerSpec) -> String {
    match &spec.transport {
        TransportSpec::StreamableHttp { url, .. } | TransportSpec::Sse { url, .. } => url.clone(),
        TransportSpec::Stdio { command, .. } => command.clone(),
    }
}
