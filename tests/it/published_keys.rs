//! Schemes whose keys the provider publishes, end to end on the real servers: an SNS-style
//! `x509` connector and a `jwt` one, their keys served over real TLS by a key host on
//! loopback (its certificate trusted through `ingress.key_fetch_ca_file`). The key
//! host can be taken down (connections refused at once) and brought back.
//!
//! What must hold: with the host down and nothing cached, 503 with Retry-After (never
//! 2xx, never 401), then accepted once it is back; keys fetched once and reused; a
//! certificate URL on a host the connector does not allow refused (401) with nothing
//! fetched; an SNS subscription confirmed by a GET of its `SubscribeURL`; a rotated
//! JWKS fetched again when a token names a new key; a Plaid-style key asked for by its
//! id with the account's credentials, once per id.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use serde_json::{json, Value};
use switchyard_tests::{shared, wait_until};
use tokio::net::TcpListener;

use crate::pipeline::{config_for, Pipeline, Receiver};

const PUBLIC: &str = "https://hooks.example.test";

/// A TLS server for `localhost` on loopback serving fixed files, that can refuse every
/// connection (down) and counts the GETs of each path.
struct KeyHost {
    port: u16,
    up: Arc<AtomicBool>,
    files: Arc<Mutex<HashMap<String, String>>>,
    gets: Arc<Mutex<HashMap<String, usize>>>,
    posts: Arc<Mutex<Vec<Post>>>,
    ca_pem: String,
}

/// A POST the key host received: its path, headers (lower-case names) and JSON body.
#[derive(Clone, Debug)]
struct Post {
    path: String,
    headers: HashMap<String, String>,
    body: Value,
}

impl KeyHost {
    async fn start() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let host = Self {
            port,
            up: Arc::new(AtomicBool::new(true)),
            files: Arc::default(),
            gets: Arc::default(),
            posts: Arc::default(),
            ca_pem: cert.pem(),
        };
        let (up, files, gets, posts) = (
            host.up.clone(),
            host.files.clone(),
            host.gets.clone(),
            host.posts.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                if !up.load(Ordering::SeqCst) {
                    drop(tcp); // down: the connection is closed before TLS
                    continue;
                }
                let (acceptor, files, gets, posts) = (acceptor.clone(), files.clone(), gets.clone(), posts.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (files, gets, posts) = (files.clone(), gets.clone(), posts.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            // A GET serves `files[path]`; a POST of `{"key_id": K}` serves
                            // `files["<path>#K"]` (a key asked for by its id).
                            let body = if req.method() == hyper::Method::POST {
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                                    .collect();
                                let bytes = http_body_util::BodyExt::collect(req.into_body())
                                    .await
                                    .unwrap()
                                    .to_bytes();
                                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                                let kid = body["key_id"].as_str().unwrap_or("").to_string();
                                posts.lock().unwrap().push(Post {
                                    path: path.clone(),
                                    headers,
                                    body,
                                });
                                files.lock().unwrap().get(&format!("{path}#{kid}")).cloned()
                            } else {
                                *gets.lock().unwrap().entry(path.clone()).or_default() += 1;
                                files.lock().unwrap().get(&path).cloned()
                            };
                            let (status, body) = match body {
                                Some(b) => (200, b),
                                None => (404, String::new()),
                            };
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("cache-control", "public, max-age=3600")
                                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        host
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn serve(&self, path: &str, body: String) {
        self.files.lock().unwrap().insert(path.into(), body);
    }

    fn gets(&self, path: &str) -> usize {
        self.gets.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}

/// Where the test key host serves its certificate: a path the shipped `cert_path` accepts.
const CERT_PATH: &str = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

/// A catalog with the shipped unified models and the test connectors, written from the
/// shipped `aws_sns` file with `localhost` as its only allowed host.
fn catalog(dir: &Path, jwks_url: &str) -> std::path::PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors");
    let unified = dir.join("unified");
    std::fs::create_dir_all(&unified).unwrap();
    for e in std::fs::read_dir(shipped.join("unified")).unwrap().flatten() {
        std::fs::copy(e.path(), unified.join(e.file_name())).unwrap();
    }
    let catalog = dir.join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    let sns = std::fs::read_to_string(shipped.join("catalog/aws_sns.toml"))
        .unwrap()
        .replace("name = \"aws_sns\"", "name = \"sns_test\"")
        .replace(
            r#"["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"]"#,
            r#"["localhost"]"#,
        );
    assert_eq!(sns.matches("[\"localhost\"]").count(), 2, "both allow-lists rewritten");
    std::fs::write(catalog.join("sns_test.toml"), sns).unwrap();
    let jwt = format!(
        r#"name = "jwt_test"
title = "A JWT-signed provider"
unmapped = "pass_through"

[signature]
scheme = "jwt"
header = "Authorization"
prefix = "Bearer "
jwks_url = "{jwks_url}"
algorithms = ["ES256"]
issuers = ["https://issuer.example.test"]

[event]
id = {{ json = "id" }}
type = {{ json = "type" }}
"#
    );
    std::fs::write(catalog.join("jwt_test.toml"), jwt).unwrap();
    catalog
}

/// An RSA key and its self-signed certificate (PEM), as SNS publishes its own.
fn signing_certificate() -> (RsaKeyPair, String) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8 = pair.as_der().unwrap();
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_ref().into(), &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sns.us-east-1.amazonaws.com".to_string()])
        .unwrap()
        .self_signed(&signer)
        .unwrap();
    (pair, cert.pem())
}

/// An SNS message of `fields`, signed as SNS signs SignatureVersion 2.
fn sns_message(pair: &RsaKeyPair, mut msg: Value, cert_url: &str) -> String {
    msg["SignatureVersion"] = "2".into();
    msg["SigningCertURL"] = cert_url.into();
    let mut signed = String::new();
    for name in [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Subject",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ] {
        if let Some(v) = msg.get(name).and_then(Value::as_str) {
            signed.push_str(&format!("{name}\n{v}\n"));
        }
    }
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut sig)
        .unwrap();
    msg["Signature"] = B64.encode(sig).into();
    msg.to_string()
}

fn notification(id: &str) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
        "Subject": "order",
        "Message": "{\"order\":42}",
        "Timestamp": "2026-12-07T06:00:00.000Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    })
}

