//! Property tests for everything verification reads from an untrusted request: the
//! signature-header parsers, the signed-bytes template, JSON paths, body parsing, and
//! [`verify`] over every shipped connector. For any input: no panic, output bounded by the
//! input, and nothing unsigned or tampered verifies. The fuzz targets in
//! `connectors/fuzz/` check the same properties for longer; here the case counts are kept
//! small so the crate's tests stay fast (`PROPTEST_CASES=5000` runs more).

use std::path::Path;
use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

use super::header::{self, MAX_CANDIDATES};
use super::sign::sign;
use super::{verify, RawWebhook};
use crate::body;
use crate::catalog::Catalog;
use crate::jsonpath::JsonPath;
use crate::model::{SignatureHeader, SignatureSpec, TimestampSource};
use crate::template::{Inputs, Template};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `cases` unless `PROPTEST_CASES` asks for more; failures are reported, not persisted
/// (a failing input becomes a named regression test below).
pub(crate) fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- signature headers -------------------------------------------------------------

fn separator() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![",", ";", " ", "=", ""]).prop_map(String::from),
        "[,;= a-z]{1,3}",
        ".{0,3}",
    ]
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["v1", "t", "ts", "h1", "v1,", "sha256=", ""]).prop_map(String::from),
        "[a-z0-9=, ]{1,3}",
        ".{0,4}",
    ]
}

fn header_spec() -> impl Strategy<Value = SignatureHeader> {
    let name = || Just("x-sig".to_string());
    prop_oneof![
        (name(), word()).prop_map(|(name, prefix)| SignatureHeader::Plain { name, prefix }),
        (name(), separator(), separator(), word(), prop::option::of(word())).prop_map(|(name, p, k, s, t)| {
            SignatureHeader::KeyValue {
                name,
                pair_separator: p,
                kv_separator: k,
                signature_key: s,
                timestamp_key: t,
            }
        }),
        (name(), separator(), word(), any::<bool>()).prop_map(|(name, separator, prefix, timestamp_first)| {
            SignatureHeader::List {
                name,
                separator,
                prefix,
                timestamp_first,
            }
        }),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,120}",
        "([tvsha01]{1,2}[=,;][0-9a-f]{0,8}[,; ]?){0,40}",
    ]
}

/// Every candidate and the timestamp are non-overlapping slices of `value`, at most
/// [`MAX_CANDIDATES`] of them: the parse allocates nothing in proportion to the header.
fn check_parsed(value: &str, p: &header::Parsed<'_>) -> Result<(), TestCaseError> {
    prop_assert!(p.candidates.len() <= MAX_CANDIDATES);
    let within = |s: &str| {
        let (start, end) = (value.as_ptr() as usize, value.as_ptr() as usize + value.len());
        (s.as_ptr() as usize) >= start && s.as_ptr() as usize + s.len() <= end
    };
    for s in p.candidates.iter().chain(p.timestamp.iter()) {
        prop_assert!(within(s), "{s:?} is not a slice of {value:?}");
    }
    prop_assert!(p.candidates.iter().all(|c| !c.is_empty()));
    prop_assert!(p.candidates.iter().map(|c| c.len()).sum::<usize>() <= value.len());
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn header_parsers_stay_within_the_value(spec in header_spec(), value in header_value()) {
        check_parsed(&value, &header::parse(&spec, &value))?;
    }

    #[test]
    fn catalog_header_formats_stay_within_the_value(value in header_value()) {
        for (_, spec) in SPECS.iter() {
            if let SignatureSpec::Hmac(h) = spec {
                if let Some(hd) = &h.header {
                    check_parsed(&value, &header::parse(hd, &value))?;
                }
            }
        }
    }
}

// ---- the signed-bytes template -----------------------------------------------------

/// One piece of a template, with its text and what it should build to.
#[derive(Debug, Clone)]
enum Tok {
    Lit(String),
    Body,
    Timestamp,
    Method,
    Url,
    Header(String),
    Json(&'static str),
    Form,
}

const PATHS: &[&str] = &["id", "a.b", "items[0].id", "$", "n", "a[1]"];

fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        "[a-z0-9.:{} ]{0,6}".prop_map(Tok::Lit),
        Just(Tok::Body),
        Just(Tok::Timestamp),
        Just(Tok::Method),
        Just(Tok::Url),
        Just(Tok::Form),
        "[a-cA-C]{1,2}".prop_map(Tok::Header),
        prop::sample::select(PATHS).prop_map(Tok::Json),
    ]
}

