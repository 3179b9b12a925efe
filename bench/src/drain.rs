//! The normalizer draining a raw backlog: started on a full raw stream, its CPU time
//! (`/proc`, all threads) is sampled from the moment it is ready until the unified and
//! dead-letter streams together hold every raw event, and divided by the events it
//! finished in that window. Events it finished before it answered ready are in neither
//! the CPU nor the count, so start-up (catalog loading, connections) stays out.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::client::Client;
use crate::cpu::{self, ThreadCpu};
use crate::inspect::{self, SumCount};
use crate::stack::Stack;

/// The streams of namespace `bench` (the stack's configuration).
const RAW: &str = "BENCH_RAW";
const UNIFIED: &str = "BENCH_UNIFIED";
const DEAD_LETTERS: &str = "BENCH_DEAD_LETTERS";
const CLAIM_FETCHES: &str = "switchyard_normalizer_claim_fetches_total";
/// How often the streams are read while the normalizer drains.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// What the drain measured.
#[derive(Debug, Clone, Serialize)]
pub struct Drain {
    /// Messages in the raw stream before the normalizer started.
    pub raw_messages: u64,
    /// In the unified and dead-letter streams at the end.
    pub unified_messages: u64,
    pub dead_letters: u64,
    /// Finished (unified or dead-lettered) inside the window.
    pub events_in_window: u64,
    pub wall_secs: f64,
    pub events_per_sec: Option<f64>,
    /// **The aim's figure**: the normalizer's CPU over the window per event.
    pub normalizer_us_per_event: Option<f64>,
    pub processes: Vec<PerEvent>,
    /// The normalizer's threads, most CPU first.
    pub normalizer_threads: Vec<ThreadCpu>,
    pub machine_busy_cores: Option<f64>,
    /// CPUs' worth of time the host took from this VM over the window (steal).
    pub machine_stolen_cores: Option<f64>,
    /// `switchyard_normalizer_mapping_seconds` over the window (event selection, mapping
    /// and conversion, as the normalizer times them; wall time), mean per event.
    pub mean_mapping_us: Option<f64>,
    /// `switchyard_normalizer_claim_fetches_total` over the window: S3 GETs of whole
    /// claim-check objects (one per commit group when its cache works).
    pub claim_fetches: Option<f64>,
    #[serde(skip)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PerEvent {
    pub label: String,
    pub cpu_secs: Option<f64>,
    pub us_per_event: Option<f64>,
    pub cores: Option<f64>,
}

