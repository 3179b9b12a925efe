//! Bodies and JSON paths: any body under any content type read as JSON (forms as an
//! object of their parameters), then any JSON paths read from it. No panic; the value is
//! linear in the body's size and what a path reads is no larger than the value.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchyard_connectors::body;
use switchyard_connectors::jsonpath::JsonPath;

#[derive(Debug, Arbitrary)]
enum ContentType<'a> {
    Json,
    Form,
    Other(&'a str),
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    content_type: ContentType<'a>,
    paths: Vec<&'a str>,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let ct = match input.content_type {
        ContentType::Json => "application/json",
        ContentType::Form => "application/x-www-form-urlencoded; charset=utf-8",
        ContentType::Other(s) => s,
    };
    let value = body::to_json(input.body, ct);
    if body::is_form(ct) {
        let Some(serde_json::Value::Object(map)) = &value else {
            panic!("a form body is always an object");
        };
        assert!(map.len() <= input.body.split(|b| *b == b'&').count());
    }
    let Some(doc) = value else {
        return;
    };
    let printed = doc.to_string().len();
    // Escapes (a raw control byte in a form prints as `\u0001`) and printed floats (`1e15`)
    // grow at most a few times; 16 is a loose linear bound.
    assert!(
        printed <= 16 * input.body.len() + 2,
        "{printed} from {} bytes",
        input.body.len()
    );
    for text in input.paths {
        let Ok(path) = JsonPath::parse(text) else {
            continue;
        };
        assert_eq!(path.to_string(), text);
        if let Some(s) = path.get_string(&doc) {
            assert!(s.len() <= printed);
        }
    }
});
