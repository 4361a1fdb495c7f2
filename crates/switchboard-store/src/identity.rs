//! Identity records: tenants, users, API keys, refresh tokens, per-user upstream credentials
//! and the audit log, behind the [`IdentityStore`] trait (a supertrait of [`crate::Store`]).
//!
//! These writes do not bump the store revision: the revision tells replicas to reconcile the
//! servers they run, and nothing here changes what runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, in every tenant.
    Admin,
    /// Everything inside their own tenant.
    Manager,
    /// The MCP endpoints their grants allow, and their own keys.
    User,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::User => "user",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "manager" => Some(Role::Manager),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// Unique name.
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Random id.
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Login name, unique across tenants.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Groups and servers the user may use over MCP; `["*"]` is all of the tenant.
    pub grants: Vec<String>,
    /// When the user was disabled, if they are.
    pub disabled_at: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// An API key (its secret is stored only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id, part of the key text.
    pub id: String,
    /// Owning tenant (the user's).
    pub tenant: String,
    /// Owning user.
    pub user_id: String,
    /// Label.
    pub name: String,
    /// SHA-256 of the secret part, hex.
    pub secret_hash: String,
    /// Groups and servers the key is limited to; `None` means the user's grants.
    pub allow: Option<Vec<String>>,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// Last successful use, Unix milliseconds (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The key's own request rate limit, instead of the hub's per-key default.
    pub rate_limit: Option<RateLimit>,
}

/// A token-bucket rate: `per_second` requests refill continuously, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests that may be made at once after a quiet spell.
    pub burst: u32,
}

impl Eq for RateLimit {}

/// A refresh token (hashed). Tokens of one login form a family; rotation marks the old one
/// used, and presenting a used one revokes the whole family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Public id, part of the token text.
    pub id: String,
    /// The login it descends from.
    pub family: String,
    /// Owning user.
    pub user_id: String,
    /// SHA-256 of the secret part, hex.
    pub secret_hash: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// When it was exchanged.
    pub used_at: Option<i64>,
    /// When its family was revoked.
    pub revoked_at: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Increasing id (assigned by the store).
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// Tenant the action concerned.
    pub tenant: String,
    /// Who did it (`user:<name>`, `key:<id>`, `admin-token`, ...).
    pub actor: String,
    /// What, e.g. `server.create`.
    pub action: String,
    /// The object acted on.
    pub target: String,
    /// `ok` or `denied` or `failed`.
    pub outcome: String,
    /// Extra words, e.g. an error message.
    pub detail: Option<String>,
    /// The client address the request came from, when known.
    pub source: Option<String>,
}

/// Which audit entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this tenant (`None`: all).
    pub tenant: Option<String>,
    /// Entries with an id below this (paging).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Identity storage.
