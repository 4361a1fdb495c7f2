//! The bootstrap admin credential: from `--admin-token`, or generated on first start and
//! printed once. Only its SHA-256 is kept, in the store, so every replica accepts it.

use sha2::{Digest, Sha256};
use switchboard_store::Store;

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
        getrandom::fill(&mut raw).expect("the OS random source works");
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
