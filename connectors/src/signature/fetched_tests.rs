//! The `jwt` and `x509` schemes with keys made here: a P-256 and an RSA key published
//! as a JWKS, and an RSA certificate as AWS SNS names one. The signed fields and their
//! order are SNS's (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html);
//! the values are ours.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;

use super::fetched::{
    allowed_https_host, host_matches, key_location, parse_keys, path_matches, url_path_matches, FetchedKeys, KeyKind,
    KeyLocation,
};
use super::{verify_fetched, RawWebhook, VerifyError};
use crate::model::SignatureSpec;

const NOW: i64 = 1_765_000_000;
const URL: &str = "https://hooks.example.com/v1/webhooks/google_pubsub/acct";

fn spec(toml_text: &str) -> SignatureSpec {
    #[derive(serde::Deserialize)]
    struct Wrap {
        signature: SignatureSpec,
    }
    toml::from_str::<Wrap>(toml_text).unwrap().signature
}

fn jwt_spec(extra: &str) -> SignatureSpec {
    spec(&format!(
        r#"[signature]
scheme = "jwt"
header = "Authorization"
prefix = "Bearer "
jwks_url = "https://www.googleapis.com/oauth2/v3/certs"
algorithms = ["RS256", "ES256"]
issuers = ["https://accounts.google.com"]
{extra}"#
    ))
}

fn request(headers: &[(&str, String)], body: &str) -> RawWebhook {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    RawWebhook {
        method: http::Method::POST,
        url: URL.into(),
        headers: map,
        body: Bytes::from(body.to_string()),
    }
}

/// A P-256 key, its JWK (kid `ec1`) and a token signer.
struct EcKey {
    encoding: jsonwebtoken::EncodingKey,
    jwk: serde_json::Value,
}

fn ec_key() -> EcKey {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    let der = secret.to_pkcs8_der().unwrap();
    EcKey {
        encoding: jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()),
        jwk: serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256", "use": "sig",
            "x": B64URL.encode(point.x().unwrap()), "y": B64URL.encode(point.y().unwrap()),
        }),
    }
}

/// An RSA-2048 key: PKCS#8 DER, and its public key's modulus and exponent.
fn rsa_key() -> (RsaKeyPair, Vec<u8>, Vec<u8>) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let (n, e) = rsa_public_parts(pair.public_key().as_ref());
    (pair, n, e)
}

/// One DER element: its contents and what follows it.
fn tlv(d: &[u8]) -> (&[u8], &[u8]) {
    let len_byte = d[1] as usize;
    let (len, start) = if len_byte & 0x80 == 0 {
        (len_byte, 2)
    } else {
        let n = len_byte & 0x7f;
        (d[2..2 + n].iter().fold(0usize, |a, b| a << 8 | *b as usize), 2 + n)
    };
    (&d[start..start + len], &d[start + len..])
}

/// The first `count` INTEGERs of a DER SEQUENCE, without leading zero bytes.
fn integers(der: &[u8], count: usize) -> Vec<Vec<u8>> {
    let (mut rest, _) = tlv(der);
    let mut out = Vec::new();
    for _ in 0..count {
        let (value, next) = tlv(rest);
        out.push(value.iter().skip_while(|b| **b == 0).copied().collect());
        rest = next;
    }
    out
}

/// `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }` (RFC 8017 A.1.1).
fn rsa_public_parts(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut v = integers(der, 2);
    let e = v.pop().unwrap();
    (v.pop().unwrap(), e)
}

