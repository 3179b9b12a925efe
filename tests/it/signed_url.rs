//! Providers that sign the URL they called (Square, Twilio, HubSpot v3), signed as they
//! sign it: over `https://hooks.example.test/…`, the URL in front of the TLS-terminating
//! proxy, while the ingress itself is reached over plain HTTP on loopback. The ingress
//! must check the signature over `ingress.public_url` + the path as received, or over a
//! trusted proxy's forwarded headers, and never over what an untrusted peer claims.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::Mac;
use switchyard_tests::shared;

use crate::pipeline::{config_for, Pipeline};

const PUBLIC: &str = "https://hooks.example.test";

fn hmac_b64<M: Mac + hmac::digest::KeyInit>(key: &str, message: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Square: base64 HMAC-SHA256 of notification URL + body
/// (https://developer.squareup.com/docs/webhooks/step3validate).
fn square(url: &str, body: &str) -> Vec<(String, String)> {
    vec![(
        "x-square-hmacsha256-signature".into(),
        hmac_b64::<hmac::Hmac<sha2::Sha256>>("sq-signature-key", &format!("{url}{body}")),
    )]
}

/// Twilio: base64 HMAC-SHA1 of URL + params sorted by name, name and value run together
/// (https://www.twilio.com/docs/usage/webhooks/webhooks-security).
fn twilio(url: &str, params: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut sorted = params.to_vec();
    sorted.sort();
    let signed: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
    vec![
        (
            "X-Twilio-Signature".into(),
            hmac_b64::<hmac::Hmac<sha1::Sha1>>("twilio-auth-token", &format!("{url}{signed}")),
        ),
        ("content-type".into(), "application/x-www-form-urlencoded".into()),
    ]
}

/// HubSpot v3: base64 HMAC-SHA256 of method + URI + body + timestamp (ms)
/// (https://developers.hubspot.com/docs/api/webhooks/validating-requests).
fn hubspot(url: &str, body: &str) -> Vec<(String, String)> {
    let ts = (time::OffsetDateTime::now_utc().unix_timestamp() * 1000).to_string();
    vec![
        (
            "X-HubSpot-Signature-v3".into(),
            hmac_b64::<hmac::Hmac<sha2::Sha256>>("hubspot-app-secret", &format!("POST{url}{body}{ts}")),
        ),
        ("X-HubSpot-Request-Timestamp".into(), ts),
    ]
}

fn form(params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn register_all(p: &Pipeline) {
    p.register(
        "t_sq",
        "acct_sq",
        "square",
        "sq-signature-key",
        "http://127.0.0.1:9/hook",
        &["*"],
    )
    .await;
    p.register(
        "t_tw",
        "acct_tw",
        "twilio",
        "twilio-auth-token",
        "http://127.0.0.1:9/hook",
        &["*"],
    )
    .await;
    p.register(
        "t_hs",
        "acct_hs",
        "hubspot",
        "hubspot-app-secret",
        "http://127.0.0.1:9/hook",
        &["*"],
    )
    .await;
}

/// Each URL-signing connector's request, signed over `base` + its path; the status.
async fn send_each(p: &Pipeline, base: &str, extra: &[(String, String)], round: u32) -> Vec<(&'static str, u16)> {
    let mut out = Vec::new();
    let path = "/v1/webhooks/square/acct_sq";
    let body = format!(
        r#"{{"merchant_id":"MLEFBHHSJGVHD","type":"customer.created","event_id":"ev-{round}","created_at":"2026-12-06T10:00:00Z","data":{{"type":"customer","id":"C1"}}}}"#
    );
    let mut h = square(&format!("{base}{path}"), &body);
    h.extend_from_slice(extra);
    out.push(("square", p.post_webhook(path, &h, &body).await.0));

    let path = "/v1/webhooks/twilio/acct_tw?tenant=a%20b";
    let sid = format!("SM{round:032}");
    let params = [
        ("MessageSid", sid.as_str()),
        ("SmsStatus", "received"),
        ("Body", "Hello"),
        ("From", "+14155550100"),
        ("To", "+14155550123"),
        ("AccountSid", "AC1"),
    ];
    let mut h = twilio(&format!("{base}{path}"), &params);
    h.extend_from_slice(extra);
    out.push(("twilio", p.post_webhook(path, &h, &form(&params)).await.0));

    let path = "/v1/webhooks/hubspot/acct_hs";
    let body = format!(
        r#"[{{"eventId":{round},"subscriptionId":7,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123}}]"#
    );
    let mut h = hubspot(&format!("{base}{path}"), &body);
    h.extend_from_slice(extra);
    out.push(("hubspot", p.post_webhook(path, &h, &body).await.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_signing_connectors_verify_over_the_public_https_url() {
    let servers = shared().await;
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "pubu");
    config.ingress.public_url = PUBLIC.into();
    let p = Pipeline::start(config).await.unwrap();
    register_all(&p).await;
    for (connector, status) in send_each(&p, PUBLIC, &[], 1).await {
        assert_eq!(status, 200, "{connector} signed over {PUBLIC}");
    }
    // Signed over the URL the ingress sees on its socket: not what the provider called.
    let inner = format!("http://{}", p.ingress);
    for (connector, status) in send_each(&p, &inner, &[], 2).await {
        assert_eq!(status, 401, "{connector} signed over {inner}");
    }
    p.stop().await;
}

/// Twilio callbacks set to GET: the parameters are in the query of the URL Twilio
/// signed, and nothing else is signed; the event is read from them. Stripe delivers by
/// POST only: a GET is 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_delivers_by_get_is_read_from_the_signed_query() {
    let servers = shared().await;
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "byget");
    config.ingress.public_url = PUBLIC.into();
    let p = Pipeline::start(config).await.unwrap();
    register_all(&p).await;
    let params = [
        ("MessageSid", "SM00000000000000000000000000000077"),
        ("SmsStatus", "received"),
        ("Body", "Hi"),
        ("AccountSid", "AC1"),
    ];
    let path = format!("/v1/webhooks/twilio/acct_tw?{}", form(&params));
    let headers = twilio(&format!("{PUBLIC}{path}"), &[]);
    let get = |path: String, headers: Vec<(String, String)>| {
        let mut r = p.http.get(format!("http://{}{path}", p.ingress));
        for (k, v) in &headers {
            r = r.header(k.as_str(), v.as_str());
        }
        r.send()
    };
    let r = get(path.clone(), headers.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A tampered query does not verify.
    let r = get(path.replace("Hi", "Hj"), headers).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = get("/v1/webhooks/stripe/acct_sq".into(), vec![]).await.unwrap();
    assert_eq!(r.status(), 405);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_count_from_a_trusted_proxy_and_from_nobody_else() {
    let forwarded = vec![
        ("x-forwarded-proto".to_string(), "https".to_string()),
        ("x-forwarded-host".to_string(), "hooks.example.test".to_string()),
    ];
    let servers = shared().await;

    // The test talks from 127.0.0.1: a trusted proxy here.
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "fwdt");
    config.ingress.trusted_proxies = vec!["127.0.0.0/8".into()];
    let p = Pipeline::start(config).await.unwrap();
    register_all(&p).await;
    for (connector, status) in send_each(&p, PUBLIC, &forwarded, 1).await {
        assert_eq!(status, 200, "{connector} behind a trusted proxy");
    }
    p.stop().await;

    // Only 10.0.0.0/8 is trusted: the same headers from 127.0.0.1 change nothing.
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "fwdu");
    config.ingress.trusted_proxies = vec!["10.0.0.0/8".into()];
    let p = Pipeline::start(config).await.unwrap();
    register_all(&p).await;
    for (connector, status) in send_each(&p, PUBLIC, &forwarded, 1).await {
        assert_eq!(status, 401, "{connector}: forwarded headers from an untrusted peer");
    }
    let own = format!("http://{}", p.ingress);
    for (connector, status) in send_each(&p, &own, &forwarded, 2).await {
        assert_eq!(status, 200, "{connector} over the Host it was sent to");
    }
    p.stop().await;
}
