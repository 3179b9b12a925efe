//! `switchyard-bench chaos`: one stack under a steady load while faults strike at
//! random moments; lost and duplicate deliveries are counted over the whole run.
//!
//! One [`Rig`] (the servers, the three release binaries, the receiver; 2 tenants × 2
//! endpoints, as `faults`), the e2e mix at `--rate` for `--duration`, and a schedule
//! drawn from `--seed` (printed: the same seed gives the same schedule):
//! - `kill -9` of the ingress, the normalizer and the dispatcher, `--kills` times each,
//!   each started again at once;
//! - nats-server frozen (SIGSTOP) for `--nats-stop`, longer than the ingress's publish
//!   deadline, then SIGCONT;
//! - a slow S3 for `--slow-s3`: the binaries reach SeaweedFS through a proxy
//!   ([`DelayProxy`]) that then delays every chunk sent to it by `--s3-delay-min` to
//!   `--s3-delay-max`;
//! - redis-server stopped and started again with its data lost. The registry
//!   (tenants, endpoints, accounts) lives only there, so the bench re-creates it at once
//!   through the admin API, as an operator would: the same tenants and accounts, new
//!   endpoints with new ids and secrets (the receiver accepts the old and the new).
//!
//! Faults never overlap: each gets a slot long enough for it and its recovery, the
//! slots are `--gap` apart and placed at random between the first seconds of the load
//! and its last. Then the drain and count of `faults` (lost must be 0), the timeline
//! with the longest pause in deliveries after each fault, and the dead letters.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::time::Instant;

use crate::chaos_proxy::DelayProxy;
use crate::e2e::load::Accepted;
use crate::e2e::receiver::Arrival;
use crate::e2e::Rig;
use crate::faults::{self, Outcome};
use crate::rng::Rng;
use crate::stack::{FullOptions, Role};
use crate::{cpu, OutputArgs, PathArgs};

/// The ingress's publish deadline (`nats.publish_timeout_ms`, left at its default).
const PUBLISH_DEADLINE: Duration = Duration::from_millis(3_000);
/// No fault in the first seconds of the load, nor in its last.
const LEAD: Duration = Duration::from_secs(5);
const TAIL: Duration = Duration::from_secs(10);
/// How long after a fault its pause in deliveries is looked for.
const AFTERMATH: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per second, steady over the whole run.
    #[arg(long, default_value_t = 125.0)]
    pub rate: f64,
    #[arg(long, default_value = "120s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Seeds the schedule (and the S3 delays) [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// `kill -9` of each binary this many times.
    #[arg(long, default_value_t = 3)]
    pub kills: usize,
    /// How long nats-server stays frozen (more than the 3 s publish deadline; 0: never).
    #[arg(long, default_value = "6s", value_parser = crate::parse_duration)]
    pub nats_stop: Duration,
    /// How long S3 is slow (0: never).
    #[arg(long, default_value = "12s", value_parser = crate::parse_duration)]
    pub slow_s3: Duration,
    #[arg(long, default_value = "200ms", value_parser = crate::parse_duration)]
    pub s3_delay_min: Duration,
    #[arg(long, default_value = "800ms", value_parser = crate::parse_duration)]
    pub s3_delay_max: Duration,
    /// Times redis-server loses its data.
    #[arg(long, default_value_t = 1)]
    pub redis_wipes: usize,
    /// Least time between the end of one fault's slot and the next fault.
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    pub gap: Duration,
    #[arg(long, default_value = "180s", value_parser = crate::parse_duration)]
    pub drain_within: Duration,
    #[command(flatten)]
    pub paths: PathArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill(Role),
    NatsStop,
    SlowS3,
    RedisWipe,
}

impl Fault {
    fn name(self) -> String {
        match self {
            Fault::Kill(role) => format!("kill -9 {}", role.name()),
            Fault::NatsStop => "SIGSTOP nats-server".into(),
            Fault::SlowS3 => "slow S3".into(),
            Fault::RedisWipe => "Redis data lost".into(),
        }
    }

