//! Connecting to NATS and declaring the JetStream streams every binary relies on.
//!
//! Streams are declared idempotently by each binary at start-up (create, or update to
//! the configured limits: `create_or_update_stream`), so the order in which binaries
//! start does not matter.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::config::NatsConfig;
use crate::names::Names;

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {source}; is nats-server running with JetStream (-js)?")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("cannot declare JetStream stream {stream}: {detail}; is JetStream enabled on the server?")]
    Stream { stream: String, detail: String },
}

/// How often a stream's declaration is tried while the server is not ready yet.
const DECLARE_ATTEMPTS: u32 = 6;

/// Create the stream, or update it to `config`. A server still starting (JetStream not
/// up, no leader yet, a timed-out request) is given a few tries; any other refusal is
/// final at once (a bad configuration does not improve by asking again).
///
/// A stream that already has `config` (every binary declares the same streams at
/// start-up) is left alone: no update is sent. Concurrent no-op updates of one stream
/// crashed nats-server 2.9.10 (a panic in `stream.update`, seen when several binaries
/// started at once), and they cost a round trip each for nothing.
async fn declare(js: &jetstream::Context, config: stream::Config) -> Result<(), NatsError> {
    let mut attempt = 1;
    loop {
        // Looked up on every attempt: a racing declarer may have just created it. A new
        // stream is only ever created, never updated, so racers never update it.
        let declared = match js.get_stream(&config.name).await {
            Ok(existing) if same_declaration(&existing.cached_info().config, &config) => return Ok(()),
            Ok(_) => js.update_stream(&config).await.map(drop),
            Err(_) => js.create_stream(config.clone()).await.map(drop),
        };
        match declared {
            Ok(_) => return Ok(()),
            Err(e) if attempt < DECLARE_ATTEMPTS && not_ready_yet(e.kind()) => {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(NatsError::Stream {
                    stream: config.name,
                    detail: e.to_string(),
                })
            }
        }
    }
}

/// Whether the stream the server has matches what `wanted` declares, on the fields
/// [`ensure_streams`] sets (the server fills in the others).
fn same_declaration(have: &stream::Config, wanted: &stream::Config) -> bool {
    have.subjects == wanted.subjects
        && have.storage == wanted.storage
        && have.retention == wanted.retention
        && have.max_age == wanted.max_age
        && have.duplicate_window == wanted.duplicate_window
        && have.num_replicas == wanted.num_replicas
}

/// Whether a refused declaration may succeed in a moment: the server is not ready yet,
/// or another process created the stream between our update and our create.
fn not_ready_yet(kind: jetstream::context::CreateStreamErrorKind) -> bool {
    use jetstream::context::CreateStreamErrorKind as Kind;
    use jetstream::ErrorCode;
    match kind {
        Kind::JetStreamUnavailable | Kind::TimedOut => true,
        Kind::JetStream(e) => [
            ErrorCode::CLUSTER_NOT_AVAILABLE,
            ErrorCode::CLUSTER_NOT_ACTIVE,
            ErrorCode::CLUSTER_NOT_LEADER,
            ErrorCode::STREAM_NAME_EXIST,
            // Two binaries starting together both find no stream and both create it:
            // the server refuses the second create as overlapping the first (seen
            // with nats-server 2.10/2.11). The next try updates the stream instead.
            ErrorCode::STREAM_SUBJECT_OVERLAP,
        ]
        .contains(&e.error_code()),
        _ => false,
    }
}

/// Connect as `client_name`, open JetStream with `nats.publish_timeout_ms` as the
/// deadline of every request and PubAck ([`crate::publish`]), and declare the streams.
pub async fn jetstream(
    cfg: &NatsConfig,
    names: &Names,
    client_name: &str,
) -> Result<(async_nats::Client, jetstream::Context), NatsError> {
    let nats = connect(cfg, client_name).await?;
    let mut js = jetstream::new(nats.clone());
    js.set_timeout(Duration::from_millis(cfg.publish_timeout_ms));
    ensure_streams(&js, names, cfg).await?;
    Ok((nats, js))
}

