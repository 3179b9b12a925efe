//! Reading the dead-letter stream without disturbing it.
//!
//! A listing reads the stream through an *ordered consumer*: ephemeral, no acks, gone
//! when dropped, so nothing the pipeline relies on (no durable consumer, no message)
//! changes by looking. One dead letter is read by stream sequence (`STREAM.MSG.GET`).
//! The id an operator sees is the stream sequence: stable for as long as the dead
//! letter exists, and what deleting it takes.

use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use serde::Serialize;
use switchyard_core::config::Config;
use switchyard_core::envelope::DeadLetter;
use switchyard_core::names::Names;
use time::OffsetDateTime;

use crate::filter::Filter;

/// How long the stream may stay silent while a listing still expects messages.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One dead letter as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The stream sequence: the id `dlq show` and the replay summary use.
    pub seq: u64,
    /// When it was dead-lettered (stored in the stream).
    #[serde(serialize_with = "rfc3339")]
    pub stored_at: OffsetDateTime,
    pub subject: String,
    pub letter: DeadLetter,
}

/// What a listing found.
#[derive(Debug, Default)]
pub struct Listing {
    pub items: Vec<Item>,
    /// Sequences of messages on dead-letter subjects that are not dead letters (never
    /// expected; reported, never acted on).
    pub unreadable: Vec<u64>,
}

/// The dead-letter stream of one namespace.
pub struct DeadLetters {
    js: jetstream::Context,
    names: Names,
    stream: stream::Stream,
}

impl DeadLetters {
    /// Connect with the binaries' configuration. The stream must exist (the binaries
    /// declare it); this never creates or changes it.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let client = switchyard_core::nats::connect(&config.nats, "switchyard-cli").await?;
        Self::with_context(jetstream::new(client), config.names()).await
    }

    pub async fn with_context(js: jetstream::Context, names: Names) -> anyhow::Result<Self> {
        let name = names.dead_letter_stream();
        let stream = js.get_stream(&name).await.with_context(|| {
            format!(
                "no dead-letter stream {name} on this NATS server (has a Switchyard binary run with namespace {:?}?)",
                names.namespace()
            )
        })?;
        Ok(Self { js, names, stream })
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Every dead letter that matches, oldest first, at most `filter.limit`.
    pub async fn list(&self, filter: &Filter) -> anyhow::Result<Listing> {
        let mut out = Listing::default();
        let mut s = self.stream.clone();
        let last = s
            .info()
            .await
            .context("reading the dead-letter stream's state")?
            .state
            .last_sequence;
        if filter.limit == Some(0) || last == 0 {
            return Ok(out);
        }
        let reader = s
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter.subject(&self.names),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .context("creating an ordered consumer on the dead-letter stream")?;
        if reader.cached_info().num_pending == 0 {
            return Ok(out);
        }
        let mut messages = reader.messages().await.context("reading the dead-letter stream")?;
        loop {
            let msg = match tokio::time::timeout(READ_TIMEOUT, messages.next()).await {
                Ok(Some(m)) => m.context("reading the dead-letter stream")?,
                Ok(None) => break,
                Err(_) => bail!("the dead-letter stream sent nothing for {READ_TIMEOUT:?} while more was expected"),
            };
            let info = msg
                .info()
                .map_err(|e| anyhow::anyhow!("a dead letter without stream metadata: {e}"))?;
            let (seq, pending, stored_at) = (info.stream_sequence, info.pending, info.published);
            match serde_json::from_slice::<DeadLetter>(&msg.payload) {
                Ok(letter) if filter.matches(&letter, stored_at) => out.items.push(Item {
                    seq,
                    stored_at,
                    subject: msg.subject.to_string(),
                    letter,
                }),
                Ok(_) => {}
                Err(_) => out.unreadable.push(seq),
            }
            // Only what was there when the listing began: dead letters that arrive
            // meanwhile (a replay that fails again) wait for the next run.
            if pending == 0 || seq >= last || filter.limit.is_some_and(|n| out.items.len() >= n) {
                break;
            }
        }
        Ok(out)
    }

    /// One dead letter by stream sequence or by its own id (the newest with that id).
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Item>> {
        if let Ok(seq) = id.parse::<u64>() {
            let msg = match self.stream.get_raw_message(seq).await {
                Ok(m) => m,
                Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => return Ok(None),
                Err(e) => return Err(e).context("reading the dead letter"),
            };
            let letter: DeadLetter = serde_json::from_slice(&msg.payload)
                .with_context(|| format!("message {seq} of the dead-letter stream is not a dead letter"))?;
            return Ok(Some(Item {
                seq,
                stored_at: msg.time,
                subject: msg.subject.to_string(),
                letter,
            }));
        }
        let all = self.list(&Filter::default()).await?;
        Ok(all.items.into_iter().rev().find(|i| i.letter.id == id))
    }

    /// Remove one dead letter; `false` when it was already gone.
    pub async fn delete(&self, seq: u64) -> anyhow::Result<bool> {
        match self.stream.delete_message(seq).await {
            Ok(deleted) => Ok(deleted),
            // The server answers "no message found" for a sequence already deleted.
            Err(e) if e.to_string().contains("no message found") => Ok(false),
            Err(e) => Err(e).context("deleting the dead letter"),
        }
    }
}

fn rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&switchyard_core::timefmt::rfc3339(*t))
}
