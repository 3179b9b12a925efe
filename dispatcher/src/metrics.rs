//! The dispatcher's metrics, defined once.
//!
//! # Labels
//! Every label takes a closed set of values, except `tenant`, which has as many as
//! there are tenants. So `tenant` is opt-in (`dispatcher.per_tenant_metrics`): off, it
//! is empty on every series (Prometheus drops an empty label, so a `sum by (tenant)`
//! is one series for the whole dispatcher); on, it is the tenant's id, and a deleted
//! tenant's series are removed at the next [`Metrics::keep_tenants`] (the watch loop's
//! walk of the tenants). Endpoints are never a label: there are too many, and their
//! attempts are in the attempts log (`GET …/endpoints/{id}/attempts`).
//!
//! Success rate (the runbook's line: outbound success > 99.5 %) is
//! `sum by (tenant) (rate(switchyard_dispatcher_attempts_total{outcome="success"}[5m]))
//! / sum by (tenant) (rate(switchyard_dispatcher_attempts_total[5m]))`.

use std::collections::{HashMap, HashSet};

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use switchyard_core::telemetry::LATENCY_BUCKETS;

#[derive(Clone)]
pub struct Metrics {
    /// Delivery attempts by `tenant` and `outcome` (success, http_error, timeout,
    /// connect_error, refused_destination): count through [`Metrics::attempt`].
    attempts: IntCounterVec,
    /// Deliveries by `tenant` and `outcome` (delivered, retry_scheduled, deferred,
    /// dead_lettered): count through [`Metrics::delivery`].
    deliveries: IntCounterVec,
    /// Whether `tenant` carries the tenant's id.
    per_tenant: bool,
    /// Unified events by `outcome` (fanned_out, no_endpoint: recorded as undelivered,
    /// retry).
    pub events: IntCounterVec,
    pub attempt_seconds: Histogram,
    /// Received at the ingress → delivered.
    pub end_to_end_seconds: Histogram,
    pub consumer_pending: IntGauge,
    /// Retries waiting for their time or for a dispatcher.
    pub retries_pending: IntGauge,
    /// Dead letters by `reason`.
    pub dead_letters: IntCounterVec,
    /// Endpoints disabled by the dispatcher, by `reason` (gone, failing).
    pub endpoints_disabled: IntCounterVec,
    /// Attempt records that could not be written to the attempts log.
    pub attempt_log_dropped: IntCounter,
    /// Dead letters waiting in the stream, by `stage` (normalizer, dispatcher).
    pub dead_letters_pending: IntGaugeVec,
    /// Endpoints disabled right now, by `tenant` (tenants with none are not listed):
    /// set through [`Metrics::set_disabled_endpoints`].
    endpoints_disabled_now: IntGaugeVec,
    /// Events no endpoint received, waiting on the undelivered stream (all tenants).
    pub undelivered_pending: IntGauge,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn histogram(name: &str, help: &str) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())).expect("valid metric")
}

impl Metrics {
    pub fn new(registry: &Registry, per_tenant: bool) -> Self {
        let m = Self {
            per_tenant,
            attempts: counter_vec(
                "switchyard_dispatcher_attempts_total",
                "Delivery attempts.",
                &["tenant", "outcome"],
            ),
            deliveries: counter_vec(
                "switchyard_dispatcher_deliveries_total",
                "Deliveries (one unified event to one endpoint) by what became of them.",
                &["tenant", "outcome"],
            ),
            events: counter_vec(
                "switchyard_dispatcher_events_total",
                "Unified events handled.",
                &["outcome"],
            ),
            attempt_seconds: histogram("switchyard_dispatcher_attempt_seconds", "One delivery attempt."),
            end_to_end_seconds: histogram(
                "switchyard_dispatcher_end_to_end_seconds",
                "Received at the ingress to delivered.",
            ),
            consumer_pending: IntGauge::new(
                "switchyard_dispatcher_consumer_pending_messages",
                "Unified events waiting for a dispatcher.",
            )
            .expect("valid metric"),
            retries_pending: IntGauge::new(
                "switchyard_dispatcher_retries_pending",
                "Deliveries waiting for a retry.",
            )
            .expect("valid metric"),
            dead_letters: counter_vec(
                "switchyard_dispatcher_dead_letters_total",
                "Deliveries dead-lettered, by reason.",
                &["reason"],
            ),
            endpoints_disabled: counter_vec(
                "switchyard_dispatcher_endpoints_disabled_total",
                "Endpoints the dispatcher disabled, by reason.",
                &["reason"],
            ),
            attempt_log_dropped: IntCounter::new(
                "switchyard_dispatcher_attempt_log_dropped_total",
                "Attempt records not written to the attempts log (Redis slow or down).",
            )
            .expect("valid metric"),
            dead_letters_pending: IntGaugeVec::new(
                Opts::new(
                    "switchyard_dispatcher_dead_letters_pending_messages",
                    "Dead letters waiting for an operator, by stage.",
                ),
                &["stage"],
            )
            .expect("valid metric"),
            endpoints_disabled_now: IntGaugeVec::new(
                Opts::new(
                    "switchyard_dispatcher_endpoints_disabled",
                    "Endpoints disabled right now, by tenant.",
                ),
                &["tenant"],
            )
            .expect("valid metric"),
            undelivered_pending: IntGauge::new(
                "switchyard_dispatcher_undelivered_pending_messages",
                "Events no endpoint received, recorded for re-delivery (all tenants).",
            )
            .expect("valid metric"),
        };
        for c in [
            Box::new(m.attempts.clone()) as Box<dyn Collector>,
            Box::new(m.deliveries.clone()),
            Box::new(m.events.clone()),
            Box::new(m.attempt_seconds.clone()),
            Box::new(m.end_to_end_seconds.clone()),
            Box::new(m.consumer_pending.clone()),
            Box::new(m.retries_pending.clone()),
            Box::new(m.dead_letters.clone()),
            Box::new(m.endpoints_disabled.clone()),
            Box::new(m.attempt_log_dropped.clone()),
            Box::new(m.dead_letters_pending.clone()),
            Box::new(m.endpoints_disabled_now.clone()),
            Box::new(m.undelivered_pending.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        m
    }

    /// The `tenant` label's value for `tenant_id`.
    fn tenant<'a>(&self, tenant_id: &'a str) -> &'a str {
        if self.per_tenant {
            tenant_id
        } else {
            ""
        }
    }

