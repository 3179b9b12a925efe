//! Values across the engine's boundary: how deep an input may nest, how its numbers
//! enter the engine, and the engine's result as JSON within a nesting and size budget.
//!
//! The engine's numbers are doubles, exact for integers up to 2^53 only. An input
//! integer beyond that (a 19-digit Snowflake or Discord id) enters the engine as the
//! string of its digits instead, so `$string(id)` and `id` keep every digit (rounded
//! through a double, `820982911946154508` would become `…500`).

use std::fmt;
use std::rc::Rc;

use jsonata_core::value::{JArray, JMap, JValue};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
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
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => integer(i.unsigned_abs(), || i.to_string(), i as f64),
            (None, Some(u)) => integer(u, || u.to_string(), u as f64),
            _ => JValue::Number(n.as_f64().unwrap_or(0.0)),
        },
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

/// Largest magnitude up to which every integer is exactly a double: 2^53.
const EXACT_INTEGER: u64 = 1 << 53;

/// An integer of magnitude `abs` for the engine: its double when that is exact, else
/// its digits as a string.
fn integer(abs: u64, digits: impl FnOnce() -> String, double: f64) -> JValue {
    if abs <= EXACT_INTEGER {
        JValue::Number(double)
    } else {
        JValue::String(digits().into())
    }
}

/// JSON text parsed straight into the engine's values, numbers as [`to_engine`] converts
/// them (the engine's own `Deserialize` rounds every integer through a double).
pub(super) fn parse(text: &[u8]) -> Result<JValue, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = de.deserialize_any(EngineVisitor)?;
    de.end()?;
    Ok(value)
}

/// Builds a [`JValue`] as the engine's own visitor does, but for integers.
struct EngineVisitor;

/// One nested value, read with [`EngineVisitor`].
struct Nested(JValue);

impl<'de> de::Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EngineVisitor).map(Nested)
    }
}

impl<'de> Visitor<'de> for EngineVisitor {
    type Value = JValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JValue, E> {
        Ok(JValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JValue, E> {
        Ok(integer(v.unsigned_abs(), || v.to_string(), v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JValue, E> {
        Ok(integer(v, || v.to_string(), v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JValue, E> {
        Ok(JValue::Number(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<JValue, E> {
        Ok(JValue::String(v.into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<JValue, E> {
        Ok(JValue::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        // As the engine's own conversion: an array holding no array is "flat".
        let mut flat = true;
        while let Some(Nested(item)) = seq.next_element()? {
            flat &= !matches!(item, JValue::Array(_));
            items.push(item);
        }
        Ok(JValue::Array(JArray::new_flat(items, flat)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JValue, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, Nested(v))) = map.next_entry::<String, Nested>()? {
            entries.push((k, v));
        }
        Ok(JValue::Object(Rc::new(entries.into_iter().collect::<JMap>())))
    }
}

/// The engine's value as JSON, refusing results nested deeper than [`MAX_NESTING`] or
/// larger than about `max_bytes` of JSON text (counted as it is built, so a huge result
/// is refused before it is copied).
///
/// JSONata numbers are doubles; a whole number within the exactly-representable range
/// goes out as an integer (`2000`, not `2000.0`), as the provider sent it; a larger
/// input integer went in, and goes out, as its digits in a string. What JSON
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
    fn integers_past_two_to_the_53_enter_the_engine_as_their_digits() {
        let text = r#"{"id": 820982911946154508, "neg": -820982911946154508, "max": 18446744073709551615,
            "exact": 9007199254740992, "past": 9007199254740993, "half": 2.5, "list": [[1]], "o": {}}"#;
        let parsed = parse(text.as_bytes()).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(to_engine(&value, "input"), Ok(parsed.clone()));
        let JValue::Object(map) = &parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(map["id"], JValue::String("820982911946154508".into()));
        assert_eq!(map["neg"], JValue::String("-820982911946154508".into()));
        assert_eq!(map["max"], JValue::String("18446744073709551615".into()));
        assert_eq!(map["exact"], JValue::Number(9_007_199_254_740_992.0));
        assert_eq!(map["past"], JValue::String("9007199254740993".into()));
        // Otherwise as the engine's own parser reads it.
        let ordinary = r#"{"n": 2000, "half": 2.5, "list": [1, "a", null, true, [2]], "o": {"k": {}}}"#;
        assert_eq!(
            parse(ordinary.as_bytes()).unwrap(),
            serde_json::from_str::<JValue>(ordinary).unwrap()
        );
        assert!(parse(b"{} x").is_err());
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
