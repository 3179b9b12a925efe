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
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures::future::join_all;
use redis::aio::ConnectionManager;
use switchyard_claimcheck::{ClaimCheckStore, RecordHeader, SegmentBuilder};
use switchyard_connectors::extract::ExtractedEvent;
use switchyard_connectors::signature::VerifiedWebhook;
use switchyard_core::config::IngressConfig;
use switchyard_core::envelope::{ClaimRef, RawEnvelope};
use switchyard_core::names::Names;
use switchyard_core::telemetry::Readiness;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_util::task::TaskTracker;

use crate::dedupe::Dedupe;
use crate::metrics::Metrics;

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

/// One event of a submission and the account it belongs to. `account_id` is empty for
/// an event whose routing key matched no registered account (the normalizer
/// dead-letters it; see `receive`).
pub struct Routed {
    pub event: ExtractedEvent,
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

struct Pending {
    sub: Submission,
    /// Per event: already seen (Redis said so).
    seen: Vec<bool>,
}

async fn flush(shared: &Shared, group: Vec<Submission>, waiting: Vec<String>, seq: u64) {
    let deps = &shared.deps;
    deps.metrics.batch_events.observe(group.len() as f64);
    if deps.nats.connection_state() != async_nats::connection::State::Connected {
        // Fail fast: nothing can be acknowledged without NATS.
        deps.readiness.set("nats", false);
        answer_all(group, Outcome::Unavailable("nats_unavailable"));
        return shared.dedupe.remember(waiting).await;
    }

    // 1. Which events were seen before?
    let keys: Vec<String> = group
        .iter()
        .flat_map(|s| s.events.iter().map(|e| idem_key(s, e)))
        .collect();
    let seen = shared.dedupe.seen_before(waiting, &keys).await;
    let mut at = 0;
    let pending: Vec<Pending> = group
        .into_iter()
        .map(|sub| {
            let n = sub.events.len();
            let p = Pending {
                seen: seen[at..at + n].to_vec(),
                sub,
            };
            at += n;
            p
        })
        .collect();

    // 2. One segment for every body that carries a new event.
    let now = time::OffsetDateTime::now_utc();
    let key = switchyard_claimcheck::segment_key(now, &deps.instance, seq);
    let mut segment = SegmentBuilder::with_capacity(pending.iter().map(|p| p.sub.webhook.body().len() + 256).sum());
    let mut claims: Vec<Option<ClaimRef>> = Vec::with_capacity(pending.len());
    for p in &pending {
        if p.seen.iter().all(|s| *s) {
            claims.push(None);
            continue;
        }
        // One account per record; a routed batch spanning accounts records none (each
        // envelope names its own).
        let first = &p.sub.events[0];
        let one_account = p.sub.events.iter().all(|e| e.account_id == first.account_id);
        let header = RecordHeader {
            connector: p.sub.connector.clone(),
            account_id: if one_account {
                first.account_id.clone()
            } else {
                String::new()
            },
            tenant_id: if one_account {
                first.tenant_id.clone()
            } else {
                String::new()
            },
            received_ms: p.sub.received_ms,
            content_type: p.sub.content_type.clone(),
            event_ids: p.sub.events.iter().map(|e| e.event.id.clone()).collect(),
            headers: p.sub.headers.clone(),
        };
        let (offset, len) = segment.push(&header, p.sub.webhook.body());
        claims.push(Some(ClaimRef {
            key: key.clone(),
            offset,
            len,
        }));
    }
    if !segment.is_empty() {
        let started = Instant::now();
        // What the segment holds, readable from a listing without fetching it.
        let mut connectors: Vec<&str> = pending
            .iter()
            .zip(&claims)
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| p.sub.connector.as_str())
            .collect();
        connectors.sort_unstable();
        connectors.dedup();
        let metadata = vec![
            ("connectors", connectors.join(",")),
            ("records", claims.iter().flatten().count().to_string()),
            ("instance", deps.instance.clone()),
        ];
        let put = deps.store.put_with_metadata(&key, segment.finish(), metadata).await;
        deps.metrics.s3_put_seconds.observe(started.elapsed().as_secs_f64());
        if let Err(e) = put {
            tracing::warn!(error = %e, "Claim-check PUT failed; answering 503 so providers retry.");
            deps.readiness.set("s3", false);
            return answer_all(
                pending.into_iter().map(|p| p.sub).collect(),
                Outcome::Unavailable("s3_unavailable"),
            );
        }
        deps.readiness.set("s3", true);
    }

