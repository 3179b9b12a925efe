//! What the fuzz targets share: the shipped catalog's signature specs (plus the weak
//! schemes no shipped connector uses yet), the keys an account would hold, and the
//! invariant every header parse must keep.

use std::path::Path;
use std::sync::LazyLock;

use switchyard_connectors::model::{SignatureSpec, TimestampSource};
use switchyard_connectors::signature::header::{Parsed, MAX_CANDIDATES};
use switchyard_connectors::Catalog;

/// The Unix time the targets verify at; stamped inputs are offsets from it.
pub const NOW: i64 = 1_700_000_000;
/// The shared secret every secret-based account holds.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One scheme to verify with, and what the account holds for it.
pub struct Scheme {
    pub name: String,
    pub spec: SignatureSpec,
    /// The shared secret, or the public key for asymmetric schemes.
    pub key: String,
}

/// Every shipped connector's signature scheme, plus `token` and `basic`.
pub static SCHEMES: LazyLock<Vec<Scheme>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog");
    let catalog = Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
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
        specs.push((name.into(), toml_spec(text)));
    }
    specs
        .into_iter()
        .map(|(name, spec)| Scheme {
            key: account_key(&spec),
            name,
            spec,
        })
        .collect()
});

fn toml_spec(text: &str) -> SignatureSpec {
    // The connectors crate parses TOML already; go through a one-connector catalog so the
    // fuzz crate needs no TOML dependency of its own.
    let file = format!(
        "name = \"x\"\ntitle = \"x\"\n[signature]\n{text}\n[event]\nid = {{ json = \"id\" }}\ntype = {{ json = \"type\" }}\n"
    );
    let c = Catalog::from_sources(vec![("x.toml".into(), file)]).unwrap_or_else(|e| panic!("{e}"));
    c.get("x").unwrap().signature.clone()
}

/// Every header name a scheme reads, lower case: fuzz inputs pick from these by index.
pub static HEADER_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut names = vec!["authorization".to_string(), "webhook-id".into(), "x-token".into()];
    for Scheme { spec, .. } in SCHEMES.iter() {
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

/// What an account using `spec` holds: public keys from fixed private keys (nothing in
/// a fuzz input can sign with them) or the shared secret.
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

/// Every candidate and the timestamp are non-empty (candidates), non-overlapping slices
/// of `value`, at most [`MAX_CANDIDATES`] of them: nothing is allocated in proportion
/// to the header.
pub fn check_parsed(value: &str, p: &Parsed<'_>) {
    assert!(
        p.candidates.len() <= MAX_CANDIDATES,
        "{} candidates",
        p.candidates.len()
    );
    let (start, end) = (value.as_ptr() as usize, value.as_ptr() as usize + value.len());
    for s in p.candidates.iter().chain(p.timestamp.iter()) {
        let at = s.as_ptr() as usize;
        assert!(at >= start && at + s.len() <= end, "{s:?} is not a slice of {value:?}");
    }
    assert!(p.candidates.iter().all(|c| !c.is_empty()), "an empty candidate");
    let total: usize = p.candidates.iter().map(|c| c.len()).sum();
    assert!(total <= value.len(), "candidates overlap: {total} > {}", value.len());
}
