//! The worker loop: pull raw envelopes in batches, normalize them with bounded
//! concurrency, publish unified events, ack.
//!
//! # The ack rule
//! A raw message is acked only after its outcome is durable: its unified event has a
//! PubAck, or its dead letter has one, or it was dropped by the connector's declared
//! policy (counted). A transient failure (S3 or NATS unavailable) naks with a delay,
//! so the message comes back. On shutdown the loop stops pulling, finishes what it
//! holds, and returns; anything not finished is redelivered after `ack_wait`.

use std::future::IntoFuture;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::{FutureExt, StreamExt};
use switchyard_claimcheck::ClaimCheckError;
use switchyard_connectors::live::LiveCatalog;
use switchyard_core::envelope::{RawEnvelope, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT};
use switchyard_core::names::Names;
use switchyard_registry::RegistryCache;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::claims::ClaimReader;
use crate::deadletter;
use crate::map::Mapped;
use crate::mapper::Mapper;
use crate::metrics::Metrics;

/// Delay before a transiently failed message is offered again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

pub struct Worker {
    pub js: jetstream::Context,
    pub names: Names,
    pub catalog: Arc<LiveCatalog>,
    /// Accounts, to route each event to its account and tenant.
    pub registry: Arc<RegistryCache>,
    pub claims: ClaimReader,
    pub metrics: Metrics,
    /// Maps each event, on the runtime thread or off it ([`crate::mapper`]).
    pub mapper: Mapper,
    /// Tries of an event stopped by the mapping's time limit before its dead letter.
    pub timeout_attempts: u32,
    /// Deliveries of one message without an ack before it is dead-lettered.
    pub max_deliveries: u32,
}

enum Step {
    Ack,
    Retry(String),
}

