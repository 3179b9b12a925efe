//! The end-to-end figures: matching what the receiver recorded against what the
//! ingress accepted (lost events, duplicate deliveries, end-to-end latency), memory
//! from `/proc`, and the table for a person.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Serialize;

use crate::cpu::Window;
use crate::e2e::load::{Accepted, Sent};
use crate::e2e::receiver::{Arrival, Rejections};
use crate::report::Aim;
use crate::stats::Latency;

/// Deliveries matched against accepted events.
#[derive(Debug, Clone, Serialize)]
pub struct Matched {
    /// Distinct events accepted (200) over the phase, and those due in the window.
    pub events_accepted: u64,
    pub events_accepted_in_window: u64,
    /// (event, endpoint) pairs that should arrive: each event goes to every endpoint of
    /// its tenant.
    pub deliveries_expected: u64,
    /// First arrivals of an expected pair.
    pub delivered: u64,
    /// Expected pairs that never arrived before the drain deadline. Must be 0.
    pub lost: u64,
    /// Arrivals of a pair that had already arrived.
    pub duplicate_deliveries: u64,
    /// Arrivals of events no 200 was seen for (a request cut off by the client's
    /// timeout, or answered 503, can still have been made durable).
    pub delivered_without_a_200: u64,
    /// Ingress accept (the 200 read by the generator) → verified arrival, for events
    /// due in the measured window.
    pub end_to_end: Option<Latency>,
    /// Arrivals that came before the generator had read the 200 (counted as 0 ms).
    pub arrived_before_the_200: u64,
    /// Up to ten lost pairs, `connector webhook-id → endpoint`, to look for in the logs.
    pub lost_sample: Vec<String>,
}

/// Matches `arrivals` to `accepted`; `endpoints_per_tenant` endpoints per tenant,
/// numbered `tenant * endpoints_per_tenant + k`.
pub fn matched(accepted: &HashMap<Box<str>, Accepted>, arrivals: &[Arrival], endpoints_per_tenant: usize) -> Matched {
    let mut seen: HashMap<(&str, u16), u32> = HashMap::with_capacity(arrivals.len());
    let mut e2e_us = Vec::new();
    let (mut delivered, mut dup, mut unexpected, mut early) = (0u64, 0u64, 0u64, 0u64);
    for a in arrivals {
        let n = seen.entry((&a.webhook_id, a.endpoint)).or_default();
        *n += 1;
        if *n > 1 {
            dup += 1;
            continue;
        }
        let Some(acc) = accepted.get(&a.webhook_id) else {
            unexpected += 1;
            continue;
        };
        delivered += 1;
        if acc.measured {
            match a.at.checked_duration_since(acc.at) {
                Some(d) => e2e_us.push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX)),
                None => {
                    early += 1;
                    e2e_us.push(0);
                }
            }
        }
    }
    let eps = endpoints_per_tenant as u16;
    let mut lost = 0;
    let mut lost_sample = Vec::new();
    for (id, acc) in accepted {
        for k in 0..eps {
            let endpoint = acc.tenant * eps + k;
            if !seen.contains_key(&(&**id, endpoint)) {
                lost += 1;
                if lost_sample.len() < 10 {
                    lost_sample.push(format!("{} {id} → endpoint {endpoint}", acc.connector));
                }
            }
        }
    }
    Matched {
        events_accepted: accepted.len() as u64,
        events_accepted_in_window: accepted.values().filter(|a| a.measured).count() as u64,
        deliveries_expected: (accepted.len() * endpoints_per_tenant) as u64,
        delivered,
        lost,
        duplicate_deliveries: dup,
        delivered_without_a_200: unexpected,
        end_to_end: Latency::of(&mut e2e_us),
        arrived_before_the_200: early,
        lost_sample,
    }
}

/// CPU and memory of one process.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCost {
    pub label: String,
    pub cpu_secs: Option<f64>,
    /// CPU seconds per 1,000 events accepted in the window.
    pub cpu_secs_per_1000_events: Option<f64>,
    pub cores: Option<f64>,
    /// Peak resident memory (`VmHWM` of `/proc/<pid>/status`), MiB.
    pub peak_rss_mib: Option<f64>,
}

/// One steady run (or one ramp step).
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub rate: f64,
    pub duration_secs: f64,
    pub offered_per_sec: f64,
    /// New events accepted per second of window.
    pub accepted_events_per_sec: f64,
    pub accepted_requests_per_sec: f64,
    /// First arrivals at the receiver inside the window, per second.
    pub delivered_per_sec: f64,
    pub sent: Sent,
    pub matched: Matched,
    pub receiver_rejections: Rejections,
    pub cpu: Window,
    pub processes: Vec<ProcessCost>,
    /// CPU s per 1,000 events summed over every process, with and without the bench
    /// process (generator and receiver).
    pub cpu_secs_per_1000_all: Option<f64>,
    pub cpu_secs_per_1000_without_bench: Option<f64>,
    /// Busy cores of the machine over the window not used by the processes above
    /// (other work on a shared machine).
    pub other_busy_cores: Option<f64>,
    /// JetStream's streams after the drain (dead letters would show here).
    pub streams: Vec<crate::inspect::StreamState>,
}

pub fn costs(window: &Window, events: u64, peaks: &HashMap<u32, f64>) -> Vec<ProcessCost> {
    window
        .processes
        .iter()
        .map(|p| ProcessCost {
            label: p.label.clone(),
            cpu_secs: p.cpu_secs,
            cpu_secs_per_1000_events: p.cpu_secs.filter(|_| events > 0).map(|c| c * 1_000.0 / events as f64),
            cores: p.cpu_secs.map(|c| c / window.wall_secs.max(1e-9)),
            peak_rss_mib: peaks.get(&p.pid).copied(),
        })
        .collect()
}

