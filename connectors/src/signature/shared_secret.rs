//! The weaker schemes, for providers that sign nothing: a static token header, HTTP
//! Basic credentials, or a shared secret echoed in a body field. Each is compared in
//! constant time with every active secret of the account. None binds the body to the
//! sender, and a captured request can be replayed; the connector reference says so.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{header_str, RawWebhook, VerifyError};
use crate::model::{BodyFieldSpec, TokenSpec};

/// Whether `given` equals any secret, in constant time per comparison.
fn equals_any(given: &[u8], secrets: &[&str]) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let mut ok = subtle::Choice::from(0u8);
    for s in secrets {
        ok |= given.ct_eq(s.as_bytes());
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

pub(super) fn token(spec: &TokenSpec, raw: &RawWebhook, secrets: &[&str]) -> Result<(), VerifyError> {
    let value =
        header_str(&raw.headers, &spec.header).ok_or_else(|| VerifyError::MissingHeader(spec.header.clone()))?;
    let token = value.strip_prefix(spec.prefix.as_str()).ok_or(VerifyError::Malformed)?;
    equals_any(token.as_bytes(), secrets)
}

pub(super) fn basic(raw: &RawWebhook, secrets: &[&str]) -> Result<(), VerifyError> {
    let value =
        header_str(&raw.headers, "authorization").ok_or_else(|| VerifyError::MissingHeader("Authorization".into()))?;
    let encoded = value.strip_prefix("Basic ").ok_or(VerifyError::Malformed)?;
    let creds = B64.decode(encoded.trim()).map_err(|_| VerifyError::Malformed)?;
    equals_any(&creds, secrets)
}

pub(super) fn body_field(spec: &BodyFieldSpec, raw: &RawWebhook, secrets: &[&str]) -> Result<(), VerifyError> {
    let content_type = super::header_str(&raw.headers, "content-type").unwrap_or("application/json");
    let doc = crate::body::to_json(&raw.body, content_type).ok_or(VerifyError::Malformed)?;
    let items: Vec<&serde_json::Value> = match &spec.items {
        Some(p) => p
            .get(&doc)
            .and_then(|v| v.as_array())
            .ok_or(VerifyError::Malformed)?
            .iter()
            .collect(),
        None => vec![&doc],
    };
    if items.is_empty() {
        return Err(VerifyError::Malformed);
    }
    // Every item must carry a matching secret: one forged item in a batch fails it all.
    for item in items {
        let given = spec.field.get_string(item).ok_or(VerifyError::Malformed)?;
        equals_any(given.as_bytes(), secrets)?;
    }
    Ok(())
}
