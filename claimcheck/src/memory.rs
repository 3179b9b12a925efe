//! A [`BlobStore`] in memory, for unit tests of the claim-check's callers (the
//! ingress's group commit, the normalizer's claim cache) and for the conformance suite.
//! Integration tests use the real S3 API the harness starts instead.
//!
//! It keeps the guarantees of [`crate::blob`], and can be switched [`MemoryStore::set_down`]
//! to answer every call `Unavailable`, as an unreachable S3 would, so a caller's handling of
//! an outage can be tested without one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::blob::{BlobStore, BoxFuture, ObjectInfo};
use crate::error::ClaimCheckError;

#[derive(Debug)]
struct Object {
    body: Bytes,
    metadata: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    bucket: String,
    /// Whether `ensure_bucket` has run: before it, every object call fails as S3 does for
    /// a missing bucket.
    created: AtomicBool,
    down: AtomicBool,
    /// Held only to read or swap an entry, never across an await.
    objects: Mutex<BTreeMap<String, Object>>,
}

impl MemoryStore {
    /// An empty store whose bucket does not exist yet (call `ensure_bucket`).
    pub fn new(bucket: &str) -> Self {
        Self {
            bucket: bucket.to_string(),
            ..Self::default()
        }
    }

    /// While `down`, every call answers `Unavailable`; nothing stored is lost.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), ClaimCheckError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ClaimCheckError::Unavailable(format!(
                "the in-memory store {} is switched down",
                self.bucket
            )));
        }
        if !self.created.load(Ordering::SeqCst) {
            return Err(ClaimCheckError::Unavailable(format!(
                "bucket {} does not exist; create it (ensure_bucket)",
                self.bucket
            )));
        }
        Ok(())
    }

    fn read<T>(&self, key: &str, f: impl FnOnce(&Object) -> T) -> Result<T, ClaimCheckError> {
        self.check()?;
        let objects = self.objects.lock().expect("memory store lock");
        objects
            .get(key)
            .map(f)
            .ok_or_else(|| ClaimCheckError::NotFound(key.to_string()))
    }
}

impl BlobStore for MemoryStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn ensure_bucket(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return self.check();
            }
            self.created.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>> {
        Box::pin(async move { self.check() })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        metadata: &'a [(&'static str, String)],
    ) -> BoxFuture<'a, Result<(), ClaimCheckError>> {
        Box::pin(async move {
            self.check()?;
            let mut metadata: Vec<(String, String)> = metadata
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .collect();
            metadata.sort();
            let object = Object { body, metadata };
            self.objects
                .lock()
                .expect("memory store lock")
                .insert(key.to_string(), object);
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>> {
        Box::pin(async move { self.read(key, |o| o.body.clone()) })
    }

    fn get_range<'a>(&'a self, key: &'a str, first: u64, last: u64) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>> {
        Box::pin(async move {
            self.read(key, |o| {
                let len = o.body.len() as u64;
                let end = last.saturating_add(1).min(len);
                let start = first.min(end);
                // Both are at most the body's length, a usize.
                o.body.slice(start as usize..end as usize)
            })
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ObjectInfo, ClaimCheckError>> {
        Box::pin(async move {
            self.read(key, |o| ObjectInfo {
                size: o.body.len() as u64,
                metadata: o.metadata.clone(),
            })
        })
    }

    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<String>, ClaimCheckError>> {
        Box::pin(async move {
            self.check()?;
            let objects = self.objects.lock().expect("memory store lock");
            Ok(objects
                .range(prefix.to_string()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(prefix))
                .take(limit)
                .cloned()
                .collect())
        })
    }
}
