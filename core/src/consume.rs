//! The one pull-consumer loop: the normalizer's raw envelopes, the dispatcher's unified
//! events and its retries are all pulled, handled and settled here.
//!
//! # The loop
//! 1. A permit is taken *before* the next message is pulled off the stream, so at most
//!    [`Pull::concurrency`] messages are in hand; the consumer's `max_ack_pending`
//!    bounds what is held across processes.
//! 2. Each message is its own task, so a multi-threaded runtime shares the work.
//! 3. The [`Handler`] decides a [`Settle`]; the loop applies it, in one place
//!    ([`settle`]). Handlers never ack themselves: whoever reads a handler sees its
//!    decision as a value and can test it without a server.
//! 4. A failed pull is logged and the client pulls again (it backs off by itself and
//!    its heartbeats notice a silent server).
//!
//! # Shutdown
//! On cancellation the loop stops pulling, lets the started messages finish (their
//! outcome made durable and settled) within [`Pull::grace`], then hands back at once
//! (nak) what was fetched but not started, so another process takes it now rather than
//! after the ack wait. Anything still unsettled is redelivered after `ack_wait`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{PullConsumer, StreamError};
use async_nats::jetstream::{AckKind, Message};
use futures::{Stream, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the server must show it is alive while a pull waits.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long the hand-back at shutdown waits for each message already fetched.
const HAND_BACK_WAIT: Duration = Duration::from_millis(20);

/// What becomes of a message once handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done: its outcome is durable.
    Ack,
    /// Done, and wait until the server has recorded the ack (work-queue streams, where
    /// the ack removes the message).
    DoubleAck,
    /// Offer it again, after the delay (`None`: at once).
    Nak(Option<Duration>),
    /// Never offer it again: it cannot be read, and is no one's to fix by retrying.
    Term,
}

/// Handles one message at a time, possibly many at once.
pub trait Handler: Send + Sync + 'static {
    /// Handle `msg` and say how to settle it. Settling is the loop's job.
    fn handle(&self, msg: &Message) -> impl Future<Output = Settle> + Send;
}

/// How a loop pulls.
#[derive(Debug, Clone, Copy)]
pub struct Pull {
    /// Messages asked for per pull request.
    pub batch: usize,
    /// Messages in hand at once.
    pub concurrency: usize,
    /// How long started messages may take to finish after shutdown; `None`: as long as
    /// they take.
    pub grace: Option<Duration>,
    /// What the messages are, for log lines ("raw envelopes").
    pub what: &'static str,
}

/// The consumer's message stream could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot pull {what}: {source}; is NATS up and the consumer declared?")]
pub struct ConsumeError {
    what: &'static str,
    #[source]
    source: StreamError,
}

/// Pull from `consumer` and handle every message with `handler` until `shutdown`, then
/// drain (see the module's doc).
pub async fn run<H: Handler>(
    consumer: PullConsumer,
    pull: Pull,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), ConsumeError> {
    let messages = consumer
        .stream()
        .max_messages_per_batch(pull.batch)
        .heartbeat(HEARTBEAT)
        .messages()
        .await
        .map_err(|source| ConsumeError {
            what: pull.what,
            source,
        })?;
    let mut messages = Box::pin(messages.take_until(shutdown.clone().cancelled_owned()));
    let permits = Arc::new(Semaphore::new(pull.concurrency.max(1)));
    let tasks = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        match messages.next().await {
            Some(Ok(msg)) => {
                let handler = handler.clone();
                // Boxed: a handling future is several KB (S3, NATS and dead-letter
                // states), which the runtime would otherwise copy a few times per spawn.
                tasks.spawn(Box::pin(async move {
                    let decision = handler.handle(&msg).await;
                    settle(&msg, decision).await;
                    drop(permit);
                }));
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, what = pull.what, "Pulling {} failed; the consumer retries.", pull.what);
            }
            None => break,
        }
    }
    drain(&tasks, pull).await;
    hand_back(messages.as_mut().get_pin_mut(), pull.batch).await;
    Ok(())
}

/// Apply `decision` to `msg`. A failed ack is only logged: the message is redelivered
/// after `ack_wait`, and every outcome's id makes its re-publish a duplicate.
pub async fn settle(msg: &Message, decision: Settle) {
    let r = match decision {
        Settle::Ack => msg.ack().await,
        Settle::DoubleAck => msg.double_ack().await,
        Settle::Nak(delay) => msg.ack_with(AckKind::Nak(delay)).await,
        Settle::Term => msg.ack_with(AckKind::Term).await,
    };
    if let Err(e) = r {
        tracing::warn!(error = %e, ?decision, "Ack failed; the message is redelivered after the ack wait.");
    }
}

/// Let the started messages finish, within the grace period.
async fn drain(tasks: &TaskTracker, pull: Pull) {
    tasks.close();
    let Some(grace) = pull.grace else {
        tasks.wait().await;
        return;
    };
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(
            what = pull.what,
            cut_off = tasks.len(),
            grace_ms = grace.as_millis() as u64,
            "Messages were still being handled at the end of the grace period; they are redelivered after the ack wait."
        );
    }
}

/// What was fetched but not started goes back at once.
async fn hand_back<S, E>(mut fetched: Pin<&mut S>, at_most: usize)
where
    S: Stream<Item = Result<Message, E>>,
{
    for _ in 0..at_most {
        match tokio::time::timeout(HAND_BACK_WAIT, fetched.next()).await {
            Ok(Some(Ok(msg))) => settle(&msg, Settle::Nak(None)).await,
            _ => break,
        }
    }
}
