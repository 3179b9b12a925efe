//! What callers hold: [`ClaimCheckStore`], a cheap handle on a [`BlobStore`] that puts
//! every call under the configured deadline and reads a [`ClaimRef`] as exactly its
//! bytes. Both rules live here, once, whatever the store behind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchyard_core::config::S3Config;
use switchyard_core::envelope::ClaimRef;

use crate::blob::{BlobStore, ObjectInfo};
use crate::error::ClaimCheckError;
use crate::memory::MemoryStore;
use crate::s3::S3Store;

/// The claim-check store: S3 in the binaries ([`Self::new`]), memory in unit tests
/// ([`Self::in_memory`]). Clones share one store (one connection pool).
#[derive(Clone, Debug)]
pub struct ClaimCheckStore {
    blobs: Arc<dyn BlobStore>,
    /// Every call, retries included, ends by then (`s3.timeout_ms`).
    timeout: Duration,
}

impl ClaimCheckStore {
    /// The S3 store `cfg` describes. Fails when no credentials provider can be found or
    /// `s3.endpoint` has no scheme; the message says what to set.
    pub async fn new(cfg: &S3Config) -> Result<Self, ClaimCheckError> {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let s3 = S3Store::new(cfg).await?;
        Ok(Self::from_blobs(Arc::new(s3), timeout))
    }

    /// A store in memory (bucket not yet created), with its handle to switch it down.
    pub fn in_memory(bucket: &str, timeout: Duration) -> (Self, Arc<MemoryStore>) {
        let memory = Arc::new(MemoryStore::new(bucket));
        (Self::from_blobs(memory.clone(), timeout), memory)
    }

    pub fn from_blobs(blobs: Arc<dyn BlobStore>, timeout: Duration) -> Self {
        Self { blobs, timeout }
    }

    pub fn bucket(&self) -> &str {
        self.blobs.bucket()
    }

    /// Create the bucket unless it exists; `Ok` if it exists afterwards.
    pub async fn ensure_bucket(&self) -> Result<(), ClaimCheckError> {
        self.with_deadline(self.blobs.ensure_bucket()).await
    }

    /// Whether the bucket answers (readiness).
    pub async fn probe(&self) -> Result<(), ClaimCheckError> {
        self.with_deadline(self.blobs.probe()).await
    }

    /// Store `body` under `key`. Returns only once the store has acknowledged the PUT,
    /// i.e. once the object is durable.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), ClaimCheckError> {
        self.put_with_metadata(key, body, Vec::new()).await
    }

    /// As [`Self::put`], with user metadata on the object (`x-amz-meta-<name>`), e.g.
    /// which connectors a segment holds, so a listing tool need not read it.
    pub async fn put_with_metadata(
        &self,
        key: &str,
        body: Bytes,
        metadata: Vec<(&'static str, String)>,
    ) -> Result<(), ClaimCheckError> {
        self.with_deadline(self.blobs.put(key, body, &metadata)).await
    }

    /// Keys under `prefix`, in byte order, at most `limit`.
    pub async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, ClaimCheckError> {
        self.with_deadline(self.blobs.list(prefix, limit)).await
    }

    /// The whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, ClaimCheckError> {
        self.with_deadline(self.blobs.get(key)).await
    }

    /// An object's size and user metadata, without its body.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, ClaimCheckError> {
        self.with_deadline(self.blobs.head(key)).await
    }

    /// Exactly the bytes a [`ClaimRef`] names (the provider's raw body). A reference
    /// reaching past the object's end, or past what a u64 can address, was never
    /// written by us: [`ClaimCheckError::Corrupt`].
    pub async fn get_claim(&self, claim: &ClaimRef) -> Result<Bytes, ClaimCheckError> {
        if claim.len == 0 {
            return Ok(Bytes::new());
        }
        let corrupt = |at: u64| ClaimCheckError::Corrupt {
            key: claim.key.clone(),
            offset: usize::try_from(at).unwrap_or(usize::MAX),
        };
        let Some(last) = claim.offset.checked_add(claim.len - 1) else {
            return Err(corrupt(claim.offset));
        };
        let bytes = self
            .with_deadline(self.blobs.get_range(&claim.key, claim.offset, last))
            .await?;
        if bytes.len() as u64 != claim.len {
            // The object ends there.
            return Err(corrupt(claim.offset + bytes.len() as u64));
        }
        Ok(bytes)
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