/// RSASSA-PKCS1-v1_5 with SHA-1 (RFC 8017 8.2.1, 9.2), by the private key's
/// exponent: SNS's SignatureVersion 1, which the crypto crates refuse to sign.
fn sign_sha1(pair: &RsaKeyPair, message: &[u8]) -> Vec<u8> {
    use num_bigint::BigUint;
    use sha1::Digest;
    // RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, privateExponent, … }
    let parts = integers(&pkcs1_private(pair), 4);
    let (n, d) = (BigUint::from_bytes_be(&parts[1]), BigUint::from_bytes_be(&parts[3]));
    let k = pair.public_modulus_len();
    let digest_info: &[u8] = &[
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];
    let mut t = digest_info.to_vec();
    t.extend_from_slice(&sha1::Sha1::digest(message));
    let mut em = vec![0x00, 0x01];
    em.resize(k - t.len() - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&t);
    let s = BigUint::from_bytes_be(&em).modpow(&d, &n).to_bytes_be();
    let mut out = vec![0; k - s.len()];
    out.extend_from_slice(&s);
    out
}

/// A location fetched by a plain GET, for parsing what it serves.
fn get(kind: KeyKind) -> KeyLocation {
    KeyLocation {
        url: "https://keys.example.com/".into(),
        kind,
        request: None,
    }
}

fn jwks(keys: &[serde_json::Value]) -> FetchedKeys {
    parse_keys(
        &get(KeyKind::Jwks),
        serde_json::json!({ "keys": keys }).to_string().as_bytes(),
    )
    .unwrap()
}

fn token(
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
    kid: &str,
    claims: serde_json::Value,
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn claims(aud: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": "https://accounts.google.com", "aud": aud, "iat": NOW - 10, "exp": NOW + 3590,
        "email": "pubsub@project.iam.gserviceaccount.com", "email_verified": true,
    })
}

fn bearer(t: &str) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {t}"))]
}

#[test]
fn a_pubsub_style_token_verifies_and_a_changed_one_does_not() {
    let spec = jwt_spec("");
    let ec = ec_key();
    let keys = jwks(std::slice::from_ref(&ec.jwk));
    let good = token(&ec.encoding, jsonwebtoken::Algorithm::ES256, "ec1", claims(URL));
    let check =
        |headers: Vec<(&str, String)>| verify_fetched(&spec, request(&headers, "{}"), &keys, &[], NOW).map(|_| ());
    assert_eq!(check(bearer(&good)), Ok(()));
    assert_eq!(check(vec![]), Err(VerifyError::MissingHeader("Authorization".into())));
    // Another audience: a token minted for someone else's endpoint.
    let other = token(
        &ec.encoding,
        jsonwebtoken::Algorithm::ES256,
        "ec1",
        claims("https://evil.example/"),
    );
    assert_eq!(check(bearer(&other)), Err(VerifyError::ClaimRefused));
    // Another issuer.
    let mut c = claims(URL);
    c["iss"] = "https://issuer.example".into();
    let wrong_issuer = token(&ec.encoding, jsonwebtoken::Algorithm::ES256, "ec1", c);
    assert_eq!(check(bearer(&wrong_issuer)), Err(VerifyError::ClaimRefused));
    // Expired, past the leeway.
    let mut c = claims(URL);
    c["exp"] = (NOW - 120).into();
    let expired = token(&ec.encoding, jsonwebtoken::Algorithm::ES256, "ec1", c);
    assert_eq!(check(bearer(&expired)), Err(VerifyError::Expired));
    // Signed by a key that is not published, under the published kid.
    let stranger = ec_key();
    let forged = token(&stranger.encoding, jsonwebtoken::Algorithm::ES256, "ec1", claims(URL));
    assert_eq!(check(bearer(&forged)), Err(VerifyError::Mismatch));
    // A kid the set does not have: the caller may fetch the set again (rotation).
    let unknown = token(&ec.encoding, jsonwebtoken::Algorithm::ES256, "ec2", claims(URL));
    assert_eq!(check(bearer(&unknown)), Err(VerifyError::UnknownKey));
    // A tampered payload.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut c = claims(URL);
    c["email"] = "someone@else.example".into();
    parts[1] = B64URL.encode(c.to_string());
    assert_eq!(check(bearer(&parts.join("."))), Err(VerifyError::Mismatch));
}

