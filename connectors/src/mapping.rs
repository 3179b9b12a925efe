//! JSONata, behind one small module: compile, evaluate with limits, convert values.
//! The engine (jsonata-core, pinned) can be replaced here without touching the rest.
//!
//! Mappings are untrusted code: a connector author can write an infinite recursion. Each
//! evaluation has a time and depth limit, and a panic inside the engine is caught and
//! returned as an error, so it dead-letters one event instead of killing a worker.
//!
//! A compiled expression is not `Sync`, so each worker thread keeps its own compiled
//! copy, made on first use and keyed by the mapping's unique id; the text was already
//! checked to compile when the catalog loaded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use jsonata_core::evaluator::EvaluatorOptions;
use jsonata_core::value::JValue;
use jsonata_core::Expression;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A JSONata expression that is known to compile.
#[derive(Debug, Clone)]
pub struct Mapping {
    id: u64,
    source: Arc<str>,
}

/// Limits on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout_ms: u64,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: 200,
            max_depth: 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("JSONata does not compile: {0}")]
    Compile(String),
    #[error("JSONata evaluation failed: {0}")]
    Evaluate(String),
    #[error("the JSONata engine panicked: {0}")]
    Panicked(String),
}

thread_local! {
    static COMPILED: RefCell<HashMap<u64, Expression>> = RefCell::new(HashMap::new());
}

impl Mapping {
    /// Check that `source` compiles.
    pub fn compile(source: &str) -> Result<Self, MappingError> {
        guard(|| {
            Expression::compile(source)
                .map(|_| ())
                .map_err(|e| MappingError::Compile(e.to_string()))
        })?;
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            source: source.into(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluate against `input`. An undefined result is `Ok(None)`.
    pub fn evaluate(
        &self,
        input: &serde_json::Value,
        limits: Limits,
    ) -> Result<Option<serde_json::Value>, MappingError> {
        let data = JValue::from(input.clone());
        let options = EvaluatorOptions {
            timeout_ms: Some(limits.timeout_ms),
            max_stack_depth: Some(limits.max_depth),
            ..EvaluatorOptions::default()
        };
        guard(|| {
            COMPILED.with(|cell| {
                let mut map = cell.borrow_mut();
                if map.len() > 4096 {
                    // Reloaded catalogs leave old ids behind; start afresh now and then.
                    map.clear();
                }
                let expr = match map.entry(self.id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(Expression::compile(&self.source).map_err(|e| MappingError::Compile(e.to_string()))?)
                    }
                };
                let out = expr
                    .evaluate_with_options(&data, options)
                    .map_err(|e| MappingError::Evaluate(e.to_string()))?;
                Ok(match out {
                    JValue::Undefined => None,
                    v => Some(integral_numbers(serde_json::Value::from(&v))),
                })
            })
        })
    }
}

/// JSONata numbers are doubles; a whole number within the exactly-representable range
/// goes back out as an integer (`2000`, not `2000.0`), as the provider sent it.
fn integral_numbers(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < EXACT => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral_numbers).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, integral_numbers(v))).collect()),
        other => other,
    }
}

fn guard<T>(f: impl FnOnce() -> Result<T, MappingError>) -> Result<T, MappingError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // A panic may leave the per-thread cache half-updated: drop it.
            let _ = COMPILED.try_with(|c| c.try_borrow_mut().map(|mut m| m.clear()));
            Err(MappingError::Panicked(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_and_reports() {
        let m = Mapping::compile(r#"{"id": data.object.id, "amount": data.object.amount / 100}"#).unwrap();
        let out = m
            .evaluate(
                &json!({"data": {"object": {"id": "ch_1", "amount": 250}}}),
                Limits::default(),
            )
            .unwrap();
        assert_eq!(out, Some(json!({"id": "ch_1", "amount": 2.5})));
        let whole = Mapping::compile("{\"n\": n, \"big\": 2 * n}").unwrap();
        let out = whole.evaluate(&json!({"n": 2000}), Limits::default()).unwrap().unwrap();
        assert_eq!(out.to_string(), r#"{"n":2000,"big":4000}"#);
        assert_eq!(
            Mapping::compile("nothing")
                .unwrap()
                .evaluate(&json!({}), Limits::default())
                .unwrap(),
            None
        );
        assert!(matches!(Mapping::compile("{"), Err(MappingError::Compile(_))));
    }

    #[test]
    fn runaway_recursion_is_stopped() {
        let m = Mapping::compile("($f := function($x) { $f($x + 1) }; $f(0))").unwrap();
        let r = m.evaluate(
            &json!({}),
            Limits {
                timeout_ms: 200,
                max_depth: 200,
            },
        );
        assert!(r.is_err(), "{r:?}");
    }
}
