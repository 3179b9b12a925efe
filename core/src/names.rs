//! Every name Switchyard uses in NATS and Redis, derived from one namespace so that
//! two deployments (or two tests) can share servers without seeing each other.

/// Names for one namespace. The namespace is lowercase `[a-z0-9_-]`; streams use its
/// uppercase form.
#[derive(Debug, Clone)]
pub struct Names {
    ns: String,
    stream_ns: String,
}

impl Names {
    pub fn new(namespace: &str) -> Self {
        Self {
            ns: namespace.to_string(),
            stream_ns: namespace.to_ascii_uppercase().replace('-', "_"),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The stream of raw envelopes written by the ingress.
    pub fn raw_stream(&self) -> String {
        format!("{}_RAW", self.stream_ns)
    }

    /// Subject of one connector's raw envelopes.
    pub fn raw_subject(&self, connector: &str) -> String {
        format!("{}.raw.{connector}", self.ns)
    }

    pub fn raw_subjects(&self) -> String {
        format!("{}.raw.>", self.ns)
    }

    /// The stream of unified events written by the normalizer.
    pub fn unified_stream(&self) -> String {
        format!("{}_UNIFIED", self.stream_ns)
    }

    /// Subject of one tenant's unified events.
    pub fn unified_subject(&self, tenant_id: &str) -> String {
        format!("{}.unified.{tenant_id}", self.ns)
    }

    pub fn unified_subjects(&self) -> String {
        format!("{}.unified.>", self.ns)
    }

    /// The stream of deliveries waiting for a retry (work-queue: gone once acked).
    pub fn retry_stream(&self) -> String {
        format!("{}_RETRIES", self.stream_ns)
    }

    /// Subject of one endpoint's retries.
    pub fn retry_subject(&self, endpoint_id: &str) -> String {
        format!("{}.retry.{endpoint_id}", self.ns)
    }

    pub fn retry_subjects(&self) -> String {
        format!("{}.retry.>", self.ns)
    }

    /// Durable consumer of the dispatchers on the retry stream.
    pub fn retry_consumer(&self) -> String {
        "dispatcher-retries".to_string()
    }

    /// The dead-letter stream: every failure an operator may need to see and replay.
    pub fn dead_letter_stream(&self) -> String {
        format!("{}_DEAD_LETTERS", self.stream_ns)
    }

    /// Subject of one dead letter: `<ns>.dlq.<stage>.<reason>`.
    pub fn dead_letter_subject(&self, stage: &str, reason: &str) -> String {
        format!("{}.dlq.{stage}.{reason}", self.ns)
    }

    pub fn dead_letter_subjects(&self) -> String {
        format!("{}.dlq.>", self.ns)
    }

    /// The stream of unified events that no endpoint received (none enabled, none
    /// matching), kept for an operator to re-deliver once an endpoint takes them.
    pub fn undelivered_stream(&self) -> String {
        format!("{}_UNDELIVERED", self.stream_ns)
    }

    /// Subject of one tenant's undelivered events.
    pub fn undelivered_subject(&self, tenant_id: &str) -> String {
        format!("{}.undelivered.{tenant_id}", self.ns)
    }

    pub fn undelivered_subjects(&self) -> String {
        format!("{}.undelivered.>", self.ns)
    }

    /// Durable consumer of the normalizers on the raw stream (shared: queue semantics).
    pub fn normalizer_consumer(&self) -> String {
        "normalizer".to_string()
    }

    /// Durable consumer of the dispatchers on the unified stream.
    pub fn dispatcher_consumer(&self) -> String {
        "dispatcher".to_string()
    }

    /// Core-NATS subject on which registry changes are announced, so caches drop entries.
    pub fn registry_changes(&self) -> String {
        format!("{}.registry.changed", self.ns)
    }

    /// Prefix of every Redis key of this namespace.
    pub fn redis_key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.ns)
    }
}

/// Whether `s` is a valid id for tenants, accounts, endpoints and connectors: it ends up
/// in NATS subjects, Redis keys and S3 keys, so it is kept to a small safe alphabet.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_namespace() {
        let n = Names::new("t1-a");
        assert_eq!(n.raw_stream(), "T1_A_RAW");
        assert_eq!(n.raw_subject("stripe"), "t1-a.raw.stripe");
        assert_eq!(n.redis_key("account:x"), "t1-a:account:x");
    }

    #[test]
    fn ids_are_kept_to_a_safe_alphabet() {
        assert!(is_valid_id("acct_1-A"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a.b"));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id(&"x".repeat(65)));
    }
}
