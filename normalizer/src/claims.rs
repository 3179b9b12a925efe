//! Reading claim-checks. Group commit puts many events in one segment object, so the
//! normalizer fetches a whole segment once and serves its events from memory: a small
//! cache bounded in bytes, where concurrent readers of one segment share one GET.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use switchyard_plumbing::claimcheck::{ClaimCheckError, ClaimCheckStore};
use switchyard_plumbing::envelope::ClaimRef;
use tokio::sync::OnceCell;

use crate::metrics::Metrics;

struct Entry {
    cell: Arc<OnceCell<Bytes>>,
    size: usize,
    used: u64,
}

pub struct ClaimReader {
    store: ClaimCheckStore,
    capacity: usize,
    metrics: Metrics,
    entries: Mutex<(HashMap<String, Entry>, u64, usize)>,
}

impl ClaimReader {
    pub fn new(store: ClaimCheckStore, capacity_bytes: usize, metrics: Metrics) -> Self {
        Self {
            store,
            capacity: capacity_bytes,
            metrics,
            entries: Mutex::new((HashMap::new(), 0, 0)),
        }
    }

    /// The raw body a claim names.
    pub async fn body(&self, claim: &ClaimRef) -> Result<Bytes, ClaimCheckError> {
        let cell = {
            let mut guard = self.entries.lock().expect("claim cache lock");
            let (map, clock, _) = &mut *guard;
            *clock += 1;
            let now = *clock;
            let e = map.entry(claim.key.clone()).or_insert_with(|| Entry {
                cell: Arc::new(OnceCell::new()),
                size: 0,
                used: now,
            });
            e.used = now;
            e.cell.clone()
        };
        let segment = cell
            .get_or_try_init(|| async {
                let r = self.store.get(&claim.key).await;
                self.metrics
                    .claim_fetches
                    .with_label_values(&[if r.is_ok() { "ok" } else { "error" }])
                    .inc();
                r
            })
            .await?
            .clone();
        self.account(&claim.key, segment.len());
        let (start, end) = (claim.offset as usize, (claim.offset + claim.len) as usize);
        if end > segment.len() || start > end {
            return Err(ClaimCheckError::Corrupt {
                key: claim.key.clone(),
                offset: start,
            });
        }
        Ok(segment.slice(start..end))
    }

    /// Record a fetched segment's size and evict the least recently used beyond capacity.
    fn account(&self, key: &str, size: usize) {
        let mut guard = self.entries.lock().expect("claim cache lock");
        let (map, _, total) = &mut *guard;
        if let Some(e) = map.get_mut(key) {
            if e.size == 0 {
                e.size = size;
                *total += size;
            }
        }
        while *total > self.capacity && map.len() > 1 {
            let Some(victim) = map
                .iter()
                .filter(|(k, e)| k.as_str() != key && e.size > 0)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = map.remove(&victim) {
                *total -= e.size;
            }
        }
        // Entries whose fetch failed never got a size; keep the map itself bounded.
        if map.len() > 10_000 {
            map.retain(|_, e| e.size > 0);
        }
    }
}
