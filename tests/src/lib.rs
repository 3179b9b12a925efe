//! The test harness: real `nats-server` (JetStream), `redis-server` and
//! SeaweedFS (S3) processes on free loopback ports, for Switchyard's
//! integration and end-to-end tests (`tests/it/`).
//!
//! Servers are found through `SWITCHYARD_NATS_SERVER`, `SWITCHYARD_REDIS_SERVER`
//! and `SWITCHYARD_WEED`, else where `deploy/local/install-deps` puts them.
//! They are ready when a start returns (probed, never slept for), die with the
//! test process however it ends, and can be stopped and started again on the
//! same ports and data for outage tests.
//!
//! Tests that do not stop servers share one set per test process
//! ([`shared`]) and keep apart by naming everything with a
//! [`unique_prefix`]. Tests that stop a server start their own
//! ([`Servers::start`], or one of [`Nats`], [`Redis`], [`S3`]).
//!
//! # Layout
//! - `nats.rs`, `redis.rs`, `s3.rs`: one server each — command line,
//!   readiness probe, URL.
//! - `managed.rs`: the start / stop / start-again cycle they share.
//! - `cluster.rs`: three `nats-server`s as one JetStream cluster
//!   ([`NatsCluster`], [`ClusterServers`]), for the scaled-out shape.
//! - `process.rs`: a process whose life is tied to the test process (public:
//!   `switchyard-bench` runs the Switchyard binaries the same way), and
//!   finding binaries.
//! - `ports.rs`: free ports. `wait.rs`: bounded polling. `names.rs`: per-test
//!   names.

mod cluster;
mod managed;
mod names;
mod nats;
mod ports;
mod process;
mod redis;
pub mod s3;
mod wait;

pub use cluster::{ClusterServers, NatsCluster};
pub use names::unique_prefix;
pub use nats::Nats;
pub use ports::{free_port, free_ports};
pub use process::{Launch, ServerProcess};
pub use redis::Redis;
pub use s3::S3;
pub use wait::{wait_for, wait_until, POLL_INTERVAL};

use tokio::sync::OnceCell;

/// How many cases a property test runs: `default`, unless `PROPTEST_CASES` asks for
/// another number (a longer hunt). Shared by the crates' proptest suites.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

/// The three servers a Switchyard deployment talks to.
pub struct Servers {
    pub nats: Nats,
    pub redis: Redis,
    pub s3: S3,
}

impl Servers {
    /// Starts all three at once; returns when all are ready. If one fails,
    /// the others are stopped again.
    pub async fn start() -> anyhow::Result<Self> {
        let (nats, redis, s3) = tokio::try_join!(Nats::start(), Redis::start(), S3::start())?;
        Ok(Self { nats, redis, s3 })
    }

    /// [`Servers::start`] for a load run (see [`S3::start_for_load`]).
    pub async fn start_for_load() -> anyhow::Result<Self> {
        let (nats, redis, s3) = tokio::try_join!(Nats::start(), Redis::start(), S3::start_for_load())?;
        Ok(Self { nats, redis, s3 })
    }

    /// "listening" when all three accept connections; else which are gone, each
    /// with its log's last lines (a shared server that died mid-run says why).
    pub fn health(&self) -> String {
        let gone: Vec<String> = [self.nats.gone(), self.redis.gone(), self.s3.gone()]
            .into_iter()
            .flatten()
            .collect();
        if gone.is_empty() {
            "the servers are listening".into()
        } else {
            gone.join("\n")
        }
    }
}

static SHARED: OnceCell<Result<Servers, String>> = OnceCell::const_new();

/// One set of [`Servers`] for the whole test process, started by the first
/// test that asks. Never stop these: other tests are using them; isolate by
/// [`unique_prefix`] instead.
///
/// Each `#[tokio::test]` has its own runtime, so nothing here may depend on
/// the first test's runtime staying alive: the servers are `std` processes,
/// probed from blocking threads. Being in a `static`, they are never
/// dropped; they die with the test process through the stdin tie described
/// in `process.rs`.
///
/// # Panics
/// If the servers cannot be started. The failure is remembered, so every
/// later caller panics at once with the same message instead of trying again.
pub async fn shared() -> &'static Servers {
    let started = SHARED
        .get_or_init(|| async { Servers::start().await.map_err(|e| format!("{e:#}")) })
        .await;
    match started {
        Ok(servers) => servers,
        Err(e) => panic!("starting the shared test servers failed: {e}"),
    }
}

/// The shared servers if a test has started them; never starts them.
pub fn shared_if_started() -> Option<&'static Servers> {
    SHARED.get()?.as_ref().ok()
}