fn render(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(s) => s.replace('{', "{{").replace('}', "}}"),
            Tok::Body => "{body}".into(),
            Tok::Timestamp => "{timestamp}".into(),
            Tok::Method => "{method}".into(),
            Tok::Url => "{url}".into(),
            Tok::Header(h) => format!("{{header:{h}}}"),
            Tok::Json(p) => format!("{{json:{p}}}"),
            Tok::Form => "{form_sorted}".into(),
        })
        .collect()
}

fn json_doc() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec!["id", "a", "b", "items", "n", "x"]).prop_map(String::from);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What a template may draw on, each part possibly missing.
#[derive(Debug, Clone)]
struct Req {
    body: Vec<u8>,
    timestamp: Option<String>,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    json: Option<Value>,
    form: Option<Vec<(String, String)>>,
}

fn req() -> impl Strategy<Value = Req> {
    (
        prop::collection::vec(any::<u8>(), 0..200),
        prop::option::of("[0-9]{0,12}"),
        "[A-Z]{0,7}",
        ".{0,40}",
        prop::collection::vec(("[a-c]{1,2}", ".{0,20}"), 0..4),
        prop::option::of(json_doc()),
        prop::option::of(prop::collection::vec((".{0,6}", ".{0,6}"), 0..6)),
    )
        .prop_map(|(body, timestamp, method, url, headers, json, form)| Req {
            body,
            timestamp,
            method,
            url,
            headers,
            json,
            form,
        })
}

fn build(template: &Template, r: &Req) -> Result<Vec<u8>, &'static str> {
    let lookup = |name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    template
        .build(&Inputs {
            body: &r.body,
            timestamp: r.timestamp.as_deref(),
            method: &r.method,
            url: &r.url,
            header: &lookup,
            json: r.json.as_ref(),
            form: r.form.as_deref(),
            secret: None,
        })
        .map(|c| c.into_owned())
}

/// The signed bytes written out by hand, piece by piece.
fn model(toks: &[Tok], r: &Req) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Lit(s) => out.extend_from_slice(s.as_bytes()),
            Tok::Body => out.extend_from_slice(&r.body),
            Tok::Timestamp => out.extend_from_slice(r.timestamp.as_ref().ok_or("timestamp")?.as_bytes()),
            Tok::Method => out.extend_from_slice(r.method.as_bytes()),
            Tok::Url => out.extend_from_slice(r.url.as_bytes()),
            Tok::Header(h) => {
                let h = h.to_ascii_lowercase();
                let v = r.headers.iter().find(|(k, _)| *k == h).ok_or("header")?;
                out.extend_from_slice(v.1.as_bytes());
            }
            Tok::Json(p) => {
                let doc = r.json.as_ref().ok_or("json")?;
                let v = JsonPath::parse(p).unwrap().get_string(doc).ok_or("json")?;
                out.extend_from_slice(v.as_bytes());
            }
            Tok::Form => {
                // By name, then value, each pair once (Twilio's rule).
                let mut form = r.form.clone().ok_or("form")?;
                form.sort();
                form.dedup();
                for (k, v) in form {
                    out.extend_from_slice(k.as_bytes());
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
    }
    Ok(out)
}

/// The longest any one placeholder can expand to for `r`.
fn largest_part(r: &Req) -> usize {
    let json = r.json.as_ref().map_or(0, |d| d.to_string().len());
    let form = r
        .form
        .as_ref()
        .map_or(0, |f| f.iter().map(|(k, v)| k.len() + v.len()).sum());
    let header = r.headers.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let ts = r.timestamp.as_ref().map_or(0, String::len);
    [r.body.len(), ts, r.method.len(), r.url.len(), header, json, form]
        .into_iter()
        .max()
        .unwrap_or(0)
}

