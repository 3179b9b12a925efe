//! Where an event is mapped: on the runtime thread when it is cheap for certain, on the
//! mapping threads otherwise ([`switchyard_core::offload`]).
//!
//! The runtime thread (one, by default) also fetches, publishes and acks every other
//! event, so it maps only events of at most `normalizer.mapping_inline_bytes` whose
//! mappings are bounded in steps (the engine checks its time limit between them): tens
//! of microseconds for the catalog's mappings, whose cost at the largest input is held
//! by `connectors/tests/mapping_cost.rs`. Everything else goes to the mapping threads,
//! within the tenant's budget, and is awaited:
//! - [`Offloaded::Large`]: a larger event (what a mapping costs grows with its input);
//! - [`Offloaded::Unbounded`]: a mapping naming a builtin of unbounded step, whose
//!   evaluation thread the caller would otherwise block on up to its deadline;
//! - [`Offloaded::Slow`]: a connector whose mapping took over [`SLOW_INLINE`] on the
//!   runtime thread lately ([`SLOW_FOR`]): its next events go off it, so one surprise
//!   costs one evaluation, not a stream of them.
//!
//! The thread hop costs a few microseconds, which is why small events stay inline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_connectors::mapping::Limits;
use switchyard_connectors::Connector;
use switchyard_core::envelope::RawEnvelope;
use switchyard_core::offload::{Offload, OffloadError};

use crate::map::{normalize, Failure, Mapped};
use crate::metrics::{Metrics, Offloaded};
use crate::reason::Reason;

/// An inline evaluation longer than this sends its connector's events off the runtime
/// thread for [`SLOW_FOR`].
pub const SLOW_INLINE: Duration = Duration::from_millis(5);
pub const SLOW_FOR: Duration = Duration::from_secs(60);
/// Connectors remembered as slow, at most (there are as many as the catalog has).
const SLOW_KEPT: usize = 1_000;

pub struct Mapper {
    offload: Offload,
    limits: Limits,
    inline_bytes: usize,
    /// Connector → until when its events are mapped off the runtime thread.
    slow: Mutex<HashMap<String, Instant>>,
    metrics: Metrics,
}

impl Mapper {
    pub fn new(limits: Limits, threads: usize, per_tenant: usize, inline_bytes: usize, metrics: Metrics) -> Self {
        Self {
            offload: Offload::new(threads, per_tenant),
            limits,
            inline_bytes,
            slow: Mutex::default(),
            metrics,
        }
    }

    /// Where `env`'s event (a body of `len` bytes) is mapped: `None` on the runtime thread.
    pub fn placement(&self, connector: &Connector, env: &RawEnvelope, len: usize) -> Option<Offloaded> {
        if len > self.inline_bytes {
            return Some(Offloaded::Large);
        }
        let unbounded = connector.mappings.get(&env.event_type).is_some_and(|ms| {
            ms.iter()
                .any(|m| !m.data.runs_on_caller() || m.when.as_ref().is_some_and(|w| !w.runs_on_caller()))
        });
        if unbounded {
            return Some(Offloaded::Unbounded);
        }
        let slow = self.slow.lock().unwrap_or_else(PoisonError::into_inner);
        match slow.get(&connector.name) {
            Some(until) if *until > Instant::now() => Some(Offloaded::Slow),
            _ => None,
        }
    }

