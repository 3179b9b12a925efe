//! Asymmetric schemes: the provider signs with its private key, the account holds the
//! public key. Ed25519 as Discord uses it (hex signature over `timestamp ‖ body`) and
//! ECDSA P-256 with SHA-256 as SendGrid uses it (base64 DER signature over
//! `timestamp ‖ body`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::{check_timestamp, header_str, RawWebhook, VerifyError};
use crate::model::{AsymmetricSpec, Encoding};
use crate::template::Inputs;

#[derive(Debug, Clone, Copy)]
pub(super) enum Curve {
    Ed25519,
    P256,
}

pub(super) fn verify(
    curve: Curve,
    spec: &AsymmetricSpec,
    raw: &RawWebhook,
    keys: &[&str],
    now: i64,
) -> Result<(), VerifyError> {
    let sig_text =
        header_str(&raw.headers, &spec.header).ok_or_else(|| VerifyError::MissingHeader(spec.header.clone()))?;
    let sig = match spec.encoding {
        Encoding::Hex => hex::decode(sig_text.trim()),
        Encoding::Base64 => B64.decode(sig_text.trim()).map_err(|_| hex::FromHexError::OddLength),
    }
    .map_err(|_| VerifyError::Malformed)?;
    let timestamp = match &spec.timestamp {
        Some(ts) => Some(check_timestamp(ts, None, &raw.headers, now)?),
        None => None,
    };
    let headers = &raw.headers;
    let lookup = |h: &str| header_str(headers, h);
    let message = spec
        .message
        .build(&Inputs {
            body: &raw.body,
            timestamp,
            method: raw.method.as_str(),
            url: &raw.url,
            header: &lookup,
            json: None,
            form: None,
            secret: None,
        })
        .map_err(|_| VerifyError::Malformed)?;
    if keys.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let mut any_key = false;
    for key in keys {
        let verdict = match curve {
            Curve::Ed25519 => ed25519(key, &sig, &message),
            Curve::P256 => p256(key, &sig, &message),
        };
        match verdict {
            Some(true) => return Ok(()),
            Some(false) => any_key = true,
            None => {}
        }
    }
    Err(if any_key {
        VerifyError::Mismatch
    } else {
        VerifyError::BadKey
    })
}

/// `None` when the key is unusable.
fn ed25519(key_hex: &str, sig: &[u8], message: &[u8]) -> Option<bool> {
    use ed25519_dalek::{Signature, VerifyingKey};
    let key: [u8; 32] = hex::decode(key_hex.trim()).ok()?.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&key).ok()?;
    let Ok(sig) = Signature::from_slice(sig) else {
        return Some(false);
    };
    Some(key.verify_strict(message, &sig).is_ok())
}

fn p256(key_text: &str, sig: &[u8], message: &[u8]) -> Option<bool> {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::DecodePublicKey;
    let text = key_text.trim();
    let key = if text.starts_with("-----BEGIN") {
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        VerifyingKey::from_public_key_der(&B64.decode(body).ok()?).ok()?
    } else {
        VerifyingKey::from_public_key_der(&B64.decode(text).ok()?).ok()?
    };
    let Ok(sig) = Signature::from_der(sig) else {
        return Some(false);
    };
    Some(key.verify(message, &sig).is_ok())
}
