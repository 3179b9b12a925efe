//! The start-up and shut-down every Switchyard binary shares.
//!
//! A binary's `main.rs` describes itself as a [`Binary`] (its name, the key of its
//! thread count, the keys of its listeners) and hands over its `run`; [`Binary::main`]
//! does the rest, in this order:
//! 1. parse `--config` (or `SWITCHYARD_CONFIG`) and load the configuration;
//! 2. start the async runtime (`<binary>.worker_threads`);
//! 3. start logging (`[telemetry]`);
//! 4. bind every listener, naming the key of one that cannot be bound;
//! 5. turn SIGTERM/SIGINT into a cancellation token ([`crate::shutdown`]);
//! 6. `run(config, listeners, shutdown)`, which returns once it has drained.
//!
//! Inside `run`, [`Ops`] is what each binary serves and watches besides its work:
//! the metrics registry, `/readyz`'s states, the ops listener, catalog reloads, and the
//! token that stops them all once the work has drained ([`Ops::stop`]).
//!
//! Tests skip `main` and call each binary's `run` directly, on `127.0.0.1:0`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::telemetry::{self, Readiness};

/// How long the last NATS flush may take on the way out.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Why a binary did not start or stopped with an error. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen on {key} = {addr}; is another process using it?")]
    Listen {
        key: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The binary's own `run` failed; its error says why.
    #[error(transparent)]
    Run(Box<dyn std::error::Error + Send + Sync>),
}

/// The command line every binary takes.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML); every key can also be set as SWITCHYARD_<SECTION>__<KEY>.
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
}

/// A listener: its configuration key (for the error naming it) and its address.
pub type Listen = (&'static str, fn(&Config) -> SocketAddr);

/// What a binary is, for [`Binary::main`].
pub struct Binary<const N: usize> {
    /// The name `--help` and `--version` show.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Its `worker_threads` key ([`crate::shutdown::runtime`]).
    pub worker_threads: fn(&Config) -> usize,
    /// Its listeners, bound in this order and handed to `run` in it.
    pub listen: [Listen; N],
}

impl<const N: usize> Binary<N> {
    /// Parse the command line, load the configuration, start the runtime, logging and
    /// the listeners, and `run` until a shutdown signal has been drained.
    pub fn main<F, Fut, E>(&self, run: F) -> Result<(), StartError>
    where
        F: FnOnce(Config, [TcpListener; N], CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let command = Args::command().name(self.name).about(self.about);
        let args = Args::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
        let config = Config::load(args.config.as_deref())?;
        let runtime = crate::shutdown::runtime((self.worker_threads)(&config)).map_err(StartError::Runtime)?;
        runtime.block_on(async {
            telemetry::init_logging(&config.telemetry);
            let listeners = self.bind(&config).await?;
            let shutdown = crate::shutdown::on_signal();
            run(config, listeners, shutdown)
                .await
                .map_err(|e| StartError::Run(Box::new(e)))
        })
    }

    async fn bind(&self, config: &Config) -> Result<[TcpListener; N], StartError> {
        let mut bound = Vec::with_capacity(N);
        for (key, addr) in self.listen {
            let addr = addr(config);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { key, addr, source })?;
            bound.push(listener);
        }
        Ok(bound.try_into().expect("one listener per key"))
    }
}

/// What a binary serves and watches besides its work.
pub struct Ops {
    /// Every metric of the process, served at `/metrics`.
    pub prometheus: Registry,
    /// `/readyz`'s states, set by the binary's probes.
    pub readiness: Readiness,
    /// Stops the background tasks (ops listener, probes, reloads, registry updates);
    /// cancelled by [`Ops::stop`], after the work has drained, so `/metrics` and
    /// `/readyz` answer during the drain.
    pub background: CancellationToken,
    /// The `<component>` of the metric names (`switchyard_<component>_…`).
    component: &'static str,
}

impl Ops {
    /// `deps` as [`Readiness::new`] takes them, each up: start-up has just reached them
    /// all; the probes take over from here. Exported as
    /// `switchyard_<component>_dependency_up`.
    pub fn new(component: &'static str, deps: &[(&'static str, bool)]) -> Self {
        let prometheus = Registry::new();
        let readiness = Readiness::new(deps);
        readiness.export(&prometheus, component);
        for (name, _) in deps {
            readiness.set(name, true);
        }
        Self {
            prometheus,
            readiness,
            background: CancellationToken::new(),
            component,
        }
    }

    /// Serve `/healthz`, `/readyz` and `/metrics` on `listener` until [`Ops::stop`].
    pub fn serve(&self, listener: TcpListener) {
        tokio::spawn(telemetry::serve_ops(
            listener,
            self.prometheus.clone(),
            self.readiness.clone(),
            self.background.clone(),
        ));
    }

    /// Reload the connector catalog on SIGHUP and when its files change
    /// ([`crate::reload`]), until [`Ops::stop`].
    pub fn reload<E: std::fmt::Display + 'static>(
        &self,
        reload: impl FnMut(bool) -> Result<Option<usize>, E> + Send + 'static,
    ) {
        crate::reload::spawn(&self.prometheus, self.component, self.background.clone(), reload);
    }

    /// Answer `/readyz` with "draining" as soon as `shutdown` fires, while the work in
    /// flight finishes: a load balancer or orchestrator stops sending before the
    /// process stops taking.
    pub fn draining_on(&self, shutdown: &CancellationToken) {
        let readiness = self.readiness.clone();
        let (shutdown, background) = (shutdown.clone(), self.background.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => readiness.start_draining(),
                _ = background.cancelled() => {}
            }
        });
    }

    /// The work has drained: report it, stop the background tasks and flush what the
    /// NATS client still holds (within [`FLUSH_WAIT`]).
    pub async fn stop(&self, nats: &async_nats::Client) {
        self.readiness.start_draining();
        self.background.cancel();
        let _ = tokio::time::timeout(FLUSH_WAIT, nats.flush()).await;
    }
}
