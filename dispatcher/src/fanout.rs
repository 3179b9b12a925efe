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

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::future::join_all;
use redis::aio::ConnectionManager;
use switchyard_core::consume::{Handler, Settle};
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::envelope::{HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT};
use switchyard_core::names::Names;
use switchyard_registry::Endpoint;

use crate::deliver::{Engine, Origin, Reason as DeadLetterReason};
use crate::filter::{FilterError, Filters, Verdict};
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

/// What became of one unified event; counted and settled in one place
/// ([`Fanned::label`], [`Fanned::settle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fanned {
    /// Every delivery reached its step: delivered, on the retry stream, or dead-lettered.
    FannedOut,
    /// No endpoint takes it: recorded on the undelivered stream.
    NoEndpoint,
    /// A step could not be made durable (or the endpoints looked up): it comes back
    /// for the endpoints it did not reach.
    Retry,
    /// It has no routing headers: no one can ever route it.
    Unroutable,
}

impl Fanned {
    /// The `outcome` label of `switchyard_dispatcher_events_total`; an unroutable event
    /// is not counted there.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Fanned::FannedOut => Some("fanned_out"),
            Fanned::NoEndpoint => Some("no_endpoint"),
            Fanned::Retry => Some("retry"),
            Fanned::Unroutable => None,
        }
    }

    /// Acked once every step is durable; handed back after `retry_delay` otherwise.
    pub fn settle(self, retry_delay: Duration) -> Settle {
        match self {
            Fanned::FannedOut | Fanned::NoEndpoint => Settle::Ack,
            Fanned::Retry => Settle::Nak(Some(retry_delay)),
            Fanned::Unroutable => Settle::Term,
        }
    }
}

/// A unified event's routing, from its headers.
#[derive(Debug, PartialEq, Eq)]
struct Routing {
    id: String,
    event_type: String,
    tenant: String,
    received_ms: Option<i64>,
}

impl Routing {
    /// `None` without an id, a type or a tenant. A re-delivered event carries its id
    /// apart from its message id.
    fn of(headers: Option<&HeaderMap>) -> Option<Self> {
        let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
        Some(Self {
            id: header(HEADER_EVENT_ID).or_else(|| header(async_nats::header::NATS_MESSAGE_ID.as_ref()))?,
            event_type: header(HEADER_EVENT_TYPE)?,
            tenant: header(HEADER_TENANT)?,
            received_ms: header(HEADER_RECEIVED_MS).and_then(|v| v.parse().ok()),
        })
    }
}

/// The filters' judgement of an event's endpoints.
struct Judged<'a> {
    kept: Vec<&'a Endpoint>,
    /// Endpoints whose filter could not judge it: their deliveries are dead-lettered.
    refused: Vec<(&'a Endpoint, FilterError)>,
}

impl Handler for Fanout {
    async fn handle(&self, msg: &jetstream::Message) -> Settle {
        let fanned = self.fan_out(msg).await;
        if let Some(label) = fanned.label() {
            self.engine.metrics.events.with_label_values(&[label]).inc();
        }
        fanned.settle(self.retry_delay)
    }
}

