//! `switchyard-bench`: benchmarks of Switchyard on real servers.
//!
//! A benchmark is a command whose figures get reported, never a timed test. Each mode
//! starts its own stack (the harness's `nats-server`, `redis-server` and SeaweedFS on
//! free ports, plus the release binaries), drives it with an open-model load of signed
//! provider webhooks, and reports throughput, latency and CPU per webhook — as a table,
//! or as JSON with `--json`. See `bench/README.md` for what each figure means.
//!
//! # Layout
//! - `ingress.rs`: the `ingress` mode (the ingress alone; the raw stream just fills).
//! - `normalizer.rs`: the `normalizer` mode (the normalizer draining a raw backlog,
//!   `drain.rs`; one mapping's evaluation, ours against jsonata-js, `evaluate.rs`).
//! - `stack.rs`: starting and stopping the servers and the Switchyard binaries.
//! - `payload.rs`: the requests: Stripe events, signed before the run.
//! - `load.rs`: the open-model generator. `client.rs`: its HTTP client.
//! - `stats.rs`: answers and latencies. `cpu.rs`: CPU time from `/proc`.
//! - `inspect.rs`: the ingress's `/metrics` and JetStream's streams.
//! - `report.rs`: the table and the JSON.
//! - `floor.rs`: the `http-floor` mode (a do-nothing server under the same load).
//! - `faults.rs`: the `faults` mode (one fault per fresh stack; `faults_disk.rs`).
//! - `chaos.rs`: the `chaos` mode (faults at random moments on one stack; its slow S3
//!   is `chaos_proxy.rs`).

pub mod chaos;
pub mod chaos_proxy;
pub mod client;
pub mod cpu;
pub mod dispatcher;
pub mod drain;
pub mod e2e;
pub mod evaluate;
pub mod faults;
pub mod faults_disk;
pub mod floor;
pub mod ingress;
pub mod inspect;
pub mod isolation;
pub mod load;
pub mod normalizer;
pub mod payload;
pub mod report;
pub mod rng;
pub mod stack;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

/// Requests prepared in memory at most (about 2.3 KB each).
const MAX_REQUESTS: usize = 1_000_000;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard-bench",
    version,
    about = "Benchmarks Switchyard on real local servers and reports throughput, latency and CPU per webhook."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive the ingress alone (no normalizer, no dispatcher) with signed Stripe webhooks
    /// at a fixed rate: accepted/s, ack latency, CPU per 1,000 accepted.
    Ingress(ingress::Args),
    /// Let the normalizer drain a backlog of events through a typical mapping: CPU per
    /// event all-in, events/s; and that mapping's evaluation alone against jsonata-js.
    Normalizer(normalizer::Args),
    /// Let the dispatcher drain a backlog of unified events to a fast local receiver:
    /// CPU per delivery, deliveries/s, and what a hanging endpoint costs a healthy one.
    Dispatcher(dispatcher::Args),
    /// What one tenant's slow filter or mapping costs another tenant's quick ones,
    /// evaluated off the runtime thread within per-tenant budgets, and on it.
    Isolation(isolation::Args),
    /// The whole pipeline under a realistic provider mix, measured at the tenants'
    /// endpoints: delivered/s, ack and end-to-end latency, CPU and memory per process,
    /// lost and duplicate deliveries; `--ramp` finds the highest rate held, `--backlog`
    /// measures memory with the endpoints down.
    E2e(e2e::Args),
    /// Fault injection under load on the release binaries: kill -9 of each binary,
    /// server outages, failing and hanging endpoints, a full disk; each scenario ends
    /// with accepted, delivered, lost (must be 0) and duplicate deliveries.
    Faults(faults::Args),
    /// One stack under steady load while faults strike at random moments (seeded):
    /// kill -9 of each binary several times, nats-server frozen past the publish
    /// deadline, a slow S3, Redis losing its data; lost (must be 0) and duplicate
    /// deliveries over the whole run, and the fault timeline.
    Chaos(chaos::Args),
    /// What answering the ingress's load costs a server that does nothing with it
    /// (hyper, or bare tokio): the floor under `ingress`'s CPU per webhook.
    HttpFloor(floor::Args),
    /// The do-nothing server `http-floor` starts as its child.
    #[command(hide = true)]
    ServeFloor(floor::ServeArgs),
}

