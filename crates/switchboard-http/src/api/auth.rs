//! The admin credential: a bearer token stored as its SHA-256 hash.
//!
//! Until users and keys exist, every management route requires `Authorization: Bearer <token>`
//! with the token from `--admin-token`, or the one generated on first start and printed once.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use switchboard_store::Store;

use super::{ApiError, ApiState};

const META_KEY: &str = "admin_token_sha256";

/// The admin credential.
#[derive(Debug)]
pub struct AdminAuth {
    hash: [u8; 32],
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AdminAuth {
    /// Uses `explicit` if given (and records its hash), else the stored hash, else generates a
    /// token, stores its hash and returns the token so the caller can print it once.
    pub async fn load(
        store: &dyn Store,
        explicit: Option<&str>,
    ) -> Result<(AdminAuth, Option<String>), String> {
        if let Some(token) = explicit {
            if token.len() < 16 {
                return Err("--admin-token must be at least 16 characters".into());
            }
            let hash = sha256(token);
            store
                .set_meta(META_KEY, &hex(&hash))
                .await
                .map_err(|e| e.to_string())?;
            return Ok((AdminAuth { hash }, None));
        }
        if let Some(stored) = store.get_meta(META_KEY).await.map_err(|e| e.to_string())? {
            let bytes: Vec<u8> = (0..stored.len())
                .step_by(2)
                .filter_map(|i| {
                    stored
                        .get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect();
            let hash: [u8; 32] = bytes
                .try_into()
                .map_err(|_| "the stored admin token hash is corrupt".to_string())?;
            return Ok((AdminAuth { hash }, None));
        }
        let mut raw = [0u8; 24];
        getrandom_fill(&mut raw);
        let token = format!("sbadm_{}", hex(&raw));
        let hash = sha256(&token);
        store
            .set_meta(META_KEY, &hex(&hash))
            .await
            .map_err(|e| e.to_string())?;
        Ok((AdminAuth { hash }, Some(token)))
    }

    /// For tests and embedding: a credential for a known token.
    pub fn from_token(token: &str) -> AdminAuth {
        AdminAuth {
            hash: sha256(token),
        }
    }

    /// True when `token` is the admin token (compared by hash, in constant time).
    pub fn verify(&self, token: &str) -> bool {
        let given = sha256(token);
        given
            .iter()
            .zip(self.hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

fn getrandom_fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random source works");
}

/// Proof that the request carried the admin token.
pub struct Admin;

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    resp.headers_mut().insert(
        "www-authenticate",
        "Bearer realm=\"switchboard\""
            .parse()
            .expect("static header"),
    );
    resp
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        }) else {
            return Err(unauthorized("missing Authorization: Bearer <admin token>"));
        };
        if state.auth.verify(token.trim()) {
            Ok(Admin)
        } else {
            Err(unauthorized("invalid admin token"))
        }
    }
}

impl OptionalFromRequestParts<ApiState> for Admin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Admin as FromRequestParts<ApiState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}
