//! Durable publishing: a message counts as stored only once JetStream has acknowledged
//! it (its PubAck). Every hop that must not lose what it hands on — the ingress's
//! envelopes, the normalizer's unified events and dead letters, the dispatcher's
//! retries, dead letters and undelivered records — publishes through here.
//!
//! # Deadline
//! The wait for a PubAck is bounded by the JetStream context's timeout, which each
//! binary sets from `nats.publish_timeout_ms` ([`crate::nats::jetstream`]); past it the
//! publish is [`PublishError::Ack`] and the caller hands its own input back (nak, 503).
//!
//! # Duplicates
//! Every message here carries a `Nats-Msg-Id`: a PubAck with `duplicate: true` means
//! the stream already holds it, which is success, not an error.
//!
//! Two shapes: [`durably`] publishes one message and waits; [`send`] only sends, so a
//! caller with many messages (the ingress's groups) sends them all and then waits for
//! every [`Pending::acked`] at once.

use std::future::IntoFuture;

use async_nats::jetstream::context::{self, PublishAckFuture};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::Context;
use async_nats::{HeaderMap, ToSubject};
use bytes::Bytes;

/// Why a message is not durable. Either way the caller keeps (or hands back) its input.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message did not leave this process (disconnected, or the client's buffer is
    /// full).
    #[error(transparent)]
    Send(context::PublishError),
    /// It left, but no PubAck came before the deadline, or the server refused it (no
    /// stream for the subject, storage full).
    #[error(transparent)]
    Ack(context::PublishError),
}

/// A message sent, its PubAck not yet awaited.
#[must_use = "a message is durable only once its PubAck is awaited"]
pub struct Pending(PublishAckFuture);

impl Pending {
    /// Wait for the PubAck, at most the context's timeout.
    pub async fn acked(self) -> Result<PublishAck, PublishError> {
        self.0.into_future().await.map_err(PublishError::Ack)
    }
}

/// Send one message without waiting for its PubAck; see [`Pending::acked`].
pub async fn send(
    js: &Context,
    subject: impl ToSubject,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<Pending, PublishError> {
    js.publish_with_headers(subject, headers, payload)
        .await
        .map(Pending)
        .map_err(PublishError::Send)
}

/// Publish one message and return once it is durable (its PubAck, or a duplicate's).
pub async fn durably(
    js: &Context,
    subject: impl ToSubject,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<PublishAck, PublishError> {
    send(js, subject, headers, payload).await?.acked().await
}