#[test]
fn an_rs256_token_verifies_with_a_published_rsa_key() {
    let spec = jwt_spec("");
    let (pair, n, e) = rsa_key();
    let jwk =
        serde_json::json!({"kty": "RSA", "kid": "r1", "alg": "RS256", "n": B64URL.encode(n), "e": B64URL.encode(e)});
    let keys = jwks(&[ec_key().jwk, jwk]);
    let encoding = jsonwebtoken::EncodingKey::from_rsa_der(pkcs1_private(&pair).as_slice());
    let t = token(&encoding, jsonwebtoken::Algorithm::RS256, "r1", claims(URL));
    assert_eq!(
        verify_fetched(&spec, request(&bearer(&t), "{}"), &keys, &[], NOW).map(|_| ()),
        Ok(())
    );
    // An algorithm the connector does not accept is refused before any key is tried.
    let only_es = spec_with_algorithms("[\"ES256\"]");
    assert_eq!(
        verify_fetched(&only_es, request(&bearer(&t), "{}"), &keys, &[], NOW).map(|_| ()),
        Err(VerifyError::Malformed)
    );
}

fn spec_with_algorithms(list: &str) -> SignatureSpec {
    spec(&format!(
        "[signature]\nscheme = \"jwt\"\nheader = \"Authorization\"\nprefix = \"Bearer \"\njwks_url = \"https://keys.example/jwks\"\nalgorithms = {list}\n"
    ))
}

/// The PKCS#1 private key inside a PKCS#8 document (jsonwebtoken's RSA DER input).
fn pkcs1_private(pair: &RsaKeyPair) -> Vec<u8> {
    let pkcs8 = pair.as_der().unwrap();
    let doc = pkcs8.as_ref();
    // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING }: the
    // OCTET STRING is the last element.
    let (info, _) = tlv(doc);
    let (_version, rest) = tlv(info);
    let (_algorithm, rest) = tlv(rest);
    let (key, _) = tlv(rest);
    key.to_vec()
}

#[test]
fn the_account_can_name_the_audiences_and_a_body_hash_claim_binds_the_body() {
    let spec = jwt_spec("audience = \"account\"\nbody_sha256_claim = \"request_body_sha256\"\nmax_age_secs = 300");
    let ec = ec_key();
    let keys = jwks(std::slice::from_ref(&ec.jwk));
    let body = r#"{"webhook_type":"TRANSACTIONS"}"#;
    use sha2::Digest;
    let mut c = claims("my-audience");
    c["request_body_sha256"] = hex::encode(sha2::Sha256::digest(body.as_bytes())).into();
    let t = token(&ec.encoding, jsonwebtoken::Algorithm::ES256, "ec1", c.clone());
    let check = |body: &str, audiences: &[&str], now: i64| {
        verify_fetched(&spec, request(&bearer(&t), body), &keys, audiences, now).map(|_| ())
    };
    assert_eq!(check(body, &["other", "my-audience"], NOW), Ok(()));
    assert_eq!(check(body, &["other"], NOW), Err(VerifyError::ClaimRefused));
    assert_eq!(check(body, &[], NOW), Err(VerifyError::NoSecret));
    assert_eq!(
        check(r#"{"webhook_type":"AUTH"}"#, &["my-audience"], NOW),
        Err(VerifyError::Mismatch)
    );
    // Older than max_age_secs (and the leeway): refused although `exp` is still ahead.
    assert_eq!(
        check(body, &["my-audience"], NOW + 400),
        Err(VerifyError::OutOfTolerance(300))
    );
}

fn sns_spec() -> SignatureSpec {
    spec(
        r#"[signature]
scheme = "x509"
cert_url = { json = "SigningCertURL" }
cert_hosts = ["sns.*.amazonaws.com", "localhost"]
signature = { json = "Signature" }
algorithm = { field = { json = "SignatureVersion" }, values = { "1" = "rsa-sha1", "2" = "rsa-sha256" } }
message = { json_lines = ["Message", "MessageId", "SubscribeURL", "Subject", "Timestamp", "Token", "TopicArn", "Type"] }
"#,
    )
}

/// An RSA key and a self-signed certificate for it, PEM.
fn certificate() -> (RsaKeyPair, String) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8 = pair.as_der().unwrap();
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_ref().into(), &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sns.us-east-1.amazonaws.com".to_string()])
        .unwrap()
        .self_signed(&signer)
        .unwrap();
    (pair, cert.pem())
}

