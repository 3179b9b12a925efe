//! `switchyard-bench e2e --backlog`: memory under backlog. The endpoints refuse (503)
//! while `--backlog-events` events are accepted at `--rate`; the resident memory of
//! every process is sampled each second (the dispatcher keeps retrying: its retries
//! wait on the retry stream, held by NATS, and the unified stream keeps the rest). Then
//! the endpoints come back and every accepted event must arrive once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::time::Instant;

use crate::cpu::Watched;
use crate::e2e::receiver::Behaviour;
use crate::e2e::report as rep;
use crate::e2e::{Args, Rig};

/// Memory under backlog.
#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    pub events_accepted: u64,
    pub fill_secs: f64,
    pub recovery_secs: f64,
    /// RSS (MiB) of each process sampled every second while filling: at a quarter, a
    /// half, three quarters and the end of the fill, and the maximum while filling and
    /// while recovering.
    pub rss: Vec<RssCurve>,
    pub matched: rep::Matched,
}

#[derive(Debug, Clone, Serialize)]
pub struct RssCurve {
    pub label: String,
    pub at_quarters_mib: [f64; 4],
    pub max_fill_mib: f64,
    pub max_recovery_mib: f64,
}

/// Memory under backlog: the endpoints refuse while `--backlog-events` events are
/// accepted, then come back.
pub async fn run(rig: &mut Rig, args: &Args, watched: &[Watched]) -> anyhow::Result<Backlog> {
    let target = args.backlog_events;
    // HubSpot batches make about 1.4 events per request; send at most 2 per event.
    let count = target * 2;
    rig.receiver.set_all(Behaviour::Refuse);
    let from = rig.receiver.count();
    eprintln!(
        "bench: backlog: endpoints refuse; accepting {target} events at {} req/s",
        args.rate
    );
    let (tracker, task, start) = rig
        .load(
            args.rate,
            count,
            0,
            (args.max_in_flight, args.timeout),
            args.duplicate_share,
        )
        .await?;
    let mut samples: Vec<(f64, Vec<f64>)> = Vec::new();
    let rss_now = || -> Vec<f64> {
        watched
            .iter()
            .map(|w| rep::rss_mib(w.pid).map_or(0.0, |r| r.0))
            .collect()
    };
    let fill_deadline = start + Duration::from_secs_f64(count as f64 / args.rate) + args.timeout;
    loop {
        let n = tracker.accepted_events();
        samples.push((n as f64 / target as f64, rss_now()));
        if n >= target {
            tracker.stop.store(true, Ordering::Relaxed);
            break;
        }
        if Instant::now() >= fill_deadline {
            tracker.stop.store(true, Ordering::Relaxed);
            eprintln!("bench: backlog: the fill did not reach {target} events");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::timeout(args.timeout + Duration::from_secs(5), task)
        .await
        .context("the load generator did not finish")??;
    let fill_secs = start.elapsed().as_secs_f64();
    let accepted = tracker.take_accepted();
    let pairs = accepted.len() * args.endpoints_per_tenant;
    eprintln!(
        "bench: backlog: {} events accepted; endpoints back, draining",
        accepted.len()
    );
    rig.receiver.set_all(Behaviour::Up);
    let recovery_start = Instant::now();
    let mut max_recovery = vec![0.0f64; watched.len()];
    let end = recovery_start + args.drain_within.max(Duration::from_secs(1_800));
    while rig.receiver.count().saturating_sub(from) < pairs && Instant::now() < end {
        for (m, v) in max_recovery.iter_mut().zip(rss_now()) {
            *m = m.max(v);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let recovery_secs = recovery_start.elapsed().as_secs_f64();
    let arrivals = rig.receiver.arrivals_since(from);
    let matched = rep::matched(&accepted, &arrivals, args.endpoints_per_tenant);
    let at = |q: f64, i: usize| {
        samples
            .iter()
            .find(|(f, _)| *f >= q)
            .or(samples.last())
            .map_or(0.0, |(_, v)| v[i])
    };
    let rss = watched
        .iter()
        .enumerate()
        .map(|(i, w)| RssCurve {
            label: w.label.clone(),
            at_quarters_mib: [at(0.25, i), at(0.5, i), at(0.75, i), at(1.0, i)],
            max_fill_mib: samples.iter().map(|(_, v)| v[i]).fold(0.0, f64::max),
            max_recovery_mib: max_recovery[i],
        })
        .collect();
    Ok(Backlog {
        events_accepted: accepted.len() as u64,
        fill_secs,
        recovery_secs,
        rss,
        matched,
    })
}
