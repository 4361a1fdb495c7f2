//! Sealed session ids: what a replica needs to resume a client session, carried in the id.
//!
//! A Streamable HTTP or legacy SSE session id is `sbs1.` followed by the unpadded base64url of
//! a fresh 24-byte nonce and the XChaCha20-Poly1305 ciphertext of [`SealedSession`] (JSON).
//! The key is derived per tenant from the hub's secret key, which every replica shares, so
//! any replica can open an id that any other replica issued, and an id of one tenant opens
//! in no other. The tag makes an edited or forged id fail to open: it is then simply an
//! unknown session (404). Nothing is read from the store to resume a session.
//!
//! What is sealed is what the client said in `initialize` (the negotiated revision, its
//! capabilities and `clientInfo`), the endpoint's view, the credential that opened the
//! session and when. What is not (requests in flight, resource subscriptions, the log
//! level) stays with the replica where it happened.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Prefix of a sealed id; bump it when the format changes.
pub const SEALED_PREFIX: &str = "sbs1.";
const NONCE_LEN: usize = 24;
/// Bound to every ciphertext so a blob sealed for another purpose never opens as a session.
const AAD: &[u8] = b"switchboard client session v1";
/// Longest id handed out (proxies commonly allow 8 KiB per header line); a session whose
/// `initialize` does not fit keeps a random id and lives on its first replica only.
pub const MAX_SEALED_LEN: usize = 4096;
/// How long after it was issued a sealed id can be resumed on a replica that does not hold
/// the session (one that does keeps it while it is in use).
pub const SEALED_MAX_AGE_SECS: u64 = 7 * 24 * 3600;

/// What a sealed id carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedSession {
    /// The endpoint's view ([`crate::View::label`]).
    #[serde(rename = "v")]
    pub view: String,
    /// Which credential opened the session (`key:<id>`, `user:<id>`, ...), if any.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The revision the client asked for in `initialize`.
    #[serde(rename = "p")]
    pub protocol_version: String,
    /// The client's declared capabilities.
    #[serde(rename = "c", default)]
    pub capabilities: Value,
    /// The client's `clientInfo` (only `name` and `version` when the whole would not fit).
    #[serde(rename = "i", default)]
    pub client_info: Value,
    /// Unix seconds when the session was opened.
    #[serde(rename = "t")]
    pub issued_at: u64,
    /// A random tag, so two sessions opened in the same second by the same client differ
    /// even in their plaintext.
    #[serde(rename = "n")]
    pub nonce: String,
}

/// Seals and opens session ids with one tenant's key.
#[derive(Clone)]
pub struct SessionSeal {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SessionSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSeal(<key redacted>)")
    }
}

impl SessionSeal {
    /// A seal with a 32-byte key (derived for one tenant from the shared secret key).
    pub fn new(key: [u8; 32]) -> Self {
        SessionSeal {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    /// The sealed id of `claims`; `None` when it would be longer than [`MAX_SEALED_LEN`]
    /// even with `clientInfo` cut to its name and version.
    pub fn seal(&self, claims: &SealedSession) -> Option<String> {
        let id = self.seal_exact(claims)?;
        if id.len() <= MAX_SEALED_LEN {
            return Some(id);
        }
        let mut short = claims.clone();
        short.client_info = match &claims.client_info {
            Value::Object(o) => Value::Object(
                o.iter()
                    .filter(|(k, v)| {
                        matches!(k.as_str(), "name" | "version")
                            && v.as_str().is_some_and(|s| s.len() <= 256)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => Value::Null,
        };
        self.seal_exact(&short)
            .filter(|id| id.len() <= MAX_SEALED_LEN)
    }

    fn seal_exact(&self, claims: &SealedSession) -> Option<String> {
        let plain = serde_json::to_vec(claims).ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .ok()?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Some(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(blob)))
    }

    /// What `id` carries, if it is a sealed id this key issued and it is not older than
    /// [`SEALED_MAX_AGE_SECS`] at `now` (Unix seconds).
    pub fn open(&self, id: &str, now: u64) -> Option<SealedSession> {
        let body = id.strip_prefix(SEALED_PREFIX)?;
        if id.len() > MAX_SEALED_LEN {
            return None;
        }
        let blob = URL_SAFE_NO_PAD.decode(body).ok()?;
        if blob.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .ok()?;
        let claims: SealedSession = serde_json::from_slice(&plain).ok()?;
        // A clock a little behind on another replica is no reason to refuse.
        let fresh = claims.issued_at <= now + 300
            && now.saturating_sub(claims.issued_at) <= SEALED_MAX_AGE_SECS;
        fresh.then_some(claims)
    }
}

/// True when `id` has the form of a sealed id (it may still fail to open).
pub fn is_sealed(id: &str) -> bool {
    id.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> SealedSession {
        SealedSession {
            view: "group:dev".into(),
            credential: Some("key:7".into()),
            protocol_version: "2025-06-18".into(),
            capabilities: json!({"sampling": {}, "roots": {"listChanged": true}}),
            client_info: json!({"name": "c", "version": "1"}),
            issued_at: 1_000_000,
            nonce: "ab".into(),
        }
    }

    #[test]
    fn an_id_opens_with_its_key_and_carries_what_was_sealed() {
        let seal = SessionSeal::new([7; 32]);
        let id = seal.seal(&claims()).unwrap();
        assert!(id.starts_with(SEALED_PREFIX) && id.len() < 400, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        );
        assert_eq!(seal.open(&id, 1_000_010), Some(claims()));
        // Two seals of the same claims differ (fresh nonce).
        assert_ne!(seal.seal(&claims()).unwrap(), id);
    }

    #[test]
    fn another_key_an_edit_or_an_old_id_does_not_open() {
        let seal = SessionSeal::new([7; 32]);
        let id = seal.seal(&claims()).unwrap();
        assert_eq!(SessionSeal::new([8; 32]).open(&id, 1_000_010), None);
        let mut edited = id.clone().into_bytes();
        let last = edited.len() - 3;
        edited[last] = if edited[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            seal.open(&String::from_utf8(edited).unwrap(), 1_000_010),
            None
        );
        assert_eq!(seal.open(&id, 1_000_000 + SEALED_MAX_AGE_SECS + 1), None);
        assert_eq!(seal.open(&id, 1_000_000 - 301), None);
        assert_eq!(seal.open("sbs1.", 0), None);
        assert_eq!(seal.open("0123456789abcdef0123456789abcdef", 0), None);
    }

    #[test]
    fn a_huge_client_info_is_cut_to_name_and_version_and_huge_capabilities_are_not_sealed() {
        let seal = SessionSeal::new([1; 32]);
        let mut big = claims();
        big.client_info = json!({"name": "c", "version": "1", "description": "x".repeat(10_000)});
        let id = seal.seal(&big).unwrap();
        assert!(id.len() <= MAX_SEALED_LEN);
        let opened = seal.open(&id, 1_000_000).unwrap();
        assert_eq!(opened.client_info, json!({"name": "c", "version": "1"}));
        assert_eq!(opened.capabilities, big.capabilities);
        let mut huge = claims();
        huge.capabilities = json!({"experimental": {"x": "y".repeat(10_000)}});
        assert_eq!(seal.seal(&huge), None);
    }
}
