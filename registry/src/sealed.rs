//! Secrets at rest: every secret Switchyard stores in Redis is sealed with AES-256-GCM.
//!
//! A sealed secret reads `<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`. The key id lets
//! an operator rotate the key: list the new key beside the old, make it active, and old
//! secrets still open until they are re-sealed. The associated data binds a sealed value
//! to its owner (`account:<id>`), so a sealed secret copied to another record won't open.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use switchyard_core::config::SecretsConfig;
use switchyard_core::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("secrets.active_key is empty: set it to one of the ids in secrets.keys (generate a key with `head -c 32 /dev/urandom | base64`)")]
    NoActiveKey,
    #[error("secrets.active_key = {0:?} is not listed in secrets.keys")]
    UnknownActiveKey(String),
    #[error("secrets.keys.{0} is not valid: it must be 32 bytes in base64")]
    BadKey(String),
    #[error("a stored secret is sealed with key {0:?}, which is not in secrets.keys: add that key back to the configuration")]
    KeyNotConfigured(String),
    #[error("a stored secret could not be opened: it is corrupt or was sealed for another record")]
    Corrupt,
}

/// Seals and opens secrets with the configured keys.
#[derive(Clone)]
pub struct Sealer {
    active: String,
    keys: BTreeMap<String, Aes256Gcm>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn from_config(c: &SecretsConfig) -> Result<Self, SealError> {
        if c.active_key.is_empty() {
            return Err(SealError::NoActiveKey);
        }
        let mut keys = BTreeMap::new();
        for (id, b64) in &c.keys {
            let raw = B64
                .decode(b64.expose().trim())
                .map_err(|_| SealError::BadKey(id.clone()))?;
            let cipher = Aes256Gcm::new_from_slice(&raw).map_err(|_| SealError::BadKey(id.clone()))?;
            keys.insert(id.clone(), cipher);
        }
        if !keys.contains_key(&c.active_key) {
            return Err(SealError::UnknownActiveKey(c.active_key.clone()));
        }
        Ok(Self {
            active: c.active_key.clone(),
            keys,
        })
    }

    /// Seal `secret` for the record named by `aad`.
    pub fn seal(&self, secret: &Secret, aad: &str) -> String {
        let cipher = &self.keys[&self.active];
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        let ct = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        format!("{}:{}", self.active, B64.encode(out))
    }

    /// Open a value made by [`Sealer::seal`] with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Secret, SealError> {
        let (id, b64) = sealed.split_once(':').ok_or(SealError::Corrupt)?;
        let cipher = self
            .keys
            .get(id)
            .ok_or_else(|| SealError::KeyNotConfigured(id.to_string()))?;
        let raw = B64.decode(b64).map_err(|_| SealError::Corrupt)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::Corrupt);
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(pt).map(Secret::new).map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(active: &str, keys: &[(&str, [u8; 32])]) -> Sealer {
        Sealer::from_config(&SecretsConfig {
            active_key: active.into(),
            keys: keys
                .iter()
                .map(|(id, k)| (id.to_string(), Secret::new(B64.encode(k))))
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn seals_and_opens() {
        let s = sealer("k1", &[("k1", [7; 32])]);
        let sealed = s.seal(&Secret::new("whsec_abc"), "account:a");
        assert!(sealed.starts_with("k1:"));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(s.open(&sealed, "account:a").unwrap().expose(), "whsec_abc");
        assert!(matches!(s.open(&sealed, "account:b"), Err(SealError::Corrupt)));
    }

    #[test]
    fn old_keys_still_open_after_rotation() {
        let old = sealer("k1", &[("k1", [7; 32])]);
        let sealed = old.seal(&Secret::new("s"), "x");
        let rotated = sealer("k2", &[("k1", [7; 32]), ("k2", [9; 32])]);
        assert_eq!(rotated.open(&sealed, "x").unwrap().expose(), "s");
        assert!(rotated.seal(&Secret::new("s"), "x").starts_with("k2:"));
        let dropped = sealer("k2", &[("k2", [9; 32])]);
        assert!(matches!(
            dropped.open(&sealed, "x"),
            Err(SealError::KeyNotConfigured(_))
        ));
    }

    #[test]
    fn refuses_bad_configuration() {
        let e = Sealer::from_config(&SecretsConfig {
            active_key: String::new(),
            keys: Default::default(),
        })
        .unwrap_err();
        assert!(matches!(e, SealError::NoActiveKey));
    }
}
