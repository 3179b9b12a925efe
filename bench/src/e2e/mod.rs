//! `switchyard-bench e2e`: the whole pipeline under an open-model load of a realistic
//! provider mix, measured at the tenants' endpoints.
//!
//! Order of a run: start the servers and all three release binaries
//! ([`FullStack`]) → start the receiver → register tenants, endpoints and accounts
//! through the admin API → then one of:
//! - steady (default): warm-up, measured window, drain (every accepted event must
//!   reach every endpoint of its tenant within `--drain-within`);
//! - `--ramp`: bounded steps of rising rate on the same stack, each drained and judged;
//!   the highest rate whose end-to-end p99 stayed under 1 s with nothing lost;
//! - `--backlog N`: the endpoints refuse (503) while N events are accepted; the RSS of
//!   every process is sampled; the endpoints come back and every event must arrive.

pub mod backlog;
pub mod load;
pub mod mix;
pub mod receiver;
pub mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::cpu::{self, Watched};
use crate::report::Aim;
use crate::stack::{self, FullOptions, FullStack};
use crate::{client, OutputArgs, PathArgs};
use load::Tracker;
use mix::Mix;
use receiver::Receiver;
use report::{self as rep, Phase};

/// The card.
const AIM_DELIVERED_PER_SEC: f64 = 2_900.0;
const AIM_CPU_PER_1000: f64 = 0.66;
const AIM_E2E_P99_MS: f64 = 160.0;
/// The ramp's criterion.
const RAMP_P99_MS: f64 = 1_000.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per second (open model). HubSpot batches carry several events, so
    /// events/s is about 1.4× this.
    #[arg(long, default_value_t = 300.0)]
    pub rate: f64,
    /// The measured window.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    pub duration: std::time::Duration,
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    pub warmup: std::time::Duration,
    /// Share (0–1) of requests that repeat an earlier request (provider retries).
    #[arg(long, default_value_t = 0.05)]
    pub duplicate_share: f64,
    #[arg(long, default_value_t = 4)]
    pub tenants: usize,
    /// Endpoints per tenant; every event goes to each endpoint of its tenant.
    #[arg(long, default_value_t = 1)]
    pub endpoints_per_tenant: usize,
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub timeout: std::time::Duration,
    /// Longest wait, after the last request, for every accepted event to arrive.
    #[arg(long, default_value = "120s", value_parser = crate::parse_duration)]
    pub drain_within: std::time::Duration,
    /// Ramp: steps of rising rate from `--rate`, each `--duration` long.
    #[arg(long)]
    pub ramp: bool,
    /// Ramp: each step's rate is the previous one × this.
    #[arg(long, default_value_t = 1.4)]
    pub ramp_factor: f64,
    /// Ramp: steps at most.
    #[arg(long, default_value_t = 6)]
    pub ramp_steps: usize,
    /// Memory under backlog: the endpoints refuse (503) while `--backlog-events` events
    /// are accepted at `--rate`, the RSS of every process is sampled, then the endpoints
    /// come back and every event must arrive.
    #[arg(long)]
    pub backlog: bool,
    /// Events accepted with the endpoints down. The figure is 1000000 (about 35
    /// minutes of filling at 300 req/s on two cores); the default takes about 2.
    #[arg(long, default_value_t = 50_000)]
    pub backlog_events: usize,
    #[command(flatten)]
    pub paths: PathArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub cpus: usize,
    pub tenants: usize,
    pub endpoints_per_tenant: usize,
    pub duplicate_share: f64,
    pub phases: Vec<Phase>,
    /// Ramp: the highest rate (req/s) whose step kept p99 under 1 s, lost nothing and
    /// accepted what was offered.
    pub ramp_highest_held: Option<f64>,
    /// The phase's rate the aims were judged on (see `measure`).
    pub aims_judged_at: Option<f64>,
    pub backlog: Option<crate::e2e::backlog::Backlog>,
    pub aims: Vec<Aim>,
    pub notes: Vec<String>,
}

