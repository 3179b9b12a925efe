//! Delivering one unified event to one endpoint, and deciding what happens when it fails.
//!
//! A delivery starts at the fan-out ([`crate::fanout`]) with its first attempt. From
//! then on it lives on its own:
//! - success (2xx): done; the breaker forgets the endpoint's failures;
//! - failure: the next attempt is scheduled on the retry stream ([`retries`]) after the
//!   configured delay (or the endpoint's `Retry-After` on 429/503); after the last
//!   attempt, the delivery is dead-lettered (`retries_exhausted`) with every attempt;
//! - 410 Gone: the endpoint is disabled at once and the delivery dead-lettered
//!   (`endpoint_gone`);
//! - a failure streak past the breaker's limits ([`crate::breaker`]) disables the
//!   endpoint (`endpoint_disabled`), dead-letters what is pending for it, and tells the
//!   tenant's other endpoints ([`disable`]).
//!
//! Isolation: each endpoint has its own lane of requests in flight ([`lanes`]). A
//! delivery that finds its lane full is deferred to the retry stream (first attempts)
//! or handed back to the server for a second (retries): it never waits on another
//! endpoint's slowness, and no endpoint holds more than its lane.
//!
//! The step after an attempt (retry message, dead letter) is durable (PubAck) before the
//! message that carried the delivery is acked; when it cannot be made durable, the
//! caller gets an [`EngineError`] and hands the message back.

pub mod attempt;
pub mod deadletter;
pub mod disable;
pub mod lanes;
pub mod ratelimit;
pub mod retries;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::envelope::AttemptOutcome;
use switchyard_core::names::Names;
use switchyard_core::publish::PublishError;
use switchyard_registry::{Endpoint, RegistryCache, RegistryError};

use crate::attempts::{AttemptLog, AttemptRecord};
use crate::breaker::Breaker;
use crate::metrics::Metrics;
use crate::ssrf::DestinationPolicy;
use attempt::Outcome;
pub use deadletter::Reason;
use lanes::Lanes;
use ratelimit::RateLimiter;
use schedule::Schedule;

/// Where a delivery came from: its first attempt at the fan-out, or the retry stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Fresh,
    Retry,
}

/// What became of a delivery for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Delivered,
    /// The next attempt is on the retry stream.
    Retrying,
    /// The endpoint's lane was full: a first attempt moved to the retry stream.
    Deferred,
    /// A retry found its endpoint's lane full: hand the message back for `Duration`.
    Busy(Duration),
    DeadLettered,
}

/// Why a delivery's next step was not taken; the message that carried it is handed
/// back.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not make the delivery's next step durable on NATS: {0}")]
    Publish(#[from] PublishError),
    #[error("endpoint lookup failed: {0}")]
    Lookup(RegistryError),
}

/// How long a delivery waits for a place in a stalled lane (nothing finished lately:
/// the endpoint hangs) before it is deferred; a moving lane is waited for longer
/// ([`lanes`]).
const LANE_WAIT: Duration = Duration::ZERO;
/// A deferred delivery is tried again after about this long.
const DEFER_FOR: Duration = Duration::from_secs(1);

pub struct Engine {
    pub http: reqwest::Client,
    pub destinations: DestinationPolicy,
    pub registry: Arc<RegistryCache>,
    pub js: jetstream::Context,
    pub nats: async_nats::Client,
    pub names: Names,
    pub metrics: Metrics,
    pub schedule: Schedule,
    pub lanes: Lanes,
    pub limiter: RateLimiter,
    pub breaker: Breaker,
    pub log: AttemptLog,
}

fn now_ms() -> i64 {
    switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc())
}

impl Engine {
    /// The endpoint a job names, as the registry has it now (`None`: deleted).
    pub async fn endpoint_of(&self, job: &DeliveryJob) -> Result<Option<Endpoint>, EngineError> {
        match self.registry.endpoints(&job.tenant_id).await {
            Ok(eps) => Ok(eps.iter().find(|e| e.id == job.endpoint_id).cloned()),
            Err(e) => Err(EngineError::Lookup(e)),
        }
    }

    /// Attempt the job once and take the step its outcome calls for.
    pub async fn deliver(&self, job: DeliveryJob, ep: Option<&Endpoint>, origin: Origin) -> Result<Fate, EngineError> {
        let Some(ep) = ep else {
            return self
                .dead_letter(
                    &job,
                    Reason::EndpointDeleted,
                    "the endpoint was deleted before delivery".into(),
                )
                .await;
        };
        if !ep.enabled {
            let why = ep.disabled_reason.as_deref().unwrap_or("manual");
            return self
                .dead_letter(
                    &job,
                    Reason::EndpointDisabled,
                    format!("the endpoint is disabled ({why})"),
                )
                .await;
        }
        let Some(_place) = self.lanes.enter(&ep.id, ep.max_in_flight, LANE_WAIT).await else {
            return self.busy(job, origin).await;
        };
        if let Some(per_second) = ep.rate_limit {
            if let Some(wait) = self.limiter.admit(&ep.id, per_second, now_ms()).await {
                // Wait out the current window once; if it is full again, step aside.
                tokio::time::sleep(wait).await;
                if self.limiter.admit(&ep.id, per_second, now_ms()).await.is_some() {
                    return self.busy(job, origin).await;
                }
            }
        }
        let started_ms = now_ms();
        let outcome = attempt::post(&self.http, &self.destinations, ep, &job.event_id, &job.body).await;
        self.record(&job, ep, started_ms, &outcome);
        if outcome.is_success() {
            self.breaker.succeeded(&ep.id).await;
            self.count(ep, "delivered");
            if let Some(received) = job.received_ms {
                self.metrics
                    .end_to_end_seconds
                    .observe((now_ms() - received).max(0) as f64 / 1000.0);
            }
            return Ok(Fate::Delivered);
        }
        let mut job = job;
        job.history.push(AttemptOutcome {
            at_ms: started_ms,
            class: outcome.class.as_str().to_string(),
            status: outcome.status,
            latency_ms: outcome.latency.as_millis() as u64,
            error: outcome.error.clone(),
        });
        self.after_failure(job, ep, &outcome).await
    }