fn template_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}a-z:_.\\[\\]0-9$]{0,40}",
        "(\\{(body|timestamp|method|url|form_sorted|header:[a-c]{0,2}|json:[a-z.\\[\\]0-9$]{0,6})\\}|[{}a-z]){0,12}",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// A template built from known pieces parses and builds exactly the bytes the
    /// pieces describe (so the output is the sum of its parts), or names the missing one.
    #[test]
    fn templates_build_the_sum_of_their_parts(toks in prop::collection::vec(tok(), 0..8), r in req()) {
        let text = render(&toks);
        match Template::parse(&text) {
            Err(_) => prop_assert!(text.is_empty(), "{text:?} did not parse"),
            Ok(t) => prop_assert_eq!(build(&t, &r), model(&toks, &r), "{:?}", text),
        }
    }

    /// Any text: parsing never panics, and what parses builds at most the literal text
    /// plus one largest input per placeholder.
    #[test]
    fn any_template_text_builds_a_bounded_message(text in template_text(), r in req()) {
        if let Ok(t) = Template::parse(&text) {
            if let Ok(out) = build(&t, &r) {
                let bound = text.len() + text.matches('{').count() * largest_part(&r);
                prop_assert!(out.len() <= bound, "{} > {bound} for {text:?}", out.len());
            }
        }
    }
}

// ---- bodies and JSON paths ---------------------------------------------------------

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json_doc().prop_map(|d| d.to_string().into_bytes()),
        "([a-z%+=&0-9]|%[0-9A-Fa-f]{2}){0,60}".prop_map(String::into_bytes),
        "[\\[\\]{}\":,0-9eE.+-]{0,60}".prop_map(String::into_bytes),
    ]
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "application/json",
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded ; charset=utf-8",
            "text/plain",
            "",
        ])
        .prop_map(String::from),
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Bodies parse without panicking into a value whose size is linear in the body's.
    #[test]
    fn bodies_parse_into_bounded_values(b in body_bytes(), ct in content_type()) {
        let v = body::to_json(&b, &ct);
        if body::is_form(&ct) {
            let Some(Value::Object(map)) = &v else {
                return Err(TestCaseError::fail("a form body is always an object"));
            };
            prop_assert!(map.len() <= b.split(|c| *c == b'&').count());
        } else {
            prop_assert_eq!(&v, &serde_json::from_slice::<Value>(&b).ok());
        }
        if let Some(v) = v {
            // Escapes (`\u0001` for a raw control byte in a form) and printed floats
            // (`1e15`) grow at most a few times; 16 is a loose linear bound.
            prop_assert!(v.to_string().len() <= 16 * b.len() + 2);
        }
    }

    /// Paths parse or refuse without panicking, keep their text, and read within the
    /// document.
    #[test]
    fn json_paths_never_panic(text in prop_oneof![any::<String>(), "[a-z0-9.\\[\\]$]{0,20}"], doc in json_doc()) {
        if let Ok(p) = JsonPath::parse(&text) {
            prop_assert_eq!(p.to_string(), text.clone());
            if text == "$" {
                prop_assert_eq!(p.get(&doc), Some(&doc));
            }
            if let Some(s) = p.get_string(&doc) {
                prop_assert!(s.len() <= doc.to_string().len());
            }
        }
    }
}

// ---- verify over the catalog -------------------------------------------------------

/// Every shipped connector's scheme, plus the two weak schemes no shipped connector uses
/// yet (`token`, `basic`), with the secrets or public keys an account would hold.
static SPECS: LazyLock<Vec<(String, SignatureSpec)>> = LazyLock::new(|| {
    let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    let mut specs: Vec<_> = catalog
        .names()
        .map(|n| (n.to_string(), catalog.get(n).unwrap().signature.clone()))
        .collect();
    for (name, text) in [
        (
            "token",
            "scheme = \"token\"\nheader = \"X-Token\"\nprefix = \"Bearer \"",
        ),
        ("basic", "scheme = \"basic\""),
    ] {
        specs.push((name.into(), toml::from_str(text).unwrap()));
    }
    specs
});

/// What an account using `spec` holds: public keys from fixed private keys (nothing
/// generated here can sign with them) or the shared secret.
fn account_key(spec: &SignatureSpec) -> String {
    use base64::Engine;
    use p256::pkcs8::EncodePublicKey;
    match spec {
        SignatureSpec::Ed25519(_) => hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32])
                .verifying_key()
                .to_bytes(),
        ),
        SignatureSpec::EcdsaP256(_) => {
            let sk = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
            let der = sk.verifying_key().to_public_key_der().unwrap();
            base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
        }
        _ => SECRET.into(),
    }
}

