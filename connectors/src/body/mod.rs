//! Reading a provider's body as JSON: JSON as it is, `application/x-www-form-urlencoded`
//! (Twilio) as an object of its parameters, XML (Salesforce, SOAP) by the rule in
//! [`xml`], so JSON paths and mappings work on all three.
//!
//! One rule for JSON sent inside a form: a parameter named `payload` whose value is a
//! JSON object is read as that object (Slack's interactivity payloads, GitHub webhooks
//! configured with the form content type), so `payload.type` is a path like any other.
//!
//! A connector whose events are a document inside one form parameter declares it
//! (`[event] document`), and [`document`] reads that instead ([`embedded`]).

use serde_json::{Map, Value};

use crate::model::EmbeddedDocument;

pub mod embedded;
pub mod xml;

/// The document a connector's events are read from: the body as [`to_json`] reads it,
/// or, where the connector declares one, the document in its form parameter.
pub fn document(body: &[u8], content_type: &str, embedded: Option<&EmbeddedDocument>) -> Option<Value> {
    match embedded {
        Some(spec) => embedded::decode(body, content_type, spec),
        None => to_json(body, content_type),
    }
}

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
        if let Some(Value::String(text)) = map.get("payload") {
            if let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
                map.insert("payload".into(), inner);
            }
        }
        return Some(Value::Object(map));
    }
    if xml::is_xml(content_type) {
        return xml::to_json(body);
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

    #[test]
    fn a_json_payload_parameter_is_read_as_json() {
        let form = "application/x-www-form-urlencoded";
        let v = to_json(
            b"payload=%7B%22type%22%3A%22block_actions%22%2C%22trigger_id%22%3A%2213345.98%22%7D",
            form,
        )
        .unwrap();
        assert_eq!(v["payload"]["type"], "block_actions");
        // Anything else stays text.
        assert_eq!(to_json(b"payload=%5B1%5D", form).unwrap()["payload"], "[1]");
        assert_eq!(to_json(b"payload=%7Bnot", form).unwrap()["payload"], "{not");
    }
}