    /// The time it is given: the fault and its recovery.
    fn slot(self, args: &Args) -> Duration {
        match self {
            Fault::Kill(_) => Duration::from_secs(3),
            Fault::NatsStop => args.nats_stop + Duration::from_secs(6),
            Fault::SlowS3 => args.slow_s3 + Duration::from_secs(3),
            Fault::RedisWipe => Duration::from_secs(6),
        }
    }
}

/// When each fault strikes, from the start of the load: the faults in a random order,
/// each at a random point such that every slot ends `gap` before the next begins.
fn plan(args: &Args, rng: &mut Rng) -> anyhow::Result<Vec<(Duration, Fault)>> {
    let mut faults = Vec::new();
    for _ in 0..args.kills {
        faults.extend(Role::ALL.map(Fault::Kill));
    }
    if !args.nats_stop.is_zero() {
        faults.push(Fault::NatsStop);
    }
    if !args.slow_s3.is_zero() {
        faults.push(Fault::SlowS3);
    }
    faults.extend(std::iter::repeat_n(Fault::RedisWipe, args.redis_wipes));
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.between(0, i as u64) as usize);
    }
    let window = args.duration.saturating_sub(LEAD + TAIL);
    let gaps = args.gap * u32::try_from(faults.len().saturating_sub(1)).unwrap_or(u32::MAX);
    let needed = faults.iter().map(|f| f.slot(args)).sum::<Duration>() + gaps;
    let Some(free) = window.checked_sub(needed) else {
        bail!(
            "{} faults need {:.0} s of the load's {:.0} s between its first {} s and its last {} s; \
             raise --duration or lower --kills",
            faults.len(),
            needed.as_secs_f64(),
            window.as_secs_f64(),
            LEAD.as_secs(),
            TAIL.as_secs()
        );
    };
    let mut points: Vec<f64> = faults.iter().map(|_| rng.unit() * free.as_secs_f64()).collect();
    points.sort_by(f64::total_cmp);
    let mut used = LEAD;
    let mut out = Vec::with_capacity(faults.len());
    for (fault, point) in faults.into_iter().zip(points) {
        out.push((used + Duration::from_secs_f64(point), fault));
        used += fault.slot(args) + args.gap;
    }
    Ok(out)
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Struck {
    pub fault: String,
    /// Seconds from the start of the load: when it was due, and when it struck.
    pub planned_secs: f64,
    pub at_secs: f64,
    /// Until the fault was undone (the binary ready again, the server back…).
    pub took_secs: f64,
    pub detail: String,
    /// The longest time without a delivery that overlaps the fault or the 10 s after
    /// (cut short by the next fault).
    pub longest_pause_secs: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub seed: u64,
    pub rate: f64,
    pub duration_secs: f64,
    pub outcome: Outcome,
    pub timeline: Vec<Struck>,
    /// The longest time without a delivery away from every fault (for comparison).
    pub baseline_pause_secs: Option<f64>,
    /// When the events of lost deliveries were accepted, seconds from the start (up to
    /// 50).
    pub lost_accepted_at_secs: Vec<f64>,
    /// Dead letters by subject (`<ns>.dlq.<stage>.<reason>`) at the end.
    pub dead_letters: BTreeMap<String, u64>,
    pub s3_chunks_delayed: u64,
    pub s3_connections: u64,
    pub notes: Vec<String>,
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if !(args.rate > 0.0 && args.rate <= 2_000.0) || args.duration > Duration::from_secs(3_600) {
        bail!("--rate must be above 0 and at most 2000, --duration at most 1h");
    }
    if args.kills > 20 || args.redis_wipes > 5 {
        bail!("--kills is at most 20 and --redis-wipes at most 5");
    }
    if !args.nats_stop.is_zero() && (args.nats_stop <= PUBLISH_DEADLINE || args.nats_stop > Duration::from_secs(60)) {
        bail!("--nats-stop must be longer than the 3 s publish deadline and at most 60 s (or 0)");
    }
    if args.s3_delay_min > args.s3_delay_max || args.s3_delay_max > Duration::from_secs(10) {
        bail!("--s3-delay-min must be at most --s3-delay-max, which is at most 10 s");
    }
    let seed = match args.seed {
        Some(s) => s,
        None => u64::from_le_bytes(crate::stack::random_bytes::<8>()?),
    };
    let mut rng = Rng::new(seed);
    let schedule = plan(args, &mut rng)?;
    eprintln!(
        "bench: chaos: seed {seed} (repeat the schedule with --seed {seed}); {} faults",
        schedule.len()
    );
    for (at, fault) in &schedule {
        eprintln!("bench: chaos:   {:>6.1} s  {}", at.as_secs_f64(), fault.name());
    }
    let proxy = DelayProxy::bind(rng.next_u64()).await?;
    let full = FullOptions {
        dispatcher_extra: faults::DISPATCHER_EXTRA.into(),
        s3_in_front: Some(proxy.front()),
        ..Default::default()
    };
    let mut rig = Rig::start(&args.paths, faults::TENANTS, full).await?;
    let result = strike_all(&mut rig, &proxy, args, (seed, &schedule)).await;
    let mut failures = rig.stack.failures();
    let dead_letters = crate::inspect::subjects(&rig.stack.nats_url, "_DEAD_LETTERS").await;
    let mut notes = rig.stack.notes.clone();
    let kept = rig.stack.stop(args.output.keep).await;
    let (mut outcome, timeline, extra) = result?;
    outcome.failures.append(&mut failures);
    let dead_letters = dead_letters.unwrap_or_else(|e| {
        notes.push(format!("the dead letters could not be listed: {e:#}"));
        BTreeMap::new()
    });
    if let Some(dir) = kept {
        notes.push(format!("configuration and logs kept in {}", dir.display()));
    }
    let (s3_chunks_delayed, s3_connections) = proxy.counts();
    Ok(Report {
        mode: "chaos",
        seed,
        rate: args.rate,
        duration_secs: args.duration.as_secs_f64(),
        outcome,
        timeline,
        baseline_pause_secs: extra.baseline_pause_secs,
        lost_accepted_at_secs: extra.lost_accepted_at_secs,
        dead_letters,
        s3_chunks_delayed,
        s3_connections,
        notes,
    })
}

