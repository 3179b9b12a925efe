//! One mapping's evaluation alone, ours against the reference: the expression compiled
//! once and evaluated many times over one parsed payload, in this process through
//! [`switchyard_connectors::mapping`] (the normalizer's own path: the body parsed once
//! straight into the engine's values, [`Input::parse`], then evaluated where the caller
//! runs with the production limits, or on an evaluation thread if the expression needs
//! a deadline, and the result converted back to JSON), then in jsonata-js on Node
//! (`bench/jsonata-js/eval.js`, a child process, over `JSON.parse` of the same payload)
//! over the same two files. Both report CPU time per evaluation; parsing is reported
//! apart.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use switchyard_connectors::mapping::{Input, Limits, Mapping};

use crate::cpu;

/// How long the Node reference may run.
const NODE_WITHIN: Duration = Duration::from_secs(300);

/// CPU per evaluation of one engine.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub engine: String,
    pub iterations: u64,
    /// Process CPU (`utime + stime`, every thread) per evaluation.
    pub cpu_us_per_eval: f64,
    pub wall_us_per_eval: f64,
}

/// Our side of the comparison, plus what parsing the body costs (the normalizer parses
/// each body once before mapping it).
#[derive(Debug, Clone, Serialize)]
pub struct Ours {
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// [`Input::parse`] of the payload file's bytes (what the normalizer does to each
    /// body it maps), per body.
    pub parse_us_per_body: f64,
    /// The CPU clock's resolution relative to the measured CPU time.
    pub cpu_resolution_share: f64,
    /// Busy CPUs of the whole machine while ours was timed: above about 1.0, another
    /// process competed for the CPU.
    pub machine_busy_cores: Option<f64>,
}

/// The reference's result, or why it did not run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    Measured(Evaluation),
    Skipped(String),
}

/// Compiles `expression` once and evaluates it `warmup + iterations` times over
/// `payload`, timing the last `iterations`. Blocking (run it off the async workers).
pub fn ours(expression: &str, payload: &[u8], iterations: u64, warmup: u64) -> anyhow::Result<Ours> {
    let mapping = Mapping::compile(expression).map_err(|e| anyhow::anyhow!("the bench expression: {e}"))?;
    let input = Input::parse(payload).context("the bench payload is not JSON")?;
    let limits = Limits::default();
    for _ in 0..warmup {
        evaluate_once(&mapping, &input, limits)?;
    }
    let hz = cpu::ticks_per_second() as f64;
    let me = std::process::id();
    let ticks = || cpu::process_ticks(me).context("reading this process's CPU time");
    let n = iterations.max(1);

    let (t0, w0, m0) = (ticks()?, Instant::now(), cpu::machine_ticks());
    for _ in 0..n {
        evaluate_once(&mapping, &input, limits)?;
    }
    let (t1, wall, m1) = (ticks()?, w0.elapsed(), cpu::machine_ticks());
    let cpu_secs = t1.saturating_sub(t0) as f64 / hz;

    let p0 = ticks()?;
    for _ in 0..n {
        let input = Input::parse(payload)?;
        std::hint::black_box(input);
    }
    let parse_secs = ticks()?.saturating_sub(p0) as f64 / hz;
    Ok(Ours {
        evaluation: Evaluation {
            engine: "switchyard_connectors::mapping (jsonata-core)".into(),
            iterations: n,
            cpu_us_per_eval: cpu_secs / n as f64 * 1e6,
            wall_us_per_eval: wall.as_secs_f64() / n as f64 * 1e6,
        },
        parse_us_per_body: parse_secs / n as f64 * 1e6,
        cpu_resolution_share: if cpu_secs > 0.0 { 1.0 / hz / cpu_secs } else { 1.0 },
        machine_busy_cores: cpu::busy_cores(m0, m1, wall, hz as u64),
    })
}

fn evaluate_once(mapping: &Mapping, input: &Input<'_>, limits: Limits) -> anyhow::Result<()> {
    match mapping.evaluate_input(input, limits) {
        Ok(Some(v)) => {
            std::hint::black_box(v);
            Ok(())
        }
        Ok(None) => bail!("the bench expression's result is undefined on the bench payload"),
        Err(e) => bail!("the bench expression fails on the bench payload: {e}"),
    }
}

/// Runs `bench/jsonata-js/eval.js` with Node over the same files, if Node and the
/// installed `jsonata` package are there; otherwise says why not.
pub async fn reference(expression: &Path, payload: &Path, iterations: u64, warmup: u64) -> Reference {
    let dir = crate::workspace().join("bench/jsonata-js");
    if !dir.join("node_modules/jsonata/package.json").is_file() {
        return Reference::Skipped(format!(
            "jsonata-js is not installed in {}: run `npm ci --prefix bench/jsonata-js`",
            dir.display()
        ));
    }
    let run = tokio::process::Command::new("node")
        .arg(dir.join("eval.js"))
        .arg(absolute(expression))
        .arg(absolute(payload))
        .arg(iterations.to_string())
        .arg(warmup.to_string())
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(NODE_WITHIN, run).await {
        Err(_) => return Reference::Skipped(format!("node did not finish within {NODE_WITHIN:?}")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Reference::Skipped("node is not installed (jsonata-js runs on Node)".into())
        }
        Ok(Err(e)) => return Reference::Skipped(format!("could not run node: {e}")),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Reference::Skipped(format!("node eval.js failed ({}): {}", out.status, err.trim()));
    }
    match serde_json::from_slice::<NodeLine>(&out.stdout) {
        Ok(line) => Reference::Measured(Evaluation {
            engine: format!("{} on Node {}", line.engine, line.node),
            iterations: line.iterations,
            cpu_us_per_eval: line.cpu_us_per_eval,
            wall_us_per_eval: line.wall_us_per_eval,
        }),
        Err(e) => Reference::Skipped(format!("node eval.js printed something unexpected: {e}")),
    }
}

/// What `eval.js` prints.
#[derive(serde::Deserialize)]
struct NodeLine {
    engine: String,
    node: String,
    iterations: u64,
    cpu_us_per_eval: f64,
    wall_us_per_eval: f64,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
