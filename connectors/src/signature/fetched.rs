//! Schemes whose keys the provider publishes and the ingress fetches: a JWT checked
//! against a JSON Web Key Set (`jwt`) or against one key asked for by its id with the
//! account's credentials (`jwt` with `key_request`, Plaid), and a signature checked with
//! the public key of an X.509 certificate the request names (`x509`, AWS SNS).
//!
//! This module stays pure, like the rest of the verifier. Verifying is two steps:
//! [`key_location`] says which keys a request needs — and refuses a certificate URL
//! on a host the connector file does not allow, before anything is fetched — and
//! [`verify_fetched`] checks the request with the keys the caller fetched, parsed by
//! [`parse_keys`]. Fetching, caching and refreshing are the ingress's
//! (`ingress/src/key_fetch.rs`).
//!
//! The cryptography is the crates': `jsonwebtoken` decodes and checks tokens,
//! `x509-cert` reads certificates, `ring` checks RSA signatures. Times (`exp`, `nbf`,
//! `iat`, a certificate's validity) are checked here against the caller's `now`, so
//! tests need no clock.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use subtle::ConstantTimeEq;

use super::{check_timestamp, header_str, RawWebhook, VerifyError};
use crate::model::{
    Encoding, FieldRef, JwtAlgorithm, JwtAudience, JwtSpec, SignatureSpec, X509Algorithm, X509AlgorithmSpec,
    X509Message, X509Spec,
};
use crate::template::Inputs;

/// Clock skew allowed on a token's `exp`, `nbf` and `iat`.
const LEEWAY_SECS: i64 = 60;

/// What the keys at a URL are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A JSON Web Key Set (`{"keys": [...]}`).
    Jwks,
    /// One X.509 certificate, PEM.
    Certificate,
    /// One JWK inside the answer to a key request ([`KeyRequest`]).
    Jwk,
}

/// Where the keys a request needs are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyLocation {
    pub url: String,
    pub kind: KeyKind,
    /// A `POST` for one key by its id, with the account's credentials; `None`: a `GET`.
    pub request: Option<KeyRequest>,
}

/// The `POST` that asks for one key: a JSON body naming it, credential headers, and
/// where the key is in the answer. Its `Debug` never shows the credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyRequest {
    pub kid: String,
    /// `{"<kid_field>": "<kid>"}`.
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub key: crate::jsonpath::JsonPath,
}

impl std::fmt::Debug for KeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("KeyRequest")
            .field("kid", &self.kid)
            .field("credential_headers", &names)
            .finish_non_exhaustive()
    }
}

/// The longest key id asked for, and its characters: a forged token cannot make the
/// ingress send anything else to the key host.
const MAX_KID_LEN: usize = 128;

/// Keys as fetched and parsed, ready to verify with.
#[derive(Debug)]
pub enum FetchedKeys {
    Jwks(JwkSet),
    Certificate(Certificate),
}

/// The parts of a certificate a signature check needs.
#[derive(Debug)]
pub struct Certificate {
    /// The RSA public key (PKCS#1 `RSAPublicKey`, DER).
    rsa_public_key: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

/// Why fetched bytes are not usable keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("not a JSON Web Key Set: {0}")]
    Jwks(String),
    #[error("not a PEM X.509 certificate: {0}")]
    Certificate(String),
    #[error("the certificate's key is not RSA; only RSA certificates are supported")]
    NotRsa,
    #[error("the answer holds no JWK at {0:?}: {1}")]
    Jwk(String, String),
}

/// The keys `raw` needs under `spec`, or `None` for a scheme that fetches none. A
/// certificate URL that is not HTTPS on an allowed host is refused here. A key request
/// is made with the first of `secrets` (the account's newest credentials).
pub fn key_location(
    spec: &SignatureSpec,
    raw: &RawWebhook,
    secrets: &[&str],
) -> Result<Option<KeyLocation>, VerifyError> {
    match spec {
        SignatureSpec::Jwt(j) => match &j.key_request {
            Some(k) => key_request(j, k, raw, secrets).map(Some),
            None if j.jwks_url.is_empty() => Ok(None),
            None => Ok(Some(KeyLocation {
                url: j.jwks_url.clone(),
                kind: KeyKind::Jwks,
                request: None,
            })),
        },
        SignatureSpec::X509(x) => {
            let doc = json_body(raw, &x.cert_url);
            let url = field(raw, doc.as_ref(), &x.cert_url).ok_or_else(|| missing(&x.cert_url))?;
            if !allowed_https_host(&url, &x.cert_hosts)
                || !x.cert_path.as_deref().is_none_or(|p| url_path_matches(&url, p))
            {
                return Err(VerifyError::KeyHostNotAllowed);
            }
            Ok(Some(KeyLocation {
                url,
                kind: KeyKind::Certificate,
                request: None,
            }))
        }
        _ => Ok(None),
    }
}

