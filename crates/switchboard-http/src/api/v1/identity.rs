//! Identity routes: login and token refresh, `/me`, tenants, users, API keys and the audit log.
//!
//! Who may do what: an admin everything, in any tenant (`X-Switchboard-Tenant` picks one); a
//! manager everything inside their tenant except creating or changing admins; a user reads
//! themselves and manages their own keys. Objects of another tenant answer 404.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Json, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_control::accounts::{Accounts, NewKey, NewUser, UserChange, login_tenant};
use switchboard_control::identity::{MAX_LOGIN_PASSWORD, MAX_LOGIN_USERNAME};
use switchboard_control::model::{ApiKeyRecord, AuditRecord, UserRecord};
use switchboard_control::ratelimit::BucketView;
use switchboard_control::{Principal, Tokens, Via, now_ms, tenants::check_tenant_name};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::ApiErrorBody;
use super::{ApiResult, ApiState, Caller, Manage, body, path, query};
use crate::api::ApiError;
use crate::auth::{auth_failure, plane, target_tenant};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(delete_tenant))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_audit))
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
}

impl Manage {
    /// The account operations of the tenant this request acts on.
    fn accounts(&self) -> Accounts<'_> {
        Accounts::new(&self.st.identity, &self.who, self.tenant())
    }
}

/// The client's address, when the server loop recorded it.
pub(crate) struct ClientAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Login

/// `{"username", "password"}`.
#[derive(Deserialize, ToSchema)]
pub(super) struct LoginInput {
    username: String,
    password: String,
}

/// An access token, a refresh token, and who they belong to.
#[derive(Serialize, ToSchema)]
pub(super) struct TokenResponse {
    /// JWT for `Authorization: Bearer`.
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds the access token lives.
    expires_in: u64,
    /// One-use token for `/api/v1/auth/refresh`.
    refresh_token: String,
    /// Seconds the refresh token lives.
    refresh_expires_in: u64,
}

impl From<Tokens> for TokenResponse {
    fn from(t: Tokens) -> Self {
        TokenResponse {
            access_token: t.access_token,
            token_type: t.token_type.to_string(),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            refresh_expires_in: t.refresh_expires_in,
        }
    }
}

/// Log in with a user name and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = LoginInput,
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 400, description = "Malformed body", body = ApiErrorBody),
        (status = 401, description = "Wrong user name or password", body = ApiErrorBody),
        (status = 429, description = "Too many failed logins (see Retry-After)", body = ApiErrorBody)))]
async fn login(
    State(st): State<ApiState>,
    ClientAddr(addr): ClientAddr,
    input: Result<Json<LoginInput>, JsonRejection>,
) -> Result<Json<TokenResponse>, Response> {
    let input = body(input).map_err(IntoResponse::into_response)?;
    // Bounded before anything is looked up, counted or hashed.
    if input.username.len() > MAX_LOGIN_USERNAME || input.password.len() > MAX_LOGIN_PASSWORD {
        return Err(ApiError::bad_request(format!(
            "the user name may be at most {MAX_LOGIN_USERNAME} bytes and the password at most \
             {MAX_LOGIN_PASSWORD} bytes"
        ))
        .into_response());
    }
    match st
        .identity
        .login(&input.username, &input.password, addr)
        .await
    {
        Ok((user, tokens)) => {
            let who = Principal::of_user(user.clone(), None, Via::Session);
            st.identity
                .audit(
                    &who,
                    &user.tenant,
                    "auth.login",
                    &user.username,
                    "ok",
                    None,
                    addr,
                )
                .await;
            Ok(Json(tokens.into()))
        }
        Err(e) => {
            let mut who = Principal::anonymous();
            who.name = input.username.clone();
            let detail = addr.map(|a| format!("from {a}"));
            // Recorded where that user's managers look; an unknown name goes to the default
            // tenant.
            let tenant = login_tenant(&st.identity, &input.username).await;
            st.identity
                .audit(
                    &who,
                    &tenant,
                    "auth.login",
                    &input.username,
                    "denied",
                    detail,
                    addr,
                )
                .await;
            Err(auth_failure(e))
        }
    }
}

/// `{"refresh_token"}`.
#[derive(Deserialize, ToSchema)]
pub(super) struct RefreshInput {
    refresh_token: String,
}

/// Exchange a refresh token for a new pair. Each refresh token works once; presenting a used
/// one revokes every token of that login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(()),
    request_body = RefreshInput,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ApiErrorBody)))]
async fn refresh(
    State(st): State<ApiState>,
    input: Result<Json<RefreshInput>, JsonRejection>,
) -> Result<Json<TokenResponse>, Response> {
    let input = body(input).map_err(IntoResponse::into_response)?;
    st.identity
        .refresh(&input.refresh_token)
        .await
        .map(|t| Json(t.into()))
        .map_err(auth_failure)
}

