//! `switchyard-ingress`: the part of Switchyard providers see.
//!
//! It verifies each webhook as its connector file declares ([`receive`]), stores the raw
//! body as a claim-check in S3 and publishes an envelope to JetStream in groups
//! ([`commit`], with Redis dedupe in `dedupe`), and answers 2xx only once both are
//! durable. Bad requests get a short JSON error ([`reject`]); everything is counted
//! ([`metrics`]).

pub mod called_url;
pub mod commit;
mod dedupe;
pub mod key_fetch;
pub mod metrics;
pub mod receive;
pub mod reject;
mod server;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_claimcheck::ClaimCheckStore;
use switchyard_connectors::live::LiveCatalog;
use switchyard_core::config::{Config, IngressConfig};
use switchyard_core::service::Ops;
use switchyard_core::telemetry::Readiness;
use switchyard_registry::sealed::Sealer;
use switchyard_registry::{RegistryCache, RegistryStore, SigningSecret};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::called_url::CalledUrl;
use crate::commit::{Committer, Deps};
use crate::key_fetch::KeyFetcher;
use crate::metrics::Metrics;

/// What every request handler shares.
pub struct State {
    /// The catalog in force; reloaded when its files change (SIGHUP or a poll).
    pub catalog: Arc<LiveCatalog>,
    pub registry: Arc<RegistryCache>,
    pub committer: Committer,
    pub metrics: Metrics,
    pub prometheus: prometheus::Registry,
    pub readiness: Readiness,
    pub cfg: IngressConfig,
    /// Connector-level keys from configuration (`[connectors.<name>]`).
    pub connector_keys: HashMap<String, ConnectorKeys>,
    /// Where the URL a provider signed comes from.
    pub called_url: CalledUrl,
    /// Keys providers publish, fetched and cached (`jwt`, `x509` connectors).
    pub keys: Arc<KeyFetcher>,
}

/// The ingress's two listeners: providers' webhooks, and `/healthz`, `/readyz`,
/// `/metrics` for Prometheus and probes.
pub struct Listeners {
    pub public: TcpListener,
    pub ops: TcpListener,
}

/// A connector's keys from configuration.
pub struct ConnectorKeys {
    pub secrets: Vec<SigningSecret>,
    pub public_keys: Vec<String>,
    /// `[connectors.<name>] legacy_signatures`: fallback schemes without a signed
    /// timestamp are tried too.
    pub legacy_signatures: bool,
}

/// Why the ingress could not start. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] switchyard_connectors::catalog::CatalogErrors),
    #[error(transparent)]
    Seal(#[from] switchyard_registry::sealed::SealError),
    #[error(transparent)]
    Nats(#[from] switchyard_core::nats::NatsError),
    #[error("S3 claim-check store: {0}")]
    S3(#[from] switchyard_claimcheck::ClaimCheckError),
    #[error(transparent)]
    Config(#[from] switchyard_core::config::ConfigError),
    #[error(
        "[connectors.{0}] in the configuration names no connector of the catalog; fix the name or remove the table"
    )]
    UnknownConnectorSettings(String),
    #[error("cannot reach Redis: {0}; is redis-server running at redis.url?")]
    Redis(#[from] switchyard_registry::RegistryError),
    #[error(transparent)]
    CalledUrl(#[from] called_url::CalledUrlError),
    #[error(transparent)]
    KeyFetcher(#[from] key_fetch::KeyFetcherError),
}

/// Run the ingress on `listeners` until `shutdown`, then drain: stop accepting, let the
/// requests in flight become durable and be answered, and return.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<(), StartError> {
    let called_url = CalledUrl::new(&config.ingress.public_url, &config.ingress.trusted_proxies)?;
    let catalog = Arc::new(LiveCatalog::load(&config.catalog)?);
    let mut connector_keys = HashMap::new();
    for (name, settings) in &config.connectors {
        if catalog.current().get(name).is_none() {
            return Err(StartError::UnknownConnectorSettings(name.clone()));
        }
        let keys = ConnectorKeys {
            secrets: settings.resolve_secrets(name)?,
            public_keys: settings.public_keys.clone(),
            legacy_signatures: settings.legacy_signatures,
        };
        connector_keys.insert(name.clone(), keys);
    }
    let sealer = Sealer::from_config(&config.secrets)?;
    let names = config.names();
    let (nats, js) = switchyard_core::nats::jetstream(&config.nats, &names, "switchyard-ingress").await?;
    let store = ClaimCheckStore::new(&config.s3).await?;
    store.ensure_bucket().await?;
    let redis = switchyard_registry::store::connect(&config.redis).await?;
    let registry = RegistryCache::new(
        RegistryStore::new(
            redis.clone(),
            names.clone(),
            sealer,
            Duration::from_millis(config.redis.timeout_ms),
        ),
        Duration::from_secs(60),
    );

    let ops = Ops::new("ingress", &[("nats", true), ("s3", true), ("redis", false)]);
    let metrics = Metrics::new(&ops.prometheus);
    metrics.expose_from_start(catalog.current().names());
    let keys = Arc::new(KeyFetcher::new(
        Duration::from_millis(config.ingress.key_fetch_timeout_ms),
        &config.ingress.key_fetch_ca_file,
        Some(metrics.key_fetches.clone()),
    )?);
    let live = catalog.clone();
    ops.reload(move |forced| live.reload(forced));
    tokio::spawn(registry.clone().listen(nats.clone(), ops.background.clone()));
    tokio::spawn(probe(
        nats.clone(),
        store.clone(),
        redis.clone(),
        ops.readiness.clone(),
        ops.background.clone(),
    ));

    let flushes = TaskTracker::new();
    let committer = Committer::start(
        Deps {
            store,
            js,
            nats: nats.clone(),
            redis: Some(redis),
            names,
            metrics: metrics.clone(),
            readiness: ops.readiness.clone(),
            instance: instance_id(),
        },
        &config.ingress,
        &flushes,
    );
    let state = Arc::new(State {
        catalog,
        registry,
        committer,
        metrics,
        prometheus: ops.prometheus.clone(),
        readiness: ops.readiness.clone(),
        cfg: config.ingress.clone(),
        connector_keys,
        called_url,
        keys,
    });
    ops.serve(listeners.ops);
    let public = listeners.public;
    tracing::info!(addr = %public.local_addr().map(|a| a.to_string()).unwrap_or_default(), connectors = state.catalog.current().len(), "Ingress listening.");
    server::serve(public, state, shutdown, ops.readiness.clone()).await;
    // Every handler is done and has dropped its committer handle; let the last groups
    // finish, then stop the background tasks.
    flushes.close();
    flushes.wait().await;
    ops.stop(&nats).await;
    tracing::info!("Ingress stopped.");
    Ok(())
}

/// Keep readiness current even when no traffic flows.
async fn probe(
    nats: async_nats::Client,
    store: ClaimCheckStore,
    redis: redis::aio::ConnectionManager,
    readiness: Readiness,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        readiness.set(
            "nats",
            nats.connection_state() == async_nats::connection::State::Connected,
        );
        // The two probes at once: a slow S3 answer must not delay the Redis one.
        let (s3, redis_up) = tokio::join!(store.probe(), switchyard_registry::ping(&redis));
        readiness.set("s3", s3.is_ok());
        readiness.set("redis", redis_up);
    }
}

/// Distinguishes this process's segment keys from other replicas'.
fn instance_id() -> String {
    format!("{:06x}{:x}", rand_u24(), std::process::id())
}

fn rand_u24() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos & 0xff_ffff
}
