//! Accounts as a caller may see and change them: tenants, users, API keys, a user's own
//! upstream credentials and the audit log. The role rules, input checks, password hashing and
//! id generation live here, so the HTTP layer only parses requests and renders answers.
//!
//! Who may do what: an admin everything, in any tenant; a manager everything inside their
//! tenant except creating or changing admins; a user reads themselves and manages their own
//! keys and credentials. Objects of another tenant are "not found", never "forbidden".

use std::collections::BTreeMap;

use switchboard_store::{
    ApiKeyRecord, AuditQuery, AuditRecord, DEFAULT_TENANT, RateLimit, Role, StoreError,
    TenantRecord, UserRecord,
};

use crate::hashing::{HashError, HashPool};
use crate::identity::{Identity, Principal, Via, check_password_rules, random_hex};
use crate::{ControlError, now_ms};

/// Longest key lifetime accepted (longer asks are cut to this).
const MAX_KEY_LIFETIME_SECS: u64 = 100 * 365 * 86_400;

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    /// `admin`, `manager` or `user` (absent: `user`).
    pub role: Option<String>,
    /// Absent: every group and server of the tenant.
    pub grants: Option<Vec<String>>,
}

/// Changes to a user; `None` fields stay.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub password: Option<String>,
    pub role: Option<String>,
    pub grants: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// A new API key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub expires_in_seconds: Option<u64>,
    /// Limit to these groups and servers (absent: the user's grants).
    pub allow: Option<Vec<String>>,
    /// The user it is for (absent: the caller).
    pub user_id: Option<String>,
    /// `(per_second, burst)`: the key's own request rate.
    pub rate_limit: Option<(f64, u32)>,
}

/// What `who` may do to the accounts of `tenant` (the tenant the request acts on: the
/// caller's own, or for an admin the one it names).
pub struct Accounts<'a> {
    identity: &'a Identity,
    who: &'a Principal,
    tenant: &'a str,
}

fn denied(message: &str) -> ControlError {
    ControlError::Denied(message.to_string())
}

fn no_user(id: &str) -> ControlError {
    ControlError::NotFound(format!("no user with id {id:?}"))
}

/// The tenant a login attempt for `username` is recorded in: the user's, or the default one
/// for an unknown name (so a stranger cannot learn which names exist from where it lands).
pub async fn login_tenant(identity: &Identity, username: &str) -> String {
    match identity.store_ref().get_user_by_name(username).await {
        Ok(Some(u)) => u.tenant,
        _ => DEFAULT_TENANT.to_string(),
    }
}

/// Hashes on the bounded pool: argon2id takes tens of milliseconds and 19 MiB by design.
async fn hash_password(password: String) -> Result<String, ControlError> {
    HashPool::global()
        .hash(password)
        .await
        .map_err(|e| match e {
            HashError::Busy => ControlError::Throttled(
                "every password-hashing worker is busy; try again in a moment".into(),
            ),
            HashError::Failed(m) => ControlError::Internal(m),
        })
}

fn check_username(name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "invalid user name {name:?}: use 1-64 letters, digits, '.', '_', '@' or '-'"
        )))
    }
}

impl<'a> Accounts<'a> {
    pub fn new(identity: &'a Identity, who: &'a Principal, tenant: &'a str) -> Accounts<'a> {
        Accounts {
            identity,
            who,
            tenant,
        }
    }

    fn store(&self) -> &dyn switchboard_store::Store {
        self.identity.store_ref()
    }

    fn parse_role(&self, text: &str) -> Result<Role, ControlError> {
        let role = Role::parse(text).ok_or_else(|| {
            ControlError::Invalid(format!("unknown role {text:?}: use admin, manager or user"))
        })?;
        if role == Role::Admin && !self.who.is_admin() {
            return Err(denied("only an admin grants the admin role"));
        }
        Ok(role)
    }

    /// Tenants: an admin sees all, anyone else their own.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, ControlError> {
        Ok(self
            .store()
            .list_tenants()
            .await?
            .into_iter()
            .filter(|t| self.who.is_admin() || t.name == self.who.tenant)
            .collect())
    }

    /// The tenant's users.
    pub async fn users(&self) -> Result<Vec<UserRecord>, ControlError> {
        Ok(self.store().list_users(Some(self.tenant)).await?)
    }