/// The key request for the token's `kid`. The token must already name an accepted
/// algorithm and a plain key id, so a forged one sends nothing odd to the key host.
fn key_request(
    spec: &JwtSpec,
    k: &crate::model::KeyRequestSpec,
    raw: &RawWebhook,
    secrets: &[&str],
) -> Result<KeyLocation, VerifyError> {
    let (_, header) = token_of(spec, raw)?;
    let kid = header.kid.ok_or(VerifyError::Malformed)?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if kid.is_empty() || kid.len() > MAX_KID_LEN || !kid.chars().all(plain) {
        return Err(VerifyError::Malformed);
    }
    let secret = secrets.first().ok_or(VerifyError::NoSecret)?;
    let values: Vec<&str> = match k.credential_headers.len() {
        1 => vec![secret],
        _ => {
            let (a, b) = secret.split_once(':').ok_or(VerifyError::NoSecret)?;
            vec![a, b]
        }
    };
    let headers = k
        .credential_headers
        .iter()
        .zip(values)
        .map(|(n, v)| (n.clone(), v.to_string()))
        .collect();
    let mut body = serde_json::Map::new();
    body.insert(k.kid_field.clone(), kid.clone().into());
    Ok(KeyLocation {
        url: k.url.clone(),
        kind: KeyKind::Jwk,
        request: Some(KeyRequest {
            kid,
            body: serde_json::Value::Object(body).to_string(),
            headers,
            key: k.key.clone(),
        }),
    })
}

/// Whether `url` is `https://` on one of `hosts` (see [`host_matches`]), with no
/// credentials in it.
pub fn allowed_https_host(url: &str, hosts: &[String]) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    if parsed.scheme() != "https" || !parsed.username().is_empty() || parsed.password().is_some() {
        return false;
    }
    let Some(host) = parsed.host_str() else {
        return false;
    };
    hosts.iter().any(|pattern| host_matches(pattern, host))
}

/// Whether `url`'s path matches `pattern` ([`path_matches`]) and it has no query.
pub fn url_path_matches(url: &str, pattern: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.query().is_none() && path_matches(pattern, u.path()))
}

/// Whether `path` is `pattern`: literal characters, each `*` standing for one or more
/// ASCII letters or digits (so never `/`, `.`, `%` or `-`: a `*` cannot reach into
/// another segment or an encoded character). Case-sensitive, as paths are.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    fn at(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => {
                // One or more alphanumerics, then the rest of the pattern.
                let run = s.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                (1..=run).rev().any(|n| at(rest, &s[n..]))
            }
            Some((c, rest)) => s.first() == Some(c) && at(rest, &s[1..]),
        }
    }
    at(pattern.as_bytes(), path.as_bytes())
}

/// `pattern` is a host name, or has one `*` label standing for exactly one label
/// (`sns.*.amazonaws.com` matches `sns.eu-west-1.amazonaws.com`, not
/// `sns.evil.com.amazonaws.com`, nor `sns.x.amazonaws.com.evil.com`). Case-insensitive.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let (pattern_labels, host_labels): (Vec<&str>, Vec<&str>) =
        (pattern.split('.').collect(), host.split('.').collect());
    pattern_labels.len() == host_labels.len()
        && pattern_labels
            .iter()
            .zip(&host_labels)
            .all(|(p, h)| !h.is_empty() && (*p == "*" || p.eq_ignore_ascii_case(h)))
}

