//! The tenants' endpoints: a fast HTTP/1.1 receiver in the bench process that checks
//! every delivery's Standard Webhooks signature (HMAC-SHA256 over
//! `webhook-id.webhook-timestamp.body`, keyed with the base64 part of the endpoint's
//! `whsec_` secret) and records its `webhook-id`, endpoint and arrival time.
//!
//! Each endpoint is a path (`/t<tenant>/e<k>`) and can be told to answer normally, to
//! refuse (503: "the endpoint is down"), or to hang (hold the request until the
//! dispatcher gives up); a delivery is recorded only when it is answered 2xx.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use switchyard_webhooks::Key;
use tokio::net::TcpListener;

/// How long a hanging endpoint holds a request at most (the dispatcher's own
/// timeout is shorter, so it gives up first).
const HANG_AT_MOST: Duration = Duration::from_secs(60);

/// What an endpoint does with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Behaviour {
    /// Verify, record, answer 204.
    Up = 0,
    /// Answer 503 at once.
    Refuse = 1,
    /// Hold the request without answering.
    Hang = 2,
}

struct Endpoint {
    index: u16,
    /// Every secret the endpoint was declared with: the newest and those before it.
    keys: Vec<Key>,
    behaviour: AtomicU8,
}

/// One verified delivery.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub endpoint: u16,
    pub webhook_id: Box<str>,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    endpoints: RwLock<HashMap<String, Arc<Endpoint>>>,
    arrivals: Mutex<Vec<Arrival>>,
    bad_signatures: AtomicU64,
    refused: AtomicU64,
    hung: AtomicU64,
    unknown_path: AtomicU64,
}

/// The running receiver; dropping it stops accepting connections.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Counters of deliveries not recorded.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Rejections {
    pub bad_signatures: u64,
    pub refused: u64,
    pub hung: u64,
    pub unknown_path: u64,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the receiver")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State::default());
        let s = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            base_url,
            state,
            accept,
        })
    }

    /// Declares endpoint `path` (index `index` in reports) with its `whsec_` secret.
    /// Declared again (its registration was re-created, with a new secret), it accepts
    /// the new secret and keeps accepting the earlier ones, as a receiver switching
    /// secrets does: deliveries signed before the switch are still in flight.
    pub fn add_endpoint(&self, path: &str, index: u16, secret: &str) -> anyhow::Result<()> {
        let key = Key::from_secret(secret).context("the endpoint secret")?;
        let mut e = self.state.endpoints.write().unwrap_or_else(|e| e.into_inner());
        let (mut keys, behaviour) = match e.get(path) {
            Some(before) => (before.keys.clone(), before.behaviour.load(Ordering::Relaxed)),
            None => (Vec::new(), Behaviour::Up as u8),
        };
        keys.insert(0, key);
        e.insert(
            path.to_string(),
            Arc::new(Endpoint {
                index,
                keys,
                behaviour: AtomicU8::new(behaviour),
            }),
        );
        Ok(())
    }

    /// Sets every endpoint's behaviour.
    pub fn set_all(&self, b: Behaviour) {
        let e = self.state.endpoints.read().unwrap_or_else(|e| e.into_inner());
        for ep in e.values() {
            ep.behaviour.store(b as u8, Ordering::Relaxed);
        }
    }

    /// Sets one endpoint's behaviour (by index).
    pub fn set(&self, index: u16, b: Behaviour) {
        let e = self.state.endpoints.read().unwrap_or_else(|e| e.into_inner());
        for ep in e.values().filter(|ep| ep.index == index) {
            ep.behaviour.store(b as u8, Ordering::Relaxed);
        }
    }

    /// Deliveries recorded so far.
    pub fn count(&self) -> usize {
        self.state.arrivals.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A copy of the arrivals from `from` on.
    pub fn arrivals_since(&self, from: usize) -> Vec<Arrival> {
        let a = self.state.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        a.get(from..).map(<[Arrival]>::to_vec).unwrap_or_default()
    }

    pub fn rejections(&self) -> Rejections {
        let s = &self.state;
        Rejections {
            bad_signatures: s.bad_signatures.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            hung: s.hung.load(Ordering::Relaxed),
            unknown_path: s.unknown_path.load(Ordering::Relaxed),
        }
    }
}

async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let endpoint = {
        let e = state.endpoints.read().unwrap_or_else(|e| e.into_inner());
        e.get(req.uri().path()).cloned()
    };
    let Some(endpoint) = endpoint else {
        state.unknown_path.fetch_add(1, Ordering::Relaxed);
        return Ok(answer(StatusCode::NOT_FOUND));
    };
    match endpoint.behaviour.load(Ordering::Relaxed) {
        1 => {
            state.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(answer(StatusCode::SERVICE_UNAVAILABLE));
        }
        2 => {
            state.hung.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(HANG_AT_MOST).await;
            return Ok(answer(StatusCode::SERVICE_UNAVAILABLE));
        }
        _ => {}
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST)),
    };
    let (Some(id), Some(ts), Some(sig)) = (id, ts, sig) else {
        state.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return Ok(answer(StatusCode::UNAUTHORIZED));
    };
    if !endpoint
        .keys
        .iter()
        .any(|key| key.verify(&id, &ts, &body, &sig).is_ok())
    {
        state.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return Ok(answer(StatusCode::UNAUTHORIZED));
    }
    let at = Instant::now();
    state.arrivals.lock().unwrap_or_else(|e| e.into_inner()).push(Arrival {
        endpoint: endpoint.index,
        webhook_id: id.into_boxed_str(),
        at,
    });
    Ok(answer(StatusCode::NO_CONTENT))
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::default());
    *r.status_mut() = status;
    r
}