/// A stack, its receiver, and the mix, registered and ready for load.
pub struct Rig {
    pub stack: FullStack,
    pub receiver: Receiver,
    pub mix: Mix,
    pub http: client::Client,
    /// Requests sent on this rig so far (ids of later phases start after them).
    pub used: u64,
    endpoints_per_tenant: usize,
}

impl Rig {
    /// Starts everything on `full` (its `dispatcher_extra` goes into the `[dispatcher]`
    /// table).
    pub async fn start(
        paths: &PathArgs,
        (tenants, endpoints_per_tenant): (usize, usize),
        full: FullOptions,
    ) -> anyhow::Result<Self> {
        let http = client::new(8);
        let catalog = paths.catalog();
        let opts = stack::Options {
            bin_dir: paths.bin_dir(),
            catalog: catalog.clone(),
            from_workspace: paths.bin_dir.is_none(),
            connector: "stripe".into(),
            normalizer: true,
        };
        let secret = format!("bench_{}", stack::hex(&stack::random_bytes::<16>()?));
        let fixtures = catalog.parent().unwrap_or(&catalog).join("fixtures");
        let mut mix = Mix::load(&catalog, &fixtures, secret)?;
        let stack = FullStack::start(&opts, full, &http).await?;
        let receiver = Receiver::start().await?;
        mix.tenants = tenants;
        mix.ingress_url = stack.ingress_url.clone();
        let rig = Self {
            stack,
            receiver,
            mix,
            http,
            used: 0,
            endpoints_per_tenant,
        };
        rig.register(tenants, endpoints_per_tenant).await?;
        Ok(rig)
    }

    /// Endpoints per tenant: every accepted event should reach this many.
    pub fn receiver_endpoints(&self) -> usize {
        self.endpoints_per_tenant
    }

