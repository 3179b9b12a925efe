//! What the dispatcher watches in the background every few seconds: its dependencies
//! (for `/readyz` and `switchyard_dispatcher_dependency_up`), how much work waits (the
//! consumer, the retries, the dead letters per stage, the undelivered events), and which endpoints are disabled
//! per tenant (every minute: it walks the registry).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use redis::aio::ConnectionManager;
use switchyard_core::names::Names;
use switchyard_core::telemetry::Readiness;
use switchyard_registry::RegistryStore;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

const EVERY: Duration = Duration::from_secs(5);
/// Ticks between walks of the registry for disabled endpoints.
const WALK_EVERY_TICKS: u32 = 12;
/// Tenants looked at per walk, at most.
const WALK_AT_MOST: usize = 10_000;

pub struct Watch {
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub consumer: PullConsumer,
    pub retries: PullConsumer,
    pub store: RegistryStore,
    pub redis: ConnectionManager,
    pub names: Names,
    pub metrics: Metrics,
    pub readiness: Readiness,
}

impl Watch {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(EVERY);
        let mut n: u32 = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.readiness
                .set("nats", switchyard_core::nats::is_connected(&self.nats));
            self.readiness.set("redis", self.redis_answers().await);
            if let Ok(info) = self.consumer.info().await {
                self.metrics.consumer_pending.set(info.num_pending as i64);
            }
            if let Ok(info) = self.retries.info().await {
                self.metrics
                    .retries_pending
                    .set((info.num_pending + info.num_ack_pending as u64) as i64);
            }
            self.count_dead_letters().await;
            if let Ok(mut s) = self.js.get_stream(self.names.undelivered_stream()).await {
                if let Ok(info) = s.info().await {
                    self.metrics.undelivered_pending.set(info.state.messages as i64);
                }
            }
            if n.is_multiple_of(WALK_EVERY_TICKS) {
                self.count_disabled_endpoints().await;
            }
            n = n.wrapping_add(1);
        }
    }

    async fn redis_answers(&self) -> bool {
        let mut c = self.redis.clone();
        matches!(
            tokio::time::timeout(Duration::from_secs(2), redis::cmd("PING").query_async::<String>(&mut c)).await,
            Ok(Ok(_))
        )
    }

    /// Dead letters waiting for an operator, by stage (`<ns>.dlq.<stage>.<reason>`).
    async fn count_dead_letters(&self) {
        let Ok(stream) = self.js.get_stream(self.names.dead_letter_stream()).await else {
            return;
        };
        let Ok(info) = stream.info_with_subjects(self.names.dead_letter_subjects()).await else {
            return;
        };
        let mut by_stage: HashMap<&str, i64> = HashMap::from([("normalizer", 0), ("dispatcher", 0)]);
        let prefix = format!("{}.dlq.", self.names.namespace());
        let mut stages: Vec<(String, u64)> = Vec::new();
        futures::pin_mut!(info);
        while let Some(Ok((subject, count))) = futures::StreamExt::next(&mut info).await {
            if let Some(stage) = subject.strip_prefix(&prefix).and_then(|r| r.split('.').next()) {
                stages.push((stage.to_string(), count as u64));
            }
        }
        for (stage, count) in &stages {
            *by_stage.entry(stage.as_str()).or_default() += *count as i64;
        }
        for (stage, count) in by_stage {
            self.metrics.dead_letters_pending.with_label_values(&[stage]).set(count);
        }
    }

    /// Endpoints disabled right now, per tenant; and the series of deleted tenants gone.
    async fn count_disabled_endpoints(&self) {
        let mut counts: Vec<(String, i64)> = Vec::new();
        let mut cursor: Option<String> = None;
        // Only a walk of every tenant tells which were deleted.
        let mut complete = true;
        let mut existing = std::collections::HashSet::new();
        loop {
            let Ok(page) = self.store.list_tenants(cursor.as_deref(), 500).await else {
                return; // Redis down: keep the last figures
            };
            for t in &page.items {
                existing.insert(t.id.clone());
                if let Ok(eps) = self.store.list_endpoints(&t.id).await {
                    counts.push((t.id.clone(), eps.iter().filter(|e| !e.enabled).count() as i64));
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
            if existing.len() >= WALK_AT_MOST {
                complete = false;
                break;
            }
        }
        self.metrics.set_disabled_endpoints(&counts);
        if complete {
            self.metrics.keep_tenants(&existing);
        }
    }
}
