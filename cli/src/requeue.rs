//! What a dead letter becomes when it is replayed: the message that puts it back where
//! it failed. Pure: no I/O, so every rule here is unit-tested.
//!
//! - A **dispatcher** dead letter becomes a [`DeliveryJob`] on its endpoint's retry
//!   subject: attempt 1, due now, no history, the same unified event (body and id, so
//!   the `webhook-id` is the one the endpoint may have seen and it can dedupe).
//! - A **normalizer** dead letter becomes its [`RawEnvelope`] again on the connector's
//!   raw subject, so the normalizer maps it with the catalog and registry as they are
//!   now (the fixed mapping, the account registered since).
//!
//! Either way the `Nats-Msg-Id` is unique to this dead letter's replay
//! (`…:replay:<dead-letter sequence>`): JetStream's duplicate window does not drop it as
//! a copy of the original, and replaying the same dead letter twice (an interrupted run
//! re-run before it was removed) is stored once.

use async_nats::HeaderMap;
use bytes::Bytes;
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::envelope::{DeadLetter, UnifiedEvent};
use switchyard_core::names::Names;

/// A message ready to publish.
#[derive(Debug, Clone)]
pub struct Requeue {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
    pub msg_id: String,
}

/// Why a dead letter cannot be replayed as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreplayable {
    #[error("a {0} dead letter cannot be replayed (unknown stage)")]
    UnknownStage(String),
    #[error("the dead letter does not carry its {0}")]
    Missing(&'static str),
}

/// The message replaying `letter`, stored at sequence `seq`, at `now_ms`.
pub fn requeue(names: &Names, letter: &DeadLetter, seq: u64, now_ms: i64) -> Result<Requeue, Unreplayable> {
    match letter.stage.as_str() {
        "dispatcher" => delivery(names, letter, seq, now_ms),
        "normalizer" => raw(names, letter, seq),
        other => Err(Unreplayable::UnknownStage(other.to_string())),
    }
}

fn delivery(names: &Names, letter: &DeadLetter, seq: u64, now_ms: i64) -> Result<Requeue, Unreplayable> {
    let event = letter.event.as_ref().ok_or(Unreplayable::Missing("event"))?;
    let endpoint_id = letter.endpoint_id.clone().ok_or(Unreplayable::Missing("endpoint"))?;
    let field = |name: &str| event.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let event_id = letter
        .event_id
        .clone()
        .or_else(|| field("id"))
        .ok_or(Unreplayable::Missing("event id"))?;
    let event_type = letter
        .event_type
        .clone()
        .or_else(|| field("type"))
        .ok_or(Unreplayable::Missing("event type"))?;
    let tenant_id = letter
        .tenant_id
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| field("tenant_id"))
        .ok_or(Unreplayable::Missing("tenant"))?;
    // The body as the normalizer wrote it (its field order), so the bytes delivered are
    // the ones the first attempts carried; an event of another shape goes as it is.
    let body = match serde_json::from_value::<UnifiedEvent>(event.clone()) {
        Ok(e) => serde_json::to_vec(&e),
        Err(_) => serde_json::to_vec(event),
    }
    .expect("JSON serializes");
    let received_ms = field("received_at").and_then(|t| {
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(switchyard_core::timefmt::unix_millis)
    });
    let job = DeliveryJob {
        event_id,
        event_type,
        tenant_id,
        endpoint_id,
        received_ms,
        attempt: 1,
        not_before_ms: now_ms,
        history: Vec::new(),
        body: body.into(),
    };
    let msg_id = format!("{}:{}:replay:{seq}", job.event_id, job.endpoint_id);
    let (subject, headers, payload) = job.to_message(names, &msg_id);
    Ok(Requeue {
        subject,
        headers,
        payload,
        msg_id,
    })
}

