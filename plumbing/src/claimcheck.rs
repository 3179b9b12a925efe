//! The claim-check store: raw webhook bodies in S3, referenced from the envelopes.
//!
//! # Group commit and the segment format
//! One S3 PUT costs far more CPU than verifying a webhook, so the ingress writes the
//! bodies that arrive within a few milliseconds as one object, a *segment*. A segment is
//! a sequence of records, each `SWY1 ‖ header length (u32 BE) ‖ body length (u32 BE) ‖
//! header JSON ‖ body`. An envelope's [`ClaimRef`] names the object and the body's byte
//! range, so a ranged GET returns exactly the provider's bytes; the record header makes
//! a segment self-describing, so raw claim-checks can be re-driven from S3 alone.
//!
//! Keys sort by time: `raw/<YYYY-MM-DD>/<HH>/<unix ms>-<instance>-<seq>.swy`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::SdkError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::claimcheck_direct::DirectS3;
use crate::config::S3Config;
use crate::envelope::ClaimRef;

const MAGIC: &[u8; 4] = b"SWY1";
const PREFIX_LEN: usize = 12;
const SEGMENT_CONTENT_TYPE: &str = "application/vnd.switchyard.segment";

#[derive(Debug, thiserror::Error)]
pub enum ClaimCheckError {
    #[error("S3 did not answer within {0:?}")]
    Timeout(Duration),
    #[error("claim-check object {0} does not exist (expired by the bucket's lifecycle rule, or deleted)")]
    NotFound(String),
    #[error("S3 request failed: {0}")]
    Unavailable(String),
    #[error("S3 is not configured usably: {0}")]
    Config(String),
    #[error("claim-check object {key} is not a valid segment at byte {offset}")]
    Corrupt { key: String, offset: usize },
}

/// Metadata written before each body in a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordHeader {
    pub connector: String,
    pub account_id: String,
    pub tenant_id: String,
    pub received_ms: i64,
    pub content_type: String,
    /// The provider event ids the body carries.
    pub event_ids: Vec<String>,
    /// The request headers the connector declared it needs later.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Builds one segment in memory.
#[derive(Debug, Default)]
pub struct SegmentBuilder {
    buf: Vec<u8>,
}

impl SegmentBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Append a record; returns the body's `(offset, len)` within the segment.
    pub fn push(&mut self, header: &RecordHeader, body: &[u8]) -> (u64, u64) {
        let header = serde_json::to_vec(header).expect("a record header always serializes");
        self.buf.extend_from_slice(MAGIC);
        self.buf.extend_from_slice(&(header.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&header);
        let offset = self.buf.len() as u64;
        self.buf.extend_from_slice(body);
        (offset, body.len() as u64)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

/// One record read back from a segment.
#[derive(Debug, Clone)]
pub struct Record {
    pub header: RecordHeader,
    pub body: Bytes,
    pub offset: u64,
}

/// Every record of a segment, in order.
pub fn read_segment(key: &str, segment: &Bytes) -> Result<Vec<Record>, ClaimCheckError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let corrupt = |offset| ClaimCheckError::Corrupt {
        key: key.to_string(),
        offset,
    };
    while at < segment.len() {
        let prefix = segment.get(at..at + PREFIX_LEN).ok_or_else(|| corrupt(at))?;
        if &prefix[..4] != MAGIC {
            return Err(corrupt(at));
        }
        let hlen = u32::from_be_bytes(prefix[4..8].try_into().expect("4 bytes")) as usize;
        let blen = u32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes")) as usize;
        let hstart = at + PREFIX_LEN;
        let bstart = hstart.checked_add(hlen).ok_or_else(|| corrupt(at))?;
        let end = bstart.checked_add(blen).ok_or_else(|| corrupt(at))?;
        if end > segment.len() {
            return Err(corrupt(at));
        }
        let header: RecordHeader = serde_json::from_slice(&segment[hstart..bstart]).map_err(|_| corrupt(hstart))?;
        out.push(Record {
            header,
            body: segment.slice(bstart..end),
            offset: bstart as u64,
        });
        at = end;
    }
    Ok(out)
}

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
                    crate::claimcheck_direct::SET_CREDENTIALS
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

/// The key of a new segment.
pub fn segment_key(now: time::OffsetDateTime, instance: &str, seq: u64) -> String {
    format!(
        "raw/{:04}-{:02}-{:02}/{:02}/{:013}-{instance}-{seq:08}.swy",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        crate::timefmt::unix_millis(now),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: &str) -> RecordHeader {
        RecordHeader {
            connector: "stripe".into(),
            account_id: "a".into(),
            tenant_id: "t".into(),
            received_ms: 1,
            content_type: "application/json".into(),
            event_ids: vec![id.into()],
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn segments_round_trip_and_ranges_name_the_body() {
        let mut b = SegmentBuilder::default();
        let (o1, l1) = b.push(&header("e1"), b"{\"a\":1}");
        let (o2, l2) = b.push(&header("e2"), b"");
        let (o3, l3) = b.push(&header("e3"), b"xyz");
        let seg = b.finish();
        assert_eq!(&seg[o1 as usize..(o1 + l1) as usize], b"{\"a\":1}");
        assert_eq!(l2, 0);
        assert_eq!(&seg[o3 as usize..(o3 + l3) as usize], b"xyz");
        let records = read_segment("k", &seg).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].offset, o2);
        assert_eq!(records[2].header.event_ids, vec!["e3".to_string()]);
    }

    #[test]
    fn truncated_segments_are_reported_not_panicked_on() {
        let mut b = SegmentBuilder::default();
        b.push(&header("e1"), b"hello");
        let seg = b.finish();
        for cut in 0..seg.len() {
            let part = seg.slice(..cut);
            let r = read_segment("k", &part);
            if cut == 0 {
                assert!(r.unwrap().is_empty());
            } else {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn keys_sort_by_time() {
        let t = time::macros::datetime!(2026-11-23 09:05:07 UTC);
        assert_eq!(
            segment_key(t, "ing-1", 3),
            "raw/2026-11-23/09/1795424707000-ing-1-00000003.swy"
        );
    }
}