    async fn admin(
        &self,
        method: hyper::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.stack.admin_url);
        let request = hyper::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.stack.admin_token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let (status, answer) = client::call(&self.http, request, Duration::from_secs(10)).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {url} answered {status}: {}", String::from_utf8_lossy(&answer));
        }
        Ok(serde_json::from_slice(&answer).unwrap_or_default())
    }

    /// Registers the tenants, their endpoints (each endpoint's secret given to the
    /// receiver) and the accounts. Run again (after the registry was lost), it creates
    /// them anew: the same tenants and accounts, new endpoints with new secrets.
    pub async fn register(&self, tenants: usize, endpoints_per_tenant: usize) -> anyhow::Result<()> {
        eprintln!(
            "bench: registering {tenants} tenants × {endpoints_per_tenant} endpoints and {} accounts",
            tenants * mix::MIX.len()
        );
        for t in 0..tenants {
            let tenant = mix::tenant(t);
            self.admin(
                hyper::Method::PUT,
                &format!("/v1/tenants/{tenant}"),
                json!({"name": tenant}),
            )
            .await?;
            for k in 0..endpoints_per_tenant {
                let path = format!("/t{t}/e{k}");
                let created = self
                    .admin(
                        hyper::Method::POST,
                        &format!("/v1/tenants/{tenant}/endpoints"),
                        json!({"url": format!("{}{path}", self.receiver.base_url), "event_types": ["*"]}),
                    )
                    .await?;
                let secret = created["secret"].as_str().context("no secret in the endpoint's 201")?;
                self.receiver
                    .add_endpoint(&path, (t * endpoints_per_tenant + k) as u16, secret)?;
            }
            for (connector, _) in mix::MIX {
                let account = mix::account(connector, t);
                self.admin(
                    hyper::Method::PUT,
                    &format!("/v1/accounts/{account}"),
                    json!({"tenant_id": tenant, "connector": connector, "external_id": format!("ext_{account}"),
                           "signing_secrets": [self.mix.secret]}),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Sends `count` requests at `rate` (the first `warmup_count` not measured) and
    /// returns the tracker once the last is answered. `during` runs beside the load
    /// (fault injection), given the rig.
    pub async fn load(
        &mut self,
        rate: f64,
        count: usize,
        warmup_count: usize,
        (max_in_flight, timeout): (usize, Duration),
        duplicate_share: f64,
    ) -> anyhow::Result<(Arc<Tracker>, tokio::task::JoinHandle<()>, Instant)> {
        let mut mix = self.mix.clone();
        mix.rate = rate;
        mix.duplicate_share = duplicate_share;
        mix.id_base = self.used;
        mix.start_unix = time::OffsetDateTime::now_utc().unix_timestamp();
        self.used += count as u64 + 1;
        let mix = Arc::new(mix);
        let tracker = Arc::new(Tracker::new(warmup_count..count));
        let start = Instant::now() + Duration::from_millis(100);
        let task = tokio::spawn(load::run(
            client::new(max_in_flight),
            self.stack.ingress_url.clone(),
            mix,
            count,
            start,
            (max_in_flight, timeout),
            tracker.clone(),
        ));
        Ok((tracker, task, start))
    }

    /// Waits until the receiver holds at least `pairs` deliveries since `from`, or
    /// `within` passes.
    pub async fn drain(&self, from: usize, pairs: usize, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            if self.receiver.count().saturating_sub(from) >= pairs {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Runs the mode; everything started is stopped before this returns.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if !(args.rate > 0.0 && args.rate <= 20_000.0) {
        bail!("--rate must be above 0 and at most 20000");
    }
    if !(1..=64).contains(&args.tenants) || !(1..=16).contains(&args.endpoints_per_tenant) {
        bail!("--tenants is 1 to 64 and --endpoints-per-tenant 1 to 16");
    }
    if !(0.0..=0.9).contains(&args.duplicate_share) {
        bail!("--duplicate-share is 0 to 0.9");
    }
    if args.backlog_events > 2_000_000 || args.ramp_steps > 20 || !(1.05..=4.0).contains(&args.ramp_factor) {
        bail!("--backlog-events is at most 2000000, --ramp-steps at most 20, --ramp-factor 1.05 to 4");
    }
    // Short retries, so a refused or failed delivery comes back within seconds; enough
    // of them (about 25 minutes' worth) that the backlog mode never dead-letters.
    let mut schedule = vec![500u64, 1_000, 2_000, 5_000, 10_000];
    schedule.extend(std::iter::repeat_n(30_000u64, 50));
    let extra = format!(
        "retry_schedule_ms = {schedule:?}\nretry_jitter = 0.1\nrequest_timeout_ms = 5000\nretry_delay_ms = 1000\n"
    );
    let full = FullOptions {
        dispatcher_extra: extra,
        ..Default::default()
    };
    let mut rig = Rig::start(&args.paths, (args.tenants, args.endpoints_per_tenant), full).await?;
    let outcome = measure(&mut rig, args).await;
    let mut notes = rig.stack.notes.clone();
    notes.extend(rig.stack.failures());
    let kept = rig.stack.stop(args.output.keep).await;
    let mut report = outcome?;
    report.notes.splice(0..0, notes);
    if let Some(dir) = kept {
        report
            .notes
            .push(format!("configuration and logs kept in {}", dir.display()));
    }
    Ok(report)
}

async fn measure(rig: &mut Rig, args: &Args) -> anyhow::Result<Report> {
    let watched = rig.stack.watched()?;
    let mut notes = Vec::new();
    let mut phases = Vec::new();
    let mut ramp_highest_held = None;
    let mut backlog = None;
    if args.backlog {
        backlog = Some(crate::e2e::backlog::run(rig, args, &watched).await?);
    } else if args.ramp {
        let mut rate = args.rate;
        for step in 0..args.ramp_steps {
            eprintln!("bench: ramp step {} at {rate:.0} req/s", step + 1);
            let p = phase(rig, args, rate, &watched).await?;
            let held = p.matched.lost == 0
                && p.matched.end_to_end.as_ref().is_some_and(|l| l.p99_ms < RAMP_P99_MS)
                && p.sent.accepted_requests as f64 >= 0.99 * p.sent.requests_due as f64;
            phases.push(p);
            if !held {
                break;
            }
            ramp_highest_held = Some(rate);
            rate *= args.ramp_factor;
        }
    } else {
        phases.push(phase(rig, args, args.rate, &watched).await?);
    }
    // The aims are judged on one phase: in a ramp, the highest step whose latency, CPU
    // and losses all meet their aims (the throughput reached with them), else the highest
    // step held; otherwise the one run.
    let judged = if args.ramp {
        phases
            .iter()
            .filter(|p| aims_of(p).iter().skip(1).all(|a| a.met == Some(true)))
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .or_else(|| ramp_highest_held.and_then(|rate| phases.iter().find(|p| p.rate == rate)))
    } else {
        phases.last()
    };
    let aims_judged_at = judged.map(|p| p.rate);
    let aims = judged.map(aims_of).unwrap_or_default();
    if phases
        .iter()
        .any(|p| p.cpu.machine_busy_cores.is_some_and(|b| b >= 1.9))
    {
        notes.push(
            "the machine's CPUs were saturated during a window: everything competed for CPU (latency includes \
             waiting for one)"
                .into(),
        );
    }
    Ok(Report {
        mode: if args.backlog {
            "e2e backlog"
        } else if args.ramp {
            "e2e ramp"
        } else {
            "e2e"
        },
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        tenants: args.tenants,
        endpoints_per_tenant: args.endpoints_per_tenant,
        duplicate_share: args.duplicate_share,
        phases,
        ramp_highest_held,
        aims_judged_at,
        backlog,
        aims,
        notes,
    })
}

/// The card's aims, judged on one phase; throughput first.
fn aims_of(p: &Phase) -> Vec<Aim> {
    vec![
        Aim {
            what: "delivered per second".into(),
            limit: AIM_DELIVERED_PER_SEC,
            value: Some(p.delivered_per_sec),
            met: Some(p.delivered_per_sec >= AIM_DELIVERED_PER_SEC),
        },
        Aim::at_most(
            "CPU s per 1,000 events, every process but the bench",
            AIM_CPU_PER_1000,
            p.cpu_secs_per_1000_without_bench,
        ),
        Aim::at_most(
            "end-to-end p99, ms",
            AIM_E2E_P99_MS,
            p.matched.end_to_end.as_ref().map(|l| l.p99_ms),
        ),
        Aim::at_most("lost events", 0.0, Some(p.matched.lost as f64)),
    ]
}

/// One load phase at `rate`: warm-up, window, drain, matched.
async fn phase(rig: &mut Rig, args: &Args, rate: f64, watched: &[Watched]) -> anyhow::Result<Phase> {
    let warm = (args.warmup.as_secs_f64() * rate).round() as usize;
    let count = warm + (args.duration.as_secs_f64() * rate).round() as usize;
    if count > 5_000_000 {
        bail!("{count} requests in one phase is too many; shorten --duration");
    }
    let from = rig.receiver.count();
    let hz = cpu::ticks_per_second();
    let (tracker, task, start) = rig
        .load(
            rate,
            count,
            warm,
            (args.max_in_flight, args.timeout),
            args.duplicate_share,
        )
        .await?;
    tokio::time::sleep_until(start + args.warmup).await;
    let before = cpu::snapshot(watched, None);
    let window_open = std::time::Instant::now();
    tokio::time::sleep_until(start + args.warmup + args.duration).await;
    let after = cpu::snapshot(watched, None);
    let window_close = std::time::Instant::now();
    tokio::time::timeout(args.timeout + Duration::from_secs(5), task)
        .await
        .context("the load generator did not finish")??;
    let accepted = tracker.take_accepted();
    let pairs = accepted.len() * args.endpoints_per_tenant;
    eprintln!("bench: draining ({pairs} deliveries expected)");
    rig.drain(from, pairs, args.drain_within).await;
    let arrivals = rig.receiver.arrivals_since(from);
    let matched = rep::matched(&accepted, &arrivals, args.endpoints_per_tenant);
    let window = cpu::window(&before, &after, watched, hz);
    let secs = args.duration.as_secs_f64();
    let delivered_in_window = {
        let mut seen = std::collections::HashSet::new();
        arrivals
            .iter()
            .filter(|a| a.at >= window_open && a.at < window_close)
            .filter(|a| seen.insert((a.webhook_id.clone(), a.endpoint)))
            .count()
    };
    let peaks: HashMap<u32, f64> = watched
        .iter()
        .filter_map(|w| rep::rss_mib(w.pid).map(|(_, hwm)| (w.pid, hwm)))
        .collect();
    let processes = rep::costs(&window, matched.events_accepted_in_window, &peaks);
    let sent = tracker.summary();
    let watched_cores: f64 = processes.iter().filter_map(|p| p.cores).sum();
    let streams = crate::inspect::streams(&rig.stack.nats_url).await.unwrap_or_default();
    Ok(Phase {
        rate,
        duration_secs: secs,
        offered_per_sec: sent.requests_due as f64 / secs,
        accepted_events_per_sec: matched.events_accepted_in_window as f64 / secs,
        accepted_requests_per_sec: sent.accepted_requests as f64 / secs,
        delivered_per_sec: delivered_in_window as f64 / secs,
        cpu_secs_per_1000_all: rep::sum_per_1000(&processes, true),
        cpu_secs_per_1000_without_bench: rep::sum_per_1000(&processes, false),
        receiver_rejections: rig.receiver.rejections(),
        other_busy_cores: window.machine_busy_cores.map(|b| (b - watched_cores).max(0.0)),
        streams,
        processes,
        cpu: window,
        matched,
        sent,
    })
}

/// The report as a table.
pub fn human(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "switchyard-bench {} — {} CPUs, {} tenants × {} endpoints, provider retries {:.0}%",
        r.mode,
        r.cpus,
        r.tenants,
        r.endpoints_per_tenant,
        r.duplicate_share * 100.0
    );
    for p in &r.phases {
        rep::phase_table(&mut out, p);
    }
    if let Some(h) = r.ramp_highest_held {
        let _ = writeln!(out, "ramp: highest rate held with p99 < 1 s: {h:.0} req/s");
    } else if r.mode == "e2e ramp" {
        let _ = writeln!(out, "ramp: not even the first step held");
    }
    if let (Some(at), "e2e ramp") = (r.aims_judged_at, r.mode) {
        let _ = writeln!(
            out,
            "aims judged at {at:.0} req/s: the highest step whose CPU, p99 and losses meet theirs \
             (else the highest held)"
        );
    }
    if let Some(b) = &r.backlog {
        let m = &b.matched;
        let _ = writeln!(
            out,
            "backlog: {} events accepted in {:.0} s with the endpoints down; drained {:.0} s after they came back: \
             delivered {} of {}, LOST {}, duplicate deliveries {}",
            b.events_accepted,
            b.fill_secs,
            b.recovery_secs,
            m.delivered,
            m.deliveries_expected,
            m.lost,
            m.duplicate_deliveries
        );
        let _ = writeln!(
            out,
            "  {:<30} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "RSS MiB", "25%", "50%", "75%", "100%", "max fill", "max recov"
        );
        for c in &b.rss {
            let q = c.at_quarters_mib;
            let _ = writeln!(
                out,
                "  {:<30} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.1} {:>10.1}",
                c.label, q[0], q[1], q[2], q[3], c.max_fill_mib, c.max_recovery_mib
            );
        }
    }
    if !r.aims.is_empty() {
        rep::aims_table(&mut out, &r.aims);
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