/// Revoke a refresh token and every token of its login.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(()),
    request_body = RefreshInput,
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Unknown token", body = ApiErrorBody)))]
async fn logout(
    State(st): State<ApiState>,
    input: Result<Json<RefreshInput>, JsonRejection>,
) -> Result<StatusCode, Response> {
    let input = body(input).map_err(IntoResponse::into_response)?;
    st.identity
        .logout(&input.refresh_token)
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(auth_failure)
}

// ---------------------------------------------------------------------------------------------
// Me

/// Who the credential belongs to.
#[derive(Serialize, ToSchema)]
pub(super) struct MeView {
    tenant: String,
    user_id: Option<String>,
    username: String,
    /// `admin`, `manager` or `user`.
    role: String,
    /// Groups and servers usable over MCP (`*`: all).
    grants: Vec<String>,
    /// The key's own limit, when the credential is a limited key.
    key_allow: Option<Vec<String>>,
    /// `admin-token`, `api-key`, `session` or `external`.
    credential: String,
    /// The request rate limits that apply to this credential, with what is left now
    /// (absent: not limited, e.g. the admin token).
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<MeRateLimit>,
}

/// A token bucket as it stands.
#[derive(Serialize, ToSchema)]
pub(super) struct BucketState {
    /// Sustained requests per second.
    per_second: f64,
    /// Largest burst.
    burst: u32,
    /// Requests that may be made right now (this one already taken).
    remaining: u32,
}

impl From<BucketView> for BucketState {
    fn from(b: BucketView) -> Self {
        BucketState {
            per_second: b.per_second,
            burst: b.burst,
            remaining: b.remaining,
        }
    }
}

/// The caller's buckets.
#[derive(Serialize, ToSchema)]
pub(super) struct MeRateLimit {
    /// This credential's bucket.
    key: Option<BucketState>,
    /// The tenant's bucket, shared by all its credentials.
    tenant: Option<BucketState>,
}

/// Show the caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity",
    responses((status = 200, description = "The caller", body = MeView)))]
async fn me(State(st): State<ApiState>, Caller(who): Caller) -> Json<MeView> {
    let rate_limit = match st.identity.limiter().view(&who) {
        (None, None) => None,
        (key, tenant) => Some(MeRateLimit {
            key: key.map(Into::into),
            tenant: tenant.map(Into::into),
        }),
    };
    let credential = match who.via {
        Via::AdminToken => "admin-token",
        Via::ApiKey(_) => "api-key",
        Via::Session => "session",
        Via::External => "external",
        Via::Anonymous => "anonymous",
    };
    Json(MeView {
        tenant: who.tenant,
        user_id: who.user_id,
        username: who.name,
        role: who.role.as_str().into(),
        grants: who.grants,
        key_allow: who.key_allow,
        credential: credential.into(),
        rate_limit,
    })
}

// ---------------------------------------------------------------------------------------------
// Tenants

/// A tenant.
#[derive(Serialize, ToSchema)]
pub(super) struct TenantView {
    name: String,
    /// Unix milliseconds.
    created_at: i64,
}

/// `{"tenants": [...]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct TenantList {
    tenants: Vec<TenantView>,
}

/// List tenants (an admin sees all, a manager their own).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "identity",
    responses(
        (status = 200, description = "Tenants", body = TenantList),
        (status = 403, description = "Not an admin or manager", body = ApiErrorBody)))]
async fn list_tenants(m: Manage) -> ApiResult<Json<TenantList>> {
    let tenants = m
        .accounts()
        .tenants()
        .await?
        .into_iter()
        .map(|t| TenantView {
            name: t.name,
            created_at: t.created_at,
        })
        .collect();
    Ok(Json(TenantList { tenants }))
}

/// `{"name"}`.
#[derive(Deserialize, ToSchema)]
pub(super) struct TenantInput {
    name: String,
}

/// Create a tenant (admin).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "identity",
    request_body = TenantInput,
    responses(
        (status = 201, description = "Created", body = TenantView),
        (status = 400, description = "Invalid name", body = ApiErrorBody),
        (status = 403, description = "Not an admin", body = ApiErrorBody),
        (status = 409, description = "Exists", body = ApiErrorBody)))]
async fn create_tenant(
    m: Manage,
    input: Result<Json<TenantInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    if !m.who.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin creates tenants",
        ));
    }
    let input = body(input)?;
    check_tenant_name(&input.name)?;
    m.st.tenants.create(&input.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantView {
            name: input.name,
            created_at: now_ms(),
        }),
    ))
}

