//! `switchyard-bench normalizer`: what one event costs the normalizer all-in (claim-check
//! fetch, parse, route, map, schema check, publish, ack), and what the mapping's
//! evaluation alone costs, ours against jsonata-js.
//!
//! Order of a run: evaluate the bench expression over the bench payload in this process
//! and in jsonata-js on Node (before the stack starts, so the machine is quiet) → write
//! a catalog folder holding the shipped catalog plus a `bench` connector whose one
//! mapping is the bench expression → start the servers and the ingress (no dispatcher,
//! so no delivery cost) → send `--events` signed events of the bench payload, so the raw
//! stream holds a backlog → start the normalizer and, from the moment it is ready,
//! sample its CPU until every raw event is in the unified (or dead-letter) stream →
//! stop everything → report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use switchyard_connectors::Catalog;
use tokio::time::Instant;

use crate::evaluate::{self, Ours, Reference};
use crate::load::{self, Target};
use crate::payload::{self, Plan};
use crate::report::Aim;
use crate::stack::{self, Stack, ACCOUNT};
use crate::stats::{Recorder, Summary};
use crate::{client, drain, OutputArgs, PathArgs};

/// The issue's aims for the normalizer.
const AIM_CPU_US_PER_EVENT: f64 = 60.0;
const AIM_TIMES_FASTER: f64 = 4.0;
/// The connector the bench catalog adds, and the raw event type its mapping is for.
const CONNECTOR: &str = "bench";
const EVENT_TYPE: &str = "invoice.paid";
const UNIFIED_TYPE: &str = "payments.invoice.paid";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events in the raw backlog the normalizer drains.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Requests per second while filling the backlog (the ingress must keep up).
    #[arg(long, default_value_t = 1_500.0)]
    pub fill_rate: f64,
    /// Longest wait for the normalizer to drain the backlog.
    #[arg(long, default_value = "5m", value_parser = crate::parse_duration)]
    pub drain_within: Duration,
    /// Evaluations timed on each side of the engine comparison (after as many warm-up
    /// evaluations as a tenth of this).
    #[arg(long, default_value_t = 50_000)]
    pub iterations: u64,
    /// The JSONata expression (the mapping of `invoice.paid` to `payments.invoice.paid`).
    #[arg(long, default_value_os_t = crate::workspace().join("bench/normalizer/mapping.jsonata"))]
    pub expression: PathBuf,
    /// The event it maps (a Stripe `invoice.paid`; ids and `created` are set per event).
    #[arg(long, default_value_os_t = crate::workspace().join("bench/normalizer/payload.json"))]
    pub payload: PathBuf,
    #[command(flatten)]
    pub paths: PathArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub events: usize,
    pub body_bytes: usize,
    pub expression: String,
    pub cpus: usize,
    /// The mapping alone, in this process.
    pub ours: Ours,
    /// The same in jsonata-js.
    pub reference: Reference,
    /// jsonata-js CPU per evaluation divided by ours.
    pub times_faster: Option<f64>,
    /// Filling the backlog through the ingress.
    pub fill: Summary,
    pub drain: drain::Drain,
    pub aims: Vec<Aim>,
    pub notes: Vec<String>,
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.events == 0 || args.events > 500_000 {
        bail!("--events must be 1 to 500000");
    }
    if !(args.fill_rate > 0.0 && args.fill_rate <= 20_000.0) {
        bail!("--fill-rate must be above 0 and at most 20000");
    }
    let expression = std::fs::read_to_string(&args.expression)
        .with_context(|| format!("reading the expression {}", args.expression.display()))?;
    let payload_bytes =
        std::fs::read(&args.payload).with_context(|| format!("reading the payload {}", args.payload.display()))?;
    let template: serde_json::Value = serde_json::from_slice(&payload_bytes).context("the payload is not JSON")?;

    let (n, warmup) = (args.iterations.max(1), (args.iterations / 10).max(1));
    eprintln!("bench: evaluating the expression {n} times in this process");
    let source = expression.clone();
    let body = payload_bytes.clone();
    let ours = tokio::task::spawn_blocking(move || evaluate::ours(&source, &body, n, warmup)).await??;
    eprintln!("bench: evaluating it {n} times in jsonata-js (node)");
    let reference = evaluate::reference(&args.expression, &args.payload, n, warmup).await;
    let times_faster = match &reference {
        Reference::Measured(js) if ours.evaluation.cpu_us_per_eval > 0.0 => {
            Some(js.cpu_us_per_eval / ours.evaluation.cpu_us_per_eval)
        }
        _ => None,
    };

    let folder = tempfile::Builder::new()
        .prefix("swy-bench-catalog-")
        .tempdir()
        .context("creating a temporary folder")?;
    let catalog_dir = bench_catalog(&args.paths.catalog(), folder.path(), &expression)?;
    let catalog = Catalog::load_dir(&catalog_dir)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading the bench catalog")?;
    let connector = catalog
        .get(CONNECTOR)
        .context("the bench catalog has no bench connector")?
        .clone();

    let http = client::new(4);
    let opts = stack::Options {
        bin_dir: args.paths.bin_dir(),
        catalog: catalog_dir,
        from_workspace: args.paths.bin_dir.is_none(),
        connector: CONNECTOR.into(),
        normalizer: true,
    };
    let mut stack = Stack::start_for_ingress(&opts, &http).await?;
    let measured = async {
        let fill = fill(&stack, args, &connector, &template).await?;
        let drained = drain::measure(&mut stack, &opts.bin_dir, &http, args.drain_within).await?;
        anyhow::Ok((fill, drained))
    }
    .await;
    let mut notes = stack.notes.clone();
    if let Some(failure) = stack.normalizer_failure() {
        notes.push(failure);
    }
    if let Some(dir) = stack.stop(args.output.keep).await {
        notes.push(format!("configuration and logs kept in {}", dir.display()));
    }
    let (fill, drain) = measured?;
    notes.extend(drain.notes.iter().cloned());
    if let Some(busy) = ours.machine_busy_cores.filter(|b| *b > 1.2) {
        notes.push(format!(
            "the machine was {busy:.2} cores busy while our evaluation was timed (it needs about one): other \
             processes competed for the CPUs"
        ));
    }
    if let Reference::Skipped(why) = &reference {
        notes.push(format!("jsonata-js reference skipped: {why}"));
    }
    let aims = vec![
        Aim::at_most(
            "normalizer CPU per event all-in, µs",
            AIM_CPU_US_PER_EVENT,
            drain.normalizer_us_per_event,
        ),
        Aim {
            what: "evaluation: times faster than jsonata-js (CPU)".into(),
            limit: AIM_TIMES_FASTER,
            value: times_faster,
            met: times_faster.map(|t| t >= AIM_TIMES_FASTER),
        },
    ];
    Ok(Report {
        mode: "normalizer",
        events: args.events,
        body_bytes: payload::from_template(&template, "r0000", 0, 1_700_000_000).len(),
        expression: args.expression.display().to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ours,
        reference,
        times_faster,
        fill,
        drain,
        aims,
        notes,
    })
}

