//! Conversions between stored records, the hub's server specs, API input and API output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::config::{ProtocolMode, ServerSpec, TransportSpec, parse_server_value};
use switchboard_core::url_secrets::{mask_url_secrets, restore_masked_url};
use switchboard_store::{ServerRecord, TransportRecord};

/// The actor recorded for servers imported from the operator's servers file at startup; only
/// those are trusted (exempt from the SSRF policy).
pub const SERVERS_FILE_ACTOR: &str = "servers-file";

/// What the API shows instead of a secret value.
pub const MASK: &str = switchboard_core::config::MASK;

/// How secret values appear in a servers-file entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// In clear.
    Reveal,
    /// As [`MASK`] (the API's views; a client may send the mask back to keep the value).
    Mask,
    /// As `${SWITCHBOARD_SECRET_<SERVER>_<KEY>}` (export: a file that round-trips, the values
    /// coming from the environment of the hub that loads it).
    Placeholder,
}

/// Whether an environment variable's value is treated as a secret: its name mentions a token,
/// key, secret, password, pass, auth or credential (any case). Header values always are.
pub fn secret_env_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["token", "key", "secret", "pass", "auth", "credential"]
        .iter()
        .any(|w| n.contains(w))
}

/// The export placeholder for one secret of `server`.
pub fn secret_placeholder(server: &str, key: &str) -> String {
    format!(
        "${{{}}}",
        switchboard_core::formats::placeholder_var("SECRET", &[server, key])
    )
}

/// A server's configuration as the API accepts it (the servers-file entry shape plus `name`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ServerInput {
    /// Unique name (taken from the path on updates).
    #[serde(default)]
    pub name: String,
    /// `stdio`, `streamable-http` or `sse` (inferred from `command`/`url` when absent).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Remote URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers for remote servers (values are secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Program for stdio servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Its environment (values are secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Its working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Whether it should run (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Per-request timeout in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// `shared` (default) or `per-client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Streamable HTTP and stdio: `auto` (default), `legacy` or `2026-07-28`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Largest message (a result) accepted from the server, in bytes (1 KiB to 1 GiB; default
    /// the hub's `--max-result-bytes`, 16 MiB). A larger one fails its call with -32603.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_result_bytes: Option<u64>,
}

impl ServerInput {
    /// Validates the input with the servers-file rules (no `${VAR}` expansion) into a spec.
    pub fn to_spec(&self, separator: &str) -> Result<ServerSpec, String> {
        let mut v = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let obj = v.as_object_mut().expect("a struct serialises to an object");
        obj.remove("name");
        if let Some(enabled) = obj.remove("enabled") {
            obj.insert("disabled".into(), json!(!enabled.as_bool().unwrap_or(true)));
        }
        parse_server_value(&self.name, &v, None, separator)
    }
}

/// A stored record for `spec`.
pub fn record_from_spec(tenant: &str, spec: &ServerSpec, actor: &str, now: i64) -> ServerRecord {
    let transport = match &spec.transport {
        TransportSpec::Stdio {
            command,
            args,
            env,
            cwd,
            ..
        } => TransportRecord::Stdio {
            command: command.clone(),
            args: args.clone(),
            env: env.clone(),
            cwd: cwd.as_ref().map(|p| p.display().to_string()),
        },
        TransportSpec::StreamableHttp { url, headers, .. } => TransportRecord::StreamableHttp {
            url: url.clone(),
            headers: headers.clone(),
        },
        TransportSpec::Sse { url, headers } => TransportRecord::Sse {
            url: url.clone(),
            headers: headers.clone(),
        },
    };
    ServerRecord {
        tenant: tenant.to_string(),
        name: spec.name.clone(),
        transport,
        enabled: !spec.disabled,
        timeout_secs: spec.timeout.as_secs_f64(),
        session_mode: spec.session.as_str().to_string(),
        protocol: match &spec.transport {
            TransportSpec::StreamableHttp { protocol, .. }
            | TransportSpec::Stdio { protocol, .. } => protocol.as_str().to_string(),
            TransportSpec::Sse { .. } => ProtocolMode::Auto.as_str().to_string(),
        },
        max_result_bytes: spec.max_result_bytes,
        created_by: actor.to_string(),
        created_at: now,
        updated_by: actor.to_string(),
        updated_at: now,
        origin: if actor == SERVERS_FILE_ACTOR {
            switchboard_store::ORIGIN_FILE
        } else {
            switchboard_store::ORIGIN_API
        }
        .to_string(),
    }
}