async fn post(p: &Pipeline, path: &str, headers: &[(String, String)], body: &str) -> (u16, Option<String>, Value) {
    let (status, h, answer) = p.post_webhook(path, headers, body).await;
    let retry_after = h.get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, retry_after, answer)
}

/// With the key host down and nothing cached, `body` is answered 503 with Retry-After;
/// once the host is back, the provider's retry is accepted (after the remembered failure
/// passes).
async fn down_then_back(host: &KeyHost, p: &Pipeline, path: &str, headers: &[(String, String)], body: &str) {
    host.up.store(false, Ordering::SeqCst);
    let (status, retry_after, answer) = post(p, path, headers, body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("key_host_unavailable")),
        "{answer}"
    );
    assert!(retry_after.is_some(), "a 503 says when to retry");
    host.up.store(true, Ordering::SeqCst);
    wait_until("the retry to be accepted", Duration::from_secs(30), || async {
        post(p, path, headers, body).await.0 == 200
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_keys_are_fetched_once_and_their_host_being_down_is_a_503() {
    let servers = shared().await;
    let host = KeyHost::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("key-host-ca.pem");
    std::fs::write(&ca, &host.ca_pem).unwrap();
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "keys");
    config.catalog = catalog(tmp.path(), &host.url("/jwks.json"));
    config.ingress.key_fetch_ca_file = ca.to_string_lossy().into_owned();
    config.ingress.key_fetch_timeout_ms = 2000;
    config.ingress.public_url = PUBLIC.into();
    let p = Pipeline::start(config).await.unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_k", "sns_acct", "sns_test", "unused", &receiver.url, &["*"])
        .await;
    let (pair, cert_pem) = signing_certificate();
    let cert_pem_for_paths = cert_pem.clone();
    host.serve(CERT_PATH, cert_pem);
    let path = "/v1/webhooks/sns_test/sns_acct";

    let first = sns_message(&pair, notification("m-1"), &host.url(CERT_PATH));
    down_then_back(&host, &p, path, &[], &first).await;
    for i in 2..=4 {
        let m = sns_message(&pair, notification(&format!("m-{i}")), &host.url(CERT_PATH));
        assert_eq!(post(&p, path, &[], &m).await.0, 200);
    }
    assert_eq!(host.gets(CERT_PATH), 1, "the certificate is fetched once and kept");
    wait_until("four notifications delivered", Duration::from_secs(30), || async {
        receiver.all().len() >= 4
    })
    .await
    .unwrap();

    // Tampered: 401.
    let mut tampered: Value = serde_json::from_str(&first).unwrap();
    tampered["Message"] = "{\"order\":43}".into();
    assert_eq!(post(&p, path, &[], &tampered.to_string()).await.0, 401);

    // A certificate URL on a host the connector does not allow: 401, nothing fetched.
    let before = host.gets("/evil.pem");
    for url in [
        format!("https://127.0.0.1:{}/evil.pem", host.port),
        format!("http://localhost:{}/evil.pem", host.port),
    ] {
        let m = sns_message(&pair, notification("m-evil"), &url);
        let (status, _, answer) = post(&p, path, &[], &m).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some("key_host_not_allowed")),
            "{url}: {answer}"
        );
    }
    assert_eq!(host.gets("/evil.pem"), before, "nothing was fetched");
    // On an allowed host, a path other than SNS's certificate path is refused the same way.
    host.serve("/uploads/evil.pem", cert_pem_for_paths);
    let m = sns_message(&pair, notification("m-evil-path"), &host.url("/uploads/evil.pem"));
    let (status, _, answer) = post(&p, path, &[], &m).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("key_host_not_allowed")),
        "{answer}"
    );
    assert_eq!(host.gets("/uploads/evil.pem"), 0, "nothing was fetched");

    // A subscription is confirmed by a GET of its SubscribeURL, once the signature checks.
    host.serve("/confirm", "<ConfirmSubscriptionResponse/>".into());
    let confirmation = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "c-1",
        "Token": "2336412f37f",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
        "Message": "You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.",
        "SubscribeURL": host.url("/confirm?Action=ConfirmSubscription&Token=2336412f37f"),
        "Timestamp": "2026-12-07T06:00:00.000Z",
    });
    let signed = sns_message(&pair, confirmation.clone(), &host.url(CERT_PATH));
    assert_eq!(post(&p, path, &[], &signed).await.0, 200);
    assert_eq!(host.gets("/confirm"), 1, "the SubscribeURL was visited");
    // The same confirmation unsigned (or signed by someone else) visits nothing.
    let (stranger, _) = signing_certificate();
    let mut forged: Value = serde_json::from_str(&sns_message(&stranger, confirmation, &host.url(CERT_PATH))).unwrap();
    forged["MessageId"] = "c-2".into();
    assert_eq!(post(&p, path, &[], &forged.to_string()).await.0, 401);
    assert_eq!(host.gets("/confirm"), 1);
    p.stop().await;
}

