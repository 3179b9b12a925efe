//! A dotted path into JSON (`data.object.id`, `items[0].id`), parsed once when the
//! connector file loads. Deliberately tiny: anything richer belongs in a JSONata mapping.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a JSON path does not parse; each says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a JSON path cannot be empty (use \"$\" for the whole document)")]
    Empty,
    #[error("JSON path {0:?} has an empty segment")]
    EmptySegment(String),
    #[error("JSON path {0:?} has an unclosed '['")]
    Unclosed(String),
    #[error("JSON path {path:?}: {index:?} is not an array index")]
    BadIndex { path: String, index: String },
    #[error("JSON path {path:?} is malformed near {near:?}")]
    Malformed { path: String, near: String },
}

impl JsonPath {
    /// Parse `a.b[2].c`; `$` alone is the whole document.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let mut steps = Vec::new();
        if text != "$" {
            if text.is_empty() {
                return Err(PathError::Empty);
            }
            for part in text.split('.') {
                let (name, mut rest) = match part.find('[') {
                    Some(i) => (&part[..i], &part[i..]),
                    None => (part, ""),
                };
                if name.is_empty() && rest.is_empty() {
                    return Err(PathError::EmptySegment(text.to_string()));
                }
                if !name.is_empty() {
                    steps.push(Step::Key(name.to_string()));
                }
                while !rest.is_empty() {
                    let close = rest.find(']').ok_or_else(|| PathError::Unclosed(text.to_string()))?;
                    let idx: usize = rest[1..close].parse().map_err(|_| PathError::BadIndex {
                        path: text.to_string(),
                        index: rest[1..close].to_string(),
                    })?;
                    steps.push(Step::Index(idx));
                    rest = &rest[close + 1..];
                    if !rest.is_empty() && !rest.starts_with('[') {
                        return Err(PathError::Malformed {
                            path: text.to_string(),
                            near: rest.to_string(),
                        });
                    }
                }
            }
        }
        Ok(Self {
            text: text.to_string(),
            steps,
        })
    }

    pub fn get<'a>(&self, mut v: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        for s in &self.steps {
            v = match s {
                Step::Key(k) => v.get(k.as_str())?,
                Step::Index(i) => v.get(*i)?,
            };
        }
        Some(v)
    }

    /// The value as a string: strings as they are, numbers and booleans printed.
    pub fn get_string(&self, v: &serde_json::Value) -> Option<String> {
        match self.get(v)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// The parts of the JSON document `body` that `paths` reach, read in one pass without
/// building the rest: an object (or array) holding, along each path, only what the path
/// walks through, and at its end the value found there. So `path.get(&sparse(..))`
/// equals `path.get(&serde_json::from_slice(body))` for each of `paths`, at a fraction
/// of the allocations for a large body that only needs an id and a type.
///
/// `None` exactly when `serde_json::from_slice::<Value>(body)` fails: what is skipped is
/// still parsed and checked the same way (UTF-8, number ranges, nesting depth, trailing
/// characters). A key that appears twice counts once, the last time, as in a `Value`.
pub fn sparse(body: &[u8], paths: &[&JsonPath]) -> Option<Value> {
    if paths.len() > 64 || paths.iter().any(|p| p.steps.is_empty()) {
        return serde_json::from_slice(body).ok();
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let all = if paths.len() == 64 {
        u64::MAX
    } else {
        (1u64 << paths.len()) - 1
    };
    let doc = Node {
        paths,
        active: all,
        depth: 0,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(doc)
}

/// One value of the document, seen from the paths (`active`, a bit per path) that have
/// walked `depth` steps to reach it.
struct Node<'p> {
    paths: &'p [&'p JsonPath],
    active: u64,
    depth: usize,
}

impl Node<'_> {
    /// The paths whose next step is `step`, and whether one of them ends there.
    fn next(&self, step: impl Fn(&Step) -> bool) -> (u64, bool) {
        let (mut matched, mut ends) = (0u64, false);
        for (i, p) in self.paths.iter().enumerate() {
            if self.active & (1 << i) != 0 && p.steps.get(self.depth).is_some_and(&step) {
                matched |= 1 << i;
                ends |= p.steps.len() == self.depth + 1;
            }
        }
        (matched, ends)
    }

    fn child(&self, active: u64) -> Node<'_> {
        Node {
            paths: self.paths,
            active,
            depth: self.depth + 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key>()? {
            let (matched, ends) = self.next(|s| matches!(s, Step::Key(k) if *k == key.0));
            if matched == 0 {
                map.next_value::<Skip>()?;
            } else if ends {
                // A path ends here: keep the whole value (longer paths through it read it too).
                out.insert(key.0.into_owned(), map.next_value::<Value>()?);
            } else {
                out.insert(key.0.into_owned(), map.next_value_seed(self.child(matched))?);
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        let mut index = 0usize;
        loop {
            let (matched, ends) = self.next(|s| matches!(s, Step::Index(i) if *i == index));
            let item = if matched == 0 {
                seq.next_element::<Skip>()?.map(|_| None)
            } else if ends {
                seq.next_element::<Value>()?.map(Some)
            } else {
                seq.next_element_seed(self.child(matched))?.map(Some)
            };
            match item {
                None => break,
                Some(None) => {}
                Some(Some(v)) => {
                    // Nothing reads the skipped items before it: nulls hold their places.
                    out.resize(index, Value::Null);
                    out.push(v);
                }
            }
            index += 1;
        }
        Ok(Value::Array(out))
    }

    // A scalar where a path wanted to go deeper: the path finds nothing, as in a `Value`.
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// An object key, borrowed from the body unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A value read and checked as a `Value` would be (strings as UTF-8, numbers in range,
/// nesting within serde_json's depth limit), then dropped without allocating.
/// (`IgnoredAny` is no substitute: serde_json skips it without those checks.)
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
}

impl<'de> Deserialize<'de> for JsonPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        JsonPath::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_objects_and_arrays() {
        let v = json!({"data": {"object": {"id": "cus_1", "n": 7}}, "items": [{"id": 3}]});
        assert_eq!(
            JsonPath::parse("data.object.id").unwrap().get_string(&v).unwrap(),
            "cus_1"
        );
        assert_eq!(JsonPath::parse("items[0].id").unwrap().get_string(&v).unwrap(), "3");
        assert!(JsonPath::parse("data.missing").unwrap().get(&v).is_none());
        assert_eq!(JsonPath::parse("$").unwrap().get(&v), Some(&v));
    }

    #[test]
    fn bad_paths_are_refused() {
        assert!(JsonPath::parse("").is_err());
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse("a[x]").is_err());
        assert!(JsonPath::parse("a[1").is_err());
    }
}
