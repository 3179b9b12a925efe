//! Reading claim-checks. Group commit puts many events in one segment object, so the
//! normalizer fetches a whole segment once and serves its events from memory: a small
//! cache bounded in bytes, where concurrent readers of one segment share one GET.
//!
//! Eviction is first in, first out: the events of a segment sit next to each other in
//! the raw stream, so a segment is read by a burst of events shortly after it is
//! fetched and seldom later (a replay, a redelivery). Keeping the cache small matters
//! for speed too: measured with `switchyard-bench normalizer`, 64 MiB of segments cost
//! ~10 % more CPU per event than a few MiB (memory the CPU caches cannot hold).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use switchyard_claimcheck::{ClaimCheckError, ClaimCheckStore};
use switchyard_core::envelope::ClaimRef;
use tokio::sync::OnceCell;

use crate::metrics::Metrics;

/// Entries beyond this many are dropped oldest first even when small (failed fetches
/// hold no bytes but still an entry).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
struct Cache {
    cells: HashMap<String, Arc<OnceCell<Bytes>>>,
    /// Keys in the order they were first asked for, with the bytes each holds once
    /// fetched (0 until then).
    order: VecDeque<(String, usize)>,
    bytes: usize,
}

impl Cache {
    /// The cell a segment is (or will be) held in.
    fn cell(&mut self, key: &str) -> Arc<OnceCell<Bytes>> {
        if let Some(cell) = self.cells.get(key) {
            return cell.clone();
        }
        let cell = Arc::new(OnceCell::new());
        self.cells.insert(key.to_string(), cell.clone());
        self.order.push_back((key.to_string(), 0));
        cell
    }

    /// Record a fetched segment's size and drop the oldest segments beyond capacity
    /// (never the one just fetched).
    fn fetched(&mut self, key: &str, size: usize, capacity: usize) {
        if let Some(slot) = self.order.iter_mut().rev().find(|(k, _)| k == key) {
            slot.1 = size;
            self.bytes += size;
        }
        while (self.bytes > capacity || self.order.len() > MAX_ENTRIES) && self.order.len() > 1 {
            let (victim, size) = self.order.pop_front().expect("not empty");
            if victim == key {
                // The segment just fetched is the oldest left: it stays (as the newest).
                self.order.push_back((victim, size));
                continue;
            }
            self.bytes -= size;
            self.cells.remove(&victim);
        }
    }
}

pub struct ClaimReader {
    store: ClaimCheckStore,
    capacity: usize,
    metrics: Metrics,
    cache: Mutex<Cache>,
}

impl ClaimReader {
    pub fn new(store: ClaimCheckStore, capacity_bytes: usize, metrics: Metrics) -> Self {
        Self {
            store,
            capacity: capacity_bytes,
            metrics,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The raw body a claim names.
    pub async fn body(&self, claim: &ClaimRef) -> Result<Bytes, ClaimCheckError> {
        let cell = self.cache.lock().expect("claim cache lock").cell(&claim.key);
        let mut fetched = false;
        let segment = cell
            .get_or_try_init(|| async {
                fetched = true;
                let r = self.store.get(&claim.key).await;
                self.metrics
                    .claim_fetches
                    .with_label_values(&[if r.is_ok() { "ok" } else { "error" }])
                    .inc();
                r
            })
            .await?
            .clone();
        if fetched {
            let mut cache = self.cache.lock().expect("claim cache lock");
            cache.fetched(&claim.key, segment.len(), self.capacity);
        }
        let (start, end) = (claim.offset as usize, (claim.offset + claim.len) as usize);
        if end > segment.len() || start > end {
            return Err(ClaimCheckError::Corrupt {
                key: claim.key.clone(),
                offset: start,
            });
        }
        Ok(segment.slice(start..end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(cache: &mut Cache, key: &str, size: usize, capacity: usize) {
        cache.cell(key).set(Bytes::from(vec![0; size])).unwrap();
        cache.fetched(key, size, capacity);
    }

    #[test]
    fn the_oldest_segments_leave_first_and_the_bytes_stay_within_capacity() {
        let mut cache = Cache::default();
        for key in ["a", "b", "c"] {
            fill(&mut cache, key, 400, 1000);
        }
        // a was first in: it left when c came; b and c share one cell each reader gets.
        assert!(!cache.cells.contains_key("a"));
        assert!(Arc::ptr_eq(&cache.cell("b"), &cache.cell("b")));
        assert!(cache.cell("c").get().is_some());
        assert_eq!(cache.bytes, 800);
        assert_eq!(cache.order.len(), 2);
    }

    #[test]
    fn a_segment_larger_than_the_cache_is_kept_until_the_next_one() {
        let mut cache = Cache::default();
        fill(&mut cache, "small", 10, 100);
        // Asked for before "big" finished fetching, so it is older than "big" in the order.
        let _pending = cache.cell("pending");
        fill(&mut cache, "big", 500, 100);
        assert!(cache.cells.contains_key("big"));
        assert_eq!(cache.order.len(), 1);
        assert_eq!(cache.bytes, 500);
        fill(&mut cache, "next", 50, 100);
        assert!(!cache.cells.contains_key("big"));
        assert_eq!(cache.bytes, 50);
    }
}
