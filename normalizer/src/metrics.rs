//! The normalizer's metrics, defined once.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use switchyard_core::telemetry::LATENCY_BUCKETS;

#[derive(Clone)]
pub struct Metrics {
    /// Unified events published, by `connector` and `type`.
    pub normalized: IntCounterVec,
    /// Events dead-lettered, by `connector` and `reason`.
    pub failures: IntCounterVec,
    /// Provider events with no mapping under a `drop` policy, by `connector`.
    pub dropped: IntCounterVec,
    /// Events delivered as the provider's own type because the mapped output did not
    /// match its schema, by connector and the unified type it was for.
    pub mapping_fallbacks: IntCounterVec,
    pub mapping_seconds: Histogram,
    /// Provider event time → normalized, by `connector` (where the provider gives a time).
    pub ingestion_lag_seconds: HistogramVec,
    /// Received at the ingress → normalized: the pipeline's own lag, without the
    /// provider's delay.
    pub queue_lag_seconds: HistogramVec,
    /// Messages of the raw stream not yet delivered to a normalizer.
    pub consumer_pending: IntGauge,
    /// Claim-check objects fetched from S3 (a segment serves many events).
    pub claim_fetches: IntCounterVec,
    /// Events whose mapping its time limit stopped, offered again, by `connector`.
    pub time_limit_retries: IntCounterVec,
    /// Events mapped off the runtime thread, by `reason` (large, unbounded, slow).
    pub offloaded: IntCounterVec,
}

impl Metrics {
    pub fn new(registry: &Registry) -> Self {
        let m = Self {
            normalized: IntCounterVec::new(
                Opts::new("switchyard_normalizer_events_total", "Unified events published."),
                &["connector", "type"],
            )
            .expect("valid metric"),
            failures: IntCounterVec::new(
                Opts::new(
                    "switchyard_normalizer_failures_total",
                    "Events dead-lettered by the normalizer.",
                ),
                &["connector", "reason"],
            )
            .expect("valid metric"),
            dropped: IntCounterVec::new(
                Opts::new(
                    "switchyard_normalizer_dropped_total",
                    "Provider events without a mapping, dropped by the connector's policy.",
                ),
                &["connector"],
            )
            .expect("valid metric"),
            mapping_fallbacks: IntCounterVec::new(
                Opts::new(
                    "switchyard_normalizer_mapping_fallbacks_total",
                    "Events delivered as the provider's own type, with mapping_error, because the mapped output did not match its schema.",
                ),
                &["connector", "type"],
            )
            .expect("valid metric"),
            mapping_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "switchyard_normalizer_mapping_seconds",
                    "JSONata mapping evaluation time.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            ingestion_lag_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "switchyard_normalizer_ingestion_lag_seconds",
                    "Provider event time to normalized.",
                )
                .buckets(vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
                &["connector"],
            )
            .expect("valid metric"),
            queue_lag_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "switchyard_normalizer_queue_lag_seconds",
                    "Received at the ingress to normalized.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["connector"],
            )
            .expect("valid metric"),
            consumer_pending: IntGauge::new(
                "switchyard_normalizer_consumer_pending_messages",
                "Raw envelopes waiting for a normalizer.",
            )
            .expect("valid metric"),
            claim_fetches: IntCounterVec::new(
                Opts::new(
                    "switchyard_normalizer_claim_fetches_total",
                    "Claim-check segment GETs, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            time_limit_retries: IntCounterVec::new(
                Opts::new(
                    "switchyard_normalizer_time_limit_retries_total",
                    "Events whose mapping hit its time limit, offered again before any dead letter.",
                ),
                &["connector"],
            )
            .expect("valid metric"),
            offloaded: IntCounterVec::new(
                Opts::new(
                    "switchyard_normalizer_offloaded_total",
                    "Events mapped on the mapping threads rather than the runtime thread, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
        };
        for reason in Offloaded::ALL {
            m.offloaded.with_label_values(&[reason.as_str()]);
        }
        for c in [
            Box::new(m.normalized.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.failures.clone()),
            Box::new(m.dropped.clone()),
            Box::new(m.mapping_fallbacks.clone()),
            Box::new(m.mapping_seconds.clone()),
            Box::new(m.ingestion_lag_seconds.clone()),
            Box::new(m.queue_lag_seconds.clone()),
            Box::new(m.consumer_pending.clone()),
            Box::new(m.claim_fetches.clone()),
            Box::new(m.time_limit_retries.clone()),
            Box::new(m.offloaded.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        m
    }
}

/// Why an event was mapped off the runtime thread (the `reason` label of
/// `switchyard_normalizer_offloaded_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offloaded {
    Large,
    Unbounded,
    Slow,
}

impl Offloaded {
    pub const ALL: [Offloaded; 3] = [Offloaded::Large, Offloaded::Unbounded, Offloaded::Slow];

    pub fn as_str(self) -> &'static str {
        match self {
            Offloaded::Large => "large",
            Offloaded::Unbounded => "unbounded",
            Offloaded::Slow => "slow",
        }
    }
}
