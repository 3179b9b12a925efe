//! The shipped Plaid connector's `jwt` scheme with a key request, with a key made here.
//! What the token carries and how the key is asked for are Plaid's
//! (https://plaid.com/docs/api/webhooks/webhook-verification/): ES256, `kid` in the
//! header, `iat` at most 5 minutes old, `request_body_sha256`, and a `POST` of
//! `{"key_id": …}` with the client's credentials answered by `{"key": <JWK>, …}`. The
//! body is Plaid's documented SYNC_UPDATES_AVAILABLE example; the key and ids are ours.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use sha2::Digest;

use super::fetched::{key_location, parse_keys, FetchedKeys, KeyKind, KeyLocation};
use super::{verify_fetched, RawWebhook, VerifyError};
use crate::model::SignatureSpec;

const NOW: i64 = 1_765_000_000;
const CREDENTIALS: &str = "5f1a2b3c4d5e6f7a8b9c0d1e:0123456789abcdef0123456789abcd";
const BODY: &str = r#"{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"wz666MBjYWTp2PDzzggYhM6oWWmBb","initial_update_complete":true,"historical_update_complete":false,"environment":"production"}"#;

fn plaid() -> SignatureSpec {
    let catalog =
        crate::catalog::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    catalog.get("plaid").unwrap().signature.clone()
}

struct Key {
    encoding: jsonwebtoken::EncodingKey,
    jwk: serde_json::Value,
}

fn key(kid: &str) -> Key {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    let der = secret.to_pkcs8_der().unwrap();
    Key {
        encoding: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
        // Plaid's answer adds `created_at` and `expired_at` to the JWK's fields.
        jwk: serde_json::json!({
            "alg": "ES256", "crv": "P-256", "kid": kid, "kty": "EC", "use": "sig",
            "x": B64URL.encode(point.x().unwrap()), "y": B64URL.encode(point.y().unwrap()),
            "created_at": 1_560_466_143, "expired_at": null,
        }),
    }
}

fn token(key: &Key, alg: jsonwebtoken::Algorithm, kid: &str, body: &str, iat: i64) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(kid.into());
    let claims = serde_json::json!({
        "iat": iat,
        "request_body_sha256": hex::encode(sha2::Sha256::digest(body.as_bytes())),
    });
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn request(token: &str, body: &str) -> RawWebhook {
    let mut headers = HeaderMap::new();
    headers.insert("plaid-verification", HeaderValue::from_str(token).unwrap());
    RawWebhook {
        method: http::Method::POST,
        url: "https://hooks.example.com/v1/webhooks/plaid/acct".into(),
        headers,
        body: Bytes::from(body.to_string()),
    }
}

/// What the key host answers for `location`, parsed.
fn answer(location: &KeyLocation, key: &Key) -> FetchedKeys {
    let body = serde_json::json!({"key": key.jwk, "request_id": "RZ6Omi1bzzwDaLo"});
    parse_keys(location, body.to_string().as_bytes()).unwrap()
}

#[test]
fn the_key_is_asked_for_by_its_id_with_the_accounts_credentials() {
    let spec = plaid();
    assert!(spec.fetches_keys());
    let k = key("bfbd5111-8e33-4643-8ced-b2e642a72f3c");
    let raw = request(
        &token(
            &k,
            jsonwebtoken::Algorithm::ES256,
            "bfbd5111-8e33-4643-8ced-b2e642a72f3c",
            BODY,
            NOW,
        ),
        BODY,
    );
    let location = key_location(&spec, &raw, &[CREDENTIALS, "older:credentials"])
        .unwrap()
        .unwrap();
    assert_eq!(
        location.url,
        "https://production.plaid.com/webhook_verification_key/get"
    );
    assert_eq!(location.kind, KeyKind::Jwk);
    let request = location.request.as_ref().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&request.body).unwrap(),
        serde_json::json!({"key_id": "bfbd5111-8e33-4643-8ced-b2e642a72f3c"})
    );
    assert_eq!(
        request.headers,
        vec![
            ("PLAID-CLIENT-ID".to_string(), "5f1a2b3c4d5e6f7a8b9c0d1e".to_string()),
            ("PLAID-SECRET".to_string(), "0123456789abcdef0123456789abcd".to_string()),
        ],
        "the newest credentials, split at the first ':'"
    );
    let shown = format!("{location:?}");
    assert!(
        !shown.contains("0123456789abcdef"),
        "Debug never shows the secret: {shown}"
    );

    // No credentials, or not written `<client_id>:<secret>`: nothing can be asked.
    assert_eq!(key_location(&spec, &raw, &[]), Err(VerifyError::NoSecret));
    assert_eq!(key_location(&spec, &raw, &["no-colon"]), Err(VerifyError::NoSecret));
}