    // 3. Publish every new event's envelope, then wait for every PubAck.
    let started = Instant::now();
    let mut acks = Vec::new();
    let mut owners = Vec::new();
    let mut publish_failed = vec![false; pending.len()];
    // `keys` holds one idempotency key per event, in the order walked here.
    let mut k = 0;
    for (i, (p, claim)) in pending.iter().zip(&claims).enumerate() {
        let first = k;
        k += p.sub.events.len();
        let Some(claim) = claim else { continue };
        // A `Subject` clones by reference count.
        let subject = async_nats::Subject::from(deps.names.raw_subject(&p.sub.connector));
        for ((r, seen), key) in p.sub.events.iter().zip(&p.seen).zip(&keys[first..k]) {
            if *seen {
                continue;
            }
            let e = &r.event;
            let env = RawEnvelope {
                connector: p.sub.connector.clone(),
                account_id: r.account_id.clone(),
                tenant_id: r.tenant_id.clone(),
                external_account: e.account.clone(),
                event_id: e.id.clone(),
                event_type: e.event_type.clone(),
                item: e.item,
                occurred_at: e
                    .occurred_ms
                    .and_then(|ms| switchyard_core::timefmt::from_unix_seconds(ms / 1000)),
                received_ms: p.sub.received_ms,
                claim: claim.clone(),
                content_type: p.sub.content_type.clone(),
            };
            let payload = Bytes::from(serde_json::to_vec(&env).expect("an envelope serializes"));
            let mut headers = async_nats::HeaderMap::new();
            // Parsed, never `insert(&str)` (which panics on a line break and would fail
            // the whole group): extraction already refuses such ids, this is the guard.
            let Ok(msg_id) = key.parse::<async_nats::HeaderValue>() else {
                tracing::error!(connector = %p.sub.connector, "An idempotency key holds control characters; answering 503 for its request only.");
                publish_failed[i] = true;
                continue;
            };
            headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
            match switchyard_core::publish::send(&deps.js, subject.clone(), headers, payload).await {
                Ok(pending) => {
                    acks.push(pending.acked());
                    owners.push(i);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Publishing an envelope failed; answering 503.");
                    publish_failed[i] = true;
                }
            }
        }
    }
    let mut duplicates_by_js = vec![0usize; pending.len()];
    for (owner, ack) in owners.iter().zip(join_all(acks).await) {
        match ack {
            Ok(a) if a.duplicate => duplicates_by_js[*owner] += 1,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "No PubAck for an envelope; answering 503.");
                publish_failed[*owner] = true;
            }
        }
    }
    deps.metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
    deps.readiness.set("nats", !publish_failed.iter().any(|f| *f));

    // 4. Answer: 2xx only where the segment is in S3 and every PubAck came back.
    let mut durable_keys = Vec::new();
    let mut keys = keys.into_iter();
    for (i, p) in pending.into_iter().enumerate() {
        let own_keys: Vec<String> = keys.by_ref().take(p.sub.events.len()).collect();
        let outcome = if publish_failed[i] {
            Outcome::Unavailable("nats_unavailable")
        } else {
            let dups = p.seen.iter().filter(|s| **s).count() + duplicates_by_js[i];
            let fresh = p.sub.events.len() - dups;
            let connector = p.sub.connector.as_str();
            deps.metrics.events.with_label_values(&[connector]).inc_by(fresh as u64);
            deps.metrics
                .duplicates
                .with_label_values(&[connector])
                .inc_by(dups as u64);
            durable_keys.extend(
                own_keys
                    .into_iter()
                    .zip(&p.seen)
                    .filter(|(_, seen)| !**seen)
                    .map(|(key, _)| key),
            );
            Outcome::Durable { duplicates: dups }
        };
        let _ = p.sub.reply.send(outcome);
    }

    // 5. Remember the keys of what is now durable.
    shared.dedupe.remember(durable_keys).await;
}

fn answer_all(group: Vec<Submission>, outcome: Outcome) {
    for s in group {
        let _ = s.reply.send(outcome.clone());
    }
}

fn idem_key(s: &Submission, r: &Routed) -> String {
    let account = switchyard_core::ids::account_part(&r.account_id, r.event.account.as_deref());
    switchyard_core::ids::idempotency_key(&s.connector, &account, &r.event.id)
}
