//! Endpoint content filters: a JSONata boolean expression over the unified event
//! (`data.amount > 10000 and connector = "stripe"`). Compiled once per distinct text
//! and kept; the admin API checks that a filter compiles before saving it.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use switchyard_connectors::mapping::{Limits, Mapping};

/// Distinct filter texts kept compiled.
const KEPT: usize = 10_000;

#[derive(Default)]
pub struct Filters {
    compiled: Mutex<HashMap<String, Result<Mapping, String>>>,
}

/// A filter's verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Skip,
    /// It could not be evaluated (or is not boolean): the reason, for a dead letter.
    Error(String),
}

impl Filters {
    fn get(&self, source: &str) -> Result<Mapping, String> {
        let mut m = self.compiled.lock().expect("filters lock");
        if let Some(c) = m.get(source) {
            return c.clone();
        }
        if m.len() >= KEPT {
            m.clear();
        }
        let c = Mapping::compile(source).map_err(|e| e.to_string());
        m.insert(source.to_string(), c.clone());
        c
    }

    pub fn check(&self, source: &str, event: &Value) -> Verdict {
        let mapping = match self.get(source) {
            Ok(m) => m,
            Err(e) => return Verdict::Error(format!("the filter does not compile: {e}")),
        };
        match mapping.evaluate(event, Limits::default()) {
            Ok(Some(Value::Bool(true))) => Verdict::Pass,
            Ok(Some(Value::Bool(false))) | Ok(None) => Verdict::Skip,
            Ok(Some(other)) => Verdict::Error(format!("the filter must give true or false, it gave {}", kind(&other))),
            Err(e) => Verdict::Error(format!("the filter failed: {e}")),
        }
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

    #[test]
    fn filters_pass_skip_and_fail() {
        let f = Filters::default();
        let ev = json!({"connector": "stripe", "data": {"amount": 20000}});
        assert_eq!(
            f.check(r#"data.amount > 10000 and connector = "stripe""#, &ev),
            Verdict::Pass
        );
        assert_eq!(f.check("data.amount > 50000", &ev), Verdict::Skip);
        assert_eq!(f.check("data.missing", &ev), Verdict::Skip);
        assert!(matches!(f.check("data.amount", &ev), Verdict::Error(_)));
        assert!(matches!(f.check("data.amount >", &ev), Verdict::Error(_)));
    }
}
