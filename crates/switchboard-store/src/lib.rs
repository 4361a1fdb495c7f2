//! Switchboard's store: the desired state (servers, groups, per-tool settings) behind one
//! [`Store`] trait with SQLite and PostgreSQL implementations. Only this crate contains SQL.
//!
//! Secret fields (header values, environment values) are encrypted at rest with the key
//! passed to [`open`]; records returned by the store carry them decrypted, and the API layer
//! is responsible for never showing them in clear.

use std::collections::BTreeMap;
use std::sync::Arc;

pub mod activity;
mod appender;
pub mod bus;
mod codec;
mod crypto;
pub mod identity;
mod migrations;
mod postgres;
mod sql;
mod sqlite;

pub use activity::{ActivityQuery, ActivityRow, ActivitySample, ActivityStore, ToolCallHour};
pub use crypto::{SecretKey, load_or_create_key};
pub use identity::{
    ApiKeyRecord, AuditQuery, AuditRecord, IdentityStore, RateLimit, RefreshRecord, Role,
    TenantRecord, UserRecord,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Tenant every record belongs to until tenancy lands.
pub const DEFAULT_TENANT: &str = "default";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A record with that key already exists.
    #[error("already exists")]
    Conflict,
    /// A stored secret could not be decrypted (wrong key or corrupted data).
    #[error("cannot decrypt a stored secret: {0}")]
    Crypto(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached (down, connection lost, no connection in time): the
    /// request may succeed later, so management routes answer 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

/// How to reach a server, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportRecord {
    /// A child process.
    Stdio {
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Environment (values are secrets).
        env: BTreeMap<String, String>,
        /// Working directory.
        cwd: Option<String>,
    },
    /// Streamable HTTP.
    StreamableHttp {
        /// Endpoint URL.
        url: String,
        /// Headers (values are secrets).
        headers: BTreeMap<String, String>,
    },
    /// Legacy HTTP+SSE.
    Sse {
        /// SSE URL.
        url: String,
        /// Headers (values are secrets).
        headers: BTreeMap<String, String>,
    },
}

impl TransportRecord {
    /// `stdio`, `streamable-http` or `sse`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportRecord::Stdio { .. } => "stdio",
            TransportRecord::StreamableHttp { .. } => "streamable-http",
            TransportRecord::Sse { .. } => "sse",
        }
    }
}

/// One configured server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    /// Owning tenant.
    pub tenant: String,
    /// Unique name within the tenant.
    pub name: String,
    /// How to reach it.
    pub transport: TransportRecord,
    /// Whether it should run.
    pub enabled: bool,
    /// Per-request timeout in seconds.
    pub timeout_secs: f64,
    /// `shared` or `per-client`.
    pub session_mode: String,
    /// Who created it.
    pub created_by: String,
    /// When (Unix milliseconds).
    pub created_at: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// When (Unix milliseconds).
    pub updated_at: i64,
    /// Protocol era for Streamable HTTP servers: `auto`, `legacy` or `2026-07-28`.
    pub protocol: String,
    /// Who owns the entry: [`ORIGIN_FILE`] (the servers file; changes to the file apply to
    /// it) or [`ORIGIN_API`] (created through an API; the file never overwrites it).
    pub origin: String,
    /// Largest message accepted from the server, in bytes; `None` takes `--max-result-bytes`.
    pub max_result_bytes: Option<usize>,
}

/// [`ServerRecord::origin`] of entries owned by the servers file.
pub const ORIGIN_FILE: &str = "file";
/// [`ServerRecord::origin`] of entries created (or last edited) through an API.
pub const ORIGIN_API: &str = "api";

/// A named set of servers, optionally narrowed to some tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Owning tenant.
    pub tenant: String,
    /// Unique name within the tenant (shared namespace with servers).
    pub name: String,
    /// Member server names, in order.
    pub members: Vec<String>,
    /// When set, only these exported tool names are visible through the group.
    pub tools: Option<Vec<String>>,
}

/// Whether a setting applies to a tool or a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A tool.
    Tool,
    /// A prompt.
    Prompt,
}

