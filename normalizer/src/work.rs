//! The worker: normalize one raw envelope, make its outcome durable, and say how to
//! settle it. The pull loop around it (batches, bounded concurrency, drain on shutdown)
//! is the one every consumer shares ([`switchyard_core::consume`]).
//!
//! # The ack rule
//! A raw message is acked only after its outcome is durable: its unified event has a
//! PubAck, or its dead letter has one, or it was dropped by the connector's declared
//! policy (counted). A transient failure (S3 or NATS unavailable) naks with a delay,
//! so the message comes back ([`crate::outcome`]). On shutdown the loop stops pulling,
//! finishes what it holds, and returns; anything not finished is redelivered after
//! `ack_wait`.
//!
//! # The steps of one event
//! [`Worker::process`]: read the envelope → find its connector → route it to its
//! account ([`Worker::route`]) → read its claim-check → map it → check the mapping's
//! output against its schema ([`schema_violation`]) → publish the unified event with its
//! routing headers ([`unified_headers`]) → count it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_nats::jetstream;
use futures::FutureExt;
use switchyard_connectors::apply;
use switchyard_connectors::live::LiveCatalog;
use switchyard_connectors::unified::UnifiedModels as Models;
use switchyard_core::consume::{Handler, Settle};
use switchyard_core::envelope::{
    MappingFallback, RawEnvelope, UnifiedEvent, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT,
};
use switchyard_core::names::Names;
use switchyard_core::publish;
use switchyard_registry::RegistryCache;

use crate::claims::ClaimReader;
use crate::deadletter;
use crate::map::Mapped;
use crate::mapper::Mapper;
use crate::metrics::Metrics;
use crate::outcome::{self, Next, Outcome, Transient, BAD_ENVELOPE};
use crate::reason::Reason;

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

impl Handler for Worker {
    async fn handle(&self, msg: &jetstream::Message) -> Settle {
        let outcome = self.outcome(msg).await;
        if let Outcome::Retry(why) = &outcome {
            tracing::warn!(reason = %why, "Transient failure; the event will be retried.");
        }
        outcome.settle()
    }
}