/// Parse what was fetched from `location`. A key request's one JWK becomes a set of
/// one, which must carry the `kid` asked for.
pub fn parse_keys(location: &KeyLocation, bytes: &[u8]) -> Result<FetchedKeys, KeyParseError> {
    match (location.kind, &location.request) {
        (KeyKind::Jwks, _) => serde_json::from_slice::<JwkSet>(bytes)
            .map(FetchedKeys::Jwks)
            .map_err(|e| KeyParseError::Jwks(e.to_string())),
        (KeyKind::Certificate, _) => parse_certificate(bytes).map(FetchedKeys::Certificate),
        (KeyKind::Jwk, Some(request)) => {
            let bad = |why: String| KeyParseError::Jwk(request.key.to_string(), why);
            let answer: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
            let value = request.key.get(&answer).ok_or_else(|| bad("absent".into()))?;
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(value.clone()).map_err(|e| bad(e.to_string()))?;
            if jwk.common.key_id.as_deref() != Some(request.kid.as_str()) {
                return Err(bad(format!("its kid is not {:?}", request.kid)));
            }
            Ok(FetchedKeys::Jwks(JwkSet { keys: vec![jwk] }))
        }
        (KeyKind::Jwk, None) => Err(KeyParseError::Jwk("$".into(), "no key request".into())),
    }
}

fn parse_certificate(pem: &[u8]) -> Result<Certificate, KeyParseError> {
    use x509_cert::der::{Decode, DecodePem};
    let bad = |e: &dyn std::fmt::Display| KeyParseError::Certificate(e.to_string());
    let cert = x509_cert::Certificate::from_pem(pem)
        .or_else(|_| x509_cert::Certificate::from_der(pem))
        .map_err(|e| bad(&e))?;
    let tbs = &cert.tbs_certificate;
    // rsaEncryption, RFC 8017 appendix A.1.
    const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    if tbs.subject_public_key_info.algorithm.oid.to_string() != RSA_ENCRYPTION {
        return Err(KeyParseError::NotRsa);
    }
    let key = tbs.subject_public_key_info.subject_public_key.raw_bytes().to_vec();
    let secs = |t: x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
    Ok(Certificate {
        rsa_public_key: key,
        not_before: secs(tbs.validity.not_before),
        not_after: secs(tbs.validity.not_after),
    })
}

/// Whether `raw` carries a token naming a key `keys` lacks: the provider has rotated
/// its keys since they were fetched, and the set is worth fetching again.
pub fn names_unknown_key(spec: &SignatureSpec, raw: &RawWebhook, keys: &FetchedKeys) -> bool {
    let (SignatureSpec::Jwt(j), FetchedKeys::Jwks(set)) = (spec, keys) else {
        return false;
    };
    let Some(value) = header_str(&raw.headers, &j.header) else {
        return false;
    };
    let token = value.strip_prefix(j.prefix.as_str()).unwrap_or(value);
    match jsonwebtoken::decode_header(token.trim()).ok().and_then(|h| h.kid) {
        Some(kid) => set.find(&kid).is_none(),
        None => false,
    }
}

/// Check `raw` under a fetching `spec` with `keys` at Unix time `now`. For `jwt` with
/// `audience = "account"`, `account_values` are the accepted audiences.
pub fn verify_fetched(
    spec: &SignatureSpec,
    raw: &RawWebhook,
    keys: &FetchedKeys,
    account_values: &[&str],
    now: i64,
) -> Result<(), VerifyError> {
    match (spec, keys) {
        (SignatureSpec::Jwt(j), FetchedKeys::Jwks(set)) => jwt(j, raw, set, account_values, now),
        (SignatureSpec::X509(x), FetchedKeys::Certificate(c)) => x509(x, raw, c, account_values, now),
        _ => Err(VerifyError::BadKey),
    }
}

/// The token of `raw` and its header, its algorithm one the connector accepts.
fn token_of<'a>(spec: &JwtSpec, raw: &'a RawWebhook) -> Result<(&'a str, jsonwebtoken::Header), VerifyError> {
    let value =
        header_str(&raw.headers, &spec.header).ok_or_else(|| VerifyError::MissingHeader(spec.header.clone()))?;
    let token = value.strip_prefix(spec.prefix.as_str()).unwrap_or(value).trim();
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if !spec.algorithms.iter().any(|a| algorithm(*a) == header.alg) {
        return Err(VerifyError::Malformed);
    }
    Ok((token, header))
}

