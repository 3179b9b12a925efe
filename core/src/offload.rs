//! Work that may be slow, off the runtime thread, within a budget per tenant.
//!
//! The binaries run one runtime thread by default: a mapping or filter evaluated there
//! for 200 ms holds up every tenant's events, heartbeats and acks for as long.
//! [`Offload::run`] awaits the work on a blocking thread instead: at most `threads` at
//! once in the process, at most `per_tenant` of them for one tenant, so one tenant's
//! slow work queues behind itself and the others keep `threads - per_tenant` threads
//! at least. The tenant's permit is taken first: a tenant waiting on its own budget
//! holds no thread. Both permits stay with the work until it ends, even when its caller
//! stopped waiting at the deadline, so the bounds count what really runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;

/// Tenants whose budgets are kept; past that, idle ones are dropped.
const TENANTS_KEPT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// The work panicked on its thread.
    #[error("the evaluation panicked")]
    Panicked,
    /// Still running at the deadline: its caller stopped waiting (the work keeps its
    /// permits until it ends by itself).
    #[error("still running after {0:?}; abandoned")]
    Abandoned(Duration),
}

pub struct Offload {
    pool: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_tenant: usize,
}

impl Offload {
    /// At most `threads` at once, `per_tenant` of them for one tenant (both at least 1).
    pub fn new(threads: usize, per_tenant: usize) -> Self {
        Self {
            pool: Arc::new(Semaphore::new(threads.max(1))),
            tenants: Mutex::default(),
            per_tenant: per_tenant.max(1),
        }
    }

    fn budget(&self, tenant: &str) -> Arc<Semaphore> {
        let mut t = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = t.get(tenant) {
            return s.clone();
        }
        if t.len() >= TENANTS_KEPT {
            // A budget with every permit back is idle; dropping it loses nothing.
            let full = self.per_tenant;
            t.retain(|_, s| s.available_permits() < full);
        }
        t.entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone()
    }

    /// Run `work` for `tenant` on a blocking thread and await its answer, for at most
    /// `deadline` once it started.
    pub async fn run<T: Send + 'static>(
        &self,
        tenant: &str,
        deadline: Duration,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, OffloadError> {
        let budget = self.budget(tenant);
        let mine = budget.acquire_owned().await.expect("budgets are never closed");
        let slot = self
            .pool
            .clone()
            .acquire_owned()
            .await
            .expect("the pool is never closed");
        let job = tokio::task::spawn_blocking(move || {
            let _permits = (mine, slot);
            work()
        });
        match tokio::time::timeout(deadline, job).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(OffloadError::Panicked),
            Err(_) => Err(OffloadError::Abandoned(deadline)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// One tenant holding its whole budget with work that does not end leaves the other
    /// tenant's fifty jobs to run and answer, on a runtime thread that ran none of them;
    /// the stuck tenant's next job waits for its own budget, not anyone else's.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stuck_tenant_delays_only_itself() {
        let off = Arc::new(Offload::new(3, 2));
        let (release, wait) = mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        let mut stuck = Vec::new();
        for _ in 0..3 {
            let (off, wait) = (off.clone(), wait.clone());
            stuck.push(tokio::spawn(async move {
                off.run("slow", Duration::from_secs(60), move || {
                    let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(30));
                })
                .await
            }));
        }
        tokio::task::yield_now().await;
        let runtime_thread = std::thread::current().id();
        for i in 0..50u32 {
            let ran_on = off
                .run("quick", Duration::from_secs(30), move || {
                    (i * 2, std::thread::current().id())
                })
                .await
                .unwrap();
            assert_eq!(ran_on.0, i * 2);
            assert_ne!(ran_on.1, runtime_thread);
        }
        assert!(
            stuck.iter().all(|h| !h.is_finished()),
            "nothing released the slow tenant yet"
        );
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for h in stuck {
            assert_eq!(h.await.unwrap(), Ok(()));
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn work_past_its_deadline_is_abandoned_and_a_panic_is_an_error() {
        let off = Offload::new(2, 1);
        let (release, wait) = mpsc::channel::<()>();
        let r = off
            .run("t", Duration::from_millis(50), move || {
                let _ = wait.recv_timeout(Duration::from_secs(30));
            })
            .await;
        assert_eq!(r, Err(OffloadError::Abandoned(Duration::from_millis(50))));
        release.send(()).unwrap();
        // Its permit comes back once it really ends: the tenant's next job runs.
        let r = off.run("t", Duration::from_secs(30), || 7).await;
        assert_eq!(r, Ok(7));
        let r: Result<(), _> = off.run("t", Duration::from_secs(30), || panic!("boom")).await;
        assert_eq!(r, Err(OffloadError::Panicked));
    }
}
