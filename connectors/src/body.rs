//! Reading a provider's body as JSON: JSON as it is, `application/x-www-form-urlencoded`
//! (Twilio) as an object of its parameters, so JSON paths and mappings work on both.

use serde_json::{Map, Value};

/// Whether `content_type` names a form body.
pub fn is_form(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// The body as a JSON value; `None` when it is neither JSON nor a form.
pub fn to_json(body: &[u8], content_type: &str) -> Option<Value> {
    if is_form(content_type) {
        let mut map = Map::new();
        for (k, v) in form_urlencoded::parse(body) {
            // A repeated name keeps its first value (as Twilio's own libraries read it).
            map.entry(k.into_owned()).or_insert(Value::String(v.into_owned()));
        }
        return Some(Value::Object(map));
    }
    serde_json::from_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_become_objects() {
        let v = to_json(
            b"MessageSid=SM1&Body=Hello+there&To=%2B15551234567",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .unwrap();
        assert_eq!(v["MessageSid"], "SM1");
        assert_eq!(v["Body"], "Hello there");
        assert_eq!(v["To"], "+15551234567");
        assert_eq!(to_json(br#"{"a":1}"#, "application/json").unwrap()["a"], 1);
        assert!(to_json(b"not json", "application/json").is_none());
    }
}
