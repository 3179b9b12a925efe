//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, "Signature
//! scheme"), both ways: the dispatcher signs every delivery with [`signature`], and
//! receivers (`switchyard receive`, the benchmark's receiver, the tests) check one with
//! [`Key::verify`]. The signed content is `<webhook-id>.<webhook-timestamp>.<body>`, the
//! key is the base64 part of the `whsec_…` secret, a signature is
//! `v1,<base64 HMAC-SHA256>`, and `webhook-signature` lists one or more of them
//! separated by spaces (several during a secret's rotation).
//!
//! The official libraries check the timestamp against a tolerance as well; so does
//! [`Key::verify_at`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a `webhook-timestamp` may be from now, either way, in [`Key::verify_at`]
/// (the reference libraries' five minutes).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not `whsec_` followed by base64: copy it again from the endpoint")]
    BadSecret,
    #[error("webhook-timestamp {0:?} is not Unix seconds")]
    BadTimestamp(String),
    #[error("webhook-timestamp is {0} s from now, more than the {TOLERANCE_SECS} s allowed: check the clocks, or it is a replay")]
    Stale(i64),
    #[error("no signature in webhook-signature matches: the secret differs, or the body or headers were changed")]
    NoMatch,
}

/// A new endpoint secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", B64.encode(bytes))
}

/// The `webhook-signature` value for one or more secrets (several during a rotation).
/// A secret that is not valid base64 signs nothing.
pub fn signature(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut out = String::new();
    for key in secrets.iter().filter_map(|s| Key::from_secret(s).ok()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("v1,");
        out.push_str(&B64.encode(key.mac(id, &timestamp.to_string(), body)));
    }
    out
}

/// A secret decoded once, for checking many deliveries.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// `whsec_<base64>`, or the base64 alone.
    pub fn from_secret(secret: &str) -> Result<Self, VerifyError> {
        B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret))
            .map(Key)
            .map_err(|_| VerifyError::BadSecret)
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Whether any `v1,` signature of `signatures` (the header's value) is this key's
    /// over `id.timestamp.body`; compared in constant time. The timestamp is not checked.
    pub fn verify(&self, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> Result<(), VerifyError> {
        let expected = self.mac(id, timestamp, body);
        let found = signatures.split(' ').any(|s| {
            s.strip_prefix("v1,")
                .and_then(|b| B64.decode(b).ok())
                .is_some_and(|got| bool::from(got.as_slice().ct_eq(&expected)))
        });
        if found {
            Ok(())
        } else {
            Err(VerifyError::NoMatch)
        }
    }

    /// As [`Self::verify`], and the timestamp within [`TOLERANCE_SECS`] of `now_unix`.
    pub fn verify_at(
        &self,
        id: &str,
        timestamp: &str,
        body: &[u8],
        signatures: &str,
        now_unix: i64,
    ) -> Result<(), VerifyError> {
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| VerifyError::BadTimestamp(timestamp.chars().take(20).collect()))?;
        let skew = now_unix.saturating_sub(ts);
        if skew.abs() > TOLERANCE_SECS {
            return Err(VerifyError::Stale(skew));
        }
        self.verify(id, timestamp, body, signatures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries' tests
    /// (standard-webhooks/libraries, `python/standardwebhooks/tests`).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_reference_example() {
        assert_eq!(signature(&[SECRET], ID, TS, BODY), SIGNATURE);
    }

    #[test]
    fn verifies_the_reference_example_among_other_signatures() {
        let key = Key::from_secret(SECRET).unwrap();
        assert_eq!(key.verify(ID, "1614265330", BODY, SIGNATURE), Ok(()));
        assert_eq!(
            key.verify(ID, "1614265330", BODY, &format!("v1,AAAA {SIGNATURE}")),
            Ok(())
        );
        assert_eq!(
            key.verify("msg_other", "1614265330", BODY, SIGNATURE),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            key.verify(ID, "1614265330", b"{}", SIGNATURE),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            key.verify(ID, "1614265330", BODY, "v2,whatever"),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn checks_the_timestamp_when_asked() {
        let key = Key::from_secret(SECRET).unwrap();
        assert_eq!(key.verify_at(ID, "1614265330", BODY, SIGNATURE, TS + 299), Ok(()));
        assert_eq!(
            key.verify_at(ID, "1614265330", BODY, SIGNATURE, TS + 301),
            Err(VerifyError::Stale(301))
        );
        assert!(matches!(
            key.verify_at(ID, "soon", BODY, SIGNATURE, TS),
            Err(VerifyError::BadTimestamp(_))
        ));
    }

    #[test]
    fn rotation_signs_with_each_secret_and_skips_bad_ones() {
        let other = new_secret();
        let header = signature(&[SECRET, "not base64!", &other], ID, TS, BODY);
        assert_eq!(header.split(' ').count(), 2);
        for s in [SECRET, other.as_str()] {
            assert_eq!(
                Key::from_secret(s).unwrap().verify(ID, "1614265330", BODY, &header),
                Ok(())
            );
        }
        assert!(matches!(Key::from_secret("whsec_***"), Err(VerifyError::BadSecret)));
    }

    #[test]
    fn new_secrets_are_distinct_and_decodable() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(B64.decode(a.strip_prefix("whsec_").unwrap()).unwrap().len(), 24);
    }
}