#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync {
    /// Every tenant, by name.
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;
    /// Adds a tenant; `Conflict` if it exists.
    async fn insert_tenant(&self, record: &TenantRecord) -> Result<(), StoreError>;
    /// Deletes a tenant with its users, keys, tokens and credentials; false if absent.
    /// The caller makes sure it holds no servers or groups.
    async fn delete_tenant(&self, name: &str) -> Result<bool, StoreError>;

    /// Users of one tenant, or of all.
    async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<UserRecord>, StoreError>;
    /// One user by id.
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// One user by login name.
    async fn get_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Adds a user; `Conflict` if the name is taken, `NotFound` if the tenant is missing.
    async fn insert_user(&self, record: &UserRecord) -> Result<(), StoreError>;
    /// Replaces a user (by id); `NotFound` if absent.
    async fn update_user(&self, record: &UserRecord) -> Result<(), StoreError>;
    /// Deletes a user and their keys, tokens and credentials; false if absent.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;

    /// Keys of a tenant, or of one user.
    async fn list_keys(
        &self,
        tenant: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// One key by id.
    async fn get_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Adds a key.
    async fn insert_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError>;
    /// Revokes a key; false if absent or already revoked.
    async fn revoke_key(&self, id: &str, at: i64) -> Result<bool, StoreError>;
    /// Records a use.
    async fn touch_key(&self, id: &str, at: i64) -> Result<(), StoreError>;

    /// Adds a refresh token.
    async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError>;
    /// One refresh token by id.
    async fn get_refresh(&self, id: &str) -> Result<Option<RefreshRecord>, StoreError>;
    /// Marks a token used; false if it was already used (or is absent): exactly one of two
    /// concurrent exchanges wins.
    async fn use_refresh(&self, id: &str, at: i64) -> Result<bool, StoreError>;
    /// Revokes every token of a family.
    async fn revoke_family(&self, family: &str, at: i64) -> Result<(), StoreError>;

    /// A user's own headers for a server.
    async fn get_user_credential(
        &self,
        user_id: &str,
        server: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StoreError>;
    /// Sets a user's own headers for a server (encrypted at rest).
    async fn set_user_credential(
        &self,
        user_id: &str,
        tenant: &str,
        server: &str,
        headers: &BTreeMap<String, String>,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Removes them; false if absent.
    async fn delete_user_credential(&self, user_id: &str, server: &str)
    -> Result<bool, StoreError>;
    /// Servers a user holds credentials for.
    async fn list_user_credentials(&self, user_id: &str) -> Result<Vec<String>, StoreError>;

    /// Appends an entry (its `id` is ignored).
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    /// Entries, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
    /// Deletes the entries older than `at` (Unix milliseconds); returns how many.
    async fn delete_audit_before(&self, at: i64) -> Result<u64, StoreError>;

    /// A 32-byte secret kept sealed under `meta` key `name`, created on first use. Replicas
    /// that share the store (and its secret key) get the same bytes.
    async fn shared_secret(&self, name: &str) -> Result<Vec<u8>, StoreError>;
}

pub(crate) const LIST_TENANTS: &str = "SELECT name, created_at FROM tenants ORDER BY name";
pub(crate) const INSERT_TENANT: &str = "INSERT INTO tenants (name, created_at) VALUES ($1, $2)";
pub(crate) const DELETE_TENANT_CREDENTIALS: &str = "DELETE FROM user_credentials WHERE tenant = $1";
pub(crate) const DELETE_TENANT_KEYS: &str = "DELETE FROM api_keys WHERE tenant = $1";
pub(crate) const DELETE_TENANT_REFRESH: &str =
    "DELETE FROM refresh_tokens WHERE user_id IN (SELECT id FROM users WHERE tenant = $1)";
pub(crate) const DELETE_TENANT_USERS: &str = "DELETE FROM users WHERE tenant = $1";
pub(crate) const DELETE_TENANT: &str = "DELETE FROM tenants WHERE name = $1";

macro_rules! user_select {
    ($filter:literal) => {
        concat!(
            "SELECT id, tenant, username, password_hash, role, grants_json, disabled_at, \
             created_at, updated_at FROM users ",
            $filter
        )
    };
}
pub(crate) const LIST_USERS: &str = user_select!("ORDER BY tenant, username");
pub(crate) const LIST_TENANT_USERS: &str = user_select!("WHERE tenant = $1 ORDER BY username");
pub(crate) const GET_USER: &str = user_select!("WHERE id = $1");
pub(crate) const GET_USER_BY_NAME: &str = user_select!("WHERE username = $1");
pub(crate) const INSERT_USER: &str = "INSERT INTO users (id, tenant, username, password_hash, \
    role, grants_json, disabled_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const UPDATE_USER: &str = "UPDATE users SET tenant = $2, username = $3, \
    password_hash = $4, role = $5, grants_json = $6, disabled_at = $7, created_at = $8, \
    updated_at = $9 WHERE id = $1";
pub(crate) const DELETE_USER_CREDENTIALS: &str = "DELETE FROM user_credentials WHERE user_id = $1";
pub(crate) const DELETE_USER_KEYS: &str = "DELETE FROM api_keys WHERE user_id = $1";
pub(crate) const DELETE_USER_REFRESH: &str = "DELETE FROM refresh_tokens WHERE user_id = $1";
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";

macro_rules! key_select {
    ($filter:literal) => {
        concat!(
            "SELECT id, tenant, user_id, name, secret_hash, allow_json, expires_at, \
             last_used_at, revoked_at, created_at, rate_limit_json FROM api_keys ",
            $filter
        )
    };
}
pub(crate) const LIST_TENANT_KEYS: &str = key_select!("WHERE tenant = $1 ORDER BY created_at, id");
pub(crate) const LIST_USER_KEYS: &str =
    key_select!("WHERE tenant = $1 AND user_id = $2 ORDER BY created_at, id");
pub(crate) const GET_KEY: &str = key_select!("WHERE id = $1");
pub(crate) const INSERT_KEY: &str = "INSERT INTO api_keys (id, tenant, user_id, name, \
    secret_hash, allow_json, expires_at, last_used_at, revoked_at, created_at, rate_limit_json) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub(crate) const REVOKE_KEY: &str =
    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
pub(crate) const TOUCH_KEY: &str = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";

pub(crate) const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (id, family, user_id, \
    secret_hash, expires_at, used_at, revoked_at, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const GET_REFRESH: &str = "SELECT id, family, user_id, secret_hash, expires_at, \
    used_at, revoked_at, created_at FROM refresh_tokens WHERE id = $1";
pub(crate) const USE_REFRESH: &str =
    "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL";
pub(crate) const REVOKE_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL";

pub(crate) const GET_CREDENTIAL: &str =
    "SELECT headers_enc FROM user_credentials WHERE user_id = $1 AND server = $2";
pub(crate) const SET_CREDENTIAL: &str = "INSERT INTO user_credentials (user_id, tenant, server, \
    headers_enc, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, server) \
    DO UPDATE SET headers_enc = excluded.headers_enc, updated_at = excluded.updated_at";
pub(crate) const DELETE_CREDENTIAL: &str =
    "DELETE FROM user_credentials WHERE user_id = $1 AND server = $2";
pub(crate) const LIST_CREDENTIALS: &str =
    "SELECT server FROM user_credentials WHERE user_id = $1 ORDER BY server";

pub(crate) const APPEND_AUDIT: &str = "INSERT INTO audit_log (at, tenant, actor, action, target, \
    outcome, detail, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const DELETE_AUDIT_BEFORE: &str = "DELETE FROM audit_log WHERE at < $1";
/// `$1` tenant (NULL: all), `$2` id bound (NULL: none), `$3` limit.
pub(crate) const LIST_AUDIT: &str = "SELECT id, at, tenant, actor, action, target, outcome, \
    detail, source FROM audit_log WHERE ($1 IS NULL OR tenant = $1) AND ($2 IS NULL OR id < $2) \
    ORDER BY id DESC LIMIT $3";

pub(crate) const INSERT_META_IF_ABSENT: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";

pub(crate) fn grants_to_json(grants: &[String]) -> String {
    serde_json::to_string(grants).expect("a list of strings serialises")
}

pub(crate) fn grants_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("bad JSON in the database: {e}")))
}

