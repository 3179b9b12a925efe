//! Why an event was dead-lettered by the normalizer: a closed set. Each reason's
//! [`Reason::as_str`] is what the wire and the metrics carry (the dead letter's
//! `reason`, its subject `<ns>.dlq.normalizer.<reason>`, the `reason` label of
//! `switchyard_normalizer_failures_total`), written once, here.

/// Why an event cannot be normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The envelope names a connector the catalog does not have.
    UnknownConnector,
    /// No account matches the event (yet): register it, then replay.
    UnknownAccount,
    /// The claim-check object is gone.
    ClaimMissing,
    /// The claim-check object is not a valid segment.
    ClaimCorrupt,
    /// The body is neither JSON nor a form.
    MalformedBody,
    /// A batch body has no item at the envelope's index.
    MissingItem,
    /// The mapping failed (or ran out of time on every attempt).
    MappingError,
    /// The mapping produced nothing.
    MappingEmpty,
    /// The event is larger than a mapping may be evaluated on.
    InputTooLarge,
    /// The mapping's output does not match its unified type's schema.
    SchemaViolation,
    /// A routing value cannot be sent as a NATS header.
    InvalidHeader,
    /// Delivered `normalizer.max_deliveries` times without an outcome.
    RedeliveryLimit,
    /// Handling panicked, or the mapping's evaluation did.
    InternalError,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::UnknownConnector,
        Reason::UnknownAccount,
        Reason::ClaimMissing,
        Reason::ClaimCorrupt,
        Reason::MalformedBody,
        Reason::MissingItem,
        Reason::MappingError,
        Reason::MappingEmpty,
        Reason::InputTooLarge,
        Reason::SchemaViolation,
        Reason::InvalidHeader,
        Reason::RedeliveryLimit,
        Reason::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownConnector => "unknown_connector",
            Reason::UnknownAccount => "unknown_account",
            Reason::ClaimMissing => "claim_missing",
            Reason::ClaimCorrupt => "claim_corrupt",
            Reason::MalformedBody => "malformed_body",
            Reason::MissingItem => "missing_item",
            Reason::MappingError => "mapping_error",
            Reason::MappingEmpty => "mapping_empty",
            Reason::InputTooLarge => "input_too_large",
            Reason::SchemaViolation => "schema_violation",
            Reason::InvalidHeader => "invalid_header",
            Reason::RedeliveryLimit => "redelivery_limit",
            Reason::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire names are the variants' names in snake case, each distinct, each a
    /// single subject token.
    #[test]
    fn wire_names_are_the_variant_names() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let name = format!("{r:?}");
            let snake: String = name
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let sep = (i > 0 && c.is_uppercase()).then_some('_');
                    sep.into_iter().chain(c.to_lowercase())
                })
                .collect();
            assert_eq!(r.as_str(), snake);
            assert!(!r.as_str().contains(['.', ' ', '*', '>']));
            assert!(seen.insert(r.as_str()));
        }
    }
}
