//! Redis in front of JetStream: which events were seen before, and remembering the new
//! ones once they are durable.
//!
//! Each group costs one Redis round trip: the pipeline that asks about the group's keys
//! (`EXISTS`) also carries the keys the groups before it made durable (`SET NX EX`).
//! Keys wait for that ride only while a group is forming, which is at most `linger_ms`
//! under load; when none is, the group that made them durable writes them itself
//! ([`Dedupe::remember`]). Either way a key is written only after its PubAck, so a
//! failure half way leaves no key and the provider's retry gets through.
//!
//! Redis is an optimisation: while it fails it is left alone for [`REDIS_PAUSE`] and
//! JetStream's duplicate window dedupes meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use switchyard_core::names::Names;
use switchyard_core::telemetry::Readiness;

/// How long Redis is skipped after it failed.
const REDIS_PAUSE: Duration = Duration::from_secs(1);
/// The longest wait for Redis before it is treated as down.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// The dedupe state the committer shares between its groups.
pub struct Dedupe {
    redis: Option<ConnectionManager>,
    names: Names,
    readiness: Readiness,
    ttl_secs: u64,
    /// When Redis last failed.
    failed_at: Mutex<Option<Instant>>,
    /// Keys made durable and not yet written, and whether a group is forming that will
    /// carry them (see the module docs).
    unwritten: Mutex<Unwritten>,
}

#[derive(Default)]
struct Unwritten {
    forming: bool,
    keys: Vec<String>,
}

impl Dedupe {
    pub fn new(redis: Option<ConnectionManager>, names: Names, readiness: Readiness, ttl_secs: u64) -> Self {
        Self {
            redis,
            names,
            readiness,
            ttl_secs,
            failed_at: Mutex::default(),
            unwritten: Mutex::default(),
        }
    }

    /// A group has started forming: keys made durable from now on wait for it.
    pub fn group_forming(&self) {
        self.unwritten.lock().expect("dedupe lock").forming = true;
    }

    /// The group has closed: it takes the keys waiting for it (to pass to
    /// [`Self::seen_before`]); keys made durable from now on wait for the next group.
    pub fn group_closed(&self) -> Vec<String> {
        let mut u = self.unwritten.lock().expect("dedupe lock");
        u.forming = false;
        std::mem::take(&mut u.keys)
    }

    /// Per key: whether Redis remembers it. Without Redis, nothing is known as seen.
    /// Called once per group; the same round trip writes `waiting` (from
    /// [`Self::group_closed`]).
    pub async fn seen_before(&self, waiting: Vec<String>, keys: &[String]) -> Vec<bool> {
        let Some(redis) = self.available() else {
            return vec![false; keys.len()];
        };
        let mut pipe = redis::pipe();
        self.push_sets(&mut pipe, &waiting);
        for k in keys {
            pipe.exists(self.redis_key(k));
        }
        let mut conn = redis.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<Vec<bool>>(&mut conn)).await {
            Ok(Ok(v)) if v.len() == keys.len() => {
                self.readiness.set("redis", true);
                v
            }
            _ => {
                self.failed();
                vec![false; keys.len()]
            }
        }
    }

    /// Remember `keys`, whose events are now durable (every PubAck received): with the
    /// group forming if there is one, else now.
    pub async fn remember(&self, keys: Vec<String>) {
        if keys.is_empty() || self.redis.is_none() {
            return;
        }
        {
            let mut u = self.unwritten.lock().expect("dedupe lock");
            if u.forming {
                u.keys.extend(keys);
                return;
            }
        }
        let Some(redis) = self.available() else { return };
        let mut pipe = redis::pipe();
        self.push_sets(&mut pipe, &keys);
        let mut conn = redis.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => self.readiness.set("redis", true),
            _ => self.failed(),
        }
    }

    /// Write whatever still waits (at shutdown, when no group will come).
    pub async fn finish(&self) {
        let keys = self.group_closed();
        self.remember(keys).await;
    }

    fn push_sets(&self, pipe: &mut redis::Pipeline, keys: &[String]) {
        for k in keys {
            pipe.cmd("SET")
                .arg(self.redis_key(k))
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(self.ttl_secs)
                .ignore();
        }
    }

    fn available(&self) -> Option<&ConnectionManager> {
        let paused = self
            .failed_at
            .lock()
            .expect("redis pause lock")
            .is_some_and(|t| t.elapsed() < REDIS_PAUSE);
        self.redis.as_ref().filter(|_| !paused)
    }

    fn failed(&self) {
        self.readiness.set("redis", false);
        *self.failed_at.lock().expect("redis pause lock") = Some(Instant::now());
    }

    fn redis_key(&self, idem: &str) -> String {
        self.names.redis_key(&format!("seen:{idem}"))
    }
}
