//! `switchyard-dispatcher`: delivers unified events to tenant endpoints, signed
//! ([`fanout`] → [`deliver`], signed per Standard Webhooks by `switchyard-webhooks`), retries them from the retry stream
//! ([`deliver::retries`]), and serves the admin API on its own listener ([`admin`]).

pub mod admin;
pub mod attempts;
pub mod breaker;
pub mod deliver;
pub mod fanout;
pub mod filter;
pub mod metrics;

pub mod ssrf;
pub mod undelivered;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use switchyard_connectors::live::LiveCatalog;
use switchyard_core::config::Config;
use switchyard_core::reload;
use switchyard_core::telemetry::{self, Readiness};
use switchyard_registry::sealed::Sealer;
use switchyard_registry::{RegistryCache, RegistryStore};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::deliver::Engine;
use crate::fanout::Fanout;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] switchyard_connectors::catalog::CatalogErrors),
    #[error(transparent)]
    Seal(#[from] switchyard_registry::sealed::SealError),
    #[error(transparent)]
    Nats(#[from] switchyard_core::nats::NatsError),
    #[error("cannot reach Redis: {0}; is redis-server running at redis.url?")]
    Redis(#[from] switchyard_registry::RegistryError),
    #[error("dispatcher.admin_token is empty: set it (SWITCHYARD_DISPATCHER__ADMIN_TOKEN) to a long random string")]
    NoAdminToken,
    #[error(transparent)]
    Destinations(#[from] ssrf::PolicyError),
    #[error("the unified-event consumer failed: {0}")]
    Consumer(String),
}

/// The dispatcher's listeners.
pub struct Listeners {
    pub admin: TcpListener,
    pub ops: TcpListener,
}

/// Run until `shutdown`: stop pulling, finish the deliveries in flight, return.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<(), StartError> {
    let dcfg = &config.dispatcher;
    if dcfg.admin_token.is_empty() {
        return Err(StartError::NoAdminToken);
    }
    let catalog = Arc::new(LiveCatalog::load(&config.catalog)?);
    let sealer = Sealer::from_config(&config.secrets)?;
    let names = config.names();
    let nats = switchyard_core::nats::connect(&config.nats, "switchyard-dispatcher").await?;
    let mut js = async_nats::jetstream::new(nats.clone());
    js.set_timeout(Duration::from_millis(config.nats.publish_timeout_ms));
    switchyard_core::nats::ensure_streams(&js, &names, &config.nats).await?;
    let ack_wait = Duration::from_millis(dcfg.request_timeout_ms * 2 + 5_000);
    let consumer = switchyard_core::nats::durable_consumer(
        &js,
        &names.unified_stream(),
        &names.dispatcher_consumer(),
        (dcfg.concurrency * 2) as i64,
        ack_wait,
    )
    .await?;
    let retry_consumer = switchyard_core::nats::durable_consumer(
        &js,
        &names.retry_stream(),
        &names.retry_consumer(),
        dcfg.retries_max_pending.max(1),
        ack_wait,
    )
    .await?;
    let redis = switchyard_registry::store::connect(&config.redis).await?;
    let store = RegistryStore::new(
        redis.clone(),
        names.clone(),
        sealer,
        Duration::from_millis(config.redis.timeout_ms),
    );
    let cache = RegistryCache::new(store.clone(), Duration::from_secs(60));

    let prometheus = prometheus::Registry::new();
    let metrics = Metrics::new(&prometheus);
    let readiness = Readiness::new(&[("nats", true), ("redis", true)]);
    readiness.export(&prometheus, "dispatcher");
    readiness.set("nats", true);
    readiness.set("redis", true);
    let background = CancellationToken::new();
    let live = catalog.clone();
    reload::spawn(&prometheus, background.clone(), move |forced| live.reload(forced));
    tokio::spawn(telemetry::serve_ops(
        listeners.ops,
        prometheus,
        readiness.clone(),
        background.clone(),
    ));
    tokio::spawn(cache.clone().listen(nats.clone(), background.clone()));
    tokio::spawn(
        watch::Watch {
            nats: nats.clone(),
            js: js.clone(),
            consumer: consumer.clone(),
            retries: retry_consumer.clone(),
            store: store.clone(),
            redis: redis.clone(),
            names: names.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        }
        .run(background.clone()),
    );

    let destinations = ssrf::DestinationPolicy::new(&dcfg.allow_cidrs)?;
    let admin = Arc::new(admin::Admin {
        store,
        nats: nats.clone(),
        catalog,
        token: dcfg.admin_token.expose().to_string(),
        redis: redis.clone(),
        destinations: destinations.clone(),
        undelivered: undelivered::Undelivered::new(js.clone(), names.clone()),
        rotation_grace: Duration::from_secs(dcfg.rotation_grace_hours * 3600),
        attempts_retention: Duration::from_secs(dcfg.attempts_retention_hours * 3600),
    });
    let admin_stop = shutdown.clone();
    let admin_task = tokio::spawn(async move {
        let app = admin::router(admin);
        let _ = axum::serve(listeners.admin, app)
            .with_graceful_shutdown(admin_stop.cancelled_owned())
            .await;
    });

    let log_stop = CancellationToken::new();
    let (log, log_task) = attempts::AttemptLog::start(
        redis.clone(),
        names.clone(),
        Duration::from_secs(dcfg.attempts_retention_hours * 3600),
        metrics.attempt_log_dropped.clone(),
        log_stop.clone(),
    );
    let engine = Arc::new(Engine {
        http: deliver::attempt::http_client(Duration::from_millis(dcfg.request_timeout_ms), &destinations),
        destinations,
        registry: cache,
        js: js.clone(),
        nats: nats.clone(),
        names: names.clone(),
        metrics,
        schedule: deliver::schedule::Schedule::new(
            &dcfg.retry_schedule_ms,
            dcfg.retry_jitter,
            Duration::from_secs(dcfg.retry_after_max_secs),
        ),
        lanes: deliver::lanes::Lanes::new(dcfg.max_in_flight_per_endpoint),
        limiter: deliver::ratelimit::RateLimiter::new(redis.clone(), names.clone()),
        breaker: breaker::Breaker::new(
            redis.clone(),
            names.clone(),
            dcfg.disable_after_failures,
            Duration::from_secs(dcfg.disable_after_hours * 3600),
        ),
        log,
    });
    let retry_delay = Duration::from_millis(dcfg.retry_delay_ms);
    let fanout = Arc::new(Fanout {
        engine: engine.clone(),
        filters: filter::Filters::new(dcfg.filter_threads, dcfg.filter_per_tenant),
        undelivered: undelivered::Undelivered::new(js.clone(), names.clone()),
        redis,
        names,
        retry_delay,
    });
    let tracker = tokio_util::task::TaskTracker::new();
    tracing::info!(concurrency = dcfg.concurrency, "Dispatcher running.");
    let retries = tokio::spawn(deliver::retries::run(
        engine,
        retry_consumer,
        dcfg.concurrency,
        retry_delay,
        tracker.clone(),
        shutdown.clone(),
    ));
    let result = fanout
        .run(consumer, dcfg.concurrency, tracker.clone(), shutdown.clone())
        .await
        .map_err(StartError::Consumer);
    let retried = retries.await.unwrap_or(Ok(()));
    readiness.start_draining();
    // Deliveries in flight finish (each within the request timeout) before we stop.
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_millis(dcfg.request_timeout_ms + 5_000), tracker.wait()).await;
    log_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), log_task).await;
    let _ = admin_task.await;
    background.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), nats.flush()).await;
    tracing::info!("Dispatcher stopped.");
    result.and(retried.map_err(StartError::Consumer))
}
