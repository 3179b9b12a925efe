//! A document carried inside one form parameter, decoded so the connector's paths and
//! mappings read it as they read a JSON body: Mandrill's `mandrill_events` (a JSON array
//! of events) and Braintree's `bt_payload` (base64 of an XML notification, read by the
//! rule in [`super::xml`]). Declared as `[event] document = { form_field, decode }`.
//!
//! The raw form stays what the signature is checked over; only the events are read from
//! the decoded document. A body without the field, or whose field does not decode, is
//! no document (`None`): the caller reads that as an unrecognized event, never a refusal.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

use crate::model::{DocumentEncoding, EmbeddedDocument};

/// The document `spec` names in the form `body`; `None` when the body is no form, lacks
/// the field, or the field does not decode as declared.
pub fn decode(body: &[u8], content_type: &str, spec: &EmbeddedDocument) -> Option<Value> {
    if !super::is_form(content_type) {
        return None;
    }
    // A repeated name keeps its first value, as for every form body.
    let (_, text) = form_urlencoded::parse(body).find(|(k, _)| *k == spec.form_field.as_str())?;
    match spec.decode {
        DocumentEncoding::Json => serde_json::from_str(&text).ok(),
        DocumentEncoding::Base64Xml => {
            // Base64 as MIME writes it (Braintree's SDKs: lines of 76 with `\n`).
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let xml = B64.decode(compact.as_bytes()).ok()?;
            super::xml::to_json(&xml)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "application/x-www-form-urlencoded";

    fn spec(field: &str, decode: DocumentEncoding) -> EmbeddedDocument {
        EmbeddedDocument {
            form_field: field.into(),
            decode,
        }
    }

    #[test]
    fn a_json_array_in_a_form_field() {
        let body = b"mandrill_events=%5B%7B%22event%22%3A%22send%22%2C%22ts%22%3A1%7D%5D";
        let doc = decode(body, FORM, &spec("mandrill_events", DocumentEncoding::Json)).unwrap();
        assert_eq!(doc[0]["event"], "send");
        assert_eq!(doc[0]["ts"], 1);
        assert!(decode(
            b"mandrill_events=%5Bnot",
            FORM,
            &spec("mandrill_events", DocumentEncoding::Json)
        )
        .is_none());
        assert!(decode(b"other=1", FORM, &spec("mandrill_events", DocumentEncoding::Json)).is_none());
        assert!(
            decode(
                body,
                "application/json",
                &spec("mandrill_events", DocumentEncoding::Json)
            )
            .is_none(),
            "only a form carries fields"
        );
    }

    #[test]
    fn base64_xml_in_a_form_field_with_mime_line_breaks() {
        let xml = "<notification><timestamp type=\"datetime\">2024-10-01T09:30:12Z</timestamp><kind>check</kind><subject><check type=\"boolean\">true</check></subject></notification>";
        let encoded = B64.encode(xml);
        // Line breaks every 76 characters and a trailing one, as Python's encodebytes.
        let wrapped: String = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("bt_signature", "pk|00")
            .append_pair("bt_payload", &wrapped)
            .finish();
        let doc = decode(body.as_bytes(), FORM, &spec("bt_payload", DocumentEncoding::Base64Xml)).unwrap();
        assert_eq!(doc["notification"]["kind"], "check");
        assert_eq!(doc["notification"]["timestamp"]["#text"], "2024-10-01T09:30:12Z");
        assert!(decode(
            b"bt_payload=%%%",
            FORM,
            &spec("bt_payload", DocumentEncoding::Base64Xml)
        )
        .is_none());
        let not_xml = format!("bt_payload={}", B64.encode("{\"json\":1}"));
        assert!(decode(
            not_xml.as_bytes(),
            FORM,
            &spec("bt_payload", DocumentEncoding::Base64Xml)
        )
        .is_none());
    }
}
