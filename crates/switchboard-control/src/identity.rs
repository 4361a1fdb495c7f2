//! Who is calling: API keys, the JWTs the hub issues at login (with rotating refresh tokens),
//! JWTs from an external issuer checked against its JWKS, and the bootstrap admin token (which
//! the HTTP layer checks itself). The result is a [`Principal`]: a tenant, a role, and the
//! groups and servers it may use over MCP.
//!
//! Every credential is checked against the store on every request, so a revoked key, a
//! disabled user or a changed role takes effect on the next request, on every replica.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_store::{
    ApiKeyRecord, AuditRecord, RateLimit, RefreshRecord, Role, Store, StoreError, UserRecord,
};
use tokio_util::sync::CancellationToken;

use crate::hashing::{HashError, HashPool};
use crate::now_ms;
use crate::ratelimit::{Limiter, RateLimits};

/// The grant that stands for every group and server of the tenant.
pub const ALL: &str = "*";

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The bootstrap admin token.
    AdminToken,
    /// An API key (its id).
    ApiKey(String),
    /// A JWT the hub issued.
    Session,
    /// A JWT from the configured external issuer.
    External,
    /// No credential: the MCP service's loopback default.
    Anonymous,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant it belongs to.
    pub tenant: String,
    /// The user, when there is one (not for the admin token).
    pub user_id: Option<String>,
    /// Login name, or `admin-token` / `anonymous`.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The user's grants (`["*"]`: all of the tenant).
    pub grants: Vec<String>,
    /// The key's allowlist, if the credential is a key that has one.
    pub key_allow: Option<Vec<String>>,
    /// The credential.
    pub via: Via,
    /// The key's own request rate limit, when the credential is a key that has one.
    pub rate_limit: Option<RateLimit>,
}

fn grants_allow(list: &[String], name: &str) -> bool {
    list.iter().any(|g| g == ALL || g == name)
}

impl Principal {
    /// `user`, authenticated by `via`, limited further by a key's `key_allow`.
    pub fn of_user(user: UserRecord, key_allow: Option<Vec<String>>, via: Via) -> Principal {
        Principal {
            tenant: user.tenant,
            user_id: Some(user.id),
            name: user.username,
            role: user.role,
            grants: user.grants,
            key_allow,
            via,
            rate_limit: None,
        }
    }

    /// The bootstrap admin (admin token): an admin of the default tenant.
    pub fn admin_token() -> Principal {
        Principal {
            tenant: switchboard_store::DEFAULT_TENANT.to_string(),
            user_id: None,
            name: "admin-token".into(),
            role: Role::Admin,
            grants: vec![ALL.into()],
            key_allow: None,
            via: Via::AdminToken,
            rate_limit: None,
        }
    }

    /// A caller without credentials on the MCP service's loopback listener: the default
    /// tenant, everything in it, no management rights.
    pub fn anonymous() -> Principal {
        Principal {
            tenant: switchboard_store::DEFAULT_TENANT.to_string(),
            user_id: None,
            name: "anonymous".into(),
            role: Role::User,
            grants: vec![ALL.into()],
            key_allow: None,
            via: Via::Anonymous,
            rate_limit: None,
        }
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::AdminToken => "admin-token".into(),
            Via::Anonymous => self.name.clone(),
            Via::ApiKey(id) => format!("user:{} (key {id})", self.name),
            Via::Session | Via::External => format!("user:{}", self.name),
        }
    }

    /// Admin or manager.
    pub fn can_manage(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Manager)
    }

    /// Admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// May use the MCP endpoint of group or server `name`.
    pub fn may_use(&self, name: &str) -> bool {
        grants_allow(&self.grants, name)
            && self
                .key_allow
                .as_deref()
                .is_none_or(|a| grants_allow(a, name))
    }

    /// May use every group and server of the tenant (the aggregate `/mcp` endpoint).
    pub fn sees_everything(&self) -> bool {
        self.may_use(ALL) && self.grants.iter().any(|g| g == ALL)
    }
}

