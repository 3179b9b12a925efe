//! The official JSONata test suite, run through our mapping module's public API
//! (`Mapping::compile` / `Mapping::evaluate_with`), so it measures the engine exactly as
//! the normalizer uses it, value conversion included.
//!
//! The suite is not part of this repository. It is found at `$SWITCHYARD_JSONATA_SUITE`,
//! else at `../shared/jsonata-test-suite` beside the checkout; when it is absent the test
//! says so and passes, unless the suite was asked for (see [`suite_dir`]): then it fails. To see the summary and every failure:
//!
//! ```sh
//! cargo test -p switchyard-connectors --test jsonata_conformance -- --nocapture
//! ```
//!
//! How a case passes:
//! - `result`: the value is equal as JSON; numbers are compared as doubles with a
//!   relative tolerance of 1e-12 (libm differences), objects regardless of key order,
//!   arrays in order unless the case says `unordered`.
//! - `undefinedResult`: the evaluation returns undefined.
//! - `code` (or `error.code`): compiling or evaluating fails. Any error passes; whether
//!   the engine named the same code is counted and printed separately, not required
//!   (U1001, the suite harness's code for its own time and depth limits, matches the
//!   engine's D1011 and D1012).
//! - `timelimit` / `depth` become the evaluation's limits; other cases run with
//!   [`DEFAULT_LIMITS`].
//! - Each case runs with the production size bounds (`Bounds::default()`); a case that
//!   fails only because of them is run again with [`LIFTED`] bounds and counted apart:
//!   the suite has cases about ten-million-element ranges, past what a mapping may build.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value};
use switchyard_connectors::mapping::{Bounds, Limits, Mapping, MappingError};

/// Limits for cases that set none: no practical time limit, and the engine's own
/// maximum evaluation depth (a larger value changes nothing).
const DEFAULT_LIMITS: Limits = Limits {
    timeout_ms: 60_000,
    max_depth: 30_000,
    max_input_bytes: usize::MAX,
};

/// Size bounds for the cases that go past the production ones: the engine's own range
/// limit (ten million), and no practical limit on the result.
const LIFTED: Bounds = Bounds {
    max_sequence: 10_000_000,
    max_result_bytes: 1 << 30,
};

/// The measured floor: fewer passing cases than this is a regression.
const MIN_PASSED: usize = 1684;

struct Case {
    name: String,
    expr: String,
    input: Option<Value>,
    bindings: Map<String, Value>,
    expect: Expect,
    limits: Limits,
    unordered: bool,
}

#[derive(Debug)]
enum Expect {
    Value(Value),
    Undefined,
    Error(String),
}

enum Outcome {
    Pass,
    /// Passed once the production size bounds were lifted.
    PassLifted,
    /// An error was expected and returned, with another code (or none).
    PassOtherCode(String),
    Fail(String),
}

#[test]
fn jsonata_test_suite() {
    let Some(suite) = suite_dir() else {
        return;
    };
    let (cases, skipped) = load(&suite);
    let total = cases.len() + skipped.len();
    let started = Instant::now();
    let (mut passed, mut failed, mut other_code, mut lifted) = (0, Vec::new(), Vec::new(), Vec::new());
    for case in &cases {
        match run(case) {
            Outcome::Pass => passed += 1,
            Outcome::PassLifted => {
                passed += 1;
                lifted.push(case.name.clone());
            }
            Outcome::PassOtherCode(note) => {
                passed += 1;
                other_code.push(format!("{}: {note}", case.name));
            }
            Outcome::Fail(why) => failed.push(format!("{}: {}\n    {why}", case.name, case.expr)),
        }
    }
    println!(
        "JSONata test suite ({}): {passed} passed, {} failed, {} skipped in {:.1}s",
        suite.display(),
        failed.len(),
        skipped.len(),
        started.elapsed().as_secs_f64()
    );
    for s in &skipped {
        println!("skipped {s}");
    }
    println!(
        "{} passing cases need more than the production size bounds: {}",
        lifted.len(),
        lifted.join(", ")
    );
    println!(
        "{} of the passing error cases returned another error code than expected:",
        other_code.len()
    );
    for o in &other_code {
        println!("  {o}");
    }
    for f in &failed {
        println!("FAILED {f}");
    }
    assert_eq!(passed + failed.len() + skipped.len(), total);
    assert!(
        passed >= MIN_PASSED,
        "{passed} cases passed, fewer than the {MIN_PASSED} measured before"
    );
}

/// The suite's folder, or `None` (with a message) when it is not there and need not be.
///
/// Where the suite was asked for, its absence fails the test instead: when
/// `SWITCHYARD_JSONATA_SUITE` names a folder, or when `SWITCHYARD_REQUIRE_JSONATA_SUITE`
/// is set (`.ci/run` sets it whenever the suite is on the machine, so a moved or
/// misnamed suite cannot turn CI's conformance run into a silent skip).
fn suite_dir() -> Option<PathBuf> {
    let named = std::env::var_os("SWITCHYARD_JSONATA_SUITE");
    let required = named.is_some() || std::env::var_os("SWITCHYARD_REQUIRE_JSONATA_SUITE").is_some();
    let dir = match named {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/jsonata-test-suite"),
    };
    if dir.join("groups").is_dir() {
        return Some(dir.canonicalize().unwrap_or(dir));
    }
    let missing = format!(
        "the JSONata test suite is not at {} (no groups/ folder); set SWITCHYARD_JSONATA_SUITE to the suite's folder",
        dir.display()
    );
    assert!(!required, "{missing}");
    println!("SKIPPED: {missing}");
    None
}

