//! Logs, metrics plumbing and the ops endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! Each binary defines its own metrics (in its `metrics.rs`) on an explicit
//! [`prometheus::Registry`]; this module only renders them and answers health checks.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TelemetryConfig};

/// Install the global tracing subscriber. Call once, from `main`.
pub fn init_logging(cfg: &TelemetryConfig) {
    let filter = EnvFilter::try_new(&cfg.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal (logs go to stdout): in a log file or a pipeline
    // they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match cfg.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// State of one dependency as last observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepState {
    Up = 1,
    Down = 2,
}

/// A named dependency check. `required` ones make `/readyz` fail when down; the others
/// only make it say `degraded` (Redis for the ingress: JetStream still dedupes).
#[derive(Debug)]
struct Check {
    name: &'static str,
    required: bool,
    state: AtomicU8,
}

/// What `/readyz` reports. Background probes set the states; draining flips it to 503
/// first thing on shutdown so load balancers stop sending.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Check>>,
    draining: Arc<AtomicBool>,
    /// `switchyard_<component>_dependency_up{dependency}`, once [`Readiness::export`]ed.
    gauge: Arc<OnceLock<prometheus::IntGaugeVec>>,
}

impl Readiness {
    /// `deps`: `(name, required)`; each starts as down until a probe says otherwise.
    pub fn new(deps: &[(&'static str, bool)]) -> Self {
        Self {
            checks: Arc::new(
                deps.iter()
                    .map(|(name, required)| Check {
                        name,
                        required: *required,
                        state: AtomicU8::new(DepState::Down as u8),
                    })
                    .collect(),
            ),
            draining: Arc::new(AtomicBool::new(false)),
            gauge: Arc::default(),
        }
    }

    /// Export the states as `switchyard_<component>_dependency_up{dependency}` (1 up,
    /// 0 down), so an outage alerts by the dependency's name.
    pub fn export(&self, registry: &Registry, component: &str) {
        let gauge = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                format!("switchyard_{component}_dependency_up"),
                "Whether a dependency answered its last check (1) or not (0), as /readyz sees it.",
            ),
            &["dependency"],
        )
        .expect("valid metric");
        if registry.register(Box::new(gauge.clone())).is_ok() {
            for c in self.checks.iter() {
                let up = c.state.load(Ordering::Relaxed) == DepState::Up as u8;
                gauge.with_label_values(&[c.name]).set(up as i64);
            }
            let _ = self.gauge.set(gauge);
        }
    }

    pub fn set(&self, name: &str, up: bool) {
        if let Some(c) = self.checks.iter().find(|c| c.name == name) {
            let s = if up { DepState::Up } else { DepState::Down };
            c.state.store(s as u8, Ordering::Relaxed);
            if let Some(g) = self.gauge.get() {
                g.with_label_values(&[c.name]).set(up as i64);
            }
        }
    }

    pub fn is_up(&self, name: &str) -> bool {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.state.load(Ordering::Relaxed) == DepState::Up as u8)
            .unwrap_or(false)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// `(ready, body)` for `/readyz`.
    pub fn report(&self) -> (bool, String) {
        let down: Vec<(&str, bool)> = self
            .checks
            .iter()
            .filter(|c| c.state.load(Ordering::Relaxed) != DepState::Up as u8)
            .map(|c| (c.name, c.required))
            .collect();
        let draining = self.draining.load(Ordering::Relaxed);
        let failing_required = down.iter().any(|(_, r)| *r);
        let status = if draining {
            "draining"
        } else if failing_required {
            "not_ready"
        } else if !down.is_empty() {
            "degraded"
        } else {
            "ready"
        };
        let names: Vec<&str> = down.iter().map(|(n, _)| *n).collect();
        let body = serde_json::json!({ "status": status, "down": names }).to_string();
        (!draining && !failing_required, body)
    }
}

/// Answer `/healthz`, `/readyz` and `/metrics`; `None` for any other path.
pub fn ops_response(path: &str, registry: &Registry, readiness: &Readiness) -> Option<Response<Full<Bytes>>> {
    match path {
        "/healthz" => Some(json(StatusCode::OK, r#"{"status":"ok"}"#.to_string())),
        "/readyz" => {
            let (ok, body) = readiness.report();
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Some(json(status, body))
        }
        "/metrics" => {
            let mut buf = Vec::with_capacity(16 * 1024);
            let encoder = TextEncoder::new();
            let _ = encoder.encode(&registry.gather(), &mut buf);
            Some(
                Response::builder()
                    .header("content-type", encoder.format_type())
                    .body(Full::new(Bytes::from(buf)))
                    .expect("static response parts are valid"),
            )
        }
        _ => None,
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// What an accept loop does when `accept` fails (most often: out of file descriptors).
/// Retrying at once would spin a core and, logging each failure, fill the disk; instead
/// it waits, 5 ms doubling to 1 s while failures continue, and logs at most once every
/// 10 s with the number of failures since the last line.
pub struct AcceptBackoff {
    listener: &'static str,
    delay: std::time::Duration,
    failures_unlogged: u64,
    last_log: Option<std::time::Instant>,
}

impl AcceptBackoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(5);
    const MAX: std::time::Duration = std::time::Duration::from_secs(1);
    const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            delay: Self::FIRST,
            failures_unlogged: 0,
            last_log: None,
        }
    }

    /// A connection was accepted: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.delay = Self::FIRST;
    }

    /// `accept` failed: maybe log, then wait before the caller accepts again.
    pub async fn failed(&mut self, error: &std::io::Error) {
        self.failures_unlogged += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Self::LOG_EVERY) {
            tracing::warn!(
                listener = self.listener,
                %error,
                failures = self.failures_unlogged,
                "Accepting connections fails (out of file descriptors? raise LimitNOFILE / ulimit -n, or lower max_connections); backing off."
            );
            self.failures_unlogged = 0;
            self.last_log = Some(std::time::Instant::now());
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Self::MAX);
    }
}

/// Serve the ops endpoints on their own listener until `shutdown` is cancelled.
pub async fn serve_ops(listener: TcpListener, registry: Registry, readiness: Readiness, shutdown: CancellationToken) {
    let mut backoff = AcceptBackoff::new("ops");
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => {
                    backoff.succeeded();
                    s
                }
                Err(e) => {
                    backoff.failed(&e).await;
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let readiness = readiness.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let resp = ops_response(req.uri().path(), &registry, &readiness).unwrap_or_else(|| {
                    json(
                        StatusCode::NOT_FOUND,
                        r#"{"error":"not found","code":"not_found"}"#.into(),
                    )
                });
                async move { Ok::<_, Infallible>(resp) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// Latency buckets in seconds, from 100 µs to 30 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
