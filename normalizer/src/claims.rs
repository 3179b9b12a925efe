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
        // A reference past the segment's end (or past what a u64 holds) was never
        // written by us.
        let range = claim
            .offset
            .checked_add(claim.len)
            .filter(|end| *end <= segment.len() as u64)
            .map(|end| claim.offset as usize..end as usize);
        let Some(range) = range else {
            return Err(ClaimCheckError::Corrupt {
                key: claim.key.clone(),
                offset: usize::try_from(claim.offset).unwrap_or(usize::MAX),
            });
        };
        Ok(segment.slice(range))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_claimcheck::ClaimCheckStore;

    use super::*;

    fn claim(key: &str, offset: u64, len: u64) -> ClaimRef {
        ClaimRef {
            key: key.into(),
            offset,
            len,
        }
    }

    #[tokio::test]
    async fn a_claim_is_its_bytes_of_one_fetch_and_a_bad_one_is_reported() {
        let (store, memory) = ClaimCheckStore::in_memory("claims", Duration::from_secs(1));
        store.ensure_bucket().await.unwrap();
        store.put("seg", Bytes::from_static(b"0123456789")).await.unwrap();
        let metrics = Metrics::new(&prometheus::Registry::new());
        let reader = ClaimReader::new(store, 1 << 20, metrics.clone());

        assert_eq!(&reader.body(&claim("seg", 2, 3)).await.unwrap()[..], b"234");
        // Served from the cache: the store being down does not matter.
        memory.set_down(true);
        assert_eq!(&reader.body(&claim("seg", 9, 1)).await.unwrap()[..], b"9");
        assert_eq!(metrics.claim_fetches.with_label_values(&["ok"]).get(), 1);
        for (offset, len) in [(8, 3), (11, 0), (u64::MAX, 2)] {
            assert!(
                matches!(
                    reader.body(&claim("seg", offset, len)).await,
                    Err(ClaimCheckError::Corrupt { .. })
                ),
                "{offset}+{len}"
            );
        }
        memory.set_down(false);
        assert!(matches!(
            reader.body(&claim("gone", 0, 1)).await,
            Err(ClaimCheckError::NotFound(_))
        ));
    }

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
