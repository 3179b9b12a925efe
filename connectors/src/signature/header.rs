//! Reading signature headers: the candidates (any one that matches passes) and, for
//! structured headers, the signed timestamp. Parsing never allocates more than the
//! header's own length and never panics; that is what the fuzz target checks.

use crate::model::SignatureHeader;

/// What a signature header holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub candidates: Vec<&'a str>,
    pub timestamp: Option<&'a str>,
}

/// At most this many candidate signatures are considered (a header stuffed with
/// thousands of values must not cost thousands of comparisons).
pub const MAX_CANDIDATES: usize = 16;

pub fn parse<'a>(spec: &SignatureHeader, value: &'a str) -> Parsed<'a> {
    let mut out = Parsed::default();
    match spec {
        SignatureHeader::Plain { prefix, .. } => {
            if let Some(sig) = value.trim().strip_prefix(prefix.as_str()) {
                if !sig.is_empty() {
                    out.candidates.push(sig);
                }
            }
        }
        SignatureHeader::KeyValue {
            pair_separator,
            kv_separator,
            signature_key,
            timestamp_key,
            ..
        } => {
            for pair in value.split(pair_separator.as_str()) {
                let Some((k, v)) = pair.split_once(kv_separator.as_str()) else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim());
                if k == signature_key {
                    if out.candidates.len() < MAX_CANDIDATES && !v.is_empty() {
                        out.candidates.push(v);
                    }
                } else if Some(k) == timestamp_key.as_deref() && out.timestamp.is_none() {
                    out.timestamp = Some(v);
                }
            }
        }
        SignatureHeader::List {
            separator,
            prefix,
            timestamp_first,
            ..
        } => {
            let mut items = value.split(separator.as_str());
            if *timestamp_first {
                out.timestamp = items.next().map(str::trim).filter(|t| !t.is_empty());
            }
            for item in items {
                if out.candidates.len() >= MAX_CANDIDATES {
                    break;
                }
                if let Some(sig) = item.trim().strip_prefix(prefix.as_str()) {
                    if !sig.is_empty() {
                        out.candidates.push(sig);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> SignatureHeader {
        SignatureHeader::KeyValue {
            name: "Stripe-Signature".into(),
            pair_separator: ",".into(),
            kv_separator: "=".into(),
            signature_key: "v1".into(),
            timestamp_key: Some("t".into()),
        }
    }

    #[test]
    fn key_value_headers_yield_every_candidate() {
        let p = parse(&kv(), "t=1492774577,v1=aaa,v0=zzz,v1=bbb");
        assert_eq!(p.timestamp, Some("1492774577"));
        assert_eq!(p.candidates, vec!["aaa", "bbb"]);
    }

    #[test]
    fn lists_and_plain_values_strip_prefixes() {
        let list = SignatureHeader::List {
            name: "webhook-signature".into(),
            separator: " ".into(),
            prefix: "v1,".into(),
            timestamp_first: false,
        };
        assert_eq!(parse(&list, "v1,abc v2,zzz v1,def").candidates, vec!["abc", "def"]);
        let plain = SignatureHeader::Plain {
            name: "X-Hub-Signature-256".into(),
            prefix: "sha256=".into(),
        };
        assert_eq!(parse(&plain, "sha256=ff00").candidates, vec!["ff00"]);
        assert!(parse(&plain, "sha1=ff00").candidates.is_empty());
    }

    #[test]
    fn a_list_may_lead_with_its_timestamp() {
        let list = SignatureHeader::List {
            name: "recurly-signature".into(),
            separator: ",".into(),
            prefix: String::new(),
            timestamp_first: true,
        };
        let p = parse(&list, "1659641851000,aa11, bb22");
        assert_eq!(p.timestamp, Some("1659641851000"));
        assert_eq!(p.candidates, vec!["aa11", "bb22"]);
        // A timestamp alone is no signature.
        let p = parse(&list, "1659641851000");
        assert_eq!(p.timestamp, Some("1659641851000"));
        assert!(p.candidates.is_empty());
    }

    #[test]
    fn candidates_are_capped() {
        let many = "v1=a,".repeat(1000);
        assert_eq!(parse(&kv(), &many).candidates.len(), MAX_CANDIDATES);
    }
}
