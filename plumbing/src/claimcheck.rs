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

use aws_sdk_s3::config::endpoint::{DefaultResolver, Endpoint, EndpointFuture, Params, ResolveEndpoint};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
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
#[derive(Clone, Debug)]
pub struct ClaimCheckStore {
    client: aws_sdk_s3::Client,
    /// The same configuration without retries, for the ingress's segment PUTs: a failed
    /// PUT is answered 503 at once and the provider retries, which is cheaper than the
    /// SDK cloning every request in case it has to try again.
    writer: aws_sdk_s3::Client,
    /// Segment PUTs and GETs without the SDK's per-call cost; `None` when the
    /// configuration is one it cannot serve, and the SDK does those calls too.
    direct: Option<Arc<DirectS3>>,
    bucket: String,
    timeout: Duration,
}

impl ClaimCheckStore {
    pub async fn new(cfg: &S3Config) -> Self {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .force_path_style(cfg.path_style)
            // Checksums only where S3 requires them: TLS already protects the bytes,
            // and a trailing checksum costs CPU on every PUT.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // The stalled-stream monitor polls a timer beside every body it sends or
            // reads; every call here already has a whole-operation deadline instead.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            // Only a connect timeout here: every call already runs under
            // `with_deadline`, so an SDK operation timeout would be a second timer per call.
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .build(),
            )
            // The endpoint depends on the bucket and the configuration, never on the key.
            .endpoint_resolver(KeylessEndpointCache::default());
        if !cfg.endpoint.is_empty() {
            b = b.endpoint_url(&cfg.endpoint);
        }
        let credentials = if cfg.access_key_id.is_empty() {
            let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let provider = shared.credentials_provider();
            b.set_credentials_provider(provider.clone());
            provider.map(Err)
        } else {
            let fixed = Credentials::new(
                cfg.access_key_id.clone(),
                cfg.secret_access_key.expose().to_string(),
                None,
                None,
                "switchyard-config",
            );
            b = b.credentials_provider(fixed.clone());
            Some(Ok(fixed))
        };
        let direct = credentials.and_then(|c| {
            DirectS3::new(&cfg.endpoint, &cfg.region, &cfg.bucket, cfg.path_style, c)
                .inspect_err(|e| tracing::warn!(error = %e, "S3 calls go through the SDK only."))
                .ok()
                .map(Arc::new)
        });
        let config = b.build();
        let writer = config.to_builder().retry_config(RetryConfig::disabled()).build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            writer: aws_sdk_s3::Client::from_conf(writer),
            direct,
            bucket: cfg.bucket.clone(),
            timeout,
        }
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
        if let Some(direct) = &self.direct {
            return self
                .with_deadline(direct.put(key, body, SEGMENT_CONTENT_TYPE, &metadata))
                .await;
        }
        self.with_deadline(async {
            let mut put = self
                .writer
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(SEGMENT_CONTENT_TYPE);
            for (name, value) in metadata {
                put = put.metadata(name, value);
            }
            put.body(ByteStream::from(body))
                .customize()
                // `UNSIGNED-PAYLOAD`: the request is still signed (who may write where),
                // but neither side hashes the whole segment with SHA-256 for it; the
                // connection (TLS off loopback) protects the bytes.
                .disable_payload_signing()
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ClaimCheckError::Unavailable(describe(&e)))
        })
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
        let range = format!("bytes={}-{}", claim.offset, claim.offset + claim.len - 1);
        self.get_inner(&claim.key, Some(range)).await
    }

    async fn get_inner(&self, key: &str, range: Option<String>) -> Result<Bytes, ClaimCheckError> {
        if let Some(direct) = &self.direct {
            return self.with_deadline(direct.get(key, range)).await;
        }
        self.with_deadline(async {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .set_range(range)
                .send()
                .await
                .map_err(|e| match &e {
                    SdkError::ServiceError(se) if se.err().is_no_such_key() => {
                        ClaimCheckError::NotFound(key.to_string())
                    }
                    _ => ClaimCheckError::Unavailable(describe(&e)),
                })?;
            let data = out
                .body
                .collect()
                .await
                .map_err(|e| ClaimCheckError::Unavailable(e.to_string()))?;
            Ok(data.into_bytes())
        })
        .await
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

/// The SDK's own endpoint resolver, remembering its last answer whatever the object key.
///
/// The SDK resolves the endpoint twice per call (once for the URL, once for the auth
/// scheme) by walking S3's whole rule set. Its resolver caches one answer, but keyed on
/// every parameter, the object key included, and every segment has a new key; none of
/// S3's rules reads the key, so here it is left out of the comparison.
#[derive(Debug, Default)]
struct KeylessEndpointCache {
    inner: DefaultResolver,
    last: std::sync::Mutex<Option<(Params, Endpoint)>>,
}

impl ResolveEndpoint for KeylessEndpointCache {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        let mut last = self.last.lock().expect("endpoint cache lock");
        if let Some((p, endpoint)) = last.as_ref() {
            if same_but_key(p, params) {
                return EndpointFuture::ready(Ok(endpoint.clone()));
            }
        }
        // The default resolver answers at once (its future is always ready).
        match futures::FutureExt::now_or_never(self.inner.resolve_endpoint(params)) {
            Some(Ok(endpoint)) => {
                *last = Some((params.clone(), endpoint.clone()));
                EndpointFuture::ready(Ok(endpoint))
            }
            Some(Err(e)) => EndpointFuture::ready(Err(e)),
            None => self.inner.resolve_endpoint(params),
        }
    }
}

/// Every endpoint parameter but the object key is the same.
fn same_but_key(a: &Params, b: &Params) -> bool {
    a.bucket() == b.bucket()
        && a.region() == b.region()
        && a.use_fips() == b.use_fips()
        && a.use_dual_stack() == b.use_dual_stack()
        && a.endpoint() == b.endpoint()
        && a.force_path_style() == b.force_path_style()
        && a.accelerate() == b.accelerate()
        && a.use_global_endpoint() == b.use_global_endpoint()
        && a.use_object_lambda_endpoint() == b.use_object_lambda_endpoint()
        && a.prefix() == b.prefix()
        && a.copy_source() == b.copy_source()
        && a.disable_access_points() == b.disable_access_points()
        && a.disable_multi_region_access_points() == b.disable_multi_region_access_points()
        && a.use_arn_region() == b.use_arn_region()
        && a.use_s3_express_control_endpoint() == b.use_s3_express_control_endpoint()
        && a.disable_s3_express_session_auth() == b.disable_s3_express_session_auth()
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
