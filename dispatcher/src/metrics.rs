//! The dispatcher's metrics, defined once.
//!
//! Per-tenant success rate (the runbook's line: outbound success > 99.5 %) is
//! `sum by (tenant) (rate(switchyard_dispatcher_attempts_total{outcome="success"}[5m]))
//! / sum by (tenant) (rate(switchyard_dispatcher_attempts_total[5m]))`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use switchyard_core::telemetry::LATENCY_BUCKETS;

#[derive(Clone)]
pub struct Metrics {
    /// Delivery attempts by `tenant` and `outcome` (success, http_error, timeout,
    /// connect_error, refused_destination).
    pub attempts: IntCounterVec,
    /// Deliveries by `tenant`, `endpoint` and `outcome` (delivered, retry_scheduled,
    /// deferred, dead_lettered).
    pub deliveries: IntCounterVec,
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
    /// Endpoints disabled right now, by `tenant` (tenants with none are not listed).
    pub endpoints_disabled_now: IntGaugeVec,
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
    pub fn new(registry: &Registry) -> Self {
        let m = Self {
            attempts: counter_vec(
                "switchyard_dispatcher_attempts_total",
                "Delivery attempts.",
                &["tenant", "outcome"],
            ),
            deliveries: counter_vec(
                "switchyard_dispatcher_deliveries_total",
                "Deliveries (one unified event to one endpoint) by what became of them.",
                &["tenant", "endpoint", "outcome"],
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
                "switchyard_attempt_log_dropped_total",
                "Attempt records not written to the attempts log (Redis slow or down).",
            )
            .expect("valid metric"),
            dead_letters_pending: IntGaugeVec::new(
                Opts::new(
                    "switchyard_dead_letters_pending_messages",
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
            Box::new(m.attempts.clone()) as Box<dyn prometheus::core::Collector>,
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
}