impl Worker {
    /// What becomes of `msg`, made durable. No input may take the worker down: a panic
    /// in handling is this event's dead letter, not a redelivery loop.
    async fn outcome(&self, msg: &jetstream::Message) -> Outcome {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        if delivered >= i64::from(self.max_deliveries) {
            // Every earlier delivery crashed or hung before its outcome was acked.
            let detail = format!(
                "delivered {delivered} times without an outcome (normalizer.max_deliveries); its handling crashed or never finished"
            );
            return self.dead_letter_message(msg, Reason::RedeliveryLimit, detail).await;
        }
        match AssertUnwindSafe(self.process(msg)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "Handling a raw event panicked; dead-lettering it.");
                let detail = format!("the normalizer failed on this event: {what}");
                self.dead_letter_message(msg, Reason::InternalError, detail).await
            }
        }
    }

    /// The steps of one event (see the module's doc).
    async fn process(&self, msg: &jetstream::Message) -> Outcome {
        let env: RawEnvelope = match serde_json::from_slice(&msg.payload) {
            Ok(e) => e,
            Err(e) => {
                // Not ours to interpret; keep it visible but never block the stream on it.
                tracing::error!(error = %e, subject = %msg.subject, "Raw message is not an envelope; terminating it.");
                return self.not_envelope();
            }
        };
        let catalog = self.catalog.current();
        let Some(connector) = catalog.get(&env.connector).cloned() else {
            let next = outcome::after_unknown_connector(&env.connector, attempt(msg), self.max_deliveries);
            return self.follow(&env, next).await;
        };
        let env = match self.route(env).await {
            Ok(env) => env,
            Err(outcome) => return outcome,
        };
        let body = match self.claims.body(&env.claim).await {
            Ok(b) => b,
            Err(e) => return self.follow(&env, outcome::after_claim(e)).await,
        };
        let mut events = match self.mapper.map(&connector, &env, body.clone()).await {
            Ok(Mapped::Event(e)) => vec![*e],
            Ok(Mapped::Many(events)) => events,
            Ok(Mapped::Dropped) => {
                self.metrics.dropped.with_label_values(&[&connector.name]).inc();
                return Outcome::Dropped;
            }
            Err(f) => {
                let attempt = attempt(msg);
                if f.is_time_limit() && attempt < u64::from(self.timeout_attempts) {
                    self.metrics
                        .time_limit_retries
                        .with_label_values(&[&connector.name])
                        .inc();
                }
                return self
                    .follow(&env, outcome::after_mapping(f, attempt, self.timeout_attempts))
                    .await;
            }
        };
        // A mapping whose output does not match its schema met a provider value its
        // author did not expect. The provider event is intact, so the tenant gets it as
        // the provider's own type, with why (once, however many events the mapping
        // gave); the operator sees the count and fixes the mapping. Only an event that
        // cannot even be read again is dead-lettered.
        let models = catalog.models();
        match events.iter().find_map(|e| schema_violation(models, &connector.name, e)) {
            None => {
                for event in &mut events {
                    event.schema_version = models.version(&event.event_type);
                }
            }
            Some(detail) => match apply::event_of(&connector, &body, &env.content_type, env.item) {
                Ok(original) => {
                    events.truncate(1);
                    let event = &mut events[0];
                    self.metrics
                        .mapping_fallbacks
                        .with_label_values(&[&connector.name, type_label(models, &event.event_type)])
                        .inc();
                    event.mapping_error = Some(MappingFallback {
                        unified_type: std::mem::take(&mut event.event_type),
                        reason: Reason::SchemaViolation.as_str().to_string(),
                        detail,
                    });
                    event.event_type = apply::pass_through_type(&connector.name, &env.event_type);
                    event.data = original;
                }
                Err(_) => return self.dead_letter(&env, Reason::SchemaViolation, detail).await,
            },
        }
        // Every event is made ready before the first is published: one that cannot be
        // sent dead-letters the provider event before any of its events went out.
        let mut ready = Vec::with_capacity(events.len());
        for event in &events {
            let headers = match unified_headers(event, env.received_ms) {
                Ok(h) => h,
                Err(name) => {
                    let detail = format!("the event's {name} cannot be sent as a NATS header (control characters)");
                    return self.dead_letter(&env, Reason::InvalidHeader, detail).await;
                }
            };
            let payload = serde_json::to_vec(event).expect("a unified event serializes");
            ready.push((self.names.unified_subject(&event.tenant_id), headers, payload));
        }
        // In order; a failure retries the provider event, whose events already
        // published go again under the same ids and are dropped as duplicates.
        for (subject, headers, payload) in ready {
            if let Err(e) = publish::durably(&self.js, subject, headers, payload.into()).await {
                return Outcome::Retry(Transient::Publish(e));
            }
        }
        for event in &events {
            self.count_normalized(models, &connector.name, &env, event);
        }
        Outcome::Published
    }

    /// Take the step a decision of [`crate::outcome`] calls for.
    async fn follow(&self, env: &RawEnvelope, next: Next) -> Outcome {
        match next {
            Next::Retry(why) => Outcome::Retry(why),
            Next::DeadLetter(reason, detail) => self.dead_letter(env, reason, detail).await,
        }
    }

    fn count_normalized(&self, models: &Models, connector: &str, env: &RawEnvelope, event: &UnifiedEvent) {
        self.metrics
            .normalized
            .with_label_values(&[connector, type_label(models, &event.event_type)])
            .inc();
        let now_ms = switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc());
        self.metrics
            .queue_lag_seconds
            .with_label_values(&[connector])
            .observe((now_ms - env.received_ms).max(0) as f64 / 1000.0);
        if let Some(occurred) = env.occurred_at.map(switchyard_core::timefmt::unix_millis) {
            let lag = (now_ms - occurred).max(0);
            self.metrics
                .ingestion_lag_seconds
                .with_label_values(&[connector])
                .observe(lag as f64 / 1000.0);
        }
    }

    fn not_envelope(&self) -> Outcome {
        self.metrics
            .failures
            .with_label_values(&["unknown", BAD_ENVELOPE])
            .inc();
        Outcome::NotEnvelope
    }

    /// The event's account and tenant as the registry has them now. An event whose
    /// routing key matched no account at the ingress is looked up again (the account
    /// may have been registered since: the replay of its dead letter). When the registry
    /// cannot be reached, a routed event goes on with what the ingress resolved.
    async fn route(&self, mut env: RawEnvelope) -> Result<RawEnvelope, Outcome> {
        let Some(account_id) = env.account_id.clone() else {
            let external = env.external_account.clone().unwrap_or_default();
            return match self.registry.account_by_external(&env.connector, &external).await {
                Ok(Some(a)) => {
                    env.set_owner(&a.id, &a.tenant_id);
                    Ok(env)
                }
                Ok(None) => {
                    let detail = format!(
                        "no {} account is registered with external_id {external:?}; register it, then replay this dead letter",
                        env.connector
                    );
                    Err(self.dead_letter(&env, Reason::UnknownAccount, detail).await)
                }
                Err(e) => Err(Outcome::Retry(Transient::Registry(e))),
            };
        };
        match self.registry.account(&account_id).await {
            Ok(Some(a)) => {
                env.tenant_id = Some(a.tenant_id.clone());
                Ok(env)
            }
            Ok(None) => {
                let detail = format!(
                    "account {account_id:?} is not registered (deleted since the event arrived?); register it, then replay this dead letter"
                );
                Err(self.dead_letter(&env, Reason::UnknownAccount, detail).await)
            }
            Err(e) => {
                tracing::debug!(error = %e, "Registry unreachable; routing by the envelope.");
                Ok(env)
            }
        }
    }

    /// [`Self::dead_letter`] for a message whose envelope is read again here; one that
    /// is no envelope is terminated (counted), as in `process`.
    async fn dead_letter_message(&self, msg: &jetstream::Message, reason: Reason, detail: String) -> Outcome {
        match serde_json::from_slice::<RawEnvelope>(&msg.payload) {
            Ok(env) => self.dead_letter(&env, reason, detail).await,
            Err(_) => self.not_envelope(),
        }
    }

    async fn dead_letter(&self, env: &RawEnvelope, reason: Reason, detail: String) -> Outcome {
        let label = reason.as_str();
        tracing::warn!(connector = %env.connector, account_id = env.account_id.as_deref().unwrap_or_default(), reason = label, "Event dead-lettered.");
        match deadletter::publish(&self.js, &self.names, reason, detail, env).await {
            Ok(()) => {
                self.metrics.failures.with_label_values(&[&env.connector, label]).inc();
                Outcome::DeadLettered
            }
            Err(e) => Outcome::Retry(Transient::DeadLetter(e)),
        }
    }
}

