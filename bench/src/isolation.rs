//! `switchyard-bench isolation`: what one tenant's slow expressions cost another
//! tenant's quick ones, through the mechanism the dispatcher's filters and the
//! normalizer's offloaded mappings share ([`switchyard_core::offload`]).
//!
//! Three runs of `--quick` evaluations of a trivial expression for tenant `quick`, due
//! at `--rate` a second, at most `--in-flight` at once, each on a one-thread runtime as
//! the binaries run:
//! 1. alone, off the runtime thread (the baseline);
//! 2. off the runtime thread while tenant `slow` keeps `--slow-in-flight` evaluations of
//!    `--slow-expression` waiting (within its budget of `--per-tenant` of `--threads`);
//! 3. the same two loads both evaluated on the runtime thread, as before the offload:
//!    what the isolation is worth.
//!
//! Each reports the quick tenant's latency per evaluation (p50, p99, max) and the slow
//! tenant's evaluations done meanwhile, latency counted from when the evaluation was
//! due (waiting for the runtime thread or a blocking thread counts). Every run is bounded by `--quick` and by
//! 20 s (the inline run stops there, with fewer quick evaluations measured).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use switchyard_connectors::mapping::{Limits, Mapping};
use switchyard_core::offload::Offload;
use tokio::sync::Semaphore;

/// No run may take longer than this.
const RUN_WITHIN: Duration = Duration::from_secs(20);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Quick evaluations measured per run.
    #[arg(long, default_value_t = 2000)]
    pub quick: usize,
    /// Quick evaluations in flight at once, at most.
    #[arg(long, default_value_t = 64)]
    pub in_flight: usize,
    /// Quick evaluations a second, on schedule (latency counts from when each was due).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Slow evaluations kept in flight by the other tenant.
    #[arg(long, default_value_t = 16)]
    pub slow_in_flight: usize,
    /// The other tenant's expression (tens of milliseconds, within the time limit).
    #[arg(long, default_value = "$count([1..100000][$ % 7 = 0]) >= 0")]
    pub slow_expression: String,
    /// Threads evaluating, process-wide (`dispatcher.filter_threads`).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Of those, at most this many for one tenant (`dispatcher.filter_per_tenant`).
    #[arg(long, default_value_t = 2)]
    pub per_tenant: usize,
}

#[derive(Debug)]
struct Run {
    name: &'static str,
    measured: usize,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    slow_done: u64,
    wall: Duration,
}

#[derive(Clone, Copy, PartialEq)]
enum Where {
    Offloaded,
    Inline,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let quick = Mapping::compile("n = 1").map_err(|e| anyhow::anyhow!("{e}"))?;
    let slow = Mapping::compile(&args.slow_expression).map_err(|e| anyhow::anyhow!("--slow-expression: {e}"))?;
    let started = Instant::now();
    let one = slow
        .evaluate(&json!({"n": 1}), Limits::default())
        .map_err(|e| anyhow::anyhow!("--slow-expression: {e}"))?;
    println!(
        "slow expression: {:?} in {:.1} ms alone; quick: `n = 1`",
        one,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let runs = [
        one_run(args, &quick, &slow, "quick alone, offloaded", Where::Offloaded, false)?,
        one_run(
            args,
            &quick,
            &slow,
            "beside the slow tenant, offloaded",
            Where::Offloaded,
            true,
        )?,
        one_run(
            args,
            &quick,
            &slow,
            "beside the slow tenant, on the runtime thread",
            Where::Inline,
            true,
        )?,
    ];
    println!(
        "\n{} quick evaluations at {}/s, at most {} in flight; slow tenant {} in flight; {} threads, {} per tenant\n",
        args.quick, args.rate, args.in_flight, args.slow_in_flight, args.threads, args.per_tenant
    );
    println!("| run | quick measured | quick p50 | quick p99 | quick max | slow done | wall |");
    println!("|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {} µs | {} µs | {} µs | {} | {:.2} s |",
            r.name,
            r.measured,
            r.p50_us,
            r.p99_us,
            r.max_us,
            r.slow_done,
            r.wall.as_secs_f64()
        );
    }
    Ok(())
}

fn one_run(
    args: &Args,
    quick: &Mapping,
    slow: &Mapping,
    name: &'static str,
    place: Where,
    with_slow: bool,
) -> anyhow::Result<Run> {
    // One thread, as the binaries' runtimes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime for the run")?;
    rt.block_on(async {
        let off = Arc::new(Offload::new(args.threads, args.per_tenant));
        let stop = Arc::new(AtomicBool::new(false));
        let slow_done = Arc::new(AtomicU64::new(0));
        let mut hogs = Vec::new();
        if with_slow {
            for _ in 0..args.slow_in_flight {
                let (off, stop, done, slow) = (off.clone(), stop.clone(), slow_done.clone(), slow.clone());
                hogs.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        evaluate(&off, "slow", &slow, place).await;
                        done.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                }));
            }
            tokio::task::yield_now().await;
        }
        let permits = Arc::new(Semaphore::new(args.in_flight.max(1)));
        let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(args.quick)));
        let began = Instant::now();
        let mut tasks = Vec::with_capacity(args.quick);
        let every = Duration::from_secs_f64(1.0 / args.rate.max(1.0));
        for i in 0..args.quick {
            // Due on schedule, whatever held the thread: waiting counts.
            let t = began + every * i as u32;
            tokio::time::sleep_until(t.into()).await;
            let permit = permits.clone().acquire_owned().await.expect("never closed");
            let (off, quick, latencies) = (off.clone(), quick.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                evaluate(&off, "quick", &quick, place).await;
                let us = t.elapsed().as_micros() as u64;
                latencies.lock().expect("latencies").push(us);
            }));
            if began.elapsed() > RUN_WITHIN {
                break;
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        let wall = began.elapsed();
        stop.store(true, Ordering::Relaxed);
        for h in hogs {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
        let mut l = latencies.lock().expect("latencies").clone();
        l.sort_unstable();
        let at = |q: f64| {
            l.get(((l.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        Ok(Run {
            name,
            measured: l.len(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: l.last().copied().unwrap_or(0),
            slow_done: slow_done.load(Ordering::Relaxed),
            wall,
        })
    })
}

async fn evaluate(off: &Offload, tenant: &str, m: &Mapping, place: Where) {
    let event = json!({"n": 1});
    match place {
        Where::Inline => {
            let _ = m.evaluate(&event, Limits::default());
            // Let the other tasks in between, as a worker's loop does between events.
            tokio::task::yield_now().await;
        }
        Where::Offloaded => {
            let m = m.clone();
            let limits = Limits::default();
            let _ = off
                .run(tenant, limits.deadline(), move || m.evaluate(&event, limits))
                .await;
        }
    }
}