#[test]
fn a_forged_key_id_or_algorithm_is_refused_before_anything_is_asked() {
    let spec = plaid();
    let k = key("k1");
    for kid in ["", "../../admin", "a b", &"x".repeat(129)] {
        let raw = request(&token(&k, jsonwebtoken::Algorithm::ES256, kid, BODY, NOW), BODY);
        assert_eq!(
            key_location(&spec, &raw, &[CREDENTIALS]),
            Err(VerifyError::Malformed),
            "{kid:?}"
        );
    }
    // Plaid signs ES256 only: an HS256 token (a guessable "secret") is refused.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("k1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &serde_json::json!({"iat": NOW}),
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_eq!(
        key_location(&spec, &request(&hs, BODY), &[CREDENTIALS]),
        Err(VerifyError::Malformed)
    );
    assert_eq!(
        key_location(
            &spec,
            &RawWebhook {
                headers: HeaderMap::new(),
                ..request("x", BODY)
            },
            &[CREDENTIALS]
        ),
        Err(VerifyError::MissingHeader("Plaid-Verification".into()))
    );
}

#[test]
fn valid_tampered_wrong_key_stale_and_rotated() {
    let spec = plaid();
    let (k1, k2) = (key("k1"), key("k2"));
    let check = |t: &str, body: &str, keys: &FetchedKeys, now: i64| {
        verify_fetched(&spec, request(t, body), keys, &[CREDENTIALS], now).map(|_| ())
    };
    let t1 = token(&k1, jsonwebtoken::Algorithm::ES256, "k1", BODY, NOW - 30);
    let location = key_location(&spec, &request(&t1, BODY), &[CREDENTIALS])
        .unwrap()
        .unwrap();
    let keys1 = answer(&location, &k1);
    // Valid.
    assert_eq!(check(&t1, BODY, &keys1, NOW), Ok(()));
    // Tampered body: its hash is not the claimed one.
    let tampered = BODY.replace("true", "false");
    assert_eq!(check(&t1, &tampered, &keys1, NOW), Err(VerifyError::Mismatch));
    // Signed by another key under the same id (a wrong secret, for a public-key scheme).
    let forged = token(&k2, jsonwebtoken::Algorithm::ES256, "k1", BODY, NOW);
    assert_eq!(check(&forged, BODY, &keys1, NOW), Err(VerifyError::Mismatch));
    // Stale: issued more than 5 minutes (and the leeway) ago.
    assert_eq!(
        check(&t1, BODY, &keys1, NOW + 400),
        Err(VerifyError::OutOfTolerance(300))
    );
    // Rotated: a token under a new id is another key request, for that id.
    let t2 = token(&k2, jsonwebtoken::Algorithm::ES256, "k2", BODY, NOW);
    let location2 = key_location(&spec, &request(&t2, BODY), &[CREDENTIALS])
        .unwrap()
        .unwrap();
    assert_ne!(location, location2, "each key id is cached apart");
    assert_eq!(check(&t2, BODY, &answer(&location2, &k2), NOW), Ok(()));
    assert_eq!(check(&t2, BODY, &keys1, NOW), Err(VerifyError::UnknownKey));
}

#[test]
fn an_answer_without_the_key_asked_for_is_no_key() {
    let spec = plaid();
    let k = key("k1");
    let t = token(&k, jsonwebtoken::Algorithm::ES256, "k1", BODY, NOW);
    let location = key_location(&spec, &request(&t, BODY), &[CREDENTIALS])
        .unwrap()
        .unwrap();
    assert!(parse_keys(&location, br#"{"error_code":"INVALID_API_KEYS"}"#).is_err());
    assert!(parse_keys(&location, b"<html>").is_err());
    let other = key("k9");
    let body = serde_json::json!({"key": other.jwk});
    assert!(
        parse_keys(&location, body.to_string().as_bytes()).is_err(),
        "a key under another id is refused"
    );
}

#[test]
fn a_token_without_audience_must_bind_the_body() {
    let text = "name = \"noaud\"\ntitle = \"N\"\n[signature]\nscheme = \"jwt\"\nheader = \"X-Token\"\njwks_url = \"https://keys.example/jwks\"\nalgorithms = [\"ES256\"]\naudience = \"none\"\n[event]\nid = { json = \"id\" }\ntype = { json = \"type\" }\n";
    let errors = crate::catalog::Catalog::from_sources(vec![("noaud.toml".into(), text.into())]).unwrap_err();
    assert!(errors.to_string().contains("body_sha256_claim"), "{errors}");
}
