//! The dispatcher's metrics, defined once.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use switchyard_plumbing::telemetry::LATENCY_BUCKETS;

#[derive(Clone)]
pub struct Metrics {
    /// Delivery attempts by `outcome` (success, http_error, timeout, connect_error).
    pub attempts: IntCounterVec,
    /// Unified events by `outcome` (delivered, no_endpoint, retry).
    pub events: IntCounterVec,
    pub attempt_seconds: Histogram,
    /// Received at the ingress → delivered.
    pub end_to_end_seconds: Histogram,
    pub consumer_pending: IntGauge,
}

impl Metrics {
    pub fn new(registry: &Registry) -> Self {
        let m = Self {
            attempts: IntCounterVec::new(
                Opts::new("switchyard_dispatcher_attempts_total", "Delivery attempts."),
                &["outcome"],
            )
            .expect("valid metric"),
            events: IntCounterVec::new(
                Opts::new("switchyard_dispatcher_events_total", "Unified events handled."),
                &["outcome"],
            )
            .expect("valid metric"),
            attempt_seconds: Histogram::with_opts(
                HistogramOpts::new("switchyard_dispatcher_attempt_seconds", "One delivery attempt.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            end_to_end_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "switchyard_dispatcher_end_to_end_seconds",
                    "Received at the ingress to delivered.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            consumer_pending: IntGauge::new(
                "switchyard_dispatcher_consumer_pending_messages",
                "Unified events waiting for a dispatcher.",
            )
            .expect("valid metric"),
        };
        for c in [
            Box::new(m.attempts.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.events.clone()),
            Box::new(m.attempt_seconds.clone()),
            Box::new(m.end_to_end_seconds.clone()),
            Box::new(m.consumer_pending.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        m
    }
}
