//! JSONata, behind one small module: compile, evaluate with limits, convert values.
//! The engine (jsonata-core, pinned) can be replaced here without touching the rest;
//! [`docs/jsonata.md`](../../docs/jsonata.md) publishes its conformance and the limits.
//!
//! Mappings are untrusted code: a connector author can write an infinite recursion. Every
//! evaluation is bounded:
//! - time and depth ([`Limits`]): the engine checks both between its steps;
//! - sizes ([`Bounds`]): the length of any sequence it builds, and the nesting and size
//!   of the input and the result ([`convert`]);
//! - a deadline, for the expressions that need one. The engine checks its limits between
//!   steps, and most of its steps cost about what their inputs cost to build, so an
//!   expression made of those alone stops near its time limit and is evaluated on the
//!   calling thread (no hand-over, no copy of the input). An expression that calls one
//!   of the builtins whose single step can run far longer than its inputs
//!   ([`UNBOUNDED_STEPS`]: `$pad` to a billion characters, `$replace`, `$eval`…) is
//!   evaluated on a thread of its own ([`runner`]), and the caller stops waiting at twice
//!   the time limit (plus 100 ms) whatever that step does;
//! - a panic inside the engine is caught and returned as an error.
//!
//! The engine's recursion cannot overflow the calling thread's stack: it moves to a
//! fresh segment on the heap when the stack runs low, and our own walks over values stop
//! at [`MAX_NESTING`].
//!
//! Each of these ends as a [`MappingError`], so one event is dead-lettered with the
//! reason and the worker carries on.
//!
//! A compiled expression is not `Sync`, so each thread that evaluates keeps its own
//! compiled copy, made on first use and keyed by the mapping's unique id; the text was
//! already checked to compile when the catalog loaded.

mod convert;
mod runner;

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jsonata_core::evaluator::{Context, Evaluator, EvaluatorOptions};
use jsonata_core::value::JValue;
use jsonata_core::Expression;
use serde_json::{Map, Value};

pub use convert::MAX_NESTING;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Builtins one call of which may run far longer than building its arguments took, so the
/// engine's time limit, checked between steps, does not bound it: padding and replacing
/// build strings of any length from short ones, splitting and matching make an item per
/// character, sorting and deduplicating are worse than linear, `$eval` runs any text.
/// An expression that names one runs on a thread of its own, under a deadline.
pub const UNBOUNDED_STEPS: &[&str] = &["pad", "replace", "split", "match", "sort", "distinct", "eval"];

/// A JSONata expression that is known to compile.
#[derive(Debug, Clone)]
pub struct Mapping {
    id: u64,
    source: Arc<str>,
    /// Names none of [`UNBOUNDED_STEPS`]: evaluated on the calling thread.
    steps_bounded: bool,
}

/// One input made ready for evaluation: converted to the engine's values once, on first
/// use, however many expressions then read it (a mapping's `when` and its `data`), or
/// parsed straight into them ([`Input::parse`]). Not `Send`, like the engine's values.
pub struct Input<'a> {
    /// The input as JSON, when the caller has it.
    json: Option<&'a Value>,
    engine: OnceCell<Result<JValue, MappingError>>,
}

impl<'a> Input<'a> {
    /// Borrows `json`.
    pub fn new(json: &'a Value) -> Self {
        Self {
            json: Some(json),
            engine: OnceCell::new(),
        }
    }

    /// The engine's copy, or why the input cannot be evaluated.
    fn engine(&self) -> Result<&JValue, MappingError> {
        self.engine
            .get_or_init(|| convert::to_engine(self.json.unwrap_or(&Value::Null), "input"))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The input as JSON, borrowed or rebuilt from the engine's copy.
    fn json(&self) -> Result<std::borrow::Cow<'_, Value>, MappingError> {
        match self.json {
            Some(v) => Ok(std::borrow::Cow::Borrowed(v)),
            None => convert::to_json(self.engine()?, usize::MAX).map(std::borrow::Cow::Owned),
        }
    }
}

