//! Conversions between the domain records and the flat column values both backends store,
//! including the sealing of secret maps and of URLs that carry secrets (a query string or a
//! userinfo), plus the mapping of driver errors.

use std::collections::BTreeMap;

use sqlx::error::ErrorKind;

use crate::crypto::SecretKey;
use crate::{
    GroupRecord, ItemKind, ItemSetting, ServerRecord, SessionRecord, StoreError, TransportRecord,
};

/// One `servers` row. Env and headers are sealed as one JSON object each, so names are hidden too.
pub(crate) struct ServerColumns {
    pub tenant: String,
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args_json: Option<String>,
    pub cwd: Option<String>,
    pub env_enc: Option<String>,
    pub headers_enc: Option<String>,
    pub enabled: bool,
    pub timeout_secs: f64,
    pub session_mode: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_by: String,
    pub updated_at: i64,
    pub protocol: String,
    pub origin: String,
    pub max_result_bytes: Option<i64>,
}

/// The transport-specific columns of a server row.
#[derive(Default)]
struct TransportColumns {
    url: Option<String>,
    command: Option<String>,
    args_json: Option<String>,
    cwd: Option<String>,
    env_enc: Option<String>,
    headers_enc: Option<String>,
}

impl ServerColumns {
    /// Flattens a record, sealing its secrets with `key`.
    pub fn encode(record: &ServerRecord, key: &SecretKey) -> Result<Self, StoreError> {
        let t = encode_transport(&record.transport, key)?;
        Ok(ServerColumns {
            tenant: record.tenant.clone(),
            name: record.name.clone(),
            kind: record.transport.kind().to_owned(),
            url: t.url,
            command: t.command,
            args_json: t.args_json,
            cwd: t.cwd,
            env_enc: t.env_enc,
            headers_enc: t.headers_enc,
            enabled: record.enabled,
            timeout_secs: record.timeout_secs,
            session_mode: record.session_mode.clone(),
            created_by: record.created_by.clone(),
            created_at: record.created_at,
            updated_by: record.updated_by.clone(),
            updated_at: record.updated_at,
            protocol: record.protocol.clone(),
            origin: record.origin.clone(),
            max_result_bytes: record.max_result_bytes.map(|n| n as i64),
        })
    }

    /// Rebuilds the record, opening its secrets with `key`.
    pub fn decode(self, key: &SecretKey) -> Result<ServerRecord, StoreError> {
        let transport = self.decode_transport(key)?;
        Ok(ServerRecord {
            tenant: self.tenant,
            name: self.name,
            transport,
            enabled: self.enabled,
            timeout_secs: self.timeout_secs,
            session_mode: self.session_mode,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
            protocol: self.protocol,
            origin: self.origin,
            max_result_bytes: self.max_result_bytes.and_then(|n| usize::try_from(n).ok()),
        })
    }

    fn decode_transport(&self, key: &SecretKey) -> Result<TransportRecord, StoreError> {
        let url = || open_url(&required(&self.url, "url")?, key);
        let headers = || open_map(self.headers_enc.as_deref(), key);
        match self.kind.as_str() {
            "stdio" => Ok(TransportRecord::Stdio {
                command: required(&self.command, "command")?,
                args: from_json(self.args_json.as_deref().unwrap_or("[]"))?,
                env: open_map(self.env_enc.as_deref(), key)?,
                cwd: self.cwd.clone(),
            }),
            "streamable-http" => Ok(TransportRecord::StreamableHttp {
                url: url()?,
                headers: headers()?,
            }),
            "sse" => Ok(TransportRecord::Sse {
                url: url()?,
                headers: headers()?,
            }),
            other => Err(StoreError::Backend(format!(
                "unknown transport kind {other:?} in the database"
            ))),
        }
    }
}

fn encode_transport(
    transport: &TransportRecord,
    key: &SecretKey,
) -> Result<TransportColumns, StoreError> {
    Ok(match transport {
        TransportRecord::Stdio {
            command,
            args,
            env,
            cwd,
        } => TransportColumns {
            command: Some(command.clone()),
            args_json: Some(to_json(args)?),
            cwd: cwd.clone(),
            env_enc: Some(seal_map(env, key)?),
            ..TransportColumns::default()
        },
        TransportRecord::StreamableHttp { url, headers }
        | TransportRecord::Sse { url, headers } => TransportColumns {
            url: Some(seal_url(url, key)?),
            headers_enc: Some(seal_map(headers, key)?),
            ..TransportColumns::default()
        },
    })
}

fn required(value: &Option<String>, column: &str) -> Result<String, StoreError> {
    value
        .clone()
        .ok_or_else(|| StoreError::Backend(format!("column {column} is unexpectedly NULL")))
}

/// A URL whose query values or userinfo may hold secrets (`?api_key=…`, `user:pw@`) is stored
/// sealed, like header values; a plain one stays readable. Sealed text starts with `v1:`,
/// which no http(s) URL does.
fn seal_url(url: &str, key: &SecretKey) -> Result<String, StoreError> {
    let authority = url.split("://").nth(1).unwrap_or(url);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
    if url.contains('?') || authority.contains('@') {
        key.seal(url.as_bytes())
    } else {
        Ok(url.to_string())
    }
}

/// Reverses [`seal_url`].
fn open_url(stored: &str, key: &SecretKey) -> Result<String, StoreError> {
    if !stored.starts_with(crate::crypto::VERSION_PREFIX) {
        return Ok(stored.to_string());
    }
    String::from_utf8(key.open(stored)?)
        .map_err(|_| StoreError::Crypto("a sealed URL is not UTF-8".into()))
}

