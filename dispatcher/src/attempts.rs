//! The log of recent delivery attempts, per endpoint and per event, kept in Redis for
//! `dispatcher.attempts_retention_hours` and shown by the admin API.
//!
//! Writes are off the delivery path: attempts go through a bounded channel to one task
//! that writes them in pipelined batches. When Redis is slow or down and the channel is
//! full, records are dropped and counted (`switchyard_dispatcher_attempt_log_dropped_total`): the
//! log is for looking, deliveries themselves never depend on it.
//!
//! Keys: `attempts:ep:<endpoint id>` and `attempts:ev:<event id>`, lists of JSON
//! records, newest first, each trimmed to [`KEPT_PER_KEY`] and expiring a retention
//! after its last write; readers also drop records older than the retention.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use switchyard_core::names::Names;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Records kept per endpoint and per event.
pub const KEPT_PER_KEY: isize = 1000;
/// Bytes of a response body kept.
pub const BODY_KEPT: usize = 1024;

/// One attempt, as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub event_id: String,
    pub endpoint_id: String,
    pub tenant_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at_ms: i64,
    /// `success`, `http_error`, `timeout`, `connect_error`, `refused_destination`.
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first [`BODY_KEPT`] bytes of the response body (lossy UTF-8).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response_body: String,
}

fn endpoint_key(names: &Names, endpoint_id: &str) -> String {
    names.redis_key(&format!("attempts:ep:{endpoint_id}"))
}

fn event_key(names: &Names, event_id: &str) -> String {
    names.redis_key(&format!("attempts:ev:{event_id}"))
}

/// The writing side: cheap to clone, never blocks a delivery.
#[derive(Clone)]
pub struct AttemptLog {
    tx: mpsc::Sender<AttemptRecord>,
    dropped: prometheus::IntCounter,
}

impl AttemptLog {
    /// Start the writer task; it drains what is queued when `stop` fires, then ends.
    pub fn start(
        redis: ConnectionManager,
        names: Names,
        retention: Duration,
        dropped: prometheus::IntCounter,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(10_000);
        let task = tokio::spawn(write_batches(rx, redis, names, retention, dropped.clone(), stop));
        (Self { tx, dropped }, task)
    }

    pub fn record(&self, r: AttemptRecord) {
        if self.tx.try_send(r).is_err() {
            self.dropped.inc();
        }
    }
}

async fn write_batches(
    mut rx: mpsc::Receiver<AttemptRecord>,
    mut redis: ConnectionManager,
    names: Names,
    retention: Duration,
    dropped: prometheus::IntCounter,
    stop: CancellationToken,
) {
    let ttl = retention.as_secs().max(1) as i64;
    let mut batch = Vec::with_capacity(256);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, 256) => n,
            _ = stop.cancelled() => {
                rx.close();
                rx.recv_many(&mut batch, 10_000).await
            }
        };
        if n == 0 {
            return;
        }
        // One LPUSH per key with all of the batch's records for it, then one trim and
        // one expiry per key: a busy endpoint costs three commands per batch, not per
        // attempt.
        let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
        for r in batch.drain(..) {
            let json = serde_json::to_string(&r).expect("an attempt record serializes");
            by_key
                .entry(event_key(&names, &r.event_id))
                .or_default()
                .push(json.clone());
            by_key
                .entry(endpoint_key(&names, &r.endpoint_id))
                .or_default()
                .push(json);
        }
        let mut pipe = redis::pipe();
        for (key, records) in &by_key {
            pipe.lpush(key, records)
                .ignore()
                .ltrim(key, 0, KEPT_PER_KEY - 1)
                .ignore()
                .expire(key, ttl)
                .ignore();
        }
        let written = tokio::time::timeout(Duration::from_secs(2), pipe.query_async::<()>(&mut redis)).await;
        if !matches!(written, Ok(Ok(()))) {
            dropped.inc_by(n as u64);
            tracing::warn!(
                records = n,
                "Writing delivery attempts to Redis failed; they are missing from the attempts log."
            );
        }
    }
}

/// The newest attempts to one endpoint, at most `limit`, within the retention.
pub async fn for_endpoint(
    redis: &ConnectionManager,
    names: &Names,
    endpoint_id: &str,
    limit: usize,
    retention: Duration,
) -> Result<Vec<AttemptRecord>, redis::RedisError> {
    read(redis, endpoint_key(names, endpoint_id), limit, retention).await
}

/// The attempts to deliver one event, to every endpoint, newest first.
pub async fn for_event(
    redis: &ConnectionManager,
    names: &Names,
    event_id: &str,
    limit: usize,
    retention: Duration,
) -> Result<Vec<AttemptRecord>, redis::RedisError> {
    read(redis, event_key(names, event_id), limit, retention).await
}

async fn read(
    redis: &ConnectionManager,
    key: String,
    limit: usize,
    retention: Duration,
) -> Result<Vec<AttemptRecord>, redis::RedisError> {
    let mut c = redis.clone();
    let raw: Vec<String> = redis::cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(limit.clamp(1, KEPT_PER_KEY as usize) as isize - 1)
        .query_async(&mut c)
        .await?;
    let oldest = switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc()) - retention.as_millis() as i64;
    Ok(raw
        .iter()
        .filter_map(|r| serde_json::from_str::<AttemptRecord>(r).ok())
        .filter(|r| r.at_ms >= oldest)
        .collect())
}