impl Input<'static> {
    /// JSON text parsed straight into the engine's values, with no `serde_json::Value`
    /// between: the same parser, so it accepts what `serde_json::from_slice` accepts, and
    /// holds what [`Input::new`] of that value would (integers past 2^53 as their digits). An input nested deeper than
    /// [`MAX_NESTING`] parses, and fails to evaluate, as it would there.
    pub fn parse(text: &[u8]) -> Result<Self, serde_json::Error> {
        let value = convert::parse(text)?;
        let engine = if convert::engine_nesting_within(&value, MAX_NESTING) {
            Ok(value)
        } else {
            Err(MappingError::TooDeep("input"))
        };
        Ok(Self {
            json: None,
            engine: OnceCell::from(engine),
        })
    }
}

/// Limits on one evaluation (configured: `normalizer.mapping_*`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The engine stops at its first step after this many milliseconds (D1012).
    pub timeout_ms: u64,
    /// Deepest evaluation stack, in the engine's levels (D1011); a non-tail recursive
    /// call costs about three.
    pub max_depth: usize,
    /// Largest provider event, in bytes as received, that a mapping is evaluated on.
    /// Checked by [`crate::apply`] before any evaluation: what a mapping costs grows with
    /// its input, and the catalog's mappings are measured up to this size
    /// (`connectors/tests/mapping_cost.rs`).
    pub max_input_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: 200,
            max_depth: 500,
            max_input_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// How long a caller waits for an evaluation: twice the time limit, plus 100 ms.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.saturating_mul(2).saturating_add(100))
    }
}

/// Size bounds on one evaluation. Fixed in production ([`Bounds::default`]); the
/// conformance suite lifts them for its cases about ten-million-element ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Longest sequence a step may build (a range, a map, a filter…; D2015).
    pub max_sequence: usize,
    /// Largest result, in bytes of its JSON (about): it must fit in one message.
    pub max_result_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_sequence: 1_000_000,
            max_result_bytes: 1 << 20,
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
    #[error("the {0} is nested deeper than {MAX_NESTING} levels")]
    TooDeep(&'static str),
    #[error("the result is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the evaluation was still running after {0} ms; it was abandoned")]
    Abandoned(u128),
    #[error("{0} abandoned evaluations are still running; no more are started until they end")]
    Busy(usize),
}

impl MappingError {
    /// Whether the evaluation was stopped by its time limit (`D1012`, or abandoned by
    /// the caller): unlike every other failure, a busy or starved CPU can cause it, so
    /// the same event may well map on another try.
    pub fn is_time_limit(&self) -> bool {
        matches!(self, Self::Abandoned(_)) || self.code() == Some("D1012")
    }

