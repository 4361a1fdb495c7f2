//! Identity and tenancy over real HTTP: two tenants with managers, users and API keys, each
//! with its own fixture upstream and group, exercised through every management route family
//! and every MCP endpoint; expired, revoked, tampered and foreign credentials; refresh-token
//! rotation and reuse; the login throttle; tokens of an external issuer checked against a JWKS
//! served by the test; the audit log; RFC 9728 metadata. The isolation matrix runs on SQLite
//! and on PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use switchboard_control::identity::ExternalIssuer;
use switchboard_control::{ControlConfig, ControlPlane, Identity, IdentityConfig};
use switchboard_core::ssrf::{SsrfPolicy, parse_cidrs};
use switchboard_fixture::{FixtureOptions, FixtureServer, spawn_http};
use switchboard_http::{AdminAuth, ApiState, McpAuth, ServiceOptions};
use switchboard_hub::{Hub, HubConfig};
use switchboard_store::{SecretKey, Store, StoreAccess};
use tokio_util::sync::CancellationToken;

use crate::common::*;

const ADMIN: &str = "admin-token-for-identity-tests";
const PASSWORD: &str = "correct horse battery";
const ISSUER: &str = "https://issuer.example.test";

// ---------------------------------------------------------------------------------------------
// Encoding and signing helpers (no JWT library in this crate: tokens are built by hand)

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// HMAC-SHA256 through the TLS provider's HKDF (the only HMAC this crate can reach).
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let rustls::SupportedCipherSuite::Tls13(suite) =
        rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
    else {
        unreachable!("a TLS 1.3 suite")
    };
    let key = rustls::crypto::tls13::OkmBlock::new(key);
    suite
        .hkdf_provider
        .hmac_sign(&key, message)
        .as_ref()
        .to_vec()
}

/// `header.claims` of a JWS.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// An HS256 token over `claims` with `key`.
fn hs256(key: &[u8], claims: &Value) -> String {
    let input = signing_input(&json!({"alg": "HS256", "typ": "JWT"}), claims);
    format!("{input}.{}", b64url(&hmac_sha256(key, input.as_bytes())))
}

/// Two P-256 keys (PKCS#8 DER, made with `openssl genpkey -algorithm EC` for these tests).
/// The last 64 bytes of each are the public point's x and y.
const EC_KEY_1: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b02010104207aad062fd3ad30feb325b460c640fe61995efd4b8c84f8014933f71c0846e68da14403420004bd76d0c00a195e4ee5e8b0acf80d1d1725b025e5441eb9de0575e8ff923a62da01ff6c801c09ed0c3ec108c52bbe89f20ab2a7259071b66da4c1c9785e90125e";
const EC_KEY_2: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420832ed7a6886e534a00fac328cb0fdc0139930b5e748025a96afda731023e707ba14403420004315ac41285ec1520c12cbe4e8eb713d54eb863b341c0c9c9df15515f7c3756c763564c2ab62931b8197f5bbe9e53bcb968b64816ef92f903839b73af3d9ada02";

/// The public JWK of a key above.
fn ec_jwk(pkcs8_hex: &str, kid: &str) -> Value {
    let der = unhex(pkcs8_hex);
    let point = &der[der.len() - 64..];
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": b64url(&point[..32]), "y": b64url(&point[32..]),
    })
}

