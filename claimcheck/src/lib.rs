//! The claim-check: raw webhook bodies in S3, referenced from the envelopes.
//!
//! # Layout
//! - [`segment`]: the format that lets many bodies share one object (group commit),
//!   and the time-sorted keys segments are written under.
//! - [`store`]: the S3 calls, each under a deadline.
//! - [`direct`]: the two hot calls (PUT, ranged GET) signed with SigV4 over a pooled
//!   HTTP client.
//! - [`read`]: walking the segments of a time range (replay from S3 alone).

mod direct;
mod error;
pub mod read;
pub mod segment;
mod store;

pub use error::ClaimCheckError;
pub use segment::{read_segment, segment_key, Record, RecordHeader, SegmentBuilder};
pub use store::ClaimCheckStore;
