//! The key that protects secrets at rest, and the sealing of secret blobs with it.
//!
//! A sealed value is `v1:` followed by the hex of a fresh 24-byte nonce and the
//! XChaCha20-Poly1305 ciphertext (which carries its 16-byte tag). The tag makes a wrong key or
//! an edited blob fail loudly with [`StoreError::Crypto`] instead of yielding garbage.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::StoreError;

/// Name of the key file inside the data directory.
const KEY_FILE: &str = "secret.key";
/// Prefix of every sealed value; bump it when the format changes.
pub(crate) const VERSION_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// A 32-byte key for XChaCha20-Poly1305. Its `Debug` output never shows the bytes.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(bytes)
    }

    /// Parses 64 hex characters (surrounding whitespace is ignored).
    pub fn from_hex(text: &str) -> Result<Self, StoreError> {
        let bytes = decode_hex(text.trim())
            .ok_or_else(|| StoreError::Crypto("the secret key must be 64 hex characters".into()))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Crypto("the secret key must be 64 hex characters".into()))?;
        Ok(SecretKey(array))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Crypto(format!("no randomness: {e}")))?;
        Ok(SecretKey(bytes))
    }

    /// A key for another purpose, derived from this one and `label` (SHA-256 over a domain
    /// tag, the label and the key), so one shared secret key serves every replica's uses
    /// without one use's key revealing another's.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"switchboard key derivation v1\0");
        h.update(label.as_bytes());
        h.update([0]);
        h.update(self.0);
        h.finalize().into()
    }

    fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Encrypts `plaintext` under a fresh random nonce into the `v1:<hex>` text form.
    pub(crate) fn seal(&self, plaintext: &[u8]) -> Result<String, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| StoreError::Crypto(format!("no randomness: {e}")))?;
        let ciphertext = self
            .cipher()
            .encrypt(&XNonce::from(nonce), plaintext)
            .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{VERSION_PREFIX}{}", encode_hex(&blob)))
    }

    /// Reverses [`SecretKey::seal`]; any wrong key, edit or malformed text is a `Crypto` error.
    pub(crate) fn open(&self, sealed: &str) -> Result<Vec<u8>, StoreError> {
        let hex = sealed
            .strip_prefix(VERSION_PREFIX)
            .ok_or_else(|| StoreError::Crypto("unknown secret format".into()))?;
        let blob = decode_hex(hex).ok_or_else(|| StoreError::Crypto("malformed secret".into()))?;
        if blob.len() < NONCE_LEN {
            return Err(StoreError::Crypto("truncated secret".into()));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
        self.cipher()
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| StoreError::Crypto("wrong secret key or corrupted data".into()))
    }
}

/// The key to use: `explicit` (hex, from `--secret-key` / `SWITCHBOARD_SECRET_KEY`) when given,
/// else `<data_dir>/secret.key`, which is created (mode 0600, directory included) when missing.
pub fn load_or_create_key(
    data_dir: &Path,
    explicit: Option<&str>,
) -> Result<SecretKey, StoreError> {
    if let Some(hex) = explicit {
        return SecretKey::from_hex(hex);
    }
    let path = data_dir.join(KEY_FILE);
    match read_key_file(&path)? {
        Some(key) => Ok(key),
        None => create_key_file(data_dir, &path),
    }
}

fn read_key_file(path: &Path) -> Result<Option<SecretKey>, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::from_hex(&text)
            .map(Some)
            .map_err(|e| StoreError::Crypto(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("cannot read", path, e)),
    }
}

fn create_key_file(data_dir: &Path, path: &Path) -> Result<SecretKey, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| io_error("cannot create", data_dir, e))?;
    let key = SecretKey::generate()?;
    let mut file = match owner_only_options().open(path) {
        Ok(file) => file,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return read_key_file(path)?.ok_or_else(|| io_error("cannot read", path, e));
        }
        Err(e) => return Err(io_error("cannot create", path, e)),
    };
    writeln!(file, "{}", key.to_hex())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("cannot write", path, e))?;
    Ok(key)
}

fn owner_only_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
        .collect()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes([byte; 32])
    }

    #[test]
    fn derived_keys_differ_by_label_and_by_key() {
        let a = SecretKey::from_bytes([1; 32]);
        let b = SecretKey::from_bytes([2; 32]);
        assert_eq!(a.derive("x"), a.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        assert_ne!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), [1; 32]);
    }

    #[test]
    fn round_trip_uses_a_fresh_nonce() {
        let k = key(7);
        let a = k.seal(b"token").unwrap();
        let b = k.seal(b"token").unwrap();
        assert!(a.starts_with("v1:"));
        assert_ne!(a, b, "each value gets its own nonce");
        assert_eq!(k.open(&a).unwrap(), b"token");
        assert_eq!(k.open(&k.seal(b"").unwrap()).unwrap(), b"");
    }

    #[test]
    fn wrong_key_is_a_crypto_error() {
        let sealed = key(1).seal(b"token").unwrap();
        assert!(matches!(key(2).open(&sealed), Err(StoreError::Crypto(_))));
    }

    #[test]
    fn tampering_is_a_crypto_error() {
        let k = key(3);
        let sealed = k.seal(b"token").unwrap();
        let last = sealed.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        let tampered = format!("{}{flipped}", &sealed[..sealed.len() - 1]);
        for bad in [
            tampered.as_str(),
            "v1:zz",
            "v1:00",
            "v2:00",
            "plain",
            &sealed[..sealed.len() - 2],
        ] {
            assert!(matches!(k.open(bad), Err(StoreError::Crypto(_))), "{bad}");
        }
    }

    #[test]
    fn hex_keys_parse_and_debug_hides_them() {
        let text = "ab".repeat(32);
        let k = SecretKey::from_hex(&format!(" {text}\n")).unwrap();
        assert_eq!(k.to_hex(), text);
        assert!(!format!("{k:?}").contains("ab"));
        for bad in [
            "",
            "abc",
            &"ab".repeat(31),
            &"zz".repeat(32),
            &"ab".repeat(33),
        ] {
            assert!(
                matches!(SecretKey::from_hex(bad), Err(StoreError::Crypto(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_mode() {
        let dir =
            std::env::temp_dir().join(format!("switchboard-key-{}", encode_hex(&key_bytes())));
        let nested = dir.join("data");
        let first = load_or_create_key(&nested, None).unwrap();
        let second = load_or_create_key(&nested, None).unwrap();
        assert_eq!(first.0, second.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(nested.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let explicit = load_or_create_key(&nested, Some(&"cd".repeat(32))).unwrap();
        assert_eq!(explicit.0, [0xcd; 32]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn key_bytes() -> [u8; 8] {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        bytes
    }
}
