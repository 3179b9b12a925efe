//! `switchyard-bench ingress`: the ingress alone, driven at a fixed open-model rate with
//! signed Stripe webhooks. No normalizer runs; the raw stream just fills.
//!
//! Order of a run: start the stack → prepare (and sign) every request → send at the
//! rate for the warm-up, then for the measured window, sampling CPU of every process at
//! the window's two ends → wait for the last answers → read JetStream's streams → stop
//! everything → report.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::inspect::{self, Internals};
use crate::load::{self, Target};
use crate::payload::{self, Plan};
use crate::report::{self, Aim, Report, Settings};
use crate::stack::{self, Stack, ACCOUNT};
use crate::stats::Recorder;
use crate::{client, cpu, LoadArgs, OutputArgs, PathArgs};

/// The aims for the ingress, at 1,000 req/s on two cores.
const AIM_CPU_US_PER_WEBHOOK: f64 = 50.0;
const AIM_ACK_P99_MS: f64 = 10.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub paths: PathArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs the benchmark; everything started is stopped before this returns (or, if the
/// future is dropped, when the stack is dropped).
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let schedule = args.load.schedule()?;
    let stripe = args.paths.connector("stripe")?;
    let http = client::new(4);
    let opts = stack::Options {
        bin_dir: args.paths.bin_dir(),
        catalog: args.paths.catalog(),
        from_workspace: args.paths.bin_dir.is_none(),
        connector: "stripe".into(),
        normalizer: false,
    };
    let mut stack = Stack::start_for_ingress(&opts, &http).await?;
    let measured = measure(&mut stack, args, schedule, stripe, &http).await;
    let kept = stack.stop(args.output.keep).await;
    let mut report = measured?;
    if let Some(dir) = kept {
        report
            .notes
            .push(format!("configuration and logs kept in {}", dir.display()));
    }
    Ok(report)
}

