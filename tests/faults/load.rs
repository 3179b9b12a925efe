//! One fault scenario: a pipeline in-process on servers of its own, a tenant with two
//! endpoints on a receiver whose endpoints can fail or hang, signed Stripe webhooks at
//! a steady rate (open model: each sent on schedule, whatever happened to the others),
//! the fault in the middle, then every event answered 200 is looked for at both
//! endpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use switchyard_core::config::Config;
use switchyard_core::ids;
use switchyard_tests::{wait_until, ClusterServers, Servers};

use crate::pipeline::{config_for, Pipeline};

/// Requests per second, and for how long.
const RATE: u64 = 20;
const LOAD: Duration = Duration::from_secs(14);
/// Load goes on at least this long after the fault ends, and never past `LOAD_AT_MOST`.
const AFTER: Duration = Duration::from_secs(3);
const LOAD_AT_MOST: Duration = Duration::from_secs(60);
/// When the fault starts, from the start of the load.
const FAULT_AT: Duration = Duration::from_secs(3);
/// Longest wait for every accepted event to reach both endpoints after the load.
const DRAIN: Duration = Duration::from_secs(60);
const SECRET: &str = "whsec_faults_stripe";
const ACCOUNT: &str = "acct_faults";

/// What an endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Up = 0,
    /// 503 at once.
    Refuse = 1,
    /// No answer for 30 s (the dispatcher's timeout is 2 s).
    Hang = 2,
}

/// The two endpoints (`a` = 0, `b` = 1) and what each received.
#[derive(Default)]
pub struct Endpoints {
    modes: [AtomicU8; 2],
    /// (endpoint, webhook-id) → deliveries answered 2xx.
    received: Mutex<HashMap<(usize, String), u32>>,
    /// When endpoint 1's deliveries arrived.
    healthy_arrivals: Mutex<Vec<Instant>>,
}