    /// Map `env`'s event, inline or on the mapping threads within `env`'s tenant's budget.
    pub async fn map(&self, connector: &Arc<Connector>, env: &RawEnvelope, body: Bytes) -> Result<Mapped, Failure> {
        let limits = self.limits;
        let Some(why) = self.placement(connector, env, body.len()) else {
            let started = Instant::now();
            let mapped = normalize(connector, env, &body, limits);
            let took = started.elapsed();
            self.metrics.mapping_seconds.observe(took.as_secs_f64());
            if took > SLOW_INLINE {
                self.mark_slow(&connector.name, took);
            }
            return mapped;
        };
        self.metrics.offloaded.with_label_values(&[why.as_str()]).inc();
        let (connector, env_owned) = (connector.clone(), env.clone());
        let metrics = self.metrics.clone();
        // The engine stops at its time limit, or the runner abandons an unbounded step
        // at the deadline; waiting twice as long only guards against the unforeseen.
        let wait = limits.deadline() * 2;
        let ran = self
            .offload
            .run(env.tenant_id.as_deref().unwrap_or_default(), wait, move || {
                let started = Instant::now();
                let mapped = normalize(&connector, &env_owned, &body, limits);
                metrics.mapping_seconds.observe(started.elapsed().as_secs_f64());
                mapped
            })
            .await;
        match ran {
            Ok(mapped) => mapped,
            Err(OffloadError::Abandoned(after)) => Err(Failure::Unmappable {
                reason: Reason::MappingError,
                detail: format!("the mapping was still running after {after:?}; it was abandoned"),
                time_limit: true,
            }),
            Err(OffloadError::Panicked) => Err(Failure::Unmappable {
                reason: Reason::InternalError,
                detail: "the mapping's evaluation panicked".into(),
                time_limit: false,
            }),
        }
    }

    fn mark_slow(&self, connector: &str, took: Duration) {
        let mut slow = self.slow.lock().unwrap_or_else(PoisonError::into_inner);
        if slow.len() >= SLOW_KEPT {
            let now = Instant::now();
            slow.retain(|_, until| *until > now);
        }
        if slow.len() < SLOW_KEPT {
            slow.insert(connector.to_string(), Instant::now() + SLOW_FOR);
        }
        tracing::warn!(
            connector,
            took_ms = took.as_millis() as u64,
            "A mapping took long on the runtime thread; this connector's events are mapped on the mapping threads for a while."
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;
    use switchyard_connectors::Catalog;

    use super::*;

    fn stripe_event(padding: usize) -> (RawEnvelope, Bytes) {
        let body = json!({
            "id": "evt_1", "object": "event", "created": 1_700_000_000, "type": "customer.created",
            "data": {"object": {"id": "cus_1", "object": "customer", "email": "a@example.com",
                                "metadata": {"note": "x".repeat(padding)}}}
        });
        let env = crate::map::tests::envelope("stripe", "customer.created");
        (env, serde_json::to_vec(&body).unwrap().into())
    }

    /// Small events stay on the runtime thread; large ones and a slow connector's go off
    /// it, and the answer is the same either way.
    #[tokio::test(flavor = "current_thread")]
    async fn large_and_slow_events_are_mapped_off_the_runtime_thread_alike() {
        let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog")).unwrap();
        let stripe = catalog.get("stripe").unwrap().clone();
        let metrics = Metrics::new(&prometheus::Registry::new());
        let mapper = Mapper::new(Limits::default(), 2, 1, 4096, metrics.clone());

        let (env, small) = stripe_event(10);
        assert_eq!(mapper.placement(&stripe, &env, small.len()), None);
        let (_, large) = stripe_event(8192);
        assert_eq!(mapper.placement(&stripe, &env, large.len()), Some(Offloaded::Large));

        let inline = mapper.map(&stripe, &env, small.clone()).await.unwrap();
        let offloaded = mapper.map(&stripe, &env, large).await.unwrap();
        let (Mapped::Event(a), Mapped::Event(b)) = (inline, offloaded) else {
            panic!("both map");
        };
        assert_eq!(a.event_type, b.event_type);
        assert_eq!(a.data["contact"]["email"], b.data["contact"]["email"]);
        assert_eq!(metrics.offloaded.with_label_values(&["large"]).get(), 1);

        mapper.mark_slow("stripe", Duration::from_millis(50));
        assert_eq!(mapper.placement(&stripe, &env, small.len()), Some(Offloaded::Slow));
        mapper.map(&stripe, &env, small).await.unwrap();
        assert_eq!(metrics.offloaded.with_label_values(&["slow"]).get(), 1);
    }
}
