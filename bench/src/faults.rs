//! `switchyard-bench faults`: fault injection under load on the release binaries.
//!
//! Each scenario starts a fresh stack ([`Rig`]: the three servers, the three binaries
//! as child processes, the receiver, tenants and accounts), sends the provider mix at
//! `--rate` for `--duration`, injects its fault at `--fault-at`, undoes it after
//! `--outage`, lets every accepted event drain, and ends with: events accepted (200),
//! deliveries expected and made, lost (accepted, never delivered within
//! `--drain-within`: must be 0) and duplicate deliveries (counted: delivery is at
//! least once, so a crash between a delivery and its ack sends it again).
//!
//! The pieces `chaos.rs` shares are here: the load ([`begin`]), a binary's `kill -9`
//! and restart ([`kill_and_restart`]), the drain and the count ([`finish`]), and the
//! table ([`table`], [`details`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::time::Instant;

use crate::e2e::load::{Accepted, Tracker};
use crate::e2e::receiver::Behaviour;
use crate::e2e::Rig;
use crate::stack::{FullOptions, Role};
use crate::{OutputArgs, PathArgs};

const SCENARIOS: [&str; 10] = [
    "kill-ingress",
    "kill-normalizer",
    "kill-dispatcher",
    "nats-restart",
    "s3-down",
    "redis-down",
    "endpoint-fails",
    "endpoint-hangs",
    "disk-full",
    "nats-cluster-node",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per second during each scenario.
    #[arg(long, default_value_t = 150.0)]
    pub rate: f64,
    /// Load per scenario.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// When the fault is injected, from the start of the load.
    #[arg(long, default_value = "8s", value_parser = crate::parse_duration)]
    pub fault_at: Duration,
    /// How long a server stays stopped, or an endpoint fails or hangs.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub outage: Duration,
    #[arg(long, default_value = "180s", value_parser = crate::parse_duration)]
    pub drain_within: Duration,
    /// Scenarios to run, comma-separated [default: all]: kill-ingress, kill-normalizer,
    /// kill-dispatcher, nats-restart, s3-down, redis-down, endpoint-fails,
    /// endpoint-hangs, disk-full, nats-cluster-node.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    #[command(flatten)]
    pub paths: PathArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How one scenario ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: String,
    /// What was done, when.
    pub fault: String,
    /// Whether the scenario ran (`false`: `skipped` says why).
    pub ran: bool,
    pub skipped: Option<String>,
    pub requests: u64,
    pub answers: std::collections::BTreeMap<String, u64>,
    pub errors: std::collections::BTreeMap<String, u64>,
    pub events_accepted: u64,
    pub deliveries_expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicate_deliveries: u64,
    pub delivered_without_a_200: u64,
    pub bad_signatures: u64,
    /// Seconds from the end of the load until the last expected delivery arrived.
    pub drained_secs: f64,
    /// Binaries that died on their own.
    pub failures: Vec<String>,
    /// Up to ten lost deliveries, to look for in the logs (`--keep`).
    pub lost_sample: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub rate: f64,
    pub duration_secs: f64,
    pub outage_secs: f64,
    pub scenarios: Vec<Outcome>,
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    for s in &args.only {
        if !SCENARIOS.contains(&s.as_str()) {
            bail!("unknown scenario {s:?}; the scenarios are {}", SCENARIOS.join(", "));
        }
    }
    if args.fault_at + args.outage >= args.duration {
        bail!("--fault-at + --outage must end before --duration");
    }
    let mut scenarios = Vec::new();
    for name in SCENARIOS {
        if !args.only.is_empty() && !args.only.iter().any(|s| s == name) {
            continue;
        }
        eprintln!("bench: faults: scenario {name}");
        let outcome = match scenario(args, name).await {
            Ok(o) => o,
            Err(e) => skipped(name, format!("failed to run: {e:#}")),
        };
        eprintln!(
            "bench: faults: {name}: accepted {} delivered {} lost {} duplicates {}",
            outcome.events_accepted, outcome.delivered, outcome.lost, outcome.duplicate_deliveries
        );
        scenarios.push(outcome);
    }
    Ok(Report {
        mode: "faults",
        rate: args.rate,
        duration_secs: args.duration.as_secs_f64(),
        outage_secs: args.outage.as_secs_f64(),
        scenarios,
    })
}

fn skipped(name: &str, why: String) -> Outcome {
    Outcome {
        scenario: name.into(),
        fault: String::new(),
        ran: false,
        skipped: Some(why),
        requests: 0,
        answers: Default::default(),
        errors: Default::default(),
        events_accepted: 0,
        deliveries_expected: 0,
        delivered: 0,
        lost: 0,
        duplicate_deliveries: 0,
        delivered_without_a_200: 0,
        bad_signatures: 0,
        drained_secs: 0.0,
        failures: Vec::new(),
        lost_sample: Vec::new(),
    }
}