    /// A user of the tenant.
    pub async fn user(&self, id: &str) -> Result<UserRecord, ControlError> {
        self.store()
            .get_user(id)
            .await?
            .filter(|u| u.tenant == self.tenant)
            .ok_or_else(|| no_user(id))
    }

    /// Creates a user in the tenant. The name is unique across tenants.
    pub async fn create_user(&self, input: NewUser) -> Result<UserRecord, ControlError> {
        check_username(&input.username)?;
        check_password_rules(&input.password).map_err(ControlError::Invalid)?;
        let role = self.parse_role(input.role.as_deref().unwrap_or("user"))?;
        let password_hash = hash_password(input.password).await?;
        let now = now_ms();
        let user = UserRecord {
            id: random_hex(12),
            tenant: self.tenant.to_string(),
            username: input.username,
            password_hash,
            role,
            grants: input.grants.unwrap_or_else(|| vec!["*".into()]),
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store().insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict => {
                ControlError::Conflict(format!("the user name {:?} is taken", user.username))
            }
            e => e.into(),
        })?;
        Ok(user)
    }

    /// Changes a user's password, role, grants or disabled state.
    pub async fn update_user(
        &self,
        id: &str,
        change: UserChange,
    ) -> Result<UserRecord, ControlError> {
        let mut user = self.user(id).await?;
        if user.role == Role::Admin && !self.who.is_admin() {
            return Err(denied("only an admin changes an admin"));
        }
        if let Some(role) = &change.role {
            user.role = self.parse_role(role)?;
        }
        if let Some(grants) = change.grants {
            user.grants = grants;
        }
        if let Some(disabled) = change.disabled {
            user.disabled_at = disabled.then(|| user.disabled_at.unwrap_or_else(now_ms));
        }
        if let Some(password) = change.password {
            check_password_rules(&password).map_err(ControlError::Invalid)?;
            user.password_hash = hash_password(password).await?;
        }
        user.updated_at = now_ms();
        self.store().update_user(&user).await?;
        Ok(user)
    }

    /// Deletes a user with their keys and tokens.
    pub async fn delete_user(&self, id: &str) -> Result<(), ControlError> {
        let user = self.user(id).await?;
        if user.role == Role::Admin && !self.who.is_admin() {
            return Err(denied("only an admin deletes an admin"));
        }
        self.store().delete_user(&user.id).await?;
        Ok(())
    }

    /// Keys: a manager sees the tenant's, a user their own, a credential without a user none.
    pub async fn keys(&self) -> Result<Vec<ApiKeyRecord>, ControlError> {
        let own = if self.who.can_manage() {
            None
        } else {
            match self.who.user_id.as_deref() {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            }
        };
        Ok(self.store().list_keys(self.tenant, own).await?)
    }

    /// The user a new key is for: `user_id` when given (managers), else the caller.
    async fn key_owner(&self, user_id: Option<&str>) -> Result<UserRecord, ControlError> {
        let who = self.who;
        let id = match (user_id, &who.user_id) {
            (Some(id), _) => id.to_string(),
            (None, Some(own)) => own.clone(),
            (None, None) => {
                return Err(ControlError::Invalid(
                    "the admin token has no user of its own: pass user_id".into(),
                ));
            }
        };
        if Some(&id) != who.user_id.as_ref() && !who.can_manage() {
            return Err(no_user(&id));
        }
        let user = self.user(&id).await?;
        // A key acts as its user: a manager holding an admin's key would be an admin.
        if user.role == Role::Admin && !who.is_admin() && Some(&user.id) != who.user_id.as_ref() {
            return Err(denied("only an admin creates keys for an admin"));
        }
        Ok(user)
    }

    /// Creates a key; returns its record and the key itself (shown once).
    pub async fn create_key(&self, input: NewKey) -> Result<(ApiKeyRecord, String), ControlError> {
        let who = self.who;
        if input.name.trim().is_empty() || input.name.len() > 128 {
            return Err(ControlError::Invalid(
                "a key needs a name of 1-128 characters".into(),
            ));
        }
        if let (Via::ApiKey(_), Some(limit)) = (&who.via, &who.key_allow) {
            let Some(allow) = &input.allow else {
                return Err(ControlError::Invalid(
                    "a limited key cannot create an unlimited one: pass allow".into(),
                ));
            };
            if !allow
                .iter()
                .all(|a| limit.iter().any(|l| l == "*" || l == a))
            {
                return Err(denied(
                    "a limited key creates keys only within its own allowlist",
                ));
            }
        }
        let rate_limit = match input.rate_limit {
            None => None,
            Some((per_second, burst))
                if !per_second.is_finite() || per_second <= 0.0 || burst == 0 =>
            {
                return Err(ControlError::Invalid(
                    "rate_limit needs per_second > 0 and burst >= 1".into(),
                ));
            }
            Some((per_second, burst)) => {
                let asked = RateLimit { per_second, burst };
                let default = self.identity.limiter().limits().per_key;
                let above = default
                    .is_some_and(|d| asked.per_second > d.per_second || asked.burst > d.burst);
                if above && !who.can_manage() {
                    return Err(denied(
                        "only admins and managers set a key's rate limit above the default",
                    ));
                }
                Some(asked)
            }
        };
        let owner = self.key_owner(input.user_id.as_deref()).await?;
        let expires_at = input
            .expires_in_seconds
            .map(|s| now_ms().saturating_add((s.min(MAX_KEY_LIFETIME_SECS) * 1000) as i64));
        Ok(self
            .identity
            .issue_key_with(&owner, &input.name, expires_at, input.allow, rate_limit)
            .await?)
    }

    /// Revokes a key: the caller's own, or as a manager any of the tenant's.
    pub async fn revoke_key(&self, id: &str) -> Result<(), ControlError> {
        let who = self.who;
        let key = self
            .store()
            .get_key(id)
            .await?
            .filter(|k| k.tenant == self.tenant)
            .filter(|k| who.can_manage() || who.user_id.as_ref() == Some(&k.user_id))
            .ok_or_else(|| ControlError::NotFound(format!("no key with id {id:?}")))?;
        self.store().revoke_key(&key.id, now_ms()).await?;
        Ok(())
    }

    /// The tenant's audit log, newest first (`all`: every tenant's, for an admin).
    pub async fn audit(
        &self,
        before: Option<i64>,
        limit: i64,
        all: bool,
    ) -> Result<Vec<AuditRecord>, ControlError> {
        let all = all && self.who.is_admin();
        Ok(self
            .store()
            .list_audit(&AuditQuery {
                tenant: (!all).then(|| self.tenant.to_string()),
                before,
                limit,
            })
            .await?)
    }

    fn own_user(&self) -> Result<&'a str, ControlError> {
        self.who.user_id.as_deref().ok_or_else(|| {
            ControlError::Invalid("the admin token has no user of its own: log in as a user".into())
        })
    }

    /// The servers the caller holds their own upstream headers for.
    pub async fn own_credentials(&self) -> Result<Vec<String>, ControlError> {
        let user = self.own_user()?;
        Ok(self.store().list_user_credentials(user).await?)
    }

    /// Stores the caller's own headers for a server of their tenant (replacing earlier ones).
    pub async fn set_own_credential(
        &self,
        server: &str,
        headers: &BTreeMap<String, String>,
    ) -> Result<(), ControlError> {
        let user = self.own_user()?;
        let tenant = &self.who.tenant;
        if self.store().get_server(tenant, server).await?.is_none() {
            return Err(ControlError::NotFound(format!(
                "no server named {server:?}"
            )));
        }
        if headers.is_empty() {
            return Err(ControlError::Invalid(
                "give at least one header, or DELETE to remove your credentials".into(),
            ));
        }
        for (name, value) in headers {
            let ok = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && reqwest::header::HeaderValue::from_str(value).is_ok();
            if !ok {
                return Err(ControlError::Invalid(format!(
                    "header {name:?} is not a valid HTTP header name and value"
                )));
            }
        }
        self.store()
            .set_user_credential(user, tenant, server, headers, now_ms())
            .await?;
        Ok(())
    }

    /// Removes the caller's own headers for a server.
    pub async fn delete_own_credential(&self, server: &str) -> Result<(), ControlError> {
        let user = self.own_user()?;
        if self.store().delete_user_credential(user, server).await? {
            Ok(())
        } else {
            Err(ControlError::NotFound(format!(
                "you hold no credentials for {server:?}"
            )))
        }
    }
}
