//! One raw event to its unified event: the connectors crate picks the event out of the
//! body and applies the connector's mapping ([`switchyard_connectors::apply::map_body`],
//! the same steps `switchyard connectors map` and the fixtures run); this wraps the result in the
//! unified envelope. Pure: no I/O.

use switchyard_connectors::apply::{self, ApplyError, Outcome};
use switchyard_connectors::mapping::{Limits, MappingError};
use switchyard_connectors::Connector;
use switchyard_core::envelope::{RawEnvelope, UnifiedEvent};
use switchyard_core::ids;
use switchyard_core::timefmt;

use crate::reason::Reason;

/// What became of one raw event.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    Event(Box<UnifiedEvent>),
    /// A `many` mapping's events, in order: the provider event named several records.
    Many(Vec<UnifiedEvent>),
    /// No mapping, and the connector's policy is to drop (counted).
    Dropped,
}

/// Why an event was not mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Abandoned evaluations still hold the engine: no fault of this event's, which is
    /// tried again later and never dead-lettered.
    Busy(String),
    /// The event cannot be mapped: it is dead-lettered with `reason`.
    Unmappable {
        reason: Reason,
        detail: String,
        /// The mapping's time limit stopped it: retried before it is dead-lettered.
        time_limit: bool,
    },
}

impl Failure {
    /// The dead-letter reason; `None` for [`Failure::Busy`].
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Failure::Busy(_) => None,
            Failure::Unmappable { reason, .. } => Some(*reason),
        }
    }

    /// One line for the operator.
    pub fn detail(&self) -> &str {
        match self {
            Failure::Busy(detail) | Failure::Unmappable { detail, .. } => detail,
        }
    }

    pub fn is_time_limit(&self) -> bool {
        matches!(self, Failure::Unmappable { time_limit: true, .. })
    }
}

impl From<ApplyError> for Failure {
    fn from(e: ApplyError) -> Self {
        let reason = match &e {
            ApplyError::MalformedBody => Reason::MalformedBody,
            ApplyError::MissingItem(_) => Reason::MissingItem,
            ApplyError::Mapping {
                source: MappingError::Busy(_),
                ..
            } => return Failure::Busy(e.to_string()),
            ApplyError::Mapping { .. } | ApplyError::TooMany { .. } => Reason::MappingError,
            ApplyError::Empty(_) => Reason::MappingEmpty,
            ApplyError::InputTooLarge { .. } => Reason::InputTooLarge,
        };
        Failure::Unmappable {
            reason,
            time_limit: e.is_time_limit(),
            detail: e.to_string(),
        }
    }
}

pub fn normalize(connector: &Connector, env: &RawEnvelope, body: &[u8], limits: Limits) -> Result<Mapped, Failure> {
    let outcome = apply::map_body(connector, &env.event_type, body, &env.content_type, env.item, limits)?;
    Ok(match outcome {
        Outcome::Mapped { unified_type, data } => Mapped::Event(Box::new(unified(env, 0, unified_type, data))),
        // Each its own id (the index after the provider event's key), so a redelivered
        // raw event publishes the same ones again and the duplicate window drops them.
        Outcome::Many { unified_type, items } => Mapped::Many(
            items
                .into_iter()
                .enumerate()
                .map(|(n, data)| unified(env, n, unified_type.clone(), data))
                .collect(),
        ),
        Outcome::Dropped => Mapped::Dropped,
    })
}

