//! Talking to a remote server directly, outside the registry: SSRF checks and probes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard_core::config::{ServerSpec, TransportSpec, check_url};
use switchboard_core::ssrf::{Refusal, SsrfPolicy};
use switchboard_upstream::{Connection, ListKind, StderrRing, fetch_list};

use crate::ControlError;

/// Checks a URL that arrived through an API: scheme, host deny list, and every address the
/// host resolves to.
pub async fn check_ssrf(policy: &SsrfPolicy, url: &str) -> Result<(), ControlError> {
    check_url(url).map_err(ControlError::Invalid)?;
    let parsed = url::Url::parse(url).map_err(|e| ControlError::Invalid(format!("invalid URL {url:?}: {e}")))?;
    let forbid = |r: Refusal| ControlError::Forbidden(format!("{url}: {r}"));
    let host = parsed.host().ok_or_else(|| ControlError::Invalid(format!("{url:?} has no host")))?;
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(v4) => vec![IpAddr::V4(v4)],
        url::Host::Ipv6(v6) => vec![IpAddr::V6(v6)],
        url::Host::Domain(name) => {
            policy.check_host(name).map_err(forbid)?;
            let port = parsed.port_or_known_default().unwrap_or(80);
            let resolved = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| ControlError::Unreachable(format!("resolving {name} timed out")))?
                .map_err(|e| ControlError::Unreachable(format!("cannot resolve {name}: {e}")))?;
            resolved.map(|a| a.ip()).collect()
        }
    };
    if addrs.is_empty() {
        return Err(ControlError::Unreachable(format!("{url}: the host has no addresses")));
    }
    for ip in addrs {
        policy.check_ip(ip).map_err(forbid)?;
    }
    Ok(())
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
pub fn remote_spec(name: &str, url: &str, transport: Option<&str>, headers: BTreeMap<String, String>) -> Result<ServerSpec, ControlError> {
    check_url(url).map_err(ControlError::Invalid)?;
    let sse = match transport {
        Some("sse") => true,
        Some("streamable-http" | "streamable_http" | "http" | "streamableHttp") => false,
        Some(other) => return Err(ControlError::Invalid(format!("unknown transport {other:?}: use \"sse\" or \"streamable-http\""))),
        None => url.split(['?', '#']).next().unwrap_or("").trim_end_matches('/').ends_with("/sse"),
    };
    let transport = if sse { TransportSpec::Sse { url: url.into(), headers } } else { TransportSpec::StreamableHttp { url: url.into(), headers, protocol: Default::default() } };
    Ok(ServerSpec {
        name: name.into(),
        transport,
        timeout: switchboard_core::config::DEFAULT_TIMEOUT,
        disabled: false,
        session: Default::default(),
        trusted: false,
    })
}

/// Connects to a server, initializes, lists its tools and disconnects.
pub async fn probe(spec: &ServerSpec, client: &reqwest::Client, timeout: Duration) -> Result<Probe, ControlError> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let ring = Arc::new(StderrRing::new(20));
    let (conn, info) = Connection::open(spec, client, ring, tx, timeout)
        .await
        .map_err(|e| ControlError::Unreachable(format!("cannot connect to {}: {e}", describe(spec))))?;
    let tools = if info.has("tools") { fetch_list(&conn, ListKind::Tools, timeout).await } else { Ok(Vec::new()) };
    conn.shutdown().await;
    let tools = tools.map_err(|e| ControlError::Unreachable(format!("tools/list failed: {e}")))?;
    let tools = tools.iter().filter_map(|t| serde_json::from_str(t.raw.get()).ok()).collect();
    Ok(Probe { protocol_version: info.protocol_version.clone(), server_info: info.server_info.clone(), tools })
}

fn describe(spec: &ServerSpec) -> String {
    match &spec.transport {
        TransportSpec::StreamableHttp { url, .. } | TransportSpec::Sse { url, .. } => url.clone(),
        TransportSpec::Stdio { command, .. } => command.clone(),
    }
}