/// A P-256 key as a JWK (with `kid`) and a signer of tokens.
fn ec_key(kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    let der = secret.to_pkcs8_der().unwrap();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
        "x": B64URL.encode(point.x().unwrap()), "y": B64URL.encode(point.y().unwrap()),
    });
    (jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()), jwk)
}

fn bearer(key: &jsonwebtoken::EncodingKey, kid: &str, aud: &str) -> Vec<(String, String)> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.into());
    let claims = json!({"iss": "https://issuer.example.test", "aud": aud, "iat": now, "exp": now + 600});
    let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    vec![("Authorization".into(), format!("Bearer {token}"))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_provider_rotating_its_keys_is_followed() {
    let servers = shared().await;
    let host = KeyHost::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("key-host-ca.pem");
    std::fs::write(&ca, &host.ca_pem).unwrap();
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "jwks");
    config.catalog = catalog(tmp.path(), &host.url("/jwks.json"));
    config.ingress.key_fetch_ca_file = ca.to_string_lossy().into_owned();
    config.ingress.public_url = PUBLIC.into();
    let p = Pipeline::start(config).await.unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_j", "jwt_acct", "jwt_test", "unused", &receiver.url, &["*"])
        .await;
    let path = "/v1/webhooks/jwt_test/jwt_acct";
    let aud = format!("{PUBLIC}{path}");
    let (k1, jwk1) = ec_key("k1");
    host.serve("/jwks.json", json!({"keys": [jwk1.clone()]}).to_string());

    let body = |id: &str| json!({"id": id, "type": "thing.happened"}).to_string();
    assert_eq!(post(&p, path, &bearer(&k1, "k1", &aud), &body("e1")).await.0, 200);
    // Minted for another endpoint: refused.
    let (status, _, answer) = post(&p, path, &bearer(&k1, "k1", "https://elsewhere.example/"), &body("e2")).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("claim_refused")),
        "{answer}"
    );

    // The provider rotates: a token under a new kid makes the ingress fetch the set again.
    let (k2, jwk2) = ec_key("k2");
    host.serve("/jwks.json", json!({"keys": [jwk1, jwk2]}).to_string());
    // The set is asked for again at most once per ten seconds; until then the token is
    // refused as naming an unknown key, and then it is accepted.
    wait_until(
        "a token under the new key to be accepted",
        Duration::from_secs(40),
        || async { post(&p, path, &bearer(&k2, "k2", &aud), &body("e3")).await.0 == 200 },
    )
    .await
    .unwrap();
    assert_eq!(host.gets("/jwks.json"), 2, "one fetch more for the rotation");
    wait_until("the first event delivered", Duration::from_secs(30), || async {
        !receiver.all().is_empty()
    })
    .await
    .unwrap();
    p.stop().await;
}

