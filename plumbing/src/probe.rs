//! One round of the storage probes behind `/readyz`: S3 answers a probe, Redis a PING
//! within a second. The ingress and the normalizer run it on their own schedules.

use std::time::Duration;

use crate::claimcheck::ClaimCheckStore;
use crate::telemetry::Readiness;

/// Probe S3 and Redis once and set `s3` and `redis` on `readiness`.
pub async fn storage(store: &ClaimCheckStore, redis: &redis::aio::ConnectionManager, readiness: &Readiness) {
    readiness.set("s3", store.probe().await.is_ok());
    let mut conn = redis.clone();
    let ping = redis::cmd("PING");
    let answered = tokio::time::timeout(Duration::from_secs(1), ping.query_async::<String>(&mut conn)).await;
    readiness.set("redis", matches!(answered, Ok(Ok(_))));
}
