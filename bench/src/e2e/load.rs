//! The end-to-end load: the open model of `load.rs` (request `i` due at
//! `start + i / rate`, sent then whatever happened to earlier ones, latency from the due
//! time), with requests of the provider mix made as they fall due ([`Mix::request`])
//! and sent to each provider's own URL. What it keeps is what the end-to-end figures
//! need: for every event the ingress accepted, the moment its 200 came back (the
//! "ingress accept" that end-to-end latency starts from) and its tenant.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::{Method, Request};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::Client;
use crate::e2e::mix::Mix;
use crate::stats::Latency;

/// One accepted event.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// When the 200 carrying it was read (the first one, for a retried event).
    pub at: std::time::Instant,
    pub tenant: u16,
    pub connector: &'static str,
    /// Its request was due inside the measured window.
    pub measured: bool,
}

#[derive(Default)]
struct Inner {
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    ack_us: Vec<u32>,
    lag_us: Vec<u32>,
    not_sent: u64,
    requests_due: u64,
    duplicate_requests: u64,
    accepted: HashMap<Box<str>, Accepted>,
    body_bytes: u64,
    by_connector: BTreeMap<&'static str, u64>,
}

/// What the sender observed.
pub struct Tracker {
    measured: std::ops::Range<usize>,
    inner: Mutex<Inner>,
    /// Set to stop sending (the backlog mode stops once enough events are in).
    pub stop: AtomicBool,
}

/// The sender's figures over the measured window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sent {
    pub requests_due: u64,
    pub not_sent: u64,
    /// Requests that repeat an earlier request (provider retries).
    pub duplicate_requests: u64,
    pub status: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Requests answered 200 (new or duplicate).
    pub accepted_requests: u64,
    pub requests_by_connector: BTreeMap<String, u64>,
    pub body_bytes_mean: f64,
    /// Due time → 200.
    pub ack_latency: Option<Latency>,
    /// Due time → actual send (the generator's own delay).
    pub send_lag: Option<Latency>,
}

impl Tracker {
    pub fn new(measured: std::ops::Range<usize>) -> Self {
        Self {
            measured,
            inner: Mutex::new(Inner::default()),
            stop: AtomicBool::new(false),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Distinct events accepted so far.
    pub fn accepted_events(&self) -> usize {
        self.with(|s| s.accepted.len())
    }

    /// Every accepted event (taken out of the tracker).
    pub fn take_accepted(&self) -> HashMap<Box<str>, Accepted> {
        self.with(|s| std::mem::take(&mut s.accepted))
    }

    pub fn summary(&self) -> Sent {
        self.with(|s| {
            let accepted_requests = s.ack_us.len() as u64;
            Sent {
                requests_due: s.requests_due,
                not_sent: s.not_sent,
                duplicate_requests: s.duplicate_requests,
                status: s.status.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                errors: s.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                accepted_requests,
                requests_by_connector: s.by_connector.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                body_bytes_mean: s.body_bytes as f64 / s.requests_due.max(1) as f64,
                ack_latency: Latency::of(&mut s.ack_us),
                send_lag: Latency::of(&mut s.lag_us),
            }
        })
    }
}

/// Sends requests `0..count` of `mix` from `start` at `mix.rate` to `ingress`, with at
/// most `max_in_flight` outstanding, each cut off at `timeout`. Returns when every
/// request sent is answered or cut off (at most `timeout` + 1 s after the last due
/// time), or earlier once [`Tracker::stop`] is set.
pub async fn run(
    client: Client,
    ingress: String,
    mix: Arc<Mix>,
    count: usize,
    start: Instant,
    (max_in_flight, timeout): (usize, Duration),
    tracker: Arc<Tracker>,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    for i in 0..count {
        if tracker.stop.load(Ordering::Relaxed) {
            break;
        }
        let due = start + Duration::from_secs_f64(i as f64 / mix.rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let measured = tracker.measured.contains(&i);
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match tokio::time::timeout_at(due + timeout, slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    if measured {
                        tracker.with(|s| {
                            s.not_sent += 1;
                            s.requests_due += 1;
                        });
                    }
                    continue;
                }
            },
        };
        let (client, ingress, mix, tracker) = (client.clone(), ingress.clone(), mix.clone(), tracker.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(r) = mix.request(i) else {
                tracker.with(|s| *s.errors.entry("build").or_default() += 1);
                return;
            };
            let sent = Instant::now();
            let mut b = Request::builder()
                .method(Method::POST)
                .uri(format!("{ingress}{}", r.path))
                .header(http::header::CONTENT_TYPE, "application/json");
            for (n, v) in &r.headers {
                b = b.header(n, v);
            }
            let body_len = r.body.len() as u64;
            let Ok(request) = b.body(Full::new(r.body)) else {
                tracker.with(|s| *s.errors.entry("build").or_default() += 1);
                return;
            };
            let answer = tokio::time::timeout(timeout, async {
                let response =
                    client
                        .request(request)
                        .await
                        .map_err(|e| if e.is_connect() { "connect" } else { "request" })?;
                let code = response.status().as_u16();
                http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .map_err(|_| "request")?;
                Ok::<u16, &'static str>(code)
            })
            .await
            .unwrap_or(Err("timeout"));
            let done = Instant::now();
            let done_std = std::time::Instant::now();
            tracker.with(|s| {
                if let Ok(200) = answer {
                    for id in &r.webhook_ids {
                        s.accepted.entry(id.as_str().into()).or_insert(Accepted {
                            at: done_std,
                            tenant: r.tenant as u16,
                            connector: r.connector,
                            measured,
                        });
                    }
                }
                if !measured {
                    return;
                }
                s.requests_due += 1;
                s.body_bytes += body_len;
                *s.by_connector.entry(r.connector).or_default() += 1;
                s.duplicate_requests += u64::from(r.duplicate);
                s.lag_us.push(micros(sent - due));
                match answer {
                    Ok(code) => {
                        *s.status.entry(code).or_default() += 1;
                        if code == 200 {
                            s.ack_us.push(micros(done - due));
                        }
                    }
                    Err(kind) => *s.errors.entry(kind).or_default() += 1,
                }
            });
        });
    }
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(timeout + Duration::from_secs(1), slots.acquire_many(all)).await;
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}
