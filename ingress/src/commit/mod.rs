//! Making webhooks durable, in groups: the only path to a 2xx.
//!
//! # The durability rule
//! A request is answered 2xx only after (1) its body is in S3 and (2) JetStream has
//! acknowledged (PubAck) the envelope of every event it carries. Anything short of that
//! answers 503 with `Retry-After`, and the provider retries.
//!
//! # Group commit
//! One S3 PUT costs more CPU than everything else the ingress does for a webhook, so
//! requests are committed in groups. For each group:
//! 1. asks Redis which events were seen before ([`dedupe`], one pipelined round trip
//!    that also records the keys of earlier groups); those are duplicates, answered 2xx
//!    and never published again;
//! 2. writes the remaining bodies as one segment object ([`claimcheck`]);
//! 3. publishes one envelope per event with `Nats-Msg-Id` = the idempotency key, all of
//!    them before waiting, then waits for every PubAck (JetStream's duplicate window
//!    catches two concurrent copies that both got past step 1);
//! 4. answers every request of the group;
//! 5. hands the idempotency keys to [`dedupe`], only now, so a failure half way leaves
//!    no key and the provider's retry gets through.
//!
//! # When a group closes
//! A group opens with its first request and closes `linger_ms` later, or sooner when
//! it is full (`max_batch_events`, `max_batch_bytes`). Groups are written concurrently,
//! up to `max_concurrent_flushes`; while every slot is taken, the group past its linger
//! keeps growing until one frees (then it is written at once), so under load groups
//! grow instead of the number of S3 PUTs.
//!
//! Redis is an optimisation here: when it is down, dedupe is skipped and JetStream
//! still dedupes.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use redis::aio::ConnectionManager;
use switchyard_claimcheck::ClaimCheckStore;
use switchyard_connectors::extract::ExtractedEvent;
use switchyard_connectors::signature::VerifiedWebhook;
use switchyard_core::config::IngressConfig;
use switchyard_core::names::Names;
use switchyard_core::telemetry::Readiness;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_util::task::TaskTracker;

use crate::dedupe::Dedupe;
use crate::metrics::Metrics;

mod flush;

use flush::flush;

/// A verified request waiting to become durable.
pub struct Submission {
    pub webhook: VerifiedWebhook,
    pub connector: String,
    pub events: Vec<Routed>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub content_type: String,
    pub received_ms: i64,
    pub reply: oneshot::Sender<Outcome>,
}

/// One event of a submission and the registered account it belongs to: `None` for an
/// event whose routing key is missing or matched no registered account (it goes on
/// without one and the normalizer dead-letters it; see `receive`).
pub struct Routed {
    pub event: ExtractedEvent,
    pub owner: Option<Owner>,
}

/// A registered account and its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub account_id: String,
    pub tenant_id: String,
}

/// How a submission ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Durable (or already durable before): answer 2xx.
    Durable { duplicates: usize },
    /// Not durable: answer 503. The reason is a metric label.
    Unavailable(&'static str),
}

/// What the committer needs from the outside.
#[derive(Clone)]
pub struct Deps {
    pub store: ClaimCheckStore,
    pub js: jetstream::Context,
    pub nats: async_nats::Client,
    pub redis: Option<ConnectionManager>,
    pub names: Names,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub instance: String,
}

/// What every group's flush shares.
struct Shared {
    deps: Deps,
    dedupe: Dedupe,
}

/// The handle requests submit to.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Submission>,
}

impl Committer {
    /// Start the committer. It runs until every `Committer` clone is dropped, then
    /// finishes the groups in flight; `tracker` lets the caller wait for that.
    pub fn start(deps: Deps, cfg: &IngressConfig, tracker: &TaskTracker) -> Self {
        let (tx, rx) = mpsc::channel(cfg.max_in_flight.max(1));
        let max_flushes = cfg.max_concurrent_flushes.max(1);
        let settings = Settings {
            linger: Duration::from_millis(cfg.linger_ms),
            max_events: cfg.max_batch_events.max(1),
            max_bytes: cfg.max_batch_bytes.max(1),
            max_flushes,
            flushes: Arc::new(Semaphore::new(max_flushes)),
            flushed: Arc::new(Notify::new()),
        };
        let dedupe = Dedupe::new(
            deps.redis.clone(),
            deps.names.clone(),
            deps.readiness.clone(),
            cfg.dedupe_ttl_secs,
        );
        let shared = Arc::new(Shared { deps, dedupe });
        tracker.spawn(collect(rx, shared, settings, tracker.clone()));
        Self { tx }
    }

    /// Hand a submission over; when the queue is full (or the committer has stopped)
    /// the caller is told at once and answers 503.
    pub fn submit(&self, s: Submission) -> Result<(), Busy> {
        self.tx.try_send(s).map_err(|_| Busy)
    }
}

/// The committer cannot take more work right now.
#[derive(Debug)]
pub struct Busy;

struct Settings {
    linger: Duration,
    max_events: usize,
    max_bytes: usize,
    max_flushes: usize,
    /// Bounds the groups being written at once (S3 PUT + publish).
    flushes: Arc<Semaphore>,
    /// Told whenever a group's flush ends, so a group waiting for it can close.
    flushed: Arc<Notify>,
}

/// Forms groups (see "When a group closes" above) and starts a flush task for each.
async fn collect(mut rx: mpsc::Receiver<Submission>, shared: Arc<Shared>, s: Settings, tracker: TaskTracker) {
    let mut seq = 0u64;
    let mut open = true;
    while open {
        let Some(first) = rx.recv().await else { break };
        shared.dedupe.group_forming();
        let deadline = tokio::time::Instant::now() + s.linger;
        let mut expired = false;
        let mut bytes = first.webhook.body().len();
        let mut group = vec![first];
        while group.len() < s.max_events && bytes < s.max_bytes {
            tokio::select! {
                biased;
                next = rx.recv() => match next {
                    Some(sub) => {
                        bytes += sub.webhook.body().len();
                        group.push(sub);
                    }
                    None => {
                        open = false;
                        break;
                    }
                },
                _ = tokio::time::sleep_until(deadline), if !expired => expired = true,
                _ = s.flushed.notified(), if expired => {}
            }
            // Past its linger, a group closes as soon as a slot is free to write it.
            if expired && s.flushes.available_permits() > 0 {
                break;
            }
        }
        // Only a full group can find every slot taken; it waits for one.
        let permit = s.flushes.clone().acquire_owned().await.expect("semaphore never closed");
        let waiting = shared.dedupe.group_closed();
        let shared = shared.clone();
        let flushed = s.flushed.clone();
        let n = seq;
        seq += 1;
        tracker.spawn(async move {
            flush(&shared, group, waiting, n).await;
            drop(permit);
            flushed.notify_one();
        });
    }
    // No group will come to carry the keys still waiting.
    let finish = s.flushes.acquire_many(s.max_flushes as u32).await;
    shared.dedupe.finish().await;
    drop(finish);
}

/// The idempotency key of one event of a submission.
fn idem_key(s: &Submission, r: &Routed) -> String {
    let account = switchyard_core::ids::account_part(
        r.owner.as_ref().map(|o| o.account_id.as_str()),
        r.event.account.as_deref(),
    );
    switchyard_core::ids::idempotency_key(&s.connector, &account, &r.event.id)
}
