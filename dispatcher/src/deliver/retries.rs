//! The retry stream: deliveries waiting for their next attempt.
//!
//! A failed (or deferred) delivery is published here with the time before which it must
//! not be tried. The retry consumer pulls it; when it is early, the message goes back to
//! the server with a delay (`nak` with delay): the wait is held by NATS, durable across
//! dispatcher restarts, and costs the dispatcher no memory. When it is due, the
//! delivery is attempted ([`super::Engine::deliver`]) and the message is acked only
//! once the next step (success, the next retry, a dead letter) is durable
//! ([`Retried::settle`]). The pull loop is the one every consumer shares
//! ([`switchyard_core::consume`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use switchyard_core::consume::{Handler, Settle};
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::names::Names;
use switchyard_core::publish;

use super::{now_ms, EngineError, Fate, Origin};
use crate::deliver::Engine;

/// A lane still full after this many hand-backs waits no longer than this.
const BUSY_WAIT_MAX: Duration = Duration::from_secs(60);

/// Publish a job on the retry stream and wait for its PubAck.
pub async fn publish(
    js: &jetstream::Context,
    names: &Names,
    job: &DeliveryJob,
    msg_id: &str,
) -> Result<(), EngineError> {
    let (subject, headers, payload) = job.to_message(names, msg_id);
    publish::durably(js, subject, headers, payload).await?;
    Ok(())
}

/// The retry consumer's handler: each due retry is attempted once.
pub struct Retries {
    pub engine: Arc<Engine>,
    /// Delay before a retry whose step failed comes again.
    pub retry_delay: Duration,
}

/// What became of one retry message.
#[derive(Debug)]
pub enum Retried {
    /// It cannot be read as a delivery job: nothing can be done with it, ever.
    Unreadable,
    /// Not due for this long: the server holds it meanwhile.
    Early(Duration),
    /// Attempted; its next step (success, next retry, dead letter) is durable.
    Done(Fate),
    /// The endpoint could not be looked up, or its next step not made durable.
    Failed(EngineError),
}

impl Retried {
    /// How the retry message is settled. `handed_back`: how often it was delivered
    /// before (the message's delivery count).
    pub fn settle(&self, handed_back: i64, retry_delay: Duration) -> Settle {
        match self {
            Retried::Unreadable => Settle::Term,
            Retried::Early(wait) => Settle::Nak(Some(*wait)),
            // Each time its lane is still full, it waits twice as long (up to a
            // minute): a hanging endpoint's backlog costs little to hold.
            Retried::Done(Fate::Busy(d)) => {
                let times = handed_back.clamp(1, 7) as u32;
                Settle::Nak(Some((*d * 2u32.pow(times - 1)).min(BUSY_WAIT_MAX)))
            }
            // The ack removes it from the work-queue stream: wait until it has.
            Retried::Done(_) => Settle::DoubleAck,
            Retried::Failed(_) => Settle::Nak(Some(retry_delay)),
        }
    }
}

impl Handler for Retries {
    async fn handle(&self, msg: &jetstream::Message) -> Settle {
        let retried = self.retry(msg).await;
        if let Retried::Failed(e) = &retried {
            tracing::warn!(error = %e, "Retry handed back to NATS.");
        }
        let handed_back = msg.info().map(|i| i.delivered).unwrap_or(1);
        retried.settle(handed_back, self.retry_delay)
    }
}

impl Retries {
    async fn retry(&self, msg: &jetstream::Message) -> Retried {
        let job = match DeliveryJob::from_message(msg.headers.as_ref(), msg.payload.clone()) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, subject = %msg.subject, "Unreadable retry message; terminating it.");
                return Retried::Unreadable;
            }
        };
        let wait = job.not_before_ms - now_ms();
        if wait > 0 {
            return Retried::Early(Duration::from_millis(wait as u64));
        }
        let ep = match self.engine.endpoint_of(&job).await {
            Ok(ep) => ep,
            Err(e) => return Retried::Failed(e),
        };
        match self.engine.deliver(job, ep.as_ref(), Origin::Retry).await {
            Ok(fate) => Retried::Done(fate),
            Err(e) => Retried::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_retry_outcome_has_its_ack() {
        let delay = Duration::from_secs(5);
        assert_eq!(Retried::Unreadable.settle(1, delay), Settle::Term);
        let early = Retried::Early(Duration::from_millis(700));
        assert_eq!(early.settle(1, delay), Settle::Nak(Some(Duration::from_millis(700))));
        for fate in [Fate::Delivered, Fate::Retrying, Fate::Deferred, Fate::DeadLettered] {
            assert_eq!(Retried::Done(fate).settle(1, delay), Settle::DoubleAck, "{fate:?}");
        }
        let lookup = EngineError::Publish(publish::PublishError::Send(
            async_nats::jetstream::context::PublishErrorKind::TimedOut.into(),
        ));
        assert_eq!(Retried::Failed(lookup).settle(1, delay), Settle::Nak(Some(delay)));
    }

    #[test]
    fn a_busy_lane_waits_twice_as_long_each_time_up_to_a_minute() {
        let busy = Retried::Done(Fate::Busy(Duration::from_secs(1)));
        let waits: Vec<Settle> = [0, 1, 2, 3, 7, 50]
            .iter()
            .map(|n| busy.settle(*n, Duration::ZERO))
            .collect();
        let secs = |s: u64| Settle::Nak(Some(Duration::from_secs(s)));
        assert_eq!(waits, [secs(1), secs(1), secs(2), secs(4), secs(60), secs(60)]);
    }
}
