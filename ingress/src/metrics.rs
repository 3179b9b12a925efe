//! The ingress's metrics, defined once. Labels come from closed sets: connector names
//! from the catalog (`unknown` otherwise), outcomes and reasons from the code.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use switchyard_core::telemetry::LATENCY_BUCKETS;

#[derive(Clone)]
pub struct Metrics {
    /// Every answered request: `connector`, `outcome` (accepted, duplicate, rejected,
    /// unavailable, handshake), `status`.
    pub requests: IntCounterVec,
    /// Rejections by `connector` and `reason` (the error code of the response).
    pub rejections: IntCounterVec,
    /// Signature failures by `connector` and `reason`.
    pub signature_failures: IntCounterVec,
    /// Verified events the connector's paths could not read, kept all the same as
    /// `<connector>.unrecognized` (or without an account), by `connector` and `reason`.
    pub unrecognized: IntCounterVec,
    /// Provider events made durable, by `connector`.
    pub events: IntCounterVec,
    /// Provider events recognised as duplicates, by `connector`.
    pub duplicates: IntCounterVec,
    pub body_bytes: HistogramVec,
    /// Request start → response, by `connector`.
    pub ack_seconds: HistogramVec,
    pub s3_put_seconds: Histogram,
    pub publish_seconds: Histogram,
    pub batch_events: Histogram,
    pub in_flight: IntGauge,
    /// Fetches of keys providers publish (JWKS, certificates), by `outcome` (ok, failed).
    pub key_fetches: IntCounterVec,
}

impl Metrics {
    pub fn new(registry: &Registry) -> Self {
        let m = Self {
            requests: IntCounterVec::new(
                Opts::new("switchyard_ingress_requests_total", "Webhook requests answered."),
                &["connector", "outcome", "status"],
            )
            .expect("valid metric"),
            rejections: IntCounterVec::new(
                Opts::new(
                    "switchyard_ingress_rejections_total",
                    "Webhook requests refused, by reason.",
                ),
                &["connector", "reason"],
            )
            .expect("valid metric"),
            signature_failures: IntCounterVec::new(
                Opts::new(
                    "switchyard_ingress_signature_failures_total",
                    "Webhook requests whose signature did not verify.",
                ),
                &["connector", "reason"],
            )
            .expect("valid metric"),
            unrecognized: IntCounterVec::new(
                Opts::new(
                    "switchyard_ingress_unrecognized_total",
                    "Verified events whose id, type or routing key the connector could not read (stored all the same).",
                ),
                &["connector", "reason"],
            )
            .expect("valid metric"),
            events: IntCounterVec::new(
                Opts::new(
                    "switchyard_ingress_events_total",
                    "Provider events made durable (claim-check stored, envelope acknowledged).",
                ),
                &["connector"],
            )
            .expect("valid metric"),
            duplicates: IntCounterVec::new(
                Opts::new(
                    "switchyard_ingress_duplicates_total",
                    "Provider events already received (answered 2xx, not published again).",
                ),
                &["connector"],
            )
            .expect("valid metric"),
            body_bytes: HistogramVec::new(
                HistogramOpts::new("switchyard_ingress_body_bytes", "Size of accepted webhook bodies.").buckets(vec![
                    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
                ]),
                &["connector"],
            )
            .expect("valid metric"),
            ack_seconds: HistogramVec::new(
                HistogramOpts::new("switchyard_ingress_ack_seconds", "Request start to response.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["connector"],
            )
            .expect("valid metric"),
            s3_put_seconds: Histogram::with_opts(
                HistogramOpts::new("switchyard_ingress_s3_put_seconds", "Claim-check segment PUT latency.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            publish_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "switchyard_ingress_publish_seconds",
                    "Publishing a batch of envelopes until every PubAck.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            batch_events: Histogram::with_opts(
                HistogramOpts::new(
                    "switchyard_ingress_batch_requests",
                    "Requests sharing one claim-check segment (group commit).",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
            )
            .expect("valid metric"),
            in_flight: IntGauge::new(
                "switchyard_ingress_in_flight_requests",
                "Webhook requests being handled.",
            )
            .expect("valid metric"),
            key_fetches: IntCounterVec::new(
                Opts::new(
                    "switchyard_ingress_key_fetches_total",
                    "Fetches of keys providers publish (JWKS, certificates), by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
        };
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.rejections.clone()),
            Box::new(m.signature_failures.clone()),
            Box::new(m.unrecognized.clone()),
            Box::new(m.events.clone()),
            Box::new(m.duplicates.clone()),
            Box::new(m.body_bytes.clone()),
            Box::new(m.ack_seconds.clone()),
            Box::new(m.s3_put_seconds.clone()),
            Box::new(m.publish_seconds.clone()),
            Box::new(m.batch_events.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.key_fetches.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        m
    }

    /// Series an alert may watch exist at 0 from the start, so the first increment is
    /// an increase (a counter that appears with its first event never looks like one).
    pub fn expose_from_start<'a>(&self, connectors: impl Iterator<Item = &'a str>) {
        for reason in ["malformed_path", "too_many_connections", "unknown_connector"] {
            self.rejections.with_label_values(&["unknown", reason]);
        }
        for outcome in ["ok", "failed"] {
            self.key_fetches.with_label_values(&[outcome]);
        }
        for c in connectors {
            for why in switchyard_connectors::extract::Unrecognized::ALL {
                self.unrecognized.with_label_values(&[c, why.code()]);
            }
            self.unrecognized.with_label_values(&[c, "missing_account_key"]);
        }
    }
}
