//! The circuit breaker's memory: per endpoint, since when every attempt has failed and
//! how many in a row, shared by every dispatcher process through Redis
//! (`breaker:<endpoint id>`, a hash `since_ms`, `count`).
//!
//! A success clears it. The decision to disable is [`Breaker::should_disable`]; the
//! dispatcher then disables the endpoint, dead-letters what is pending for it, and
//! tells the tenant's other endpoints (`switchyard.endpoint.disabled`).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::ConnectionManager;
use switchyard_core::names::Names;

/// Where an endpoint's failure streak stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    pub since_ms: i64,
    pub count: u32,
}

pub struct Breaker {
    redis: ConnectionManager,
    names: Names,
    /// 0: never by count.
    after_failures: u32,
    after: Duration,
    /// Endpoints this process has seen fail since their last success: only those need
    /// a Redis write on success.
    failing: Mutex<HashSet<String>>,
}

fn key(names: &Names, endpoint_id: &str) -> String {
    names.redis_key(&format!("breaker:{endpoint_id}"))
}

impl Breaker {
    pub fn new(redis: ConnectionManager, names: Names, after_failures: u32, after: Duration) -> Self {
        Self {
            redis,
            names,
            after_failures,
            after,
            failing: Mutex::default(),
        }
    }

    /// Count a failed attempt; the streak it extends.
    pub async fn failed(&self, endpoint_id: &str, now_ms: i64) -> Result<Streak, redis::RedisError> {
        self.failing
            .lock()
            .expect("breaker lock")
            .insert(endpoint_id.to_string());
        let k = key(&self.names, endpoint_id);
        let mut c = self.redis.clone();
        let (since, count): (i64, u32) = redis::pipe()
            .atomic()
            .hset_nx(&k, "since_ms", now_ms)
            .ignore()
            .hincr(&k, "count", 1)
            .ignore()
            .expire(&k, (self.after.as_secs() as i64).max(3600) * 2)
            .ignore()
            .hget(&k, "since_ms")
            .hget(&k, "count")
            .query_async(&mut c)
            .await?;
        Ok(Streak { since_ms: since, count })
    }

    /// A success ends the streak.
    pub async fn succeeded(&self, endpoint_id: &str) {
        let was_failing = self.failing.lock().expect("breaker lock").remove(endpoint_id);
        if was_failing {
            let _ = reset(&self.redis, &self.names, endpoint_id).await;
        }
    }

    pub fn should_disable(&self, streak: Streak, now_ms: i64) -> bool {
        (self.after_failures > 0 && streak.count >= self.after_failures)
            || now_ms - streak.since_ms >= self.after.as_millis() as i64
    }
}

/// Forget an endpoint's failures (re-enabling it starts afresh).
pub async fn reset(redis: &ConnectionManager, names: &Names, endpoint_id: &str) -> Result<(), redis::RedisError> {
    let mut c = redis.clone();
    redis::cmd("DEL")
        .arg(key(names, endpoint_id))
        .query_async::<()>(&mut c)
        .await
}
