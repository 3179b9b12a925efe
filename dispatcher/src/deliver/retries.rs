//! The retry stream: deliveries waiting for their next attempt.
//!
//! A failed (or deferred) delivery is published here with the time before which it must
//! not be tried. The retry consumer pulls it; when it is early, the message goes back to
//! the server with a delay (`nak` with delay): the wait is held by NATS, durable across
//! dispatcher restarts, and costs the dispatcher no memory. When it is due, the
//! delivery is attempted ([`super::Engine::deliver`]) and the message is acked only
//! once the next step (success, the next retry, a dead letter) is durable.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::names::Names;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{now_ms, EngineError, Fate, Origin};
use crate::deliver::Engine;

/// Publish a job on the retry stream and wait for its PubAck.
pub async fn publish(
    js: &jetstream::Context,
    names: &Names,
    job: &DeliveryJob,
    msg_id: &str,
) -> Result<(), EngineError> {
    let (subject, headers, payload) = job.to_message(names, msg_id);
    let ack = js
        .publish_with_headers(subject, headers, payload)
        .await
        .map_err(|e| EngineError::Publish(e.to_string()))?;
    ack.into_future()
        .await
        .map(|_| ())
        .map_err(|e| EngineError::Publish(e.to_string()))
}

/// Pull due retries until `shutdown`; at most `concurrency` attempts at once.
pub async fn run(
    engine: Arc<Engine>,
    consumer: jetstream::consumer::PullConsumer,
    concurrency: usize,
    retry_delay: Duration,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(256)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let permits = Arc::new(Semaphore::new(concurrency));
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = messages.next() => match m {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Pulling retries failed; the consumer retries.");
                    continue;
                }
                None => return Ok(()),
            },
        };
        let job = match DeliveryJob::from_message(msg.headers.as_ref(), msg.payload.clone()) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, subject = %msg.subject, "Unreadable retry message; terminating it.");
                let _ = msg.ack_with(AckKind::Term).await;
                continue;
            }
        };
        let wait = job.not_before_ms - now_ms();
        if wait > 0 {
            // Early: the server holds it until it is due.
            let _ = msg
                .ack_with(AckKind::Nak(Some(Duration::from_millis(wait as u64))))
                .await;
            continue;
        }
        let permit = tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                return Ok(());
            }
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let engine = engine.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let ep = match engine.endpoint_of(&job).await {
                Ok(ep) => ep,
                Err(e) => {
                    tracing::warn!(error = %e, "Retry postponed.");
                    let _ = msg.ack_with(AckKind::Nak(Some(retry_delay))).await;
                    return;
                }
            };
            match engine.deliver(job, ep.as_ref(), Origin::Retry).await {
                Ok(Fate::Busy(d)) => {
                    // Each time its lane is still full, it waits twice as long (up to a
                    // minute): a hanging endpoint's backlog costs little to hold.
                    let handed_back = msg.info().map(|i| i.delivered).unwrap_or(1).clamp(1, 7) as u32;
                    let wait = (d * 2u32.pow(handed_back - 1)).min(Duration::from_secs(60));
                    let _ = msg.ack_with(AckKind::Nak(Some(wait))).await;
                }
                Ok(_) => {
                    let _ = msg.double_ack().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Retry handed back to NATS.");
                    let _ = msg.ack_with(AckKind::Nak(Some(retry_delay))).await;
                }
            }
        });
    }
}
