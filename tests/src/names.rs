//! Per-test names. Tests sharing the servers from [`crate::shared`] keep out
//! of each other's way by prefixing every stream, subject, bucket and key
//! with their own [`unique_prefix`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A name prefix unique within this test process: `t`, up to three lowercase
/// ASCII letters or digits taken from `tag` (for whoever reads a leftover
/// stream name), then eight hex digits, e.g. `unique_prefix("Outage")` →
/// `tout3f9a0c12`. At most 12 characters, all `[a-z0-9]`, starting with a
/// letter: valid as a NATS stream or subject token, an S3 bucket name (with
/// or without a `-suffix`) and a Redis key.
pub fn unique_prefix(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static SEED: OnceLock<u32> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        // Truncation is fine: any bits make a seed.
        (nanos as u32) ^ ((nanos >> 32) as u32) ^ std::process::id().rotate_left(16)
    });
    let tag: String = tag
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(3)
        .collect();
    // `mix` is a bijection, so distinct counter values give distinct names
    // (for 2^32 calls); the seed makes two runs' names differ.
    let n = mix(seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)));
    format!("t{tag}{n:08x}")
}

/// MurmurHash3's 32-bit finaliser: invertible, and scatters nearby inputs.
fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}
