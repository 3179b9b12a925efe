//! The registry's records as the binaries use them. Secrets are [`Secret`]s here
//! and sealed only in [`super::store`], as are endpoints' custom header values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use switchyard_core::secret::Secret;
pub use switchyard_core::secret::{active_secrets, SigningSecret};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A tenant's delivery destination. Its `Debug` shows neither secrets nor header values.
#[derive(Clone, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: String,
    /// Unified event types this endpoint receives, as [`type_matches`] reads them: a
    /// trailing `*` matches any depth (`payments.*`), one in the middle one segment.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// The Standard Webhooks signing secret, `whsec_<base64>`.
    pub secret: Secret,
    /// Secrets replaced by a rotation, each valid until its expiry (the grace period):
    /// deliveries carry a signature with each of them beside the current one.
    pub previous_secrets: Vec<SigningSecret>,
    /// A JSONata boolean expression over the unified event; only events for which it is
    /// `true` are delivered. Checked when saved.
    pub filter: Option<String>,
    /// Extra headers sent with every delivery (not `webhook-*`, not hop-by-hop). Their
    /// values often are the receiver's credentials: sealed at rest like the secrets.
    pub headers: BTreeMap<String, String>,
    /// Requests per second to this endpoint, across every dispatcher process.
    pub rate_limit: Option<u32>,
    /// Requests in flight to this endpoint at once, per dispatcher process.
    pub max_in_flight: Option<u32>,
    /// Why the endpoint was disabled (`gone`, `failing`, `manual`), when it is.
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("enabled", &self.enabled)
            .field("filter", &self.filter)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("disabled_reason", &self.disabled_reason)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A new enabled endpoint with no optional settings.
    pub fn new(
        id: impl Into<String>,
        tenant_id: impl Into<String>,
        url: impl Into<String>,
        event_types: Vec<String>,
        secret: Secret,
        now: &str,
    ) -> Self {
        Self {
            id: id.into(),
            tenant_id: tenant_id.into(),
            url: url.into(),
            description: String::new(),
            event_types,
            enabled: true,
            secret,
            previous_secrets: Vec::new(),
            filter: None,
            headers: BTreeMap::new(),
            rate_limit: None,
            max_in_flight: None,
            disabled_reason: None,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        }
    }

    /// The secrets deliveries are signed with at `now_unix`: the current one first, then
    /// those of a rotation still within their grace period.
    pub fn signing_secrets(&self, now_unix: i64) -> Vec<&str> {
        let mut out = vec![self.secret.expose()];
        out.extend(active_secrets(&self.previous_secrets, now_unix));
        out
    }

    /// Whether this endpoint subscribes to `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && self.event_types.iter().any(|p| type_matches(p, event_type))
    }
}

/// Whether an event type pattern matches `event_type`, as globs are read:
/// - a lone `*` matches every type;
/// - a `*` as the last segment matches everything under the prefix, at any depth
///   (`payments.*` matches `payments.invoice.paid` and `payments.refund`, not `payments`);
/// - a `*` anywhere else matches exactly one segment (`*.charge.refunded`);
/// - every other segment matches itself.
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let event: Vec<&str> = event_type.split('.').collect();
    let segment = |(p, t): (&&str, &&str)| *p == "*" || p == t;
    match pattern.split_last() {
        Some((&"*", prefix)) => event.len() > prefix.len() && prefix.iter().zip(&event).all(segment),
        _ => pattern.len() == event.len() && pattern.iter().zip(&event).all(segment),
    }
}

/// One integrated account: a provider account of a tenant (a Stripe account, a GitHub
/// installation) whose webhooks arrive at `/v1/webhooks/<connector>/<account id>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub tenant_id: String,
    pub connector: String,
    /// The provider's id for it (routing key of connector-level endpoints).
    pub external_id: Option<String>,
    /// Inbound signing secrets; any active one that verifies passes (rotation without
    /// loss: add the provider's new secret beside the old, give the old an expiry).
    pub signing_secrets: Vec<SigningSecret>,
    /// Public keys for asymmetric schemes (Ed25519, ECDSA); not secret.
    pub public_keys: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn a_trailing_wildcard_matches_any_depth_a_middle_one_one_segment() {
        // Trailing: everything under the prefix, at any depth, but not the prefix itself.
        assert!(type_matches("payments.*", "payments.refund"));
        assert!(type_matches("payments.*", "payments.invoice.paid"));
        assert!(type_matches("payments.*", "payments.charge.refunded"));
        assert!(type_matches("payments.charge.*", "payments.charge.refunded"));
        assert!(!type_matches("payments.*", "payments"));
        assert!(!type_matches("payments.*", "paymentsx.invoice.paid"));
        assert!(!type_matches("crm.*", "payments.charge"));
        // Middle: exactly one segment.
        assert!(type_matches("*.charge.refunded", "payments.charge.refunded"));
        assert!(!type_matches("*.refunded", "payments.charge.refunded"));
        assert!(type_matches("payments.*.paid", "payments.invoice.paid"));
        assert!(!type_matches("payments.*.paid", "payments.invoice.x.paid"));
        // Both: one segment, then anything below.
        assert!(type_matches("payments.*.*", "payments.charge.refunded"));
        assert!(!type_matches("payments.*.*", "payments.refund"));
        assert!(type_matches("*", "anything.at.all"));
        assert!(type_matches("crm.contact.created", "crm.contact.created"));
        assert!(!type_matches("crm.contact.created", "crm.contact.created.x"));
    }
}
