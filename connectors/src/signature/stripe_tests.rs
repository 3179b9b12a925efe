//! Stripe's scheme, as declared in `catalog/stripe.toml`: valid, tampered, wrong secret,
//! stale, future, and several `v1` values of which one matches.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{verify, RawWebhook, VerifyError};
use crate::catalog::Catalog;

const SECRET: &str = "whsec_test_secret_0123456789";
const NOW: i64 = 1_700_000_000;
const BODY: &str = r#"{"id":"evt_1","type":"customer.created","created":1700000000,"data":{"object":{"id":"cus_1"}}}"#;

fn spec() -> crate::model::SignatureSpec {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let catalog = Catalog::load_dir(&dir).unwrap();
    catalog.get("stripe").unwrap().signature.clone()
}

/// Stripe's documented computation: HMAC-SHA256 of `<t>.<body>`, hex.
fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn request(header: &str, body: &str) -> RawWebhook {
    let mut headers = http::HeaderMap::new();
    headers.insert("stripe-signature", header.parse().unwrap());
    RawWebhook {
        method: http::Method::POST,
        url: "http://localhost/v1/webhooks/stripe/acct".into(),
        headers,
        body: Bytes::from(body.to_string()),
    }
}

fn check(header: &str, body: &str, secrets: &[&str]) -> Result<(), VerifyError> {
    verify(&spec(), request(header, body), secrets, NOW).map(|_| ())
}

#[test]
fn valid_signature_passes() {
    let h = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
    assert_eq!(check(&h, BODY, &[SECRET]), Ok(()));
}

#[test]
fn tampered_body_fails() {
    let h = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
    let tampered = BODY.replace("cus_1", "cus_2");
    assert_eq!(check(&h, &tampered, &[SECRET]), Err(VerifyError::Mismatch));
}

#[test]
fn wrong_secret_fails() {
    let h = format!("t={NOW},v1={}", sign("whsec_other", NOW, BODY));
    assert_eq!(check(&h, BODY, &[SECRET]), Err(VerifyError::Mismatch));
}

#[test]
fn stale_and_future_timestamps_fail() {
    for t in [NOW - 301, NOW + 301] {
        let h = format!("t={t},v1={}", sign(SECRET, t, BODY));
        assert_eq!(
            check(&h, BODY, &[SECRET]),
            Err(VerifyError::OutOfTolerance(300)),
            "t={t}"
        );
    }
    let edge = NOW - 300;
    let h = format!("t={edge},v1={}", sign(SECRET, edge, BODY));
    assert_eq!(check(&h, BODY, &[SECRET]), Ok(()));
}

#[test]
fn one_matching_v1_among_several_passes() {
    let h = format!(
        "t={NOW},v1={},v0={},v1={}",
        sign("whsec_old", NOW, BODY),
        sign(SECRET, NOW, BODY),
        sign(SECRET, NOW, BODY)
    );
    assert_eq!(check(&h, BODY, &[SECRET]), Ok(()));
    let only_v0 = format!("t={NOW},v0={}", sign(SECRET, NOW, BODY));
    assert_eq!(check(&only_v0, BODY, &[SECRET]), Err(VerifyError::Malformed));
}

#[test]
fn any_active_secret_of_the_account_passes() {
    let h = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
    assert_eq!(check(&h, BODY, &["whsec_rotated_away", SECRET]), Ok(()));
    assert_eq!(check(&h, BODY, &[]), Err(VerifyError::NoSecret));
}

#[test]
fn missing_and_garbled_headers_fail() {
    let mut r = request("x", BODY);
    r.headers.clear();
    assert!(matches!(
        verify(&spec(), r, &[SECRET], NOW),
        Err(VerifyError::MissingHeader(_))
    ));
    assert_eq!(check("garbage", BODY, &[SECRET]), Err(VerifyError::Malformed));
    assert_eq!(check("t=abc,v1=00", BODY, &[SECRET]), Err(VerifyError::BadTimestamp));
    assert_eq!(
        check(&format!("t={NOW},v1=zz"), BODY, &[SECRET]),
        Err(VerifyError::Malformed)
    );
}

#[test]
fn the_signer_produces_what_the_verifier_accepts() {
    let headers = super::sign::sign(
        &spec(),
        SECRET,
        BODY.as_bytes(),
        NOW,
        "POST",
        "",
        &http::HeaderMap::new(),
    );
    assert_eq!(headers[0].0, "Stripe-Signature");
    assert_eq!(headers[0].1, format!("t={NOW},v1={}", sign(SECRET, NOW, BODY)));
    assert_eq!(check(&headers[0].1, BODY, &[SECRET]), Ok(()));
}