/// What the crate checks for us (signature, `aud`, `iss`); times are checked against the
/// caller's `now` in [`check_claims`].
fn validation(
    spec: &JwtSpec,
    alg: jsonwebtoken::Algorithm,
    raw: &RawWebhook,
    account_values: &[&str],
) -> Result<jsonwebtoken::Validation, VerifyError> {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    let audiences: Vec<&str> = match spec.audience {
        JwtAudience::CalledUrl => vec![raw.url.as_str()],
        JwtAudience::Account => account_values.to_vec(),
        JwtAudience::None => Vec::new(),
    };
    if spec.audience == JwtAudience::None {
        validation.validate_aud = false;
    } else if audiences.is_empty() {
        return Err(VerifyError::NoSecret);
    } else {
        validation.set_audience(&audiences);
    }
    if !spec.issuers.is_empty() {
        validation.set_issuer(&spec.issuers);
    }
    Ok(validation)
}

fn decode(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    validation: &jsonwebtoken::Validation,
) -> Result<serde_json::Value, VerifyError> {
    jsonwebtoken::decode::<serde_json::Value>(token, key, validation)
        .map(|t| t.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::Mismatch,
            _ => VerifyError::ClaimRefused,
        })
}

fn jwt(spec: &JwtSpec, raw: &RawWebhook, set: &JwkSet, account_values: &[&str], now: i64) -> Result<(), VerifyError> {
    let (token, header) = token_of(spec, raw)?;
    let jwk = match &header.kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or(VerifyError::UnknownKey)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| VerifyError::BadKey)?;
    let claims = decode(token, &key, &validation(spec, header.alg, raw, account_values)?)?;
    check_claims(spec, &claims, raw, now)
}