/// The dispatcher's settings under faults: short retries, so a failed delivery comes
/// back within seconds, and a 3 s request timeout.
pub const DISPATCHER_EXTRA: &str =
    "retry_schedule_ms = [500, 1000, 2000, 3000, 5000, 5000, 5000, 10000, 10000, 10000, 30000, 30000, 30000, 30000]\n\
                 retry_jitter = 0.1\nrequest_timeout_ms = 3000\nretry_delay_ms = 1000\n";
/// Tenants and endpoints per tenant of a fault run: every event is delivered twice.
pub const TENANTS: (usize, usize) = (2, 2);
/// The generator's cut-off per request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Share of requests that repeat an earlier one (provider retries).
const DUPLICATE_SHARE: f64 = 0.05;

async fn scenario(args: &Args, name: &str) -> anyhow::Result<Outcome> {
    let full = FullOptions {
        dispatcher_extra: DISPATCHER_EXTRA.into(),
        nats_cluster: name == "nats-cluster-node",
        ..Default::default()
    };
    let mut rig = Rig::start(&args.paths, TENANTS, full).await?;
    let result = inject(&mut rig, args, name).await;
    let failures = rig.stack.failures();
    let _ = rig.stack.stop(args.output.keep).await;
    let mut outcome = result?;
    outcome.failures = failures;
    Ok(outcome)
}

/// A load under way on a rig: the e2e mix at a steady rate.
pub struct Running {
    pub tracker: Arc<Tracker>,
    task: tokio::task::JoinHandle<()>,
    /// When the first request was due.
    pub start: Instant,
    /// Where this load's deliveries start in the receiver's record.
    pub from: usize,
    duration: Duration,
}

/// Starts sending the mix at `rate` for `duration`.
pub async fn begin(rig: &mut Rig, rate: f64, duration: Duration) -> anyhow::Result<Running> {
    let count = (rate * duration.as_secs_f64()).round() as usize;
    let from = rig.receiver.count();
    let (tracker, task, start) = rig
        .load(rate, count, 0, (1024, REQUEST_TIMEOUT), DUPLICATE_SHARE)
        .await?;
    Ok(Running {
        tracker,
        task,
        start,
        from,
        duration,
    })
}

/// `kill -9` of `role`'s binary, started again at once; the seconds until it was ready.
pub async fn kill_and_restart(rig: &mut Rig, role: Role) -> anyhow::Result<f64> {
    rig.stack.kill9(role).await?;
    let killed = Instant::now();
    rig.stack.start_binary(role, &rig.http).await?;
    Ok(killed.elapsed().as_secs_f64())
}