/// The hub's spec for a stored record.
pub fn spec_from_record(r: &ServerRecord) -> ServerSpec {
    let transport = match &r.transport {
        TransportRecord::Stdio {
            command,
            args,
            env,
            cwd,
        } => TransportSpec::Stdio {
            command: command.clone(),
            args: args.clone(),
            env: env.clone(),
            cwd: cwd.as_ref().map(PathBuf::from),
            protocol: ProtocolMode::parse(&r.protocol).unwrap_or_default(),
        },
        TransportRecord::StreamableHttp { url, headers } => TransportSpec::StreamableHttp {
            url: url.clone(),
            headers: headers.clone(),
            protocol: ProtocolMode::parse(&r.protocol).unwrap_or_default(),
        },
        TransportRecord::Sse { url, headers } => TransportSpec::Sse {
            url: url.clone(),
            headers: headers.clone(),
        },
    };
    ServerSpec {
        name: r.name.clone(),
        transport,
        timeout: Duration::from_secs_f64(r.timeout_secs.max(0.001)),
        disabled: !r.enabled,
        session: switchboard_core::config::SessionMode::parse(&r.session_mode).unwrap_or_default(),
        max_result_bytes: r.max_result_bytes,
        // Only what the operator's file owns is trusted: an API edit takes the entry over.
        trusted: r.origin == switchboard_store::ORIGIN_FILE,
    }
}

/// Replaces masked secret values in `new` with the stored ones (so a client can send back
/// what it was shown without erasing secrets).
pub fn keep_masked_secrets(new: &mut ServerInput, old: &ServerRecord) {
    let (old_env, old_headers) = match &old.transport {
        TransportRecord::Stdio { env, .. } => (Some(env), None),
        TransportRecord::StreamableHttp { headers, .. } | TransportRecord::Sse { headers, .. } => {
            (None, Some(headers))
        }
    };
    for (k, v) in new.env.iter_mut() {
        if v == MASK
            && let Some(old) = old_env.and_then(|e| e.get(k))
        {
            *v = old.clone();
        }
    }
    for (k, v) in new.headers.iter_mut() {
        if v == MASK
            && let Some(old) = old_headers.and_then(|h| h.get(k))
        {
            *v = old.clone();
        }
    }
    if let (Some(url), Some(old_url)) = (new.url.as_mut(), record_url(old)) {
        *url = restore_masked_url(url, old_url, MASK);
    }
}

/// A URL as the API and the logs show it: query values and any password masked (secrets, like
/// header values).
pub fn masked_url(url: &str) -> String {
    mask_url_secrets(url, MASK)
}

/// The servers-file entry for a record, secrets masked or in clear.
pub fn entry_json(r: &ServerRecord, reveal: bool) -> Value {
    entry_json_as(
        r,
        if reveal {
            Secrets::Reveal
        } else {
            Secrets::Mask
        },
    )
}

/// The servers-file entry for a record, secrets shown as `how` says.
pub fn entry_json_as(r: &ServerRecord, how: Secrets) -> Value {
    let secret = |m: &BTreeMap<String, String>, all: bool| -> Value {
        Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let shown = match how {
                        Secrets::Reveal => v.clone(),
                        _ if !all && !secret_env_key(k) => v.clone(),
                        Secrets::Mask => MASK.to_string(),
                        Secrets::Placeholder => secret_placeholder(&r.name, k),
                    };
                    (k.clone(), json!(shown))
                })
                .collect(),
        )
    };
    let mut v = match &r.transport {
        TransportRecord::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut v = json!({"type": "stdio", "command": command, "args": args});
            if !env.is_empty() {
                v["env"] = secret(env, false);
            }
            if let Some(c) = cwd {
                v["cwd"] = json!(c);
            }
            v
        }
        TransportRecord::StreamableHttp { url, headers }
        | TransportRecord::Sse { url, headers } => {
            let url = match how {
                Secrets::Reveal => url.clone(),
                Secrets::Mask => masked_url(url),
                // Query values load again from the environment, like header values.
                Secrets::Placeholder => {
                    switchboard_core::url_secrets::replace_url_secrets(url, |key| {
                        secret_placeholder(&r.name, &format!("url_{key}"))
                    })
                }
            };
            let mut v = json!({"type": r.transport.kind(), "url": url});
            if !headers.is_empty() {
                v["headers"] = secret(headers, true);
            }
            v
        }
    };
    if !r.enabled {
        v["disabled"] = json!(true);
    }
    if r.session_mode != "shared" {
        v["session"] = json!(r.session_mode);
    }
    if r.protocol != "auto"
        && matches!(
            r.transport,
            TransportRecord::StreamableHttp { .. } | TransportRecord::Stdio { .. }
        )
    {
        v["protocol"] = json!(r.protocol);
    }
    if (r.timeout_secs - 300.0).abs() > f64::EPSILON {
        v["timeout"] = json!(r.timeout_secs);
    }
    if let Some(n) = r.max_result_bytes {
        v["max_result_bytes"] = json!(n);
    }
    v
}

/// The URL of a remote record.
pub fn record_url(r: &ServerRecord) -> Option<&str> {
    match &r.transport {
        TransportRecord::StreamableHttp { url, .. } | TransportRecord::Sse { url, .. } => Some(url),
        TransportRecord::Stdio { .. } => None,
    }
}