impl Fanout {
    /// Route the event, find and judge its endpoints, and take every delivery's first
    /// step (or record that no endpoint takes it).
    async fn fan_out(&self, msg: &jetstream::Message) -> Fanned {
        let Some(routing) = Routing::of(msg.headers.as_ref()) else {
            tracing::error!(subject = %msg.subject, "Unified event without routing headers; terminating it.");
            return Fanned::Unroutable;
        };
        let endpoints = match self.engine.registry.endpoints(&routing.tenant).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "Endpoint lookup failed; the event comes back.");
                return Fanned::Retry;
            }
        };
        let targets: Vec<&Endpoint> = endpoints.iter().filter(|e| e.wants(&routing.event_type)).collect();
        let Some(Judged { mut kept, refused }) = self.judge(&routing.tenant, &msg.payload, targets).await else {
            // The engine was busy with other evaluations: no fault of this event's,
            // and nothing of it was delivered yet; it comes back whole.
            return Fanned::Retry;
        };
        if kept.is_empty() && refused.is_empty() {
            let reason = if endpoints.iter().any(|e| e.enabled) {
                Reason::NoMatch
            } else {
                Reason::NoEndpoint
            };
            return self.record_undelivered(msg, &routing, reason).await;
        }
        let redelivered = msg.info().map(|i| i.delivered > 1).unwrap_or(false);
        if redelivered {
            let handled = self.handled(&routing.id, &kept).await;
            kept.retain(|ep| !handled.contains(&ep.id));
            if kept.is_empty() && refused.is_empty() {
                return Fanned::FannedOut;
            }
        }
        self.deliver_all(msg, &routing, &kept, &refused).await
    }

    /// Content filters need the event parsed: once, only if some endpoint has one.
    /// They run off the runtime thread, within the tenant's budget ([`Filters`]), all of
    /// this event's at once; nothing is delivered before every one is judged. `None`:
    /// one could not be evaluated now ([`Verdict::Later`]).
    async fn judge<'a>(&self, tenant: &str, payload: &[u8], targets: Vec<&'a Endpoint>) -> Option<Judged<'a>> {
        if !targets.iter().any(|e| e.filter.is_some()) {
            return Some(Judged {
                kept: targets,
                refused: Vec::new(),
            });
        }
        let event: Arc<serde_json::Value> = Arc::new(serde_json::from_slice(payload).unwrap_or_default());
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
        sort(targets, verdicts)
    }

    /// No endpoint takes it: recorded, so it can be re-delivered once one does.
    async fn record_undelivered(&self, msg: &jetstream::Message, routing: &Routing, reason: Reason) -> Fanned {
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
        let recorded = self
            .undelivered
            .record(
                &routing.tenant,
                &routing.id,
                seq,
                reason,
                msg.headers.as_ref(),
                msg.payload.clone(),
            )
            .await;
        match recorded {
            Ok(()) => Fanned::NoEndpoint,
            Err(e) => {
                tracing::warn!(error = %e, event_id = %routing.id, "Recording an event no endpoint takes failed; it comes back.");
                Fanned::Retry
            }
        }
    }

    /// Each kept endpoint's first attempt and each refused one's dead letter, all at
    /// once. The endpoints whose step is durable are remembered when others' is not.
    async fn deliver_all(
        &self,
        msg: &jetstream::Message,
        routing: &Routing,
        kept: &[&Endpoint],
        refused: &[(&Endpoint, FilterError)],
    ) -> Fanned {
        let job_for = |ep: &Endpoint| DeliveryJob {
            event_id: routing.id.clone(),
            event_type: routing.event_type.clone(),
            tenant_id: routing.tenant.clone(),
            endpoint_id: ep.id.clone(),
            received_ms: routing.received_ms,
            attempt: 1,
            not_before_ms: 0,
            history: Vec::new(),
            body: msg.payload.clone(),
        };
        let attempts = kept
            .iter()
            .map(|ep| self.engine.deliver(job_for(ep), Some(ep), Origin::Fresh));
        let dead = refused.iter().map(|(ep, why)| {
            let job = job_for(ep);
            async move {
                self.engine
                    .dead_letter(&job, DeadLetterReason::FilterError, why.to_string())
                    .await
            }
        });
        let (results, dead_results) = futures::join!(join_all(attempts), join_all(dead));
        let steps = kept.iter().copied().zip(results.iter().map(|r| r.is_ok())).chain(
            refused
                .iter()
                .map(|(ep, _)| *ep)
                .zip(dead_results.iter().map(|r| r.is_ok())),
        );
        let done: Vec<&str> = steps.filter(|(_, ok)| *ok).map(|(ep, _)| ep.id.as_str()).collect();
        if done.len() == kept.len() + refused.len() {
            return Fanned::FannedOut;
        }
        for e in results
            .iter()
            .chain(dead_results.iter())
            .filter_map(|r| r.as_ref().err())
        {
            tracing::warn!(error = %e, event_id = %routing.id, "A delivery's next step failed; the event comes back for the endpoints it did not reach.");
        }
        self.remember(&routing.id, &done).await;
        Fanned::Retry
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

/// Sort `targets` by their filters' verdicts. `None`: one is [`Verdict::Later`].
fn sort(targets: Vec<&Endpoint>, verdicts: Vec<Verdict>) -> Option<Judged<'_>> {
    let mut judged = Judged {
        kept: Vec::with_capacity(targets.len()),
        refused: Vec::new(),
    };
    for (ep, verdict) in targets.into_iter().zip(verdicts) {
        match verdict {
            Verdict::Pass => judged.kept.push(ep),
            Verdict::Skip => {}
            Verdict::Later => return None,
            Verdict::Error(why) => judged.refused.push((ep, why)),
        }
    }
    Some(judged)
}

