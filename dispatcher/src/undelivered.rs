//! Unified events that no endpoint received: the tenant had no enabled endpoint, or none
//! whose event types and filter took the event. Fan-out records each on the undelivered
//! stream (`<ns>.undelivered.<tenant>`, kept as long as dead letters) before it acks
//! the event, so an operator can list them and, once an endpoint takes them, re-deliver
//! everything since a time.
//!
//! # Re-delivery
//! A re-delivered event goes back on the tenant's unified subject and through fan-out
//! with the endpoints, types and filters as they are then. Its message id is its own
//! (`<event>:redeliver:<sequence>`: the duplicate window does not take it for the
//! original), and [`HEADER_EVENT_ID`] keeps the event id, so endpoints see the
//! `webhook-id` of the original. The record is deleted only once the re-published event
//! has its PubAck; an event that still finds no endpoint is recorded again.
//!
//! Reading never disturbs the stream: an ordered consumer (ephemeral, no acks) per
//! listing, filtered on the tenant's subject.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use switchyard_core::envelope::{
    HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT, HEADER_UNDELIVERED_REASON,
};
use switchyard_core::names::Names;
use switchyard_core::publish::{self, PublishError};
use time::OffsetDateTime;

/// How long the stream may stay silent while a listing still expects messages.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no endpoint received an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The tenant had no enabled endpoint.
    NoEndpoint,
    /// Enabled endpoints exist, but none subscribes to the type or its filter took it.
    NoMatch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoEndpoint => "no_endpoint",
            Reason::NoMatch => "no_match",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "no_endpoint" => Some(Reason::NoEndpoint),
            "no_match" => Some(Reason::NoMatch),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UndeliveredError {
    #[error("the undelivered stream is unavailable ({0}); is NATS up? retry later")]
    Nats(#[source] async_nats::Error),
    #[error("the undelivered stream is unavailable ({0}); is NATS up? retry later")]
    Publish(#[from] PublishError),
    #[error("the undelivered stream sent nothing for {0:?} while more was expected; retry later")]
    Silent(Duration),
}

/// One recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The stream sequence: the listing's cursor.
    pub seq: u64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub reason: Option<Reason>,
    #[serde(serialize_with = "rfc3339")]
    pub recorded_at: OffsetDateTime,
    #[serde(skip)]
    headers: HeaderMap,
    #[serde(skip)]
    payload: Bytes,
}

/// A page of records, oldest first.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// The sequence to go on from, when more were there at the time of reading.
    pub next: Option<u64>,
}

/// Where a listing starts.
#[derive(Debug, Clone, Copy, Default)]
pub enum Position {
    #[default]
    Start,
    /// Records stored at or after this time.
    Time(OffsetDateTime),
    /// Records at or after this stream sequence (a previous page's `next`).
    Seq(u64),
}

/// What a re-delivery did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    /// Records looked at.
    pub matched: usize,
    /// Re-published to the unified stream (and their records deleted).
    pub redelivered: usize,
    /// Not re-published: they stay recorded for the next call.
    pub failed: usize,
    /// Whether records past this call's limit remain: call again.
    pub more: bool,
}

/// The undelivered stream of one namespace.
#[derive(Clone)]
pub struct Undelivered {
    js: jetstream::Context,
    names: Names,
}

impl Undelivered {
    pub fn new(js: jetstream::Context, names: Names) -> Self {
        Self { js, names }
    }

