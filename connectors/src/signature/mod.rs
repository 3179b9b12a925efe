//! The one generic signature verifier, driven by the connector file.
//!
//! Verification changes the type: the ingress holds a [`RawWebhook`] until
//! [`verify`] turns it into a [`VerifiedWebhook`], and only a `VerifiedWebhook` can be
//! stored or published. `now` is an argument, so replay windows are tested without
//! waiting. Every comparison of a signature is constant-time, and nothing in a request
//! can switch a check off.

mod asymmetric;
pub mod fetched;
pub mod header;
mod hmac;
mod shared_secret;

use bytes::Bytes;
use http::HeaderMap;

use crate::model::{SignatureSpec, TimeUnit, TimestampSource, TimestampSpec};

/// A request as it arrived, not yet trusted.
#[derive(Debug, Clone)]
pub struct RawWebhook {
    pub method: http::Method,
    /// The full URL as the provider saw it (scheme and host from configuration).
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A request whose signature checked out. Only [`verify`] makes one.
#[derive(Debug)]
pub struct VerifiedWebhook {
    raw: RawWebhook,
}

impl VerifiedWebhook {
    pub fn body(&self) -> &Bytes {
        &self.raw.body
    }
    pub fn headers(&self) -> &HeaderMap {
        &self.raw.headers
    }
    pub fn method(&self) -> &http::Method {
        &self.raw.method
    }

    /// A delivery by GET (Twilio's, where so configured) carries its parameters in the
    /// query of the URL it signed: they become the body, as a form, so extraction, the
    /// claim-check and mappings read them as they read a POSTed form.
    pub fn with_query_as_form_body(mut self) -> Self {
        let query = self.raw.url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let query = query.split('#').next().unwrap_or("");
        self.raw.body = Bytes::copy_from_slice(query.as_bytes());
        self.raw.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }
}

/// Why a request was refused. Every kind answers 401; `code()` is the short label
/// used in the response body and in metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(String),
    #[error("the signature header holds no signature in the expected format")]
    Malformed,
    #[error("the signed timestamp is missing or not a number")]
    BadTimestamp,
    #[error("the signed timestamp is outside the {0} s tolerance window")]
    OutOfTolerance(u64),
    #[error("no signature matches")]
    Mismatch,
    #[error("the account's public key is not valid for this scheme")]
    BadKey,
    #[error("the account has no signing secret configured")]
    NoSecret,
    #[error("the key URL the request names is not HTTPS on a host the connector allows")]
    KeyHostNotAllowed,
    #[error("the token names a key the provider does not publish")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("a claim of the token is missing or not what this endpoint accepts")]
    ClaimRefused,
}

impl VerifyError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "signature_missing",
            Self::Malformed => "signature_malformed",
            Self::BadTimestamp => "timestamp_invalid",
            Self::OutOfTolerance(_) => "timestamp_out_of_tolerance",
            Self::Mismatch => "signature_mismatch",
            Self::NoSecret => "no_signing_secret",
            Self::BadKey => "bad_public_key",
            Self::KeyHostNotAllowed => "key_host_not_allowed",
            Self::UnknownKey => "key_unknown",
            Self::Expired => "token_expired",
            Self::ClaimRefused => "claim_refused",
        }
    }
}

/// Check `raw` against `spec` with the account's `secrets` (any one may match: a
/// provider-side rotation never drops an event) at Unix time `now`. For asymmetric
/// schemes ([`SignatureSpec::uses_public_keys`]) `secrets` are the account's public keys.
pub fn verify(
    spec: &SignatureSpec,
    raw: RawWebhook,
    secrets: &[&str],
    now: i64,
) -> Result<VerifiedWebhook, VerifyError> {
    verify_with_fallbacks(spec, &[], Fallbacks::All, raw, secrets, now)
}

/// [`verify`] for a scheme whose keys were fetched ([`fetched::key_location`]):
/// `keys` are what the location held; `account_values` the account's secrets (a `jwt`
/// audience, where the connector says so).
pub fn verify_fetched(
    spec: &SignatureSpec,
    raw: RawWebhook,
    keys: &fetched::FetchedKeys,
    account_values: &[&str],
    now: i64,
) -> Result<VerifiedWebhook, VerifyError> {
    fetched::verify_fetched(spec, &raw, keys, account_values, now)?;
    Ok(VerifiedWebhook { raw })
}