/// Delete an empty tenant (admin) with its users and keys.
#[utoipa::path(delete, path = "/api/v1/tenants/{name}", tag = "identity",
    params(("name" = String, Path, description = "Tenant")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ApiErrorBody),
        (status = 404, description = "No such tenant", body = ApiErrorBody),
        (status = 409, description = "It still has servers or groups", body = ApiErrorBody)))]
async fn delete_tenant(
    m: Manage,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let name = path(name)?;
    if !m.who.is_admin() {
        return Err(not_found(&format!("no tenant named {name:?}")));
    }
    m.st.tenants.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Users

/// A user (never the password hash).
#[derive(Serialize, ToSchema)]
pub(super) struct UserView {
    id: String,
    tenant: String,
    username: String,
    /// `admin`, `manager` or `user`.
    role: String,
    /// Groups and servers usable over MCP (`*`: all of the tenant).
    grants: Vec<String>,
    disabled: bool,
    /// Unix milliseconds.
    created_at: i64,
    /// Unix milliseconds.
    updated_at: i64,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        UserView {
            id: u.id,
            tenant: u.tenant,
            username: u.username,
            role: u.role.as_str().into(),
            grants: u.grants,
            disabled: u.disabled_at.is_some(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// `{"users": [...]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct UserList {
    users: Vec<UserView>,
}

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserInput {
    /// 1-64 of letters, digits, `.`, `_`, `@`, `-`; unique across tenants.
    username: String,
    /// At least 8 characters.
    password: String,
    /// `admin`, `manager` or `user` (default).
    role: Option<String>,
    /// Groups and servers usable over MCP; default `["*"]` (all of the tenant).
    grants: Option<Vec<String>>,
}

/// Changes to a user; absent fields stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatch {
    password: Option<String>,
    role: Option<String>,
    grants: Option<Vec<String>>,
    disabled: Option<bool>,
}

/// List the target tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "identity",
    responses(
        (status = 200, description = "Users", body = UserList),
        (status = 403, description = "Not an admin or manager", body = ApiErrorBody)))]
async fn list_users(m: Manage) -> ApiResult<Json<UserList>> {
    let users = m.accounts().users().await?;
    Ok(Json(UserList {
        users: users.into_iter().map(UserView::from).collect(),
    }))
}

/// Create a user in the target tenant.
#[utoipa::path(post, path = "/api/v1/users", tag = "identity",
    request_body = UserInput,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "Invalid input", body = ApiErrorBody),
        (status = 403, description = "Not allowed to grant that role", body = ApiErrorBody),
        (status = 409, description = "The user name is taken", body = ApiErrorBody)))]
async fn create_user(
    m: Manage,
    input: Result<Json<UserInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let input = body(input)?;
    let user = m
        .accounts()
        .create_user(NewUser {
            username: input.username,
            password: input.password,
            role: input.role,
            grants: input.grants,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Show a user of the target tenant.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "identity",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user in this tenant", body = ApiErrorBody)))]
async fn get_user(m: Manage, id: Result<Path<String>, PathRejection>) -> ApiResult<Json<UserView>> {
    Ok(Json(m.accounts().user(&path(id)?).await?.into()))
}

/// Change a user's password, role, grants or disabled state.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "identity",
    params(("id" = String, Path, description = "User id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "Invalid input", body = ApiErrorBody),
        (status = 403, description = "A manager changing an admin", body = ApiErrorBody),
        (status = 404, description = "No such user in this tenant", body = ApiErrorBody)))]
async fn update_user(
    m: Manage,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<UserPatch>, JsonRejection>,
) -> ApiResult<Json<UserView>> {
    let id = path(id)?;
    let input = body(input)?;
    let user = m
        .accounts()
        .update_user(
            &id,
            UserChange {
                password: input.password,
                role: input.role,
                grants: input.grants,
                disabled: input.disabled,
            },
        )
        .await?;
    Ok(Json(user.into()))
}

/// Delete a user with their keys and tokens.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "identity",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "A manager deleting an admin", body = ApiErrorBody),
        (status = 404, description = "No such user in this tenant", body = ApiErrorBody)))]
