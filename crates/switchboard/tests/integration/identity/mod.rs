//! Identity and tenancy over real HTTP: two tenants with managers, users and API keys, each
//! with its own fixture upstream and group, exercised through every management route family
//! and every MCP endpoint ([`team`]); expired, revoked, tampered and foreign credentials,
//! refresh-token rotation and reuse, the login throttle ([`credentials`]); tokens of an
//! external issuer checked against a JWKS served by the test ([`external`]); the audit log
//! ([`audit`]); RFC 9728 metadata and key limits ([`access`]). The isolation matrix runs on
//! SQLite and on PostgreSQL. This file holds what they share: token signing by hand and the
//! identity steps on a [`TestApp`].

#![allow(async_fn_in_trait)]

mod access;
mod audit;
mod credentials;
mod external;
mod team;

use credentials::{mcp_refuses, tenant_with_user};

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_control::IdentityConfig;

use crate::common::*;

pub(super) const ADMIN: &str = "admin-token-for-identity-tests";
pub(super) const PASSWORD: &str = "correct horse battery";
pub(super) const ISSUER: &str = "https://issuer.example.test";

// ---------------------------------------------------------------------------------------------
// Encoding and signing helpers (no JWT library in this crate: tokens are built by hand;
// base64url from the base64 crate the hub already uses)

pub(super) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// HMAC-SHA256 through the TLS provider's HKDF (the only HMAC this crate can reach).
pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
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
pub(super) fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// An HS256 token over `claims` with `key`.
pub(super) fn hs256(key: &[u8], claims: &Value) -> String {
    let input = signing_input(&json!({"alg": "HS256", "typ": "JWT"}), claims);
    format!("{input}.{}", b64url(&hmac_sha256(key, input.as_bytes())))
}

/// Two P-256 keys (PKCS#8 DER, made with `openssl genpkey -algorithm EC` for these tests).
/// The last 64 bytes of each are the public point's x and y.
pub(super) const EC_KEY_1: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b02010104207aad062fd3ad30feb325b460c640fe61995efd4b8c84f8014933f71c0846e68da14403420004bd76d0c00a195e4ee5e8b0acf80d1d1725b025e5441eb9de0575e8ff923a62da01ff6c801c09ed0c3ec108c52bbe89f20ab2a7259071b66da4c1c9785e90125e";
pub(super) const EC_KEY_2: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420832ed7a6886e534a00fac328cb0fdc0139930b5e748025a96afda731023e707ba14403420004315ac41285ec1520c12cbe4e8eb713d54eb863b341c0c9c9df15515f7c3756c763564c2ab62931b8197f5bbe9e53bcb968b64816ef92f903839b73af3d9ada02";

/// The public JWK of a key above.
pub(super) fn ec_jwk(pkcs8_hex: &str, kid: &str) -> Value {
    let der = unhex(pkcs8_hex);
    let point = &der[der.len() - 64..];
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": b64url(&point[..32]), "y": b64url(&point[32..]),
    })
}

/// An ES256 token over `claims`, signed with a key above, naming `kid`.
pub(super) fn es256(pkcs8_hex: &str, kid: Option<&str>, claims: &Value) -> String {
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
pub(super) fn ecdsa_raw(asn1: &[u8]) -> Vec<u8> {
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

pub(super) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Replaces one character in the middle of a token's signature.
pub(super) fn tamper_signature(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    format!("{input}.{}", sig.into_iter().collect::<String>())
}

// ---------------------------------------------------------------------------------------------
// The hub: a TestApp that checks error codes, and the identity steps the tests repeat

/// The identity tests' app: the admin token, error codes checked on every `expect`.
pub(super) fn hub() -> TestAppBuilder {
    TestApp::builder()
        .token(ADMIN)
        .error_codes()
        .identity(|_| IdentityConfig::default())
}

/// A hub on SQLite in memory.
pub(super) async fn sqlite() -> TestApp {
    hub().start().await
}

/// Logs in, refreshes, makes users and keys, and opens MCP sessions, as the tests do.
pub(super) trait IdentitySteps {
    async fn login(&self, username: &str, password: &str) -> Answer;
    /// Logs in; returns (access token, refresh token).
    async fn tokens(&self, username: &str) -> (String, String);
    async fn refresh(&self, refresh: &str) -> Answer;
    /// `GET /api/v1/me` with `token`: its status.
    async fn me_status(&self, token: &str) -> u16;
    /// Creates a user (as `token`, in `tenant` when given); returns its id.
    async fn user(
        &self,
        token: &str,
        tenant: Option<&str>,
        name: &str,
        role: &str,
        grants: Value,
    ) -> String;
    /// Creates a key with `token` (for the caller unless `body` names a user); returns (id, key).
    async fn key(&self, token: &str, tenant: Option<&str>, body: Value) -> (String, String);
    /// Status of an MCP `initialize` at `path` of the service at `addr`, with the JSON answer.
    async fn mcp_status(&self, addr: SocketAddr, path: &str, token: Option<&str>) -> Answer;
    /// Upstream tool names (without the hub's own) on the MCP endpoint `path` of the main
    /// service, as `token` sees them.
    async fn mcp_tools(&self, path: &str, token: &str) -> Vec<String>;
}

impl IdentitySteps for TestApp {
    async fn login(&self, username: &str, password: &str) -> Answer {
        self.anon()
            .post(
                "/api/v1/auth/login",
                json!({"username": username, "password": password}),
            )
            .send()
            .await
    }

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
        self.anon()
            .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
            .send()
            .await
    }

    async fn me_status(&self, token: &str) -> u16 {
        self.as_(token)
            .get("/api/v1/me")
            .send()
            .await
            .status
            .as_u16()
    }

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
            .as_(token)
            .post("/api/v1/users", body)
            .tenant(tenant)
            .expect(201)
            .await;
        assert_eq!(
            (v["username"].as_str(), v["role"].as_str()),
            (Some(name), Some(role))
        );
        v["id"].as_str().unwrap().to_string()
    }

    async fn key(&self, token: &str, tenant: Option<&str>, body: Value) -> (String, String) {
        let v = self
            .as_(token)
            .post("/api/v1/keys", body)
            .tenant(tenant)
            .expect(201)
            .await;
        let key = v["key"].as_str().expect("the key is shown at creation");
        assert!(key.starts_with("sb_"), "{key}");
        (v["id"].as_str().unwrap().to_string(), key.to_string())
    }

    async fn mcp_status(&self, addr: SocketAddr, path: &str, token: Option<&str>) -> Answer {
        let mut req = self
            .api
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

    async fn mcp_tools(&self, path: &str, token: &str) -> Vec<String> {
        mcp_tools_at(&format!("http://{}{path}", self.main), Some(token)).await
    }
}

/// Connects an MCP client with an optional bearer token; returns upstream tool names, sorted.
pub(super) async fn mcp_tools_at(url: &str, token: Option<&str>) -> Vec<String> {
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