/// What the timeline says besides the faults.
struct Extra {
    baseline_pause_secs: Option<f64>,
    lost_accepted_at_secs: Vec<f64>,
}

async fn strike_all(
    rig: &mut Rig,
    proxy: &DelayProxy,
    args: &Args,
    (seed, schedule): (u64, &[(Duration, Fault)]),
) -> anyhow::Result<(Outcome, Vec<Struck>, Extra)> {
    let run = faults::begin(rig, args.rate, args.duration).await?;
    let (start, from) = (run.start, run.from);
    // (start, end) of each fault, for the pauses.
    let mut spans = Vec::with_capacity(schedule.len());
    let mut timeline = Vec::with_capacity(schedule.len());
    for (at, fault) in schedule {
        tokio::time::sleep_until(start + *at).await;
        let began = Instant::now();
        eprintln!("bench: chaos: {:.1} s: {}", (began - start).as_secs_f64(), fault.name());
        let detail = strike(rig, proxy, args, *fault)
            .await
            .unwrap_or_else(|e| format!("FAILED: {e:#}"));
        let ended = Instant::now();
        spans.push((began.into_std(), ended.into_std()));
        timeline.push(Struck {
            fault: fault.name(),
            planned_secs: at.as_secs_f64(),
            at_secs: (began - start).as_secs_f64(),
            took_secs: (ended - began).as_secs_f64(),
            detail,
            longest_pause_secs: None,
        });
    }
    let summary = format!(
        "{} faults at random moments (seed {}) under {:.0} req/s for {:.0} s",
        schedule.len(),
        seed,
        args.rate,
        args.duration.as_secs_f64()
    );
    let (outcome, accepted) = faults::finish(rig, run, args.drain_within, ("chaos", summary)).await?;
    let arrivals = rig.receiver.arrivals_since(from);
    let mut times: Vec<std::time::Instant> = arrivals.iter().map(|a| a.at).collect();
    times.sort();
    // Each fault's window ends 10 s after it, or when the next one strikes.
    let nexts: Vec<Option<std::time::Instant>> = spans.iter().skip(1).map(|s| Some(s.0)).chain([None]).collect();
    for ((s, (began, ended)), next) in timeline.iter_mut().zip(&spans).zip(nexts) {
        let to = next.map_or(*ended + AFTERMATH, |n| n.min(*ended + AFTERMATH));
        s.longest_pause_secs = longest_pause(&times, *began, to, &[]);
    }
    let (start_std, load_end) = (start.into_std(), (start + args.duration).into_std());
    let baseline_pause_secs = longest_pause(&times, start_std, load_end, &spans);
    let lost_accepted_at_secs = lost_at(&accepted, &arrivals, rig.receiver_endpoints(), start_std);
    Ok((
        outcome,
        timeline,
        Extra {
            baseline_pause_secs,
            lost_accepted_at_secs,
        },
    ))
}