/// Writes `<folder>/catalog` (the shipped connector files plus `bench.toml`) and
/// `<folder>/unified` (the shipped unified models: the loader reads them beside the
/// catalog), and returns the catalog folder.
fn bench_catalog(shipped: &Path, folder: &Path, expression: &str) -> anyhow::Result<PathBuf> {
    if expression.contains("'''") {
        bail!("the expression holds ''', which a TOML literal string cannot");
    }
    let models = Catalog::models_dir(shipped);
    let (catalog, unified) = (folder.join("catalog"), folder.join("unified"));
    for (from, to, ext) in [(shipped, &catalog, "toml"), (models.as_path(), &unified, "json")] {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == ext) {
                std::fs::copy(&path, to.join(path.file_name().unwrap_or_default()))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
    }
    let connector = format!(
        r#"# Written by switchyard-bench normalizer: Stripe's signature and event fields, and one
# mapping, the bench expression ({EVENT_TYPE} → {UNIFIED_TYPE}).
name = "{CONNECTOR}"
title = "Switchyard bench"
docs = "https://docs.stripe.com/webhooks"
unmapped = "pass_through"

[signature]
scheme = "hmac"
algorithm = "sha256"
secret_format = "raw"
message = "{{timestamp}}.{{body}}"
encoding = "hex"
header = {{ format = "key_value", name = "Stripe-Signature", signature_key = "v1", timestamp_key = "t" }}
timestamp = {{ source = "signature_header", unit = "seconds", tolerance_secs = 300 }}

[event]
id = {{ json = "id" }}
type = {{ json = "type" }}
occurred_at = {{ json = "created", format = "unix_seconds" }}

[mappings."{EVENT_TYPE}"]
type = "{UNIFIED_TYPE}"
data = '''
{expression}'''
"#
    );
    std::fs::write(catalog.join(format!("{CONNECTOR}.toml")), connector)?;
    Ok(catalog)
}