    /// The JSONata error code (`T2002`, `D1012`, `S0201`…) when the engine gave one.
    pub fn code(&self) -> Option<&str> {
        let msg = match self {
            Self::Compile(m) | Self::Evaluate(m) => m.as_str(),
            _ => return None,
        };
        // The engine puts the code first, or after prefixes such as "Type error: ".
        std::iter::once(0)
            .chain(msg.match_indices(": ").map(|(i, _)| i + 2))
            .map(|i| &msg[i..])
            .find(|rest| {
                let b = rest.as_bytes();
                b.len() >= 6 && b[0].is_ascii_uppercase() && b[1..5].iter().all(u8::is_ascii_digit) && b[5] == b':'
            })
            .map(|rest| &rest[..5])
    }
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
            steps_bounded: !names_any(source, UNBOUNDED_STEPS),
        })
    }

    /// Whether the expression is evaluated on the calling thread (it names none of
    /// [`UNBOUNDED_STEPS`]) rather than on an evaluation thread under a deadline.
    pub fn runs_on_caller(&self) -> bool {
        self.steps_bounded
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluate against `input`. An undefined result is `Ok(None)`.
    pub fn evaluate(&self, input: &Value, limits: Limits) -> Result<Option<Value>, MappingError> {
        self.evaluate_input(&Input::new(input), limits)
    }

    /// [`Mapping::evaluate`] against an input that other expressions may read too: it is
    /// converted for the engine once.
    pub fn evaluate_input(&self, input: &Input<'_>, limits: Limits) -> Result<Option<Value>, MappingError> {
        if self.steps_bounded {
            let data = input.engine()?;
            return guard(|| self.evaluate_here(data, &Map::new(), limits, Bounds::default()));
        }
        self.evaluate_with(Some(input.json()?.as_ref()), &Map::new(), limits, Bounds::default())
    }

    /// Evaluate against `input` (`None` is JSONata's undefined input) with `bindings`
    /// as variables (`{"x": 1}` is `$x`). With no bindings and default bounds this is
    /// exactly [`Mapping::evaluate`]; with bindings the engine's tree-walking evaluator
    /// runs, the one of its two that accepts variables.
    pub fn evaluate_with(
        &self,
        input: Option<&Value>,
        bindings: &Map<String, Value>,
        limits: Limits,
        bounds: Bounds,
    ) -> Result<Option<Value>, MappingError> {
        if self.steps_bounded {
            let data = match input {
                Some(v) => convert::to_engine(v, "input")?,
                None => JValue::Undefined,
            };
            return guard(|| self.evaluate_here(&data, bindings, limits, bounds));
        }
        if input.is_some_and(|v| !convert::nesting_within(v, MAX_NESTING)) {
            return Err(MappingError::TooDeep("input"));
        }
        if !bindings.values().all(|v| convert::nesting_within(v, MAX_NESTING)) {
            return Err(MappingError::TooDeep("binding"));
        }
        let job = (self.clone(), input.cloned(), bindings.clone());
        runner::run(limits.deadline(), move || {
            let (mapping, input, bindings) = job;
            guard(|| {
                let data = match &input {
                    Some(v) => convert::to_engine(v, "input")?,
                    None => JValue::Undefined,
                };
                mapping.evaluate_here(&data, &bindings, limits, bounds)
            })
        })
    }

    /// The evaluation itself, on the calling thread.
    fn evaluate_here(
        &self,
        data: &JValue,
        bindings: &Map<String, Value>,
        limits: Limits,
        bounds: Bounds,
    ) -> Result<Option<Value>, MappingError> {
        let options = EvaluatorOptions {
            timeout_ms: Some(limits.timeout_ms),
            max_stack_depth: Some(limits.max_depth),
            max_sequence_length: Some(bounds.max_sequence),
            ..EvaluatorOptions::default()
        };
        let out = COMPILED.with(|cell| {
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
            if bindings.is_empty() {
                expr.evaluate_with_options(data, options)
            } else {
                let mut context = Context::new();
                for (name, value) in bindings {
                    context.bind(name.clone(), convert::to_engine(value, "binding")?);
                }
                Evaluator::with_options(context, options).evaluate(expr.ast(), data)
            }
            .map_err(|e| MappingError::Evaluate(e.to_string()))
        })?;
        match out {
            JValue::Undefined => Ok(None),
            v => convert::to_json(&v, bounds.max_result_bytes).map(Some),
        }
    }
}

