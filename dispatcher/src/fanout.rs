//! Fan-out: each unified event becomes one delivery per matching endpoint of its tenant
//! (enabled, `event_types` matching, `filter` true), and each delivery gets its first
//! attempt at once ([`crate::deliver::Engine::deliver`]). From there each delivery
//! lives on its own: a failed or deferred one moves to the retry stream.
//!
//! # The ack rule
//! The unified event is acked once every delivery is delivered, on the retry stream, or
//! dead-lettered (each durable). If one of those steps cannot be made durable, the
//! event is handed back; the deliveries that did reach their step are remembered in
//! Redis (`handled:<event>:<endpoint>`, 7 days) and skipped when the event comes back.
//! A crash between an attempt and the ack can still deliver an event twice; the
//! receiver dedupes on `webhook-id`, which is the unified event id on every attempt.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::future::join_all;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::envelope::{HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT};
use switchyard_core::names::Names;
use switchyard_registry::Endpoint;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::deliver::{Engine, Origin};
use crate::filter::{Filters, Verdict};
use crate::undelivered::{Reason, Undelivered};

pub struct Fanout {
    pub engine: Arc<Engine>,
    pub filters: Filters,
    /// Where the events no endpoint receives are recorded.
    pub undelivered: Undelivered,
    pub redis: ConnectionManager,
    pub names: Names,
    /// Delay before a handed-back event comes again.
    pub retry_delay: Duration,
}

const HANDLED_FOR_SECS: u64 = 7 * 24 * 3600;