/// Sends `--events` signed events to the ingress at `--fill-rate`, and waits for the
/// answers: the raw backlog.
async fn fill(
    stack: &Stack,
    args: &Args,
    connector: &switchyard_connectors::Connector,
    template: &serde_json::Value,
) -> anyhow::Result<Summary> {
    let schedule = load::Schedule {
        rate: args.fill_rate,
        warmup: Duration::ZERO,
        duration: Duration::from_secs_f64(args.events as f64 / args.fill_rate),
        max_in_flight: 4096,
        timeout: Duration::from_secs(10),
    };
    eprintln!("bench: preparing {} signed events", args.events);
    let run_tag = format!("{:05x}", std::process::id() & 0xf_ffff);
    let requests = payload::prepare(&Plan {
        connector,
        secret: &stack.secret,
        count: args.events,
        rate: schedule.rate,
        start_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
        duplicate_share: 0.0,
        run_tag: &run_tag,
        template: Some(template),
    })?;
    let target = Arc::new(Target {
        client: client::new(schedule.max_in_flight),
        uri: format!("{}/v1/webhooks/{CONNECTOR}/{ACCOUNT}", stack.ingress_url)
            .parse()
            .context("the ingress URL")?,
    });
    let recorder = Arc::new(Recorder::new(0..requests.len()));
    eprintln!(
        "bench: filling the raw stream: {} events at {} req/s",
        args.events, args.fill_rate
    );
    let start = Instant::now() + Duration::from_millis(100);
    load::run(target, Arc::new(requests), schedule, start, recorder.clone()).await;
    let summary = recorder.summary();
    if summary.accepted_new == 0 {
        bail!("the ingress accepted none of the events: {:?}", summary.status);
    }
    Ok(summary)
}

/// The table printed without `--json`.
pub fn human(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let o = &r.ours;
    let _ = writeln!(
        out,
        "\nswitchyard-bench normalizer: {} events of {} bytes, mapping {}, {} CPUs\n",
        r.events, r.body_bytes, r.expression, r.cpus
    );
    let _ = writeln!(
        out,
        "  evaluation alone (compiled once, one parsed payload)   CPU µs/eval   wall µs/eval"
    );
    let _ = writeln!(
        out,
        "  {:<54} {:>11.2}   {:>12.2}   ({} evaluations; body parse {:.2} µs extra)",
        o.evaluation.engine,
        o.evaluation.cpu_us_per_eval,
        o.evaluation.wall_us_per_eval,
        o.evaluation.iterations,
        o.parse_us_per_body
    );
    match &r.reference {
        Reference::Measured(js) => {
            let _ = writeln!(
                out,
                "  {:<54} {:>11.2}   {:>12.2}   ({} evaluations)",
                js.engine, js.cpu_us_per_eval, js.wall_us_per_eval, js.iterations
            );
        }
        Reference::Skipped(why) => {
            let _ = writeln!(out, "  jsonata-js: skipped ({why})");
        }
    }
    if let Some(t) = r.times_faster {
        let _ = writeln!(out, "  ours is {t:.1}× faster in CPU");
    }
    let f = &r.fill;
    let statuses: Vec<String> = f.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(
        out,
        "\n  backlog                {} sent, answers {}, {} new",
        f.sent,
        statuses.join(", "),
        f.accepted_new
    );
    out.push_str(&drain::human(&r.drain));
    let _ = writeln!(out, "\n  aims");
    for a in &r.aims {
        let verdict = match a.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let value = a.value.map_or("-".into(), |v| format!("{v:.2}"));
        let _ = writeln!(out, "  {:<50} {:>9} (limit {})  {verdict}", a.what, value, a.limit);
    }
    for n in &r.notes {
        let _ = writeln!(out, "\n  note: {n}");
    }
    out
}