/// A `jwt` scheme without a JWKS: an HMAC token keyed with one of the account's
/// `secrets` (any may match, so a rotation drops nothing).
pub(super) fn jwt_with_secrets(
    spec: &JwtSpec,
    raw: &RawWebhook,
    secrets: &[&str],
    now: i64,
) -> Result<(), VerifyError> {
    let (token, header) = token_of(spec, raw)?;
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let validation = validation(spec, header.alg, raw, &[])?;
    for secret in secrets {
        let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
        match decode(token, &key, &validation) {
            Ok(claims) => return check_claims(spec, &claims, raw, now),
            Err(VerifyError::Mismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(VerifyError::Mismatch)
}

fn check_claims(spec: &JwtSpec, claims: &serde_json::Value, raw: &RawWebhook, now: i64) -> Result<(), VerifyError> {
    let number = |name: &str| claims.get(name).and_then(serde_json::Value::as_i64);
    match number("exp") {
        Some(exp) if now > exp + LEEWAY_SECS => return Err(VerifyError::Expired),
        Some(_) => {}
        // A token without an expiry must at least say when it was made.
        None if spec.max_age_secs.is_none() => return Err(VerifyError::ClaimRefused),
        None => {}
    }
    if number("nbf").is_some_and(|nbf| now + LEEWAY_SECS < nbf) {
        return Err(VerifyError::ClaimRefused);
    }
    if let Some(max_age) = spec.max_age_secs {
        let iat = number("iat").ok_or(VerifyError::ClaimRefused)?;
        if now.abs_diff(iat) > max_age + LEEWAY_SECS as u64 {
            return Err(VerifyError::OutOfTolerance(max_age));
        }
    }
    if let Some(name) = &spec.body_sha256_claim {
        use sha2::Digest;
        let claimed = claims
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or(VerifyError::ClaimRefused)?;
        let actual = hex::encode(sha2::Sha256::digest(&raw.body));
        if !bool::from(actual.as_bytes().ct_eq(claimed.to_ascii_lowercase().as_bytes())) {
            return Err(VerifyError::Mismatch);
        }
    }
    Ok(())
}

fn algorithm(a: JwtAlgorithm) -> jsonwebtoken::Algorithm {
    use jsonwebtoken::Algorithm as A;
    match a {
        JwtAlgorithm::RS256 => A::RS256,
        JwtAlgorithm::RS384 => A::RS384,
        JwtAlgorithm::RS512 => A::RS512,
        JwtAlgorithm::ES256 => A::ES256,
        JwtAlgorithm::ES384 => A::ES384,
        JwtAlgorithm::HS256 => A::HS256,
        JwtAlgorithm::HS384 => A::HS384,
        JwtAlgorithm::HS512 => A::HS512,
    }
}

fn x509(
    spec: &X509Spec,
    raw: &RawWebhook,
    cert: &Certificate,
    account_values: &[&str],
    now: i64,
) -> Result<(), VerifyError> {
    let doc: Option<serde_json::Value> = serde_json::from_slice(&raw.body).ok();
    let sig_text = field(raw, doc.as_ref(), &spec.signature).ok_or_else(|| missing(&spec.signature))?;
    let sig = match spec.encoding {
        Encoding::Base64 => B64.decode(sig_text.trim()).map_err(|_| VerifyError::Malformed)?,
        Encoding::Hex => hex::decode(sig_text.trim()).map_err(|_| VerifyError::Malformed)?,
    };
    let algorithm = match &spec.algorithm {
        X509AlgorithmSpec::Fixed(a) => *a,
        X509AlgorithmSpec::ByField { field: f, values } => {
            let v = field(raw, doc.as_ref(), f).ok_or(VerifyError::Malformed)?;
            *values.get(v.trim()).ok_or(VerifyError::Malformed)?
        }
    };
    let timestamp_text;
    let timestamp = match &spec.timestamp {
        Some(ts) => {
            timestamp_text = match &ts.source {
                crate::model::TimestampSource::Json(p) => doc.as_ref().and_then(|d| p.get_string(d)),
                _ => None,
            };
            Some(check_timestamp(ts, timestamp_text.as_deref(), &raw.headers, now)?)
        }
        None => None,
    };
    // The signed bytes: one candidate, or one per account secret when the template
    // signs it (PayPal's webhook id).
    let messages: Vec<Vec<u8>> = match &spec.message {
        X509Message::JsonLines { json_lines } => {
            let obj = doc.as_ref().and_then(|d| d.as_object()).ok_or(VerifyError::Malformed)?;
            let mut out = Vec::new();
            for name in json_lines {
                let Some(value) = obj.get(name.as_str()) else { continue };
                out.extend_from_slice(name.as_bytes());
                out.push(b'\n');
                match value {
                    serde_json::Value::String(s) => out.extend_from_slice(s.as_bytes()),
                    other => out.extend_from_slice(other.to_string().as_bytes()),
                }
                out.push(b'\n');
            }
            vec![out]
        }
        X509Message::Template(t) => {
            let headers = &raw.headers;
            let lookup = |h: &str| header_str(headers, h);
            let secrets: Vec<Option<&str>> = if t.uses_secret() {
                if account_values.is_empty() {
                    return Err(VerifyError::NoSecret);
                }
                account_values.iter().map(|s| Some(*s)).collect()
            } else {
                vec![None]
            };
            let mut out = Vec::with_capacity(secrets.len());
            for secret in secrets {
                let built = t
                    .build(&Inputs {
                        body: &raw.body,
                        timestamp,
                        method: raw.method.as_str(),
                        url: &raw.url,
                        header: &lookup,
                        json: doc.as_ref(),
                        form: None,
                        secret,
                    })
                    .map_err(|_| VerifyError::Malformed)?;
                out.push(built.into_owned());
            }
            out
        }
    };
    if now < cert.not_before || now > cert.not_after {
        return Err(VerifyError::BadKey);
    }
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match algorithm {
        X509Algorithm::RsaSha1 => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        X509Algorithm::RsaSha256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
    };
    let key = ring::signature::UnparsedPublicKey::new(algorithm, &cert.rsa_public_key);
    if messages.iter().any(|m| key.verify(m, &sig).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// The body as JSON when `f` reads it.
fn json_body(raw: &RawWebhook, f: &FieldRef) -> Option<serde_json::Value> {
    match f {
        FieldRef::Json(_) => serde_json::from_slice(&raw.body).ok(),
        FieldRef::Header(_) => None,
    }
}

fn field(raw: &RawWebhook, doc: Option<&serde_json::Value>, f: &FieldRef) -> Option<String> {
    match f {
        FieldRef::Header(h) => header_str(&raw.headers, h).map(str::to_string),
        FieldRef::Json(p) => doc.and_then(|d| p.get_string(d)),
    }
}

fn missing(f: &FieldRef) -> VerifyError {
    match f {
        FieldRef::Header(h) => VerifyError::MissingHeader(h.clone()),
        FieldRef::Json(p) => VerifyError::MissingHeader(format!("body field {p:?}")),
    }
}
