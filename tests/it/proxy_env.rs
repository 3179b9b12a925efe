//! Proxy variables in the dispatcher's environment do not carry deliveries. Through a
//! proxy the delivery client would resolve only the proxy's name and the SSRF guard
//! would never see the target's address, so the client must ignore `HTTP_PROXY`,
//! `HTTPS_PROXY` and `ALL_PROXY`.
//!
//! The dispatcher has to run in a process whose environment names a proxy, and this
//! test process's environment is never changed (`set_var` is banned), so the test runs
//! this test binary again as a child, with the variables set, and the child runs the
//! dispatcher in-process. The proxy (a listener counting connections) lives here, in
//! the parent; the receivers live in the child.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_core::config::Config;
use switchyard_core::envelope::{HEADER_EVENT_TYPE, HEADER_TENANT};
use switchyard_tests::{shared, unique_prefix, wait_until};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Set in the child's environment: the dispatcher's configuration (TOML).
const CHILD_CONFIG: &str = "SWITCHYARD_TEST_PROXY_CHILD_CONFIG";
const TOKEN: &str = "proxy-test-token";
/// How long the child waits for what it expects.
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_variables_in_the_environment_are_not_used_for_deliveries() {
    // Run again as the child (below), this same test is the half that delivers.
    if let Ok(toml) = std::env::var(CHILD_CONFIG) {
        return child_delivers_past_the_proxy(&toml).await;
    }
    let s = shared().await;
    // The "proxy": it answers 502 at once, so a delivery sent through it fails fast.
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = proxy.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = conn
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });

    let prefix = unique_prefix("proxyenv");
    let key = B64.encode([7u8; 32]);
    let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog");
    let config = format!(
        r#"
namespace = "{prefix}"
catalog = "{catalog}"
[nats]
url = "{nats}"
[redis]
url = "{redis}"
[s3]
endpoint = "{s3}"
bucket = "{prefix}"
[secrets]
active_key = "test"
keys = {{ test = "{key}" }}
[dispatcher]
admin_token = "{TOKEN}"
request_timeout_ms = 2000
retry_schedule_ms = [200, 400, 800]
retry_jitter = 0.0
allow_cidrs = ["127.0.0.0/8"]
"#,
        catalog = catalog.display(),
        nats = s.nats.url(),
        redis = s.redis.url(),
        s3 = s.s3.endpoint(),
    );
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "proxy_env::proxy_variables_in_the_environment_are_not_used_for_deliveries",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CONFIG, config)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .kill_on_drop(true);
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        child.env(var, &proxy_url);
    }
    let out = tokio::time::timeout(WAIT * 3, child.output())
        .await
        .expect("the child test finishes")
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "no request reached the proxy named in the environment:\n{log}"
    );
    assert!(
        out.status.success() && log.contains("1 passed"),
        "the child ran its test and it passed:\n{log}"
    );
}

/// The test above, run again in a child process whose environment names a proxy for
/// every scheme: the dispatcher in-process, delivering past it.
async fn child_delivers_past_the_proxy(toml: &str) {
    assert!(
        std::env::var("HTTP_PROXY").is_ok(),
        "the parent set the proxy variables"
    );
    let config = Config::from_toml(toml).unwrap();

    // An http receiver that records webhook ids, and for https a bare TCP listener
    // (no TLS: a direct connection to it is what is checked, not a delivery).
    let received: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let r = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let r = r.clone();
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                r.lock().unwrap().push(id.to_string());
                axum::http::StatusCode::OK
            }
        }),
    );
    let http_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_url = format!("http://{}/hook", http_l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(http_l, app).await;
    });
    let tls_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https_url = format!("https://{}/hook", tls_l.local_addr().unwrap());
    let direct_tls = Arc::new(AtomicUsize::new(0));
    let d = direct_tls.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = tls_l.accept().await {
            d.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });

    let shutdown = CancellationToken::new();
    let admin_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = admin_l.local_addr().unwrap();
    let ops = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (c, stop) = (config.clone(), shutdown.clone());
    let dispatcher = tokio::spawn(async move {
        switchyard_dispatcher::run(c, switchyard_dispatcher::Listeners { admin: admin_l, ops }, stop)
            .await
            .expect("the dispatcher runs");
    });
    // This test's own client must not go through the proxy either.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let call = |method: reqwest::Method, path: String, body: Value| {
        let client = client.clone();
        async move {
            let resp = client
                .request(method, format!("http://{admin}{path}"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .ok()?;
            let status = resp.status();
            Some((status, resp.json::<Value>().await.unwrap_or(Value::Null)))
        }
    };
    wait_until("the admin API to answer", WAIT, || async {
        call(reqwest::Method::PUT, "/v1/tenants/t-proxy".into(), json!({"name": "P"}))
            .await
            .is_some_and(|(s, _)| s.is_success())
    })
    .await
    .unwrap();
    for url in [&http_url, &https_url] {
        let (status, body) = call(
            reqwest::Method::POST,
            "/v1/tenants/t-proxy/endpoints".into(),
            json!({"url": url, "event_types": ["*"]}),
        )
        .await
        .expect("the admin API answers");
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let names = config.names();
    let js = async_nats::jetstream::new(async_nats::connect(config.nats.url.as_str()).await.unwrap());
    let id = format!("evt_{}", unique_prefix("proxy"));
    let event = json!({
        "id": id, "type": "payments.charge.succeeded", "tenant_id": "t-proxy",
        "account_id": "acct_1", "connector": "stripe", "occurred_at": "2026-11-23T00:00:00Z",
        "received_at": "2026-11-23T00:00:00Z", "data": {},
    });
    let mut h = async_nats::HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    h.insert(HEADER_EVENT_TYPE, "payments.charge.succeeded");
    h.insert(HEADER_TENANT, "t-proxy");
    js.publish_with_headers(
        names.unified_subject("t-proxy"),
        h,
        serde_json::to_vec(&event).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    wait_until("the http endpoint to get the event directly", WAIT, || async {
        received.lock().unwrap().contains(&id)
    })
    .await
    .unwrap();
    wait_until("the https endpoint to be connected to directly", WAIT, || async {
        direct_tls.load(Ordering::SeqCst) > 0
    })
    .await
    .unwrap();
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), dispatcher).await;
}