/// Connect to NATS: any of the comma-separated servers of `nats.url` (a cluster's nodes).
/// After the first connection the client reconnects by itself, forever, to whichever
/// node answers.
pub async fn connect(cfg: &NatsConfig, client_name: &str) -> Result<async_nats::Client, NatsError> {
    let servers: Vec<&str> = cfg.url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    async_nats::ConnectOptions::new()
        .name(client_name)
        .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .request_timeout(Some(Duration::from_millis(cfg.publish_timeout_ms)))
        .max_reconnects(None)
        .connect(servers)
        .await
        .map_err(|source| NatsError::Connect {
            url: cfg.url.clone(),
            source,
        })
}

/// Create or update the raw, unified, retry, dead-letter and undelivered streams.
pub async fn ensure_streams(js: &jetstream::Context, names: &Names, cfg: &NatsConfig) -> Result<(), NatsError> {
    let max_age = Duration::from_secs(cfg.retention_hours * 3600);
    let window = Duration::from_secs(cfg.duplicate_window_secs);
    use stream::RetentionPolicy::{Limits, WorkQueue};
    // Retries wait up to the last delay of the schedule (days): keep them at least as
    // long as dead letters.
    let long = max_age.max(Duration::from_secs(30 * 24 * 3600));
    let streams = [
        (names.raw_stream(), names.raw_subjects(), max_age, Limits),
        (names.unified_stream(), names.unified_subjects(), max_age, Limits),
        // A retry is removed once acked: the stream holds exactly the pending retries.
        (names.retry_stream(), names.retry_subjects(), long, WorkQueue),
        // Dead letters wait for an operator: keep them longer than the event streams.
        (names.dead_letter_stream(), names.dead_letter_subjects(), long, Limits),
        // So are the events no endpoint received, until one is enabled again.
        (names.undelivered_stream(), names.undelivered_subjects(), long, Limits),
    ];
    for (name, subject, age, retention) in streams {
        let config = stream::Config {
            name,
            subjects: vec![subject],
            storage: stream::StorageType::File,
            retention,
            max_age: age,
            duplicate_window: window,
            num_replicas: cfg.replicas,
            ..Default::default()
        };
        declare(js, config).await?;
    }
    Ok(())
}

/// A durable pull consumer shared by every process of one kind (queue semantics: each
/// message goes to one of them). `max_ack_pending` bounds the work held at once across
/// all of them; `ack_wait` is how long a message may be held before it is redelivered.
pub async fn durable_consumer(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    max_ack_pending: i64,
    ack_wait: Duration,
) -> Result<jetstream::consumer::PullConsumer, NatsError> {
    durable_consumer_filtered(js, stream, name, None, max_ack_pending, ack_wait).await
}

/// [`durable_consumer`] over the subjects of `filter` only.
pub async fn durable_consumer_filtered(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    filter: Option<String>,
    max_ack_pending: i64,
    ack_wait: Duration,
) -> Result<jetstream::consumer::PullConsumer, NatsError> {
    use jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    let err = |detail: String| NatsError::Stream {
        stream: stream.to_string(),
        detail,
    };
    let s = js.get_stream(stream).await.map_err(|e| err(e.to_string()))?;
    let config = pull::Config {
        durable_name: Some(name.to_string()),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait,
        max_ack_pending,
        max_deliver: -1,
        filter_subject: filter.unwrap_or_default(),
        ..Default::default()
    };
    // The API's create without an action is "create or update" (nats-server 2.10+):
    // one call, the same for every process of the kind, whichever comes first.
    s.create_consumer(config)
        .await
        .map_err(|e| err(format!("consumer {name}: {e}")))
}

/// A 503-worthy check: is the client connected right now?
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