    /// Record the unified event `msg` (stream sequence `unified_seq`, so a redelivery
    /// of the same message is stored once) and wait for the PubAck.
    pub async fn record(
        &self,
        tenant: &str,
        event_id: &str,
        unified_seq: u64,
        reason: Reason,
        source: Option<&HeaderMap>,
        payload: Bytes,
    ) -> Result<(), UndeliveredError> {
        let mut headers = routing_of(source);
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("undelivered:{event_id}:{unified_seq}").as_str(),
        );
        headers.insert(HEADER_EVENT_ID, event_id);
        headers.insert(HEADER_UNDELIVERED_REASON, reason.as_str());
        self.publish(self.names.undelivered_subject(tenant), headers, payload)
            .await
    }

    async fn publish(&self, subject: String, headers: HeaderMap, payload: Bytes) -> Result<(), UndeliveredError> {
        publish::durably(&self.js, subject, headers, payload).await?;
        Ok(())
    }

    async fn stream(&self) -> Result<stream::Stream, UndeliveredError> {
        self.js.get_stream(self.names.undelivered_stream()).await.map_err(nats)
    }

    /// Records of `tenant` from `from`, oldest first, at most `limit`.
    pub async fn list(&self, tenant: &str, from: Position, limit: usize) -> Result<Page, UndeliveredError> {
        let mut page = Page::default();
        let stream = self.stream().await?;
        let deliver_policy = match from {
            Position::Start => consumer::DeliverPolicy::All,
            Position::Time(start_time) => consumer::DeliverPolicy::ByStartTime { start_time },
            Position::Seq(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
        };
        let reader = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.names.undelivered_subject(tenant),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(nats)?;
        if limit == 0 || reader.cached_info().num_pending == 0 {
            return Ok(page);
        }
        let mut messages = reader.messages().await.map_err(nats)?;
        loop {
            let msg = match tokio::time::timeout(READ_TIMEOUT, messages.next()).await {
                Ok(Some(m)) => m.map_err(nats)?,
                Ok(None) => break,
                Err(_) => return Err(UndeliveredError::Silent(READ_TIMEOUT)),
            };
            let info = msg.info().map_err(nats)?;
            let (seq, pending, recorded_at) = (info.stream_sequence, info.pending, info.published);
            let header = |name: &str| {
                msg.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_string())
            };
            page.items.push(Item {
                seq,
                event_id: header(HEADER_EVENT_ID).unwrap_or_default(),
                event_type: header(HEADER_EVENT_TYPE).unwrap_or_default(),
                reason: header(HEADER_UNDELIVERED_REASON).as_deref().and_then(Reason::parse),
                recorded_at,
                headers: msg.headers.clone().unwrap_or_default(),
                payload: msg.payload.clone(),
            });
            if pending == 0 {
                break;
            }
            if page.items.len() >= limit {
                page.next = Some(seq + 1);
                break;
            }
        }
        Ok(page)
    }

    /// Re-deliver up to `limit` records of `tenant` stored since `since`.
    pub async fn redeliver(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: usize,
        dry_run: bool,
    ) -> Result<Summary, UndeliveredError> {
        let page = self.list(tenant, Position::Time(since), limit).await?;
        let mut summary = Summary {
            dry_run,
            matched: page.items.len(),
            more: page.next.is_some(),
            ..Default::default()
        };
        if dry_run {
            return Ok(summary);
        }
        let stream = self.stream().await?;
        for item in page.items {
            let mut headers = routing_of(Some(&item.headers));
            headers.insert(HEADER_EVENT_ID, item.event_id.as_str());
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{}:redeliver:{}", item.event_id, item.seq).as_str(),
            );
            let published = self
                .publish(self.names.unified_subject(tenant), headers, item.payload)
                .await;
            if let Err(e) = published {
                tracing::warn!(error = %e, event_id = %item.event_id, "Re-delivering an undelivered event failed; it stays recorded.");
                summary.failed += 1;
                continue;
            }
            // Durable on the unified stream: only now may the record go. If deleting
            // fails, the next call re-publishes it under the same message id, which
            // the duplicate window recognises.
            if let Err(e) = stream.delete_message(item.seq).await {
                tracing::warn!(error = %e, seq = item.seq, "An undelivered record was re-delivered but not deleted.");
            }
            summary.redelivered += 1;
        }
        Ok(summary)
    }

    /// Forget every record of `tenant` (the tenant was deleted).
    pub async fn purge(&self, tenant: &str) -> Result<(), UndeliveredError> {
        self.stream()
            .await?
            .purge()
            .filter(self.names.undelivered_subject(tenant))
            .await
            .map(|_| ())
            .map_err(nats)
    }
}

/// A failed NATS call, with its error as the source.
fn nats(e: impl Into<async_nats::Error>) -> UndeliveredError {
    UndeliveredError::Nats(e.into())
}

/// The routing headers of a unified event (type, tenant, received time), copied.
fn routing_of(source: Option<&HeaderMap>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in [HEADER_EVENT_TYPE, HEADER_TENANT, HEADER_RECEIVED_MS] {
        if let Some(v) = source.and_then(|h| h.get(name)) {
            headers.insert(name, v.clone());
        }
    }
    headers
}

fn rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&switchyard_core::timefmt::rfc3339(*t))
}