/// Starts the normalizer on the stack's raw backlog and measures it until the backlog
/// is drained or `within` has passed.
pub async fn measure(stack: &mut Stack, bin_dir: &Path, http: &Client, within: Duration) -> anyhow::Result<Drain> {
    let nats = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(&stack.nats_url)
        .await
        .context("connecting to NATS")?;
    let js = async_nats::jetstream::new(nats);
    let count = |name: &'static str| {
        let js = js.clone();
        async move {
            match js.get_stream(name).await {
                Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
                Err(_) => 0,
            }
        }
    };
    let raw_messages = count(RAW).await;
    let finished = || async { (count(UNIFIED).await, count(DEAD_LETTERS).await) };

    let pid = stack.start_normalizer(bin_dir, http).await?;
    let watched = stack.watched()?;
    let hz = cpu::ticks_per_second();
    let ops = stack.normalizer_ops_url();
    let before = cpu::snapshot(&watched, Some(pid));
    let (u0, d0) = finished().await;
    let metrics_before = inspect::scrape(http, &ops).await;
    eprintln!(
        "bench: normalizer draining {raw_messages} raw events ({} already done at ready)",
        u0 + d0
    );
    let deadline = Instant::now() + within;
    let mut notes = Vec::new();
    let (mut unified, mut dead) = (u0, d0);
    while unified + dead < raw_messages {
        if Instant::now() >= deadline {
            notes.push(format!(
                "the normalizer had not drained the backlog after {within:?}: {} of {raw_messages} done",
                unified + dead
            ));
            break;
        }
        if let Some(failure) = stack.normalizer_failure() {
            anyhow::bail!("{failure}");
        }
        tokio::time::sleep(POLL_EVERY).await;
        (unified, dead) = finished().await;
    }
    let after = cpu::snapshot(&watched, Some(pid));
    let metrics_after = inspect::scrape(http, &ops).await;
    let window = cpu::window(&before, &after, &watched, hz);
    let events = (unified + dead).saturating_sub(u0 + d0);
    notes.extend(cpu::steal_note(window.machine_stolen_cores));
    if dead > 0 {
        notes.push(format!(
            "{dead} events were dead-lettered, not mapped: see the normalizer's log (--keep)"
        ));
    }
    let processes: Vec<PerEvent> = window
        .processes
        .iter()
        .map(|p| PerEvent {
            label: p.label.clone(),
            cpu_secs: p.cpu_secs,
            us_per_event: p.cpu_secs.filter(|_| events > 0).map(|s| s / events as f64 * 1e6),
            cores: p.cpu_secs.map(|s| s / window.wall_secs),
        })
        .collect();
    let claim_fetches = match (&metrics_before, &metrics_after) {
        (Some(a), Some(b)) => Some(counter(b, CLAIM_FETCHES) - counter(a, CLAIM_FETCHES)),
        _ => None,
    };
    let mapping = match (metrics_before, metrics_after) {
        (Some(a), Some(b)) => {
            let (a, b) = (
                inspect::histogram(&a, "switchyard_normalizer_mapping_seconds"),
                inspect::histogram(&b, "switchyard_normalizer_mapping_seconds"),
            );
            Some(SumCount {
                sum: b.sum - a.sum,
                count: b.count - a.count,
            })
        }
        _ => None,
    };
    Ok(Drain {
        raw_messages,
        unified_messages: unified,
        dead_letters: dead,
        events_in_window: events,
        wall_secs: window.wall_secs,
        events_per_sec: (window.wall_secs > 0.0).then(|| events as f64 / window.wall_secs),
        normalizer_us_per_event: processes
            .iter()
            .find(|p| p.label == "normalizer")
            .and_then(|p| p.us_per_event),
        processes,
        normalizer_threads: window.threads,
        machine_busy_cores: window.machine_busy_cores,
        machine_stolen_cores: window.machine_stolen_cores,
        mean_mapping_us: mapping.filter(|m| m.count > 0.0).map(|m| m.sum / m.count * 1e6),
        claim_fetches,
        notes,
    })
}

/// The sum of a Prometheus counter over all its label sets (0 if absent).
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum()
}

/// The drain's lines of the table.
pub fn human(d: &Drain) -> String {
    use std::fmt::Write;
    let opt = |v: Option<f64>, p: usize| v.map_or_else(|| "-".into(), |v| format!("{v:.p$}"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  drain                  {} raw → {} unified + {} dead letters; {} events in {:.2} s: {} events/s",
        d.raw_messages,
        d.unified_messages,
        d.dead_letters,
        d.events_in_window,
        d.wall_secs,
        opt(d.events_per_sec, 0)
    );
    let _ = writeln!(out, "\n  CPU over the drain                CPU s    µs / event   cores");
    for p in &d.processes {
        let _ = writeln!(
            out,
            "  {:<30} {:>7}   {:>11}   {:>5}",
            p.label,
            opt(p.cpu_secs, 2),
            opt(p.us_per_event, 1),
            opt(p.cores, 2)
        );
    }
    let _ = writeln!(
        out,
        "  {:<30} {:>7}   {:>11}   {:>5}",
        "whole machine (busy)",
        "",
        "",
        opt(d.machine_busy_cores, 2)
    );
    let _ = writeln!(
        out,
        "  {:<30} {:>7}   {:>11}   {:>5}",
        "taken by the host (steal)",
        "",
        "",
        opt(d.machine_stolen_cores, 2)
    );
    let top: Vec<String> = d
        .normalizer_threads
        .iter()
        .take(8)
        .map(|t| format!("{} [{}] {:.2} s", t.name, t.tid, t.cpu_secs))
        .collect();
    if !top.is_empty() {
        let _ = writeln!(out, "  normalizer threads: {}", top.join(", "));
    }
    let _ = writeln!(
        out,
        "  normalizer's own mapping timer (normalize(): select + map + convert, wall): {} µs/event mean",
        opt(d.mean_mapping_us, 1)
    );
    let _ = writeln!(
        out,
        "  claim-check objects fetched from S3 in the window: {}",
        opt(d.claim_fetches, 0)
    );
    out
}