fn raw(names: &Names, letter: &DeadLetter, seq: u64) -> Result<Requeue, Unreplayable> {
    let env = letter.envelope.as_ref().ok_or(Unreplayable::Missing("raw envelope"))?;
    // The normalizer needs nothing but the envelope: the ingress publishes it with the
    // message id as its only header, and the normalizer reads everything else from the
    // body and the claim-check it names.
    let msg_id = format!("{}:replay:{seq}", env.idempotency_key());
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id.as_str());
    Ok(Requeue {
        subject: names.raw_subject(&env.connector),
        headers,
        payload: serde_json::to_vec(env).expect("an envelope serializes").into(),
        msg_id,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_core::envelope::{AttemptOutcome, ClaimRef, RawEnvelope};

    use super::*;

    fn base(stage: &str) -> DeadLetter {
        DeadLetter {
            id: "x".into(),
            stage: stage.into(),
            reason: "r".into(),
            detail: String::new(),
            connector: "stripe".into(),
            account_id: "acct".into(),
            tenant_id: Some("t1".into()),
            envelope: None,
            endpoint_id: None,
            event_id: None,
            event_type: None,
            event: None,
            attempts: vec![],
            failed_at: String::new(),
        }
    }

    #[test]
    fn a_dispatcher_dead_letter_is_a_fresh_first_attempt_with_the_same_event() {
        let event = json!({"id": "evt_1", "type": "payments.invoice.paid", "tenant_id": "t1", "account_id": "acct",
                           "connector": "stripe", "occurred_at": "2026-11-23T09:00:00Z",
                           "received_at": "2026-11-23T09:00:01.500Z", "data": {"a": 1}});
        let letter = DeadLetter {
            endpoint_id: Some("ep_1".into()),
            event_id: Some("evt_1".into()),
            event_type: Some("payments.invoice.paid".into()),
            event: Some(event.clone()),
            attempts: vec![AttemptOutcome {
                at_ms: 1,
                class: "http_error".into(),
                status: Some(500),
                latency_ms: 2,
                error: None,
            }],
            ..base("dispatcher")
        };
        let r = requeue(&Names::new("ns"), &letter, 42, 1_000).unwrap();
        assert_eq!(r.subject, "ns.retry.ep_1");
        assert_eq!(r.msg_id, "evt_1:ep_1:replay:42");
        let job = DeliveryJob::from_message(Some(&r.headers), r.payload).unwrap();
        assert_eq!((job.attempt, job.not_before_ms, job.history.len()), (1, 1_000, 0));
        assert_eq!(job.event_id, "evt_1");
        assert_eq!(job.received_ms, Some(1_795_424_401_500));
        let body: serde_json::Value = serde_json::from_slice(&job.body).unwrap();
        assert_eq!(body, event);
        assert!(std::str::from_utf8(&job.body).unwrap().starts_with("{\"id\":\"evt_1\""));
    }

    #[test]
    fn a_normalizer_dead_letter_is_its_envelope_again_under_a_new_message_id() {
        let env = RawEnvelope {
            connector: "hubspot".into(),
            account_id: None,
            tenant_id: None,
            external_account: Some("424242".into()),
            event_id: "3".into(),
            event_type: "contact.creation".into(),
            item: Some(2),
            occurred_at: None,
            received_ms: 5,
            claim: ClaimRef {
                key: "k".into(),
                offset: 1,
                len: 2,
            },
            content_type: "application/json".into(),
        };
        let letter = DeadLetter {
            envelope: Some(env.clone()),
            ..base("normalizer")
        };
        let r = requeue(&Names::new("ns"), &letter, 7, 0).unwrap();
        assert_eq!(r.subject, "ns.raw.hubspot");
        assert_eq!(r.msg_id, "hubspot/@424242/3:replay:7");
        assert_eq!(
            r.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str()),
            Some("hubspot/@424242/3:replay:7")
        );
        assert_eq!(serde_json::from_slice::<RawEnvelope>(&r.payload).unwrap(), env);
    }

    #[test]
    fn what_cannot_be_replayed_says_why() {
        let n = Names::new("ns");
        assert_eq!(
            requeue(&n, &base("normalizer"), 1, 0).unwrap_err(),
            Unreplayable::Missing("raw envelope")
        );
        assert_eq!(
            requeue(&n, &base("dispatcher"), 1, 0).unwrap_err(),
            Unreplayable::Missing("event")
        );
        assert!(matches!(
            requeue(&n, &base("ingress"), 1, 0),
            Err(Unreplayable::UnknownStage(_))
        ));
    }
}