impl Endpoints {
    pub fn set(&self, endpoint: usize, mode: Mode) {
        self.modes[endpoint].store(mode as u8, Ordering::Relaxed);
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// How a scenario ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub requests: u64,
    pub accepted: u64,
    pub refused_503: u64,
    pub other_answers: u64,
    /// Requests sent while the fault lasted that were answered 200.
    pub accepted_during_the_fault: u64,
    /// Requests sent after the fault ended that were answered 200.
    pub accepted_after_the_fault: u64,
    pub deliveries_expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicate_deliveries: u64,
    /// Deliveries to endpoint `b` (healthy throughout) while the fault lasted.
    pub healthy_endpoint_during_the_fault: u64,
}

impl Outcome {
    pub fn assert_nothing_lost(&self) {
        eprintln!(
            "faults: requests {}, accepted {} (during the fault {}, after {}), 503 {}, other {}; deliveries \
             expected {}, delivered {}, lost {}, duplicates {}; healthy endpoint during the fault {}",
            self.requests,
            self.accepted,
            self.accepted_during_the_fault,
            self.accepted_after_the_fault,
            self.refused_503,
            self.other_answers,
            self.deliveries_expected,
            self.delivered,
            self.lost,
            self.duplicate_deliveries,
            self.healthy_endpoint_during_the_fault
        );
        assert!(self.accepted > 0, "nothing was accepted: {self:?}");
        assert_eq!(self.lost, 0, "accepted events were not delivered: {self:?}");
    }
}

struct Answer {
    sent: Instant,
    status: u16,
    event_id: String,
}

/// Runs one scenario on servers of its own: `fault` is called at [`FAULT_AT`] with the
/// servers and the endpoints, and returns when the fault is over.
pub async fn scenario<F>(tag: &str, fault: F) -> Outcome
where
    F: for<'a> FnOnce(&'a mut Servers, &'a Endpoints) -> futures::future::BoxFuture<'a, ()>,
{
    let mut servers = Servers::start().await.expect("servers start");
    let config = config_for(&servers.nats, &servers.redis, &servers.s3, tag);
    run(&mut servers, config, tag, fault).await
}

/// The same on a three-node NATS cluster with every stream at replication 3.
pub async fn scenario_on_a_cluster<F>(tag: &str, fault: F) -> Outcome
where
    F: for<'a> FnOnce(&'a mut ClusterServers, &'a Endpoints) -> futures::future::BoxFuture<'a, ()>,
{
    let mut servers = ClusterServers::start().await.expect("servers start");
    // `config_for` wants a single server for the URL; the cluster's replaces it.
    let single = switchyard_tests::shared().await;
    let mut config = config_for(&single.nats, &servers.redis, &servers.s3, tag);
    config.nats.url = servers.nats.url();
    config.nats.replicas = 3;
    run(&mut servers, config, tag, fault).await
}

async fn run<S, F>(servers: &mut S, mut config: Config, tag: &str, fault: F) -> Outcome
where
    F: for<'a> FnOnce(&'a mut S, &'a Endpoints) -> futures::future::BoxFuture<'a, ()>,
{
    // Retries keep coming for about 40 s, so a 6 s outage is ridden out.
    config.dispatcher.retry_schedule_ms = vec![
        300, 600, 1_000, 2_000, 3_000, 3_000, 5_000, 5_000, 5_000, 5_000, 5_000, 5_000,
    ];
    let p = Pipeline::start(config).await.expect("pipeline starts");
    let endpoints = Arc::new(Endpoints::default());
    let base = receiver(endpoints.clone()).await;
    p.register_stripe("tenant_f", ACCOUNT, SECRET, &format!("{base}/0"), &["*"])
        .await;
    let (status, body) = p
        .admin(
            reqwest::Method::POST,
            "/v1/tenants/tenant_f/endpoints",
            Some(serde_json::json!({"url": format!("{base}/1"), "event_types": ["*"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let start = Instant::now();
    // When the fault ended: the load goes on at least AFTER past it (a slow restart on a
    // busy machine must still leave requests to show the recovery), within LOAD_AT_MOST.
    let fault_ended: Arc<Mutex<Option<Instant>>> = Arc::default();
    let load = {
        let (http, ingress, answers, tag) = (p.http.clone(), p.ingress, answers.clone(), tag.to_string());
        let fault_ended = fault_ended.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for i in 0..RATE * LOAD_AT_MOST.as_secs() {
                let due = start + Duration::from_millis(i * 1_000 / RATE);
                let ended = *fault_ended.lock().unwrap();
                let enough = due >= start + LOAD && ended.is_some_and(|e| due >= e + AFTER);
                if enough {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                tasks.push(tokio::spawn(post(
                    http.clone(),
                    ingress,
                    format!("evt_{tag}_{i}"),
                    answers.clone(),
                )));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    tokio::time::sleep_until((start + FAULT_AT).into()).await;
    let fault_start = Instant::now();
    fault(servers, &endpoints).await;
    let fault_end = Instant::now();
    *fault_ended.lock().unwrap() = Some(fault_end);
    let _ = load.await;

    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let mut o = Outcome {
        requests: answers.len() as u64,
        ..Outcome::default()
    };
    let mut expected = Vec::new();
    for a in &answers {
        match a.status {
            200 => {
                o.accepted += 1;
                let key = ids::idempotency_key("stripe", ACCOUNT, &a.event_id);
                expected.push(ids::unified_event_id(&key, 0));
                if a.sent >= fault_start && a.sent < fault_end {
                    o.accepted_during_the_fault += 1;
                }
                if a.sent >= fault_end {
                    o.accepted_after_the_fault += 1;
                }
            }
            503 => o.refused_503 += 1,
            _ => o.other_answers += 1,
        }
    }
    o.deliveries_expected = expected.len() as u64 * 2;
    let want = expected.len() * 2;
    let _ = wait_until("every accepted event at both endpoints", DRAIN, || {
        let e = endpoints.clone();
        async move { e.count() >= want }
    })
    .await;
    let received = endpoints.received.lock().unwrap().clone();
    for id in &expected {
        for ep in 0..2 {
            match received.get(&(ep, id.clone())) {
                Some(n) => {
                    o.delivered += 1;
                    o.duplicate_deliveries += u64::from(n - 1);
                }
                None => o.lost += 1,
            }
        }
    }
    o.healthy_endpoint_during_the_fault = endpoints
        .healthy_arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|t| **t >= fault_start && **t < fault_end)
        .count() as u64;
    p.stop().await;
    o
}

async fn post(
    http: reqwest::Client,
    ingress: std::net::SocketAddr,
    event_id: String,
    answers: Arc<Mutex<Vec<Answer>>>,
) {
    let body = serde_json::json!({
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": 1_700_000_000,
        "livemode": false, "type": "customer.created",
        "data": {"object": {"id": "cus_faults", "object": "customer", "email": "jenny.rosen@example.com",
                            "name": "Jenny Rosen", "created": 1_680_893_993, "metadata": {}}}
    })
    .to_string();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let sig = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let sent = Instant::now();
    let status = http
        .post(format!("http://{ingress}/v1/webhooks/stripe/{ACCOUNT}"))
        .header("content-type", "application/json")
        .header("Stripe-Signature", format!("t={t},v1={sig}"))
        .timeout(Duration::from_secs(10))
        .body(body)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    answers.lock().unwrap().push(Answer { sent, status, event_id });
}

/// The receiver: `POST /{endpoint}` records `webhook-id` and answers 204, or fails or
/// hangs as the endpoint's mode says.
async fn receiver(endpoints: Arc<Endpoints>) -> String {
    let app = axum::Router::new().route(
        "/{ep}",
        axum::routing::post(move |Path(ep): Path<usize>, headers: HeaderMap| {
            let e = endpoints.clone();
            async move {
                let Some(mode) = e.modes.get(ep) else {
                    return StatusCode::NOT_FOUND;
                };
                match mode.load(Ordering::Relaxed) {
                    1 => return StatusCode::SERVICE_UNAVAILABLE,
                    2 => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    _ => {}
                }
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                *e.received.lock().unwrap().entry((ep, id)).or_default() += 1;
                if ep == 1 {
                    e.healthy_arrivals.lock().unwrap().push(Instant::now());
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    base
}