/// Every header name any scheme reads, lower case: generated headers aim at these.
static HEADER_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut names = vec!["authorization".to_string(), "webhook-id".into(), "x-token".into()];
    for (_, spec) in SPECS.iter() {
        let (sig, ts) = match spec {
            SignatureSpec::Hmac(h) => (h.header.as_ref().map(|h| h.name().to_string()), h.timestamp.as_ref()),
            SignatureSpec::Ed25519(a) | SignatureSpec::EcdsaP256(a) => (Some(a.header.clone()), a.timestamp.as_ref()),
            _ => (None, None),
        };
        names.extend(sig);
        if let Some(TimestampSource::Header(h)) = ts.map(|t| &t.source) {
            names.push(h.clone());
        }
    }
    names.iter().map(|n| n.to_ascii_lowercase()).collect()
});

/// Values shaped like real signature headers, with timestamps near [`NOW`] so that
/// parsing and the replay window pass and the signature itself is compared.
fn sig_value() -> impl Strategy<Value = String> {
    use base64::Engine;
    let bytes = || prop::collection::vec(any::<u8>(), 0..66);
    let hex = bytes().prop_map(hex::encode);
    let b64 = bytes().prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b));
    let ts = (-400i64..400).prop_map(|d| NOW + d);
    let prefix = prop::sample::select(vec!["sha256=", "sha1=", "v0=", "v1=", "Basic ", "Bearer ", ""]);
    prop_oneof![
        "[ -~]{0,100}",
        (ts.clone(), hex.clone()).prop_map(|(t, s)| format!("t={t},v1={s}")),
        (ts.clone(), hex.clone()).prop_map(|(t, s)| format!("ts={t};h1={s}")),
        (hex.clone(), hex.clone()).prop_map(|(a, b)| format!("v1={a},v1={b}")),
        b64.clone().prop_map(|s| format!("v1,{s}")),
        (prefix.clone(), hex).prop_map(|(p, h)| format!("{p}{h}")),
        (prefix, b64).prop_map(|(p, b)| format!("{p}{b}")),
        ts.clone().prop_map(|t| t.to_string()),
        ts.clone().prop_map(|t| (t * 1000).to_string()),
        ts.prop_map(|t| time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()),
    ]
}

/// Each header a scheme reads present or not, with a value shaped like a signature
/// header or not, and a few others.
fn garbage_headers() -> impl Strategy<Value = HeaderMap> {
    let known = prop::collection::vec(prop::option::weighted(0.6, sig_value()), HEADER_NAMES.len());
    let other = prop::collection::vec(("[a-z-]{1,12}", sig_value()), 0..3);
    (known, other).prop_map(|(known, other)| {
        let named = HEADER_NAMES
            .iter()
            .zip(known)
            .filter_map(|(k, v)| Some((k.clone(), v?)));
        to_headers(named.chain(other))
    })
}

/// Only headers no scheme reads.
fn unsigned_headers() -> impl Strategy<Value = HeaderMap> {
    let name = "[a-z]{1,12}".prop_filter("not a name any scheme reads", |n| !HEADER_NAMES.contains(n));
    prop::collection::vec((name, sig_value()), 0..6).prop_map(to_headers)
}

fn to_headers(pairs: impl IntoIterator<Item = (String, String)>) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            h.append(k, v);
        }
    }
    h
}

fn garbage_body() -> impl Strategy<Value = Vec<u8>> {
    let ts = (-400i64..400).prop_map(|d| NOW + d);
    prop_oneof![
        body_bytes(),
        (ts.clone(), "[0-9a-f]{0,64}", "[0-9a-f]{0,64}").prop_map(|(t, tok, sig)| {
            serde_json::json!({"signature": {"timestamp": t.to_string(), "token": tok, "signature": sig}})
                .to_string()
                .into_bytes()
        }),
        (ts, ".{0,40}").prop_map(|(t, s)| {
            serde_json::json!({"webhookTimestamp": t * 1000, "value": [{"clientState": s}]})
                .to_string()
                .into_bytes()
        }),
    ]
}