/// The load every mode sends.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Requests per second, sent on schedule whether or not earlier ones were answered.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// The measured window, e.g. 30s, 2m, 500ms.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load at the same rate before the window, not measured (connections, caches,
    /// SeaweedFS volume allocation).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Share of requests (0–1) that repeat an earlier request's event, as provider
    /// retries do; the ingress answers them 200 "duplicate".
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_share: f64,
    /// Requests outstanding at most; a request finding none free waits (counted).
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Per request: no answer within this long counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl LoadArgs {
    pub fn schedule(&self) -> anyhow::Result<load::Schedule> {
        if !(self.rate > 0.0 && self.rate <= 100_000.0) {
            bail!("--rate must be above 0 and at most 100000");
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(3_600) {
            bail!("--duration must be above 0 and at most 1h");
        }
        if self.warmup > Duration::from_secs(600) {
            bail!("--warmup is at most 10m");
        }
        if self.max_in_flight == 0 || self.max_in_flight > 100_000 {
            bail!("--max-in-flight must be 1 to 100000");
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(120) {
            bail!("--timeout must be above 0 and at most 2m");
        }
        let s = load::Schedule {
            rate: self.rate,
            warmup: self.warmup,
            duration: self.duration,
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
        };
        if s.total() > MAX_REQUESTS {
            bail!(
                "{} requests (rate × (warm-up + duration)) is more than the {MAX_REQUESTS} prepared in memory at most; \
                 shorten --duration",
                s.total()
            );
        }
        if s.measured().is_empty() {
            bail!("no request is due in the measured window; raise --rate or --duration");
        }
        Ok(s)
    }
}

/// Where the binaries and the catalog are.
#[derive(Debug, clap::Args)]
pub struct PathArgs {
    /// Folder of the release binaries [default: $CARGO_TARGET_DIR/release, else
    /// <workspace>/target/release].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// The connector catalog [default: <workspace>/connectors/catalog].
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

impl PathArgs {
    pub fn bin_dir(&self) -> PathBuf {
        self.bin_dir.clone().unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace().join("target"));
            workspace().join(target).join("release")
        })
    }

    pub fn catalog(&self) -> PathBuf {
        self.catalog
            .clone()
            .unwrap_or_else(|| workspace().join("connectors/catalog"))
    }

    /// The catalog's connector `name`.
    pub fn connector(&self, name: &str) -> anyhow::Result<std::sync::Arc<switchyard_connectors::Connector>> {
        let dir = self.catalog();
        let catalog = switchyard_connectors::Catalog::load_dir(&dir)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("loading the connector catalog {}", dir.display()))?;
        let connector = catalog
            .get(name)
            .with_context(|| format!("the catalog {} has no {name} connector", dir.display()))?;
        Ok(connector.clone())
    }
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Print the report as JSON on standard output (progress still goes to standard
    /// error).
    #[arg(long)]
    pub json: bool,
    /// Keep the folder with the generated configuration and the binaries' logs.
    #[arg(long)]
    pub keep: bool,
}

/// The workspace this crate was built in.
pub fn workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `30s`, `500ms`, `2m`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |at| s.split_at(at));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1_000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3_600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Runs the chosen mode and prints its report. Ctrl-C or SIGTERM stops the run; the
/// stack is stopped either way.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = match &cli.command {
        Command::Ingress(a) => a.output.json,
        Command::Normalizer(a) => a.output.json,
        Command::Dispatcher(a) => a.output.json,
        Command::E2e(a) => a.output.json,
        Command::Faults(a) => a.output.json,
        Command::Chaos(a) => a.output.json,
        Command::HttpFloor(a) => a.json,
        Command::ServeFloor(_) => bail!("serve-floor runs on its own runtime (see main.rs)"),
        Command::Isolation(_) => bail!("isolation runs on runtimes of its own (see main.rs)"),
    };
    let (report, table) = tokio::select! {
        r = run_mode(&cli.command) => r?,
        s = interrupted() => bail!("{s}: stopped the run, and everything it started"),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serializing the report")?
        );
    } else {
        print!("{table}");
    }
    Ok(())
}

/// The mode's report, as JSON and as a table.
async fn run_mode(command: &Command) -> anyhow::Result<(serde_json::Value, String)> {
    Ok(match command {
        Command::Ingress(args) => {
            let r = ingress::run(args).await?;
            (serde_json::to_value(&r)?, report::human(&r))
        }
        Command::Normalizer(args) => {
            let r = normalizer::run(args).await?;
            (serde_json::to_value(&r)?, normalizer::human(&r))
        }
        Command::Dispatcher(args) => {
            let r = dispatcher::run(args).await?;
            (serde_json::to_value(&r)?, dispatcher::human(&r))
        }
        Command::E2e(args) => {
            let r = e2e::run(args).await?;
            (serde_json::to_value(&r)?, e2e::human(&r))
        }
        Command::Faults(args) => {
            let r = faults::run(args).await?;
            (serde_json::to_value(&r)?, faults::human(&r))
        }
        Command::Chaos(args) => {
            let r = chaos::run(args).await?;
            (serde_json::to_value(&r)?, chaos::human(&r))
        }
        Command::HttpFloor(args) => {
            let r = floor::run(args).await?;
            (serde_json::to_value(&r)?, floor::human(&r))
        }
        Command::ServeFloor(_) => bail!("serve-floor runs on its own runtime (see main.rs)"),
        Command::Isolation(_) => bail!("isolation runs on runtimes of its own (see main.rs)"),
    })
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "interrupted";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1_500)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from(["switchyard-bench", "ingress", "--rate", "2000", "--duration", "10s"]).unwrap();
        let Command::Ingress(a) = cli.command else {
            panic!("not the ingress mode")
        };
        assert_eq!(a.load.rate, 2000.0);
        assert_eq!(a.load.schedule().unwrap().total(), 30_000);
        let cli = Cli::try_parse_from(["switchyard-bench", "normalizer", "--events", "500"]).unwrap();
        let Command::Normalizer(a) = cli.command else {
            panic!("not the normalizer mode")
        };
        assert_eq!(a.events, 500);
        assert!(a.expression.ends_with("bench/normalizer/mapping.jsonata"));
    }
}
