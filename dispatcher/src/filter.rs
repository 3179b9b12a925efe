//! Endpoint content filters: a JSONata boolean expression over the unified event
//! (`data.amount > 10000 and connector = "stripe"`). Compiled once per distinct text
//! and kept; the admin API checks that a filter compiles before saving it.
//!
//! # Isolation
//! Evaluations never run on the dispatcher's runtime thread (one by default): a slow
//! filter there would hold up every tenant's deliveries. Each runs on a blocking
//! thread, at most `dispatcher.filter_threads` at once process-wide and at most
//! `dispatcher.filter_per_tenant` at once per tenant, so one tenant's slow filters queue
//! behind each other and never take the whole pool: the others keep the difference. The caller awaits
//! the result for at most [`Limits::deadline`]; an evaluation still running then is
//! abandoned (it keeps its tenant's permit until the engine's own time limit stops it)
//! and is that filter's `filter_error`. When the engine refuses to start an evaluation
//! because too many abandoned ones (anyone's) are still running
//! ([`MappingError::Busy`]), that is no fault of this event's: it waits and tries again,
//! and after [`BUSY_WAIT`] is handed back ([`Verdict::Later`]), never failed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use switchyard_connectors::mapping::{Limits, Mapping, MappingError};
use switchyard_core::offload::{Offload, OffloadError};

/// Distinct filter texts kept compiled.
const KEPT: usize = 10_000;
/// Filter evaluations running at once in the process, by default
/// (`dispatcher.filter_threads`).
pub const POOL: usize = 4;
/// Filter evaluations running at once for one tenant, by default
/// (`dispatcher.filter_per_tenant`).
pub const PER_TENANT: usize = 2;
/// How long an evaluation refused as [`MappingError::Busy`] is retried before the event
/// is handed back.
pub const BUSY_WAIT: Duration = Duration::from_secs(2);
pub struct Filters {
    /// Filter text → its compiled form, or why it does not compile (kept too: a filter
    /// that does not compile is not compiled again for every event).
    compiled: Mutex<HashMap<String, Result<Mapping, FilterError>>>,
    /// The blocking threads evaluating filters, and each tenant's share of them.
    offload: Offload,
    limits: Limits,
}

impl Default for Filters {
    fn default() -> Self {
        Self::new(POOL, PER_TENANT)
    }
}

/// Why a filter could not judge an event; the delivery's dead-letter detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter does not compile: {0}")]
    Compile(MappingError),
    #[error("the filter failed: {0}")]
    Failed(MappingError),
    #[error("the filter's evaluation panicked")]
    Panicked,
    #[error("the filter was still running after {0:?}; it was abandoned")]
    Abandoned(Duration),
    #[error("the filter must give true or false, it gave {0}")]
    NotBoolean(&'static str),
}

/// A filter's verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Skip,
    /// It could not be evaluated (or is not boolean): the reason, for a dead letter.
    Error(FilterError),
    /// It could not be evaluated now through no fault of its own (the engine is busy
    /// with other evaluations): the event should come back later.
    Later,
}

impl Filters {
    /// At most `threads` evaluations at once, `per_tenant` of them for one tenant.
    pub fn new(threads: usize, per_tenant: usize) -> Self {
        Self {
            compiled: Mutex::default(),
            offload: Offload::new(threads, per_tenant),
            limits: Limits::default(),
        }
    }

    fn get(&self, source: &str) -> Result<Mapping, FilterError> {
        let mut m = self.compiled.lock().expect("filters lock");
        if let Some(c) = m.get(source) {
            return c.clone();
        }
        if m.len() >= KEPT {
            m.clear();
        }
        let c = Mapping::compile(source).map_err(FilterError::Compile);
        m.insert(source.to_string(), c.clone());
        c
    }

    /// Evaluate `source` over `event` for `tenant`, off the runtime thread.
    pub async fn check(&self, tenant: &str, source: &str, event: Arc<Value>) -> Verdict {
        let mapping = match self.get(source) {
            Ok(m) => m,
            Err(e) => return Verdict::Error(e),
        };
        let give_up = tokio::time::Instant::now() + BUSY_WAIT;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.evaluate(tenant, &mapping, &event).await {
                Err(Evaluation::Busy) if tokio::time::Instant::now() + pause < give_up => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(Evaluation::Busy) => return Verdict::Later,
                Err(Evaluation::Failed(why)) => return Verdict::Error(why),
                Ok(v) => return judge(v),
            }
        }
    }

    async fn evaluate(&self, tenant: &str, mapping: &Mapping, event: &Arc<Value>) -> Result<Option<Value>, Evaluation> {
        let (mapping, event, limits) = (mapping.clone(), event.clone(), self.limits);
        let ran = self
            .offload
            .run(tenant, limits.deadline(), move || mapping.evaluate(&event, limits))
            .await;
        match ran {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(MappingError::Busy(_))) => Err(Evaluation::Busy),
            Ok(Err(e)) => Err(Evaluation::Failed(FilterError::Failed(e))),
            Err(OffloadError::Panicked) => Err(Evaluation::Failed(FilterError::Panicked)),
            Err(OffloadError::Abandoned(after)) => Err(Evaluation::Failed(FilterError::Abandoned(after))),
        }
    }
}

enum Evaluation {
    Busy,
    Failed(FilterError),
}

fn judge(v: Option<Value>) -> Verdict {
    match v {
        Some(Value::Bool(true)) => Verdict::Pass,
        Some(Value::Bool(false)) | None => Verdict::Skip,
        Some(other) => Verdict::Error(FilterError::NotBoolean(kind(&other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn filters_pass_skip_and_fail() {
        let f = Filters::default();
        let ev = Arc::new(json!({"connector": "stripe", "data": {"amount": 20000}}));
        let check = |src: &'static str| f.check("t1", src, ev.clone());
        assert_eq!(
            check(r#"data.amount > 10000 and connector = "stripe""#).await,
            Verdict::Pass
        );
        assert_eq!(check("data.amount > 50000").await, Verdict::Skip);
        assert_eq!(check("data.missing").await, Verdict::Skip);
        assert_eq!(
            check("data.amount").await,
            Verdict::Error(FilterError::NotBoolean("a number"))
        );
        assert!(matches!(
            check("data.amount >").await,
            Verdict::Error(FilterError::Compile(_))
        ));
    }

    /// One tenant's slow filters take at most its budget: with the pool's other
    /// threads, another tenant's filter is judged at once, on a runtime thread that
    /// never ran an evaluation.
    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_tenant_takes_only_its_budget() {
        let f = Arc::new(Filters::default());
        let ev = Arc::new(json!({"n": 1}));
        // About 40 ms an evaluation here, well within the engine's 200 ms time limit.
        let slow = "$count([1..120000][$ % 7 = 0]) >= 0";
        let mut hogs = Vec::new();
        for _ in 0..(PER_TENANT * 4) {
            let (f, ev) = (f.clone(), ev.clone());
            hogs.push(tokio::spawn(async move { f.check("slow", slow, ev).await }));
        }
        tokio::task::yield_now().await;
        let started = std::time::Instant::now();
        assert_eq!(f.check("quick", "n = 1", ev.clone()).await, Verdict::Pass);
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
        assert!(
            hogs.iter().any(|h| !h.is_finished()),
            "the slow tenant is still being evaluated"
        );
        for h in hogs {
            assert_eq!(h.await.unwrap(), Verdict::Pass, "slow, not failed");
        }
    }
}