impl Worker {
    pub async fn run(
        self: Arc<Self>,
        consumer: jetstream::consumer::PullConsumer,
        batch: usize,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = Box::pin(messages.take_until(shutdown.cancelled_owned()));
        // Each message is its own task, so the runtime's threads share the work; the
        // semaphore bounds how many are in hand at once (a permit is taken before the
        // next message is pulled off the stream).
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let tasks = TaskTracker::new();
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            match messages.next().await {
                Some(Ok(msg)) => {
                    let me = self.clone();
                    // Boxed: the handling future is several KB (S3, NATS and dead-letter
                    // states), which the runtime would otherwise copy a few times per
                    // spawn and once more on completion (~3 % of the CPU per event).
                    tasks.spawn(Box::pin(async move {
                        me.handle(msg).await;
                        drop(permit);
                    }));
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Pulling raw envelopes failed; the consumer retries.");
                }
                None => break,
            }
        }
        // Started messages finish: their outcome is made durable and acked.
        tasks.close();
        tasks.wait().await;
        // Shutting down: what was fetched but not started goes back at once (nak), so
        // another normalizer takes it now rather than after the ack wait.
        let mut fetched = messages.as_mut().get_pin_mut();
        for _ in 0..batch {
            match tokio::time::timeout(Duration::from_millis(20), fetched.next()).await {
                Ok(Some(Ok(msg))) => {
                    let _ = msg.ack_with(AckKind::Nak(None)).await;
                }
                _ => break,
            }
        }
        Ok(())
    }

    async fn handle(&self, msg: jetstream::Message) {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let step = if delivered >= i64::from(self.max_deliveries) {
            // Every earlier delivery crashed or hung before its outcome was acked.
            let detail = format!(
                "delivered {delivered} times without an outcome (normalizer.max_deliveries); its handling crashed or never finished"
            );
            self.dead_letter_message(&msg, "redelivery_limit", detail).await
        } else {
            // No input may take the worker down: a panic in handling is this event's
            // dead letter, not a redelivery loop.
            match AssertUnwindSafe(self.process(&msg)).catch_unwind().await {
                Ok(step) => step,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(panic = %what, "Handling a raw event panicked; dead-lettering it.");
                    self.dead_letter_message(
                        &msg,
                        "internal_error",
                        format!("the normalizer failed on this event: {what}"),
                    )
                    .await
                }
            }
        };
        let r = match step {
            Step::Ack => msg.ack().await,
            Step::Retry(why) => {
                tracing::warn!(reason = %why, "Transient failure; the event will be retried.");
                msg.ack_with(AckKind::Nak(Some(RETRY_DELAY))).await
            }
        };
        if let Err(e) = r {
            // The message is redelivered after ack_wait; the unified event's id makes
            // the re-publish a duplicate that JetStream drops.
            tracing::warn!(error = %e, "Ack failed.");
        }
    }

    async fn process(&self, msg: &jetstream::Message) -> Step {
        let env: RawEnvelope = match serde_json::from_slice(&msg.payload) {
            Ok(e) => e,
            Err(e) => {
                // Not ours to interpret; keep it visible but never block the stream on it.
                tracing::error!(error = %e, subject = %msg.subject, "Raw message is not an envelope; terminating it.");
                self.metrics
                    .failures
                    .with_label_values(&["unknown", "bad_envelope"])
                    .inc();
                let _ = msg.ack_with(AckKind::Term).await;
                return Step::Ack;
            }
        };
        let catalog = self.catalog.current();
        let Some(connector) = catalog.get(&env.connector).cloned() else {
            return self
                .dead_letter(
                    &env,
                    "unknown_connector",
                    format!("connector {:?} is not in the catalog", env.connector),
                )
                .await;
        };
        let env = match self.route(env).await {
            Ok(env) => env,
            Err(step) => return step,
        };
        let body = match self.claims.body(&env.claim).await {
            Ok(b) => b,
            Err(ClaimCheckError::NotFound(key)) => {
                return self
                    .dead_letter(
                        &env,
                        "claim_missing",
                        format!("claim-check object {key} does not exist"),
                    )
                    .await
            }
            Err(e @ ClaimCheckError::Corrupt { .. }) => {
                return self.dead_letter(&env, "claim_corrupt", e.to_string()).await
            }
            Err(e) => return Step::Retry(e.to_string()),
        };
        let mapped = self.mapper.map(&connector, &env, body).await;
        let event = match mapped {
            Ok(Mapped::Event(e)) => e,
            Ok(Mapped::Dropped) => {
                self.metrics.dropped.with_label_values(&[&connector.name]).inc();
                return Step::Ack;
            }
            Err(f) if f.reason == "engine_busy" => return Step::Retry(f.detail),
            Err(f) if f.time_limit => {
                let attempt = msg.info().map(|i| i.delivered.max(1) as u64).unwrap_or(1);
                if attempt < u64::from(self.timeout_attempts) {
                    self.metrics
                        .time_limit_retries
                        .with_label_values(&[&connector.name])
                        .inc();
                    return Step::Retry(format!(
                        "{} (attempt {attempt} of {}; tried again in case a busy CPU stopped it)",
                        f.detail, self.timeout_attempts
                    ));
                }
                let detail = format!("{} (on each of {attempt} attempts)", f.detail);
                return self.dead_letter(&env, f.reason, detail).await;
            }
            Err(f) => return self.dead_letter(&env, f.reason, f.detail).await,
        };
        // A mapping that produces the wrong shape is the connector author's bug: the
        // event waits in the dead letters for the fixed mapping, never reaches a tenant.
        let models = catalog.models();
        if models.contains(&event.event_type) {
            if let Err(errors) = models.validate(&event.event_type, &event.data) {
                let mut detail = format!(
                    "the {} mapping produced data that does not match the {} schema: {}",
                    connector.name,
                    event.event_type,
                    errors.join("; ")
                );
                detail.truncate(detail.floor_char_boundary(1000));
                return self.dead_letter(&env, "schema_violation", detail).await;
            }
        }
        let mut headers = async_nats::HeaderMap::new();
        let received = env.received_ms.to_string();
        for (name, value) in [
            (async_nats::header::NATS_MESSAGE_ID.as_ref(), event.id.as_str()),
            (HEADER_EVENT_TYPE, event.event_type.as_str()),
            (HEADER_TENANT, event.tenant_id.as_str()),
            (HEADER_RECEIVED_MS, received.as_str()),
        ] {
            // Checked, never `insert(&str)`, which panics on a line break (an envelope
            // written before the ingress refused such ids may still carry one).
            match value.parse::<async_nats::HeaderValue>() {
                Ok(v) => headers.insert(name, v),
                Err(_) => {
                    let detail = format!("the event's {name} cannot be sent as a NATS header (control characters)");
                    return self.dead_letter(&env, "invalid_header", detail).await;
                }
            }
        }
        let payload = serde_json::to_vec(&event).expect("a unified event serializes");
        let subject = self.names.unified_subject(&event.tenant_id);
        let published = match self.js.publish_with_headers(subject, headers, payload.into()).await {
            Ok(ack) => ack.into_future().await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = published {
            return Step::Retry(format!("publishing the unified event: {e}"));
        }
        // A closed set of labels: the catalog's unified types, else `pass_through` (a
        // provider's own event types are the provider's to invent, without bound).
        let type_label = if models.contains(&event.event_type) {
            event.event_type.as_str()
        } else {
            "pass_through"
        };
        self.metrics
            .normalized
            .with_label_values(&[&connector.name, type_label])
            .inc();
        let now_ms = switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc());
        self.metrics
            .queue_lag_seconds
            .with_label_values(&[&connector.name])
            .observe((now_ms - env.received_ms).max(0) as f64 / 1000.0);
        if let Some(occurred) = env.occurred_at.as_deref().and_then(parse_rfc3339_ms) {
            let lag = (now_ms - occurred).max(0);
            self.metrics
                .ingestion_lag_seconds
                .with_label_values(&[&connector.name])
                .observe(lag as f64 / 1000.0);
        }
        Step::Ack
    }

    /// The event's account and tenant as the registry has them now. An event whose
    /// routing key matched no account at the ingress is looked up again (the account
    /// may have been registered since: the replay of its dead letter). When the registry
    /// cannot be reached, a routed event goes on with what the ingress resolved.
    async fn route(&self, mut env: RawEnvelope) -> Result<RawEnvelope, Step> {
        if env.account_id.is_empty() {
            let external = env.external_account.clone().unwrap_or_default();
            return match self.registry.account_by_external(&env.connector, &external).await {
                Ok(Some(a)) => {
                    env.account_id = a.id.clone();
                    env.tenant_id = a.tenant_id.clone();
                    Ok(env)
                }
                Ok(None) => {
                    let detail = format!(
                        "no {} account is registered with external_id {external:?}; register it, then replay this dead letter",
                        env.connector
                    );
                    Err(self.dead_letter(&env, "unknown_account", detail).await)
                }
                Err(e) => Err(Step::Retry(format!("looking up the account: {e}"))),
            };
        }
        match self.registry.account(&env.account_id).await {
            Ok(Some(a)) => {
                env.tenant_id = a.tenant_id.clone();
                Ok(env)
            }
            Ok(None) => {
                let detail = format!(
                    "account {:?} is not registered (deleted since the event arrived?); register it, then replay this dead letter",
                    env.account_id
                );
                Err(self.dead_letter(&env, "unknown_account", detail).await)
            }
            Err(e) => {
                tracing::debug!(error = %e, "Registry unreachable; routing by the envelope.");
                Ok(env)
            }
        }
    }

    /// [`Self::dead_letter`] for a message whose envelope is read again here; one that
    /// is no envelope is terminated (counted), as in `process`.
    async fn dead_letter_message(&self, msg: &jetstream::Message, reason: &'static str, detail: String) -> Step {
        match serde_json::from_slice::<RawEnvelope>(&msg.payload) {
            Ok(env) => self.dead_letter(&env, reason, detail).await,
            Err(_) => {
                self.metrics
                    .failures
                    .with_label_values(&["unknown", "bad_envelope"])
                    .inc();
                let _ = msg.ack_with(AckKind::Term).await;
                Step::Ack
            }
        }
    }

    async fn dead_letter(&self, env: &RawEnvelope, reason: &'static str, detail: String) -> Step {
        tracing::warn!(connector = %env.connector, account_id = %env.account_id, reason, "Event dead-lettered.");
        match deadletter::publish(&self.js, &self.names, reason, detail, env).await {
            Ok(()) => {
                self.metrics.failures.with_label_values(&[&env.connector, reason]).inc();
                Step::Ack
            }
            Err(e) => Step::Retry(format!("publishing a dead letter: {e}")),
        }
    }
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(switchyard_core::timefmt::unix_millis(t))
}