fn run(case: &Case) -> Outcome {
    let evaluate = |bounds| {
        Mapping::compile(&case.expr)
            .and_then(|m| m.evaluate_with(case.input.as_ref(), &case.bindings, case.limits, bounds))
    };
    let result = evaluate(Bounds::default());
    let bounded =
        matches!(&result, Err(MappingError::TooLarge(_))) || result.as_ref().is_err_and(|e| e.code() == Some("D2015"));
    if bounded {
        return match judge(case, evaluate(LIFTED)) {
            Outcome::Pass => Outcome::PassLifted,
            other => other,
        };
    }
    judge(case, result)
}

fn judge(case: &Case, result: Result<Option<Value>, MappingError>) -> Outcome {
    match (&case.expect, result) {
        (Expect::Error(code), Err(e)) if same_code(code, e.code()) => Outcome::Pass,
        (Expect::Error(code), Err(e)) => Outcome::PassOtherCode(format!("expected {code}, got {e}")),
        (Expect::Error(code), Ok(v)) => Outcome::Fail(format!("expected error {code}, got {v:?}")),
        (Expect::Undefined, Ok(None)) => Outcome::Pass,
        (Expect::Value(want), Ok(Some(got))) if same(&got, want, case.unordered) => Outcome::Pass,
        (want, Ok(got)) => Outcome::Fail(format!(
            "expected {want:?}, got {}",
            got.map_or("undefined".into(), |v| v.to_string())
        )),
        (want, Err(e)) => Outcome::Fail(format!("expected {want:?}, got error {e}")),
    }
}

/// Whether the engine's code is the one expected. The suite's own JavaScript harness
/// enforces `timelimit` and `depth` itself and reports both as U1001; the engine
/// enforces them and says which: D1011 (depth) or D1012 (time).
fn same_code(want: &str, got: Option<&str>) -> bool {
    match (want, got) {
        ("U1001", Some("D1011" | "D1012")) => true,
        (want, got) => got == Some(want),
    }
}

/// JSON equality with numbers as doubles within a relative tolerance.
fn same(got: &Value, want: &Value, unordered: bool) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
        }
        (Value::Array(a), Value::Array(b)) if unordered => {
            let mut left: Vec<&Value> = a.iter().collect();
            a.len() == b.len()
                && b.iter().all(|w| match left.iter().position(|g| same(g, w, false)) {
                    Some(i) => {
                        left.swap_remove(i);
                        true
                    }
                    None => false,
                })
        }
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(g, w)| same(g, w, false)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && b.iter().all(|(k, w)| a.get(k).is_some_and(|g| same(g, w, false)))
        }
        _ => got == want,
    }
}

/// Every case of every group, in a stable order, and the files that cannot be read as
/// skips with their reason.
fn load(suite: &Path) -> (Vec<Case>, Vec<String>) {
    let mut datasets: HashMap<String, Value> = HashMap::new();
    let (mut cases, mut unreadable) = (Vec::new(), Vec::new());
    for group in sorted_entries(&suite.join("groups")) {
        for file in sorted_entries(&group)
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let text = std::fs::read_to_string(&file).unwrap();
            let doc: Value = match serde_json::from_str(&text) {
                Ok(doc) => doc,
                Err(e) => {
                    // A lone UTF-16 surrogate (`"\uD800"`) is valid JSON text for
                    // JavaScript but has no Rust string, so neither the case nor a webhook
                    // body holding one can reach the engine.
                    let name = file.strip_prefix(suite.join("groups")).unwrap().display();
                    unreadable.push(format!("{name}: serde_json cannot read the case ({e})"));
                    continue;
                }
            };
            let many = doc.is_array();
            let items = match doc {
                Value::Array(items) => items,
                one => vec![one],
            };
            for (i, raw) in items.iter().enumerate() {
                let mut name = file.strip_prefix(suite.join("groups")).unwrap().display().to_string();
                if many {
                    name.push_str(&format!("#{i}"));
                }
                cases.push(case(name, raw, &group, suite, &mut datasets));
            }
        }
    }
    (cases, unreadable)
}

fn case(name: String, raw: &Value, group: &Path, suite: &Path, datasets: &mut HashMap<String, Value>) -> Case {
    let expr = match (raw.get("expr"), raw.get("expr-file")) {
        (Some(Value::String(e)), _) => e.clone(),
        (_, Some(Value::String(f))) => std::fs::read_to_string(group.join(f)).unwrap(),
        _ => panic!("{name}: no expr"),
    };
    let input = match (raw.get("data"), raw.get("dataset")) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(Value::String(set))) => Some(
            datasets
                .entry(set.clone())
                .or_insert_with(|| read_json(&suite.join("datasets").join(format!("{set}.json"))))
                .clone(),
        ),
        _ => None,
    };
    let expect = if let Some(code) = raw.get("code").or_else(|| raw.pointer("/error/code")) {
        Expect::Error(code.as_str().unwrap_or_default().to_string())
    } else if let Some(v) = raw.get("result") {
        Expect::Value(v.clone())
    } else if raw.get("undefinedResult") == Some(&Value::Bool(true)) {
        Expect::Undefined
    } else {
        panic!("{name}: no expected outcome")
    };
    let limits = Limits {
        timeout_ms: raw["timelimit"].as_u64().unwrap_or(DEFAULT_LIMITS.timeout_ms),
        max_depth: raw["depth"].as_u64().map_or(DEFAULT_LIMITS.max_depth, |d| d as usize),
        ..DEFAULT_LIMITS
    };
    Case {
        name,
        expr,
        input,
        bindings: raw["bindings"].as_object().cloned().unwrap_or_default(),
        expect,
        limits,
        unordered: raw["unordered"] == Value::Bool(true),
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
