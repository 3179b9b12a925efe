//! Per-endpoint lanes: each endpoint has its own cap on requests in flight (per
//! process), so a slow or hanging endpoint holds only its own lane and never the
//! others'. A delivery that finds its lane full waits a moment, then is deferred to the
//! retry stream instead of waiting (see [`super::Engine`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Lanes kept before idle ones are forgotten.
const MAX_LANES: usize = 100_000;

pub struct Lanes {
    default_cap: u32,
    lanes: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
}

impl Lanes {
    pub fn new(default_cap: u32) -> Self {
        Self {
            default_cap: default_cap.max(1),
            lanes: Mutex::default(),
        }
    }

    fn lane(&self, endpoint_id: &str, cap: Option<u32>) -> Arc<Semaphore> {
        let cap = cap.unwrap_or(self.default_cap).max(1);
        let mut lanes = self.lanes.lock().expect("lanes lock");
        if let Some((c, sem)) = lanes.get(endpoint_id) {
            if *c == cap {
                return sem.clone();
            }
        }
        if lanes.len() >= MAX_LANES {
            // Forget idle lanes (every permit back); busy ones stay.
            lanes.retain(|_, (c, sem)| sem.available_permits() < *c as usize);
        }
        // A changed cap starts a new lane; permits of the old one drain as they finish.
        let sem = Arc::new(Semaphore::new(cap as usize));
        lanes.insert(endpoint_id.to_string(), (cap, sem.clone()));
        sem
    }

    /// A place in the endpoint's lane, waiting at most `wait`.
    pub async fn enter(&self, endpoint_id: &str, cap: Option<u32>, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let lane = self.lane(endpoint_id, cap);
        if let Ok(p) = lane.clone().try_acquire_owned() {
            return Some(p);
        }
        if wait.is_zero() {
            return None;
        }
        tokio::time::timeout(wait, lane.acquire_owned()).await.ok()?.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_lane_does_not_block_another() {
        let lanes = Lanes::new(2);
        let a1 = lanes.enter("a", None, Duration::ZERO).await;
        let a2 = lanes.enter("a", None, Duration::ZERO).await;
        assert!(a1.is_some() && a2.is_some());
        assert!(lanes.enter("a", None, Duration::from_millis(5)).await.is_none());
        assert!(lanes.enter("b", None, Duration::ZERO).await.is_some());
        drop(a1);
        assert!(lanes.enter("a", None, Duration::ZERO).await.is_some());
        // An endpoint's own cap wins over the default.
        let held: Vec<_> = futures::future::join_all((0..5).map(|_| lanes.enter("c", Some(5), Duration::ZERO))).await;
        assert!(held.iter().all(Option::is_some));
    }
}