/// Why a credential was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credential is missing, malformed, wrong, expired or revoked (401).
    #[error("{0}")]
    Invalid(String),
    /// Too many failed logins (429).
    #[error("too many failed logins; try again in {retry_after} s")]
    Throttled {
        /// Seconds until the next attempt is allowed.
        retry_after: u64,
    },
    /// Every password-hashing worker stayed busy (429).
    #[error("too many logins are being checked at once; try again in {retry_after} s")]
    Busy {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The store failed (500).
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

fn invalid(message: impl Into<String>) -> AuthError {
    AuthError::Invalid(message.into())
}

/// An external OAuth issuer whose access tokens the hub accepts.
#[derive(Debug, Clone)]
pub struct ExternalIssuer {
    /// Expected `iss`.
    pub issuer: String,
    /// Where its signing keys are published.
    pub jwks_url: String,
    /// Expected `aud`: the hub's resource URL.
    pub audience: String,
}

/// Identity settings.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token.
    pub refresh_ttl: Duration,
    /// Failed logins per user name within [`IdentityConfig::throttle_window`] before refusing.
    pub max_failures_per_user: u32,
    /// Failed logins per client address within the window before refusing.
    pub max_failures_per_addr: u32,
    /// The throttle window.
    pub throttle_window: Duration,
    /// Accept tokens from this issuer too.
    pub external: Option<ExternalIssuer>,
    /// How long a checked credential is remembered (zero: check the store every time).
    pub cache_ttl: Duration,
    /// Audit rows of refused requests without a credential, per client address per minute;
    /// beyond it they are counted and written as one summary row.
    pub audit_rows_per_addr_per_minute: u32,
    /// The window of that bound (a minute; shorter in tests).
    pub audit_window: Duration,
    /// How long audit rows are kept (`None`: forever).
    pub audit_retention: Option<Duration>,
    /// Request rate limits per credential and per tenant.
    pub rate_limits: RateLimits,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            max_failures_per_user: 5,
            max_failures_per_addr: 20,
            throttle_window: Duration::from_secs(300),
            external: None,
            cache_ttl: Duration::from_secs(1),
            audit_rows_per_addr_per_minute: 10,
            audit_window: Duration::from_secs(60),
            audit_retention: Some(Duration::from_secs(90 * 24 * 3600)),
            rate_limits: RateLimits::default(),
        }
    }
}

/// What a login or a refresh returns.
#[derive(Debug, Clone, Serialize)]
pub struct Tokens {
    /// The JWT to send as `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The one-use token that gets the next pair.
    pub refresh_token: String,
    /// Seconds the refresh token lives.
    pub refresh_expires_in: u64,
}

/// The issuer and audience of the hub's own tokens.
const ISSUER: &str = "switchboard";
const AUDIENCE: &str = "switchboard";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    ten: String,
    role: String,
}

#[derive(Debug, Deserialize)]
struct ExternalClaims {
    sub: String,
    exp: u64,
}

/// A user's own upstream headers, by server name.
pub type UserHeaderMap = HashMap<String, BTreeMap<String, String>>;

/// A user's remembered headers: when they were read, and what (`None`: none stored).
type RememberedHeaders = (Instant, Option<Arc<UserHeaderMap>>);

/// A credential that passed its checks recently.
struct Cached {
    principal: Principal,
    valid_until: Option<i64>,
    checked: Instant,
}

/// Login attempts under one throttle key (a user name or an address) in the current window.
/// An attempt is counted when it starts, before its password is hashed, so concurrent
/// attempts cannot all pass the check; a successful one gives its count back.
struct Window {
    /// Attempts counted: finished failures plus those in flight.
    attempts: u32,
    /// Of those, attempts still in flight.
    pending: u32,
    since: Instant,
}

/// Refused requests without a credential from one address in the current minute.
struct AuditWindow {
    since: Instant,
    since_ms: i64,
    written: u32,
    suppressed: u64,
}

/// A login attempt counted against its throttle keys; settled as a failure, a success, or
/// (dropped unsettled) as if it never happened.
struct Reservation<'a> {
    identity: &'a Identity,
    keys: Vec<String>,
    settled: bool,
}

impl Reservation<'_> {
    /// The attempt failed: it stays counted.
    fn failed(mut self) {
        self.settled = true;
        let mut map = self.identity.throttle.lock().expect("throttle lock");
        for key in &self.keys {
            if let Some(w) = map.get_mut(key) {
                w.pending = w.pending.saturating_sub(1);
            }
        }
    }

    /// The attempt succeeded: its count is given back, and the user's earlier failures are
    /// forgotten unless other attempts on that name are still in flight.
    fn succeeded(mut self) {
        self.settled = true;
        self.refund(true);
    }

    fn refund(&self, success: bool) {
        let mut map = self.identity.throttle.lock().expect("throttle lock");
        for key in &self.keys {
            let Some(w) = map.get_mut(key) else { continue };
            w.pending = w.pending.saturating_sub(1);
            w.attempts = w.attempts.saturating_sub(1);
            if success && key.starts_with("user:") && w.pending == 0 {
                map.remove(key);
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.refund(false);
        }
    }
}

/// The longest user name a login may send (bytes); longer is refused before anything else.
pub const MAX_LOGIN_USERNAME: usize = 256;
/// The longest password a login may send (bytes).
pub const MAX_LOGIN_PASSWORD: usize = 1024;
/// The longest text an audit field keeps (bytes, the truncation mark included).
pub const MAX_AUDIT_FIELD: usize = 256;
const TRUNCATED: &str = "…[truncated]";

