//! Handshakes are answered by the ingress and store nothing; methods other than POST
//! are refused unless a handshake declares them.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use switchyard_tests::shared;

use crate::pipeline::{config_for, Pipeline, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_answered_and_store_nothing() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "hand"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register(
        "tenant_s",
        "team_1",
        "slack",
        "slack-signing-secret",
        &receiver.url,
        &["*"],
    )
    .await;
    p.register(
        "tenant_g",
        "sub_1",
        "microsoft_graph",
        "client-state-secret",
        &receiver.url,
        &["*"],
    )
    .await;

    // Slack: a signed url_verification gets its challenge back.
    let body = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"slack-signing-secret").unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let headers = vec![
        ("X-Slack-Signature".to_string(), sig),
        ("X-Slack-Request-Timestamp".to_string(), ts),
    ];
    let (status, _, answer) = p.post_webhook("/v1/webhooks/slack/team_1", &headers, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    // Unsigned, it is refused like any request.
    let (status, _, _) = p.post_webhook("/v1/webhooks/slack/team_1", &[], &body).await;
    assert_eq!(status, 401);

    // Microsoft Graph: the validation token comes back as text/plain.
    let r = p
        .http
        .post(format!(
            "http://{}/v1/webhooks/microsoft_graph/sub_1?validationToken=Validation%3A%20Testing",
            p.ingress
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "Validation: Testing");

    // Meta: the GET verification echoes hub.challenge only with the account's verify token.
    p.register("tenant_m", "waba_1", "meta", "meatyhamhock", &receiver.url, &["*"])
        .await;
    let verify = |token: &str| {
        format!(
            "http://{}/v1/webhooks/meta/waba_1?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}",
            p.ingress
        )
    };
    let r = p.http.get(verify("meatyhamhock")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let r = p.http.get(verify("guessed")).send().await.unwrap();
    assert_ne!(r.status().as_u16(), 200, "a wrong verify token is not answered");
    assert!(!r.text().await.unwrap().contains("1158201444"), "and echoes nothing");

    // GET where no handshake declares it: 405.
    let r = p
        .http
        .get(format!("http://{}/v1/webhooks/slack/team_1", p.ingress))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);

    nothing_stored_or_published(&p, "handshakes").await;
    p.stop().await;
}

/// Notion's one unsigned request: its verification token is kept for the operator,
/// nothing is stored or published, and once adopted the token verifies Notion's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_token_is_kept_for_the_operator_and_adopted() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "capture"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let (s, b) = p
        .admin(reqwest::Method::PUT, "/v1/tenants/tenant_n", Some(json!({"name": "N"})))
        .await;
    assert!(s.is_success(), "{b}");
    let (s, b) = p
        .admin(
            reqwest::Method::POST,
            "/v1/tenants/tenant_n/endpoints",
            Some(json!({"url": receiver.url, "event_types": ["*"]})),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{b}");
    // Registered before Notion sent anything: no secret yet.
    let (s, b) = p
        .admin(
            reqwest::Method::PUT,
            "/v1/accounts/ws_1",
            Some(json!({"tenant_id": "tenant_n", "connector": "notion"})),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{b}");

    // The request Notion sends once when the subscription is created
    // (https://developers.notion.com/reference/webhooks): unsigned.
    let token = "secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl";
    let handover = json!({ "verification_token": token }).to_string();
    let (status, _, answer) = p.post_webhook("/v1/webhooks/notion/ws_1", &[], &handover).await;
    assert_eq!(status, 200, "{answer}");
    // Anything else unsigned is refused as before.
    let other = json!({ "verification_token": "x", "type": "page.created" }).to_string();
    let (status, _, _) = p.post_webhook("/v1/webhooks/notion/ws_1", &[], &other).await;
    assert_eq!(status, 401);
    nothing_stored_or_published(&p, "a handed-over token").await;

    let (s, kept) = p.admin(reqwest::Method::GET, "/v1/accounts/ws_1/captured", None).await;
    assert_eq!(s.as_u16(), 200, "{kept}");
    assert_eq!(kept["data"][0]["value"], token, "{kept}");
    assert!(kept["data"][0]["captured_at"].is_string(), "{kept}");

    // Signed with the token (X-Notion-Signature: sha256=<hex HMAC of the body>).
    let event = json!({
        "id": "367cba44-b6f3-4c92-81e7-6a2e9659efd4",
        "timestamp": "2024-12-05T23:55:34.285Z",
        "workspace_id": "13950b26-c203-4f3b-b97d-93ec06319565",
        "type": "page.created",
        "attempt_number": 1,
        "entity": {"id": "153104cd-477e-809d-8dc4-ff2d96ae3090", "type": "page"}
    })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(event.as_bytes());
    let signed = vec![(
        "X-Notion-Signature".to_string(),
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
    )];
    let (status, _, _) = p.post_webhook("/v1/webhooks/notion/ws_1", &signed, &event).await;
    assert_eq!(status, 401, "not a secret of the account until adopted");

    let (s, account) = p
        .admin(reqwest::Method::POST, "/v1/accounts/ws_1/captured/adopt", None)
        .await;
    assert_eq!(s.as_u16(), 200, "{account}");
    assert_eq!(
        account["signing_secrets"].as_array().map(Vec::len),
        Some(1),
        "{account}"
    );
    assert!(
        !account.to_string().contains(token),
        "the account view never shows secrets"
    );
    let (s, kept) = p.admin(reqwest::Method::GET, "/v1/accounts/ws_1/captured", None).await;
    assert_eq!(
        (s.as_u16(), kept["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{kept}"
    );

    switchyard_tests::wait_until(
        "the adopted token verifies",
        std::time::Duration::from_secs(20),
        || async { p.post_webhook("/v1/webhooks/notion/ws_1", &signed, &event).await.0 == 200 },
    )
    .await
    .unwrap();
    switchyard_tests::wait_until("the event delivered", std::time::Duration::from_secs(20), || async {
        !receiver.all().is_empty()
    })
    .await
    .unwrap();
    let (s, _) = p
        .admin(reqwest::Method::POST, "/v1/accounts/ws_1/captured/adopt", None)
        .await;
    assert_eq!(s.as_u16(), 404, "nothing left to adopt");
    p.stop().await;
}

/// Trello creates a webhook, and Mandrill adds one, only once a HEAD on its URL is
/// answered 200 (https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/,
/// https://mandrill.zendesk.com/hc/en-us/articles/205583217). `head_check` answers it
/// empty, stores and publishes nothing, and counts it as a handshake; a connector that
/// declares no such handshake still refuses HEAD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_check_is_answered_200_and_stores_nothing() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "head"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register(
        "tenant_t",
        "board_1",
        "trello",
        "trello-app-secret",
        &receiver.url,
        &["*"],
    )
    .await;
    p.register(
        "tenant_m",
        "mandrill_1",
        "mandrill",
        "mandrill-key",
        &receiver.url,
        &["*"],
    )
    .await;
    p.register(
        "tenant_s",
        "team_1",
        "slack",
        "slack-signing-secret",
        &receiver.url,
        &["*"],
    )
    .await;

    for (path, connector) in [
        ("/v1/webhooks/trello/board_1", "trello"),
        ("/v1/webhooks/mandrill/mandrill_1", "mandrill"),
    ] {
        let r = p.http.head(format!("http://{}{path}", p.ingress)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{connector}");
        assert_eq!(r.bytes().await.unwrap().len(), 0, "{connector}: an empty answer");
        let counted = p
            .metric(
                p.ingress_ops,
                &format!(
                    "switchyard_ingress_requests_total{{connector=\"{connector}\",outcome=\"handshake\",status=\"200\"}}"
                ),
            )
            .await;
        assert_eq!(counted, Some(1.0), "{connector}: counted as a handshake");
    }
    // An account that does not exist is not confirmed.
    let r = p
        .http
        .head(format!("http://{}/v1/webhooks/trello/board_unknown", p.ingress))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // A connector without the handshake refuses HEAD like any other undeclared method.
    let r = p
        .http
        .head(format!("http://{}/v1/webhooks/slack/team_1", p.ingress))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);

    nothing_stored_or_published(&p, "a HEAD").await;
    p.stop().await;
}

/// Nothing reached the claim-check store or the raw stream: `what` (a handshake, a HEAD)
/// is answered by the ingress alone.
async fn nothing_stored_or_published(p: &Pipeline, what: &str) {
    assert!(
        p.claim_store().await.list("", 10).await.unwrap().is_empty(),
        "{what} stores nothing"
    );
    assert_eq!(
        p.stream_messages(&p.config.names().raw_stream()).await,
        0,
        "{what} publishes nothing"
    );
}

/// When a new Mandrill webhook's HEAD check fails, Mandrill POSTs `mandrill_events=[]`
/// signed with its published key `test-webhook`
/// (https://mandrill.zendesk.com/hc/en-us/articles/205583217). `test_key` answers it 200
/// and stores nothing; signed with neither that key nor the account's, it is a 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_request_signed_with_the_published_key_is_answered_and_stores_nothing() {
    let servers = shared().await;
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "testkey");
    config.ingress.public_url = "https://hooks.example.test".into();
    let p = Pipeline::start(config).await.unwrap();
    let receiver = Receiver::start().await;
    p.register(
        "tenant_m",
        "mandrill_1",
        "mandrill",
        "mandrill-key",
        &receiver.url,
        &["*"],
    )
    .await;
    let path = "/v1/webhooks/mandrill/mandrill_1";
    // Mandrill signs the URL it called, then each parameter's name and value.
    let signed_with = |key: &str| {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("https://hooks.example.test{path}mandrill_events[]").as_bytes());
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, mac.finalize().into_bytes())
    };
    let post = |signature: String| {
        p.http
            .post(format!("http://{}{path}", p.ingress))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Mandrill-Signature", signature)
            .body("mandrill_events=%5B%5D")
            .send()
    };
    let r = post(signed_with("test-webhook")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "{}");
    let r = post(signed_with("someone-elses-key")).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    nothing_stored_or_published(&p, "a test request").await;
    p.stop().await;
}
