//! Signing a body the way a provider would, from the same connector file the verifier
//! reads. For test tools, the benchmark and `switchyard sign`; never used on the
//! receiving path.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};

use super::hmac::key_bytes;
use crate::model::{
    Encoding, HmacAlgorithm, HmacConstruction, SignatureHeader, SignatureSpec, TimeUnit, TimestampSource,
};
use crate::template::Inputs;

/// The headers a provider would send for `body` signed with `secret` at Unix time
/// `now`; `url` and `method` matter only to schemes that sign them.
pub fn sign(
    spec: &SignatureSpec,
    secret: &str,
    body: &[u8],
    now: i64,
    method: &str,
    url: &str,
    request_headers: &http::HeaderMap,
) -> Vec<(String, String)> {
    match spec {
        SignatureSpec::Token(t) => vec![(t.header.clone(), format!("{}{secret}", t.prefix))],
        SignatureSpec::Basic(_) => vec![("Authorization".into(), format!("Basic {}", B64.encode(secret)))],
        // The sender's body carries the secret; asymmetric schemes need the provider's
        // private key, which a receiver never has.
        SignatureSpec::BodyField(_)
        | SignatureSpec::Ed25519(_)
        | SignatureSpec::EcdsaP256(_)
        | SignatureSpec::Jwt(_)
        | SignatureSpec::X509(_) => Vec::new(),
        SignatureSpec::Hmac(h) => {
            let ts = h.timestamp.as_ref().map(|t| match t.unit {
                TimeUnit::Seconds => now.to_string(),
                TimeUnit::Milliseconds => (now * 1000).to_string(),
                TimeUnit::Rfc3339 => time::OffsetDateTime::from_unix_timestamp(now)
                    .ok()
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                    .unwrap_or_default(),
            });
            let lookup = |h: &str| super::header_str(request_headers, h);
            let json: Option<serde_json::Value> = h
                .message
                .uses_json()
                .then(|| {
                    let content_type = super::header_str(request_headers, "content-type").unwrap_or("application/json");
                    crate::body::to_json(body, content_type)
                })
                .flatten();
            let form: Option<Vec<(String, String)>> = h
                .message
                .uses_form()
                .then(|| form_urlencoded::parse(body).into_owned().collect());
            let message = h
                .message
                .build(&Inputs {
                    body,
                    timestamp: ts.as_deref(),
                    method,
                    url,
                    header: &lookup,
                    json: json.as_ref(),
                    form: form.as_deref(),
                    secret: None,
                })
                .unwrap_or_default();
            // With signature pairs the secret is `<key id><separator><secret>`.
            let (key_id, secret) = match &h.signature_pairs {
                Some(p) => match secret.split_once(p.key_separator.as_str()) {
                    Some((id, s)) => (Some((id, p.key_separator.as_str())), s),
                    None => (None, secret),
                },
                None => (None, secret),
            };
            let key = key_bytes(h.secret_format, secret).unwrap_or_default();
            let raw = match (h.construction, h.algorithm) {
                (HmacConstruction::Hmac, HmacAlgorithm::Sha1) => mac::<Hmac<sha1::Sha1>>(&key, &message),
                (HmacConstruction::Hmac, HmacAlgorithm::Sha256) => mac::<Hmac<sha2::Sha256>>(&key, &message),
                (HmacConstruction::Hmac, HmacAlgorithm::Sha512) => mac::<Hmac<sha2::Sha512>>(&key, &message),
                (HmacConstruction::SecretPrefix, HmacAlgorithm::Sha1) => digest::<sha1::Sha1>(&key, &message),
                (HmacConstruction::SecretPrefix, HmacAlgorithm::Sha256) => digest::<sha2::Sha256>(&key, &message),
                (HmacConstruction::SecretPrefix, HmacAlgorithm::Sha512) => digest::<sha2::Sha512>(&key, &message),
            };
            let sig = match h.encoding {
                Encoding::Hex => hex::encode(raw),
                Encoding::Base64 => B64.encode(raw),
            };
            let sig = match key_id {
                Some((id, separator)) => format!("{id}{separator}{sig}"),
                None => sig,
            };
            let mut out = Vec::new();
            let Some(header) = &h.header else {
                // The signature travels in the body (Mailgun): the sender puts it there.
                return out;
            };
            let value = match header {
                SignatureHeader::Plain { prefix, .. } => format!("{prefix}{sig}"),
                SignatureHeader::List {
                    prefix,
                    separator,
                    timestamp_first,
                    ..
                } => match (timestamp_first, &ts) {
                    (true, Some(ts)) => format!("{ts}{separator}{prefix}{sig}"),
                    _ => format!("{prefix}{sig}"),
                },
                SignatureHeader::KeyValue {
                    pair_separator,
                    kv_separator,
                    signature_key,
                    timestamp_key,
                    ..
                } => match (timestamp_key, &ts) {
                    (Some(k), Some(ts)) => {
                        format!("{k}{kv_separator}{ts}{pair_separator}{signature_key}{kv_separator}{sig}")
                    }
                    _ => format!("{signature_key}{kv_separator}{sig}"),
                },
            };
            out.push((header.name().to_string(), value));
            if let (Some(t), Some(ts)) = (&h.timestamp, ts) {
                if let TimestampSource::Header(name) = &t.source {
                    out.push((name.clone(), ts));
                }
            }
            out
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

fn digest<D: sha2::Digest>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut d = D::new();
    d.update(key);
    d.update(message);
    d.finalize().to_vec()
}
