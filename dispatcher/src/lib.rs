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
use switchyard_core::config::{Config, DispatcherConfig};
use switchyard_core::consume::{self, ConsumeError, Pull};
use switchyard_core::names::Names;
use switchyard_core::service::Ops;
use switchyard_registry::sealed::Sealer;
use switchyard_registry::{RegistryCache, RegistryStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::attempts::AttemptLog;
use crate::deliver::retries::Retries;
use crate::deliver::Engine;
use crate::fanout::Fanout;
use crate::metrics::Metrics;
use crate::ssrf::DestinationPolicy;

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
    Consumer(#[from] ConsumeError),
}

/// The dispatcher's listeners.
pub struct Listeners {
    pub admin: TcpListener,
    pub ops: TcpListener,
}

/// Run until `shutdown`: stop pulling, finish the deliveries in flight, return.
///
/// The steps: [`connect`] to NATS and Redis → [`watch_all`] (ops listener, readiness,
/// reloads) → [`serve_admin`] → [`engine`] → [`pull`] both consumers until `shutdown`
/// and their drain → stop the attempt log, the admin API and the background tasks.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<(), StartError> {
    let dcfg = &config.dispatcher;
    if dcfg.admin_token.is_empty() {
        return Err(StartError::NoAdminToken);
    }
    let catalog = Arc::new(LiveCatalog::load(&config.catalog)?);
    let sealer = Sealer::from_config(&config.secrets)?;
    let deps = connect(&config, sealer).await?;
    let ops = Ops::new("dispatcher", &[("nats", true), ("redis", true)]);
    ops.draining_on(&shutdown);
    let metrics = Metrics::new(&ops.prometheus, dcfg.per_tenant_metrics);
    watch_all(&ops, &deps, &catalog, &metrics, listeners.ops);
    let destinations = DestinationPolicy::new(&dcfg.allow_cidrs)?;
    let admin_task = serve_admin(
        dcfg,
        &deps,
        catalog,
        destinations.clone(),
        listeners.admin,
        shutdown.clone(),
    );
    let log_stop = CancellationToken::new();
    let (log, log_task) = AttemptLog::start(
        deps.redis.clone(),
        deps.names.clone(),
        Duration::from_secs(dcfg.attempts_retention_hours * 3600),
        metrics.attempt_log_dropped.clone(),
        log_stop.clone(),
    );
    let engine = Arc::new(engine(dcfg, &deps, metrics, destinations, log));
    tracing::info!(concurrency = dcfg.concurrency, "Dispatcher running.");
    let result = pull(dcfg, &deps, engine, shutdown).await;
    log_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), log_task).await;
    let _ = admin_task.await;
    ops.stop(&deps.nats).await;
    tracing::info!("Dispatcher stopped.");
    result
}

/// What the dispatcher reaches at start-up.
struct Deps {
    nats: async_nats::Client,
    js: async_nats::jetstream::Context,
    names: Names,
    /// The unified events, fanned out.
    unified: async_nats::jetstream::consumer::PullConsumer,
    /// The retry stream's deliveries, attempted when due.
    retries: async_nats::jetstream::consumer::PullConsumer,
    redis: redis::aio::ConnectionManager,
    store: RegistryStore,
    /// The registry as deliveries read it: cached, refreshed on change announcements.
    cache: Arc<RegistryCache>,
}