    async fn after_failure(&self, mut job: DeliveryJob, ep: &Endpoint, outcome: &Outcome) -> Result<Fate, EngineError> {
        if outcome.status == Some(410) {
            self.disable(ep, "gone", "the endpoint answered 410 Gone").await;
            return self
                .dead_letter(
                    &job,
                    Reason::EndpointGone,
                    "the endpoint answered 410 Gone and was disabled".into(),
                )
                .await;
        }
        let now = now_ms();
        match self.breaker.failed(&ep.id, now).await {
            Ok(streak) if self.breaker.should_disable(streak, now) => {
                let detail = format!(
                    "{} attempts in a row failed since {}",
                    streak.count,
                    switchyard_core::timefmt::rfc3339(
                        time::OffsetDateTime::from_unix_timestamp(streak.since_ms / 1000)
                            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                    )
                );
                self.disable(ep, "failing", &detail).await;
                return self
                    .dead_letter(
                        &job,
                        Reason::EndpointDisabled,
                        format!("the endpoint was disabled: {detail}"),
                    )
                    .await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Recording a failure for the circuit breaker failed (Redis); it catches up on the next failure.")
            }
        }
        let Some(delay) = self.schedule.next_delay(job.attempt, outcome.retry_after) else {
            let detail = format!(
                "{} attempts failed; the last: {}",
                job.attempt,
                outcome.error.as_deref().unwrap_or(outcome.class.as_str())
            );
            return self.dead_letter(&job, Reason::RetriesExhausted, detail).await;
        };
        job.attempt += 1;
        job.not_before_ms = now + delay.as_millis() as i64;
        let msg_id = format!("{}:{}:{}", job.event_id, job.endpoint_id, job.attempt);
        retries::publish(&self.js, &self.names, &job, &msg_id).await?;
        self.count(ep, "retry_scheduled");
        Ok(Fate::Retrying)
    }

    /// The lane (or the rate limit) has no room now.
    async fn busy(&self, mut job: DeliveryJob, origin: Origin) -> Result<Fate, EngineError> {
        let jitter = Duration::from_millis(rand::random::<u64>() % 500);
        match origin {
            Origin::Retry => Ok(Fate::Busy(DEFER_FOR + jitter)),
            Origin::Fresh => {
                job.not_before_ms = now_ms() + (DEFER_FOR + jitter).as_millis() as i64;
                let msg_id = format!("{}:{}:{}:deferred", job.event_id, job.endpoint_id, job.attempt);
                retries::publish(&self.js, &self.names, &job, &msg_id).await?;
                self.metrics.delivery(&job.tenant_id, "deferred");
                Ok(Fate::Deferred)
            }
        }
    }

    pub(crate) async fn dead_letter(
        &self,
        job: &DeliveryJob,
        reason: Reason,
        detail: String,
    ) -> Result<Fate, EngineError> {
        deadletter::publish(&self.js, &self.names, job, reason, detail).await?;
        let reason = reason.as_str();
        self.metrics.dead_letters.with_label_values(&[reason]).inc();
        self.metrics.delivery(&job.tenant_id, "dead_lettered");
        tracing::warn!(
            event_id = %job.event_id,
            endpoint_id = %job.endpoint_id,
            tenant_id = %job.tenant_id,
            reason,
            "Delivery dead-lettered; `switchyard dlq list` shows it, `switchyard dlq replay` sends it again."
        );
        Ok(Fate::DeadLettered)
    }

    fn record(&self, job: &DeliveryJob, ep: &Endpoint, started_ms: i64, o: &Outcome) {
        self.metrics.attempt(&ep.tenant_id, o.class.as_str());
        self.metrics.attempt_seconds.observe(o.latency.as_secs_f64());
        if !o.is_success() {
            tracing::info!(
                event_id = %job.event_id,
                endpoint_id = %ep.id,
                tenant_id = %ep.tenant_id,
                attempt = job.attempt,
                outcome = o.class.as_str(),
                status = o.status,
                "Delivery attempt failed."
            );
        }
        self.log.record(AttemptRecord {
            event_id: job.event_id.clone(),
            endpoint_id: ep.id.clone(),
            tenant_id: ep.tenant_id.clone(),
            attempt: job.attempt,
            at_ms: started_ms,
            class: o.class.as_str().to_string(),
            status: o.status,
            latency_ms: o.latency.as_millis() as u64,
            error: o.error.clone(),
            response_body: String::from_utf8_lossy(&o.body).into_owned(),
        });
    }

    fn count(&self, ep: &Endpoint, outcome: &str) {
        self.metrics.delivery(&ep.tenant_id, outcome);
    }
}
