//! What became of one raw message, and the decisions that lead there, as values: the
//! worker ([`crate::work`]) does the I/O, these say what it means. Pure, so each
//! decision is tested here without a server.
//!
//! # The ack rule
//! [`Outcome::settle`] is the one place an outcome becomes an ack: acked once the
//! outcome is durable (the unified event's or the dead letter's PubAck, or a drop the
//! connector declares), terminated when it is no envelope at all, naked with a delay
//! when a dependency failed for now ([`Transient`]) so the message comes back.

use std::time::Duration;

use switchyard_claimcheck::ClaimCheckError;
use switchyard_core::consume::Settle;
use switchyard_core::publish::PublishError;
use switchyard_registry::RegistryError;

use crate::map::Failure;
use crate::reason::Reason;

/// Delay before a transiently failed message is offered again.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Deliveries of an event whose connector this process's catalog does not have, before
/// its dead letter: the likeliest cause is a connector file that another process (the
/// ingress that accepted the event) has loaded and this one not yet (each polls its
/// catalog every 2 s), so it is tried again for about as long as a few polls take.
pub const UNKNOWN_CONNECTOR_ATTEMPTS: u64 = 5;

/// The metric label of a message that is no envelope (its connector is unknown too).
pub const BAD_ENVELOPE: &str = "bad_envelope";

/// What became of one raw message.
#[derive(Debug)]
pub enum Outcome {
    /// Its unified event has its PubAck.
    Published,
    /// No mapping, and the connector's policy is to drop it (counted).
    Dropped,
    /// Its dead letter has its PubAck.
    DeadLettered,
    /// It is no envelope: nothing can be done with it, ever (counted).
    NotEnvelope,
    /// A dependency failed for now: it comes back after [`RETRY_DELAY`].
    Retry(Transient),
}

impl Outcome {
    /// How the raw message is settled (see the module's doc).
    pub fn settle(&self) -> Settle {
        match self {
            Outcome::Published | Outcome::Dropped | Outcome::DeadLettered => Settle::Ack,
            Outcome::NotEnvelope => Settle::Term,
            Outcome::Retry(_) => Settle::Nak(Some(RETRY_DELAY)),
        }
    }
}

/// Why a message is offered again rather than settled for good.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    #[error(transparent)]
    Claim(ClaimCheckError),
    #[error("looking up the account: {0}")]
    Registry(RegistryError),
    /// The mapping engine is busy with other, abandoned evaluations.
    #[error("{0}")]
    EngineBusy(String),
    /// The mapping's time limit stopped it, perhaps only because the CPU was busy.
    #[error("{detail} (attempt {attempt} of {of}; tried again in case a busy CPU stopped it)")]
    TimeLimit { detail: String, attempt: u64, of: u32 },
    /// The connector is not (yet) in this process's catalog.
    #[error(
        "connector {connector:?} is not in the catalog (attempt {attempt} of {of}; it may not be reloaded here yet)"
    )]
    UnknownConnector { connector: String, attempt: u64, of: u64 },
    #[error("publishing the unified event: {0}")]
    Publish(PublishError),
    #[error("publishing a dead letter: {0}")]
    DeadLetter(PublishError),
}

/// The step after a failure: try again later, or dead-letter the event.
#[derive(Debug)]
pub enum Next {
    Retry(Transient),
    DeadLetter(Reason, String),
}

/// After a mapping failed on delivery `attempt` of the message: a busy engine is tried
/// again; a time limit is tried again until `timeout_attempts` tries; anything else is
/// the event's dead letter.
pub fn after_mapping(failure: Failure, attempt: u64, timeout_attempts: u32) -> Next {
    match failure {
        Failure::Busy(detail) => Next::Retry(Transient::EngineBusy(detail)),
        Failure::Unmappable {
            time_limit: true,
            detail,
            ..
        } if attempt < u64::from(timeout_attempts) => Next::Retry(Transient::TimeLimit {
            detail,
            attempt,
            of: timeout_attempts,
        }),
        Failure::Unmappable {
            reason,
            detail,
            time_limit: true,
        } => Next::DeadLetter(reason, format!("{detail} (on each of {attempt} attempts)")),
        Failure::Unmappable { reason, detail, .. } => Next::DeadLetter(reason, detail),
    }
}

/// On delivery `attempt` of an event whose connector the catalog does not have: tried
/// again until [`UNKNOWN_CONNECTOR_ATTEMPTS`] (fewer when `max_deliveries` is lower, so
/// the redelivery limit never decides instead), then dead-lettered.
pub fn after_unknown_connector(connector: &str, attempt: u64, max_deliveries: u32) -> Next {
    let of = UNKNOWN_CONNECTOR_ATTEMPTS
        .min(u64::from(max_deliveries).saturating_sub(1))
        .max(1);
    if attempt < of {
        return Next::Retry(Transient::UnknownConnector {
            connector: connector.to_string(),
            attempt,
            of,
        });
    }
    Next::DeadLetter(
        Reason::UnknownConnector,
        format!(
            "connector {connector:?} is not in the catalog (on each of {attempt} attempts); add its connector file, then replay this dead letter"
        ),
    )
}