/// Waits for the load to end, then until every accepted event reached every endpoint
/// of its tenant or `drain_within` passed, and counts. Also returns what was accepted,
/// for a closer look.
pub async fn finish(
    rig: &Rig,
    run: Running,
    drain_within: Duration,
    (scenario, fault): (&str, String),
) -> anyhow::Result<(Outcome, HashMap<Box<str>, Accepted>)> {
    // The load ends `REQUEST_TIMEOUT` after its last request is due, at the latest.
    let load_ends = run.start + run.duration + REQUEST_TIMEOUT + Duration::from_secs(5);
    tokio::time::timeout_at(load_ends, run.task)
        .await
        .context("the load generator did not finish")??;
    let load_end = Instant::now();
    let accepted = run.tracker.take_accepted();
    let end = load_end + drain_within;
    let m = loop {
        let arrivals = rig.receiver.arrivals_since(run.from);
        let m = crate::e2e::report::matched(&accepted, &arrivals, rig.receiver_endpoints());
        if m.lost == 0 || Instant::now() >= end {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let drained_secs = load_end.elapsed().as_secs_f64();
    let sent = run.tracker.summary();
    let outcome = Outcome {
        scenario: scenario.into(),
        fault,
        ran: true,
        skipped: None,
        requests: sent.requests_due,
        answers: sent.status,
        errors: sent.errors,
        events_accepted: m.events_accepted,
        deliveries_expected: m.deliveries_expected,
        delivered: m.delivered,
        lost: m.lost,
        duplicate_deliveries: m.duplicate_deliveries,
        delivered_without_a_200: m.delivered_without_a_200,
        bad_signatures: rig.receiver.rejections().bad_signatures,
        drained_secs,
        failures: Vec::new(),
        lost_sample: m.lost_sample,
    };
    Ok((outcome, accepted))
}

async fn inject(rig: &mut Rig, args: &Args, name: &str) -> anyhow::Result<Outcome> {
    let mut disk = None;
    if name == "disk-full" {
        disk = Some(crate::faults_disk::Tmpfs::under_s3(rig).await?);
    }
    let run = begin(rig, args.rate, args.duration).await?;
    tokio::time::sleep_until(run.start + args.fault_at).await;
    let t = args.fault_at.as_secs_f64();
    let o = args.outage.as_secs_f64();
    let fault = match name {
        "kill-ingress" | "kill-normalizer" | "kill-dispatcher" => {
            let role = match name {
                "kill-ingress" => Role::Ingress,
                "kill-normalizer" => Role::Normalizer,
                _ => Role::Dispatcher,
            };
            let ready = kill_and_restart(rig, role).await?;
            format!(
                "kill -9 of the {} at {t:.0} s, started again at once (ready {ready:.1} s later)",
                role.name(),
            )
        }
        "nats-restart" => {
            let servers = rig.stack.servers.as_mut().context("no servers")?;
            servers.nats.stop().await?;
            servers.nats.start_again().await?;
            format!("nats-server stopped at {t:.0} s and started again at once (same port and store)")
        }
        "s3-down" | "redis-down" => {
            let servers = rig.stack.servers.as_mut().context("no servers")?;
            if name == "s3-down" {
                servers.s3.stop().await?;
            } else {
                servers.redis.stop().await?;
            }
            tokio::time::sleep(args.outage).await;
            let servers = rig.stack.servers.as_mut().context("no servers")?;
            if name == "s3-down" {
                servers.s3.start_again().await?;
            } else {
                servers.redis.start_again().await?;
            }
            format!(
                "{} stopped at {t:.0} s for {o:.0} s",
                if name == "s3-down" {
                    "SeaweedFS (S3)"
                } else {
                    "redis-server"
                }
            )
        }
        "endpoint-fails" | "endpoint-hangs" => {
            let b = if name == "endpoint-fails" {
                Behaviour::Refuse
            } else {
                Behaviour::Hang
            };
            rig.receiver.set(0, b);
            tokio::time::sleep(args.outage).await;
            rig.receiver.set(0, Behaviour::Up);
            format!(
                "endpoint 0 of 4 {} from {t:.0} s for {o:.0} s, then answers 204",
                if b == Behaviour::Refuse {
                    "answers 503"
                } else {
                    "holds every request without answering (the dispatcher times out at 3 s)"
                }
            )
        }
        "nats-cluster-node" => {
            let cluster = rig.stack.cluster.as_mut().context("no NATS cluster")?;
            let node = crate::faults_disk::raw_stream_leader(&cluster.node_url(0)).await?;
            cluster.stop_node(node).await?;
            tokio::time::sleep(args.outage).await;
            let cluster = rig.stack.cluster.as_mut().context("no NATS cluster")?;
            cluster.start_node_again(node).await?;
            format!(
                "three-node NATS cluster, streams at R3: node-{node}, leader of the raw stream, stopped at {t:.0} s \
                 for {o:.0} s, then started again"
            )
        }
        "disk-full" => {
            let d = disk.as_mut().context("no tmpfs")?;
            d.fill().await?;
            tokio::time::sleep(args.outage).await;
            d.grow().await?;
            format!(
                "SeaweedFS's folder on a tmpfs filled to the last byte at {t:.0} s, grown again after {o:.0} s ({})",
                d.describe()
            )
        }
        _ => bail!("unknown scenario {name}"),
    };
    let (outcome, _) = finish(rig, run, args.drain_within, (name, fault)).await?;
    if let Some(d) = disk {
        d.remove().await;
    }
    Ok(outcome)
}

/// The fault table.
pub fn human(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "switchyard-bench faults — {:.0} req/s for {:.0} s per scenario, outages {:.0} s",
        r.rate, r.duration_secs, r.outage_secs
    );
    table(&mut out, &r.scenarios);
    for s in r.scenarios.iter().filter(|s| s.ran) {
        let _ = writeln!(out, "- {}: {}", s.scenario, s.fault);
        details(&mut out, s);
    }
    out
}

/// The table's rows: one per scenario.
pub fn table(out: &mut String, scenarios: &[Outcome]) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "| scenario | requests | answers | accepted events | deliveries expected | delivered | lost | duplicate deliveries | drained in |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for s in scenarios {
        if !s.ran {
            let _ = writeln!(
                out,
                "| {} | not run: {} | | | | | | | |",
                s.scenario,
                s.skipped.as_deref().unwrap_or("")
            );
            continue;
        }
        let answers: Vec<String> = s
            .answers
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .chain(s.errors.iter().map(|(k, v)| format!("{k}×{v}")))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            s.scenario,
            s.requests,
            answers.join(" "),
            s.events_accepted,
            s.deliveries_expected,
            s.delivered,
            s.lost,
            s.duplicate_deliveries,
            s.drained_secs
        );
    }
}

/// Under a scenario's line: events delivered without a 200, lost ones, binaries that
/// died on their own.
pub fn details(out: &mut String, s: &Outcome) {
    use std::fmt::Write;
    if s.delivered_without_a_200 > 0 {
        let _ = writeln!(
            out,
            "  {} events delivered whose request got no 200 (cut off or refused after being made durable)",
            s.delivered_without_a_200
        );
    }
    for l in &s.lost_sample {
        let _ = writeln!(out, "  lost: {l}");
    }
    for f in &s.failures {
        let _ = writeln!(out, "  binary failure: {f}");
    }
}