/// Which delivery of `msg` this is (1 for the first).
fn attempt(msg: &jetstream::Message) -> u64 {
    msg.info().map(|i| i.delivered.max(1) as u64).unwrap_or(1)
}

/// Why `event`'s data does not match its unified type's schema, at most 1000 bytes of
/// it; `None` when it does (or the type is a provider's own, without a schema).
fn schema_violation(models: &Models, connector: &str, event: &UnifiedEvent) -> Option<String> {
    if !models.contains(&event.event_type) {
        return None;
    }
    let errors = models.validate(&event.event_type, &event.data).err()?;
    let mut detail = format!(
        "the {connector} mapping produced data that does not match the {} schema: {}",
        event.event_type,
        errors.join("; ")
    );
    detail.truncate(detail.floor_char_boundary(1000));
    Some(detail)
}

/// The unified event's routing headers: its id (the duplicate window's key), type,
/// tenant and received time. `Err(name)`: that value cannot be a header.
fn unified_headers(event: &UnifiedEvent, received_ms: i64) -> Result<async_nats::HeaderMap, &'static str> {
    let mut headers = async_nats::HeaderMap::new();
    let received = received_ms.to_string();
    for (name, value) in [
        (async_nats::header::NATS_MESSAGE_ID.as_ref(), event.id.as_str()),
        (HEADER_EVENT_TYPE, event.event_type.as_str()),
        (HEADER_TENANT, event.tenant_id.as_str()),
        (HEADER_RECEIVED_MS, received.as_str()),
    ] {
        // Checked, never `insert(&str)`, which panics on a line break (an envelope
        // written before the ingress refused such ids may still carry one).
        let value = value.parse::<async_nats::HeaderValue>().map_err(|_| name)?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// A closed set of labels: the catalog's unified types, else `pass_through` (a
/// provider's own event types are the provider's to invent, without bound).
fn type_label<'a>(models: &Models, event_type: &'a str) -> &'a str {
    if models.contains(event_type) {
        event_type
    } else {
        "pass_through"
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use switchyard_connectors::Catalog;

    use super::*;

    fn catalog() -> Catalog {
        Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog")).unwrap()
    }

    fn event(event_type: &str, data: serde_json::Value) -> UnifiedEvent {
        UnifiedEvent {
            id: "u1".into(),
            event_type: event_type.into(),
            schema_version: None,
            tenant_id: "t1".into(),
            account_id: "a1".into(),
            connector: "stripe".into(),
            occurred_at: "2023-11-14T22:13:20Z".into(),
            received_at: "2023-11-14T22:13:21Z".into(),
            data,
            mapping_error: None,
        }
    }

    #[test]
    fn headers_carry_the_routing_and_refuse_a_line_break() {
        let e = event("stripe.payout.paid", serde_json::json!({}));
        let h = unified_headers(&e, 1234).unwrap();
        assert_eq!(h.get(HEADER_TENANT).unwrap().as_str(), "t1");
        assert_eq!(h.get(HEADER_RECEIVED_MS).unwrap().as_str(), "1234");
        assert_eq!(h.get(async_nats::header::NATS_MESSAGE_ID).unwrap().as_str(), "u1");
        let mut bad = e.clone();
        bad.tenant_id = "t\n1".into();
        assert_eq!(unified_headers(&bad, 1234).unwrap_err(), HEADER_TENANT);
    }

    #[test]
    fn only_unified_types_are_checked_and_labelled() {
        let catalog = catalog();
        let models = catalog.models();
        let passing = event("stripe.payout.paid", serde_json::json!({"anything": 1}));
        assert_eq!(schema_violation(models, "stripe", &passing), None);
        assert_eq!(type_label(models, &passing.event_type), "pass_through");
        let wrong = event("payments.invoice.paid", serde_json::json!({"invoice": "not an object"}));
        let detail = schema_violation(models, "stripe", &wrong).expect("a violation");
        assert!(
            detail.starts_with("the stripe mapping produced data that does not match"),
            "{detail}"
        );
        assert!(detail.len() <= 1000);
        assert_eq!(type_label(models, &wrong.event_type), "payments.invoice.paid");
    }
}
