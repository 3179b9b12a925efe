//! Per-endpoint rate limits shared by every dispatcher process: a one-second window
//! counter in Redis (`rate:<endpoint id>:<unix second>`). When Redis does not answer,
//! the limit is not enforced (deliveries go on) and the failure is logged.

use std::time::Duration;

use redis::aio::ConnectionManager;
use switchyard_core::names::Names;

pub struct RateLimiter {
    redis: ConnectionManager,
    names: Names,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, names: Names) -> Self {
        Self { redis, names }
    }

    /// `None` when a request may go now, else how long until the next window.
    pub async fn admit(&self, endpoint_id: &str, per_second: u32, now_ms: i64) -> Option<Duration> {
        let second = now_ms.div_euclid(1000);
        let key = self.names.redis_key(&format!("rate:{endpoint_id}:{second}"));
        let mut c = self.redis.clone();
        let counted = tokio::time::timeout(
            Duration::from_millis(500),
            redis::pipe()
                .incr(&key, 1)
                .expire(&key, 2)
                .ignore()
                .query_async::<(u64,)>(&mut c),
        )
        .await;
        match counted {
            Ok(Ok((n,))) if n > per_second as u64 => {
                Some(Duration::from_millis((1000 - now_ms.rem_euclid(1000)) as u64))
            }
            Ok(Ok(_)) => None,
            _ => {
                tracing::warn!(
                    endpoint_id,
                    "Rate-limit counter unavailable (Redis); delivering without the limit."
                );
                None
            }
        }
    }
}