async fn strike(rig: &mut Rig, proxy: &DelayProxy, args: &Args, fault: Fault) -> anyhow::Result<String> {
    Ok(match fault {
        Fault::Kill(role) => {
            let ready = faults::kill_and_restart(rig, role).await?;
            format!("started again at once, ready {ready:.1} s after the kill")
        }
        Fault::NatsStop => {
            let pid = cpu::find_descendant(std::process::id(), "nats-server").context("finding nats-server")?;
            signal("STOP", pid).await?;
            tokio::time::sleep(args.nats_stop).await;
            signal("CONT", pid).await?;
            format!(
                "frozen for {:.0} s (the ingress's publish deadline is {:.0} s), then continued",
                args.nats_stop.as_secs_f64(),
                PUBLISH_DEADLINE.as_secs_f64()
            )
        }
        Fault::SlowS3 => {
            let (before, _) = proxy.counts();
            proxy.slow(args.s3_delay_min, args.s3_delay_max);
            tokio::time::sleep(args.slow_s3).await;
            proxy.fast();
            let (after, _) = proxy.counts();
            format!(
                "every chunk sent to SeaweedFS delayed {}–{} ms for {:.0} s ({} chunks)",
                args.s3_delay_min.as_millis(),
                args.s3_delay_max.as_millis(),
                args.slow_s3.as_secs_f64(),
                after - before
            )
        }
        Fault::RedisWipe => {
            let t = Instant::now();
            let servers = rig.stack.servers.as_mut().context("no servers")?;
            servers.redis.stop().await?;
            servers.redis.start_again_empty().await?;
            let empty = t.elapsed();
            let (tenants, endpoints) = faults::TENANTS;
            rig.register(tenants, endpoints).await?;
            format!(
                "stopped, its append-only file deleted, started again empty ({:.1} s); the registry re-created \
                 through the admin API {:.1} s later (new endpoint ids and secrets)",
                empty.as_secs_f64(),
                (t.elapsed() - empty).as_secs_f64()
            )
        }
    })
}

/// `kill -<sig> <pid>`.
async fn signal(sig: &str, pid: u32) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .await
        .with_context(|| format!("running kill -{sig}"))?;
    if !status.success() {
        bail!("kill -{sig} {pid} failed ({status})");
    }
    Ok(())
}

/// The longest time between two deliveries (`times`, sorted) that overlaps `from..to`
/// and none of `away` (spans to keep out of it).
fn longest_pause(
    times: &[std::time::Instant],
    from: std::time::Instant,
    to: std::time::Instant,
    away: &[(std::time::Instant, std::time::Instant)],
) -> Option<f64> {
    times
        .windows(2)
        .filter(|w| w[1] > from && w[0] < to)
        .filter(|w| !away.iter().any(|(s, e)| w[1] > *s && w[0] < *e + AFTERMATH))
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .max_by(f64::total_cmp)
}

/// When the events of the lost deliveries were accepted (seconds from `start`, sorted,
/// at most 50).
fn lost_at(
    accepted: &HashMap<Box<str>, Accepted>,
    arrivals: &[Arrival],
    endpoints_per_tenant: usize,
    start: std::time::Instant,
) -> Vec<f64> {
    let seen: HashSet<(&str, u16)> = arrivals.iter().map(|a| (&*a.webhook_id, a.endpoint)).collect();
    let eps = endpoints_per_tenant as u16;
    let mut out: Vec<f64> = accepted
        .iter()
        .filter(|(id, acc)| (0..eps).any(|k| !seen.contains(&(&***id, acc.tenant * eps + k))))
        .map(|(_, acc)| acc.at.saturating_duration_since(start).as_secs_f64())
        .collect();
    out.sort_by(f64::total_cmp);
    out.truncate(50);
    out
}

