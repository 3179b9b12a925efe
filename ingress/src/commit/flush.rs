//! One group's flush, the steps of the module's durability rule in order:
//! [`mark_seen`] (Redis's answer, per event) → [`build_segment`] (the bodies that carry
//! a new event, one segment) → [`put_segment`] → [`publish_envelopes`] (every new
//! event's envelope sent, then every PubAck awaited) → [`answer`] (2xx only where both
//! held) → the durable events' keys handed to the dedupe.
//!
//! The steps that decide (which bodies go in the segment, what each envelope says,
//! which answer a request gets) take plain values and are tested without servers.

use std::time::Instant;

use bytes::Bytes;
use futures::future::join_all;
use switchyard_claimcheck::{RecordHeader, SegmentBuilder};
use switchyard_core::envelope::{ClaimRef, RawEnvelope};

use super::{idem_key, Outcome, Routed, Shared, Submission};

/// A submission and, per event, whether Redis had seen it before.
pub(super) struct Pending {
    pub(super) sub: Submission,
    pub(super) seen: Vec<bool>,
}

impl Pending {
    /// Every event of it was seen before: nothing of it is stored or published again.
    fn all_seen(&self) -> bool {
        self.seen.iter().all(|s| *s)
    }
}

pub(super) async fn flush(shared: &Shared, group: Vec<Submission>, waiting: Vec<String>, seq: u64) {
    let deps = &shared.deps;
    deps.metrics.batch_events.observe(group.len() as f64);
    if deps.nats.connection_state() != async_nats::connection::State::Connected {
        // Fail fast: nothing can be acknowledged without NATS.
        deps.readiness.set("nats", false);
        answer_all(group, Outcome::Unavailable("nats_unavailable"));
        return shared.dedupe.remember(waiting).await;
    }
    let keys: Vec<String> = group
        .iter()
        .flat_map(|s| s.events.iter().map(|e| idem_key(s, e)))
        .collect();
    let seen = shared.dedupe.seen_before(waiting, &keys).await;
    let pending = mark_seen(group, &seen);

    let key = switchyard_claimcheck::segment_key(time::OffsetDateTime::now_utc(), &deps.instance, seq);
    let (segment, claims) = build_segment(&pending, &key);
    if !segment.is_empty() {
        let metadata = segment_metadata(&pending, &claims, &deps.instance);
        if !put_segment(shared, &key, segment, metadata).await {
            let group = pending.into_iter().map(|p| p.sub).collect();
            return answer_all(group, Outcome::Unavailable("s3_unavailable"));
        }
    }
    let published = publish_envelopes(shared, &pending, &claims, &keys).await;
    let durable_keys = answer(shared, pending, keys, &published);
    shared.dedupe.remember(durable_keys).await;
}

/// Split Redis's per-key answer (`seen`, in the group's event order) by submission.
fn mark_seen(group: Vec<Submission>, seen: &[bool]) -> Vec<Pending> {
    let mut at = 0;
    group
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
        .collect()
}

/// One segment (object `key`) holding the body of every submission that carries a new
/// event, and per submission the claim naming its body (`None`: all seen before).
fn build_segment(pending: &[Pending], key: &str) -> (SegmentBuilder, Vec<Option<ClaimRef>>) {
    let mut segment = SegmentBuilder::with_capacity(pending.iter().map(|p| p.sub.webhook.body().len() + 256).sum());
    let mut claims = Vec::with_capacity(pending.len());
    for p in pending {
        if p.all_seen() {
            claims.push(None);
            continue;
        }
        let (offset, len) = segment.push(&record_header(&p.sub), p.sub.webhook.body());
        claims.push(Some(ClaimRef {
            key: key.to_string(),
            offset,
            len,
        }));
    }
    (segment, claims)
}