/// Whether `source` names any of `builtins` as a variable (`$pad`, however called or
/// passed). Reads the text, strings and comments included, so it may say yes for an
/// expression that only mentions the name; never no for one that uses it.
fn names_any(source: &str, builtins: &[&str]) -> bool {
    source.split('$').skip(1).any(|rest| {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        builtins.contains(&&rest[..end])
    })
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

    /// A range whose size overflows an `i64` (the engine subtracts the ends) is an
    /// error, not a panic: the dev profile builds jsonata-core without overflow checks,
    /// as release does (Cargo.toml), so tests see what ships.
    #[test]
    fn a_range_too_wide_for_an_integer_is_an_error_not_a_panic() {
        let m = Mapping::compile("[a..b]").unwrap();
        let r = m.evaluate(&json!({"a": -9.0e18, "b": 9.0e18}), Limits::default());
        assert!(r.is_err() && !matches!(r, Err(MappingError::Panicked(_))), "{r:?}");
    }

    #[test]
    fn runaway_recursion_is_stopped() {
        let m = Mapping::compile("($f := function($x) { $f($x + 1) }; $f(0))").unwrap();
        let r = m.evaluate(
            &json!({}),
            Limits {
                max_depth: 200,
                ..Limits::default()
            },
        );
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn bindings_undefined_input_and_codes() {
        let m = Mapping::compile("$x + $count($)").unwrap();
        let bindings = json!({"x": 40}).as_object().cloned().unwrap();
        let r = m.evaluate_with(Some(&json!([1, 2])), &bindings, Limits::default(), Bounds::default());
        assert_eq!(r, Ok(Some(json!(42))));
        let r = m.evaluate_with(None, &bindings, Limits::default(), Bounds::default());
        assert_eq!(r, Ok(Some(json!(40))));
        let err = Mapping::compile("1 + 'a'")
            .unwrap()
            .evaluate(&json!({}), Limits::default());
        assert_eq!(err.unwrap_err().code(), Some("T2002"));
        assert_eq!(Mapping::compile("(").unwrap_err().code(), Some("S0207"));
    }

    #[test]
    fn only_expressions_naming_an_unbounded_builtin_leave_the_calling_thread() {
        let on_caller = |src: &str| Mapping::compile(src).unwrap().runs_on_caller();
        assert!(on_caller(
            r#"{"id": data.object.id, "at": $fromMillis(created * 1000)}"#
        ));
        assert!(on_caller("($padding := 1; $padding)"));
        assert!(!on_caller(r#"$pad("", 200000000)"#));
        assert!(!on_caller(r#"($f := $replace; $f("a", "a", "b"))"#));
        assert!(!on_caller(r#"$map(["a"], $eval)"#));
        // Read from the text: a mention in a string counts too (never the reverse).
        assert!(!on_caller(r#""$split""#));
    }

    #[test]
    fn parsed_input_evaluates_as_the_json_value_does() {
        let text = br#"{"n": 2000, "half": 2.5, "list": [1, "a", null, true, [2]], "o": {"k": "v"}}"#;
        let value: Value = serde_json::from_slice(text).unwrap();
        for src in ["$", "$keys(o)", "list[1]", "$string($)", r#"$replace(o.k, "v", "w")"#] {
            let m = Mapping::compile(src).unwrap();
            let parsed = m.evaluate_input(&Input::parse(text).unwrap(), Limits::default());
            assert_eq!(parsed, m.evaluate(&value, Limits::default()), "{src}");
        }
        let deep = format!("{}1{}", "[".repeat(MAX_NESTING + 1), "]".repeat(MAX_NESTING + 1));
        let input = Input::parse(deep.as_bytes()).unwrap();
        for src in ["$", "$pad(\"\", 1)"] {
            let r = Mapping::compile(src).unwrap().evaluate_input(&input, Limits::default());
            assert_eq!(r, Err(MappingError::TooDeep("input")), "{src}");
        }
        assert!(Input::parse(b"{").is_err());
    }

    #[test]
    fn integers_past_two_to_the_53_keep_every_digit() {
        let text = br#"{"id": 820982911946154508, "amount": 2000, "ts": 9007199254740993}"#;
        let value: Value = serde_json::from_slice(text).unwrap();
        let want = json!({
            "s": "820982911946154508", "direct": "820982911946154508", "ts": "9007199254740993",
            "amount": 2000, "joined": "id 820982911946154508"
        });
        let src = r#"{"s": $string(id), "direct": id, "ts": ts, "amount": amount, "joined": "id " & id}"#;
        // On the calling thread, from parsed text and from a value; on an evaluation thread.
        let m = Mapping::compile(src).unwrap();
        assert_eq!(
            m.evaluate_input(&Input::parse(text).unwrap(), Limits::default()),
            Ok(Some(want.clone()))
        );
        assert_eq!(m.evaluate(&value, Limits::default()), Ok(Some(want.clone())));
        let on_thread = Mapping::compile(&format!("($f := $pad; {src})")).unwrap();
        assert_eq!(on_thread.evaluate(&value, Limits::default()), Ok(Some(want)));
    }

    #[test]
    fn sequences_are_bounded() {
        let bounds = Bounds {
            max_sequence: 1000,
            ..Bounds::default()
        };
        let m = Mapping::compile("[1..1001]").unwrap();
        let r = m.evaluate_with(None, &Map::new(), Limits::default(), bounds);
        assert_eq!(r.unwrap_err().code(), Some("D2015"));
        let r = Mapping::compile("[1..1000]")
            .unwrap()
            .evaluate_with(None, &Map::new(), Limits::default(), bounds);
        assert_eq!(r.unwrap().unwrap().as_array().map(Vec::len), Some(1000));
    }
}