/// Connect to NATS (declaring the streams and both consumers) and Redis.
async fn connect(config: &Config, sealer: Sealer) -> Result<Deps, StartError> {
    let dcfg = &config.dispatcher;
    let names = config.names();
    let (nats, js) = switchyard_core::nats::jetstream(&config.nats, &names, "switchyard-dispatcher").await?;
    let ack_wait = Duration::from_millis(dcfg.request_timeout_ms * 2 + 5_000);
    let unified = switchyard_core::nats::durable_consumer(
        &js,
        &names.unified_stream(),
        &names.dispatcher_consumer(),
        (dcfg.concurrency * 2) as i64,
        ack_wait,
    )
    .await?;
    let retries = switchyard_core::nats::durable_consumer(
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
    Ok(Deps {
        nats,
        js,
        names,
        unified,
        retries,
        redis,
        store,
        cache,
    })
}

/// The background tasks: the ops listener, catalog reloads, registry change
/// announcements, and readiness and lag probes ([`watch`]).
fn watch_all(ops: &Ops, deps: &Deps, catalog: &Arc<LiveCatalog>, metrics: &Metrics, listener: TcpListener) {
    let live = catalog.clone();
    ops.reload(move |forced| live.reload(forced));
    ops.serve(listener);
    tokio::spawn(deps.cache.clone().listen(deps.nats.clone(), ops.background.clone()));
    tokio::spawn(
        watch::Watch {
            nats: deps.nats.clone(),
            js: deps.js.clone(),
            consumer: deps.unified.clone(),
            retries: deps.retries.clone(),
            store: deps.store.clone(),
            redis: deps.redis.clone(),
            names: deps.names.clone(),
            metrics: metrics.clone(),
            readiness: ops.readiness.clone(),
        }
        .run(ops.background.clone()),
    );
}

/// Serve the admin API on `listener` until `shutdown`.
fn serve_admin(
    dcfg: &DispatcherConfig,
    deps: &Deps,
    catalog: Arc<LiveCatalog>,
    destinations: DestinationPolicy,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let admin = Arc::new(admin::Admin {
        store: deps.store.clone(),
        nats: deps.nats.clone(),
        catalog,
        token: dcfg.admin_token.expose().to_string(),
        redis: deps.redis.clone(),
        destinations,
        undelivered: undelivered::Undelivered::new(deps.js.clone(), deps.names.clone()),
        rotation_grace: Duration::from_secs(dcfg.rotation_grace_hours * 3600),
        attempts_retention: Duration::from_secs(dcfg.attempts_retention_hours * 3600),
    });
    tokio::spawn(async move {
        let app = admin::router(admin);
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    })
}

/// The delivery engine every delivery goes through, first attempt or retry.
fn engine(
    dcfg: &DispatcherConfig,
    deps: &Deps,
    metrics: Metrics,
    destinations: DestinationPolicy,
    log: AttemptLog,
) -> Engine {
    Engine {
        http: deliver::attempt::http_client(Duration::from_millis(dcfg.request_timeout_ms), &destinations),
        destinations,
        registry: deps.cache.clone(),
        js: deps.js.clone(),
        nats: deps.nats.clone(),
        names: deps.names.clone(),
        metrics,
        schedule: deliver::schedule::Schedule::new(
            &dcfg.retry_schedule_ms,
            dcfg.retry_jitter,
            Duration::from_secs(dcfg.retry_after_max_secs),
        ),
        lanes: deliver::lanes::Lanes::new(dcfg.max_in_flight_per_endpoint),
        limiter: deliver::ratelimit::RateLimiter::new(deps.redis.clone(), deps.names.clone()),
        breaker: breaker::Breaker::new(
            deps.redis.clone(),
            deps.names.clone(),
            dcfg.disable_after_failures,
            Duration::from_secs(dcfg.disable_after_hours * 3600),
        ),
        log,
    }
}

/// Pull unified events and due retries until `shutdown`, at most
/// `dispatcher.concurrency` of each at once; then let the deliveries in flight finish,
/// each within the request timeout.
async fn pull(
    dcfg: &DispatcherConfig,
    deps: &Deps,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let retry_delay = Duration::from_millis(dcfg.retry_delay_ms);
    let pull = |what| Pull {
        batch: 256,
        concurrency: dcfg.concurrency,
        grace: Some(Duration::from_millis(dcfg.request_timeout_ms + 5_000)),
        what,
    };
    let fanout = Arc::new(Fanout {
        engine: engine.clone(),
        filters: filter::Filters::new(dcfg.filter_threads, dcfg.filter_per_tenant),
        undelivered: undelivered::Undelivered::new(deps.js.clone(), deps.names.clone()),
        redis: deps.redis.clone(),
        names: deps.names.clone(),
        retry_delay,
    });
    let retries = Arc::new(Retries { engine, retry_delay });
    let (fanned, retried) = tokio::join!(
        consume::run(deps.unified.clone(), pull("unified events"), fanout, shutdown.clone()),
        consume::run(deps.retries.clone(), pull("retries"), retries, shutdown),
    );
    fanned?;
    retried?;
    Ok(())
}