    /// One delivery attempt of `tenant_id`'s, by its outcome class.
    pub fn attempt(&self, tenant_id: &str, outcome: &str) {
        self.attempts
            .with_label_values(&[self.tenant(tenant_id), outcome])
            .inc();
    }

    /// What became of one delivery of `tenant_id`'s.
    pub fn delivery(&self, tenant_id: &str, outcome: &str) {
        self.deliveries
            .with_label_values(&[self.tenant(tenant_id), outcome])
            .inc();
    }

    /// The endpoints disabled right now, `(tenant, count)` for every tenant walked;
    /// tenants with none are not listed.
    pub fn set_disabled_endpoints(&self, counts: &[(String, i64)]) {
        self.endpoints_disabled_now.reset();
        let mut total = 0;
        for (tenant, n) in counts.iter().filter(|(_, n)| *n > 0) {
            if self.per_tenant {
                self.endpoints_disabled_now.with_label_values(&[tenant]).set(*n);
            }
            total += n;
        }
        if !self.per_tenant && total > 0 {
            self.endpoints_disabled_now.with_label_values(&[""]).set(total);
        }
    }

    /// Remove the per-tenant series of every tenant not in `existing` (deleted ones).
    pub fn keep_tenants(&self, existing: &HashSet<String>) {
        if !self.per_tenant {
            return;
        }
        for vec in [&self.attempts, &self.deliveries] {
            // Exported label pairs come sorted by name, not in declaration
            // order: find the tenant by name and remove by name.
            let gone: Vec<Vec<(String, String)>> = vec
                .collect()
                .iter()
                .flat_map(|family| family.get_metric())
                .map(|m| {
                    m.get_label()
                        .iter()
                        .map(|l| (l.name().to_string(), l.value().to_string()))
                        .collect::<Vec<_>>()
                })
                .filter(|labels| {
                    labels
                        .iter()
                        .any(|(name, value)| name == "tenant" && !existing.contains(value))
                })
                .collect();
            for labels in gone {
                let by_name: HashMap<&str, &str> = labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let _ = vec.remove(&by_name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exported(registry: &Registry) -> String {
        let mut out = Vec::new();
        use prometheus::Encoder;
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn without_per_tenant_labels_every_tenant_is_one_series() {
        let registry = Registry::new();
        let m = Metrics::new(&registry, false);
        m.attempt("t1", "success");
        m.attempt("t2", "success");
        m.delivery("t1", "delivered");
        m.set_disabled_endpoints(&[("t1".into(), 2), ("t2".into(), 1), ("t3".into(), 0)]);
        let text = exported(&registry);
        assert!(
            text.contains("switchyard_dispatcher_attempts_total{outcome=\"success\",tenant=\"\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("switchyard_dispatcher_endpoints_disabled{tenant=\"\"} 3"),
            "{text}"
        );
        assert!(!text.contains("t1"), "no tenant id is exported: {text}");
    }

    #[test]
    fn per_tenant_series_of_a_deleted_tenant_are_removed() {
        let registry = Registry::new();
        let m = Metrics::new(&registry, true);
        m.attempt("t1", "success");
        m.attempt("t2", "http_error");
        m.delivery("t2", "dead_lettered");
        m.keep_tenants(&HashSet::from(["t1".to_string()]));
        let text = exported(&registry);
        assert!(text.contains("tenant=\"t1\""), "{text}");
        assert!(!text.contains("tenant=\"t2\""), "t2 was deleted: {text}");
    }
}