/// An ES256 token over `claims`, signed with a key above, naming `kid`.
fn es256(pkcs8_hex: &str, kid: Option<&str>, claims: &Value) -> String {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(unhex(pkcs8_hex)));
    let key = rustls::crypto::ring::sign::any_ecdsa_type(&der).expect("EC key");
    let signer = key
        .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
        .expect("P-256 signer");
    let mut header = json!({"alg": "ES256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let input = signing_input(&header, claims);
    let asn1 = signer.sign(input.as_bytes()).expect("sign");
    format!("{input}.{}", b64url(&ecdsa_raw(&asn1)))
}

/// An ASN.1 `SEQUENCE { r INTEGER, s INTEGER }` as the 64-byte `r || s` of JWS.
fn ecdsa_raw(asn1: &[u8]) -> Vec<u8> {
    assert_eq!(asn1[0], 0x30, "a DER sequence");
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(asn1[at], 0x02, "a DER integer");
        let len = asn1[at + 1] as usize;
        let int = &asn1[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        at += 2 + len;
    }
    out
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Replaces one character in the middle of a token's signature.
fn tamper_signature(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    format!("{input}.{}", sig.into_iter().collect::<String>())
}

// ---------------------------------------------------------------------------------------------
// A hub with both services, over a given store

/// An HTTP answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

struct TestHub {
    state: ApiState,
    main: SocketAddr,
    mcp: SocketAddr,
    http: reqwest::Client,
    shutdown: CancellationToken,
    _db: Option<PgDatabase>,
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

impl TestHub {
    async fn sqlite() -> TestHub {
        Self::start(None, |_| IdentityConfig::default(), McpAuth::Optional).await
    }

    async fn postgres() -> TestHub {
        Self::start(
            Some(PgDatabase::create("identity")),
            |_| IdentityConfig::default(),
            McpAuth::Optional,
        )
        .await
    }

    /// Starts a hub on SQLite (in memory) or on `db`; `identity` gets the main service's
    /// address and returns the identity settings.
    async fn start(
        db: Option<PgDatabase>,
        identity: impl FnOnce(SocketAddr) -> IdentityConfig,
        mcp_auth: McpAuth,
    ) -> TestHub {
        init();
        let key = SecretKey::generate().unwrap();
        let store: Arc<dyn Store> = match &db {
            Some(db) => switchboard_store::open(&db.url(), key)
                .await
                .expect("pg store"),
            None => switchboard_store::open("sqlite::memory:", key)
                .await
                .expect("store"),
        };
        let ssrf = SsrfPolicy {
            allow_cidrs: parse_cidrs("127.0.0.0/8").unwrap(),
            ..Default::default()
        };
        let control = ControlPlane::new(
            store.clone(),
            Hub::new(HubConfig::default()),
            ControlConfig {
                ssrf,
                ..Default::default()
            },
        );
        let mut state = ApiState::with_defaults(control, AdminAuth::from_token(ADMIN))
            .await
            .expect("api state");
        let ((main_l, main), (mcp_l, mcp)) = (bind().await, bind().await);
        state.identity = Identity::new(store, identity(main), reqwest::Client::new())
            .await
            .expect("identity");
        let options = ServiceOptions {
            mcp_auth,
            public_url: None,
            ..ServiceOptions::default()
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(switchboard_http::serve(
            main_l,
            switchboard_http::main_service(state.clone(), &options),
            shutdown.clone(),
        ));
        tokio::spawn(switchboard_http::serve(
            mcp_l,
            switchboard_http::mcp_service(state.clone(), &options),
            shutdown.clone(),
        ));
        TestHub {
            state,
            main,
            mcp,
            http: reqwest::Client::new(),
            shutdown,
            _db: db,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.state.tenants.shutdown().await;
    }

    /// A request to the main service with an optional credential, tenant header and JSON body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        tenant: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            format!("http://{}{path}", self.main),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(t) = tenant {
            req = req.header("x-switchboard-tenant", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request that must answer `status`; returns the body. Error answers must carry the
    /// API's error shape with a code matching the status.
    async fn expect(
        &self,
        method: &str,
        path: &str,
        token: &str,
        tenant: Option<&str>,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let a = self.send(method, path, Some(token), tenant, body).await;
        assert_eq!(
            a.status.as_u16(),
            status,
            "{method} {path} (tenant header {tenant:?}): {}",
            a.body
        );
        let code = match status {
            401 => Some("unauthorized"),
            403 => Some("forbidden"),
            404 => Some("not_found"),
            429 => Some("throttled"),
            _ => None,
        };
        if let Some(code) = code {
            assert_eq!(a.body["status"], "error", "{method} {path}: {}", a.body);
            assert_eq!(a.body["error"], code, "{method} {path}: {}", a.body);
        }
        a.body
    }

    async fn login(&self, username: &str, password: &str) -> Answer {
        self.send(
            "POST",
            "/api/v1/auth/login",
            None,
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// Logs in; returns (access token, refresh token).
    async fn tokens(&self, username: &str) -> (String, String) {
        let a = self.login(username, PASSWORD).await;
        assert_eq!(a.status, StatusCode::OK, "login {username}: {}", a.body);
        assert_eq!(a.body["token_type"], "Bearer");
        assert_eq!(a.body["expires_in"], 900);
        (
            a.body["access_token"].as_str().unwrap().to_string(),
            a.body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    async fn refresh(&self, refresh: &str) -> Answer {
        self.send(
            "POST",
            "/api/v1/auth/refresh",
            None,
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await
    }

    /// `GET /api/v1/me` with `token`: its status.
    async fn me_status(&self, token: &str) -> u16 {
        self.send("GET", "/api/v1/me", Some(token), None, None)
            .await
            .status
            .as_u16()
    }

    /// Creates a user (as `token`, in `tenant` when given); returns its id.
    async fn user(
        &self,
        token: &str,
        tenant: Option<&str>,
        name: &str,
        role: &str,
        grants: Value,
    ) -> String {
        let body = json!({"username": name, "password": PASSWORD, "role": role, "grants": grants});
        let v = self
            .expect("POST", "/api/v1/users", token, tenant, Some(body), 201)
            .await;
        assert_eq!(
            (v["username"].as_str(), v["role"].as_str()),
            (Some(name), Some(role))
        );
        v["id"].as_str().unwrap().to_string()
    }

    /// Creates a key with `token` (for the caller unless `body` names a user); returns (id, key).
    async fn key(&self, token: &str, tenant: Option<&str>, body: Value) -> (String, String) {
        let v = self
            .expect("POST", "/api/v1/keys", token, tenant, Some(body), 201)
            .await;
        let key = v["key"].as_str().expect("the key is shown at creation");
        assert!(key.starts_with("sb_"), "{key}");
        (v["id"].as_str().unwrap().to_string(), key.to_string())
    }

    /// Status of an MCP `initialize` at `path` of the main service, with the JSON answer.
    async fn mcp_status(&self, addr: SocketAddr, path: &str, token: Option<&str>) -> Answer {
        let mut req = self
            .http
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"}}})
                .to_string(),
            );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if status.is_success() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Upstream tool names (without the hub's own) on the MCP endpoint `path` of the main
    /// service, as `token` sees them.
    async fn mcp_tools(&self, path: &str, token: &str) -> Vec<String> {
        mcp_tools_at(&format!("http://{}{path}", self.main), Some(token)).await
    }
}

/// Connects an MCP client with an optional bearer token; returns upstream tool names, sorted.
async fn mcp_tools_at(url: &str, token: Option<&str>) -> Vec<String> {
    let mut c = McpClient::unconnected(url);
    if let Some(t) = token {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {t}").parse().unwrap());
        c.http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
    }
    let init = c
        .request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    assert!(init.get("result").is_some(), "{url}: {init}");
    c.notify("notifications/initialized", None).await;
    let mut names: Vec<String> = c
        .tool_names()
        .await
        .into_iter()
        .filter(|n| !n.starts_with("switchboard__"))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// Two tenants

/// A user with a key.
struct Member {
    name: String,
    id: String,
    key: String,
    key_id: String,
}

/// One tenant's people and objects.
struct Team {
    tenant: String,
    server: String,
    group: String,
    manager: Member,
    /// The manager's access token.
    manager_jwt: String,
    /// A user with every grant.
    user: Member,
    /// `user`'s key limited to `group`.
    limited_key: String,
    /// A user whose grants are `[group]` only.
    granted: Member,
    /// The tool names the server exports on `/mcp`, sorted.
    tools: Vec<String>,
    fixture: FixtureServer,
}

/// Builds a tenant the way an operator would: the admin creates the tenant and its manager,
/// the manager logs in, creates a key, a user, a server and a group; the users make their own
/// keys.
async fn team(h: &TestHub, tenant: &str, server: &str) -> Team {
    let v = h
        .expect(
            "POST",
            "/api/v1/tenants",
            ADMIN,
            None,
            Some(json!({"name": tenant})),
            201,
        )
        .await;
    assert_eq!(v["name"], tenant);
    let mgr_name = format!("{tenant}-manager");
    let mgr_id = h
        .user(ADMIN, Some(tenant), &mgr_name, "manager", json!(["*"]))
        .await;
    let (manager_jwt, _) = h.tokens(&mgr_name).await;
    let (mgr_key_id, mgr_key) = h
        .key(&manager_jwt, None, json!({"name": "manager key"}))
        .await;

    let fixture = spawn_http(FixtureOptions::new(server)).await.unwrap();
    let group = format!("{server}-group");
    h.expect(
        "POST",
        "/api/v1/servers",
        &mgr_key,
        None,
        Some(json!({"name": server, "type": "streamable-http", "url": fixture.url})),
        201,
    )
    .await;
    h.expect(
        "POST",
        "/api/v1/groups",
        &mgr_key,
        None,
        Some(json!({"name": group, "members": [server]})),
        201,
    )
    .await;

    let user_name = format!("{tenant}-user");
    let user_id = h
        .user(&mgr_key, None, &user_name, "user", json!(["*"]))
        .await;
    let (user_jwt, _) = h.tokens(&user_name).await;
    let (user_key_id, user_key) = h.key(&user_jwt, None, json!({"name": "mine"})).await;
    let (_, limited_key) = h
        .key(
            &user_key,
            None,
            json!({"name": "limited", "allow": [group]}),
        )
        .await;
    let granted_name = format!("{tenant}-granted");
    let granted_id = h
        .user(&mgr_key, None, &granted_name, "user", json!([group]))
        .await;
    // A manager may make a key for a user of the tenant.
    let (granted_key_id, granted_key) = h
        .key(
            &mgr_key,
            None,
            json!({"name": "for granted", "user_id": granted_id}),
        )
        .await;

    let path = format!("/api/v1/servers/{server}");
    assert!(
        eventually(Duration::from_secs(15), async || {
            h.expect("GET", &path, &mgr_key, None, None, 200).await["status"]["state"] == "ready"
        })
        .await,
        "{server} never became ready"
    );
    let list = h
        .expect("GET", &format!("{path}/tools"), &mgr_key, None, None, 200)
        .await;
    let tools = names_in(&list, "tools", "exported_name");
    assert!(tools.contains(&format!("{server}__echo")), "{list}");
    Team {
        tenant: tenant.into(),
        server: server.into(),
        group,
        manager: Member {
            name: mgr_name,
            id: mgr_id,
            key: mgr_key,
            key_id: mgr_key_id,
        },
        manager_jwt,
        user: Member {
            name: user_name,
            id: user_id,
            key: user_key,
            key_id: user_key_id,
        },
        limited_key,
        granted: Member {
            name: granted_name,
            id: granted_id,
            key: granted_key,
            key_id: granted_key_id,
        },
        tools,
        fixture,
    }
}

fn names_in(list: &Value, field: &str, key: &str) -> Vec<String> {
    let mut v: Vec<String> = list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// What the people of `me` may see and change, and what of `other` they may not.
async fn check_team(h: &TestHub, me: &Team, other: &Team) {
    let (mgr, usr) = (me.manager.key.as_str(), me.user.key.as_str());
    let own_srv = format!("/api/v1/servers/{}", me.server);
    let other_srv = format!("/api/v1/servers/{}", other.server);
    let own_grp = format!("/api/v1/groups/{}", me.group);
    let other_grp = format!("/api/v1/groups/{}", other.group);

    // Who is who, by every credential kind.
    for (token, name, role, credential) in [
        (mgr, &me.manager.name, "manager", "api-key"),
        (
            me.manager_jwt.as_str(),
            &me.manager.name,
            "manager",
            "session",
        ),
        (usr, &me.user.name, "user", "api-key"),
        (me.granted.key.as_str(), &me.granted.name, "user", "api-key"),
    ] {
        let v = h.expect("GET", "/api/v1/me", token, None, None, 200).await;
        assert_eq!(
            (
                v["tenant"].as_str(),
                v["username"].as_str(),
                v["role"].as_str(),
                v["credential"].as_str()
            ),
            (
                Some(me.tenant.as_str()),
                Some(name.as_str()),
                Some(role),
                Some(credential)
            ),
            "{v}"
        );
    }
    let v = h
        .expect("GET", "/api/v1/me", &me.limited_key, None, None, 200)
        .await;
    assert_eq!(v["key_allow"], json!([me.group]), "{v}");

    // Servers: the manager sees and changes their own, never the other tenant's.
    for token in [mgr, me.manager_jwt.as_str()] {
        let list = h
            .expect("GET", "/api/v1/servers", token, None, None, 200)
            .await;
        assert_eq!(names_in(&list, "servers", "name"), vec![me.server.clone()]);
        h.expect("GET", &own_srv, token, None, None, 200).await;
        h.expect("GET", &other_srv, token, None, None, 404).await;
    }
    h.expect("GET", &own_srv, mgr, Some(&me.tenant), None, 200)
        .await;
    h.expect(
        "GET",
        "/api/v1/servers",
        mgr,
        Some(&other.tenant),
        None,
        404,
    )
    .await;
    h.expect("GET", &other_srv, mgr, Some(&other.tenant), None, 404)
        .await;
    let entry =
        json!({"name": other.server, "type": "streamable-http", "url": "http://127.0.0.1:9/mcp"});
    for (method, path, body) in [
        ("PUT", other_srv.clone(), Some(entry.clone())),
        ("POST", format!("{other_srv}/disable"), None),
        ("POST", format!("{other_srv}/restart"), None),
        ("DELETE", other_srv.clone(), None),
    ] {
        h.expect(method, &path, mgr, None, body.clone(), 404).await;
        h.expect(method, &path, mgr, Some(&other.tenant), body, 404)
            .await;
    }
    // Creating a server of the other tenant's name makes one in this tenant, not a clash.
    h.expect(
        "POST",
        "/api/v1/servers",
        mgr,
        None,
        Some(entry.clone()),
        201,
    )
    .await;
    h.expect("DELETE", &other_srv, mgr, None, None, 204).await;
    // Users may not manage servers, not even their own tenant's.
    h.expect("GET", "/api/v1/servers", usr, None, None, 403)
        .await;
    h.expect("GET", &own_srv, usr, None, None, 403).await;
    h.expect("POST", "/api/v1/servers", usr, None, Some(entry), 403)
        .await;
    h.expect("POST", &format!("{own_srv}/disable"), usr, None, None, 403)
        .await;
    h.expect("DELETE", &own_srv, usr, None, None, 403).await;

    // Tools of a server.
    let tools = h
        .expect("GET", &format!("{own_srv}/tools"), mgr, None, None, 200)
        .await;
    assert!(
        names_in(&tools, "tools", "name").contains(&"echo".to_string()),
        "{tools}"
    );
    h.expect("GET", &format!("{other_srv}/tools"), mgr, None, None, 404)
        .await;
    let hide = json!({"description": "changed"});
    h.expect(
        "PATCH",
        &format!("{other_srv}/tools/echo"),
        mgr,
        None,
        Some(hide.clone()),
        404,
    )
    .await;
    h.expect(
        "PATCH",
        &format!("{own_srv}/tools/echo"),
        usr,
        None,
        Some(hide.clone()),
        403,
    )
    .await;
    let v = h
        .expect(
            "PATCH",
            &format!("{own_srv}/tools/echo"),
            mgr,
            None,
            Some(hide),
            200,
        )
        .await;
    assert_eq!(v["description_override"], "changed", "{v}");
    h.expect(
        "DELETE",
        &format!("{own_srv}/tools/echo"),
        mgr,
        None,
        None,
        204,
    )
    .await;

    // Groups.
    let list = h
        .expect("GET", "/api/v1/groups", mgr, None, None, 200)
        .await;
    assert_eq!(names_in(&list, "groups", "name"), vec![me.group.clone()]);
    h.expect("GET", &own_grp, mgr, None, None, 200).await;
    h.expect("GET", &other_grp, mgr, None, None, 404).await;
    let grp = json!({"name": other.group, "members": []});
    h.expect("PUT", &other_grp, mgr, None, Some(grp.clone()), 404)
        .await;
    h.expect("DELETE", &other_grp, mgr, None, None, 404).await;
    h.expect("GET", "/api/v1/groups", usr, None, None, 403)
        .await;
    h.expect("POST", "/api/v1/groups", usr, None, Some(grp), 403)
        .await;
    h.expect("DELETE", &own_grp, usr, None, None, 403).await;

    // Users.
    let list = h.expect("GET", "/api/v1/users", mgr, None, None, 200).await;
    let mut want = vec![
        me.manager.name.clone(),
        me.user.name.clone(),
        me.granted.name.clone(),
    ];
    want.sort();
    assert_eq!(names_in(&list, "users", "username"), want);
    assert!(
        !list.to_string().contains("argon2"),
        "no password hashes: {list}"
    );
    h.expect(
        "GET",
        &format!("/api/v1/users/{}", me.user.id),
        mgr,
        None,
        None,
        200,
    )
    .await;
    for id in [&other.manager.id, &other.user.id] {
        let path = format!("/api/v1/users/{id}");
        h.expect("GET", &path, mgr, None, None, 404).await;
        h.expect(
            "PATCH",
            &path,
            mgr,
            None,
            Some(json!({"disabled": true})),
            404,
        )
        .await;
        h.expect("DELETE", &path, mgr, None, None, 404).await;
    }
    h.expect(
        "POST",
        "/api/v1/users",
        mgr,
        None,
        Some(json!({"username": format!("{}-boss", me.tenant), "password": PASSWORD, "role": "admin"})),
        403,
    )
    .await;
    h.expect(
        "PATCH",
        &format!("/api/v1/users/{}", me.user.id),
        mgr,
        None,
        Some(json!({"role": "admin"})),
        403,
    )
    .await;
    h.expect("GET", "/api/v1/users", usr, None, None, 403).await;
    h.expect(
        "GET",
        &format!("/api/v1/users/{}", me.user.id),
        usr,
        None,
        None,
        403,
    )
    .await;
    h.expect(
        "POST",
        "/api/v1/users",
        usr,
        None,
        Some(json!({"username": "sneaky", "password": PASSWORD})),
        403,
    )
    .await;
    h.expect(
        "PATCH",
        &format!("/api/v1/users/{}", me.user.id),
        usr,
        None,
        Some(json!({"grants": ["*"]})),
        403,
    )
    .await;

    // Keys: a manager sees the tenant's, a user their own.
    let list = h.expect("GET", "/api/v1/keys", mgr, None, None, 200).await;
    let keys = list["keys"].as_array().unwrap();
    assert!(
        keys.iter().all(|k| k["tenant"] == me.tenant.as_str()),
        "{list}"
    );
    let ids: Vec<&str> = keys.iter().map(|k| k["id"].as_str().unwrap()).collect();
    for id in [&me.manager.key_id, &me.user.key_id, &me.granted.key_id] {
        assert!(ids.contains(&id.as_str()), "{id} in {list}");
    }
    assert_eq!(keys.len(), 4, "{list}");
    assert!(
        keys.iter().all(|k| k.get("key").is_none()),
        "secrets are shown once: {list}"
    );
    let list = h.expect("GET", "/api/v1/keys", usr, None, None, 200).await;
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the user's own two keys: {list}");
    assert!(
        keys.iter().all(|k| k["user_id"] == me.user.id.as_str()),
        "{list}"
    );
    h.expect("GET", "/api/v1/keys", usr, Some(&other.tenant), None, 404)
        .await;
    for id in [&other.manager.key_id, &other.user.key_id] {
        h.expect(
            "DELETE",
            &format!("/api/v1/keys/{id}"),
            mgr,
            None,
            None,
            404,
        )
        .await;
        h.expect(
            "DELETE",
            &format!("/api/v1/keys/{id}"),
            mgr,
            Some(&other.tenant),
            None,
            404,
        )
        .await;
    }
    h.expect(
        "DELETE",
        &format!("/api/v1/keys/{}", me.manager.key_id),
        usr,
        None,
        None,
        404,
    )
    .await;
    h.expect(
        "POST",
        "/api/v1/keys",
        mgr,
        None,
        Some(json!({"name": "theirs", "user_id": other.user.id})),
        404,
    )
    .await;
    h.expect(
        "POST",
        "/api/v1/keys",
        usr,
        None,
        Some(json!({"name": "colleague's", "user_id": me.granted.id})),
        404,
    )
    .await;

    // Tenants.
    let list = h
        .expect("GET", "/api/v1/tenants", mgr, None, None, 200)
        .await;
    assert_eq!(names_in(&list, "tenants", "name"), vec![me.tenant.clone()]);
    h.expect(
        "POST",
        "/api/v1/tenants",
        mgr,
        None,
        Some(json!({"name": "extra"})),
        403,
    )
    .await;
    h.expect(
        "DELETE",
        &format!("/api/v1/tenants/{}", other.tenant),
        mgr,
        None,
        None,
        404,
    )
    .await;
    h.expect("GET", "/api/v1/tenants", usr, None, None, 403)
        .await;

    // Audit.
    h.expect("GET", "/api/v1/audit", usr, None, None, 403).await;
    h.expect("GET", "/api/v1/audit", mgr, Some(&other.tenant), None, 404)
        .await;

    // The seed's routes act on the caller's tenant.
    let list = h.expect("GET", "/api/mcp/list", mgr, None, None, 200).await;
    let text = list.to_string();
    assert!(
        text.contains(&me.server) && !text.contains(&other.server),
        "{text}"
    );

    // Proxy sessions belong to the tenant that opened them.
    let s = h
        .expect(
            "POST",
            "/api/v1/server",
            mgr,
            None,
            Some(json!({"remote_url": me.fixture.url})),
            200,
        )
        .await;
    let sid = s["session_id"].as_str().unwrap();
    let spath = format!("/api/v1/server/{sid}");
    h.expect("GET", &spath, mgr, None, None, 200).await;
    for token in [&other.manager.key, &other.user.key] {
        h.expect("GET", &spath, token, None, None, 404).await;
        h.expect("GET", &format!("{spath}/tools"), token, None, None, 404)
            .await;
        h.expect("DELETE", &spath, token, None, None, 404).await;
    }
    h.expect("DELETE", &spath, mgr, None, None, 200).await;

    // MCP: each credential sees its own tenant, filtered by grants and allowlists.
    let tools = me.tools.clone();
    // A server's own endpoint uses the server's own tool names.
    let prefix = format!("{}__", me.server);
    let bare: Vec<String> = tools
        .iter()
        .map(|t| t.strip_prefix(&prefix).unwrap().to_string())
        .collect();
    for token in [mgr, me.manager_jwt.as_str(), usr] {
        assert_eq!(h.mcp_tools("/mcp", token).await, tools);
        assert_eq!(
            h.mcp_tools(&format!("/mcp/{}", me.server), token).await,
            bare
        );
    }
    for token in [&me.limited_key, &me.granted.key] {
        assert_eq!(
            h.mcp_tools(&format!("/mcp/{}", me.group), token).await,
            tools
        );
        let a = h
            .mcp_status(h.main, &format!("/mcp/{}", me.server), Some(token))
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
        assert_eq!(a.body["error"], "not_found", "{}", a.body);
        let a = h.mcp_status(h.main, "/mcp", Some(token)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert_eq!(a.body["error"], "forbidden", "{}", a.body);
        assert!(
            a.body["message"].as_str().unwrap().contains(&me.group),
            "{}",
            a.body
        );
    }
    // The other tenant's endpoints do not exist for this tenant's keys (on both services).
    for addr in [h.main, h.mcp] {
        for path in [
            format!("/mcp/{}", other.server),
            format!("/mcp/{}", other.group),
        ] {
            let a = h.mcp_status(addr, &path, Some(usr)).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}: {}", a.body);
        }
    }
    assert_eq!(
        mcp_tools_at(&format!("http://{}/mcp", h.mcp), Some(usr)).await,
        tools,
        "a credential on the MCP service selects its tenant"
    );
}

/// The isolation matrix on one hub.
async fn isolation_matrix(h: &TestHub) {
    let a = team(h, "team-a", "alpha").await;
    let b = team(h, "team-b", "beta").await;
    check_team(h, &a, &b).await;
    check_team(h, &b, &a).await;

    // The admin token acts on any tenant through the header, on the default one without.
    for t in [&a, &b] {
        let list = h
            .expect("GET", "/api/v1/servers", ADMIN, Some(&t.tenant), None, 200)
            .await;
        assert_eq!(names_in(&list, "servers", "name"), vec![t.server.clone()]);
        let list = h
            .expect("GET", "/api/v1/users", ADMIN, Some(&t.tenant), None, 200)
            .await;
        assert_eq!(list["users"].as_array().unwrap().len(), 3, "{list}");
        let list = h
            .expect("GET", "/api/v1/keys", ADMIN, Some(&t.tenant), None, 200)
            .await;
        assert_eq!(list["keys"].as_array().unwrap().len(), 4, "{list}");
        let v = h
            .expect(
                "GET",
                &format!("/api/v1/servers/{}", t.server),
                ADMIN,
                Some(&t.tenant),
                None,
                200,
            )
            .await;
        assert_eq!(v["enabled"], true, "nobody else changed it: {v}");
    }
    let list = h
        .expect("GET", "/api/v1/servers", ADMIN, None, None, 200)
        .await;
    assert_eq!(list["servers"], json!([]), "{list}");
    h.expect("GET", "/api/v1/servers", ADMIN, Some("nope"), None, 404)
        .await;
    let list = h
        .expect("GET", "/api/v1/tenants", ADMIN, None, None, 200)
        .await;
    assert_eq!(
        names_in(&list, "tenants", "name"),
        vec!["default", "team-a", "team-b"]
    );
    // Admin writes in another tenant, then the tenant's manager sees the result.
    h.expect(
        "POST",
        "/api/v1/groups",
        ADMIN,
        Some(&b.tenant),
        Some(json!({"name": "by-admin", "members": [b.server]})),
        201,
    )
    .await;
    h.expect(
        "GET",
        "/api/v1/groups/by-admin",
        &b.manager.key,
        None,
        None,
        200,
    )
    .await;
    h.expect(
        "GET",
        "/api/v1/groups/by-admin",
        &a.manager.key,
        None,
        None,
        404,
    )
    .await;
    h.expect(
        "DELETE",
        "/api/v1/groups/by-admin",
        ADMIN,
        Some(&b.tenant),
        None,
        204,
    )
    .await;
    // A tenant with servers cannot be deleted.
    h.expect("DELETE", "/api/v1/tenants/team-b", ADMIN, None, None, 409)
        .await;

    // Without a credential the loopback MCP service serves the default tenant: neither team.
    assert_eq!(
        mcp_tools_at(&format!("http://{}/mcp", h.mcp), None).await,
        Vec::<String>::new()
    );
    let a_ = h.mcp_status(h.mcp, "/mcp/alpha", None).await;
    assert_eq!(a_.status, StatusCode::NOT_FOUND, "{}", a_.body);
    // The admin token on MCP is the default tenant too.
    assert_eq!(h.mcp_tools("/mcp", ADMIN).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_matrix_sqlite() {
    let h = TestHub::sqlite().await;
    isolation_matrix(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_matrix_postgres() {
    let h = TestHub::postgres().await;
    isolation_matrix(&h).await;
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// Creates tenant `tenant` and a user of it (by the admin); returns the user's id.
async fn tenant_with_user(h: &TestHub, tenant: &str, user: &str, role: &str) -> String {
    h.expect(
        "POST",
        "/api/v1/tenants",
        ADMIN,
        None,
        Some(json!({"name": tenant})),
        201,
    )
    .await;
    h.user(ADMIN, Some(tenant), user, role, json!(["*"])).await
}

/// The main service's MCP endpoint refuses `token` with the RFC 9728 challenge.
async fn mcp_refuses(h: &TestHub, token: &str) {
    let a = h.mcp_status(h.main, "/mcp", Some(token)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let challenge = a.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("resource_metadata="),
        "{challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_tampered_and_foreign_credentials_are_refused() {
    let h = TestHub::sqlite().await;
    let uid = tenant_with_user(&h, "crew", "crew-user", "user").await;
    let (jwt, _) = h.tokens("crew-user").await;
    assert_eq!(h.me_status(&jwt).await, 200);

    // A key that expires.
    let (_, short) = h
        .key(
            &jwt,
            None,
            json!({"name": "short", "expires_in_seconds": 1}),
        )
        .await;
    assert_eq!(h.me_status(&short).await, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let a = h.send("GET", "/api/v1/me", Some(&short), None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["message"], "this API key has expired", "{}", a.body);
    mcp_refuses(&h, &short).await;

    // A revoked key: refused on the next request, listed with its revocation time.
    let (kid, key) = h.key(&jwt, None, json!({"name": "revoke me"})).await;
    assert_eq!(h.me_status(&key).await, 200);
    assert_eq!(h.mcp_status(h.main, "/mcp", Some(&key)).await.status, 200);
    h.expect(
        "DELETE",
        &format!("/api/v1/keys/{kid}"),
        &jwt,
        None,
        None,
        204,
    )
    .await;
    let a = h.send("GET", "/api/v1/me", Some(&key), None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["message"], "this API key was revoked", "{}", a.body);
    mcp_refuses(&h, &key).await;
    let list = h.expect("GET", "/api/v1/keys", &jwt, None, None, 200).await;
    let listed = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == kid.as_str())
        .unwrap();
    assert!(listed["revoked_at"].is_i64(), "{listed}");
    // A key with a wrong secret.
    let (_, good) = h.key(&jwt, None, json!({"name": "good"})).await;
    let wrong = format!("{}0", &good[..good.len() - 1]);
    let wrong = if wrong == good {
        format!("{}1", &good[..good.len() - 1])
    } else {
        wrong
    };
    assert_eq!(h.me_status(&wrong).await, 401);
    assert_eq!(h.me_status(&good).await, 200);

    // Access tokens: a changed signature, a changed payload.
    assert_eq!(h.me_status(&tamper_signature(&jwt)).await, 401);
    mcp_refuses(&h, &tamper_signature(&jwt)).await;
    let parts: Vec<&str> = jwt.split('.').collect();
    let forged_claims = json!({"sub": uid, "iss": "switchboard", "aud": "switchboard",
        "exp": now_secs() + 600, "iat": now_secs(), "jti": "x", "ten": "default", "role": "admin"});
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(forged_claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(h.me_status(&forged).await, 401);

    // Hand-made tokens signed with the hub's own key: accepted only with the right issuer,
    // audience, expiry and tenant.
    let secret = h
        .state
        .identity
        .store()
        .shared_secret("jwt_hs256_key")
        .await
        .unwrap();
    let claims = |iss: &str, aud: &str, exp: i64, ten: &str| {
        json!({"sub": uid, "iss": iss, "aud": aud, "exp": exp, "iat": now_secs(),
               "jti": "hand-made", "ten": ten, "role": "user"})
    };
    let later = now_secs() + 600;
    let sound = hs256(
        &secret,
        &claims("switchboard", "switchboard", later, "crew"),
    );
    let v = h.expect("GET", "/api/v1/me", &sound, None, None, 200).await;
    assert_eq!(
        (v["username"].as_str(), v["credential"].as_str()),
        (Some("crew-user"), Some("session"))
    );
    for (what, token) in [
        (
            "wrong audience",
            hs256(
                &secret,
                &claims("switchboard", "someone-else", later, "crew"),
            ),
        ),
        (
            "wrong issuer",
            hs256(&secret, &claims("evil", "switchboard", later, "crew")),
        ),
        (
            "expired",
            hs256(
                &secret,
                &claims("switchboard", "switchboard", now_secs() - 60, "crew"),
            ),
        ),
        (
            "another tenant",
            hs256(
                &secret,
                &claims("switchboard", "switchboard", later, "default"),
            ),
        ),
        (
            "wrong key",
            hs256(
                b"not the hub's key at all",
                &claims("switchboard", "switchboard", later, "crew"),
            ),
        ),
        (
            "no signature",
            format!(
                "{}.",
                signing_input(
                    &json!({"alg": "none", "typ": "JWT"}),
                    &claims("switchboard", "switchboard", later, "crew")
                )
            ),
        ),
    ] {
        let a = h.send("GET", "/api/v1/me", Some(&token), None, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        assert_eq!(a.body["error"], "unauthorized", "{what}: {}", a.body);
        mcp_refuses(&h, &token).await;
    }

    // A disabled user: keys, tokens and logins refused; enabled again, they work again.
    let user_path = format!("/api/v1/users/{uid}");
    let v = h
        .expect(
            "PATCH",
            &user_path,
            ADMIN,
            Some("crew"),
            Some(json!({"disabled": true})),
            200,
        )
        .await;
    assert_eq!(v["disabled"], true, "{v}");
    assert_eq!(h.me_status(&good).await, 401);
    assert_eq!(h.me_status(&jwt).await, 401);
    assert_eq!(h.me_status(&sound).await, 401);
    mcp_refuses(&h, &good).await;
    assert_eq!(h.login("crew-user", PASSWORD).await.status, 401);
    h.expect(
        "PATCH",
        &user_path,
        ADMIN,
        Some("crew"),
        Some(json!({"disabled": false})),
        200,
    )
    .await;
    assert_eq!(h.me_status(&good).await, 200);
    assert_eq!(h.me_status(&jwt).await, 200);

    // A deleted user: everything refused.
    h.expect("DELETE", &user_path, ADMIN, Some("crew"), None, 204)
        .await;
    assert_eq!(h.me_status(&good).await, 401);
    assert_eq!(h.me_status(&jwt).await, 401);
    mcp_refuses(&h, &good).await;
    assert_eq!(h.login("crew-user", PASSWORD).await.status, 401);
    h.expect("GET", &user_path, ADMIN, Some("crew"), None, 404)
        .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = TestHub::sqlite().await;
    h.user(ADMIN, None, "rita", "user", json!(["*"])).await;
    let (_, r1) = h.tokens("rita").await;
    assert!(r1.starts_with("sbr_"), "{r1}");

    let a = h.refresh(&r1).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let (a2, r2) = (
        a.body["access_token"].as_str().unwrap().to_string(),
        a.body["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_ne!(r1, r2);
    let v = h.expect("GET", "/api/v1/me", &a2, None, None, 200).await;
    assert_eq!(v["username"], "rita");

    // Another login is another family.
    let (_, other) = h.tokens("rita").await;

    // r1 again: refused, and r2 (same family, never used) dies with it.
    let a = h.refresh(&r1).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert!(
        a.body["message"].as_str().unwrap().contains("already used"),
        "{}",
        a.body
    );
    let a = h.refresh(&r2).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["error"], "unauthorized", "{}", a.body);

    // The other family is untouched; logout revokes it.
    let a = h.refresh(&other).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let r3 = a.body["refresh_token"].as_str().unwrap().to_string();
    let a = h
        .send(
            "POST",
            "/api/v1/auth/logout",
            None,
            None,
            Some(json!({"refresh_token": r3})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(h.refresh(&r3).await.status, StatusCode::UNAUTHORIZED);

    // Garbage and forged tokens.
    let id = r3.trim_start_matches("sbr_").split('_').next().unwrap();
    for bad in [
        "",
        "sbr_x_y",
        "nonsense",
        &format!("sbr_{id}_{}", "0".repeat(64)),
    ] {
        assert_eq!(
            h.refresh(bad).await.status,
            StatusCode::UNAUTHORIZED,
            "{bad}"
        );
    }
    let a = h
        .send(
            "POST",
            "/api/v1/auth/logout",
            None,
            None,
            Some(json!({"refresh_token": "sbr_x_y"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    // A fresh login still works.
    h.tokens("rita").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_user_and_per_address() {
    let h = TestHub::sqlite().await;
    for name in ["tom", "tina", "theo"] {
        h.user(ADMIN, None, name, "user", json!(["*"])).await;
    }
    for i in 0..5 {
        let a = h.login("tom", "wrong password").await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            a.body
        );
        assert_eq!(a.body["message"], "wrong user name or password");
    }
    for password in [PASSWORD, "wrong password"] {
        let a = h.login("tom", password).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
        assert_eq!(a.body["error"], "throttled", "{}", a.body);
        assert!(a.body.get("access_token").is_none());
        let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=300).contains(&retry), "Retry-After {retry}");
    }
    // Another user from the same address is not affected yet.
    h.tokens("tina").await;
    // 20 failures from one address throttle every name from it.
    for i in 0..15 {
        let a = h.login(&format!("ghost-{i}"), "wrong password").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "ghost {i}: {}", a.body);
    }
    let a = h.login("theo", PASSWORD).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    // Existing credentials keep working: the throttle is for password guessing.
    h.expect("GET", "/api/v1/me", ADMIN, None, None, 200).await;
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// External issuer

/// Serves `jwks` at `/jwks` on a loopback port; returns its URL and a fetch counter.
async fn jwks_server(jwks: Value) -> (String, Arc<AtomicUsize>, CancellationToken) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let (listener, addr) = bind().await;
    let stop = CancellationToken::new();
    tokio::spawn(switchboard_http::serve(listener, router, stop.clone()));
    (format!("http://{addr}/jwks"), fetches, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_issuer_tokens_are_checked_against_its_jwks() {
    init();
    let (jwks_url, fetches, stop_jwks) =
        jwks_server(json!({"keys": [ec_jwk(EC_KEY_1, "k1")]})).await;
    let url = jwks_url.clone();
    let h = TestHub::start(
        None,
        move |main| IdentityConfig {
            external: Some(ExternalIssuer {
                issuer: ISSUER.into(),
                jwks_url: url,
                audience: format!("http://{main}/mcp"),
            }),
            ..Default::default()
        },
        McpAuth::Optional,
    )
    .await;
    let audience = format!("http://{}/mcp", h.main);
    let uid = tenant_with_user(&h, "ext", "ext-user", "user").await;
    let claims = |iss: &str, aud: &str, exp: i64, sub: &str| json!({"iss": iss, "aud": aud, "exp": exp, "iat": now_secs(), "sub": sub});
    let later = now_secs() + 300;

    let good = es256(
        EC_KEY_1,
        Some("k1"),
        &claims(ISSUER, &audience, later, "ext-user"),
    );
    let v = h.expect("GET", "/api/v1/me", &good, None, None, 200).await;
    assert_eq!(
        (
            v["tenant"].as_str(),
            v["user_id"].as_str(),
            v["credential"].as_str()
        ),
        (Some("ext"), Some(uid.as_str()), Some("external")),
        "{v}"
    );
    let a = h.mcp_status(h.main, "/mcp", Some(&good)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // One key in the set: a token without `kid` uses it.
    let no_kid = es256(
        EC_KEY_1,
        None,
        &claims(ISSUER, &audience, later, "ext-user"),
    );
    assert_eq!(h.me_status(&no_kid).await, 200);

    for (what, token) in [
        (
            "wrong audience",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, "https://elsewhere/mcp", later, "ext-user"),
            ),
        ),
        (
            "wrong issuer",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims("https://evil.example", &audience, later, "ext-user"),
            ),
        ),
        (
            "expired",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, &audience, now_secs() - 60, "ext-user"),
            ),
        ),
        (
            "unknown kid",
            es256(
                EC_KEY_1,
                Some("k9"),
                &claims(ISSUER, &audience, later, "ext-user"),
            ),
        ),
        (
            "signed by another key",
            es256(
                EC_KEY_2,
                Some("k1"),
                &claims(ISSUER, &audience, later, "ext-user"),
            ),
        ),
        ("tampered", tamper_signature(&good)),
        (
            "unknown subject",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, &audience, later, "nobody"),
            ),
        ),
        (
            "the hub's own audience",
            es256(
                EC_KEY_1,
                Some("k1"),
                &claims(ISSUER, "switchboard", later, "ext-user"),
            ),
        ),
    ] {
        let a = h.send("GET", "/api/v1/me", Some(&token), None, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        assert_eq!(a.body["error"], "unauthorized", "{what}: {}", a.body);
        mcp_refuses(&h, &token).await;
    }
    assert!(fetches.load(Ordering::SeqCst) >= 1);

    // A disabled user's external tokens are refused.
    h.expect(
        "PATCH",
        &format!("/api/v1/users/{uid}"),
        ADMIN,
        Some("ext"),
        Some(json!({"disabled": true})),
        200,
    )
    .await;
    assert_eq!(h.me_status(&good).await, 401);

    // The metadata names the issuer.
    let a = h
        .send(
            "GET",
            "/.well-known/oauth-protected-resource",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(
        a.body["authorization_servers"],
        json!([ISSUER]),
        "{}",
        a.body
    );
    assert_eq!(a.body["resource"], audience.as_str(), "{}", a.body);
    stop_jwks.cancel();
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Audit

fn entries(list: &Value) -> &Vec<Value> {
    list["entries"].as_array().unwrap()
}

fn has_entry(list: &Value, actor: &str, action: &str, target: &str, outcome: &str) -> bool {
    entries(list).iter().any(|e| {
        e["actor"] == actor
            && e["action"] == action
            && e["target"] == target
            && e["outcome"] == outcome
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_management_actions_per_tenant() {
    let h = TestHub::sqlite().await;
    let ma = tenant_with_user(&h, "aud-a", "aud-a-mgr", "manager").await;
    let mb = tenant_with_user(&h, "aud-b", "aud-b-mgr", "manager").await;
    h.user(ADMIN, Some("aud-a"), "aud-a-user", "user", json!(["*"]))
        .await;
    let (ka_id, ka) = h
        .key(ADMIN, Some("aud-a"), json!({"name": "a", "user_id": ma}))
        .await;
    let (kb_id, kb) = h
        .key(ADMIN, Some("aud-b"), json!({"name": "b", "user_id": mb}))
        .await;
    let (ua, _) = h.tokens("aud-a-user").await;
    let server = |name: &str| json!({"name": name, "type": "streamable-http", "url": "http://127.0.0.1:9/mcp"});

    h.expect(
        "POST",
        "/api/v1/servers",
        &ka,
        None,
        Some(server("sa")),
        201,
    )
    .await;
    h.expect("GET", "/api/v1/servers", &ka, None, None, 200)
        .await;
    h.expect(
        "POST",
        "/api/v1/servers",
        &ua,
        None,
        Some(server("su")),
        403,
    )
    .await;
    h.expect("DELETE", "/api/v1/servers/nope", &ka, None, None, 404)
        .await;
    h.expect(
        "POST",
        "/api/v1/servers",
        &kb,
        None,
        Some(server("sb")),
        201,
    )
    .await;
    // A manager of a probing tenant b.
    h.expect(
        "POST",
        "/api/v1/servers",
        &ka,
        Some("aud-b"),
        Some(server("sx")),
        404,
    )
    .await;

    let actor_a = format!("user:aud-a-mgr (key {ka_id})");
    let actor_b = format!("user:aud-b-mgr (key {kb_id})");
    let log_a = h.expect("GET", "/api/v1/audit", &ka, None, None, 200).await;
    assert!(
        entries(&log_a).iter().all(|e| e["tenant"] == "aud-a"),
        "{log_a}"
    );
    assert!(
        has_entry(
            &log_a,
            &actor_a,
            "POST /api/v1/servers",
            "/api/v1/servers",
            "ok"
        ),
        "{log_a}"
    );
    assert!(
        has_entry(
            &log_a,
            "user:aud-a-user",
            "POST /api/v1/servers",
            "/api/v1/servers",
            "denied"
        ),
        "{log_a}"
    );
    assert!(
        has_entry(
            &log_a,
            &actor_a,
            "DELETE /api/v1/servers/{name}",
            "/api/v1/servers/nope",
            "denied"
        ),
        "{log_a}"
    );
    assert!(
        entries(&log_a).iter().any(|e| e["action"] == "auth.login"
            && e["target"] == "aud-a-user"
            && e["outcome"] == "ok"),
        "{log_a}"
    );
    assert!(
        entries(&log_a)
            .iter()
            .all(|e| e["action"] != "GET /api/v1/servers"),
        "reads are not audited: {log_a}"
    );
    let denied = entries(&log_a)
        .iter()
        .find(|e| e["actor"] == "user:aud-a-user")
        .unwrap();
    assert_eq!(denied["detail"], "HTTP 403", "{denied}");
    // The cross-tenant probe is on the prober's own tenant's record, never on the target's.
    assert!(
        entries(&log_a)
            .iter()
            .any(|e| e["actor"] == actor_a.as_str()
                && e["action"] == "POST /api/v1/servers"
                && e["outcome"] == "denied"),
        "{log_a}"
    );
    // Newest first.
    let ids: Vec<i64> = entries(&log_a)
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    let log_b = h.expect("GET", "/api/v1/audit", &kb, None, None, 200).await;
    assert!(
        entries(&log_b).iter().all(|e| e["tenant"] == "aud-b"),
        "{log_b}"
    );
    assert!(
        has_entry(
            &log_b,
            &actor_b,
            "POST /api/v1/servers",
            "/api/v1/servers",
            "ok"
        ),
        "{log_b}"
    );
    assert!(
        !log_b.to_string().contains("aud-a-"),
        "nothing of tenant a: {log_b}"
    );
    // A manager may not ask for every tenant; `all` is ignored.
    let log = h
        .expect("GET", "/api/v1/audit?all=true", &kb, None, None, 200)
        .await;
    assert!(
        entries(&log).iter().all(|e| e["tenant"] == "aud-b"),
        "{log}"
    );

    // The admin: the default tenant, one named tenant, or all.
    let log = h
        .expect("GET", "/api/v1/audit", ADMIN, None, None, 200)
        .await;
    assert!(
        entries(&log).iter().all(|e| e["tenant"] == "default"),
        "{log}"
    );
    assert!(
        has_entry(
            &log,
            "admin-token",
            "POST /api/v1/tenants",
            "/api/v1/tenants",
            "ok"
        ),
        "{log}"
    );
    let log = h
        .expect("GET", "/api/v1/audit", ADMIN, Some("aud-b"), None, 200)
        .await;
    assert!(
        entries(&log).iter().all(|e| e["tenant"] == "aud-b"),
        "{log}"
    );
    let log = h
        .expect("GET", "/api/v1/audit?all=true", ADMIN, None, None, 200)
        .await;
    let tenants: std::collections::BTreeSet<&str> = entries(&log)
        .iter()
        .map(|e| e["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(
        tenants.into_iter().collect::<Vec<_>>(),
        vec!["aud-a", "aud-b", "default"]
    );
    let log = h
        .expect(
            "GET",
            "/api/v1/audit?limit=2",
            ADMIN,
            Some("aud-a"),
            None,
            200,
        )
        .await;
    assert_eq!(entries(&log).len(), 2, "{log}");
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// RFC 9728

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_mcp_requests_get_the_protected_resource_challenge() {
    let h = TestHub::sqlite().await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let a = h.send("GET", path, None, None, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert_eq!(
            a.body["resource"],
            format!("http://{}/mcp", h.main),
            "{}",
            a.body
        );
        assert_eq!(a.body["bearer_methods_supported"], json!(["header"]));
        assert_eq!(a.body["authorization_servers"], json!([]));
    }
    let expected = format!(
        "Bearer realm=\"switchboard\", resource_metadata=\"http://{}/.well-known/oauth-protected-resource\"",
        h.main
    );
    for (path, token) in [
        ("/mcp", None),
        ("/mcp/anything", None),
        ("/mcp", Some("sb_nope_nope")),
        ("/mcp", Some("not-a-credential")),
    ] {
        let a = h.mcp_status(h.main, path, token).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.body);
        assert_eq!(a.headers["www-authenticate"], expected.as_str());
        assert_eq!(a.body["error"], "unauthorized", "{}", a.body);
    }
    let a = h
        .http
        .get(format!("http://{}/sse", h.main))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers()["www-authenticate"], expected.as_str());
    // Management routes challenge too (without the MCP metadata).
    let a = h.send("GET", "/api/v1/me", None, None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
    );
    // The loopback MCP service serves the default tenant without a credential, but a bad
    // credential is refused rather than ignored.
    assert_eq!(
        h.mcp_status(h.mcp, "/mcp", None).await.status,
        StatusCode::OK
    );
    let a = h.mcp_status(h.mcp, "/mcp", Some("sb_nope_nope")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    h.stop().await;

    // With `--mcp-auth required` the MCP service challenges, pointing at its own metadata.
    let h = TestHub::start(None, |_| IdentityConfig::default(), McpAuth::Required).await;
    let a = h.mcp_status(h.mcp, "/mcp", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(
        a.headers["www-authenticate"],
        format!(
            "Bearer realm=\"switchboard\", resource_metadata=\"http://{}/.well-known/oauth-protected-resource\"",
            h.mcp
        )
        .as_str()
    );
    let meta: Value = h
        .http
        .get(format!(
            "http://{}/.well-known/oauth-protected-resource",
            h.mcp
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], format!("http://{}/mcp", h.mcp));
    assert_eq!(
        h.mcp_status(h.mcp, "/mcp", Some(ADMIN)).await.status,
        StatusCode::OK
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Escalation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_grant_more_than_their_maker_holds() {
    let h = TestHub::sqlite().await;
    let mgr = tenant_with_user(&h, "esc", "esc-mgr", "manager").await;
    let root = h
        .user(ADMIN, Some("esc"), "esc-root", "admin", json!(["*"]))
        .await;
    let (_, mgr_key) = h
        .key(ADMIN, Some("esc"), json!({"name": "m", "user_id": mgr}))
        .await;
    // A manager cannot mint a key for an admin of their tenant (and so act as an admin).
    h.expect(
        "POST",
        "/api/v1/keys",
        &mgr_key,
        None,
        Some(json!({"name": "root's", "user_id": root})),
        403,
    )
    .await;
    let list = h
        .expect("GET", "/api/v1/keys", ADMIN, Some("esc"), None, 200)
        .await;
    assert!(
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["user_id"] != root.as_str()),
        "{list}"
    );
    // Nor change or delete that admin.
    let root_path = format!("/api/v1/users/{root}");
    h.expect(
        "PATCH",
        &root_path,
        &mgr_key,
        None,
        Some(json!({"password": "0wned-0wned"})),
        403,
    )
    .await;
    h.expect("DELETE", &root_path, &mgr_key, None, None, 403)
        .await;
    // The admin can.
    h.key(
        ADMIN,
        Some("esc"),
        json!({"name": "root's", "user_id": root}),
    )
    .await;

    // A key limited to some endpoints makes keys only within its own limit.
    h.expect(
        "POST",
        "/api/v1/groups",
        &mgr_key,
        None,
        Some(json!({"name": "g1", "members": []})),
        201,
    )
    .await;
    let (_, limited) = h
        .key(&mgr_key, None, json!({"name": "limited", "allow": ["g1"]}))
        .await;
    for allow in [json!(["*"]), json!(["g2"]), json!(["g1", "g2"])] {
        h.expect(
            "POST",
            "/api/v1/keys",
            &limited,
            None,
            Some(json!({"name": "wider", "allow": allow})),
            403,
        )
        .await;
    }
    let (_, narrower) = h
        .key(&limited, None, json!({"name": "same", "allow": ["g1"]}))
        .await;
    let v = h
        .expect("GET", "/api/v1/me", &narrower, None, None, 200)
        .await;
    assert_eq!(v["key_allow"], json!(["g1"]), "{v}");
    let a = h.mcp_status(h.main, "/mcp", Some(&narrower)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    h.stop().await;
}
