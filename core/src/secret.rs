//! The one type secrets are held in: signing secrets, endpoint secrets, S3 and admin
//! keys, sealing keys. It wraps [`secrecy::SecretString`], so the bytes are zeroed when
//! dropped and `Debug` never shows them; the value is read only through
//! [`Secret::expose`], which makes every place a secret leaves memory easy to find.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;

/// A secret string.
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(SecretString::from(s.into()))
    }

    /// The value, for the one call that needs it (a MAC key, a request header).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Compared in constant time, so a comparison cannot leak how much of a guess matched.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose().as_bytes().ct_eq(other.expose().as_bytes()).into()
    }
}

impl Eq for Secret {}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// An inbound signing secret, valid until its optional expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningSecret {
    pub value: Secret,
    /// Unix seconds after which the secret no longer verifies anything.
    pub expires_at: Option<i64>,
}

impl SigningSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: Secret::new(value),
            expires_at: None,
        }
    }

    pub fn is_active(&self, now_unix: i64) -> bool {
        self.expires_at.is_none_or(|t| now_unix < t)
    }
}

/// The secrets of `list` still active at `now_unix`, as the verifier takes them.
pub fn active_secrets(list: &[SigningSecret], now_unix: i64) -> Vec<&str> {
    list.iter()
        .filter(|s| s.is_active(now_unix))
        .map(|s| s.value.expose())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("whsec_abc");
        assert_eq!(format!("{s:?}"), "\"<redacted>\"");
        assert_eq!(s.expose(), "whsec_abc");
        assert_eq!(s, Secret::new("whsec_abc"));
        assert_ne!(s, Secret::new("whsec_abd"));
    }

    #[test]
    fn expired_secrets_are_not_offered() {
        let list = vec![
            SigningSecret::new("old"),
            SigningSecret {
                value: Secret::new("older"),
                expires_at: Some(100),
            },
        ];
        assert_eq!(active_secrets(&list, 99), vec!["old", "older"]);
        assert_eq!(active_secrets(&list, 100), vec!["old"]);
    }
}
