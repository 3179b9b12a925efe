//! `switchyard-bench faults`: fault injection under load on the release binaries.
//!
//! Each scenario starts a fresh stack ([`Rig`]: the three servers, the three binaries
//! as child processes, the receiver, tenants and accounts), sends the provider mix at
//! `--rate` for `--duration`, injects its fault at `--fault-at`, undoes it after
//! `--outage`, lets every accepted event drain, and ends with: events accepted (200),
//! deliveries expected and made, lost (accepted, never delivered within
//! `--drain-within`: must be 0) and duplicate deliveries (counted: delivery is at
//! least once, so a crash between a delivery and its ack sends it again).

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::time::Instant;

use crate::e2e::Rig;
use crate::e2e_receiver::Behaviour;
use crate::stack::Role;
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

async fn scenario(args: &Args, name: &str) -> anyhow::Result<Outcome> {
    // Short retries: a failed delivery comes back within seconds.
    let extra = "retry_schedule_ms = [500, 1000, 2000, 3000, 5000, 5000, 5000, 10000, 10000, 10000, 30000, 30000, 30000, 30000]\n\
                 retry_jitter = 0.1\nrequest_timeout_ms = 3000\nretry_delay_ms = 1000\n";
    let mut rig = Rig::start(&args.paths, (2, 2), extra, name == "nats-cluster-node").await?;
    let result = inject(&mut rig, args, name).await;
    let failures = rig.stack.failures();
    let _ = rig.stack.stop(args.output.keep).await;
    let mut outcome = result?;
    outcome.failures = failures;
    Ok(outcome)
}

async fn inject(rig: &mut Rig, args: &Args, name: &str) -> anyhow::Result<Outcome> {
    let count = (args.rate * args.duration.as_secs_f64()).round() as usize;
    let timeout = Duration::from_secs(10);
    let from = rig.receiver.count();
    let mut disk = None;
    if name == "disk-full" {
        disk = Some(crate::faults_disk::Tmpfs::under_s3(rig).await?);
    }
    let (tracker, task, start) = rig.load(args.rate, count, 0, (1024, timeout), 0.05).await?;
    tokio::time::sleep_until(start + args.fault_at).await;
    let t = args.fault_at.as_secs_f64();
    let o = args.outage.as_secs_f64();
    let fault = match name {
        "kill-ingress" | "kill-normalizer" | "kill-dispatcher" => {
            let role = match name {
                "kill-ingress" => Role::Ingress,
                "kill-normalizer" => Role::Normalizer,
                _ => Role::Dispatcher,
            };
            rig.stack.kill9(role).await?;
            let killed = Instant::now();
            rig.stack.start_binary(role, &rig.http).await?;
            format!(
                "kill -9 of the {} at {t:.0} s, started again at once (ready {:.1} s later)",
                role.name(),
                killed.elapsed().as_secs_f64()
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
    // The load ends `timeout` after its last request is due, at the latest.
    let load_ends = start + args.duration + timeout + Duration::from_secs(5);
    tokio::time::timeout_at(load_ends, task)
        .await
        .context("the load generator did not finish")??;
    let load_end = Instant::now();
    let accepted = tracker.take_accepted();
    let pairs = accepted.len() * rig.receiver_endpoints();
    rig.drain(from, pairs, args.drain_within).await;
    let drained_secs = load_end.elapsed().as_secs_f64();
    let arrivals = rig.receiver.arrivals_since(from);
    let m = crate::e2e_report::matched(&accepted, &arrivals, rig.receiver_endpoints());
    let sent = tracker.summary();
    if let Some(d) = disk {
        d.remove().await;
    }
    Ok(Outcome {
        scenario: name.into(),
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
    })
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
    let _ = writeln!(
        out,
        "| scenario | requests | answers | accepted events | deliveries expected | delivered | lost | duplicate deliveries | drained in |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for s in &r.scenarios {
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
    for s in r.scenarios.iter().filter(|s| s.ran) {
        let _ = writeln!(out, "- {}: {}", s.scenario, s.fault);
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
    out
}