/// `text` cut to at most [`MAX_AUDIT_FIELD`] bytes, marked when cut.
pub fn cap_audit_field(text: &str) -> String {
    if text.len() <= MAX_AUDIT_FIELD {
        return text.to_string();
    }
    let cut = text.floor_char_boundary(MAX_AUDIT_FIELD - TRUNCATED.len());
    format!("{}{TRUNCATED}", &text[..cut])
}

#[derive(Default)]
struct JwksCache {
    keys: Option<jsonwebtoken::jwk::JwkSet>,
    fetched: Option<Instant>,
}

/// Credentials: checking them, issuing them, and the audit log.
pub struct Identity {
    store: Arc<dyn Store>,
    config: IdentityConfig,
    encoding: EncodingKey,
    decoding: DecodingKey,
    throttle: Mutex<HashMap<String, Window>>,
    audit_windows: Mutex<HashMap<IpAddr, AuditWindow>>,
    limiter: Limiter,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// Users' own upstream headers, remembered like credential checks (`None`: none stored).
    user_headers: Mutex<HashMap<String, RememberedHeaders>>,
    jwks: tokio::sync::Mutex<JwksCache>,
    http: reqwest::Client,
    /// Told when an identity write was made through this process (other replicas forget
    /// their remembered checks too).
    on_write: std::sync::OnceLock<Arc<dyn Fn() + Send + Sync>>,
}

/// Random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("the OS random source works");
    hex(&raw)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `text`, hex.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Hashes a password with argon2id (random salt, the crate's default cost).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC hash.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Parses a retention like `90d`, `12h`, `30m`, `45s` or `2w` (`off`: keep forever).
pub fn parse_retention(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 90d or 12h"))?;
    let unit_secs = match unit.trim() {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use s, m, h, d or w"
            ));
        }
    };
    if n == 0 {
        return Err(format!("{text:?}: use `off` to keep rows forever"));
    }
    Ok(Some(Duration::from_secs(n.saturating_mul(unit_secs))))
}

/// Rules for a new password.
pub fn check_password_rules(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("the password must be at least 8 characters".into());
    }
    if password.len() > 1024 {
        return Err("the password must be at most 1024 bytes".into());
    }
    Ok(())
}

/// Splits `<prefix><id>_<secret>`.
fn split_token<'a>(token: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = token.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

fn secs(d: Duration) -> i64 {
    d.as_millis() as i64
}

impl Identity {
    /// Loads the token signing key (created on first use, shared by replicas through the store).
    pub async fn new(
        store: Arc<dyn Store>,
        config: IdentityConfig,
        http: reqwest::Client,
    ) -> Result<Arc<Identity>, StoreError> {
        let secret = store.shared_secret("jwt_hs256_key").await?;
        let limiter = Limiter::new(config.rate_limits);
        Ok(Arc::new(Identity {
            store,
            config,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            throttle: Mutex::new(HashMap::new()),
            audit_windows: Mutex::new(HashMap::new()),
            limiter,
            cache: Mutex::new(HashMap::new()),
            user_headers: Mutex::new(HashMap::new()),
            on_write: std::sync::OnceLock::new(),
            jwks: tokio::sync::Mutex::new(JwksCache::default()),
            http,
        }))
    }

    /// The store, for the account operations.
    pub(crate) fn store_ref(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Settings.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Identifies the holder of a bearer credential (an API key or a JWT).
    ///
    /// A credential checked in the last [`IdentityConfig::cache_ttl`] is answered from memory
    /// (until its own expiry). Every management write through this process clears that memory
    /// ([`Identity::invalidate`]), so a revocation, a disabled user or a changed role applies to
    /// the next request here, and within `cache_ttl` on other replicas.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let ttl = self.config.cache_ttl;
        if !ttl.is_zero() {
            let cache = self.cache.lock().expect("credential cache lock");
            if let Some(hit) = cache.get(&digest)
                && hit.checked.elapsed() < ttl
                && hit.valid_until.is_none_or(|until| until > now_ms())
            {
                return Ok(hit.principal.clone());
            }
        }
        let started = Instant::now();
        let checked = self.check(token).await;
        let m = crate::metrics::metrics();
        m.store_op("credential_check", started.elapsed());
        if checked.is_err() {
            m.login_failures
                .with(&[("kind", "credential")], |c| c.inc());
        }
        let (principal, valid_until) = checked?;
        if !ttl.is_zero() {
            let mut cache = self.cache.lock().expect("credential cache lock");
            if cache.len() >= 10_000 {
                cache.retain(|_, c| c.checked.elapsed() < ttl);
            }
            cache.insert(
                digest,
                Cached {
                    principal: principal.clone(),
                    valid_until,
                    checked: Instant::now(),
                },
            );
        }
        Ok(principal)
    }

    /// Forgets every remembered credential check and user header set.
    pub fn invalidate(&self) {
        self.cache.lock().expect("credential cache lock").clear();
        self.user_headers.lock().expect("user headers lock").clear();
    }

