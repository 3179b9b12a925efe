//! A dotted path into JSON (`data.object.id`, `items[0].id`), parsed once when the
//! connector file loads. Deliberately tiny: anything richer belongs in a JSONata mapping.

use std::fmt;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Clone, PartialEq, Eq)]
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

impl JsonPath {
    /// Parse `a.b[2].c`; `$` alone is the whole document.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut steps = Vec::new();
        if text != "$" {
            if text.is_empty() {
                return Err("a JSON path cannot be empty (use \"$\" for the whole document)".into());
            }
            for part in text.split('.') {
                let (name, mut rest) = match part.find('[') {
                    Some(i) => (&part[..i], &part[i..]),
                    None => (part, ""),
                };
                if name.is_empty() && rest.is_empty() {
                    return Err(format!("JSON path {text:?} has an empty segment"));
                }
                if !name.is_empty() {
                    steps.push(Step::Key(name.to_string()));
                }
                while !rest.is_empty() {
                    let close = rest
                        .find(']')
                        .ok_or_else(|| format!("JSON path {text:?} has an unclosed '['"))?;
                    let idx: usize = rest[1..close]
                        .parse()
                        .map_err(|_| format!("JSON path {text:?}: {:?} is not an array index", &rest[1..close]))?;
                    steps.push(Step::Index(idx));
                    rest = &rest[close + 1..];
                    if !rest.is_empty() && !rest.starts_with('[') {
                        return Err(format!("JSON path {text:?} is malformed near {rest:?}"));
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