/// An SNS notification as SNS sends it, signed with `pair` (SignatureVersion `version`).
fn sns_notification(pair: &RsaKeyPair, version: &str, cert_url: &str) -> serde_json::Value {
    let mut msg = serde_json::json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Subject": "My First Message",
        "Message": "Hello world!",
        "Timestamp": "2025-12-06T05:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0",
    });
    let mut signed = String::new();
    for name in ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"] {
        signed.push_str(&format!("{name}\n{}\n", msg[name].as_str().unwrap()));
    }
    let sig = if version == "1" {
        sign_sha1(pair, signed.as_bytes())
    } else {
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut sig)
            .unwrap();
        sig
    };
    msg["Signature"] = B64.encode(sig).into();
    msg
}

const CERT_URL: &str = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem";

#[test]
fn an_sns_notification_verifies_with_its_certificate_in_both_signature_versions() {
    let spec = sns_spec();
    let (pair, pem) = certificate();
    let cert = parse_keys(&get(KeyKind::Certificate), pem.as_bytes()).unwrap();
    for version in ["1", "2"] {
        let msg = sns_notification(&pair, version, CERT_URL);
        let raw = request(&[], &msg.to_string());
        let location = key_location(&spec, &raw, &[]).unwrap().unwrap();
        assert_eq!((location.url.as_str(), location.kind), (CERT_URL, KeyKind::Certificate));
        assert_eq!(
            verify_fetched(&spec, raw, &cert, &[], NOW).map(|_| ()),
            Ok(()),
            "version {version}"
        );

        let mut tampered = msg.clone();
        tampered["Message"] = "Hello mallory!".into();
        assert_eq!(
            verify_fetched(&spec, request(&[], &tampered.to_string()), &cert, &[], NOW).map(|_| ()),
            Err(VerifyError::Mismatch)
        );
        let mut unknown_version = msg.clone();
        unknown_version["SignatureVersion"] = "3".into();
        assert_eq!(
            verify_fetched(&spec, request(&[], &unknown_version.to_string()), &cert, &[], NOW).map(|_| ()),
            Err(VerifyError::Malformed)
        );
    }
    // Signed by another key than the certificate's.
    let (other, _) = certificate();
    let forged = sns_notification(&other, "2", CERT_URL);
    assert_eq!(
        verify_fetched(&spec, request(&[], &forged.to_string()), &cert, &[], NOW).map(|_| ()),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn a_certificate_url_off_the_allow_list_is_refused_before_any_fetch() {
    let spec = sns_spec();
    let (pair, _) = certificate();
    for url in [
        "https://sns.us-west-2.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-west-2.amazonaws.com/cert.pem",
        "http://sns.us-west-2.amazonaws.com/cert.pem",
        "https://user:pw@sns.us-west-2.amazonaws.com/cert.pem",
        "https://sns.a.b.amazonaws.com/cert.pem",
        "not a url",
    ] {
        let raw = request(&[], &sns_notification(&pair, "2", url).to_string());
        assert_eq!(
            key_location(&spec, &raw, &[]),
            Err(VerifyError::KeyHostNotAllowed),
            "{url}"
        );
    }
    let no_url = request(&[], r#"{"Type":"Notification","Message":"x"}"#);
    assert!(matches!(
        key_location(&spec, &no_url, &[]),
        Err(VerifyError::MissingHeader(_))
    ));
}

#[test]
fn host_patterns_match_one_label_per_star() {
    assert!(host_matches("sns.*.amazonaws.com", "sns.eu-west-1.amazonaws.com"));
    assert!(host_matches("sns.*.amazonaws.com", "SNS.EU-WEST-1.amazonaws.com"));
    assert!(!host_matches("sns.*.amazonaws.com", "sns.amazonaws.com"));
    assert!(!host_matches("sns.*.amazonaws.com", "sns..amazonaws.com"));
    assert!(!host_matches("api.paypal.com", "api.paypal.com.evil.example"));
    assert!(allowed_https_host(
        "https://localhost:8443/k.pem",
        &["localhost".into()]
    ));
}

/// AWS's SDK validators take a signing certificate only at
/// `/SimpleNotificationService-<hex>.pem` (e.g. the SNS docs' example
/// `https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem`,
/// https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html).
#[test]
fn certificate_paths_match_their_pattern() {
    let p = "/SimpleNotificationService-*.pem";
    assert!(path_matches(
        p,
        "/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
    ));
    assert!(path_matches("/a*b*.pem", "/a1b2b3.pem"), "backtracks");
    for path in [
        "/SimpleNotificationService-.pem",
        "/SimpleNotificationService-abc.pem.exe",
        "/SimpleNotificationService-ab/c.pem",
        "/SimpleNotificationService-ab%2Fc.pem",
        "/SimpleNotificationService-a.b.pem",
        "/x/SimpleNotificationService-abc.pem",
        "/simplenotificationservice-abc.pem",
        "/evil.pem",
    ] {
        assert!(!path_matches(p, path), "{path}");
    }
    assert!(url_path_matches(
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        p
    ));
    assert!(!url_path_matches(
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3.pem?x=1",
        p
    ));

    // The shipped SNS file refuses a foreign path on an allowed host, before any fetch.
    let catalog =
        crate::catalog::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    let spec = catalog.get("aws_sns").unwrap().signature.clone();
    let (pair, _, _) = rsa_key();
    let good = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem";
    let raw = request(&[], &sns_notification(&pair, "2", good).to_string());
    assert!(matches!(key_location(&spec, &raw, &[]), Ok(Some(_))));
    let foreign = "https://sns.us-west-2.amazonaws.com/uploads/evil.pem";
    let raw = request(&[], &sns_notification(&pair, "2", foreign).to_string());
    assert_eq!(key_location(&spec, &raw, &[]), Err(VerifyError::KeyHostNotAllowed));
}

#[test]
fn bytes_that_are_no_keys_are_reported() {
    assert!(parse_keys(&get(KeyKind::Jwks), b"<html>").is_err());
    assert!(parse_keys(
        &get(KeyKind::Certificate),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    .is_err());
}

/// PayPal's construction (https://developer.paypal.com/api/rest/webhooks/rest/):
/// `transmission id|transmission time|webhook id|crc32(body)`, SHA256withRSA, the
/// certificate named by a header; the webhook id is the account's secret.
#[test]
fn a_paypal_delivery_verifies_with_the_webhook_id_as_the_account_secret() {
    let catalog =
        crate::catalog::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    let spec = &catalog.get("paypal").unwrap().signature;
    let (pair, pem) = certificate();
    let cert = parse_keys(&get(KeyKind::Certificate), pem.as_bytes()).unwrap();
    let body = r#"{"id":"WH-2WR32451HC0233532-67976317FL4543714","event_type":"PAYMENT.CAPTURE.COMPLETED"}"#;
    let (id, time, webhook_id) = (
        "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
        "2026-12-07T06:10:42Z",
        "1JE4291016473214C",
    );
    let signed = format!("{id}|{time}|{webhook_id}|{}", crc32fast::hash(body.as_bytes()));
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut sig)
        .unwrap();
    let cert_url = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270";
    let headers = |algo: &str| {
        vec![
            ("PAYPAL-TRANSMISSION-ID", id.to_string()),
            ("PAYPAL-TRANSMISSION-TIME", time.to_string()),
            ("PAYPAL-TRANSMISSION-SIG", B64.encode(&sig)),
            ("PAYPAL-AUTH-ALGO", algo.to_string()),
            ("PAYPAL-CERT-URL", cert_url.to_string()),
        ]
    };
    let raw = request(&headers("SHA256withRSA"), body);
    assert_eq!(key_location(spec, &raw, &[]).unwrap().unwrap().url, cert_url);
    let check = |raw: RawWebhook, secrets: &[&str]| verify_fetched(spec, raw, &cert, secrets, NOW).map(|_| ());
    assert_eq!(
        check(request(&headers("SHA256withRSA"), body), &["other-webhook", webhook_id]),
        Ok(())
    );
    assert_eq!(
        check(request(&headers("SHA256withRSA"), body), &["other-webhook"]),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        check(request(&headers("SHA256withRSA"), body), &[]),
        Err(VerifyError::NoSecret)
    );
    let tampered = body.replace("COMPLETED", "DENIED");
    assert_eq!(
        check(request(&headers("SHA256withRSA"), &tampered), &[webhook_id]),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        check(request(&headers("SHA1withRSA"), body), &[webhook_id]),
        Err(VerifyError::Malformed)
    );
    let mut foreign = headers("SHA256withRSA");
    foreign[4].1 = "https://api.paypal.com.evil.example/cert".into();
    assert_eq!(
        key_location(spec, &request(&foreign, body), &[]),
        Err(VerifyError::KeyHostNotAllowed)
    );
}

/// monday.com's app requests (https://developer.monday.com/apps/docs/authorization-header):
/// an HS256 token keyed with the app's signing secret, `aud` the endpoint.
#[test]
fn an_hs256_token_is_keyed_by_the_account_secrets() {
    let catalog =
        crate::catalog::Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
    let spec = &catalog.get("monday").unwrap().signature;
    assert!(!spec.fetches_keys());
    let secret = "monday-signing-secret";
    let sign = |key: &str, claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    };
    let claims = serde_json::json!({"accountId": 1825528, "userId": 4012689, "aud": URL, "exp": NOW + 300, "iat": NOW - 5, "shortLivedToken": "x"});
    let check = |token: String, secrets: &[&str]| {
        super::verify(spec, request(&[("Authorization", token)], "{}"), secrets, NOW).map(|_| ())
    };
    assert_eq!(check(sign(secret, claims.clone()), &["old-secret", secret]), Ok(()));
    assert_eq!(
        check(sign("guessed", claims.clone()), &[secret]),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(check(sign(secret, claims.clone()), &[]), Err(VerifyError::NoSecret));
    let mut elsewhere = claims.clone();
    elsewhere["aud"] = "https://other.example/endpoint".into();
    assert_eq!(
        check(sign(secret, elsewhere), &[secret]),
        Err(VerifyError::ClaimRefused)
    );
    let mut expired = claims;
    expired["exp"] = (NOW - 600).into();
    assert_eq!(check(sign(secret, expired), &[secret]), Err(VerifyError::Expired));
}

#[test]
fn a_jwt_scheme_may_not_mix_public_keys_and_shared_secrets() {
    let text = "name = \"mixed\"\ntitle = \"M\"\n[signature]\nscheme = \"jwt\"\nheader = \"Authorization\"\njwks_url = \"https://keys.example/jwks\"\nalgorithms = [\"RS256\", \"HS256\"]\n[event]\nid = { json = \"id\" }\ntype = { json = \"type\" }\n";
    let errors = crate::catalog::Catalog::from_sources(vec![("mixed.toml".into(), text.into())]).unwrap_err();
    assert!(errors.to_string().contains("only RS*/ES*"), "{errors}");
}
