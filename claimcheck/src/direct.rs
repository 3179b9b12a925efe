//! The two calls on the hot path — PUT a segment, GET a segment or a byte range of
//! it — sent straight over a pooled HTTP client and signed with SigV4 (the SDK's own
//! `aws-sigv4`), instead of through aws-sdk-s3's per-call orchestration.
//!
//! Why: measured with `switchyard-bench normalizer` and `switchyard-bench ingress`, one
//! SDK call cost the caller 110-150 µs of CPU (interceptors, endpoint and identity
//! resolution, a fresh signing key, response deserialization), more than everything
//! else the ingress does for a group and the normalizer does for a segment's events
//! put together. Everything else (bucket creation, listing, probes) stays on the SDK.
//!
//! Addressing follows the configuration: path style (`<endpoint>/<bucket>/<key>`, what
//! SeaweedFS, MinIO and most S3-compatible servers want) or virtual-hosted
//! (`<bucket>.<host>/<key>`, AWS's default; path style still for a bucket name with dots).
//! Credentials are the configured keys or the AWS default chain's, kept until five
//! minutes before they expire.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};

use crate::error::ClaimCheckError;

/// Credentials from a provider are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// What to do when no credentials are found, for the operator.
pub(crate) const SET_CREDENTIALS: &str = "set s3.access_key_id and s3.secret_access_key \
     (SWITCHYARD_S3__ACCESS_KEY_ID, SWITCHYARD_S3__SECRET_ACCESS_KEY), or give the process AWS credentials \
     (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or an instance or pod role)";
/// The most of an S3 error body quoted in an error.
const QUOTED_ERROR_BYTES: usize = 300;

#[derive(Debug)]
enum Keys {
    Fixed(Identity),
    Provider {
        provider: SharedCredentialsProvider,
        current: tokio::sync::Mutex<Option<Credentials>>,
    },
}

#[derive(Debug)]
pub(crate) struct DirectS3 {
    http: reqwest::Client,
    /// Everything before the key, ending in `/`.
    base: String,
    region: String,
    keys: Keys,
}

