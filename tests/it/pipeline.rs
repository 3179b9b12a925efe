//! The whole pipeline in-process, on the harness's real servers: ingress, normalizer
//! and dispatcher each started through its `run(config, listener, shutdown)`, with a
//! namespace and bucket of its own, plus a receiver that records deliveries.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_claimcheck::ClaimCheckStore;
use switchyard_core::config::Config;
use switchyard_tests::{unique_prefix, wait_until, Nats, Redis, S3};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A running pipeline.
pub struct Pipeline {
    pub config: Config,
    pub ingress: SocketAddr,
    pub admin: SocketAddr,
    /// Each binary's ops listener (`/metrics`, `/readyz`).
    pub ingress_ops: SocketAddr,
    pub normalizer_ops: SocketAddr,
    pub dispatcher_ops: SocketAddr,
    pub shutdown: CancellationToken,
    /// Each binary's task; it ends with the binary's error, if any, as one line.
    tasks: Vec<JoinHandle<Result<(), String>>>,
    pub http: reqwest::Client,
}

/// What the shared servers may have run out of: this process's limit on open
/// files (the servers inherit it), the disk room where they keep their data and
/// the memory left; and whether they are still there (with a dead one's log).
fn room_left() -> String {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| l.lines().find(|l| l.starts_with("Max open files")).map(str::to_owned))
        .unwrap_or_default();
    let disk = std::process::Command::new("df")
        .args(["-Pk", &std::env::temp_dir().display().to_string()])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemAvailable")).map(str::to_owned))
        .unwrap_or_default();
    let servers = switchyard_tests::shared_if_started()
        .map(|s| s.health())
        .unwrap_or_else(|| "the shared servers were not started".into());
    format!("{limit}; df: {disk}; {memory}; {servers}")
}

pub fn config_for(nats: &Nats, redis: &Redis, s3: &S3, tag: &str) -> Config {
    let prefix = unique_prefix(tag);
    let key = B64.encode([7u8; 32]);
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog");
    Config::from_toml(&format!(
        r#"
namespace = "{prefix}"
catalog = "{catalog}"
[nats]
url = "{nats}"
publish_timeout_ms = 2000
[redis]
url = "{redis}"
[s3]
endpoint = "{s3}"
bucket = "{prefix}"
timeout_ms = 2000
[secrets]
active_key = "test"
keys = {{ test = "{key}" }}
[ingress]
durable_deadline_ms = 3000
retry_after_secs = 7
[normalizer]
concurrency = 8
[dispatcher]
admin_token = "{ADMIN_TOKEN}"
retry_delay_ms = 200
request_timeout_ms = 2000
retry_schedule_ms = [200, 400, 800]
retry_jitter = 0.0
allow_cidrs = ["127.0.0.0/8", "::1/128"]
"#,
        catalog = catalog.display(),
        nats = nats.url(),
        redis = redis.url(),
        s3 = s3.endpoint(),
    ))
    .expect("test configuration is valid")
}

