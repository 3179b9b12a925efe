//! The object-store calls the claim-check needs, as a small trait: [`BlobStore`].
//!
//! Two implementations: [`crate::s3::S3Store`], the one the binaries run, and
//! [`crate::memory::MemoryStore`], for callers' unit tests. Both pass the same
//! conformance suite ([`crate::conformance`]), so a test that passes against memory
//! describes what S3 does too. Callers do not hold a `BlobStore` themselves but a
//! [`crate::ClaimCheckStore`], which puts every call under one deadline and turns a
//! [`ClaimRef`](switchyard_core::envelope::ClaimRef) into a byte range with checked
//! arithmetic, once for every implementation.
//!
//! # Why object-safe
//!
//! The store is chosen at run time (S3 in the binaries, memory in a unit test) and held
//! by long-lived state in three crates (the ingress's group commit, the normalizer's
//! claim cache, the CLI). As `Arc<dyn BlobStore>` it is one type everywhere: no generic
//! parameter spreading through `Deps`, `ClaimReader` and their tests, and one compiled
//! copy of each caller. The price is a boxed future per call, tens of nanoseconds
//! against an S3 round trip of milliseconds. Methods therefore return [`BoxFuture`]
//! rather than being `async fn` (which a `dyn` trait cannot have).
//!
//! # The guarantees every implementation keeps
//!
//! - [`BlobStore::put`] returns `Ok` only once the object is durable, whole: a reader
//!   never sees part of it. Writing the same key with the same bytes again is harmless
//!   (the claim-check's PUTs are retried on that ground).
//! - A key that was never written, or was removed, is [`ClaimCheckError::NotFound`] on
//!   `get`, `get_range` and `head`; a missing *bucket* is not (it is
//!   [`ClaimCheckError::Unavailable`]: a configuration fault, not a lost body).
//! - `get_range` returns the bytes of `first..=last` that exist: fewer when the object
//!   ends sooner, none when it ends before `first`. The caller decides whether that is
//!   corrupt.
//! - `list` gives keys in byte order, each once, at most `limit` of them.
//! - A store that cannot be reached answers [`ClaimCheckError::Unavailable`] (or the
//!   caller's deadline, [`ClaimCheckError::Timeout`]); it never hangs unbounded.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::error::ClaimCheckError;

/// A future a [`BlobStore`] method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`BlobStore::head`] tells about an object without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its length in bytes.
    pub size: u64,
    /// Its user metadata (`x-amz-meta-<name>` on S3), names in lower case, sorted by name.
    pub metadata: Vec<(String, String)>,
}

/// The object-store calls of the claim-check. See the module doc for the guarantees.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// The bucket (or, for memory, the name) objects live in, for messages.
    fn bucket(&self) -> &str;

    /// Creates the bucket unless it exists; `Ok` when it exists afterwards, whoever made it.
    fn ensure_bucket(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>>;

    /// Whether the bucket answers (readiness): `Ok` when it exists and may be read.
    fn probe(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>>;

    /// Stores `body` under `key` with user `metadata`; `Ok` once it is durable.
    /// Metadata names are lower-case ASCII letters, digits and `-`.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        metadata: &'a [(&'static str, String)],
    ) -> BoxFuture<'a, Result<(), ClaimCheckError>>;

    /// The whole object.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>>;

    /// The bytes `first..=last` of the object, as far as it reaches.
    fn get_range<'a>(&'a self, key: &'a str, first: u64, last: u64) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>>;

    /// The object's size and metadata.
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ObjectInfo, ClaimCheckError>>;

    /// Keys starting with `prefix`, in byte order, at most `limit`.
    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<String>, ClaimCheckError>>;
}
