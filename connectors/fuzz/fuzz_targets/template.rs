//! The signed-bytes template: any template text, and for what parses, any request parts
//! (body, timestamp, method, URL, headers, JSON body, form parameters). No panic, and the
//! signed bytes are at most the literal text plus one largest input per placeholder.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchyard_connectors::template::{Inputs, Template};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    text: &'a str,
    body: &'a [u8],
    timestamp: Option<&'a str>,
    method: &'a str,
    url: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    form: Option<Vec<(String, String)>>,
    /// Read the body as JSON for `{json:…}` parts (as the verifier does).
    json_body: bool,
}

fuzz_target!(|input: Input<'_>| {
    let Ok(template) = Template::parse(input.text) else {
        return;
    };
    let json: Option<serde_json::Value> = if input.json_body {
        serde_json::from_slice(input.body).ok()
    } else {
        None
    };
    let headers = &input.headers;
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let Ok(out) = template.build(&Inputs {
        body: input.body,
        timestamp: input.timestamp,
        method: input.method,
        url: input.url,
        header: &lookup,
        json: json.as_ref(),
        form: input.form.as_deref(),
    }) else {
        return;
    };
    // A `{json:…}` part is a string or a printed number of the document, so no longer
    // than the document printed.
    let largest = [
        input.body.len(),
        input.timestamp.map_or(0, str::len),
        input.method.len(),
        input.url.len(),
        headers.iter().map(|(_, v)| v.len()).max().unwrap_or(0),
        json.as_ref().map_or(0, |d| d.to_string().len()),
        input
            .form
            .as_ref()
            .map_or(0, |f| f.iter().map(|(k, v)| k.len() + v.len()).sum()),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let bound = input.text.len() + input.text.matches('{').count() * largest;
    assert!(out.len() <= bound, "{} bytes > {bound} for {:?}", out.len(), input.text);
});