/// Which of a connector's fallback schemes may be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallbacks {
    All,
    /// Only those that sign a timestamp they check ([`SignatureSpec::is_replay_safe`]):
    /// the others would let a captured request, its primary header dropped, be
    /// accepted again at any time.
    ReplaySafe,
}

/// As [`verify`], and when the primary scheme's signature header is absent, each of
/// `fallbacks` in order (a provider's older schemes). A request carrying the primary
/// header is judged by the primary scheme alone, so it cannot be downgraded.
pub fn verify_with_fallbacks(
    spec: &SignatureSpec,
    fallbacks: &[SignatureSpec],
    allowed: Fallbacks,
    raw: RawWebhook,
    secrets: &[&str],
    now: i64,
) -> Result<VerifiedWebhook, VerifyError> {
    let mut result = check(spec, &raw, secrets, now);
    if matches!(result, Err(VerifyError::MissingHeader(_))) {
        let mut fallback_error = None;
        let usable = fallbacks
            .iter()
            .filter(|f| allowed == Fallbacks::All || f.is_replay_safe());
        for fallback in usable {
            match check(fallback, &raw, secrets, now) {
                Ok(()) => {
                    fallback_error = None;
                    result = Ok(());
                    break;
                }
                // No header of this kind either: the primary's missing header is reported.
                Err(VerifyError::MissingHeader(_)) => {}
                Err(e) => {
                    fallback_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = fallback_error {
            result = Err(e);
        }
    }
    result.map(|()| VerifiedWebhook { raw })
}

fn check(spec: &SignatureSpec, raw: &RawWebhook, secrets: &[&str], now: i64) -> Result<(), VerifyError> {
    match spec {
        SignatureSpec::Hmac(h) => hmac::verify(h, raw, secrets, now),
        SignatureSpec::Token(t) => shared_secret::token(t, raw, secrets),
        SignatureSpec::Basic(_) => shared_secret::basic(raw, secrets),
        SignatureSpec::BodyField(b) => shared_secret::body_field(b, raw, secrets),
        SignatureSpec::Ed25519(a) => asymmetric::verify(asymmetric::Curve::Ed25519, a, raw, secrets, now),
        SignatureSpec::EcdsaP256(a) => asymmetric::verify(asymmetric::Curve::P256, a, raw, secrets, now),
        SignatureSpec::Jwt(j) if j.jwks_url.is_empty() => fetched::jwt_with_secrets(j, raw, secrets, now),
        // Their keys are fetched first: see [`verify_fetched`].
        SignatureSpec::Jwt(_) | SignatureSpec::X509(_) => Err(VerifyError::NoSecret),
    }
}

/// The timestamp as the caller found it (signature header part or JSON field) is passed
/// as `from_signature`.
/// A header's value as text, if present and valid UTF-8.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Resolve and check the signed timestamp; returns it as sent (it is part of the
/// signed bytes).
pub(crate) fn check_timestamp<'a>(
    spec: &TimestampSpec,
    from_signature: Option<&'a str>,
    headers: &'a HeaderMap,
    now: i64,
) -> Result<&'a str, VerifyError> {
    let text = match &spec.source {
        TimestampSource::SignatureHeader | TimestampSource::Json(_) => from_signature,
        TimestampSource::Header(h) => header_str(headers, h),
    }
    .ok_or(VerifyError::BadTimestamp)?;
    let secs = match spec.unit {
        TimeUnit::Seconds => text.trim().parse().map_err(|_| VerifyError::BadTimestamp)?,
        TimeUnit::Milliseconds => text
            .trim()
            .parse::<i64>()
            .map_err(|_| VerifyError::BadTimestamp)?
            .div_euclid(1000),
        TimeUnit::Rfc3339 => time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| VerifyError::BadTimestamp)?
            .unix_timestamp(),
    };
    if now.abs_diff(secs) > spec.tolerance_secs {
        return Err(VerifyError::OutOfTolerance(spec.tolerance_secs));
    }
    Ok(text)
}

#[cfg(test)]
mod stripe_tests;

#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod construction_tests;
#[cfg(test)]
mod fetched_tests;
#[cfg(test)]
mod key_request_tests;
#[cfg(test)]
mod provider_vectors;

#[cfg(test)]
pub(crate) mod prop_tests;
pub mod sign;
