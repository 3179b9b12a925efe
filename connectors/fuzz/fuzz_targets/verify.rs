//! `verify` over every shipped connector (and the `token` and `basic` schemes) with any
//! headers, body, method and time. No panic, and nothing verifies: the account's secret
//! and keys are fixed and nothing in an input can sign with them. Header values and
//! bodies can carry a timestamp near the verification time (`Stamped`), so inputs get
//! past the replay window to the signature comparison.

#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard_connectors::model::SignatureSpec;
use switchyard_connectors::signature::{verify, RawWebhook};
use switchyard_connectors_fuzz::{HEADER_NAMES, NOW, SCHEMES, SECRET};

#[derive(Debug, Arbitrary)]
enum Name<'a> {
    /// One a scheme reads.
    Known(u8),
    Other(&'a str),
}

#[derive(Debug, Arbitrary)]
enum Unit {
    Seconds,
    Milliseconds,
    Rfc3339,
}

#[derive(Debug, Arbitrary)]
enum Text<'a> {
    Raw(&'a [u8]),
    /// `before`, a timestamp `delta` seconds from now in `unit`, `after`.
    Stamped {
        before: &'a str,
        delta: i16,
        unit: Unit,
        after: &'a str,
    },
}

impl Text<'_> {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Text::Raw(b) => b.to_vec(),
            Text::Stamped {
                before,
                delta,
                unit,
                after,
            } => {
                let t = NOW + i64::from(*delta);
                let ts = match unit {
                    Unit::Seconds => t.to_string(),
                    Unit::Milliseconds => (t * 1000).to_string(),
                    Unit::Rfc3339 => time::OffsetDateTime::from_unix_timestamp(t)
                        .unwrap()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap(),
                };
                format!("{before}{ts}{after}").into_bytes()
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    headers: Vec<(Name<'a>, Text<'a>)>,
    body: Text<'a>,
    method: u8,
    /// Verify at this time instead of [`NOW`].
    now: Option<i64>,
}

/// Whether the request holds the shared secret itself (the weak schemes compare it as
/// sent): the one way an input may verify.
fn carries_secret(raw: &RawWebhook) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let has = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    has(&raw.body, SECRET)
        || raw
            .headers
            .values()
            .any(|v| has(v.as_bytes(), SECRET) || has(v.as_bytes(), &b64))
}

fuzz_target!(|input: Input<'_>| {
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let name = match name {
            Name::Known(i) => HEADER_NAMES[usize::from(*i) % HEADER_NAMES.len()].as_str(),
            Name::Other(s) => s,
        };
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value.bytes()),
        ) {
            headers.append(k, v);
        }
    }
    let method = ["POST", "GET", "PUT"][usize::from(input.method) % 3];
    let body = Bytes::from(input.body.bytes());
    for scheme in SCHEMES.iter() {
        let raw = RawWebhook {
            method: http::Method::from_bytes(method.as_bytes()).unwrap(),
            url: "https://hooks.example.com/v1/webhooks/x/acct".into(),
            headers: headers.clone(),
            body: body.clone(),
        };
        let weak = matches!(
            scheme.spec,
            SignatureSpec::Token(_) | SignatureSpec::Basic(_) | SignatureSpec::BodyField(_)
        );
        let carries = weak && carries_secret(&raw);
        if verify(&scheme.spec, raw, &[&scheme.key], input.now.unwrap_or(NOW)).is_ok() {
            assert!(carries, "{}: an unsigned request verified", scheme.name);
        }
    }
});
