//! An XML body as JSON, by one rule, so the connector file's paths and the JSONata
//! mappings read XML (Salesforce Outbound Messages, SOAP) as they read JSON:
//!
//! - The document is `{ <root element>: <its value> }`.
//! - An element's value is an object of its child elements and its attributes
//!   (`"@name"`); its text, if it also has children or attributes, is `"#text"`.
//!   An element with only text is that text (a string: XML does not say what is a
//!   number); an empty one is `""`, or `null` when it says `xsi:nil="true"`.
//! - A child element that appears more than once is an array, in document order; once,
//!   it is the value itself. (A batch's `items` path that finds one object reads it as
//!   a batch of one.)
//! - Names are local names: namespace prefixes are dropped (`soapenv:Body` is `Body`),
//!   and `xmlns` declarations are not attributes. Attribute values are kept as written
//!   (`xsi:type="sf:Contact"` is `"@type": "sf:Contact"`).
//! - Text is unescaped and trimmed at both ends; CDATA is text. A document nested deeper than [`MAX_DEPTH`], or
//!   not well-formed, is not XML here (`None`).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::{Map, Value};

/// Deepest element nesting read.
pub const MAX_DEPTH: usize = 64;

/// Whether `content_type` names an XML body.
pub fn is_xml(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "text/xml" || essence == "application/xml" || essence.ends_with("+xml")
}

struct Open {
    name: String,
    fields: Map<String, Value>,
    text: String,
    nil: bool,
}

/// The XML document `body` as JSON by the rule above; `None` when it is not one.
pub fn to_json(body: &[u8]) -> Option<Value> {
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).ok()?;
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH || root.is_some() {
                    return None;
                }
                stack.push(open(&e)?);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return None;
                }
                let element = open(&e)?;
                close(element, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let text = t.decode().ok()?;
                let text = quick_xml::escape::unescape(&text).ok()?;
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&text),
                    // Between the declaration, comments and the root: only blank space.
                    None if text.trim().is_empty() => {}
                    None => return None,
                }
            }
            Event::GeneralRef(r) => {
                // An entity or character reference between text: resolved as text.
                let name = r.decode().ok()?;
                let resolved = quick_xml::escape::unescape(&format!("&{name};")).ok()?.into_owned();
                stack.last_mut()?.text.push_str(&resolved);
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c).ok()?.to_string();
                stack.last_mut()?.text.push_str(&text);
            }
            Event::End(_) => {
                let element = stack.pop()?;
                close(element, &mut stack, &mut root);
            }
            Event::Eof => break,
            // Declarations, comments, processing instructions, doctype: not content.
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return None;
    }
    let (name, value) = root?;
    let mut doc = Map::new();
    doc.insert(name, value);
    Some(Value::Object(doc))
}

fn local(name: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(name).ok()?;
    Some(name.rsplit(':').next().unwrap_or(name).to_string())
}

fn open(e: &BytesStart<'_>) -> Option<Open> {
    let mut fields = Map::new();
    let mut nil = false;
    for attr in e.attributes() {
        let attr = attr.ok()?;
        let key = std::str::from_utf8(attr.key.as_ref()).ok()?;
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()?
            .into_owned();
        let name = local(key.as_bytes())?;
        if name == "nil" && value == "true" {
            nil = true;
            continue;
        }
        fields.insert(format!("@{name}"), Value::String(value));
    }
    Some(Open {
        name: local(e.name().as_ref())?,
        fields,
        text: String::new(),
        nil,
    })
}

fn close(element: Open, stack: &mut [Open], root: &mut Option<(String, Value)>) {
    let Open {
        name,
        mut fields,
        text,
        nil,
    } = element;
    let text = text.trim().to_string();
    let value = if fields.is_empty() {
        if nil && text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        }
    } else {
        if !text.is_empty() {
            fields.insert("#text".into(), Value::String(text));
        }
        Value::Object(fields)
    };
    match stack.last_mut() {
        Some(parent) => match parent.fields.get_mut(&name) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                parent.fields.insert(name, value);
            }
        },
        None => *root = Some((name, value)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn elements_attributes_text_and_repeats_follow_the_rule() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<a:root xmlns:a="urn:a" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="2">
  <!-- a comment -->
  <name>Ada &amp; Co</name>
  <empty/>
  <gone xsi:nil="true"/>
  <item id="1">one</item>
  <item id="2"><![CDATA[<two>]]></item>
  <obj xsi:type="sf:Contact"><a:Id>003</a:Id></obj>
</a:root>"#;
        assert_eq!(
            to_json(xml).unwrap(),
            json!({"root": {
                "@version": "2",
                "name": "Ada & Co",
                "empty": "",
                "gone": null,
                "item": [{"@id": "1", "#text": "one"}, {"@id": "2", "#text": "<two>"}],
                "obj": {"@type": "sf:Contact", "Id": "003"},
            }})
        );
    }

    #[test]
    fn what_is_not_well_formed_xml_is_none() {
        assert!(to_json(b"<a><b></a>").is_none());
        assert!(to_json(b"<a>").is_none());
        assert!(to_json(b"<a/><b/>").is_none());
        assert!(to_json(b"{\"json\": true}").is_none());
        let deep = "<x>".repeat(MAX_DEPTH + 1) + &"</x>".repeat(MAX_DEPTH + 1);
        assert!(to_json(deep.as_bytes()).is_none());
    }

    #[test]
    fn xml_content_types() {
        assert!(is_xml("text/xml; charset=utf-8"));
        assert!(is_xml("application/soap+xml"));
        assert!(!is_xml("application/json"));
    }
}