pub fn sum_per_1000(processes: &[ProcessCost], with_bench: bool) -> Option<f64> {
    processes
        .iter()
        .filter(|p| with_bench || !p.label.contains("bench"))
        .map(|p| p.cpu_secs_per_1000_events)
        .sum()
}

/// `(VmRSS, VmHWM)` of a process in MiB, from `/proc/<pid>/status`.
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1_024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn ms(l: &Option<Latency>) -> String {
    l.as_ref().map_or("-".into(), |l| {
        format!(
            "p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1} ms",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        )
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// The table of one phase.
pub fn phase_table(out: &mut String, p: &Phase) {
    let m = &p.matched;
    let _ = writeln!(out, "rate {:.0} req/s over {:.0} s", p.rate, p.duration_secs);
    let _ = writeln!(
        out,
        "  offered {:.0} req/s; accepted {:.0} req/s ({:.0} new events/s); delivered {:.0}/s",
        p.offered_per_sec, p.accepted_requests_per_sec, p.accepted_events_per_sec, p.delivered_per_sec
    );
    let _ = writeln!(
        out,
        "  answers {:?}  errors {:?}  not sent {}  provider retries sent {}  mean body {:.0} B",
        p.sent.status, p.sent.errors, p.sent.not_sent, p.sent.duplicate_requests, p.sent.body_bytes_mean
    );
    let _ = writeln!(out, "  requests by provider {:?}", p.sent.requests_by_connector);
    let _ = writeln!(out, "  ack (200, from due)      {}", ms(&p.sent.ack_latency));
    let _ = writeln!(out, "  end to end (200 → recv)  {}", ms(&m.end_to_end));
    let _ = writeln!(out, "  send lag (generator)     {}", ms(&p.sent.send_lag));
    let _ = writeln!(
        out,
        "  events accepted {} (window {}), deliveries expected {}, delivered {}, LOST {}, duplicate deliveries {}, \
         delivered without a 200 {}",
        m.events_accepted,
        m.events_accepted_in_window,
        m.deliveries_expected,
        m.delivered,
        m.lost,
        m.duplicate_deliveries,
        m.delivered_without_a_200
    );
    let r = &p.receiver_rejections;
    let _ = writeln!(
        out,
        "  receiver: bad signatures {}, refused {}, hung {}, unknown path {}",
        r.bad_signatures, r.refused, r.hung, r.unknown_path
    );
    let _ = writeln!(
        out,
        "  {:<30} {:>9} {:>14} {:>7} {:>13}",
        "process", "CPU s", "CPU s/1k ev", "cores", "peak RSS MiB"
    );
    for c in &p.processes {
        let _ = writeln!(
            out,
            "  {:<30} {:>9} {:>14} {:>7} {:>13}",
            c.label,
            opt(c.cpu_secs, 2),
            opt(c.cpu_secs_per_1000_events, 3),
            opt(c.cores, 2),
            opt(c.peak_rss_mib, 1)
        );
    }
    let _ = writeln!(
        out,
        "  {:<30} {:>9} {:>14}   (without the bench process: {})",
        "sum",
        "",
        opt(p.cpu_secs_per_1000_all, 3),
        opt(p.cpu_secs_per_1000_without_bench, 3)
    );
    let _ = writeln!(
        out,
        "  machine busy {} cores, of which {} by other processes than these",
        opt(p.cpu.machine_busy_cores, 2),
        opt(p.other_busy_cores, 2)
    );
    let streams: Vec<String> = p.streams.iter().map(|s| format!("{} {}", s.name, s.messages)).collect();
    let _ = writeln!(out, "  JetStream after the drain: {}", streams.join(", "));
    for l in &m.lost_sample {
        let _ = writeln!(out, "  lost: {l}");
    }
}

pub fn aims_table(out: &mut String, aims: &[Aim]) {
    let _ = writeln!(out, "aims (the issue's card):");
    for a in aims {
        let verdict = match a.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "  {:<55} limit {:>8}  measured {:>10}  {verdict}",
            a.what,
            a.limit,
            opt(a.value, 3)
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn counts_lost_duplicate_and_unexpected_deliveries() {
        let t0 = Instant::now();
        let acc = |tenant| Accepted {
            at: t0,
            tenant,
            connector: "stripe",
            measured: true,
        };
        let accepted: HashMap<Box<str>, Accepted> = [("a".into(), acc(0)), ("b".into(), acc(1))].into();
        let arr = |id: &str, endpoint, ms| Arrival {
            endpoint,
            webhook_id: id.into(),
            at: t0 + Duration::from_millis(ms),
        };
        // Two endpoints per tenant: a → 0, 1; b → 2, 3.
        let arrivals = [
            arr("a", 0, 10),
            arr("a", 1, 20),
            arr("a", 1, 30),
            arr("b", 2, 40),
            arr("z", 0, 5),
        ];
        let m = matched(&accepted, &arrivals, 2);
        assert_eq!((m.delivered, m.lost, m.duplicate_deliveries), (3, 1, 1));
        assert_eq!(m.delivered_without_a_200, 1);
        assert_eq!(m.deliveries_expected, 4);
        assert_eq!(m.end_to_end.unwrap().max_ms, 40.0);
    }
}