async fn measure(
    stack: &mut Stack,
    args: &Args,
    schedule: load::Schedule,
    stripe: Arc<switchyard_connectors::Connector>,
    http: &client::Client,
) -> anyhow::Result<Report> {
    let total = schedule.total();
    eprintln!("bench: preparing {total} signed requests");
    let secret = stack.secret.clone();
    let duplicate_share = args.load.duplicate_share;
    let run_tag = format!("{:05x}", std::process::id() & 0xf_ffff);
    let start_unix = time::OffsetDateTime::now_utc().unix_timestamp();
    let requests = tokio::task::spawn_blocking(move || {
        payload::prepare(&Plan {
            connector: &stripe,
            secret: &secret,
            count: total,
            rate: schedule.rate,
            start_unix,
            duplicate_share,
            run_tag: &run_tag,
            template: None,
        })
    })
    .await??;
    let body_bytes_mean = requests.iter().map(|r| r.body.len()).sum::<usize>() as f64 / requests.len().max(1) as f64;
    let requests = Arc::new(requests);

    let watched = stack.watched()?;
    let hz = cpu::ticks_per_second();
    let target = Arc::new(Target {
        client: client::new(schedule.max_in_flight),
        uri: format!("{}/v1/webhooks/stripe/{ACCOUNT}", stack.ingress_url)
            .parse()
            .context("the ingress URL")?,
    });
    let recorder = Arc::new(Recorder::new(schedule.measured()));
    // What else keeps the machine busy (other people's processes share it).
    let (idle_from, idle_at) = (cpu::machine_ticks(), std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let busy_before_load = cpu::busy_cores(idle_from, cpu::machine_ticks(), idle_at.elapsed(), hz);
    let start = Instant::now() + Duration::from_millis(200);
    let generator = tokio::spawn(load::run(target, requests, schedule, start, recorder.clone()));

    eprintln!("bench: warm-up, {:?} at {} req/s", schedule.warmup, schedule.rate);
    tokio::time::sleep_until(start + schedule.warmup).await;
    // Scrapes stay outside the window so their CPU is not counted.
    let metrics_before = inspect::scrape(http, &stack.ingress_ops_url).await;
    let before = cpu::snapshot(&watched, stack.ingress_pid());
    eprintln!("bench: measuring, {:?}", schedule.duration);
    tokio::time::sleep_until(start + schedule.warmup + schedule.duration).await;
    let after = cpu::snapshot(&watched, stack.ingress_pid());
    let metrics_after = inspect::scrape(http, &stack.ingress_ops_url).await;
    eprintln!("bench: waiting for the last answers");
    // load::run ends within `timeout` + 1 s of the last due time, which is now.
    tokio::time::timeout(schedule.timeout + Duration::from_secs(5), generator)
        .await
        .context("the load generator did not finish")??;

    let window = cpu::window(&before, &after, &watched, hz);
    let load = recorder.summary();
    let mut notes = stack.notes.clone();
    if let Some(failure) = stack.ingress_failure() {
        notes.push(failure);
    }
    let streams = match inspect::streams(&stack.nats_url).await {
        Ok(s) => s,
        Err(e) => {
            notes.push(format!("could not read JetStream's streams: {e:#}"));
            Vec::new()
        }
    };
    if let Some(raw) = streams.iter().find(|s| s.name.ends_with("_RAW")) {
        if raw.messages < load.run_accepted_new {
            notes.push(format!(
                "the raw stream holds {} messages but {} new events were acknowledged: acknowledged \
                 events are missing",
                raw.messages, load.run_accepted_new
            ));
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let watched_cores: f64 = window.processes.iter().filter_map(|p| p.cpu_secs).sum::<f64>() / window.wall_secs;
    if let Some(other) = window
        .machine_busy_cores
        .map(|b| b - watched_cores)
        .filter(|o| *o >= 0.15)
    {
        notes.push(format!(
            "processes other than the ones above kept {other:.2} cores busy during the window: the figures \
             were measured on a shared machine"
        ));
    }
    notes.extend(cpu::steal_note(window.machine_stolen_cores));
    if busy_before_load.is_some_and(|b| b >= 0.1) {
        notes.push(format!(
            "the machine was already {:.2} cores busy before the load started: other processes share it",
            busy_before_load.unwrap_or_default()
        ));
    }
    if window.machine_busy_cores.is_some_and(|b| b >= 0.95 * cpus as f64) {
        notes.push(format!(
            "the machine's {cpus} CPUs were saturated: every process competed for CPU, which inflates latency"
        ));
    }

    let accepted_per_sec = load.accepted as f64 / schedule.duration.as_secs_f64();
    let per_1000_accepted = report::per_thousand(&window, load.accepted);
    let ingress_us = per_1000_accepted
        .iter()
        .find(|p| p.label == "ingress")
        .and_then(|p| p.cpu_us_per_webhook);
    let aims = vec![
        Aim::at_most(
            "ingress CPU per accepted webhook, µs",
            AIM_CPU_US_PER_WEBHOOK,
            ingress_us,
        ),
        Aim::at_most(
            "ack latency p99 (from due time), ms",
            AIM_ACK_P99_MS,
            load.ack_latency.as_ref().map(|l| l.p99_ms),
        ),
    ];
    Ok(Report {
        mode: "ingress",
        settings: Settings {
            rate: schedule.rate,
            warmup_secs: schedule.warmup.as_secs_f64(),
            duration_secs: schedule.duration.as_secs_f64(),
            duplicate_share: args.load.duplicate_share,
            max_in_flight: schedule.max_in_flight,
            timeout_secs: schedule.timeout.as_secs_f64(),
            body_bytes_mean,
            cpus,
        },
        accepted_per_sec,
        busy_before_load,
        per_1000_accepted,
        ingress_internals: match (metrics_before, metrics_after) {
            (Some(a), Some(b)) => Some(Internals::between(&a, &b)),
            _ => None,
        },
        cpu: window,
        streams,
        aims,
        notes,
        load,
    })
}