impl ItemKind {
    /// `tool` or `prompt`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
        }
    }
}

/// An operator's override for one tool or prompt of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSetting {
    /// Owning tenant.
    pub tenant: String,
    /// Server name.
    pub server: String,
    /// Tool or prompt.
    pub kind: ItemKind,
    /// The name as the server spells it.
    pub name: String,
    /// Hidden when false.
    pub enabled: bool,
    /// Replaces the description when set.
    pub description: Option<String>,
    /// Replaces the name (before prefixing) when set.
    pub rename: Option<String>,
}

/// A proxy session (seed 002): a caller's time-limited connection to a remote MCP server,
/// mounted on the hub under `prefix`. Kept in the store so any replica can serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Owning tenant.
    pub tenant: String,
    /// Hex SHA-256 of the session id (the id itself is never stored).
    pub id_hash: String,
    /// The server name the session is mounted under (unique within the tenant).
    pub prefix: String,
    /// The remote server's URL.
    pub remote_url: String,
    /// `streamable-http` or `sse`.
    pub transport: String,
    /// Headers sent on every request to the remote (values are secrets, sealed at rest).
    pub headers: BTreeMap<String, String>,
    /// The lifetime a refresh grants, in seconds.
    pub ttl_secs: i64,
    /// Who created it.
    pub created_by: String,
    /// When (Unix milliseconds).
    pub created_at: i64,
    /// When it expires (Unix milliseconds).
    pub expires_at: i64,
}

/// One approved tool definition (tool-definition pinning), keyed by tenant, server and tool.
/// A pin with an empty `tool` marks the server as approved even when it listed no tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPin {
    /// Owning tenant.
    pub tenant: String,
    /// Server name.
    pub server: String,
    /// The tool's name as the server spells it (empty: the server's marker).
    pub tool: String,
    /// Hex SHA-256 of `definition`.
    pub hash: String,
    /// The approved definition as canonical JSON (sorted keys).
    pub definition: String,
    /// Who approved it (`first-use` for the automatic pin).
    pub approved_by: String,
    /// When (Unix milliseconds).
    pub approved_at: i64,
}

/// The store behind a component that keeps one (the control plane, identity), for the code
/// that starts the hub and for tests. Only crates that depend on this one can name the trait,
/// so only they can reach past the component's operations: the HTTP layer does not depend on
/// this crate, and goes through the operations.
pub trait StoreAccess {
    /// The store.
    fn store(&self) -> &std::sync::Arc<dyn Store>;
}