/// What a segment records before a body. One account per record; a routed batch
/// spanning accounts records none (each envelope names its own).
fn record_header(sub: &Submission) -> RecordHeader {
    let first = &sub.events[0];
    let one_account = sub.events.iter().all(|e| e.owner == first.owner);
    // The segment format keeps an empty string for "no account".
    let (account_id, tenant_id) = match &first.owner {
        Some(o) if one_account => (o.account_id.clone(), o.tenant_id.clone()),
        _ => (String::new(), String::new()),
    };
    RecordHeader {
        connector: sub.connector.clone(),
        account_id,
        tenant_id,
        received_ms: sub.received_ms,
        content_type: sub.content_type.clone(),
        event_ids: sub.events.iter().map(|e| e.event.id.clone()).collect(),
        headers: sub.headers.clone(),
    }
}

/// What the segment holds, readable from a listing without fetching it.
fn segment_metadata(pending: &[Pending], claims: &[Option<ClaimRef>], instance: &str) -> Vec<(&'static str, String)> {
    let mut connectors: Vec<&str> = pending
        .iter()
        .zip(claims)
        .filter(|(_, c)| c.is_some())
        .map(|(p, _)| p.sub.connector.as_str())
        .collect();
    connectors.sort_unstable();
    connectors.dedup();
    vec![
        ("connectors", connectors.join(",")),
        ("records", claims.iter().flatten().count().to_string()),
        ("instance", instance.to_string()),
    ]
}

/// PUT the segment; `false` when S3 did not take it (the group is answered 503).
async fn put_segment(
    shared: &Shared,
    key: &str,
    segment: SegmentBuilder,
    metadata: Vec<(&'static str, String)>,
) -> bool {
    let deps = &shared.deps;
    let started = Instant::now();
    let put = deps.store.put_with_metadata(key, segment.finish(), metadata).await;
    deps.metrics.s3_put_seconds.observe(started.elapsed().as_secs_f64());
    match put {
        Ok(()) => {
            deps.readiness.set("s3", true);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "Claim-check PUT failed; answering 503 so providers retry.");
            deps.readiness.set("s3", false);
            false
        }
    }
}

/// The envelope of one new event whose body is at `claim`.
fn envelope(sub: &Submission, r: &Routed, claim: &ClaimRef) -> RawEnvelope {
    let e = &r.event;
    RawEnvelope {
        connector: sub.connector.clone(),
        account_id: r.owner.as_ref().map(|o| o.account_id.clone()),
        tenant_id: r.owner.as_ref().map(|o| o.tenant_id.clone()),
        external_account: e.account.clone(),
        event_id: e.id.clone(),
        event_type: e.event_type.clone(),
        item: e.item,
        // Whole seconds, as delivered since the first version.
        occurred_at: e
            .occurred_ms
            .and_then(|ms| switchyard_core::timefmt::from_unix_millis(ms.div_euclid(1000) * 1000)),
        received_ms: sub.received_ms,
        claim: claim.clone(),
        content_type: sub.content_type.clone(),
    }
}

/// Per submission: whether any of its envelopes was not made durable, and how many
/// JetStream already held (its duplicate window caught a copy Redis had not seen).
struct Published {
    failed: Vec<bool>,
    duplicates: Vec<usize>,
}

/// Send every new event's envelope (`Nats-Msg-Id` = its idempotency key, one of `keys`
/// per event in the group's order), all before waiting, then wait for every PubAck.
async fn publish_envelopes(
    shared: &Shared,
    pending: &[Pending],
    claims: &[Option<ClaimRef>],
    keys: &[String],
) -> Published {
    let deps = &shared.deps;
    let started = Instant::now();
    let mut acks = Vec::new();
    let mut owners = Vec::new();
    let mut failed = vec![false; pending.len()];
    let mut k = 0;
    for (i, (p, claim)) in pending.iter().zip(claims).enumerate() {
        let first = k;
        k += p.sub.events.len();
        let Some(claim) = claim else { continue };
        // A `Subject` clones by reference count.
        let subject = async_nats::Subject::from(deps.names.raw_subject(&p.sub.connector));
        for ((r, seen), key) in p.sub.events.iter().zip(&p.seen).zip(&keys[first..k]) {
            if *seen {
                continue;
            }
            let env = envelope(&p.sub, r, claim);
            let payload = Bytes::from(serde_json::to_vec(&env).expect("an envelope serializes"));
            let mut headers = async_nats::HeaderMap::new();
            // Parsed, never `insert(&str)` (which panics on a line break and would fail
            // the whole group): extraction already refuses such ids, this is the guard.
            let Ok(msg_id) = key.parse::<async_nats::HeaderValue>() else {
                tracing::error!(connector = %p.sub.connector, "An idempotency key holds control characters; answering 503 for its request only.");
                failed[i] = true;
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
                    failed[i] = true;
                }
            }
        }
    }
    let mut duplicates = vec![0usize; pending.len()];
    for (owner, ack) in owners.iter().zip(join_all(acks).await) {
        match ack {
            Ok(a) if a.duplicate => duplicates[*owner] += 1,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "No PubAck for an envelope; answering 503.");
                failed[*owner] = true;
            }
        }
    }
    deps.metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
    deps.readiness.set("nats", !failed.iter().any(|f| *f));
    Published { failed, duplicates }
}