/// Implements [`IdentityStore`] for `$store` (same requirements as `impl_store!`, whose
/// helpers it uses, so invoke it after that macro in the same module).
macro_rules! impl_identity {
    ($store:ident, $db:ty) => {
        use std::collections::BTreeMap as IdMap;

        use $crate::identity::{
            self as id, ApiKeyRecord, AuditQuery, AuditRecord, RefreshRecord, Role, TenantRecord,
            UserRecord,
        };

        fn user_row(row: &DbRow) -> Result<UserRecord, StoreError> {
            let role: String = row.try_get(4).map_err(db_error)?;
            let grants: String = row.try_get(5).map_err(db_error)?;
            Ok(UserRecord {
                id: row.try_get(0).map_err(db_error)?,
                tenant: row.try_get(1).map_err(db_error)?,
                username: row.try_get(2).map_err(db_error)?,
                password_hash: row.try_get(3).map_err(db_error)?,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Backend(format!("unknown role {role:?}")))?,
                grants: id::grants_from_json(&grants)?,
                disabled_at: row.try_get(6).map_err(db_error)?,
                created_at: row.try_get(7).map_err(db_error)?,
                updated_at: row.try_get(8).map_err(db_error)?,
            })
        }

        fn key_row(row: &DbRow) -> Result<ApiKeyRecord, StoreError> {
            let allow: Option<String> = row.try_get(5).map_err(db_error)?;
            Ok(ApiKeyRecord {
                id: row.try_get(0).map_err(db_error)?,
                tenant: row.try_get(1).map_err(db_error)?,
                user_id: row.try_get(2).map_err(db_error)?,
                name: row.try_get(3).map_err(db_error)?,
                secret_hash: row.try_get(4).map_err(db_error)?,
                allow: allow.as_deref().map(id::grants_from_json).transpose()?,
                expires_at: row.try_get(6).map_err(db_error)?,
                last_used_at: row.try_get(7).map_err(db_error)?,
                revoked_at: row.try_get(8).map_err(db_error)?,
                created_at: row.try_get(9).map_err(db_error)?,
                rate_limit: {
                    let text: Option<String> = row.try_get(10).map_err(db_error)?;
                    text.as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| {
                            StoreError::Backend(format!("bad JSON in the database: {e}"))
                        })?
                },
            })
        }

        fn refresh_row(row: &DbRow) -> Result<RefreshRecord, StoreError> {
            Ok(RefreshRecord {
                id: row.try_get(0).map_err(db_error)?,
                family: row.try_get(1).map_err(db_error)?,
                user_id: row.try_get(2).map_err(db_error)?,
                secret_hash: row.try_get(3).map_err(db_error)?,
                expires_at: row.try_get(4).map_err(db_error)?,
                used_at: row.try_get(5).map_err(db_error)?,
                revoked_at: row.try_get(6).map_err(db_error)?,
                created_at: row.try_get(7).map_err(db_error)?,
            })
        }

        fn audit_row(row: &DbRow) -> Result<AuditRecord, StoreError> {
            Ok(AuditRecord {
                id: row.try_get(0).map_err(db_error)?,
                at: row.try_get(1).map_err(db_error)?,
                tenant: row.try_get(2).map_err(db_error)?,
                actor: row.try_get(3).map_err(db_error)?,
                action: row.try_get(4).map_err(db_error)?,
                target: row.try_get(5).map_err(db_error)?,
                outcome: row.try_get(6).map_err(db_error)?,
                detail: row.try_get(7).map_err(db_error)?,
                source: row.try_get(8).map_err(db_error)?,
            })
        }

        fn bind_user(query: &'static str, u: &UserRecord) -> Query {
            sqlx::query(query)
                .bind(u.id.clone())
                .bind(u.tenant.clone())
                .bind(u.username.clone())
                .bind(u.password_hash.clone())
                .bind(u.role.as_str())
                .bind(id::grants_to_json(&u.grants))
                .bind(u.disabled_at)
                .bind(u.created_at)
                .bind(u.updated_at)
        }

        /// Runs `statements` (each bound to `arg`) in one transaction; true if the last one
        /// touched a row.
        async fn cascade(
            tx: &mut Tx,
            statements: &[&'static str],
            arg: &str,
        ) -> Result<bool, StoreError> {
            let mut last = 0;
            for statement in statements {
                last = execute(tx, sqlx::query(*statement).bind(arg.to_string())).await?;
            }
            Ok(last > 0)
        }

        impl $store {
            async fn run(&self, query: Query) -> Result<u64, StoreError> {
                Ok(query
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?
                    .rows_affected())
            }

            async fn fetch_users(
                &self,
                sql: &'static str,
                arg: Option<&str>,
            ) -> Result<Vec<UserRecord>, StoreError> {
                let mut query = sqlx::query(sql);
                if let Some(arg) = arg {
                    query = query.bind(arg.to_string());
                }
                let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter().map(user_row).collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::identity::IdentityStore for $store {
            async fn list_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
                let rows = sqlx::query(id::LIST_TENANTS)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(TenantRecord {
                            name: row.try_get(0).map_err(db_error)?,
                            created_at: row.try_get(1).map_err(db_error)?,
                        })
                    })
                    .collect()
            }

            async fn insert_tenant(&self, record: &TenantRecord) -> Result<(), StoreError> {
                let query = sqlx::query(id::INSERT_TENANT)
                    .bind(record.name.clone())
                    .bind(record.created_at);
                self.run(query).await.map(drop)
            }

            async fn delete_tenant(&self, name: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_tx().await?;
                let deleted = cascade(
                    &mut tx,
                    &[
                        id::DELETE_TENANT_CREDENTIALS,
                        id::DELETE_TENANT_KEYS,
                        id::DELETE_TENANT_REFRESH,
                        id::DELETE_TENANT_USERS,
                        id::DELETE_TENANT,
                    ],
                    name,
                )
                .await?;
                tx.commit().await.map_err(db_error)?;
                Ok(deleted)
            }

            async fn list_users(
                &self,
                tenant: Option<&str>,
            ) -> Result<Vec<UserRecord>, StoreError> {
                match tenant {
                    Some(t) => self.fetch_users(id::LIST_TENANT_USERS, Some(t)).await,
                    None => self.fetch_users(id::LIST_USERS, None).await,
                }
            }

            async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
                Ok(self.fetch_users(id::GET_USER, Some(user_id)).await?.pop())
            }

            async fn get_user_by_name(
                &self,
                username: &str,
            ) -> Result<Option<UserRecord>, StoreError> {
                Ok(self
                    .fetch_users(id::GET_USER_BY_NAME, Some(username))
                    .await?
                    .pop())
            }

            async fn insert_user(&self, record: &UserRecord) -> Result<(), StoreError> {
                self.run(bind_user(id::INSERT_USER, record)).await.map(drop)
            }

            async fn update_user(&self, record: &UserRecord) -> Result<(), StoreError> {
                if self.run(bind_user(id::UPDATE_USER, record)).await? == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_tx().await?;
                let deleted = cascade(
                    &mut tx,
                    &[
                        id::DELETE_USER_CREDENTIALS,
                        id::DELETE_USER_KEYS,
                        id::DELETE_USER_REFRESH,
                        id::DELETE_USER,
                    ],
                    user_id,
                )
                .await?;
                tx.commit().await.map_err(db_error)?;
                Ok(deleted)
            }

            async fn list_keys(
                &self,
                tenant: &str,
                user_id: Option<&str>,
            ) -> Result<Vec<ApiKeyRecord>, StoreError> {
                let rows = match user_id {
                    Some(u) => {
                        sqlx::query(id::LIST_USER_KEYS)
                            .bind(tenant.to_string())
                            .bind(u.to_string())
                            .fetch_all(&self.pool)
                            .await
                    }
                    None => {
                        sqlx::query(id::LIST_TENANT_KEYS)
                            .bind(tenant.to_string())
                            .fetch_all(&self.pool)
                            .await
                    }
                }
                .map_err(db_error)?;
                rows.iter().map(key_row).collect()
            }

            async fn get_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
                let row = sqlx::query(id::GET_KEY)
                    .bind(key_id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(key_row).transpose()
            }

            async fn insert_key(&self, k: &ApiKeyRecord) -> Result<(), StoreError> {
                let query = sqlx::query(id::INSERT_KEY)
                    .bind(k.id.clone())
                    .bind(k.tenant.clone())
                    .bind(k.user_id.clone())
                    .bind(k.name.clone())
                    .bind(k.secret_hash.clone())
                    .bind(k.allow.as_deref().map(id::grants_to_json))
                    .bind(k.expires_at)
                    .bind(k.last_used_at)
                    .bind(k.revoked_at)
                    .bind(k.created_at)
                    .bind(
                        k.rate_limit
                            .map(|r| serde_json::to_string(&r).expect("a rate limit serialises")),
                    );
                self.run(query).await.map(drop)
            }

            async fn revoke_key(&self, key_id: &str, at: i64) -> Result<bool, StoreError> {
                let query = sqlx::query(id::REVOKE_KEY)
                    .bind(key_id.to_string())
                    .bind(at);
                Ok(self.run(query).await? > 0)
            }

            async fn touch_key(&self, key_id: &str, at: i64) -> Result<(), StoreError> {
                let query = sqlx::query(id::TOUCH_KEY).bind(key_id.to_string()).bind(at);
                self.run(query).await.map(drop)
            }

            async fn insert_refresh(&self, r: &RefreshRecord) -> Result<(), StoreError> {
                let query = sqlx::query(id::INSERT_REFRESH)
                    .bind(r.id.clone())
                    .bind(r.family.clone())
                    .bind(r.user_id.clone())
                    .bind(r.secret_hash.clone())
                    .bind(r.expires_at)
                    .bind(r.used_at)
                    .bind(r.revoked_at)
                    .bind(r.created_at);
                self.run(query).await.map(drop)
            }

            async fn get_refresh(
                &self,
                token_id: &str,
            ) -> Result<Option<RefreshRecord>, StoreError> {
                let row = sqlx::query(id::GET_REFRESH)
                    .bind(token_id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(refresh_row).transpose()
            }

            async fn use_refresh(&self, token_id: &str, at: i64) -> Result<bool, StoreError> {
                let query = sqlx::query(id::USE_REFRESH)
                    .bind(token_id.to_string())
                    .bind(at);
                Ok(self.run(query).await? > 0)
            }

            async fn revoke_family(&self, family: &str, at: i64) -> Result<(), StoreError> {
                let query = sqlx::query(id::REVOKE_FAMILY)
                    .bind(family.to_string())
                    .bind(at);
                self.run(query).await.map(drop)
            }

            async fn get_user_credential(
                &self,
                user_id: &str,
                server: &str,
            ) -> Result<Option<IdMap<String, String>>, StoreError> {
                let row = sqlx::query(id::GET_CREDENTIAL)
                    .bind(user_id.to_string())
                    .bind(server.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                let sealed: String = row.try_get(0).map_err(db_error)?;
                let plain = self.key.open(&sealed)?;
                serde_json::from_slice(&plain)
                    .map(Some)
                    .map_err(|e| StoreError::Backend(format!("bad JSON in the database: {e}")))
            }

            async fn set_user_credential(
                &self,
                user_id: &str,
                tenant: &str,
                server: &str,
                headers: &IdMap<String, String>,
                at: i64,
            ) -> Result<(), StoreError> {
                let plain = serde_json::to_vec(headers).expect("a string map serialises");
                let sealed = self.key.seal(&plain)?;
                let query = sqlx::query(id::SET_CREDENTIAL)
                    .bind(user_id.to_string())
                    .bind(tenant.to_string())
                    .bind(server.to_string())
                    .bind(sealed)
                    .bind(at);
                self.run(query).await.map(drop)
            }

            async fn delete_user_credential(
                &self,
                user_id: &str,
                server: &str,
            ) -> Result<bool, StoreError> {
                let query = sqlx::query(id::DELETE_CREDENTIAL)
                    .bind(user_id.to_string())
                    .bind(server.to_string());
                Ok(self.run(query).await? > 0)
            }

            async fn list_user_credentials(
                &self,
                user_id: &str,
            ) -> Result<Vec<String>, StoreError> {
                let rows = sqlx::query(id::LIST_CREDENTIALS)
                    .bind(user_id.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| row.try_get(0).map_err(db_error))
                    .collect()
            }

            async fn append_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
                let query = sqlx::query(id::APPEND_AUDIT)
                    .bind(r.at)
                    .bind(r.tenant.clone())
                    .bind(r.actor.clone())
                    .bind(r.action.clone())
                    .bind(r.target.clone())
                    .bind(r.outcome.clone())
                    .bind(r.detail.clone())
                    .bind(r.source.clone());
                self.run(query).await.map(drop)
            }

            async fn delete_audit_before(&self, at: i64) -> Result<u64, StoreError> {
                self.run(sqlx::query(id::DELETE_AUDIT_BEFORE).bind(at))
                    .await
            }

            async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
                let rows = sqlx::query(id::LIST_AUDIT)
                    .bind(q.tenant.clone())
                    .bind(q.before)
                    .bind(q.limit.clamp(1, 1000))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter().map(audit_row).collect()
            }

            async fn shared_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
                let mut fresh = [0u8; 32];
                getrandom::fill(&mut fresh)
                    .map_err(|e| StoreError::Crypto(format!("no randomness: {e}")))?;
                let sealed = self.key.seal(&fresh)?;
                let query = sqlx::query(id::INSERT_META_IF_ABSENT)
                    .bind(name.to_string())
                    .bind(sealed);
                self.run(query).await?;
                let row = sqlx::query(sql::GET_META)
                    .bind(name.to_string())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                let stored: String = row.try_get(0).map_err(db_error)?;
                self.key.open(&stored)
            }
        }
    };
}
pub(crate) use impl_identity;
