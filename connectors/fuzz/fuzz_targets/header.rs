//! Signature headers: any spec (plain, key=value, list, with any separators, keys and
//! prefixes) and every shipped connector's header format, on any value. No panic, and the
//! result is a handful of slices of the value (see `check_parsed`).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchyard_connectors::model::{SignatureHeader, SignatureSpec};
use switchyard_connectors::signature::header;
use switchyard_connectors_fuzz::{check_parsed, SCHEMES};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    format: u8,
    pair_separator: &'a str,
    kv_separator: &'a str,
    key: &'a str,
    timestamp_key: Option<&'a str>,
    prefix: &'a str,
    value: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let name = "x-sig".to_string();
    let spec = match input.format % 3 {
        0 => SignatureHeader::Plain {
            name,
            prefix: input.prefix.into(),
        },
        1 => SignatureHeader::KeyValue {
            name,
            pair_separator: input.pair_separator.into(),
            kv_separator: input.kv_separator.into(),
            signature_key: input.key.into(),
            timestamp_key: input.timestamp_key.map(String::from),
        },
        _ => SignatureHeader::List {
            name,
            separator: input.pair_separator.into(),
            prefix: input.prefix.into(),
            timestamp_first: input.timestamp_key.is_some(),
        },
    };
    check_parsed(input.value, &header::parse(&spec, input.value));
    for scheme in SCHEMES.iter() {
        if let SignatureSpec::Hmac(h) = &scheme.spec {
            if let Some(hd) = &h.header {
                check_parsed(input.value, &header::parse(hd, input.value));
            }
        }
    }
});
