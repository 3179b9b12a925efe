//! Values across the engine's boundary: how deep an input may nest, and the engine's
//! result as JSON within a nesting and size budget.

use std::rc::Rc;

use jsonata_core::value::{JArray, JMap, JValue};
use serde_json::Value;

use super::MappingError;

/// Deepest nesting of arrays and objects accepted as input or produced as a result.
/// serde_json refuses to parse documents nested more than 128 deep, and a result goes
/// out inside an envelope, so anything deeper could not be read back by the next stage;
/// refusing it here also keeps every recursive walk over a value (conversion,
/// serialization, drop) far from the end of a thread's stack.
pub const MAX_NESTING: usize = 100;

/// Whether `v` nests arrays and objects at most `max` deep. Walks with its own stack,
/// so a value of any depth is measured without recursion.
pub(super) fn nesting_within(v: &Value, max: usize) -> bool {
    let mut pending = vec![(v, 0usize)];
    while let Some((v, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth == max {
            return false;
        }
        pending.extend(children.map(|c| (c, depth + 1)));
    }
    true
}

/// [`nesting_within`] for the engine's values (of JSON input: functions hold nothing).
pub(super) fn engine_nesting_within(v: &JValue, max: usize) -> bool {
    let mut pending = vec![(v, 0usize)];
    while let Some((v, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &JValue>> = match v {
            JValue::Array(items) => Box::new(items.iter()),
            JValue::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth == max {
            return false;
        }
        pending.extend(children.map(|c| (c, depth + 1)));
    }
    true
}

/// `v` as the engine's value, refusing input nested deeper than [`MAX_NESTING`]: one
/// walk checks and converts, borrowing `v` (nothing of it is cloned but its strings).
pub(super) fn to_engine(v: &Value, what: &'static str) -> Result<JValue, MappingError> {
    to_engine_at(v, 0, what)
}

fn to_engine_at(v: &Value, depth: usize, what: &'static str) -> Result<JValue, MappingError> {
    let nested = || {
        if depth == MAX_NESTING {
            Err(MappingError::TooDeep(what))
        } else {
            Ok(depth + 1)
        }
    };
    Ok(match v {
        Value::Null => JValue::Null,
        Value::Bool(b) => JValue::Bool(*b),
        Value::Number(n) => JValue::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JValue::String(s.as_str().into()),
        Value::Array(items) => {
            let depth = nested()?;
            // As the engine's own conversion: an array holding no array is "flat",
            // which spares its path steps a scan.
            let mut flat = true;
            let items = items
                .iter()
                .map(|item| {
                    flat &= !item.is_array();
                    to_engine_at(item, depth, what)
                })
                .collect::<Result<Vec<_>, _>>()?;
            JValue::Array(JArray::new_flat(items, flat))
        }
        Value::Object(map) => {
            let depth = nested()?;
            let map = map
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_engine_at(v, depth, what)?)))
                .collect::<Result<JMap, MappingError>>()?;
            JValue::Object(Rc::new(map))
        }
    })
}

/// The engine's value as JSON, refusing results nested deeper than [`MAX_NESTING`] or
/// larger than about `max_bytes` of JSON text (counted as it is built, so a huge result
/// is refused before it is copied).
///
/// JSONata numbers are doubles; a whole number within the exactly-representable range
/// goes out as an integer (`2000`, not `2000.0`), as the provider sent it. What JSON
/// cannot hold (functions, regexes, non-finite numbers, undefined in an array) is null.
pub(super) fn to_json(v: &JValue, max_bytes: usize) -> Result<Value, MappingError> {
    let mut budget = Budget {
        left: max_bytes,
        max_bytes,
    };
    convert(v, 0, &mut budget)
}

struct Budget {
    left: usize,
    max_bytes: usize,
}

impl Budget {
    fn spend(&mut self, bytes: usize) -> Result<(), MappingError> {
        self.left = self
            .left
            .checked_sub(bytes)
            .ok_or(MappingError::TooLarge(self.max_bytes))?;
        Ok(())
    }
}

