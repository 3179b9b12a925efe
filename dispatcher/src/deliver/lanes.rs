//! Per-endpoint lanes: each endpoint has its own cap on requests in flight (per
//! process), so a slow or hanging endpoint holds only its own lane and never the
//! others'. A delivery that finds its lane full waits while the lane is moving (a
//! request finished lately: the endpoint is merely busy), but only a moment when it is
//! stalled (nothing finished lately: the endpoint hangs); then it is deferred to the
//! retry stream instead of waiting (see [`super::Engine`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Lanes kept before idle ones are forgotten.
const MAX_LANES: usize = 100_000;
/// A lane where a request finished within this long is moving.
const MOVING_WITHIN: Duration = Duration::from_millis(250);
/// How long a delivery waits for a moving lane.
const MOVING_WAIT: Duration = Duration::from_secs(2);

pub struct Lanes {
    default_cap: u32,
    lanes: Mutex<HashMap<String, (u32, Arc<Lane>)>>,
}

/// One endpoint's lane: its places and when a place was last given back.
struct Lane {
    places: Arc<Semaphore>,
    /// Milliseconds since [`epoch`] when a request last finished.
    last_done_ms: AtomicU64,
}

/// A place in a lane; giving it back marks the lane as moving.
pub struct Place {
    _permit: OwnedSemaphorePermit,
    lane: Arc<Lane>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.lane.last_done_ms.store(since_epoch_ms(), Ordering::Relaxed);
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`], offset so that 0 means "long ago".
fn since_epoch_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 3_600_000
}

impl Lanes {
    pub fn new(default_cap: u32) -> Self {
        Self {
            default_cap: default_cap.max(1),
            lanes: Mutex::default(),
        }
    }

    fn lane(&self, endpoint_id: &str, cap: Option<u32>) -> Arc<Lane> {
        let cap = cap.unwrap_or(self.default_cap).max(1);
        let mut lanes = self.lanes.lock().expect("lanes lock");
        if let Some((c, lane)) = lanes.get(endpoint_id) {
            if *c == cap {
                return lane.clone();
            }
        }
        if lanes.len() >= MAX_LANES {
            // Forget idle lanes (every place free); busy ones stay.
            lanes.retain(|_, (c, lane)| lane.places.available_permits() < *c as usize);
        }
        // A changed cap starts a new lane; places of the old one drain as they finish.
        let lane = Arc::new(Lane {
            places: Arc::new(Semaphore::new(cap as usize)),
            // Not moving until a request finishes in it.
            last_done_ms: AtomicU64::new(0),
        });
        lanes.insert(endpoint_id.to_string(), (cap, lane.clone()));
        lane
    }

    /// A place in the endpoint's lane: waiting up to [`MOVING_WAIT`] while the lane
    /// moves, at most `stalled_wait` when it does not.
    pub async fn enter(&self, endpoint_id: &str, cap: Option<u32>, stalled_wait: Duration) -> Option<Place> {
        let lane = self.lane(endpoint_id, cap);
        let place = |permit| Place {
            _permit: permit,
            lane: lane.clone(),
        };
        if let Ok(p) = lane.places.clone().try_acquire_owned() {
            return Some(place(p));
        }
        let idle = since_epoch_ms().saturating_sub(lane.last_done_ms.load(Ordering::Relaxed));
        let wait = if idle <= MOVING_WITHIN.as_millis() as u64 {
            MOVING_WAIT
        } else {
            stalled_wait
        };
        if wait.is_zero() {
            return None;
        }
        let permit = tokio::time::timeout(wait, lane.places.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(place(permit))
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
        // Nothing has finished in lane a for a while: it is stalled, so no long wait.
        lanes.lane("a", None).last_done_ms.store(0, Ordering::Relaxed);
        assert!(lanes.enter("a", None, Duration::from_millis(5)).await.is_none());
        assert!(lanes.enter("b", None, Duration::ZERO).await.is_some());
        drop(a1);
        assert!(lanes.enter("a", None, Duration::ZERO).await.is_some());
        // A moving lane is waited for: a place given back soon is taken.
        let lanes2 = Arc::new(Lanes::new(1));
        drop(lanes2.enter("m", None, Duration::ZERO).await.unwrap()); // one finished: moving
        let held = lanes2.enter("m", None, Duration::ZERO).await.unwrap();
        let l = lanes2.clone();
        let waiter = tokio::spawn(async move { l.enter("m", None, Duration::ZERO).await.is_some() });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.unwrap(), "a moving lane's place is waited for");
        // An endpoint's own cap wins over the default.
        let held: Vec<_> = futures::future::join_all((0..5).map(|_| lanes.enter("c", Some(5), Duration::ZERO))).await;
        assert!(held.iter().all(Option::is_some));
    }
}