/// The table, the timeline and the dead letters.
pub fn human(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "switchyard-bench chaos — seed {}, {:.0} req/s for {:.0} s, 2 tenants × 2 endpoints, {} faults",
        r.seed,
        r.rate,
        r.duration_secs,
        r.timeline.len()
    );
    faults::table(&mut out, std::slice::from_ref(&r.outcome));
    let _ = writeln!(out, "\nfaults (seconds from the start of the load):\n");
    let _ = writeln!(
        out,
        "| at | fault | took | longest pause in deliveries (until 10 s after, or the next fault) | what happened |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for s in &r.timeline {
        let pause = s.longest_pause_secs.map_or("–".into(), |p| format!("{p:.1} s"));
        let _ = writeln!(
            out,
            "| {:.1} s | {} | {:.1} s | {pause} | {} |",
            s.at_secs, s.fault, s.took_secs, s.detail
        );
    }
    let _ = writeln!(out);
    if let Some(p) = r.baseline_pause_secs {
        let _ = writeln!(
            out,
            "longest pause in deliveries away from every fault (and the {} s after it): {p:.1} s",
            AFTERMATH.as_secs()
        );
    }
    let _ = writeln!(
        out,
        "slow S3: {} chunks delayed over {} connections to the proxy",
        r.s3_chunks_delayed, r.s3_connections
    );
    if r.dead_letters.is_empty() {
        let _ = writeln!(out, "dead letters at the end: none");
    } else {
        let listed: Vec<String> = r.dead_letters.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        let _ = writeln!(out, "dead letters at the end: {}", listed.join(" "));
    }
    if !r.lost_accepted_at_secs.is_empty() {
        let at: Vec<String> = r.lost_accepted_at_secs.iter().map(|t| format!("{t:.1}")).collect();
        let _ = writeln!(out, "lost deliveries' events accepted at (s): {}", at.join(" "));
    }
    if r.outcome.bad_signatures > 0 {
        let _ = writeln!(
            out,
            "  {} deliveries refused by the receiver for a bad signature (retried by the dispatcher)",
            r.outcome.bad_signatures
        );
    }
    faults::details(&mut out, &r.outcome);
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["switchyard-bench", "chaos"];
        argv.extend_from_slice(extra);
        match crate::Cli::try_parse_from(argv).unwrap().command {
            crate::Command::Chaos(a) => a,
            _ => panic!("not the chaos mode"),
        }
    }

    #[test]
    fn the_schedule_is_the_seeds_and_never_overlaps() {
        let a = args(&[]);
        let first = plan(&a, &mut Rng::new(7)).unwrap();
        assert_eq!(first, plan(&a, &mut Rng::new(7)).unwrap());
        assert_ne!(first, plan(&a, &mut Rng::new(8)).unwrap());
        assert_eq!(first.len(), 3 * 3 + 3);
        for w in first.windows(2) {
            let (at, fault) = w[0];
            assert!(at + fault.slot(&a) + a.gap <= w[1].0, "{w:?}");
        }
        let (at, fault) = *first.last().unwrap();
        assert!(first[0].0 >= LEAD && at + fault.slot(&a) <= a.duration - TAIL);
        for role in Role::ALL {
            assert_eq!(first.iter().filter(|(_, f)| *f == Fault::Kill(role)).count(), 3);
        }
    }

    #[test]
    fn too_many_faults_for_the_load_are_refused() {
        assert!(plan(&args(&["--kills", "20", "--duration", "60s"]), &mut Rng::new(1)).is_err());
    }

    #[test]
    fn pauses_are_measured_between_deliveries() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [at(0), at(100), at(1_600), at(1_700), at(30_000), at(30_100)];
        assert_eq!(longest_pause(&times, at(50), at(200), &[]), Some(1.5));
        // Away from a fault at 50 ms and the 10 s after it, only the last pause is left.
        let away = [(at(50), at(50))];
        assert_eq!(longest_pause(&times, at(0), at(40_000), &away), Some(0.1));
    }
}
