//! The figures of one run, as JSON (`--json`) or as a table for a person.

use std::fmt::Write;

use serde::Serialize;

use crate::cpu::Window;
use crate::inspect::{Internals, StreamState};
use crate::stats::{Latency, Summary};

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub settings: Settings,
    pub load: Summary,
    /// 200 answers to requests due in the window, per second of window.
    pub accepted_per_sec: f64,
    /// Busy CPUs of the machine in the second before the load started: what other
    /// processes were using.
    pub busy_before_load: Option<f64>,
    /// CPU of each process over the window (and the ingress's threads).
    pub cpu: Window,
    /// CPU of each process divided by the window's 200 answers.
    pub per_1000_accepted: Vec<PerThousand>,
    pub ingress_internals: Option<Internals>,
    /// JetStream after the run.
    pub streams: Vec<StreamState>,
    pub aims: Vec<Aim>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub rate: f64,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub duplicate_share: f64,
    pub max_in_flight: usize,
    pub timeout_secs: f64,
    pub body_bytes_mean: f64,
    /// CPUs of this machine (everything runs on it).
    pub cpus: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PerThousand {
    pub label: String,
    /// CPU seconds per 1,000 accepted webhooks.
    pub cpu_secs_per_1000: Option<f64>,
    /// The same, in microseconds per accepted webhook.
    pub cpu_us_per_webhook: Option<f64>,
    /// Average cores the process kept busy over the window.
    pub cores: Option<f64>,
}

/// One of the aims, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Aim {
    pub what: String,
    pub limit: f64,
    pub value: Option<f64>,
    pub met: Option<bool>,
}

impl Aim {
    pub fn at_most(what: &str, limit: f64, value: Option<f64>) -> Self {
        Self {
            what: what.to_string(),
            limit,
            value,
            met: value.map(|v| v <= limit),
        }
    }
}

/// Per-process figures from the window's CPU and accepted count.
pub fn per_thousand(cpu: &Window, accepted: u64) -> Vec<PerThousand> {
    cpu.processes
        .iter()
        .map(|p| {
            let per = |scale: f64| p.cpu_secs.filter(|_| accepted > 0).map(|s| s / accepted as f64 * scale);
            PerThousand {
                label: p.label.clone(),
                cpu_secs_per_1000: per(1_000.0),
                cpu_us_per_webhook: per(1_000_000.0),
                cores: p.cpu_secs.filter(|_| cpu.wall_secs > 0.0).map(|s| s / cpu.wall_secs),
            }
        })
        .collect()
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

fn latency_line(out: &mut String, label: &str, l: &Option<Latency>) {
    let _ = match l {
        Some(l) => writeln!(
            out,
            "  {label:<22} p50 {:>7.2}  p95 {:>7.2}  p99 {:>7.2}  p99.9 {:>7.2}  max {:>8.2}  mean {:>7.2}",
            l.p50_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
        ),
        None => writeln!(out, "  {label:<22} (no samples)"),
    };
}

/// The table printed without `--json`.
pub fn human(r: &Report) -> String {
    let s = &r.settings;
    let l = &r.load;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nswitchyard-bench {}: {} req/s open model, {} s measured after {} s warm-up, {} CPUs",
        r.mode, s.rate, s.duration_secs, s.warmup_secs, s.cpus
    );
    let _ = writeln!(
        out,
        "  body {:.0} bytes (Stripe invoice.paid), duplicate share {}, max in flight {}, timeout {} s\n",
        s.body_bytes_mean, s.duplicate_share, s.max_in_flight, s.timeout_secs
    );
    let _ = writeln!(
        out,
        "  requests               {} due, {} sent, {} sent >1 ms late, {} waited for a slot, {} not sent",
        l.due, l.sent, l.sent_over_1ms_late, l.waited_for_slot, l.not_sent
    );
    let statuses: Vec<String> = l.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let errors: Vec<String> = l.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(
        out,
        "  answers                {}   (200 = {} new + {} duplicate){}",
        if statuses.is_empty() {
            "none".into()
        } else {
            statuses.join(", ")
        },
        l.accepted_new,
        l.accepted_duplicate,
        if errors.is_empty() {
            String::new()
        } else {
            format!("; no answer: {}", errors.join(", "))
        }
    );
    let _ = writeln!(out, "  accepted/s             {:.1}\n", r.accepted_per_sec);
    let _ = writeln!(out, "  latency, ms");
    latency_line(&mut out, "ack (200), from due", &l.ack_latency);
    latency_line(&mut out, "ack (200), from send", &l.ack_service_time);
    latency_line(&mut out, "any answer, from due", &l.any_answer_latency);
    latency_line(&mut out, "send lag (generator)", &l.send_lag);

    let _ = writeln!(
        out,
        "\n  CPU over the window ({:.1} s)     CPU s / 1,000 accepted   µs / accepted   cores",
        r.cpu.wall_secs
    );
    for p in &r.per_1000_accepted {
        let _ = writeln!(
            out,
            "  {:<32} {:>22}   {:>13}   {:>5}",
            p.label,
            opt(p.cpu_secs_per_1000, 4),
            opt(p.cpu_us_per_webhook, 1),
            opt(p.cores, 2)
        );
    }
    let _ = writeln!(
        out,
        "  {:<32} {:>22}   {:>13}   {:>5}",
        "whole machine (busy)",
        "",
        "",
        opt(r.cpu.machine_busy_cores, 2)
    );
    let _ = writeln!(
        out,
        "  {:<32} {:>22}   {:>13}   {:>5}",
        "taken by the host (steal)",
        "",
        "",
        opt(r.cpu.machine_stolen_cores, 2)
    );
    let _ = writeln!(
        out,
        "  {:<32} {:>22}   {:>13}   {:>5}",
        "whole machine, before the load",
        "",
        "",
        opt(r.busy_before_load, 2)
    );
    if !r.cpu.threads.is_empty() {
        let top: Vec<String> = r
            .cpu
            .threads
            .iter()
            .take(8)
            .map(|t| format!("{} [{}] {:.2} s", t.name, t.tid, t.cpu_secs))
            .collect();
        let _ = writeln!(out, "  ingress threads: {}", top.join(", "));
    }
    if let Some(i) = &r.ingress_internals {
        let _ = writeln!(
            out,
            "\n  ingress internals      {} commit groups, {} requests/group, S3 PUT {} ms, publish {} ms, ack {} ms (means)",
            i.groups,
            opt(i.mean_group_requests, 1),
            opt(i.mean_s3_put_ms, 2),
            opt(i.mean_publish_ms, 2),
            opt(i.mean_ack_ms, 2)
        );
    }
    if !r.streams.is_empty() {
        let streams: Vec<String> = r
            .streams
            .iter()
            .map(|s| format!("{} {} msgs", s.name, s.messages))
            .collect();
        let _ = writeln!(
            out,
            "  JetStream after run    {}   ({} new events acknowledged over the run)",
            streams.join(", "),
            l.run_accepted_new
        );
    }
    let _ = writeln!(out, "\n  aims");
    for a in &r.aims {
        let verdict = match a.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "  {:<50} {:>9} (limit {})  {verdict}",
            a.what,
            opt(a.value, 2),
            a.limit
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "\n  note: {n}");
    }
    out
}