fn raw(method: &str, headers: HeaderMap, body: Vec<u8>) -> RawWebhook {
    RawWebhook {
        method: http::Method::from_bytes(method.as_bytes()).unwrap(),
        url: "https://hooks.example.com/v1/webhooks/x/acct".into(),
        headers,
        body: Bytes::from(body),
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Garbage aimed at every header a scheme reads never verifies, on any connector.
    #[test]
    fn garbage_never_verifies(
        headers in garbage_headers(),
        body in garbage_body(),
        method in prop::sample::select(vec!["POST", "GET", "PUT"]),
        now in prop_oneof![4 => Just(NOW), 1 => any::<i64>()],
    ) {
        for (name, spec) in SPECS.iter() {
            let key = account_key(spec);
            let got = verify(spec, raw(method, headers.clone(), body.clone()), &[&key], now);
            prop_assert!(got.is_err(), "{name}: a garbage request verified");
        }
    }

    /// A request carrying none of the headers a scheme reads never verifies.
    #[test]
    fn unsigned_never_verifies(headers in unsigned_headers(), body in garbage_body()) {
        for (name, spec) in SPECS.iter() {
            let key = account_key(spec);
            prop_assert!(verify(spec, raw("POST", headers.clone(), body.clone()), &[&key], NOW).is_err(), "{name}");
        }
    }

    /// A request signed over one body never verifies with another, for every connector
    /// whose signed bytes hold the raw body (a form's sorted parameters can be written
    /// several ways, so form templates are left out).
    #[test]
    fn a_changed_body_never_verifies(
        signed in prop::collection::vec(any::<u8>(), 0..200),
        sent in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        prop_assume!(signed != sent);
        let mut checked = 0;
        for (name, spec) in SPECS.iter() {
            let SignatureSpec::Hmac(h) = spec else { continue };
            if h.header.is_none() || h.message.uses_form() {
                continue;
            }
            let mut headers = HeaderMap::new();
            headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
            let url = "https://hooks.example.com/v1/webhooks/x/acct";
            for (k, v) in sign(spec, SECRET, &signed, NOW, "POST", url, &headers.clone()) {
                headers.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(&v).unwrap());
            }
            if verify(spec, raw("POST", headers.clone(), signed.clone()), &[SECRET], NOW).is_err() {
                continue; // the timestamp is in the body (Linear): not signable from outside
            }
            checked += 1;
            prop_assert!(verify(spec, raw("POST", headers, sent.clone()), &[SECRET], NOW).is_err(), "{name}");
        }
        prop_assert!(checked >= 10, "only {checked} connectors checked");
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// A correctly signed request with one character of one signing header changed never
    /// verifies, for every connector the signer can sign for. (Hex is read in either
    /// case, so a letter's case change is not a change.)
    #[test]
    fn a_corrupted_signature_never_verifies(
        body in prop::collection::vec(any::<u8>(), 0..100),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        to in "[0-9a-zA-Z+/=,;. ]",
    ) {
        let mut checked = 0;
        for (name, spec) in SPECS.iter() {
            let url = "https://hooks.example.com/v1/webhooks/x/acct";
            let mut headers = HeaderMap::new();
            headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
            let signing = sign(spec, SECRET, &body, NOW, "POST", url, &headers.clone());
            if signing.is_empty() {
                continue; // asymmetric or in the body: the signer has nothing to send
            }
            let good = to_headers(signing.iter().cloned().chain([("webhook-id".into(), "msg_1".into())]));
            if verify(spec, raw("POST", good, body.clone()), &[SECRET], NOW).is_err() {
                continue;
            }
            checked += 1;
            let mut signing = signing;
            let n = which.index(signing.len());
            let mut chars: Vec<char> = signing[n].1.chars().collect();
            let to = to.chars().next().unwrap();
            let i = at.index(chars.len().max(1));
            if chars.get(i).is_none_or(|c| c.eq_ignore_ascii_case(&to)) {
                continue;
            }
            chars[i] = to;
            signing[n].1 = chars.into_iter().collect();
            let bad = to_headers(signing.into_iter().chain([("webhook-id".into(), "msg_1".into())]));
            let got = verify(spec, raw("POST", bad, body.clone()), &[SECRET], NOW);
            prop_assert!(got.is_err(), "{name}: a corrupted signature verified");
        }
        prop_assert!(checked >= 10, "only {checked} connectors checked");
    }
}
