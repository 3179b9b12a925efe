//! HMAC schemes (SHA-1, SHA-256, SHA-512) over a template of signed bytes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};

use super::header;
use super::{check_timestamp, header_str, RawWebhook, VerifyError};
use crate::jsonpath::JsonPath;
use crate::model::{Encoding, HmacAlgorithm, HmacConstruction, HmacSpec, SecretFormat, TimestampSource, UrlVariant};
use crate::template::Inputs;

pub(super) fn verify(spec: &HmacSpec, raw: &RawWebhook, secrets: &[&str], now: i64) -> Result<(), VerifyError> {
    if let (Some(items), Some(field)) = (&spec.items, &spec.body_field) {
        return verify_items(spec, items, field, raw, secrets);
    }
    let needs_json = spec.body_field.is_some()
        || spec.message.uses_json()
        || matches!(
            spec.timestamp.as_ref().map(|t| &t.source),
            Some(TimestampSource::Json(_))
        );
    // A JSON body, or a form's parameters (Braintree's `bt_signature` and `bt_payload`).
    let doc: Option<serde_json::Value> = if needs_json {
        let content_type = header_str(&raw.headers, "content-type").unwrap_or("application/json");
        let form = crate::body::is_form(content_type);
        Some(if form {
            crate::body::to_json(&raw.body, content_type).ok_or(VerifyError::Malformed)?
        } else {
            serde_json::from_slice(&raw.body).map_err(|_| VerifyError::Malformed)?
        })
    } else {
        None
    };
    // A JSON body signed through its hash in the URL (Twilio): the hash must match, and
    // there are no form parameters to sign.
    let body_hashed = match &spec.body_hash_param {
        Some(param) => match query_param(&raw.url, param) {
            Some(expected) => {
                let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&raw.body));
                if !actual.eq_ignore_ascii_case(&expected) {
                    return Err(VerifyError::Mismatch);
                }
                true
            }
            None => false,
        },
        None => false,
    };
    let form: Option<Vec<(String, String)>> = spec.message.uses_form().then(|| {
        if body_hashed {
            Vec::new()
        } else {
            form_urlencoded::parse(&raw.body).into_owned().collect()
        }
    });

    // Where the signature is: a header (possibly structured) or a body field.
    let body_sig;
    let parsed = match (&spec.header, &spec.body_field, &doc) {
        (Some(h), _, _) => {
            let name = h.name();
            let value = header_str(&raw.headers, name).ok_or_else(|| VerifyError::MissingHeader(name.to_string()))?;
            header::parse(h, value)
        }
        (None, Some(path), Some(doc)) => {
            body_sig = path.get_string(doc).ok_or(VerifyError::Malformed)?;
            header::Parsed {
                candidates: vec![body_sig.as_str()],
                timestamp: None,
            }
        }
        _ => return Err(VerifyError::Malformed),
    };
    if parsed.candidates.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let json_ts;
    let timestamp = match &spec.timestamp {
        Some(ts) => {
            let from_sig = match (&ts.source, &doc) {
                (TimestampSource::Json(p), Some(d)) => {
                    json_ts = p.get_string(d);
                    json_ts.as_deref()
                }
                _ => parsed.timestamp,
            };
            Some(check_timestamp(ts, from_sig, &raw.headers, now)?)
        }
        None => None,
    };
    // Each candidate with the key id it is for (`None`: for any secret).
    let candidates: Vec<(Option<&str>, Vec<u8>)> = match &spec.signature_pairs {
        None => parsed
            .candidates
            .iter()
            .filter_map(|c| Some((None, decode(spec.encoding, c)?)))
            .collect(),
        Some(p) => parsed
            .candidates
            .iter()
            .flat_map(|c| c.split(p.pair_separator.as_str()))
            .filter_map(|pair| {
                let (key_id, sig) = pair.split_once(p.key_separator.as_str())?;
                Some((Some(key_id), decode(spec.encoding, sig)?))
            })
            .collect(),
    };
    if candidates.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let headers = &raw.headers;
    let lookup = |h: &str| header_str(headers, h);
    let mut urls = vec![raw.url.clone()];
    if spec.message.uses_url() {
        for v in &spec.url_variants {
            let u = variant(&raw.url, *v);
            if !urls.contains(&u) {
                urls.push(u);
            }
        }
    }
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    for url in &urls {
        let message = spec
            .message
            .build(&Inputs {
                body: &raw.body,
                timestamp,
                method: raw.method.as_str(),
                url,
                header: &lookup,
                json: doc.as_ref(),
                form: form.as_deref(),
                secret: None,
            })
            .map_err(|missing| match missing {
                "timestamp" => VerifyError::BadTimestamp,
                _ => VerifyError::Malformed,
            })?;
        if matches_any(spec, &message, &candidates, secrets) {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// A batch whose every item carries its own signature over its own fields (Adyen): each
/// item's template is built within the item, and each must match one of the secrets.
/// An empty batch, an item without a signature or one that does not decode refuses the
/// whole request, as does one item signed with no active secret.
fn verify_items(
    spec: &HmacSpec,
    items: &JsonPath,
    field: &JsonPath,
    raw: &RawWebhook,
    secrets: &[&str],
) -> Result<(), VerifyError> {
    let doc: serde_json::Value = serde_json::from_slice(&raw.body).map_err(|_| VerifyError::Malformed)?;
    let items = items
        .get(&doc)
        .and_then(serde_json::Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or(VerifyError::Malformed)?;
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let headers = &raw.headers;
    let lookup = |h: &str| header_str(headers, h);
    for item in items {
        let sig = field.get_string(item).ok_or(VerifyError::Malformed)?;
        let candidate = decode(spec.encoding, &sig).ok_or(VerifyError::Malformed)?;
        let message = spec
            .message
            .build(&Inputs {
                body: &raw.body,
                timestamp: None,
                method: raw.method.as_str(),
                url: &raw.url,
                header: &lookup,
                json: Some(item),
                form: None,
                secret: None,
            })
            .map_err(|_| VerifyError::Malformed)?;
        if !matches_any(spec, &message, &[(None, candidate)], secrets) {
            return Err(VerifyError::Mismatch);
        }
    }
    Ok(())
}

/// Whether `message` signed with any of `secrets` gives one of `candidates`; with
/// `signature_pairs`, only a candidate of the secret's own key id counts.
fn matches_any(spec: &HmacSpec, message: &[u8], candidates: &[(Option<&str>, Vec<u8>)], secrets: &[&str]) -> bool {
    for secret in secrets {
        let (secret, candidates): (&str, Vec<Vec<u8>>) = match &spec.signature_pairs {
            None => (secret, candidates.iter().map(|(_, c)| c.clone()).collect()),
            Some(p) => {
                let Some((key_id, secret)) = secret.split_once(p.key_separator.as_str()) else {
                    continue;
                };
                let mine = candidates
                    .iter()
                    .filter(|(k, _)| *k == Some(key_id))
                    .map(|(_, c)| c.clone())
                    .collect();
                (secret, mine)
            }
        };
        if candidates.is_empty() {
            continue;
        }
        let candidates = candidates.as_slice();
        let Some(key) = key_bytes(spec.secret_format, secret) else {
            continue;
        };
        let ok = match (spec.construction, spec.algorithm) {
            (HmacConstruction::Hmac, HmacAlgorithm::Sha1) => matches::<Hmac<sha1::Sha1>>(&key, message, candidates),
            (HmacConstruction::Hmac, HmacAlgorithm::Sha256) => matches::<Hmac<sha2::Sha256>>(&key, message, candidates),
            (HmacConstruction::Hmac, HmacAlgorithm::Sha512) => matches::<Hmac<sha2::Sha512>>(&key, message, candidates),
            (HmacConstruction::SecretPrefix, HmacAlgorithm::Sha1) => {
                digest_matches::<sha1::Sha1>(&key, message, candidates)
            }
            (HmacConstruction::SecretPrefix, HmacAlgorithm::Sha256) => {
                digest_matches::<sha2::Sha256>(&key, message, candidates)
            }
            (HmacConstruction::SecretPrefix, HmacAlgorithm::Sha512) => {
                digest_matches::<sha2::Sha512>(&key, message, candidates)
            }
        };
        if ok {
            return true;
        }
    }
    false
}

/// The value of query parameter `name` in `url`, decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `url` in the form `v` names.
fn variant(url: &str, v: UrlVariant) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    // The host part: after any `user:pass@`, and an IPv6 literal keeps its colons.
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let (host, port) = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => (&hostport[..i], Some(&hostport[i + 1..])),
        _ => (hostport, None),
    };
    match v {
        UrlVariant::WithoutPort => format!("{scheme}://{userinfo}{host}{tail}"),
        UrlVariant::WithDefaultPort => match port {
            Some(_) => url.to_string(),
            None => {
                let default = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
                format!("{scheme}://{userinfo}{host}:{default}{tail}")
            }
        },
        UrlVariant::DecodeReserved => decode_reserved(url),
    }
}

/// HubSpot v3 (developers.hubspot.com/docs/api/webhooks/validating-requests): these
/// percent-encoded characters are decoded in the URI before signing; nothing else is.
fn decode_reserved(url: &str) -> String {
    const TABLE: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).map(str::to_ascii_uppercase);
        match code.and_then(|c| TABLE.iter().find(|(h, _)| *h == c)) {
            Some((_, ch)) => {
                out.push(*ch);
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether any candidate equals the MAC; `verify_slice` compares in constant time.
fn matches<M: Mac + hmac::digest::KeyInit + Clone>(key: &[u8], message: &[u8], candidates: &[Vec<u8>]) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    candidates.iter().any(|c| mac.clone().verify_slice(c).is_ok())
}

/// Whether any candidate equals `digest(key ‖ message)`, compared in constant time.
fn digest_matches<D: sha2::Digest>(key: &[u8], message: &[u8], candidates: &[Vec<u8>]) -> bool {
    use subtle::ConstantTimeEq;
    let mut d = D::new();
    d.update(key);
    d.update(message);
    let expected = d.finalize();
    candidates
        .iter()
        .any(|c| bool::from(c.as_slice().ct_eq(expected.as_slice())))
}

fn decode(encoding: Encoding, text: &str) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex::decode(text).ok(),
        Encoding::Base64 => B64.decode(text).ok(),
    }
}

/// The HMAC key for a stored secret.
pub(crate) fn key_bytes(format: SecretFormat, secret: &str) -> Option<Vec<u8>> {
    match format {
        SecretFormat::Raw => Some(secret.as_bytes().to_vec()),
        SecretFormat::WhsecBase64 => B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok(),
        SecretFormat::Hex => hex::decode(secret.trim()).ok(),
        SecretFormat::Sha1 => Some(<sha1::Sha1 as sha2::Digest>::digest(secret.as_bytes()).to_vec()),
    }
}