/// After the claim-check could not be read: gone or corrupt is final, S3 being
/// unavailable is not.
pub fn after_claim(e: ClaimCheckError) -> Next {
    match e {
        ClaimCheckError::NotFound(key) => {
            Next::DeadLetter(Reason::ClaimMissing, format!("claim-check object {key} does not exist"))
        }
        e @ ClaimCheckError::Corrupt { .. } => Next::DeadLetter(Reason::ClaimCorrupt, e.to_string()),
        e => Next::Retry(Transient::Claim(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connector not loaded here yet is waited for a few deliveries, never past the
    /// redelivery limit; then it is the event's dead letter, saying what to do.
    #[test]
    fn an_unknown_connector_is_tried_again_before_its_dead_letter() {
        for attempt in 1..UNKNOWN_CONNECTOR_ATTEMPTS {
            assert!(matches!(
                after_unknown_connector("acme", attempt, 10),
                Next::Retry(Transient::UnknownConnector { .. })
            ));
        }
        let Next::DeadLetter(reason, detail) = after_unknown_connector("acme", UNKNOWN_CONNECTOR_ATTEMPTS, 10) else {
            panic!("not dead-lettered");
        };
        assert_eq!(reason, Reason::UnknownConnector);
        assert!(detail.contains("add its connector file, then replay"), "{detail}");
        // With max_deliveries = 3 the second delivery is the last try.
        assert!(matches!(after_unknown_connector("acme", 1, 3), Next::Retry(_)));
        assert!(matches!(after_unknown_connector("acme", 2, 3), Next::DeadLetter(..)));
        assert!(matches!(after_unknown_connector("acme", 1, 2), Next::DeadLetter(..)));
    }

    fn unmappable(reason: Reason, time_limit: bool) -> Failure {
        Failure::Unmappable {
            reason,
            detail: "it failed".into(),
            time_limit,
        }
    }

    #[test]
    fn durable_outcomes_ack_the_unreadable_terminate_the_transient_come_back() {
        assert_eq!(Outcome::Published.settle(), Settle::Ack);
        assert_eq!(Outcome::Dropped.settle(), Settle::Ack);
        assert_eq!(Outcome::DeadLettered.settle(), Settle::Ack);
        assert_eq!(Outcome::NotEnvelope.settle(), Settle::Term);
        let busy = Outcome::Retry(Transient::EngineBusy("busy".into()));
        assert_eq!(busy.settle(), Settle::Nak(Some(RETRY_DELAY)));
    }

    #[test]
    fn a_busy_engine_is_retried_never_dead_lettered() {
        let next = after_mapping(Failure::Busy("engine busy".into()), 99, 2);
        assert!(matches!(next, Next::Retry(Transient::EngineBusy(d)) if d == "engine busy"));
    }

    #[test]
    fn a_time_limit_is_retried_until_the_last_attempt() {
        let next = after_mapping(unmappable(Reason::MappingError, true), 1, 3);
        let Next::Retry(why) = next else { panic!("{next:?}") };
        assert_eq!(
            why.to_string(),
            "it failed (attempt 1 of 3; tried again in case a busy CPU stopped it)"
        );
        let next = after_mapping(unmappable(Reason::MappingError, true), 3, 3);
        let Next::DeadLetter(reason, detail) = next else {
            panic!("{next:?}")
        };
        assert_eq!(reason, Reason::MappingError);
        assert_eq!(detail, "it failed (on each of 3 attempts)");
    }

    #[test]
    fn other_mapping_failures_are_dead_lettered_at_once() {
        let next = after_mapping(unmappable(Reason::MalformedBody, false), 1, 3);
        assert!(matches!(next, Next::DeadLetter(Reason::MalformedBody, d) if d == "it failed"));
    }

    #[test]
    fn a_missing_or_corrupt_claim_is_final_an_unavailable_store_is_not() {
        let gone = after_claim(ClaimCheckError::NotFound("k1".into()));
        assert!(
            matches!(&gone, Next::DeadLetter(Reason::ClaimMissing, d) if d == "claim-check object k1 does not exist"),
            "{gone:?}"
        );
        let corrupt = after_claim(ClaimCheckError::Corrupt {
            key: "k1".into(),
            offset: 4,
        });
        assert!(matches!(corrupt, Next::DeadLetter(Reason::ClaimCorrupt, _)));
        let down = after_claim(ClaimCheckError::Unavailable("refused".into()));
        assert!(matches!(down, Next::Retry(Transient::Claim(_))));
    }
}
