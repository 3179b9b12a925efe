//! Deterministic ids. Every hop derives its id from the provider's event id, so that a
//! re-processed event keeps its id and every dedupe window (Redis, `Nats-Msg-Id`, the
//! receiver's `webhook-id`) recognises it.

use sha2::{Digest, Sha256};

/// The idempotency key of one provider event: `connector/account/provider event id`.
pub fn idempotency_key(connector: &str, account_id: &str, provider_event_id: &str) -> String {
    format!("{connector}/{account_id}/{provider_event_id}")
}

/// The account part of an idempotency key: the account id, or `@<provider account id>`
/// for an event routed to an account that was not registered when it arrived.
pub fn account_part<'a>(account_id: Option<&'a str>, external_account: Option<&'a str>) -> std::borrow::Cow<'a, str> {
    match (account_id, external_account) {
        (Some(a), _) => std::borrow::Cow::Borrowed(a),
        (None, Some(ext)) => std::borrow::Cow::Owned(format!("@{ext}")),
        (None, None) => std::borrow::Cow::Borrowed(""),
    }
}

/// The unified event id: `evt_` and 32 hex digits of SHA-256 over the idempotency key
/// (and, when a mapping yields several unified events from one provider event, the index).
pub fn unified_event_id(idempotency_key: &str, index: usize) -> String {
    let mut h = Sha256::new();
    h.update(idempotency_key.as_bytes());
    if index > 0 {
        h.update(format!("#{index}").as_bytes());
    }
    let digest = h.finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_ids_are_stable_and_distinct() {
        let k = idempotency_key("stripe", "acct", "evt_1");
        assert_eq!(unified_event_id(&k, 0), unified_event_id(&k, 0));
        assert_ne!(unified_event_id(&k, 0), unified_event_id(&k, 1));
        assert_eq!(unified_event_id(&k, 0).len(), 36);
    }
}
