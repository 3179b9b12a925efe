//! `switchyard-normalizer`: raw provider events in, unified events out.
//!
//! A pool of workers shares one durable pull consumer on the raw stream ([`work`]). For
//! each envelope it reads the claim-check ([`claims`]), maps the event with the
//! connector's JSONata ([`map`]) on the runtime thread when that is cheap for certain and
//! on the mapping threads otherwise ([`mapper`]), publishes the unified event, and acks
//! ([`outcome`] says how each outcome is settled); what cannot be normalized goes to
//! the dead-letter stream with its reason ([`reason`], [`deadletter`]).

pub mod claims;
pub mod deadletter;
pub mod map;
pub mod mapper;
pub mod metrics;
pub mod outcome;
pub mod reason;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use switchyard_claimcheck::ClaimCheckStore;
use switchyard_connectors::live::LiveCatalog;
use switchyard_connectors::mapping::Limits;
use switchyard_core::config::Config;
use switchyard_core::consume::{self, ConsumeError, Pull};
use switchyard_core::service::Ops;
use switchyard_core::telemetry::Readiness;
use switchyard_registry::sealed::Sealer;
use switchyard_registry::{RegistryCache, RegistryStore};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::claims::ClaimReader;
use crate::mapper::Mapper;
use crate::metrics::Metrics;
use crate::work::Worker;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] switchyard_connectors::catalog::CatalogErrors),
    #[error(transparent)]
    Nats(#[from] switchyard_core::nats::NatsError),
    #[error(transparent)]
    Seal(#[from] switchyard_registry::sealed::SealError),
    #[error("cannot reach Redis: {0}; is redis-server running at redis.url?")]
    Redis(#[from] switchyard_registry::RegistryError),
    #[error("S3 claim-check store: {0}")]
    S3(#[from] switchyard_claimcheck::ClaimCheckError),
    #[error("the raw-envelope consumer failed: {0}")]
    Consumer(#[from] ConsumeError),
}

/// Run until `shutdown`; the ops endpoints are served on `ops`.
pub async fn run(config: Config, ops_listener: TcpListener, shutdown: CancellationToken) -> Result<(), StartError> {
    let catalog = Arc::new(LiveCatalog::load(&config.catalog)?);
    let names = config.names();
    let (nats, js) = switchyard_core::nats::jetstream(&config.nats, &names, "switchyard-normalizer").await?;
    let ncfg = &config.normalizer;
    let consumer = switchyard_core::nats::durable_consumer(
        &js,
        &names.raw_stream(),
        &names.normalizer_consumer(),
        (ncfg.concurrency * 4).max(ncfg.fetch_batch * 2) as i64,
        Duration::from_secs(30),
    )
    .await?;

    // S3 holds every event's body: without it nothing can be normalized. Without Redis
    // events are routed by their envelopes: degraded, still working.
    let ops = Ops::new("normalizer", &[("nats", true), ("s3", true), ("redis", false)]);
    ops.draining_on(&shutdown);
    let metrics = Metrics::new(&ops.prometheus);
    let live = catalog.clone();
    ops.reload(move |forced| live.reload(forced));
    ops.serve(ops_listener);
    tokio::spawn(watch(
        nats.clone(),
        consumer.clone(),
        metrics.clone(),
        ops.readiness.clone(),
        ops.background.clone(),
    ));

    let sealer = Sealer::from_config(&config.secrets)?;
    let redis = switchyard_registry::store::connect(&config.redis).await?;
    let redis_probe = redis.clone();
    let registry = RegistryCache::new(
        RegistryStore::new(
            redis,
            names.clone(),
            sealer,
            Duration::from_millis(config.redis.timeout_ms),
        ),
        Duration::from_secs(60),
    );
    tokio::spawn(registry.clone().listen(nats.clone(), ops.background.clone()));
    let store = ClaimCheckStore::new(&config.s3).await?;
    // The ingress creates the bucket too; a normalizer started first (or alone) must
    // not stay unready waiting for one. S3 down now: the probe reports it.
    if let Err(e) = store.ensure_bucket().await {
        tracing::warn!(error = %e, "The claim-check bucket could not be checked or created; /readyz waits for S3.");
    }
    tokio::spawn(probe_storage(
        store.clone(),
        redis_probe,
        ops.readiness.clone(),
        ops.background.clone(),
    ));
    let worker = Arc::new(Worker {
        js,
        names,
        catalog: catalog.clone(),
        registry,
        claims: ClaimReader::new(store, ncfg.claim_cache_bytes, metrics.clone()),
        mapper: Mapper::new(
            Limits {
                timeout_ms: ncfg.mapping_timeout_ms,
                max_depth: ncfg.mapping_max_depth,
                max_input_bytes: ncfg.mapping_max_input_bytes,
            },
            ncfg.mapping_threads,
            ncfg.mapping_per_tenant,
            ncfg.mapping_inline_bytes,
            metrics.clone(),
        ),
        metrics,
        timeout_attempts: ncfg.mapping_timeout_attempts.max(1),
        max_deliveries: ncfg.max_deliveries.max(2),
    });
    tracing::info!(
        connectors = catalog.current().len(),
        concurrency = ncfg.concurrency,
        "Normalizer running."
    );
    let pull = Pull {
        batch: ncfg.fetch_batch,
        concurrency: ncfg.concurrency,
        // Started events finish: their outcome is made durable and acked.
        grace: None,
        what: "raw envelopes",
    };
    let result = consume::run(consumer, pull, worker, shutdown).await;
    ops.stop(&nats).await;
    tracing::info!("Normalizer stopped.");
    Ok(result?)
}

/// S3 and Redis as `/readyz` reports them, every few seconds.
async fn probe_storage(
    store: ClaimCheckStore,
    redis: redis::aio::ConnectionManager,
    readiness: Readiness,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // The two probes at once: a slow S3 answer must not delay the Redis one.
        let (s3, redis_up) = tokio::join!(store.probe(), switchyard_registry::ping(&redis));
        readiness.set("s3", s3.is_ok());
        readiness.set("redis", redis_up);
    }
}

/// Readiness and consumer lag, every few seconds.
async fn watch(
    nats: async_nats::Client,
    mut consumer: async_nats::jetstream::consumer::PullConsumer,
    metrics: Metrics,
    readiness: Readiness,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        readiness.set("nats", switchyard_core::nats::is_connected(&nats));
        if let Ok(info) = consumer.info().await {
            metrics.consumer_pending.set(info.num_pending as i64);
        }
    }
}