impl DirectS3 {
    /// `endpoint` empty means AWS's regional endpoint.
    pub(crate) fn new(
        endpoint: &str,
        region: &str,
        bucket: &str,
        path_style: bool,
        credentials: Result<Credentials, SharedCredentialsProvider>,
    ) -> Result<Self, String> {
        let endpoint = if endpoint.is_empty() {
            format!("https://s3.{region}.amazonaws.com")
        } else {
            endpoint.trim_end_matches('/').to_string()
        };
        let (scheme, host) = endpoint
            .split_once("://")
            .ok_or_else(|| format!("the S3 endpoint {endpoint:?} needs a scheme (http:// or https://)"))?;
        // A bucket name with dots cannot be a TLS host name under the wildcard
        // certificate, so such buckets are addressed path-style, as the SDK does.
        let base = if path_style || bucket.contains('.') {
            format!("{endpoint}/{}/", encode_key(bucket))
        } else {
            format!("{scheme}://{bucket}.{host}/")
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            // Like the SDK: no proxy from the environment.
            .no_proxy()
            .build()
            .map_err(|e| format!("building the S3 HTTP client: {e}"))?;
        let keys = match credentials {
            Ok(c) => Keys::Fixed(c.into()),
            Err(provider) => Keys::Provider {
                provider,
                current: tokio::sync::Mutex::new(None),
            },
        };
        Ok(Self {
            http,
            base,
            region: region.to_string(),
            keys,
        })
    }

    /// PUT `body` under `key`; returns once S3 has answered 2xx.
    pub(crate) async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &'static str,
        metadata: &[(&'static str, String)],
    ) -> Result<(), ClaimCheckError> {
        let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static(content_type))];
        for (name, value) in metadata {
            let name = HeaderName::try_from(format!("x-amz-meta-{name}"))
                .map_err(|e| ClaimCheckError::Unavailable(format!("metadata name {name:?}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| ClaimCheckError::Unavailable(format!("metadata value for {name}: {e}")))?;
            headers.push((name, value));
        }
        // `UNSIGNED-PAYLOAD`: the request is still signed (who may write where), but
        // neither side hashes the whole segment for it; the connection (TLS off
        // loopback) protects the bytes.
        let response = self
            .send(Method::PUT, key, headers, SignableBody::UnsignedPayload, body)
            .await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(ClaimCheckError::Unavailable(failure("PUT", key, response).await))
    }

    /// GET the whole object, or `range` (an HTTP `Range` value) of it.
    pub(crate) async fn get(&self, key: &str, range: Option<String>) -> Result<Bytes, ClaimCheckError> {
        let mut headers = Vec::new();
        if let Some(r) = range {
            let value = HeaderValue::try_from(r).map_err(|e| ClaimCheckError::Unavailable(e.to_string()))?;
            headers.push((RANGE, value));
        }
        let response = self
            .send(Method::GET, key, headers, SignableBody::Bytes(&[]), Bytes::new())
            .await?;
        match response.status() {
            s if s.is_success() => response
                .bytes()
                .await
                .map_err(|e| ClaimCheckError::Unavailable(format!("reading S3 object {key}: {e}"))),
            StatusCode::NOT_FOUND => {
                let text = failure("GET", key, response).await;
                // A missing bucket is a configuration problem, not a missing claim.
                if text.contains("NoSuchBucket") {
                    Err(ClaimCheckError::Unavailable(text))
                } else {
                    Err(ClaimCheckError::NotFound(key.to_string()))
                }
            }
            _ => Err(ClaimCheckError::Unavailable(failure("GET", key, response).await)),
        }
    }

    async fn send(
        &self,
        method: Method,
        key: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        payload: SignableBody<'_>,
        body: Bytes,
    ) -> Result<reqwest::Response, ClaimCheckError> {
        let url = format!("{}{}", self.base, encode_key(key));
        let identity = self.identity().await?;
        let mut settings = SigningSettings::default();
        // S3's flavour of SigV4: the path is signed as sent (encoded once, not
        // normalized) and the payload hash travels in `x-amz-content-sha256`.
        settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| ClaimCheckError::Unavailable(format!("signing the S3 request: {e}")))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or_default())),
            payload,
        )
        .map_err(|e| ClaimCheckError::Unavailable(format!("signing the S3 request: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ClaimCheckError::Unavailable(format!("signing the S3 request: {e}")))?
            .into_parts();
        let mut request = self.http.request(method, url.as_str());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        request.send().await.map_err(|e| {
            let mut text = format!("S3 request to {url} failed: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                let _ = write!(text, ": {inner}");
                source = inner.source();
            }
            ClaimCheckError::Unavailable(text)
        })
    }

    async fn identity(&self) -> Result<Identity, ClaimCheckError> {
        match &self.keys {
            Keys::Fixed(identity) => Ok(identity.clone()),
            Keys::Provider { provider, current } => {
                let mut current = current.lock().await;
                let fresh = current.as_ref().is_some_and(|c| {
                    c.expiry()
                        .is_none_or(|at| SystemTime::now() + REFRESH_BEFORE_EXPIRY < at)
                });
                if !fresh {
                    let c = provider.provide_credentials().await.map_err(|e| {
                        ClaimCheckError::Unavailable(format!("loading AWS credentials: {e}; {SET_CREDENTIALS}"))
                    })?;
                    *current = Some(c);
                }
                Ok(current.clone().expect("just set").into())
            }
        }
    }
}

/// What S3 said when it refused, for the operator.
async fn failure(verb: &str, key: &str, response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED_ERROR_BYTES)]).into_owned();
    format!("S3 {verb} of {key} answered {status}: {}", quoted.trim())
}

/// An object key as a URL path: every byte but the unreserved ones and `/` escaped, as
/// SigV4 for S3 expects the path.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_like_sigv4_wants_them() {
        assert_eq!(
            encode_key("raw/2026-12-05/18/1-ing-1.swy"),
            "raw/2026-12-05/18/1-ing-1.swy"
        );
        assert_eq!(encode_key("a b+c/ü"), "a%20b%2Bc/%C3%BC");
    }

    #[test]
    fn addressing_follows_the_configuration() {
        let creds = || Ok(Credentials::new("id", "secret", None, None, "test"));
        let path = DirectS3::new("http://127.0.0.1:8333/", "us-east-1", "swy", true, creds()).unwrap();
        assert_eq!(path.base, "http://127.0.0.1:8333/swy/");
        let hosted = DirectS3::new("", "eu-west-1", "swy", false, creds()).unwrap();
        assert_eq!(hosted.base, "https://swy.s3.eu-west-1.amazonaws.com/");
        let dotted = DirectS3::new("", "eu-west-1", "claims.example.com", false, creds()).unwrap();
        assert_eq!(dotted.base, "https://s3.eu-west-1.amazonaws.com/claims.example.com/");
        assert!(DirectS3::new("127.0.0.1:8333", "us-east-1", "swy", true, creds()).is_err());
    }
}
