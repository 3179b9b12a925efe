//! The claim-check: raw webhook bodies in S3, referenced from the envelopes.
//!
//! # Layout
//! - [`segment`]: the format that lets many bodies share one object (group commit),
//!   and the time-sorted keys segments are written under.
//! - [`ClaimCheckStore`] (`store.rs`): what callers hold. Every call under one deadline,
//!   a claim read as exactly its bytes.
//! - [`blob`]: the small trait behind it, [`BlobStore`], and the guarantees every
//!   implementation keeps.
//! - [`s3`]: the implementation the binaries run, S3's REST API signed with SigV4 over a
//!   pooled HTTP client, errors read from S3's XML, one retry with jitter.
//! - [`memory`]: an implementation in memory, for callers' unit tests.
//! - [`conformance`]: the one suite both implementations pass.
//! - [`read`]: walking the segments of a time range (replay from S3 alone).

pub mod blob;
pub mod conformance;
mod error;
pub mod memory;
pub mod read;
pub mod s3;
pub mod segment;
mod store;

pub use blob::{BlobStore, BoxFuture, ObjectInfo};
pub use error::ClaimCheckError;
pub use memory::MemoryStore;
pub use s3::S3Store;
pub use segment::{read_segment, segment_key, Record, RecordHeader, SegmentBuilder};
pub use store::ClaimCheckStore;