    /// A write to users, keys, tenants or credentials was made through this process:
    /// forgets what is remembered here and tells whoever listens (the other replicas).
    pub fn written(&self) {
        self.invalidate();
        if let Some(f) = self.on_write.get() {
            f();
        }
    }

    /// Sets who hears of [`Identity::written`] (once; later calls are ignored).
    pub fn on_write(&self, f: Arc<dyn Fn() + Send + Sync>) {
        let _ = self.on_write.set(f);
    }

    /// `user`'s own upstream headers by server, if they stored any. Remembered for
    /// [`IdentityConfig::cache_ttl`] like credential checks, so a stateless client's every
    /// request does not read the store.
    pub async fn user_headers(&self, user: &str) -> Result<Option<Arc<UserHeaderMap>>, StoreError> {
        let ttl = self.config.cache_ttl;
        if let Some((at, headers)) = self
            .user_headers
            .lock()
            .expect("user headers lock")
            .get(user)
            && at.elapsed() < ttl
        {
            return Ok(headers.clone());
        }
        let mut by_server = UserHeaderMap::new();
        for server in self.store.list_user_credentials(user).await? {
            if let Some(h) = self.store.get_user_credential(user, &server).await? {
                by_server.insert(server, h);
            }
        }
        let headers = (!by_server.is_empty()).then(|| Arc::new(by_server));
        if !ttl.is_zero() {
            let mut cache = self.user_headers.lock().expect("user headers lock");
            if cache.len() >= 10_000 {
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            cache.insert(user.to_string(), (Instant::now(), headers.clone()));
        }
        Ok(headers)
    }

    /// Checks a credential against the store; also returns when it stops being valid.
    async fn check(&self, token: &str) -> Result<(Principal, Option<i64>), AuthError> {
        if token.starts_with("sb_") {
            return self.authenticate_key(token).await;
        }
        if token.split('.').count() == 3 {
            let header =
                jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
            if header.alg == Algorithm::HS256 {
                return self.authenticate_session(token).await;
            }
            if self.config.external.is_some() {
                return self.authenticate_external(token, header).await;
            }
            return Err(invalid(
                "tokens signed with this algorithm are not accepted",
            ));
        }
        Err(invalid(
            "unrecognised credential: send an API key (sb_...) or an access token",
        ))
    }

    async fn authenticate_key(&self, token: &str) -> Result<(Principal, Option<i64>), AuthError> {
        let (id, secret) = split_token(token, "sb_").ok_or_else(|| invalid("malformed API key"))?;
        let key = self
            .store
            .get_key(id)
            .await?
            .filter(|k| same(&k.secret_hash, &sha256_hex(secret)))
            .ok_or_else(|| invalid("unknown API key"))?;
        let now = now_ms();
        if key.revoked_at.is_some() {
            return Err(invalid("this API key was revoked"));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(invalid("this API key has expired"));
        }
        let user = self.active_user(&key.user_id).await?;
        if key.last_used_at.is_none_or(|at| now - at > 60_000) {
            // Best effort: a failed bookkeeping write must not fail the request.
            let store = self.store.clone();
            let id = key.id.clone();
            tokio::spawn(async move {
                let _ = store.touch_key(&id, now).await;
            });
        }
        let mut principal = Principal::of_user(user, key.allow, Via::ApiKey(key.id));
        principal.rate_limit = key.rate_limit;
        Ok((principal, key.expires_at))
    }

    async fn active_user(&self, id: &str) -> Result<UserRecord, AuthError> {
        let user = self
            .store
            .get_user(id)
            .await?
            .ok_or_else(|| invalid("the user no longer exists"))?;
        if user.disabled_at.is_some() {
            return Err(invalid("the user is disabled"));
        }
        Ok(user)
    }

    async fn authenticate_session(
        &self,
        token: &str,
    ) -> Result<(Principal, Option<i64>), AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| invalid(format!("invalid access token: {e}")))?;
        let user = self.active_user(&data.claims.sub).await?;
        if user.tenant != data.claims.ten {
            return Err(invalid(
                "invalid access token: the user moved to another tenant",
            ));
        }
        Ok((
            Principal::of_user(user, None, Via::Session),
            Some(data.claims.exp as i64 * 1000),
        ))
    }

    async fn authenticate_external(
        &self,
        token: &str,
        header: Header,
    ) -> Result<(Principal, Option<i64>), AuthError> {
        let external = self
            .config
            .external
            .as_ref()
            .expect("checked by the caller");
        let key = self.jwk_for(header.kid.as_deref()).await?;
        let decoding = DecodingKey::from_jwk(&key)
            .map_err(|e| invalid(format!("the issuer's key cannot be used: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[external.issuer.as_str()]);
        validation.set_audience(&[external.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<ExternalClaims>(token, &decoding, &validation)
            .map_err(|e| invalid(format!("invalid access token: {e}")))?;
        let user = self
            .store
            .get_user_by_name(&data.claims.sub)
            .await?
            .ok_or_else(|| invalid("the token's subject is not a user of this hub"))?;
        if user.disabled_at.is_some() {
            return Err(invalid("the user is disabled"));
        }
        Ok((
            Principal::of_user(user, None, Via::External),
            Some(data.claims.exp as i64 * 1000),
        ))
    }

    /// The issuer's key `kid`, refetching the JWKS when it is unknown (at most every 30 s)
    /// or older than 10 minutes.
    async fn jwk_for(&self, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, AuthError> {
        let external = self
            .config
            .external
            .as_ref()
            .expect("checked by the caller");
        let mut cache = self.jwks.lock().await;
        let find = |cache: &JwksCache| {
            cache.keys.as_ref().and_then(|set| match kid {
                Some(kid) => set.find(kid).cloned(),
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            })
        };
        let age = cache.fetched.map(|t| t.elapsed());
        if let Some(key) =
            find(&cache).filter(|_| age.is_some_and(|a| a < Duration::from_secs(600)))
        {
            return Ok(key);
        }
        if age.is_none_or(|a| a >= Duration::from_secs(30)) {
            let fetched = async {
                self.http
                    .get(&external.jwks_url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await
            }
            .await
            .map_err(|e| e.to_string())
            .and_then(|body| {
                serde_json::from_slice::<jsonwebtoken::jwk::JwkSet>(&body)
                    .map_err(|e| e.to_string())
            });
            match fetched {
                Ok(set) => {
                    cache.keys = Some(set);
                    cache.fetched = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(message = "Cannot fetch the issuer's JWKS.", error = %e);
                }
            }
        }
        find(&cache).ok_or_else(|| invalid("the token's signing key is not in the issuer's JWKS"))
    }

    /// The request rate limiter.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Checks a login against the throttle and the password; issues a new token family.
    ///
    /// The attempt is counted against the user name and the address before the password is
    /// hashed (so a burst of concurrent guesses gets at most the limit through), and the hash
    /// runs on the bounded [`HashPool`].
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<(UserRecord, Tokens), AuthError> {
        if username.len() > MAX_LOGIN_USERNAME || password.len() > MAX_LOGIN_PASSWORD {
            return Err(invalid("wrong user name or password"));
        }
        let mut keys = vec![format!("user:{username}")];
        if let Some(a) = addr {
            keys.push(format!("addr:{a}"));
        }
        let reservation = self.reserve(keys)?;
        let user = self.store.get_user_by_name(username).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = match HashPool::global().verify(hash, password.to_string()).await {
            Ok(ok) => ok,
            Err(HashError::Busy) => {
                tracing::warn!(message = "Login refused: every password-hashing worker is busy.", user = %cap_audit_field(username));
                return Err(AuthError::Busy { retry_after: 1 });
            }
            Err(HashError::Failed(e)) => {
                tracing::warn!(message = "Cannot check a password.", error = %e);
                false
            }
        };
        let user = match user {
            Some(u) if ok && u.disabled_at.is_none() => u,
            _ => {
                reservation.failed();
                crate::metrics::metrics()
                    .login_failures
                    .with(&[("kind", "password")], |c| c.inc());
                return Err(invalid("wrong user name or password"));
            }
        };
        reservation.succeeded();
        let family = random_hex(16);
        let tokens = self.issue(&user, &family).await?;
        Ok((user, tokens))
    }

    /// Counts an attempt against every key, or refuses if any key is at its limit.
    fn reserve(&self, keys: Vec<String>) -> Result<Reservation<'_>, AuthError> {
        let mut map = self.throttle.lock().expect("throttle lock");
        let window = self.config.throttle_window;
        if map.len() > 100_000 {
            map.retain(|_, w| w.pending > 0 || w.since.elapsed() < window);
        }
        for key in &keys {
            let limit = if key.starts_with("user:") {
                self.config.max_failures_per_user
            } else {
                self.config.max_failures_per_addr
            };
            if let Some(w) = map.get_mut(key) {
                let elapsed = w.since.elapsed();
                if elapsed >= window {
                    w.attempts = w.pending;
                    w.since = Instant::now();
                } else if w.attempts >= limit {
                    return Err(AuthError::Throttled {
                        retry_after: (window - elapsed).as_secs().max(1),
                    });
                }
            }
        }
        for key in &keys {
            let w = map.entry(key.clone()).or_insert(Window {
                attempts: 0,
                pending: 0,
                since: Instant::now(),
            });
            w.attempts += 1;
            w.pending += 1;
        }
        Ok(Reservation {
            identity: self,
            keys,
            settled: false,
        })
    }

    async fn issue(&self, user: &UserRecord, family: &str) -> Result<Tokens, AuthError> {
        let now = now_ms();
        let iat = (now / 1000) as u64;
        let claims = Claims {
            sub: user.id.clone(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            exp: iat + self.config.access_ttl.as_secs(),
            jti: random_hex(12),
            ten: user.tenant.clone(),
            role: user.role.as_str().into(),
        };
        let access_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(|e| AuthError::Store(StoreError::Crypto(e.to_string())))?;
        let id = random_hex(12);
        let secret = random_hex(32);
        self.store
            .insert_refresh(&RefreshRecord {
                id: id.clone(),
                family: family.to_string(),
                user_id: user.id.clone(),
                secret_hash: sha256_hex(&secret),
                expires_at: now + secs(self.config.refresh_ttl),
                used_at: None,
                revoked_at: None,
                created_at: now,
            })
            .await?;
        Ok(Tokens {
            access_token,
            token_type: "Bearer",
            expires_in: self.config.access_ttl.as_secs(),
            refresh_token: format!("sbr_{id}_{secret}"),
            refresh_expires_in: self.config.refresh_ttl.as_secs(),
        })
    }

    async fn refresh_record(&self, token: &str) -> Result<RefreshRecord, AuthError> {
        let (id, secret) =
            split_token(token, "sbr_").ok_or_else(|| invalid("malformed refresh token"))?;
        self.store
            .get_refresh(id)
            .await?
            .filter(|r| same(&r.secret_hash, &sha256_hex(secret)))
            .ok_or_else(|| invalid("unknown refresh token"))
    }

    /// Exchanges a refresh token for a new pair. A token used twice revokes its family: one
    /// of the two holders is not the user.
    pub async fn refresh(&self, token: &str) -> Result<Tokens, AuthError> {
        let record = self.refresh_record(token).await?;
        let now = now_ms();
        if record.revoked_at.is_some() {
            return Err(invalid("this refresh token was revoked; log in again"));
        }
        if record.used_at.is_some() || !self.store.use_refresh(&record.id, now).await? {
            self.store.revoke_family(&record.family, now).await?;
            tracing::warn!(message = "A refresh token was used twice; its family is revoked.", user = %record.user_id);
            return Err(invalid(
                "this refresh token was already used; every token of this login is now revoked, \
                 log in again",
            ));
        }
        if record.expires_at <= now {
            return Err(invalid("this refresh token has expired; log in again"));
        }
        let user = self.active_user(&record.user_id).await?;
        self.issue(&user, &record.family).await
    }

    /// Revokes the family of a refresh token (logout).
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let record = self.refresh_record(token).await?;
        self.store.revoke_family(&record.family, now_ms()).await?;
        Ok(())
    }

    /// Creates an API key for `user`; returns the record and the key text (shown once).
    pub async fn issue_key(
        &self,
        user: &UserRecord,
        name: &str,
        expires_at: Option<i64>,
        allow: Option<Vec<String>>,
    ) -> Result<(ApiKeyRecord, String), StoreError> {
        self.issue_key_with(user, name, expires_at, allow, None)
            .await
    }

    /// [`Identity::issue_key`], with the key's own request rate limit.
    pub async fn issue_key_with(
        &self,
        user: &UserRecord,
        name: &str,
        expires_at: Option<i64>,
        allow: Option<Vec<String>>,
        rate_limit: Option<RateLimit>,
    ) -> Result<(ApiKeyRecord, String), StoreError> {
        let id = random_hex(8);
        let secret = random_hex(32);
        let record = ApiKeyRecord {
            id: id.clone(),
            tenant: user.tenant.clone(),
            user_id: user.id.clone(),
            name: name.to_string(),
            secret_hash: sha256_hex(&secret),
            allow,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            created_at: now_ms(),
            rate_limit,
        };
        self.store.insert_key(&record).await?;
        Ok((record, format!("sb_{id}_{secret}")))
    }

    /// Appends an audit entry; a store failure is logged, never returned.
    ///
    /// Every field is capped at [`MAX_AUDIT_FIELD`] bytes. Refused requests without a
    /// credential are written for at most [`IdentityConfig::audit_rows_per_addr_per_minute`]
    /// per address per minute; the rest are counted and summed up in one row
    /// (`audit.suppressed`) when that address's minute is over.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit(
        &self,
        who: &Principal,
        tenant: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: Option<String>,
        source: Option<IpAddr>,
    ) {
        let (write, summaries) = match source {
            Some(addr) if who.via == Via::Anonymous && outcome != "ok" => self.admit_refused(addr),
            _ => (true, Vec::new()),
        };
        self.write_summaries(summaries).await;
        if !write {
            return;
        }
        self.append(AuditRecord {
            id: 0,
            at: now_ms(),
            tenant: cap_audit_field(tenant),
            actor: cap_audit_field(&who.actor()),
            action: cap_audit_field(action),
            target: cap_audit_field(target),
            outcome: cap_audit_field(outcome),
            detail: detail.as_deref().map(cap_audit_field),
            source: source.map(|a| a.to_string()),
        })
        .await;
    }

    /// Whether a refused request without a credential from `addr` gets its own row, and the
    /// finished windows whose summaries are due.
    fn admit_refused(&self, addr: IpAddr) -> (bool, Vec<(IpAddr, AuditWindow)>) {
        let minute = self.config.audit_window;
        let fresh = || AuditWindow {
            since: Instant::now(),
            since_ms: now_ms(),
            written: 0,
            suppressed: 0,
        };
        let mut due = Vec::new();
        let mut windows = self.audit_windows.lock().expect("audit window lock");
        if windows.len() >= 10_000 {
            let stale: Vec<IpAddr> = windows
                .iter()
                .filter(|(_, w)| w.since.elapsed() >= minute)
                .map(|(a, _)| *a)
                .collect();
            for a in stale {
                if let Some(w) = windows.remove(&a).filter(|w| w.suppressed > 0) {
                    due.push((a, w));
                }
            }
        }
        let w = windows.entry(addr).or_insert_with(fresh);
        if w.since.elapsed() >= minute {
            let old = std::mem::replace(w, fresh());
            if old.suppressed > 0 {
                due.push((addr, old));
            }
        }
        if w.written >= self.config.audit_rows_per_addr_per_minute {
            w.suppressed += 1;
            (false, due)
        } else {
            w.written += 1;
            (true, due)
        }
    }

    async fn append(&self, record: AuditRecord) {
        if let Err(e) = self.store.append_audit(&record).await {
            tracing::warn!(message = "Cannot write the audit log.", action = %record.action, error = %e);
        }
    }

    async fn write_summaries(&self, windows: Vec<(IpAddr, AuditWindow)>) {
        for (addr, w) in windows {
            self.append(AuditRecord {
                id: 0,
                at: now_ms(),
                tenant: switchboard_store::DEFAULT_TENANT.to_string(),
                actor: "unauthenticated".into(),
                action: "audit.suppressed".into(),
                target: addr.to_string(),
                outcome: "denied".into(),
                detail: Some(format!(
                    "{} more refused requests without a credential from {addr} in the minute \
                     from {} (Unix ms) were not recorded one by one",
                    w.suppressed, w.since_ms
                )),
                source: Some(addr.to_string()),
            })
            .await;
        }
    }

    /// Writes the summary rows of every address whose minute is over, and deletes audit rows
    /// older than the retention. Returns how many rows were deleted.
    pub async fn sweep_audit(&self) -> Result<u64, StoreError> {
        let done: Vec<(IpAddr, AuditWindow)> = {
            let mut windows = self.audit_windows.lock().expect("audit window lock");
            let over: Vec<IpAddr> = windows
                .iter()
                .filter(|(_, w)| w.since.elapsed() >= self.config.audit_window)
                .map(|(a, _)| *a)
                .collect();
            over.into_iter()
                .filter_map(|a| windows.remove(&a).map(|w| (a, w)))
                .filter(|(_, w)| w.suppressed > 0)
                .collect()
        };
        self.write_summaries(done).await;
        let Some(retention) = self.config.audit_retention else {
            return Ok(0);
        };
        self.store
            .delete_audit_before(now_ms() - retention.as_millis() as i64)
            .await
    }

    /// Runs [`Identity::sweep_audit`] every `every` until `shutdown`.
    pub async fn run_audit_sweeper(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.sweep_audit().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    message = "Deleted audit rows past their retention.",
                    rows = n
                ),
                Err(e) => tracing::warn!(message = "Cannot sweep the audit log.", error = %e),
            }
        }
    }
}

impl switchboard_store::StoreAccess for Identity {
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn grants_and_key_allowlists_intersect() {
        let mut p = Principal::anonymous();
        p.grants = vec!["alpha".into(), "beta".into()];
        assert!(p.may_use("alpha") && !p.may_use("gamma") && !p.sees_everything());
        p.key_allow = Some(vec!["beta".into()]);
        assert!(!p.may_use("alpha") && p.may_use("beta"));
        p.grants = vec![ALL.into()];
        p.key_allow = None;
        assert!(p.sees_everything() && p.may_use("anything"));
        p.key_allow = Some(vec!["beta".into()]);
        assert!(!p.sees_everything());
    }

    /// A revocation written by another replica (straight into the store) applies once the
    /// remembered check is older than `cache_ttl`; one made here applies at once.
    #[tokio::test]
    async fn remembered_checks_expire_and_can_be_forgotten() {
        let store = switchboard_store::open(
            "sqlite::memory:",
            switchboard_store::SecretKey::generate().unwrap(),
        )
        .await
        .unwrap();
        let config = IdentityConfig {
            cache_ttl: Duration::from_millis(300),
            ..IdentityConfig::default()
        };
        let id = Identity::new(store.clone(), config, switchboard_upstream::http_client())
            .await
            .unwrap();
        let user = UserRecord {
            id: "u1".into(),
            tenant: "default".into(),
            username: "u1".into(),
            password_hash: "x".into(),
            role: Role::User,
            grants: vec![ALL.into()],
            disabled_at: None,
            created_at: 0,
            updated_at: 0,
        };
        store.insert_user(&user).await.unwrap();
        let (first, key) = id.issue_key(&user, "k", None, None).await.unwrap();
        let (_, other) = id.issue_key(&user, "k2", None, None).await.unwrap();
        assert_eq!(id.authenticate(&key).await.unwrap().name, "u1");
        id.authenticate(&other).await.unwrap();
        store.revoke_key(&first.id, now_ms()).await.unwrap();
        assert!(id.authenticate(&key).await.is_ok(), "remembered");
        tokio::time::sleep(Duration::from_millis(350)).await;
        let err = id.authenticate(&key).await.unwrap_err().to_string();
        assert!(err.contains("revoked"), "{err}");
        // Disabling the user: forgotten at once when this process made the change.
        let mut disabled = user.clone();
        disabled.disabled_at = Some(1);
        store.update_user(&disabled).await.unwrap();
        id.invalidate();
        let err = id.authenticate(&other).await.unwrap_err().to_string();
        assert!(err.contains("disabled"), "{err}");
    }

    /// A flood of refused requests without a credential from one address writes the bound,
    /// then one summary row when the window is over; another address has its own bound; rows
    /// carry the address and capped fields; the sweeper deletes rows past the retention.
    #[tokio::test]
    async fn refused_rows_are_bounded_per_address_and_summed_up() {
        let store = switchboard_store::open(
            "sqlite::memory:",
            switchboard_store::SecretKey::generate().unwrap(),
        )
        .await
        .unwrap();
        let config = IdentityConfig {
            audit_rows_per_addr_per_minute: 3,
            audit_window: Duration::from_millis(300),
            audit_retention: Some(Duration::from_millis(400)),
            ..IdentityConfig::default()
        };
        let id = Identity::new(store.clone(), config, switchboard_upstream::http_client())
            .await
            .unwrap();
        let stranger = Principal::anonymous();
        let a: IpAddr = "203.0.113.9".parse().unwrap();
        let b: IpAddr = "198.51.100.4".parse().unwrap();
        let huge = "x".repeat(100_000);
        for _ in 0..50 {
            id.audit(
                &stranger,
                "default",
                "POST /x",
                &huge,
                "denied",
                None,
                Some(a),
            )
            .await;
        }
        id.audit(
            &stranger,
            "default",
            "POST /x",
            "t",
            "denied",
            None,
            Some(b),
        )
        .await;
        let all = |store: Arc<dyn Store>| async move {
            store
                .list_audit(&switchboard_store::AuditQuery {
                    tenant: None,
                    before: None,
                    limit: 1000,
                })
                .await
                .unwrap()
        };
        let rows = all(store.clone()).await;
        assert_eq!(rows.len(), 4, "3 from a, 1 from b");
        assert!(rows.iter().all(|r| r.target.len() <= MAX_AUDIT_FIELD));
        assert!(rows.iter().all(|r| r.source.is_some()));
        tokio::time::sleep(Duration::from_millis(350)).await;
        id.sweep_audit().await.unwrap();
        let rows = all(store.clone()).await;
        let summary = rows
            .iter()
            .find(|r| r.action == "audit.suppressed")
            .expect("a summary row");
        assert!(
            summary.detail.as_deref().unwrap().starts_with("47 more"),
            "{summary:?}"
        );
        assert_eq!(summary.source.as_deref(), Some("203.0.113.9"));
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(id.sweep_audit().await.unwrap() >= 5);
        assert!(all(store).await.is_empty());
    }

    #[test]
    fn retentions_parse() {
        assert_eq!(
            parse_retention("90d").unwrap(),
            Some(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(
            parse_retention("12h").unwrap(),
            Some(Duration::from_secs(12 * 3600))
        );
        assert_eq!(parse_retention("2s").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(parse_retention("off").unwrap(), None);
        for bad in ["", "d", "12", "5y", "0d", "-1d"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audit_fields_are_capped_and_marked() {
        assert_eq!(cap_audit_field("short"), "short");
        let long = "é".repeat(1000);
        let capped = cap_audit_field(&long);
        assert!(capped.len() <= MAX_AUDIT_FIELD, "{}", capped.len());
        assert!(capped.ends_with("…[truncated]"));
    }

    #[test]
    fn tokens_split() {
        assert_eq!(split_token("sb_abc_def", "sb_"), Some(("abc", "def")));
        assert_eq!(split_token("sb_abc", "sb_"), None);
        assert_eq!(split_token("sb__def", "sb_"), None);
        assert_eq!(split_token("sbr_a_b", "sb_"), None);
    }
}