impl Pipeline {
    /// The value of one series (`name{labels}` as exposed) on the `/metrics` of the
    /// listener at `at`; `None` while it is not exposed.
    pub async fn metric(&self, at: SocketAddr, series: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("http://{at}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let ingress_l = TcpListener::bind("127.0.0.1:0").await?;
        let admin_l = TcpListener::bind("127.0.0.1:0").await?;
        let ingress = ingress_l.local_addr()?;
        let admin = admin_l.local_addr()?;
        let mut tasks = Vec::new();
        // Dispatcher first: it owns the admin API the test talks to next.
        let (c, s) = (config.clone(), shutdown.clone());
        let ops = TcpListener::bind("127.0.0.1:0").await?;
        let dispatcher_ops = ops.local_addr()?;
        tasks.push(tokio::spawn(async move {
            switchyard_dispatcher::run(c, switchyard_dispatcher::Listeners { admin: admin_l, ops }, s)
                .await
                .map_err(|e| format!("dispatcher failed: {e:#}"))
        }));
        let (c, s) = (config.clone(), shutdown.clone());
        let ops = TcpListener::bind("127.0.0.1:0").await?;
        let normalizer_ops = ops.local_addr()?;
        tasks.push(tokio::spawn(async move {
            switchyard_normalizer::run(c, ops, s)
                .await
                .map_err(|e| format!("normalizer failed: {e:#}"))
        }));
        let (c, s) = (config.clone(), shutdown.clone());
        let ops = TcpListener::bind("127.0.0.1:0").await?;
        let ingress_ops = ops.local_addr()?;
        let listeners = switchyard_ingress::Listeners { public: ingress_l, ops };
        tasks.push(tokio::spawn(async move {
            switchyard_ingress::run(c, listeners, s)
                .await
                .map_err(|e| format!("ingress failed: {e:#}"))
        }));
        let http = reqwest::Client::new();
        let mut p = Self {
            config,
            ingress,
            admin,
            ingress_ops,
            normalizer_ops,
            dispatcher_ops,
            shutdown,
            tasks,
            http,
        };
        // Every binary has connected and declared what it needs before a test (or a
        // fault it injects) begins: on a loaded machine the normalizer or the
        // dispatcher can still be starting when the ingress already answers.
        for (what, at) in [
            ("the ingress to be ready", ingress_ops),
            ("the normalizer to be ready", normalizer_ops),
            ("the dispatcher to be ready", dispatcher_ops),
        ] {
            let (client, url) = (p.http.clone(), format!("http://{at}/readyz"));
            let waited = wait_until(what, Duration::from_secs(30), || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    client
                        .get(&url)
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false)
                }
            })
            .await;
            if let Err(e) = waited {
                // Say why: the probe's own answer, or that the binary has exited.
                let answer = match p.http.get(&url).send().await {
                    Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                    Err(e) => format!("no answer ({e})"),
                };
                anyhow::bail!("{e}; /readyz said {answer}; {}; {}", p.exited().await, room_left());
            }
        }
        Ok(p)
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(30), t).await {
                eprintln!("{e}");
            }
        }
    }

    /// Which binaries have exited, and with what error: the cause of a pipeline
    /// that never became ready (a shared server out of room, say).
    async fn exited(&mut self) -> String {
        let (done, running) = std::mem::take(&mut self.tasks)
            .into_iter()
            .partition::<Vec<_>, _>(|t| t.is_finished());
        self.tasks = running;
        let mut said = Vec::new();
        for t in done {
            said.push(match t.await {
                Ok(Ok(())) => "a binary exited without an error".to_string(),
                Ok(Err(e)) => e,
                Err(e) => format!("a binary's task ended: {e}"),
            });
        }
        if said.is_empty() {
            "every binary is still running".into()
        } else {
            format!("{} exited: {}", said.len(), said.join("; "))
        }
    }

    /// An admin API call; `(status, body)`.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, format!("http://{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("admin API answers");
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("valid status");
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Register a tenant, an endpoint at `url` for `event_types`, and a Stripe account
    /// with `secret`; returns the endpoint's signing secret.
    pub async fn register_stripe(
        &self,
        tenant: &str,
        account: &str,
        secret: &str,
        url: &str,
        event_types: &[&str],
    ) -> String {
        self.register(tenant, account, "stripe", secret, url, event_types).await
    }

    /// Register a tenant, an endpoint and an account of `connector`; returns the
    /// endpoint's signing secret.
    pub async fn register(
        &self,
        tenant: &str,
        account: &str,
        connector: &str,
        secret: &str,
        url: &str,
        event_types: &[&str],
    ) -> String {
        let (s, b) = self
            .admin(
                reqwest::Method::PUT,
                &format!("/v1/tenants/{tenant}"),
                Some(json!({"name": "Test"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, b) = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/tenants/{tenant}/endpoints"),
                Some(json!({"url": url, "event_types": event_types})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let endpoint_secret = b["secret"].as_str().expect("secret in the 201").to_string();
        let (s, b) = self
            .admin(
                reqwest::Method::PUT,
                &format!("/v1/accounts/{account}"),
                Some(json!({"tenant_id": tenant, "connector": connector, "external_id": "acct_ext", "signing_secrets": [secret]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        endpoint_secret
    }

    /// POST a body to the ingress with the given headers.
    pub async fn post_webhook(&self, path: &str, headers: &[(String, String)], body: &str) -> (u16, HeaderMap, Value) {
        let mut r = self
            .http
            .post(format!("http://{}{path}", self.ingress))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            r = r.header(k.as_str(), v.as_str());
        }
        let resp = r.send().await.expect("ingress answers");
        let status = resp.status().as_u16();
        let mut h = HeaderMap::new();
        for (k, v) in resp.headers() {
            h.insert(k.clone(), v.clone());
        }
        (status, h, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn claim_store(&self) -> ClaimCheckStore {
        ClaimCheckStore::new(&self.config.s3).await.expect("S3 configuration")
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(self.config.nats.url.as_str())
            .await
            .expect("NATS reachable");
        async_nats::jetstream::new(client)
    }

    /// Publish a unified event of `event_type` for `tenant` straight to the unified
    /// stream, as the normalizer would; its id (`evt_<tag>…`).
    pub async fn publish_unified(&self, tenant: &str, event_type: &str, tag: &str) -> String {
        use switchyard_core::envelope::{HEADER_EVENT_TYPE, HEADER_TENANT};
        let js = self.jetstream().await;
        let id = format!("evt_{}", switchyard_tests::unique_prefix(tag));
        let event = json!({
            "id": id, "type": event_type, "tenant_id": tenant, "account_id": "acct_1",
            "connector": "stripe", "occurred_at": "2026-11-23T00:00:00Z",
            "received_at": "2026-11-23T00:00:00Z", "data": {},
        });
        let mut h = async_nats::HeaderMap::new();
        h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        h.insert(HEADER_EVENT_TYPE, event_type);
        h.insert(HEADER_TENANT, tenant);
        js.publish_with_headers(
            self.config.names().unified_subject(tenant),
            h,
            serde_json::to_vec(&event).expect("JSON").into(),
        )
        .await
        .expect("published")
        .await
        .expect("PubAck");
        id
    }

    /// Messages in a stream right now.
    pub async fn stream_messages(&self, stream: &str) -> u64 {
        let js = self.jetstream().await;
        let mut s = js.get_stream(stream).await.expect("stream exists");
        s.info().await.expect("stream info").state.messages
    }
}

/// HubSpot's v3 signature headers for a POST of `body` to `path` on this pipeline.
pub fn hubspot_v3_headers(p: &Pipeline, path: &str, body: &str, secret: &str) -> Vec<(String, String)> {
    use hmac::Mac;
    let ts = (time::OffsetDateTime::now_utc().unix_timestamp() * 1000).to_string();
    let url = format!("http://{}{path}", p.ingress);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("POST{url}{body}{ts}").as_bytes());
    vec![
        ("X-HubSpot-Signature-v3".into(), B64.encode(mac.finalize().into_bytes())),
        ("X-HubSpot-Request-Timestamp".into(), ts),
    ]
}

/// One recorded delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A receiver on loopback recording every POST and answering 200.
pub struct Receiver {
    pub url: String,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
    _task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let d = deliveries.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let d = d.clone();
                async move {
                    d.lock().unwrap().push(Delivery { headers, body });
                    StatusCode::OK
                }
            }),
        );
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Self {
            url,
            deliveries,
            _task: task,
        }
    }

    pub fn all(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    pub fn with_id(&self, id: &str) -> Vec<Delivery> {
        self.all()
            .into_iter()
            .filter(|d| d.headers.get("webhook-id").and_then(|v| v.to_str().ok()) == Some(id))
            .collect()
    }
}
