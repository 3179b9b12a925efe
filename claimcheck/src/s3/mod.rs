//! The [`BlobStore`] the binaries run: S3's REST API spoken directly over one pooled
//! HTTP client, each request signed with SigV4 by the AWS SDK's own `aws-sigv4` crate.
//! No aws-sdk-s3: measured with `switchyard-bench ingress`, one call through the SDK's
//! orchestration (interceptors, endpoint and identity resolution, a fresh signing key,
//! response deserialization) cost the caller 110-150 µs of CPU, more than the rest of
//! what the ingress does for a group commit.
//!
//! Six calls: PUT object, GET object (whole or a byte range), HEAD object, HEAD bucket,
//! PUT bucket, and ListObjectsV2 page by page.
//!
//! - **Addressing** follows the configuration: path style (`<endpoint>/<bucket>/<key>`,
//!   what SeaweedFS, MinIO and most S3-compatible servers want) or virtual-hosted
//!   (`<bucket>.<host>/<key>`, AWS's default; path style still for a bucket name with
//!   dots, which a wildcard certificate cannot cover).
//! - **Credentials** are the configured keys or the AWS default chain's, refreshed in the
//!   background ([`credentials`]); a request never waits on a refresh.
//! - **Errors** are read from the XML body S3 answers with ([`xml`]): `NoSuchKey` is
//!   [`ClaimCheckError::NotFound`], `BucketAlreadyOwnedByYou` is success for
//!   [`BlobStore::ensure_bucket`], anything else [`ClaimCheckError::Unavailable`] with
//!   S3's code and message and what to check.
//! - **One retry**: a 500, 502, 503 or 504 (S3's `InternalError`, `SlowDown`,
//!   `ServiceUnavailable`) or a failed connection is tried once more after
//!   [`RETRY_PAUSE`] ± half of it (jitter, so instances that failed together do not retry
//!   together). Every call here may be repeated safely: GET, HEAD and LIST read, PUT
//!   bucket of an existing bucket is `BucketAlreadyOwnedByYou`, and a segment PUT writes
//!   the same bytes under the same key (keys are unique to an instance and sequence
//!   number). The caller's deadline bounds both attempts together.

mod credentials;
mod xml;

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};
use switchyard_core::config::S3Config;

use crate::blob::{BlobStore, BoxFuture, ObjectInfo};
use crate::error::ClaimCheckError;
use crate::segment::SEGMENT_CONTENT_TYPE;
use credentials::{Keys, SET_CREDENTIALS};

/// The pause before the one retry, give or take half of it.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The most of an error body read (S3's are a few hundred bytes).
const MAX_ERROR_BODY: usize = 16 * 1024;
/// The most of a listing page read: 1,000 keys of a few hundred bytes of XML each.
const MAX_LIST_PAGE: usize = 4 * 1024 * 1024;
/// Keys asked for per listing page (S3's own maximum).
const PAGE_KEYS: usize = 1000;
/// The region whose buckets are created without a location constraint.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug)]
pub struct S3Store {
    http: reqwest::Client,
    /// Everything before an object's key, ending in `/`.
    objects: String,
    /// The bucket itself (HEAD, PUT and listing).
    bucket_url: String,
    bucket: String,
    region: String,
    keys: Keys,
    /// Keys asked for per listing page.
    page_keys: usize,
}

/// Why a request got no 2xx, before it is put in the caller's words.
#[derive(Debug)]
enum Failure {
    /// S3 answered, refusing: the status and the code and message of its XML body
    /// (empty for a HEAD, which has no body).
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// No answer: connection refused or reset, TLS, a body cut short.
    Transport(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Refused { status, code, .. } => {
                matches!(status.as_u16(), 500 | 502 | 503 | 504)
                    || matches!(code.as_str(), "SlowDown" | "InternalError" | "ServiceUnavailable")
            }
        }
    }

    fn code(&self) -> &str {
        match self {
            Failure::Refused { code, .. } => code,
            Failure::Transport(_) => "",
        }
    }
}