/// A request's answer: 2xx only where the segment is in S3 and every PubAck came
/// back; its duplicates are the events Redis or JetStream had seen.
fn outcome(failed: bool, seen: &[bool], js_duplicates: usize) -> Outcome {
    if failed {
        return Outcome::Unavailable("nats_unavailable");
    }
    Outcome::Durable {
        duplicates: seen.iter().filter(|s| **s).count() + js_duplicates,
    }
}

/// Answer every request, count its events, and return the keys now durable (those of
/// the events not seen before, of requests answered 2xx).
fn answer(shared: &Shared, pending: Vec<Pending>, keys: Vec<String>, published: &Published) -> Vec<String> {
    let metrics = &shared.deps.metrics;
    let mut durable_keys = Vec::new();
    let mut keys = keys.into_iter();
    for (i, p) in pending.into_iter().enumerate() {
        let own_keys: Vec<String> = keys.by_ref().take(p.sub.events.len()).collect();
        let outcome = outcome(published.failed[i], &p.seen, published.duplicates[i]);
        if let Outcome::Durable { duplicates } = outcome {
            let connector = p.sub.connector.as_str();
            let fresh = p.sub.events.len() - duplicates;
            metrics.events.with_label_values(&[connector]).inc_by(fresh as u64);
            metrics
                .duplicates
                .with_label_values(&[connector])
                .inc_by(duplicates as u64);
            durable_keys.extend(
                own_keys
                    .into_iter()
                    .zip(&p.seen)
                    .filter(|(_, seen)| !**seen)
                    .map(|(key, _)| key),
            );
        }
        let _ = p.sub.reply.send(outcome);
    }
    durable_keys
}

