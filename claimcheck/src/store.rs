//! The S3 side of the claim-check: PUT a segment, GET it or a byte range of it, and the
//! rare calls around them (bucket creation, readiness, listings).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::SdkError;
use bytes::Bytes;
use switchyard_core::config::S3Config;
use switchyard_core::envelope::ClaimRef;

use crate::direct::DirectS3;
use crate::error::ClaimCheckError;
use crate::segment::SEGMENT_CONTENT_TYPE;

/// The S3 side of the claim-check.
///
/// Segment PUTs and GETs, the calls on the hot path, go through [`DirectS3`]; the rare
/// ones (bucket creation, readiness probes, listings for the replay tool) through
/// aws-sdk-s3.
#[derive(Clone, Debug)]
pub struct ClaimCheckStore {
    client: aws_sdk_s3::Client,
    direct: Arc<DirectS3>,
    bucket: String,
    timeout: Duration,
}

impl ClaimCheckStore {
    /// Fails when no credentials can be found or `s3.endpoint` has no scheme; the
    /// message says what to set.
    pub async fn new(cfg: &S3Config) -> Result<Self, ClaimCheckError> {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .force_path_style(cfg.path_style)
            // Checksums only where S3 requires them: TLS already protects the bytes.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Every call already runs under `with_deadline`.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .build(),
            );
        if !cfg.endpoint.is_empty() {
            b = b.endpoint_url(&cfg.endpoint);
        }
        let credentials = if cfg.access_key_id.is_empty() {
            let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let provider = shared.credentials_provider().ok_or_else(|| {
                ClaimCheckError::Config(format!(
                    "no AWS credentials provider; {}",
                    crate::direct::SET_CREDENTIALS
                ))
            })?;
            b.set_credentials_provider(Some(provider.clone()));
            Err(provider)
        } else {
            let fixed = Credentials::new(
                cfg.access_key_id.clone(),
                cfg.secret_access_key.expose().to_string(),
                None,
                None,
                "switchyard-config",
            );
            b = b.credentials_provider(fixed.clone());
            Ok(fixed)
        };
        let direct = DirectS3::new(&cfg.endpoint, &cfg.region, &cfg.bucket, cfg.path_style, credentials)
            .map_err(ClaimCheckError::Config)?;
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            direct: Arc::new(direct),
            bucket: cfg.bucket.clone(),
            timeout,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Create the bucket unless it exists.
    pub async fn ensure_bucket(&self) -> Result<(), ClaimCheckError> {
        if self.probe().await.is_ok() {
            return Ok(());
        }
        let r = self.client.create_bucket().bucket(&self.bucket).send().await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = format!("{:?}", e);
                if text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists") {
                    Ok(())
                } else {
                    Err(ClaimCheckError::Unavailable(describe(&e)))
                }
            }
        }
    }

    /// Whether the bucket answers (readiness).
    pub async fn probe(&self) -> Result<(), ClaimCheckError> {
        self.with_deadline(async {
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ClaimCheckError::Unavailable(describe(&e)))
        })
        .await
    }

    /// Store `body` under `key`. Returns only once S3 has acknowledged the PUT, i.e.
    /// once the object is durable.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), ClaimCheckError> {
        self.put_with_metadata(key, body, Vec::new()).await
    }

    /// As [`Self::put`], with user metadata on the object (`x-amz-meta-<name>`), e.g. which
    /// connectors a segment holds, so a listing tool need not read it.
    pub async fn put_with_metadata(
        &self,
        key: &str,
        body: Bytes,
        metadata: Vec<(&'static str, String)>,
    ) -> Result<(), ClaimCheckError> {
        self.with_deadline(self.direct.put(key, body, SEGMENT_CONTENT_TYPE, &metadata))
            .await
    }

    /// Keys under `prefix`, in order, at most `limit`.
    pub async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, ClaimCheckError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .with_deadline(async {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| ClaimCheckError::Unavailable(describe(&e)))
                })
                .await?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() || keys.len() >= limit {
                keys.truncate(limit);
                return Ok(keys);
            }
        }
    }

    /// The whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, ClaimCheckError> {
        self.get_inner(key, None).await
    }

    /// Exactly the bytes a [`ClaimRef`] names (the provider's raw body).
    pub async fn get_claim(&self, claim: &ClaimRef) -> Result<Bytes, ClaimCheckError> {
        if claim.len == 0 {
            return Ok(Bytes::new());
        }
        // A reference past the end of what a u64 can address was never written by us.
        let Some(last) = claim.offset.checked_add(claim.len - 1) else {
            return Err(ClaimCheckError::Corrupt {
                key: claim.key.clone(),
                offset: usize::try_from(claim.offset).unwrap_or(usize::MAX),
            });
        };
        let range = format!("bytes={}-{last}", claim.offset);
        self.get_inner(&claim.key, Some(range)).await
    }

    async fn get_inner(&self, key: &str, range: Option<String>) -> Result<Bytes, ClaimCheckError> {
        self.with_deadline(self.direct.get(key, range)).await
    }

    async fn with_deadline<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, ClaimCheckError>>,
    ) -> Result<T, ClaimCheckError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(ClaimCheckError::Timeout(self.timeout)),
        }
    }
}

fn describe<E: std::error::Error + 'static>(e: &SdkError<E>) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
