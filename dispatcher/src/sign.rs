//! Signing deliveries per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>, "Signature scheme"): the signed content is
//! `<webhook-id>.<webhook-timestamp>.<body>`, the key is the base64 part of the
//! `whsec_…` secret, the signature is `v1,<base64 HMAC-SHA256>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A new endpoint secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", B64.encode(bytes))
}

/// The `webhook-signature` value for one or more secrets (several during a rotation).
pub fn signature(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut out = String::new();
    for secret in secrets {
        let Ok(key) = B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("v1,");
        out.push_str(&B64.encode(mac.finalize().into_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries' tests
    /// (standard-webhooks/libraries, `python/standardwebhooks/tests`).
    #[test]
    fn matches_the_reference_example() {
        let sig = signature(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_distinct_and_decodable() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(B64.decode(a.strip_prefix("whsec_").unwrap()).unwrap().len(), 24);
    }
}