fn answer_all(group: Vec<Submission>, outcome: Outcome) {
    for s in group {
        let _ = s.reply.send(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use switchyard_claimcheck::read_segment;
    use switchyard_connectors::extract::ExtractedEvent;
    use switchyard_connectors::signature::{self, RawWebhook};
    use tokio::sync::oneshot;

    use super::*;
    use crate::commit::Owner;

    /// A Stripe webhook as the ingress holds it after verification.
    fn submission(body: &str, events: &[(&str, &str)]) -> Submission {
        let catalog = crate::receive::test_catalog();
        let stripe = catalog.get("stripe").unwrap();
        let now = 1_700_000_000;
        let mut headers = http::HeaderMap::new();
        let url = "https://hooks.example.test/v1/webhooks/stripe/acct";
        for (name, value) in signature::sign::sign(
            &stripe.signature,
            "whsec_test",
            body.as_bytes(),
            now,
            "POST",
            url,
            &headers.clone(),
        ) {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let raw = RawWebhook {
            method: http::Method::POST,
            url: url.into(),
            headers,
            body: Bytes::from(body.to_string()),
        };
        let webhook = signature::verify(&stripe.signature, raw, &["whsec_test"], now).unwrap();
        Submission {
            webhook,
            connector: "stripe".into(),
            events: events
                .iter()
                .map(|(id, account)| Routed {
                    event: ExtractedEvent {
                        id: id.to_string(),
                        event_type: "charge.succeeded".into(),
                        occurred_ms: Some(1_700_000_000_123),
                        item: None,
                        account: None,
                        unrecognized: None,
                    },
                    owner: (!account.is_empty()).then(|| Owner {
                        account_id: account.to_string(),
                        tenant_id: "t1".into(),
                    }),
                })
                .collect(),
            headers: BTreeMap::new(),
            content_type: "application/json".into(),
            received_ms: 1_700_000_001_000,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn seen_answers_are_split_by_submission_in_order() {
        let group = vec![
            submission("{\"a\":1}", &[("e1", "acct")]),
            submission("{\"b\":2}", &[("e2", "acct"), ("e3", "acct")]),
        ];
        let pending = mark_seen(group, &[true, false, true]);
        assert_eq!(pending[0].seen, vec![true]);
        assert_eq!(pending[1].seen, vec![false, true]);
        assert!(pending[0].all_seen() && !pending[1].all_seen());
    }

    #[test]
    fn only_bodies_carrying_a_new_event_go_in_the_segment_each_at_its_claim() {
        let group = vec![
            submission("{\"first\":true}", &[("e1", "acct")]),
            submission("{\"second\":true}", &[("e2", "acct")]),
            submission("{\"third\":true}", &[("e3", "acct")]),
        ];
        let pending = mark_seen(group, &[false, true, false]);
        let (segment, claims) = build_segment(&pending, "raw/k.swy");
        assert!(claims[1].is_none(), "seen before: not stored again");
        let bytes = segment.finish();
        for (claim, body) in [(&claims[0], "{\"first\":true}"), (&claims[2], "{\"third\":true}")] {
            let c = claim.as_ref().unwrap();
            assert_eq!(c.key, "raw/k.swy");
            assert_eq!(&bytes[c.offset as usize..(c.offset + c.len) as usize], body.as_bytes());
        }
        let records = read_segment("raw/k.swy", &bytes).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].header.event_ids, vec!["e3".to_string()]);
        let meta = segment_metadata(&pending, &claims, "ing-1");
        assert_eq!(meta[0], ("connectors", "stripe".to_string()));
        assert_eq!(meta[1], ("records", "2".to_string()));
    }

    #[test]
    fn a_record_names_an_account_only_when_every_event_has_the_same() {
        let one = record_header(&submission("{}", &[("e1", "acct"), ("e2", "acct")]));
        assert_eq!((one.account_id.as_str(), one.tenant_id.as_str()), ("acct", "t1"));
        let mixed = record_header(&submission("{}", &[("e1", "acct"), ("e2", "")]));
        assert_eq!((mixed.account_id.as_str(), mixed.tenant_id.as_str()), ("", ""));
    }

    #[test]
    fn an_envelope_points_at_its_claim_and_says_when_the_event_happened() {
        let sub = submission("{}", &[("e1", "acct")]);
        let claim = ClaimRef {
            key: "raw/k.swy".into(),
            offset: 40,
            len: 2,
        };
        let env = envelope(&sub, &sub.events[0], &claim);
        assert_eq!(env.claim, claim);
        assert_eq!((env.event_id.as_str(), env.owner()), ("e1", Some(("acct", "t1"))));
        assert_eq!(
            env.occurred_at,
            switchyard_core::timefmt::from_unix_millis(1_700_000_000_000)
        );
        assert_eq!(env.received_ms, 1_700_000_001_000);
    }

    #[test]
    fn a_request_is_durable_only_where_every_envelope_was_acknowledged() {
        assert_eq!(outcome(true, &[false], 0), Outcome::Unavailable("nats_unavailable"));
        assert_eq!(outcome(false, &[false, false], 0), Outcome::Durable { duplicates: 0 });
        // Seen by Redis, or caught by JetStream's duplicate window: both duplicates.
        assert_eq!(
            outcome(false, &[true, false, false], 1),
            Outcome::Durable { duplicates: 2 }
        );
    }
}
