//! Delivering unified events: for each event, every enabled endpoint of its tenant whose
//! `event_types` match gets a signed POST ([`crate::sign`]).
//!
//! # The ack rule
//! A unified event is acked once every matching endpoint answered 2xx. Otherwise it is
//! nak'd with a delay and comes back; endpoints that already succeeded are remembered in
//! Redis (`delivered:<event>:<endpoint>`) and skipped, so a retry reaches only the ones
//! that failed. The receiver dedupes on `webhook-id`, which is the unified event id on
//! every attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::future::join_all;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use switchyard_plumbing::envelope::{HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT};
use switchyard_plumbing::names::Names;
use switchyard_plumbing::registry::{Endpoint, RegistryCache};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::sign;

pub struct Deliverer {
    pub http: reqwest::Client,
    pub registry: Arc<RegistryCache>,
    pub redis: ConnectionManager,
    pub names: Names,
    pub metrics: Metrics,
    pub retry_delay: Duration,
}

/// Build the delivery HTTP client: pooled connections, a per-request timeout, no
/// redirects (a redirect could point a signed payload anywhere).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these settings always builds")
}

impl Deliverer {
    pub async fn run(
        self: Arc<Self>,
        consumer: jetstream::consumer::PullConsumer,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        messages
            .take_until(shutdown.cancelled_owned())
            .for_each_concurrent(concurrency, |m| {
                let me = self.clone();
                async move {
                    match m {
                        Ok(msg) => me.handle(msg).await,
                        Err(e) => tracing::warn!(error = %e, "Pulling unified events failed; the consumer retries."),
                    }
                }
            })
            .await;
        Ok(())
    }

    async fn handle(&self, msg: jetstream::Message) {
        let header = |name: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        let (Some(id), Some(event_type), Some(tenant)) = (
            header(async_nats::header::NATS_MESSAGE_ID.as_ref()),
            header(HEADER_EVENT_TYPE),
            header(HEADER_TENANT),
        ) else {
            tracing::error!(subject = %msg.subject, "Unified event without routing headers; terminating it.");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        };
        let endpoints = match self.registry.endpoints(&tenant).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "Endpoint lookup failed; retrying the event.");
                let _ = msg.ack_with(AckKind::Nak(Some(self.retry_delay))).await;
                return;
            }
        };
        let targets: Vec<&Endpoint> = endpoints.iter().filter(|e| e.wants(&event_type)).collect();
        if targets.is_empty() {
            self.metrics.events.with_label_values(&["no_endpoint"]).inc();
            let _ = msg.ack().await;
            return;
        }
        let redelivered = msg.info().map(|i| i.delivered > 1).unwrap_or(false);
        let results = join_all(
            targets
                .iter()
                .map(|ep| self.deliver_once(ep, &id, &msg.payload, redelivered)),
        )
        .await;
        if results.iter().all(|ok| *ok) {
            self.metrics.events.with_label_values(&["delivered"]).inc();
            if let Some(received) = header(HEADER_RECEIVED_MS).and_then(|v| v.parse::<i64>().ok()) {
                let now = switchyard_plumbing::timefmt::unix_millis(time::OffsetDateTime::now_utc());
                self.metrics
                    .end_to_end_seconds
                    .observe((now - received).max(0) as f64 / 1000.0);
            }
            let _ = msg.ack().await;
        } else {
            self.metrics.events.with_label_values(&["retry"]).inc();
            let _ = msg.ack_with(AckKind::Nak(Some(self.retry_delay))).await;
        }
    }

    /// Deliver unless already delivered; `true` when the endpoint has the event.
    async fn deliver_once(&self, ep: &Endpoint, id: &str, body: &Bytes, redelivered: bool) -> bool {
        let key = self.names.redis_key(&format!("delivered:{id}:{}", ep.id));
        if redelivered {
            let mut c = self.redis.clone();
            if let Ok(Ok(true)) = tokio::time::timeout(
                Duration::from_millis(500),
                redis::AsyncCommands::exists::<_, bool>(&mut c, &key),
            )
            .await
            {
                return true;
            }
        }
        let ok = self.post(ep, id, body).await;
        if ok {
            let mut c = self.redis.clone();
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("EX")
                    .arg(7 * 24 * 3600)
                    .query_async::<()>(&mut c),
            )
            .await;
        }
        ok
    }

    async fn post(&self, ep: &Endpoint, id: &str, body: &Bytes) -> bool {
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let sig = sign::signature(&[ep.secret.expose()], id, ts, body);
        let started = Instant::now();
        let r = self
            .http
            .post(&ep.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.clone())
            .send()
            .await;
        self.metrics.attempt_seconds.observe(started.elapsed().as_secs_f64());
        let outcome = match &r {
            Ok(resp) if resp.status().is_success() => "success",
            Ok(_) => "http_error",
            Err(e) if e.is_timeout() => "timeout",
            Err(_) => "connect_error",
        };
        self.metrics.attempts.with_label_values(&[outcome]).inc();
        if outcome != "success" {
            let status = r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
            tracing::info!(endpoint_id = %ep.id, tenant_id = %ep.tenant_id, outcome, status, "Delivery attempt failed; will retry.");
        }
        outcome == "success"
    }
}