async fn delete_user(m: Manage, id: Result<Path<String>, PathRejection>) -> ApiResult<StatusCode> {
    m.accounts().delete_user(&path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// API keys

/// An API key (its secret is shown only once, at creation).
#[derive(Serialize, ToSchema)]
pub(super) struct KeyView {
    id: String,
    tenant: String,
    user_id: String,
    name: String,
    /// Groups and servers the key is limited to (absent: the user's grants).
    allow: Option<Vec<String>>,
    /// Unix milliseconds.
    expires_at: Option<i64>,
    /// Unix milliseconds (updated at most once a minute).
    last_used_at: Option<i64>,
    /// Unix milliseconds.
    revoked_at: Option<i64>,
    /// Unix milliseconds.
    created_at: i64,
    /// The key's own request rate limit (absent: the hub's per-key default).
    rate_limit: Option<RateLimitInput>,
    /// The key itself: only in the creation response.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<ApiKeyRecord> for KeyView {
    fn from(k: ApiKeyRecord) -> Self {
        KeyView {
            id: k.id,
            tenant: k.tenant,
            user_id: k.user_id,
            name: k.name,
            allow: k.allow,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
            rate_limit: k.rate_limit.map(|r| RateLimitInput {
                per_second: r.per_second,
                burst: r.burst,
            }),
            key: None,
        }
    }
}

/// `{"keys": [...]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyList {
    keys: Vec<KeyView>,
}

/// A new key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyInput {
    /// A label.
    name: String,
    /// Lifetime in seconds (absent: no expiry).
    expires_in_seconds: Option<u64>,
    /// Limit to these groups and servers (absent: the user's grants).
    allow: Option<Vec<String>>,
    /// Create it for this user of the tenant (admins and managers only; default: yourself).
    user_id: Option<String>,
    /// The key's own request rate limit (absent: the hub's per-key default). Only admins and
    /// managers may set one above the default.
    rate_limit: Option<RateLimitInput>,
}

/// A token-bucket rate.
#[derive(Serialize, Deserialize, ToSchema)]
pub(super) struct RateLimitInput {
    /// Sustained requests per second (> 0).
    per_second: f64,
    /// Requests at once after a quiet spell (>= 1).
    burst: u32,
}

/// List keys: a manager sees the tenant's, a user their own.
#[utoipa::path(get, path = "/api/v1/keys", tag = "identity",
    responses((status = 200, description = "Keys", body = KeyList)))]
async fn list_keys(
    State(st): State<ApiState>,
    Caller(who): Caller,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<KeyList>> {
    let tenant = target_tenant(&who, &headers)?;
    plane(&st, &tenant)?;
    let keys = Accounts::new(&st.identity, &who, &tenant).keys().await?;
    Ok(Json(KeyList {
        keys: keys.into_iter().map(KeyView::from).collect(),
    }))
}

/// Create a key. The response is the only time the key is shown.
#[utoipa::path(post, path = "/api/v1/keys", tag = "identity",
    request_body = KeyInput,
    responses(
        (status = 201, description = "Created; `key` holds the secret", body = KeyView),
        (status = 400, description = "Invalid input", body = ApiErrorBody),
        (status = 404, description = "No such user in this tenant", body = ApiErrorBody)))]
async fn create_key(
    State(st): State<ApiState>,
    Caller(who): Caller,
    headers: axum::http::HeaderMap,
    input: Result<Json<KeyInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    let tenant = target_tenant(&who, &headers)?;
    plane(&st, &tenant)?;
    let input = body(input)?;
    let (record, key) = Accounts::new(&st.identity, &who, &tenant)
        .create_key(NewKey {
            name: input.name,
            expires_in_seconds: input.expires_in_seconds,
            allow: input.allow,
            user_id: input.user_id,
            rate_limit: input.rate_limit.map(|r| (r.per_second, r.burst)),
        })
        .await?;
    let mut view = KeyView::from(record);
    view.key = Some(key);
    Ok((StatusCode::CREATED, Json(view)))
}

/// Revoke a key (your own, or as a manager any of the tenant's). Takes effect on the next
/// request.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "identity",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = ApiErrorBody)))]
async fn revoke_key(
    State(st): State<ApiState>,
    Caller(who): Caller,
    headers: axum::http::HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let id = path(id)?;
    let tenant = target_tenant(&who, &headers)?;
    Accounts::new(&st.identity, &who, &tenant)
        .revoke_key(&id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Audit

/// Paging of the audit log.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
pub(super) struct AuditParams {
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
    /// Entries older than this id.
    before: Option<i64>,
    /// Admins: every tenant.
    all: Option<bool>,
}

/// `{"entries": [...]}`, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct AuditList {
    #[schema(value_type = Vec<Object>)]
    entries: Vec<AuditRecord>,
}

/// The audit log of the target tenant (admins: `all=true` for every tenant).
#[utoipa::path(get, path = "/api/v1/audit", tag = "identity",
    params(AuditParams),
    responses(
        (status = 200, description = "Entries, newest first", body = AuditList),
        (status = 403, description = "Not an admin or manager", body = ApiErrorBody)))]
async fn list_audit(
    m: Manage,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<AuditList>> {
    let q = query(q)?;
    let entries = m
        .accounts()
        .audit(q.before, q.limit.unwrap_or(100), q.all.unwrap_or(false))
        .await?;
    Ok(Json(AuditList { entries }))
}
