//! When to reload configuration-like files without a restart: on SIGHUP, and when a
//! poll every few seconds sees them changed. What to reload is the caller's.

use std::time::Duration;

use prometheus::{IntCounterVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

/// How often the binaries look for changed catalog files.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// `switchyard_<component>_catalog_reloads_total{outcome}`: `reloaded` or `rejected`.
#[derive(Clone)]
pub struct ReloadMetrics {
    pub reloads: IntCounterVec,
}

impl ReloadMetrics {
    pub fn new(registry: &Registry, component: &str) -> Self {
        let reloads = IntCounterVec::new(
            Opts::new(
                format!("switchyard_{component}_catalog_reloads_total"),
                "Connector catalog reloads by outcome (reloaded, rejected: the previous catalog stays).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(reloads.clone()))
            .expect("metric registered once");
        Self { reloads }
    }
}

/// Start [`watch`] on the runtime with the default poll, counting into `registry`.
pub fn spawn<E: std::fmt::Display + 'static>(
    registry: &Registry,
    component: &str,
    shutdown: CancellationToken,
    reload: impl FnMut(bool) -> Result<Option<usize>, E> + Send + 'static,
) {
    tokio::spawn(watch(
        POLL_EVERY,
        shutdown,
        ReloadMetrics::new(registry, component),
        reload,
    ));
}

/// Call `reload(forced)` every `every` (`forced` = false) and on each SIGHUP (`forced` =
/// true) until `shutdown`; log and count what it did. `reload` answers `Ok(Some(n))` when
/// a new catalog of `n` connectors is in force, `Ok(None)` when nothing changed, and
/// `Err` when the files are invalid and the previous catalog stays in force.
pub async fn watch<E: std::fmt::Display>(
    every: Duration,
    shutdown: CancellationToken,
    metrics: ReloadMetrics,
    mut reload: impl FnMut(bool) -> Result<Option<usize>, E> + Send,
) {
    let mut check = |forced: bool| match reload(forced) {
        Ok(None) => {}
        Ok(Some(n)) => {
            metrics.reloads.with_label_values(&["reloaded"]).inc();
            tracing::info!(connectors = n, "Connector catalog reloaded.");
        }
        Err(e) => {
            metrics.reloads.with_label_values(&["rejected"]).inc();
            tracing::error!(
                "Connector catalog change rejected; the previous catalog stays in force. Fix the files and save again (or send SIGHUP): {e}"
            );
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => check(false),
            _ = hangup => check(true),
        }
    }
}