impl S3Store {
    /// Fails when no credentials provider can be set up or `s3.endpoint` has no scheme;
    /// the message says what to set. Keys from the default chain are loaded in the
    /// background from here on.
    pub async fn new(cfg: &S3Config) -> Result<Self, ClaimCheckError> {
        let keys = if cfg.access_key_id.is_empty() {
            let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(cfg.region.clone()))
                .load()
                .await;
            let provider = shared
                .credentials_provider()
                .ok_or_else(|| ClaimCheckError::Config(format!("no AWS credentials provider; {SET_CREDENTIALS}")))?;
            Keys::refreshed(provider)
        } else {
            Keys::fixed(aws_credential_types::Credentials::new(
                cfg.access_key_id.clone(),
                cfg.secret_access_key.expose().to_string(),
                None,
                None,
                "switchyard-config",
            ))
        };
        Self::with_keys(cfg, keys)
    }

    fn with_keys(cfg: &S3Config, keys: Keys) -> Result<Self, ClaimCheckError> {
        let region = &cfg.region;
        let endpoint = if cfg.endpoint.is_empty() {
            format!("https://s3.{region}.amazonaws.com")
        } else {
            cfg.endpoint.trim_end_matches('/').to_string()
        };
        let (scheme, host) = endpoint.split_once("://").ok_or_else(|| {
            ClaimCheckError::Config(format!(
                "the S3 endpoint {endpoint:?} needs a scheme (http:// or https://); set s3.endpoint"
            ))
        })?;
        let bucket = &cfg.bucket;
        let (objects, bucket_url) = if cfg.path_style || bucket.contains('.') {
            let url = format!("{endpoint}/{}", encode(bucket, false));
            (format!("{url}/"), url)
        } else {
            let url = format!("{scheme}://{bucket}.{host}/");
            (url.clone(), url)
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            // Like the AWS SDK: no proxy from the environment.
            .no_proxy()
            .build()
            .map_err(|e| ClaimCheckError::Config(format!("building the S3 HTTP client: {e}")))?;
        Ok(Self {
            http,
            objects,
            bucket_url,
            bucket: bucket.clone(),
            region: region.clone(),
            keys,
            page_keys: PAGE_KEYS,
        })
    }

    /// Listings in pages of `n` keys instead of S3's 1,000, so a test walks
    /// continuation tokens without writing thousands of objects.
    pub fn with_page_keys(mut self, n: usize) -> Self {
        self.page_keys = n.clamp(1, PAGE_KEYS);
        self
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}{}", self.objects, encode(key, true))
    }

    /// Sends a request, once more after a pause if the first attempt failed in a way a
    /// second may not (see the module doc), and returns the 2xx response.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, Failure> {
        match self.attempt(method.clone(), url, headers, body.clone()).await {
            Err(f) if f.retryable() => {
                let jitter = rand::random_range(0.5..1.5);
                tokio::time::sleep(RETRY_PAUSE.mul_f64(jitter)).await;
                self.attempt(method, url, headers, body).await
            }
            other => other,
        }
    }

    async fn attempt(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, Failure> {
        let signed = self.sign(&method, url, headers, body.is_some()).await?;
        let mut request = self.http.request(method, url).headers(signed);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transport(switchyard_core::error_text::one_line(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_bounded(response, MAX_ERROR_BODY).await.unwrap_or_default();
        let parsed = xml::error_body(&body);
        Err(Failure::Refused {
            status,
            code: parsed.code,
            message: parsed.message,
        })
    }

    /// `headers` plus the SigV4 ones. A body is sent `UNSIGNED-PAYLOAD`: the request is
    /// still signed (who may write where), but neither side hashes the whole segment for
    /// it; the connection (TLS off loopback) protects the bytes.
    async fn sign(
        &self,
        method: &Method,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        has_body: bool,
    ) -> Result<HeaderMap, Failure> {
        let identity = self
            .keys
            .current()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let mut settings = SigningSettings::default();
        // S3's flavour of SigV4: the path is signed as sent (encoded once, not
        // normalized) and the payload hash travels in `x-amz-content-sha256`.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let signing_failed = |e: &dyn std::fmt::Display| Failure::Transport(format!("signing the S3 request: {e}"));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| signing_failed(&e))?
            .into();
        let payload = if has_body {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(&[])
        };
        let signable = SignableRequest::new(
            method.as_str(),
            url,
            headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or_default())),
            payload,
        )
        .map_err(|e| signing_failed(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| signing_failed(&e))?.into_parts();
        let mut out = HeaderMap::with_capacity(headers.len() + 4);
        for (name, value) in headers {
            out.insert(name.clone(), value.clone());
        }
        for (name, value) in instructions.headers() {
            let value = HeaderValue::from_str(value).map_err(|e| signing_failed(&e))?;
            let name = HeaderName::try_from(name).map_err(|e| signing_failed(&e))?;
            out.insert(name, value);
        }
        Ok(out)
    }

    /// `failure` of `what` (e.g. `GET of raw/…`) in the caller's terms.
    fn error(&self, what: &str, failure: Failure) -> ClaimCheckError {
        match failure {
            Failure::Transport(why) => ClaimCheckError::Unavailable(format!(
                "S3 {what} failed: {why}; check s3.endpoint and that S3 is up and reachable"
            )),
            Failure::Refused { status, code, message } => {
                let said = if code.is_empty() {
                    status.to_string()
                } else {
                    format!("{status} {code}: {message}")
                };
                let advice = match (status.as_u16(), code.as_str()) {
                    (_, "NoSuchBucket") | (404, "") => format!(
                        "bucket {} does not exist; create it (the ingress does at start) or set s3.bucket",
                        self.bucket
                    ),
                    (403, _) | (_, "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
                        "check s3.access_key_id and s3.secret_access_key, or the role's permissions on the bucket"
                            .to_string()
                    }
                    (s, _) if s >= 500 => "S3 is failing or overloaded; it was tried twice".to_string(),
                    _ => "check the s3 section of the configuration".to_string(),
                };
                ClaimCheckError::Unavailable(format!("S3 {what} answered {said}; {advice}"))
            }
        }
    }

    /// As [`Self::error`], with a missing key (and only a missing key) as `NotFound`.
    fn object_error(&self, what: &str, key: &str, failure: Failure, has_body: bool) -> ClaimCheckError {
        let missing = match &failure {
            Failure::Refused { code, .. } if code == "NoSuchKey" => true,
            // A HEAD answers without a body, so a 404 cannot say what is missing.
            Failure::Refused { status, .. } => !has_body && *status == StatusCode::NOT_FOUND,
            Failure::Transport(_) => false,
        };
        if missing {
            ClaimCheckError::NotFound(key.to_string())
        } else {
            self.error(&format!("{what} of {key}"), failure)
        }
    }

    async fn get_object(&self, key: &str, range: Option<(u64, u64)>) -> Result<Bytes, ClaimCheckError> {
        let mut headers = Vec::new();
        if let Some((first, last)) = range {
            let value = HeaderValue::try_from(format!("bytes={first}-{last}"))
                .map_err(|e| ClaimCheckError::Config(e.to_string()))?;
            headers.push((RANGE, value));
        }
        let url = self.object_url(key);
        let response = match self.send(Method::GET, &url, &headers, None).await {
            Ok(r) => r,
            // A range starting past the end: none of its bytes exist.
            Err(Failure::Refused { status, .. }) if range.is_some() && status == StatusCode::RANGE_NOT_SATISFIABLE => {
                return Ok(Bytes::new())
            }
            Err(f) => return Err(self.object_error("GET", key, f, true)),
        };
        response.bytes().await.map_err(|e| {
            self.error(
                &format!("GET of {key}"),
                Failure::Transport(switchyard_core::error_text::one_line(&e)),
            )
        })
    }
}

impl BlobStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn ensure_bucket(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>> {
        Box::pin(async move {
            if self.probe().await.is_ok() {
                return Ok(());
            }
            let body = if self.region == DEFAULT_REGION {
                Bytes::new()
            } else {
                Bytes::from(format!(
                    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                     <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                    self.region
                ))
            };
            match self.send(Method::PUT, &self.bucket_url, &[], Some(body)).await {
                Ok(_) => Ok(()),
                Err(f) if f.code() == "BucketAlreadyOwnedByYou" => Ok(()),
                // Someone holds the name; usable only if it is us under another account
                // setting (some servers answer this for one's own bucket too).
                Err(f) if f.code() == "BucketAlreadyExists" => self.probe().await.map_err(|_| {
                    ClaimCheckError::Config(format!(
                        "S3 bucket {} belongs to someone else; choose another s3.bucket",
                        self.bucket
                    ))
                }),
                Err(f) => Err(self.error(&format!("creating bucket {}", self.bucket), f)),
            }
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>> {
        Box::pin(async move {
            self.send(Method::HEAD, &self.bucket_url, &[], None)
                .await
                .map(|_| ())
                .map_err(|f| self.error(&format!("HEAD of bucket {}", self.bucket), f))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        metadata: &'a [(&'static str, String)],
    ) -> BoxFuture<'a, Result<(), ClaimCheckError>> {
        Box::pin(async move {
            let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static(SEGMENT_CONTENT_TYPE))];
            for (name, value) in metadata {
                let header = HeaderName::try_from(format!("x-amz-meta-{name}"))
                    .map_err(|e| ClaimCheckError::Config(format!("metadata name {name:?}: {e}")))?;
                let value = HeaderValue::try_from(value.as_str())
                    .map_err(|e| ClaimCheckError::Config(format!("metadata value for {name}: {e}")))?;
                headers.push((header, value));
            }
            self.send(Method::PUT, &self.object_url(key), &headers, Some(body))
                .await
                .map(|_| ())
                .map_err(|f| self.error(&format!("PUT of {key}"), f))
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>> {
        Box::pin(self.get_object(key, None))
    }

    fn get_range<'a>(&'a self, key: &'a str, first: u64, last: u64) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>> {
        Box::pin(self.get_object(key, Some((first, last))))
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ObjectInfo, ClaimCheckError>> {
        Box::pin(async move {
            let response = self
                .send(Method::HEAD, &self.object_url(key), &[], None)
                .await
                .map_err(|f| self.object_error("HEAD", key, f, false))?;
            let size = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            let mut metadata: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    let name = name.as_str().strip_prefix("x-amz-meta-")?;
                    Some((name.to_string(), value.to_str().ok()?.to_string()))
                })
                .collect();
            metadata.sort();
            Ok(ObjectInfo { size, metadata })
        })
    }

    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<String>, ClaimCheckError>> {
        Box::pin(async move {
            let what = || format!("listing of {prefix:?} in bucket {}", self.bucket);
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            while keys.len() < limit {
                let mut url = format!(
                    "{}?list-type=2&max-keys={}&prefix={}",
                    self.bucket_url,
                    (limit - keys.len()).min(self.page_keys),
                    encode(prefix, false)
                );
                if let Some(t) = &token {
                    let _ = write!(url, "&continuation-token={}", encode(t, false));
                }
                let response = self
                    .send(Method::GET, &url, &[], None)
                    .await
                    .map_err(|f| self.error(&what(), f))?;
                let body = read_bounded(response, MAX_LIST_PAGE)
                    .await
                    .map_err(|f| self.error(&what(), f))?;
                let page =
                    xml::list_page(&body).map_err(|e| ClaimCheckError::Unavailable(format!("{}: {e}", what())))?;
                keys.extend(page.keys);
                token = page.next;
                if token.is_none() {
                    break;
                }
            }
            keys.truncate(limit);
            Ok(keys)
        })
    }
}

/// At most `max` bytes of a response's body; a longer body is an error.
async fn read_bounded(mut response: reqwest::Response, max: usize) -> Result<Bytes, Failure> {
    let mut out = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Transport(switchyard_core::error_text::one_line(&e)))?
    {
        if out.len() + chunk.len() > max {
            return Err(Failure::Transport(format!("the answer is longer than {max} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// `s` percent-encoded as SigV4 for S3 wants it: every byte but the unreserved ones
/// escaped, and `/` too unless `keep_slash` (object paths keep theirs; query values and
/// bucket names do not).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use switchyard_core::secret::Secret;

    use super::*;

    fn config(endpoint: &str, region: &str, bucket: &str, path_style: bool) -> S3Config {
        S3Config {
            endpoint: endpoint.into(),
            region: region.into(),
            bucket: bucket.into(),
            path_style,
            access_key_id: "id".into(),
            secret_access_key: Secret::new("secret"),
            timeout_ms: 1000,
        }
    }

    fn store(cfg: &S3Config) -> Result<S3Store, ClaimCheckError> {
        let keys = Keys::fixed(aws_credential_types::Credentials::new(
            "id", "secret", None, None, "test",
        ));
        S3Store::with_keys(cfg, keys)
    }

    #[test]
    fn keys_are_escaped_like_sigv4_wants_them() {
        assert_eq!(
            encode("raw/2026-12-05/18/1-ing-1.swy", true),
            "raw/2026-12-05/18/1-ing-1.swy"
        );
        assert_eq!(encode("a b+c/ü", true), "a%20b%2Bc/%C3%BC");
        assert_eq!(encode("raw/2026-12-05/", false), "raw%2F2026-12-05%2F");
    }

    #[test]
    fn addressing_follows_the_configuration() {
        let path = store(&config("http://127.0.0.1:8333/", "us-east-1", "swy", true)).unwrap();
        assert_eq!(path.object_url("raw/a b"), "http://127.0.0.1:8333/swy/raw/a%20b");
        assert_eq!(path.bucket_url, "http://127.0.0.1:8333/swy");
        let hosted = store(&config("", "eu-west-1", "swy", false)).unwrap();
        assert_eq!(hosted.object_url("k"), "https://swy.s3.eu-west-1.amazonaws.com/k");
        assert_eq!(hosted.bucket_url, "https://swy.s3.eu-west-1.amazonaws.com/");
        let dotted = store(&config("", "eu-west-1", "claims.example.com", false)).unwrap();
        assert_eq!(dotted.objects, "https://s3.eu-west-1.amazonaws.com/claims.example.com/");
        match store(&config("127.0.0.1:8333", "us-east-1", "swy", true)) {
            Err(ClaimCheckError::Config(text)) => assert!(text.contains("s3.endpoint"), "{text}"),
            other => panic!("an endpoint without a scheme must be refused, got {other:?}"),
        }
    }

    #[test]
    fn only_server_faults_and_lost_connections_are_retried() {
        let refused = |status: u16, code: &str| Failure::Refused {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.into(),
            message: String::new(),
        };
        assert!(refused(503, "SlowDown").retryable());
        assert!(refused(500, "InternalError").retryable());
        assert!(refused(503, "").retryable());
        assert!(Failure::Transport("connection refused".into()).retryable());
        assert!(!refused(404, "NoSuchKey").retryable());
        assert!(!refused(403, "SignatureDoesNotMatch").retryable());
        assert!(!refused(409, "BucketAlreadyOwnedByYou").retryable());
    }

    #[test]
    fn a_missing_key_is_not_found_and_a_missing_bucket_is_not() {
        let s = store(&config("http://127.0.0.1:1", "us-east-1", "swy", true)).unwrap();
        let refused = |status: u16, code: &str| Failure::Refused {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.into(),
            message: "m".into(),
        };
        assert!(matches!(
            s.object_error("GET", "k", refused(404, "NoSuchKey"), true),
            ClaimCheckError::NotFound(_)
        ));
        assert!(matches!(
            s.object_error("HEAD", "k", refused(404, ""), false),
            ClaimCheckError::NotFound(_)
        ));
        match s.object_error("GET", "k", refused(404, "NoSuchBucket"), true) {
            ClaimCheckError::Unavailable(text) => assert!(text.contains("bucket swy does not exist"), "{text}"),
            other => panic!("{other:?}"),
        }
        match s.object_error("PUT", "k", refused(403, "SignatureDoesNotMatch"), true) {
            ClaimCheckError::Unavailable(text) => {
                assert!(text.contains("403") && text.contains("s3.secret_access_key"), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }
}