fn seal_map(map: &BTreeMap<String, String>, key: &SecretKey) -> Result<String, StoreError> {
    key.seal(to_json(map)?.as_bytes())
}

/// A missing blob reads as an empty map; a blob that does not open is an error.
fn open_map(sealed: Option<&str>, key: &SecretKey) -> Result<BTreeMap<String, String>, StoreError> {
    let Some(sealed) = sealed else {
        return Ok(BTreeMap::new());
    };
    let plain = key.open(sealed)?;
    serde_json::from_slice(&plain)
        .map_err(|e| StoreError::Crypto(format!("decrypted secret is not a map: {e}")))
}

/// One `sessions` row; the headers are sealed as one JSON object.
pub(crate) struct SessionColumns {
    pub tenant: String,
    pub id_hash: String,
    pub prefix: String,
    pub remote_url: String,
    pub transport: String,
    pub headers_enc: String,
    pub ttl_secs: i64,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl SessionColumns {
    /// Flattens a record, sealing its headers with `key`.
    pub fn encode(record: &SessionRecord, key: &SecretKey) -> Result<Self, StoreError> {
        Ok(SessionColumns {
            tenant: record.tenant.clone(),
            id_hash: record.id_hash.clone(),
            prefix: record.prefix.clone(),
            remote_url: seal_url(&record.remote_url, key)?,
            transport: record.transport.clone(),
            headers_enc: seal_map(&record.headers, key)?,
            ttl_secs: record.ttl_secs,
            created_by: record.created_by.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
        })
    }

    /// Rebuilds the record, opening its headers with `key`.
    pub fn decode(self, key: &SecretKey) -> Result<SessionRecord, StoreError> {
        Ok(SessionRecord {
            headers: open_map(Some(&self.headers_enc), key)?,
            tenant: self.tenant,
            id_hash: self.id_hash,
            prefix: self.prefix,
            remote_url: open_url(&self.remote_url, key)?,
            transport: self.transport,
            ttl_secs: self.ttl_secs,
            created_by: self.created_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

/// One `groups` row.
pub(crate) struct GroupColumns {
    pub tenant: String,
    pub name: String,
    pub members_json: String,
    pub tools_json: Option<String>,
}

impl GroupColumns {
    pub fn encode(record: &GroupRecord) -> Result<Self, StoreError> {
        Ok(GroupColumns {
            tenant: record.tenant.clone(),
            name: record.name.clone(),
            members_json: to_json(&record.members)?,
            tools_json: record.tools.as_ref().map(to_json).transpose()?,
        })
    }

    pub fn decode(self) -> Result<GroupRecord, StoreError> {
        Ok(GroupRecord {
            tenant: self.tenant,
            name: self.name,
            members: from_json(&self.members_json)?,
            tools: self.tools_json.as_deref().map(from_json).transpose()?,
        })
    }
}

/// The members JSON of a group without `server`, or `None` when it was not a member.
pub(crate) fn members_without(
    members_json: &str,
    server: &str,
) -> Result<Option<String>, StoreError> {
    let members: Vec<String> = from_json(members_json)?;
    if !members.iter().any(|m| m == server) {
        return Ok(None);
    }
    let kept: Vec<&String> = members.iter().filter(|m| *m != server).collect();
    to_json(&kept).map(Some)
}

/// One `item_settings` row.
pub(crate) struct SettingColumns {
    pub tenant: String,
    pub server: String,
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    pub description: Option<String>,
    pub rename: Option<String>,
}

impl SettingColumns {
    pub fn encode(setting: &ItemSetting) -> Self {
        SettingColumns {
            tenant: setting.tenant.clone(),
            server: setting.server.clone(),
            kind: setting.kind.as_str().to_owned(),
            name: setting.name.clone(),
            enabled: setting.enabled,
            description: setting.description.clone(),
            rename: setting.rename.clone(),
        }
    }

    pub fn decode(self) -> Result<ItemSetting, StoreError> {
        Ok(ItemSetting {
            tenant: self.tenant,
            server: self.server,
            kind: parse_kind(&self.kind)?,
            name: self.name,
            enabled: self.enabled,
            description: self.description,
            rename: self.rename,
        })
    }
}

fn parse_kind(text: &str) -> Result<ItemKind, StoreError> {
    match text {
        "tool" => Ok(ItemKind::Tool),
        "prompt" => Ok(ItemKind::Prompt),
        other => Err(StoreError::Backend(format!(
            "unknown item kind {other:?} in the database"
        ))),
    }
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("bad JSON in the database: {e}")))
}

/// Unique violations become `Conflict`, foreign-key violations (a setting for a missing
/// server) `NotFound`; a database that cannot be reached `Unavailable`; everything else is a
/// `Backend` error. Decided by error kind, not text.
pub(crate) fn db_error(error: sqlx::Error) -> StoreError {
    if is_unavailable(&error) {
        return StoreError::Unavailable(error.to_string());
    }
    match error.as_database_error().map(|e| e.kind()) {
        Some(ErrorKind::UniqueViolation) => StoreError::Conflict,
        Some(ErrorKind::ForeignKeyViolation) => StoreError::NotFound,
        _ => StoreError::Backend(error.to_string()),
    }
}

/// Errors that say "the database is not there right now" rather than "this query is wrong":
/// socket and TLS failures, a garbled or cut stream (a connection closed during the TLS
/// request reads as a protocol error), no pooled connection in time, and PostgreSQL's connection
/// exception (08xxx), shutdown (57P01-57P03) and too-many-connections (53300) codes.
pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}