impl Fanout {
    /// Pull unified events until `shutdown`; at most `concurrency` at once.
    pub async fn run(
        self: Arc<Self>,
        consumer: jetstream::consumer::PullConsumer,
        concurrency: usize,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let permits = Arc::new(Semaphore::new(concurrency));
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            };
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                m = messages.next() => match m {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "Pulling unified events failed; the consumer retries.");
                        continue;
                    }
                    None => return Ok(()),
                },
            };
            let me = self.clone();
            tracker.spawn(async move {
                let _permit = permit;
                me.handle(msg).await;
            });
        }
    }

    async fn handle(&self, msg: jetstream::Message) {
        let header = |name: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        // A re-delivered event carries its id apart from its message id.
        let (Some(id), Some(event_type), Some(tenant)) = (
            header(HEADER_EVENT_ID).or_else(|| header(async_nats::header::NATS_MESSAGE_ID.as_ref())),
            header(HEADER_EVENT_TYPE),
            header(HEADER_TENANT),
        ) else {
            tracing::error!(subject = %msg.subject, "Unified event without routing headers; terminating it.");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        };
        let metrics = &self.engine.metrics;
        let endpoints = match self.engine.registry.endpoints(&tenant).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "Endpoint lookup failed; the event comes back.");
                metrics.events.with_label_values(&["retry"]).inc();
                let _ = msg.ack_with(AckKind::Nak(Some(self.retry_delay))).await;
                return;
            }
        };
        let mut targets: Vec<&Endpoint> = endpoints.iter().filter(|e| e.wants(&event_type)).collect();
        let received_ms = header(HEADER_RECEIVED_MS).and_then(|v| v.parse::<i64>().ok());
        let job_for = |ep: &Endpoint| DeliveryJob {
            event_id: id.clone(),
            event_type: event_type.clone(),
            tenant_id: tenant.clone(),
            endpoint_id: ep.id.clone(),
            received_ms,
            attempt: 1,
            not_before_ms: 0,
            history: Vec::new(),
            body: msg.payload.clone(),
        };

        // Content filters need the event parsed: once, only if some endpoint has one.
        // They run off the runtime thread, within the tenant's budget ([`Filters`]),
        // all of this event's at once; nothing is delivered before every one is judged.
        let mut refused: Vec<(&Endpoint, String)> = Vec::new();
        if targets.iter().any(|e| e.filter.is_some()) {
            let event: Arc<serde_json::Value> = Arc::new(serde_json::from_slice(&msg.payload).unwrap_or_default());
            let tenant = tenant.as_str();
            let verdicts = join_all(targets.iter().map(|ep| {
                let event = event.clone();
                async move {
                    match ep.filter.as_deref() {
                        Some(f) => self.filters.check(tenant, f, event).await,
                        None => Verdict::Pass,
                    }
                }
            }))
            .await;
            if verdicts.contains(&Verdict::Later) {
                // The engine was busy with other evaluations: no fault of this event's,
                // and nothing of it was delivered yet; it comes back whole.
                metrics.events.with_label_values(&["retry"]).inc();
                let _ = msg.ack_with(AckKind::Nak(Some(self.retry_delay))).await;
                return;
            }
            let mut kept = Vec::with_capacity(targets.len());
            for (ep, verdict) in targets.into_iter().zip(verdicts) {
                match verdict {
                    Verdict::Pass => kept.push(ep),
                    Verdict::Skip | Verdict::Later => {}
                    Verdict::Error(why) => refused.push((ep, why)),
                }
            }
            targets = kept;
        }

        if targets.is_empty() && refused.is_empty() {
            // No endpoint takes it: recorded, so it can be re-delivered once one does.
            let reason = if endpoints.iter().any(|e| e.enabled) {
                Reason::NoMatch
            } else {
                Reason::NoEndpoint
            };
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
            let recorded = self
                .undelivered
                .record(&tenant, &id, seq, reason, msg.headers.as_ref(), msg.payload.clone())
                .await;
            if let Err(e) = recorded {
                tracing::warn!(error = %e, event_id = %id, "Recording an event no endpoint takes failed; it comes back.");
                metrics.events.with_label_values(&["retry"]).inc();
                let _ = msg.ack_with(AckKind::Nak(Some(self.retry_delay))).await;
                return;
            }
            metrics.events.with_label_values(&["no_endpoint"]).inc();
            let _ = msg.ack().await;
            return;
        }
        let redelivered = msg.info().map(|i| i.delivered > 1).unwrap_or(false);
        if redelivered {
            let handled = self.handled(&id, &targets).await;
            targets.retain(|ep| !handled.contains(&ep.id));
            if targets.is_empty() && refused.is_empty() {
                metrics.events.with_label_values(&["fanned_out"]).inc();
                let _ = msg.ack().await;
                return;
            }
        }

        let attempts = targets
            .iter()
            .map(|ep| self.engine.deliver(job_for(ep), Some(ep), Origin::Fresh));
        let dead = refused
            .iter()
            .map(|(ep, why)| async { self.engine.dead_letter(&job_for(ep), "filter_error", why.clone()).await });
        let (results, dead_results) = futures::join!(join_all(attempts), join_all(dead));
        let all: Vec<(&Endpoint, bool)> = targets
            .iter()
            .copied()
            .zip(results.iter().map(|r| r.is_ok()))
            .chain(
                refused
                    .iter()
                    .map(|(ep, _)| *ep)
                    .zip(dead_results.iter().map(|r| r.is_ok())),
            )
            .collect();
        if all.iter().all(|(_, ok)| *ok) {
            metrics.events.with_label_values(&["fanned_out"]).inc();
            let _ = msg.ack().await;
            return;
        }
        for r in results.iter().chain(dead_results.iter()) {
            if let Err(e) = r {
                tracing::warn!(error = %e, event_id = %id, "A delivery's next step failed; the event comes back for the endpoints it did not reach.");
            }
        }
        let done: Vec<&str> = all.iter().filter(|(_, ok)| *ok).map(|(ep, _)| ep.id.as_str()).collect();
        self.remember(&id, &done).await;
        metrics.events.with_label_values(&["retry"]).inc();
        let _ = msg.ack_with(AckKind::Nak(Some(self.retry_delay))).await;
    }

    fn handled_key(&self, event_id: &str, endpoint_id: &str) -> String {
        self.names.redis_key(&format!("handled:{event_id}:{endpoint_id}"))
    }

    /// Which of `targets` already reached their step for this event.
    async fn handled(&self, event_id: &str, targets: &[&Endpoint]) -> Vec<String> {
        if targets.is_empty() {
            return Vec::new();
        }
        let keys: Vec<String> = targets.iter().map(|ep| self.handled_key(event_id, &ep.id)).collect();
        let mut c = self.redis.clone();
        let found: Result<Result<Vec<Option<String>>, _>, _> = tokio::time::timeout(
            Duration::from_millis(500),
            redis::cmd("MGET").arg(&keys).query_async(&mut c),
        )
        .await;
        match found {
            Ok(Ok(values)) => targets
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_some())
                .map(|(ep, _)| ep.id.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    async fn remember(&self, event_id: &str, endpoint_ids: &[&str]) {
        if endpoint_ids.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for ep in endpoint_ids {
            pipe.set_ex(self.handled_key(event_id, ep), 1, HANDLED_FOR_SECS)
                .ignore();
        }
        let mut c = self.redis.clone();
        let _ = tokio::time::timeout(Duration::from_millis(500), pipe.query_async::<()>(&mut c)).await;
    }
}