/// The shipped Plaid connector, its key request pointed at the test key host.
fn plaid_catalog(dir: &Path, key_url: &str) -> std::path::PathBuf {
    let catalog = catalog(dir, "https://unused.example/jwks.json");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog/plaid.toml");
    let plaid = std::fs::read_to_string(shipped)
        .unwrap()
        .replace("name = \"plaid\"", "name = \"plaid_test\"");
    let shipped_url = "https://production.plaid.com/webhook_verification_key/get";
    assert!(plaid.contains(shipped_url));
    std::fs::write(catalog.join("plaid_test.toml"), plaid.replace(shipped_url, key_url)).unwrap();
    catalog
}

/// A body signed as Plaid signs it: ES256, `kid`, `iat`, the body's SHA-256.
fn plaid_verification(key: &jsonwebtoken::EncodingKey, kid: &str, body: &str) -> Vec<(String, String)> {
    use sha2::Digest;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.into());
    let claims = json!({
        "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        "request_body_sha256": hex::encode(sha2::Sha256::digest(body.as_bytes())),
    });
    let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    vec![("Plaid-Verification".into(), token)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaid_key_is_asked_for_by_its_id_with_the_accounts_credentials() {
    let servers = shared().await;
    let host = KeyHost::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("key-host-ca.pem");
    std::fs::write(&ca, &host.ca_pem).unwrap();
    let key_path = "/webhook_verification_key/get";
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "plaid");
    config.catalog = plaid_catalog(tmp.path(), &host.url(key_path));
    config.ingress.key_fetch_ca_file = ca.to_string_lossy().into_owned();
    config.ingress.key_fetch_timeout_ms = 2000;
    config.ingress.public_url = PUBLIC.into();
    let p = Pipeline::start(config).await.unwrap();
    let receiver = Receiver::start().await;
    let credentials = "5f1a2b3c4d5e6f7a8b9c0d1e:0123456789abcdef0123456789abcd";
    p.register(
        "tenant_p",
        "plaid_acct",
        "plaid_test",
        credentials,
        &receiver.url,
        &["*"],
    )
    .await;
    let path = "/v1/webhooks/plaid_test/plaid_acct";
    let kid = "bfbd5111-8e33-4643-8ced-b2e642a72f3c";
    let (key, mut jwk) = ec_key(kid);
    jwk["use"] = "sig".into();
    jwk["created_at"] = 1_560_466_143.into();
    jwk["expired_at"] = Value::Null;
    host.serve(
        &format!("{key_path}#{kid}"),
        json!({"key": jwk, "request_id": "RZ6Omi1bzzwDaLo"}).to_string(),
    );
    // Plaid's documented SYNC_UPDATES_AVAILABLE body, with one value ours per event.
    let body = |item: &str| {
        json!({
            "webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
            "item_id": item, "initial_update_complete": true,
            "historical_update_complete": false, "environment": "production",
        })
        .to_string()
    };

    let first = body("wz666MBjYWTp2PDzzggYhM6oWWmBb");
    down_then_back(&host, &p, path, &plaid_verification(&key, kid, &first), &first).await;
    // The key was asked for once, with the account's credentials.
    let second = body("item-2");
    assert_eq!(
        post(&p, path, &plaid_verification(&key, kid, &second), &second).await.0,
        200
    );
    let asked = host.posts();
    assert_eq!(asked.len(), 1, "the key is asked for once and kept: {asked:?}");
    assert_eq!(asked[0].path, key_path);
    assert_eq!(asked[0].body, json!({"key_id": kid}));
    assert_eq!(
        asked[0].headers.get("plaid-client-id").map(String::as_str),
        Some("5f1a2b3c4d5e6f7a8b9c0d1e")
    );
    assert_eq!(
        asked[0].headers.get("plaid-secret").map(String::as_str),
        Some("0123456789abcdef0123456789abcd")
    );

    // A body changed after signing: 401.
    let signed = plaid_verification(&key, kid, &body("item-3"));
    let (status, _, answer) = post(&p, path, &signed, &body("item-4")).await;
    assert_eq!(status, 401, "{answer}");
    // A token under a key id Plaid does not know (it answers 400): 503, never 2xx.
    let (stranger, _) = ec_key("made-up-kid");
    let third = body("item-5");
    let (status, _, answer) = post(&p, path, &plaid_verification(&stranger, "made-up-kid", &third), &third).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("key_host_unavailable")),
        "{answer}"
    );

    wait_until("two events delivered", Duration::from_secs(30), || async {
        receiver.all().len() >= 2
    })
    .await
    .unwrap();
    let types: Vec<String> = receiver
        .all()
        .iter()
        .filter_map(|d| serde_json::from_slice::<Value>(&d.body).ok())
        .filter_map(|v| v["type"].as_str().map(str::to_string))
        .collect();
    assert!(
        types
            .iter()
            .all(|t| t == "plaid_test.TRANSACTIONS.SYNC_UPDATES_AVAILABLE"),
        "{types:?}"
    );
    p.stop().await;
}