/// The `n`th unified event of the raw event `env`.
fn unified(env: &RawEnvelope, n: usize, event_type: String, data: serde_json::Value) -> UnifiedEvent {
    let received_at = timefmt::from_unix_millis(env.received_ms)
        .map(timefmt::rfc3339)
        .unwrap_or_default();
    UnifiedEvent {
        id: ids::unified_event_id(&env.idempotency_key(), n),
        event_type,
        schema_version: None,
        tenant_id: env.tenant_id.clone().unwrap_or_default(),
        account_id: env.account_id.clone().unwrap_or_default(),
        connector: env.connector.clone(),
        occurred_at: env
            .occurred_at
            .map(timefmt::rfc3339)
            .unwrap_or_else(|| received_at.clone()),
        received_at,
        data,
        mapping_error: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use serde_json::json;
    use switchyard_connectors::Catalog;
    use switchyard_core::envelope::ClaimRef;

    use super::*;

    fn stripe(event_type: &str, object: serde_json::Value, extra: serde_json::Value) -> (RawEnvelope, Vec<u8>) {
        let mut body = json!({
            "id": "evt_1", "object": "event", "created": 1_700_000_000, "livemode": false,
            "type": event_type, "data": {"object": object}
        });
        if let Some(prev) = extra.get("previous_attributes") {
            body["data"]["previous_attributes"] = prev.clone();
        }
        let mut env = envelope("stripe", event_type);
        env.occurred_at = timefmt::from_unix_millis(1_700_000_000_000);
        (env, serde_json::to_vec(&body).unwrap())
    }

    /// An envelope of `connector`'s event `evt_1` of `event_type`, for tenant `t`.
    pub(crate) fn envelope(connector: &str, event_type: &str) -> RawEnvelope {
        RawEnvelope {
            connector: connector.into(),
            account_id: Some("acct".into()),
            tenant_id: Some("t".into()),
            external_account: None,
            event_id: "evt_1".into(),
            event_type: event_type.into(),
            item: None,
            occurred_at: None,
            received_ms: 1_700_000_001_234,
            claim: ClaimRef {
                key: "k".into(),
                offset: 0,
                len: 0,
            },
            content_type: "application/json".into(),
        }
    }

    fn map(env: &RawEnvelope, body: &[u8]) -> UnifiedEvent {
        let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog")).unwrap();
        match normalize(catalog.get("stripe").unwrap(), env, body, Limits::default()).unwrap() {
            Mapped::Event(e) => *e,
            other => panic!("not one event: {other:?}"),
        }
    }

    /// The typed reasons carry the names the connectors crate gives its errors.
    #[test]
    fn failures_keep_the_connectors_reason_names() {
        let errors = [
            ApplyError::MalformedBody,
            ApplyError::MissingItem(3),
            ApplyError::Empty("x".into()),
            ApplyError::InputTooLarge {
                provider_type: "x".into(),
                bytes: 2,
                limit: 1,
            },
            ApplyError::Mapping {
                provider_type: "x".into(),
                source: MappingError::Busy(4),
            },
        ];
        for e in errors {
            let name = e.reason();
            match Failure::from(e) {
                Failure::Busy(_) => assert_eq!(name, "engine_busy"),
                f => assert_eq!(f.reason().map(Reason::as_str), Some(name), "{f:?}"),
            }
        }
    }

    #[test]
    fn stripe_invoice_paid() {
        let (env, body) = stripe(
            "invoice.paid",
            json!({"id": "in_1", "object": "invoice", "customer": "cus_1", "subscription": "sub_1", "number": "A-0001",
                   "amount_due": 2000, "amount_paid": 2000, "currency": "usd", "hosted_invoice_url": "https://invoice.stripe.com/i/x",
                   "status_transitions": {"paid_at": 1_700_000_000}}),
            json!({}),
        );
        let e = map(&env, &body);
        assert_eq!(e.event_type, "payments.invoice.paid");
        assert_eq!(e.data["invoice"]["amount_paid"], 2000);
        assert_eq!(e.data["invoice"]["currency"], "USD");
        assert_eq!(e.data["invoice"]["paid_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(e.received_at, "2023-11-14T22:13:21.234Z");
        assert_eq!(e.id, ids::unified_event_id("stripe/acct/evt_1", 0));
    }

    /// A Copper notification naming two people is two events, each with its own id
    /// after the provider event's key; naming one, the one event has the plain id.
    #[test]
    fn a_notification_naming_several_records_is_one_event_each() {
        let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog")).unwrap();
        let copper = catalog.get("copper").unwrap();
        let env = envelope("copper", "person");
        let body = br#"{"ids": [27140359, 27140361], "type": "person", "event": "delete", "subscription_id": 17065}"#;
        let Mapped::Many(events) = normalize(copper, &env, body, Limits::default()).unwrap() else {
            panic!("not split");
        };
        let key = env.idempotency_key();
        let got: Vec<(&str, &str, &serde_json::Value)> = events
            .iter()
            .map(|e| (e.id.as_str(), e.event_type.as_str(), &e.data["contact"]["id"]))
            .collect();
        let (first, second) = (ids::unified_event_id(&key, 0), ids::unified_event_id(&key, 1));
        assert_eq!(
            got,
            [
                (first.as_str(), "crm.contact.deleted", &json!("27140359")),
                (second.as_str(), "crm.contact.deleted", &json!("27140361"))
            ]
        );
        assert!(events.iter().all(|e| e.tenant_id == "t" && e.connector == "copper"));
        let one = br#"{"ids": [27140359], "type": "person", "event": "delete", "subscription_id": 17065}"#;
        let Mapped::Event(e) = normalize(copper, &env, one, Limits::default()).unwrap() else {
            panic!("one record is one event");
        };
        assert_eq!(e.id, first);
    }

    #[test]
    fn stripe_charge_refunded_and_customer_updated() {
        let (env, body) = stripe(
            "charge.refunded",
            json!({"id": "ch_1", "customer": "cus_1", "payment_intent": "pi_1", "amount": 5000,
                   "amount_refunded": 5000, "currency": "eur", "refunded": true}),
            json!({}),
        );
        let e = map(&env, &body);
        assert_eq!(e.event_type, "payments.charge.refunded");
        assert_eq!(e.data["charge"]["amount_refunded"], 5000);
        assert_eq!(e.data["charge"]["currency"], "EUR");
        let (env, body) = stripe(
            "customer.updated",
            json!({"id": "cus_1", "email": "new@example.com", "name": "N", "phone": null, "currency": "usd", "metadata": {}}),
            json!({"previous_attributes": {"email": "old@example.com"}}),
        );
        let e = map(&env, &body);
        assert_eq!(e.event_type, "payments.customer.updated");
        assert_eq!(e.data["changed_fields"], json!(["email"]));
    }

    #[test]
    fn unmapped_stripe_events_pass_through() {
        let (env, body) = stripe("balance.available", json!({"id": "bal_1"}), json!({}));
        let e = map(&env, &body);
        assert_eq!(e.event_type, "stripe.balance.available");
        assert_eq!(e.data["data"]["object"]["id"], "bal_1");
    }

    #[test]
    fn nineteen_digit_integers_keep_every_digit() {
        // Passed through: the event as delivered holds the number as the provider sent it.
        let (env, body) = stripe(
            "balance.available",
            json!({"id": "bal_1", "ref": 820_982_911_946_154_508u64}),
            json!({}),
        );
        let e = map(&env, &body);
        assert!(
            serde_json::to_string(&e)
                .unwrap()
                .contains(r#""ref":820982911946154508"#),
            "{e:?}"
        );
        // Mapped: the engine holds it as its digits, so they all come out.
        let (env, body) = stripe(
            "customer.updated",
            json!({"id": "cus_1", "email": "a@example.com", "metadata": {"n": 820_982_911_946_154_508u64}}),
            json!({"previous_attributes": {"email": "old@example.com"}}),
        );
        let e = map(&env, &body);
        assert!(
            serde_json::to_string(&e.data).unwrap().contains("820982911946154508"),
            "{:?}",
            e.data
        );
    }
}