/// The store of record.
#[async_trait::async_trait]
pub trait Store: IdentityStore + ActivityStore + Send + Sync + 'static {
    /// Servers of a tenant, by name.
    async fn list_servers(&self, tenant: &str) -> Result<Vec<ServerRecord>, StoreError>;
    /// Servers of every tenant (for the reconciler).
    async fn list_all_servers(&self) -> Result<Vec<ServerRecord>, StoreError>;
    /// One server.
    async fn get_server(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<ServerRecord>, StoreError>;
    /// Adds a server; `Conflict` if the name is taken by a server or a group of the tenant.
    async fn insert_server(&self, record: &ServerRecord) -> Result<(), StoreError>;
    /// Replaces a server (keyed by tenant + name); `NotFound` if absent. Keeps `created_*`.
    async fn update_server(&self, record: &ServerRecord) -> Result<(), StoreError>;
    /// Deletes a server with its item settings and removes it from groups; `false` if absent.
    async fn delete_server(&self, tenant: &str, name: &str) -> Result<bool, StoreError>;

    /// Groups of a tenant, by name.
    async fn list_groups(&self, tenant: &str) -> Result<Vec<GroupRecord>, StoreError>;
    /// Groups of every tenant.
    async fn list_all_groups(&self) -> Result<Vec<GroupRecord>, StoreError>;
    /// Adds a group; `Conflict` if the name is taken by a server or group of the tenant.
    async fn insert_group(&self, record: &GroupRecord) -> Result<(), StoreError>;
    /// Replaces a group; `NotFound` if absent.
    async fn update_group(&self, record: &GroupRecord) -> Result<(), StoreError>;
    /// Deletes a group; `false` if absent.
    async fn delete_group(&self, tenant: &str, name: &str) -> Result<bool, StoreError>;

    /// Settings of one server's tools and prompts.
    async fn list_item_settings(
        &self,
        tenant: &str,
        server: &str,
    ) -> Result<Vec<ItemSetting>, StoreError>;
    /// Settings of every server (for the reconciler).
    async fn list_all_item_settings(&self) -> Result<Vec<ItemSetting>, StoreError>;
    /// Inserts or replaces one setting.
    async fn upsert_item_setting(&self, setting: &ItemSetting) -> Result<(), StoreError>;
    /// Removes one setting; `false` if absent.
    async fn delete_item_setting(
        &self,
        tenant: &str,
        server: &str,
        kind: ItemKind,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Adds a session; `Conflict` if its id or prefix is taken within the tenant. Session
    /// writes do not bump the revision.
    async fn insert_session(&self, record: &SessionRecord) -> Result<(), StoreError>;
    /// One session by tenant and id hash.
    async fn get_session(
        &self,
        tenant: &str,
        id_hash: &str,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Sessions of a tenant, by expiry.
    async fn list_sessions(&self, tenant: &str) -> Result<Vec<SessionRecord>, StoreError>;
    /// Moves a session's expiry; `false` if it does not exist.
    async fn set_session_expiry(
        &self,
        tenant: &str,
        id_hash: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes a session; `false` if it did not exist (another replica may have won).
    async fn delete_session(&self, tenant: &str, id_hash: &str) -> Result<bool, StoreError>;

    /// The approved tool definitions of one server, by tool name (the marker first).
    async fn list_tool_pins(&self, tenant: &str, server: &str) -> Result<Vec<ToolPin>, StoreError>;
    /// `(server, tool, hash)` of every pin of a tenant, without definitions (for the
    /// reconciler).
    async fn list_tool_pin_hashes(
        &self,
        tenant: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Inserts or replaces `pins` and deletes the pins of the tools in `remove`, all of server
    /// `server`, in one write; `NotFound` if the server does not exist. Pins are deleted with
    /// their server.
    async fn put_tool_pins(
        &self,
        tenant: &str,
        server: &str,
        pins: &[ToolPin],
        remove: &[String],
    ) -> Result<(), StoreError>;

    /// A number that grows with every change, for replicas that poll for changes.
    async fn revision(&self) -> Result<i64, StoreError>;
    /// A small key/value area for the hub's own settings (e.g. the admin token hash).
    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets a key/value.
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// A cheap round trip (`SELECT 1`), for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Records that a client ended session `id_hash` (SHA-256 hex of its id) of `tenant`
    /// at `at` (Unix ms); recording it again changes nothing. Not a configuration change:
    /// the revision stays.
    async fn end_client_session(
        &self,
        tenant: &str,
        id_hash: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    /// `(tenant, id_hash)` of the sessions ended at or after `since`.
    async fn ended_client_sessions(&self, since: i64) -> Result<Vec<(String, String)>, StoreError>;
    /// Forgets sessions ended before `at`; returns how many.
    async fn forget_ended_sessions_before(&self, at: i64) -> Result<u64, StoreError>;
}

/// Opens the store at `url`, choosing the backend by scheme: `postgres://` or `postgresql://`
/// for PostgreSQL, `sqlite:` (`sqlite:///abs/path.db`, `sqlite://rel.db`, `sqlite::memory:`)
/// for SQLite. The schema is migrated before this returns.
pub async fn open(url: &str, key: SecretKey) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, key).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, key).await?))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported database URL {:?}: use postgres://user@host/db, sqlite:///abs/path.db, \
             sqlite://relative.db or sqlite::memory:",
            scheme_only(url)
        )))
    }
}

/// The part of a URL before `://` (or all of it), so credentials never reach an error message.
fn scheme_only(url: &str) -> &str {
    url.split_once("://").map_or(url, |(scheme, _)| scheme)
}