fn convert(v: &JValue, depth: usize, budget: &mut Budget) -> Result<Value, MappingError> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let nested = |depth: usize| {
        if depth == MAX_NESTING {
            Err(MappingError::TooDeep("result"))
        } else {
            Ok(depth + 1)
        }
    };
    Ok(match v {
        JValue::Null | JValue::Undefined => {
            budget.spend(4)?;
            Value::Null
        }
        JValue::Bool(b) => {
            budget.spend(5)?;
            Value::Bool(*b)
        }
        JValue::Number(f) => {
            budget.spend(8)?;
            if f.fract() == 0.0 && f.abs() < EXACT {
                Value::from(*f as i64)
            } else {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
        }
        JValue::String(s) => {
            budget.spend(s.len() + 2)?;
            Value::String(s.to_string())
        }
        JValue::Array(items) => {
            let depth = nested(depth)?;
            budget.spend(2)?;
            let mut out = Vec::with_capacity(items.len().min(1024));
            for item in items.iter() {
                budget.spend(1)?;
                out.push(convert(item, depth, budget)?);
            }
            Value::Array(out)
        }
        JValue::Object(map) => {
            let depth = nested(depth)?;
            budget.spend(2)?;
            let mut out = serde_json::Map::new();
            for (k, v) in map.iter() {
                budget.spend(k.len() + 4)?;
                out.insert(k.clone(), convert(v, depth, budget)?);
            }
            Value::Object(out)
        }
        JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. } => {
            budget.spend(4)?;
            Value::Null
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |v, _| json!([v]))
    }

    #[test]
    fn nesting_is_measured_without_recursion() {
        assert!(nesting_within(&json!(1), 0));
        assert!(nesting_within(&nested(MAX_NESTING), MAX_NESTING));
        assert!(!nesting_within(&nested(MAX_NESTING + 1), MAX_NESTING));
        // Deep enough to overflow a recursive walk; built and dropped by hand since
        // serde_json's own drop of it would recurse.
        let mut deep = Value::Null;
        for _ in 0..200_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(!nesting_within(&deep, MAX_NESTING));
        while let Value::Array(mut items) = deep {
            deep = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn input_converts_as_the_engine_converts_and_refuses_deep_nesting() {
        let v = json!({"n": 2000, "half": 2.5, "list": [1, "a", null, true, [2]], "o": {"k": {}}});
        assert_eq!(to_engine(&v, "input"), Ok(JValue::from(v.clone())));
        assert!(to_engine(&nested(MAX_NESTING), "input").is_ok());
        assert!(engine_nesting_within(&JValue::from(nested(MAX_NESTING)), MAX_NESTING));
        assert!(!engine_nesting_within(
            &JValue::from(nested(MAX_NESTING + 1)),
            MAX_NESTING
        ));
        assert_eq!(
            to_engine(&nested(MAX_NESTING + 1), "input"),
            Err(MappingError::TooDeep("input"))
        );
    }

    #[test]
    fn results_keep_integers_and_respect_the_budget() {
        let v = JValue::from(json!({"n": 2000, "half": 2.5, "list": [1, "a", null, true]}));
        let out = to_json(&v, 1 << 10).unwrap();
        assert_eq!(out.to_string(), r#"{"n":2000,"half":2.5,"list":[1,"a",null,true]}"#);
        let big = JValue::from(json!(["x".repeat(600), "y".repeat(600)]));
        assert_eq!(to_json(&big, 1000), Err(MappingError::TooLarge(1000)));
        // A result at the nesting limit still parses with serde_json's defaults inside
        // an envelope; one level more is refused.
        let at_limit = to_json(&JValue::from(nested(MAX_NESTING)), 1 << 20).unwrap();
        let envelope = json!({"data": at_limit}).to_string();
        assert!(serde_json::from_str::<Value>(&envelope).is_ok());
        let over = to_json(&JValue::from(nested(MAX_NESTING + 1)), 1 << 20);
        assert_eq!(over, Err(MappingError::TooDeep("result")));
    }
}
