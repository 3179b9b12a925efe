//! What can go wrong storing or reading a claim-check, for every caller alike.

use std::time::Duration;

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