#[cfg(test)]
mod tests {
    use switchyard_core::secret::Secret;

    use super::*;

    #[test]
    fn outcomes_are_counted_and_settled_in_one_place() {
        let delay = Duration::from_secs(3);
        assert_eq!(Fanned::FannedOut.settle(delay), Settle::Ack);
        assert_eq!(Fanned::NoEndpoint.settle(delay), Settle::Ack);
        assert_eq!(Fanned::Retry.settle(delay), Settle::Nak(Some(delay)));
        assert_eq!(Fanned::Unroutable.settle(delay), Settle::Term);
        assert_eq!(Fanned::FannedOut.label(), Some("fanned_out"));
        assert_eq!(Fanned::NoEndpoint.label(), Some("no_endpoint"));
        assert_eq!(Fanned::Retry.label(), Some("retry"));
        assert_eq!(Fanned::Unroutable.label(), None);
    }

    #[test]
    fn routing_needs_an_id_a_type_and_a_tenant() {
        let mut h = HeaderMap::new();
        h.insert(async_nats::header::NATS_MESSAGE_ID, "u1:redeliver:4");
        h.insert(HEADER_EVENT_TYPE, "payments.invoice.paid");
        assert_eq!(Routing::of(Some(&h)), None, "no tenant");
        h.insert(HEADER_TENANT, "t1");
        h.insert(HEADER_RECEIVED_MS, "17");
        let r = Routing::of(Some(&h)).unwrap();
        assert_eq!((r.id.as_str(), r.received_ms), ("u1:redeliver:4", Some(17)));
        // A re-delivered event's own id wins over its message id.
        h.insert(HEADER_EVENT_ID, "u1");
        assert_eq!(Routing::of(Some(&h)).unwrap().id, "u1");
        assert_eq!(Routing::of(None), None);
    }

    #[test]
    fn verdicts_keep_skip_refuse_or_hand_the_event_back() {
        let ep = |id: &str| {
            Endpoint::new(
                id,
                "t1",
                "https://example.com",
                vec!["*".into()],
                Secret::new("s"),
                "2026-01-01T00:00:00Z",
            )
        };
        let (a, b, c) = (ep("a"), ep("b"), ep("c"));
        let broken = FilterError::NotBoolean("a number");
        let judged = sort(
            vec![&a, &b, &c],
            vec![Verdict::Pass, Verdict::Skip, Verdict::Error(broken.clone())],
        )
        .unwrap();
        assert_eq!(judged.kept.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(judged.refused.len(), 1);
        assert_eq!((judged.refused[0].0.id.as_str(), &judged.refused[0].1), ("c", &broken));
        assert!(sort(vec![&a, &b], vec![Verdict::Pass, Verdict::Later]).is_none());
    }
}
