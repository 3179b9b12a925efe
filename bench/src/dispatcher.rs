//! `switchyard-bench dispatcher`: what one delivery costs the dispatcher (fan-out,
//! Standard Webhooks signing, a POST over a kept-alive connection, the ack), how many it
//! delivers per second to a fast local receiver, and how much a hanging endpoint beside
//! a healthy one costs the healthy one.
//!
//! Order of a run: start nats-server, redis-server and SeaweedFS; start the release
//! dispatcher once to register three tenants through its admin API — `bench-a` with one
//! endpoint on the receiver's `/a`; `bench-c` with two healthy ones on `/c` and `/c2`;
//! `bench-b` with one on `/b` and one on `/hang`, which never answers — then stop it.
//! Then three drains, each of a backlog of `--events` unified events published while no
//! dispatcher runs: tenant a's (healthy alone), tenant c's (healthy beside a second
//! healthy endpoint), then tenant b's (healthy beside hanging). Each drain is timed and
//! its CPU read from /proc from the moment the dispatcher is ready until the healthy
//! endpoint (`/a`, `/c`, `/b`) has every event.
//!
//! What the hanging endpoint costs is measured against the second drain, which fans each
//! event out to two endpoints as the third does: at a drain's full speed the CPUs are
//! shared, so any second endpoint, healthy or not, slows the first; the aim is about
//! what *hanging* adds.

use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use serde::Serialize;
use serde_json::json;
use switchyard_tests::{free_ports, Servers};
use tokio::net::TcpListener;

use crate::client::{self, Client};
use crate::cpu::{self, Watched};
use crate::report::Aim;
use crate::stack::{self, Binary};
use crate::{OutputArgs, PathArgs};

/// The issue's aims.
const AIM_CPU_US_PER_DELIVERY: f64 = 40.0;
const AIM_HANGING_COST: f64 = 0.05;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Unified events in each backlog.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Size of each unified event's `data`, in bytes (about).
    #[arg(long, default_value_t = 1_024)]
    pub data_bytes: usize,
    /// Longest wait for one drain.
    #[arg(long, default_value = "5m", value_parser = crate::parse_duration)]
    pub drain_within: Duration,
    #[command(flatten)]
    pub paths: PathArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One drain of a backlog.
#[derive(Debug, Clone, Serialize)]
pub struct Drain {
    pub label: &'static str,
    pub wall_secs: f64,
    /// Deliveries to the healthy endpoint per second.
    pub delivered_per_sec: f64,
    /// Dispatcher CPU per delivery to the healthy endpoint, µs.
    pub dispatcher_us_per_delivery: Option<f64>,
    pub nats_us_per_delivery: Option<f64>,
    pub redis_us_per_delivery: Option<f64>,
    pub machine_busy_cores: Option<f64>,
    /// Requests the hanging endpoint received (and never answered) meanwhile.
    pub hanging_requests: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub events: usize,
    pub body_bytes: usize,
    pub cpus: usize,
    pub alone: Drain,
    pub beside_healthy: Drain,
    pub beside_hanging: Drain,
    /// 1 − (healthy rate beside a second healthy endpoint ÷ healthy rate alone): what
    /// fanning each event out to two endpoints costs.
    pub second_endpoint_cost: f64,
    /// 1 − (healthy rate beside the hanging endpoint ÷ healthy rate beside a healthy one).
    pub hanging_cost: f64,
    pub aims: Vec<Aim>,
    pub notes: Vec<String>,
}

/// The receiver: counts POSTs to `/a`, `/b`, `/c` and `/c2` (answered 204 at once);
/// `/hang` is held open and never answered.
#[derive(Default)]
struct Counts {
    a: AtomicU64,
    b: AtomicU64,
    c: AtomicU64,
    c2: AtomicU64,
    hang: AtomicU64,
}

async fn serve_receiver(counts: Arc<Counts>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let _ = tcp.set_nodelay(true);
            let counts = counts.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let counts = counts.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        // Read the body, as a real receiver would.
                        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                        match path.as_str() {
                            "/a" => counts.a.fetch_add(1, Ordering::Relaxed),
                            "/b" => counts.b.fetch_add(1, Ordering::Relaxed),
                            "/c" => counts.c.fetch_add(1, Ordering::Relaxed),
                            "/c2" => counts.c2.fetch_add(1, Ordering::Relaxed),
                            _ => {
                                counts.hang.fetch_add(1, Ordering::Relaxed);
                                // Never answered; the connection ends with the run.
                                std::future::pending::<()>().await;
                                0
                            }
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(204)
                                .body(Full::new(Bytes::new()))
                                .expect("a valid response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.events == 0 || args.events > 500_000 {
        bail!("--events must be 1 to 500000");
    }
    let bin = args.paths.bin_dir().join("switchyard-dispatcher");
    if !bin.is_file() {
        bail!(
            "{} is missing; build it first: cargo build --release -p switchyard-dispatcher",
            bin.display()
        );
    }
    let mut notes: Vec<String> = Vec::new();
    if args.paths.bin_dir.is_none() {
        notes.extend(stack::stale_note(&bin));
    }
    notes.extend(stack::env_notes());

    eprintln!("bench: starting nats-server, redis-server and SeaweedFS");
    let servers = Servers::start_for_load().await.context("starting the servers")?;
    let dir = tempfile::Builder::new()
        .prefix("swy-bench-dispatcher-")
        .disable_cleanup(args.output.keep)
        .tempdir()?;
    if args.output.keep {
        notes.push(format!("configuration and logs kept in {}", dir.path().display()));
    }
    let counts = Arc::new(Counts::default());
    let receiver = serve_receiver(counts.clone()).await?;
    let p = free_ports(2);
    let (admin_port, ops_port) = (p[0], p[1]);
    let token = stack::hex(&stack::random_bytes::<16>()?);
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            r#"# Generated by switchyard-bench dispatcher.
namespace = "bench"
catalog = {catalog}
[nats]
url = "{nats}"
[redis]
url = "{redis}"
[s3]
endpoint = "{s3}"
bucket = "bench-claims"
path_style = true
access_key_id = "local"
secret_access_key = "local"
[secrets]
active_key = "bench"
keys = {{ bench = "{key}" }}
[telemetry]
log_format = "pretty"
log_level = "info"
[dispatcher]
ops_listen = "127.0.0.1:{ops_port}"
admin_listen = "127.0.0.1:{admin_port}"
admin_token = "{token}"
allow_cidrs = ["127.0.0.0/8"]
"#,
            catalog = stack::toml_string(&args.paths.catalog().display().to_string()),
            nats = servers.nats.url(),
            redis = servers.redis.url(),
            s3 = servers.s3.endpoint(),
            key = B64.encode(stack::random_bytes::<32>()?),
        ),
    )?;
    let http = client::new(4);
    let ready = format!("http://127.0.0.1:{ops_port}/readyz");
    let start = || Binary::start("dispatcher", &bin, &config, dir.path(), &ready, &http);

    eprintln!("bench: registering tenants bench-a (one endpoint), bench-c (two) and bench-b (healthy + hanging)");
    let d = start().await?;
    let admin = format!("http://127.0.0.1:{admin_port}");
    let registered = async {
        for (tenant, route) in [
            ("bench-a", "a"),
            ("bench-c", "c"),
            ("bench-c", "c2"),
            ("bench-b", "b"),
            ("bench-b", "hang"),
        ] {
            let (s, body) = client::put_json(
                &http,
                &format!("{admin}/v1/tenants/{tenant}"),
                &token,
                &json!({"name": tenant}),
                Duration::from_secs(10),
            )
            .await?;
            if !(200..300).contains(&s) {
                bail!("PUT tenant answered {s}: {}", String::from_utf8_lossy(&body));
            }
            let (s, body) = post_json(
                &http,
                &format!("{admin}/v1/tenants/{tenant}/endpoints"),
                &token,
                &json!({"url": format!("http://{receiver}/{route}"), "event_types": ["*"]}),
            )
            .await?;
            if s != 201 {
                bail!("POST endpoint answered {s}: {}", String::from_utf8_lossy(&body));
            }
        }
        anyhow::Ok(())
    }
    .await;
    d.stop().await;
    registered?;

    let nats = async_nats::connect(servers.nats.url()).await?;
    let js = async_nats::jetstream::new(nats);
    let data = "x".repeat(args.data_bytes);
    let me = std::process::id();
    let nats_pid = cpu::find_descendant(me, "nats-server").context("finding nats-server")?;
    let redis_pid = cpu::find_descendant(me, "redis-server").context("finding redis-server")?;
    let mut drains = Vec::new();
    let mut body_bytes = 0;
    for (label, tenant) in [
        ("healthy endpoint alone", "bench-a"),
        ("healthy beside a healthy one", "bench-c"),
        ("healthy beside a hanging one", "bench-b"),
    ] {
        eprintln!("bench: publishing {} unified events for {tenant}", args.events);
        body_bytes = publish_backlog(&js, tenant, args.events, &data).await?;
        let counter = match tenant {
            "bench-a" => &counts.a,
            "bench-c" => &counts.c,
            _ => &counts.b,
        };
        // Read before the start: the dispatcher delivers before it reports ready.
        let before_count = counter.load(Ordering::Relaxed);
        let mut d = start().await?;
        let watched = [
            Watched {
                label: "dispatcher".into(),
                pid: d.pid,
            },
            Watched {
                label: "nats-server".into(),
                pid: nats_pid,
            },
            Watched {
                label: "redis-server".into(),
                pid: redis_pid,
            },
        ];
        let hang_before = counts.hang.load(Ordering::Relaxed);
        let a = cpu::snapshot(&watched, None);
        let at_ready = counter.load(Ordering::Relaxed);
        eprintln!(
            "bench: {label}: {} delivered before the dispatcher reported ready",
            at_ready - before_count
        );
        let started = Instant::now();
        let target = before_count + args.events as u64;
        while counter.load(Ordering::Relaxed) < target {
            if started.elapsed() > args.drain_within {
                if let Ok((_, m)) = client::get(
                    &http,
                    &format!("http://127.0.0.1:{ops_port}/metrics"),
                    Duration::from_secs(5),
                )
                .await
                {
                    for line in String::from_utf8_lossy(&m)
                        .lines()
                        .filter(|l| l.starts_with("switchyard_dispatcher"))
                    {
                        eprintln!("bench: {line}");
                    }
                }
                d.stop().await;
                bail!(
                    "{label}: only {} of {} delivered within {:?}",
                    counter.load(Ordering::Relaxed) - before_count,
                    args.events,
                    args.drain_within
                );
            }
            if let Some(why) = d.failure() {
                bail!("{label}: {why}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let b = cpu::snapshot(&watched, None);
        let w = cpu::window(&a, &b, &watched, cpu::ticks_per_second());
        // Measured from ready: what was delivered before is not in the window.
        let n = (target - at_ready).max(1) as f64;
        let per = |i: usize| w.processes[i].cpu_secs.map(|s| s * 1e6 / n);
        drains.push(Drain {
            label,
            wall_secs: w.wall_secs,
            delivered_per_sec: n / w.wall_secs,
            dispatcher_us_per_delivery: per(0),
            nats_us_per_delivery: per(1),
            redis_us_per_delivery: per(2),
            machine_busy_cores: w.machine_busy_cores,
            hanging_requests: counts.hang.load(Ordering::Relaxed) - hang_before,
        });
        d.stop().await;
    }
    let _ = tokio::task::spawn_blocking(move || drop(servers)).await;
    let (alone, healthy, beside) = (drains.remove(0), drains.remove(0), drains.remove(0));
    let second_endpoint_cost = 1.0 - healthy.delivered_per_sec / alone.delivered_per_sec;
    let hanging_cost = 1.0 - beside.delivered_per_sec / healthy.delivered_per_sec;
    if alone.machine_busy_cores.is_some_and(|b| b > 1.9) {
        notes.push("the machine's two cores were saturated: the rates are CPU-bound".into());
    }
    let aims = vec![
        Aim::at_most(
            "dispatcher CPU per delivery, µs",
            AIM_CPU_US_PER_DELIVERY,
            alone.dispatcher_us_per_delivery,
        ),
        Aim::at_most(
            "healthy endpoint's rate lost beside a hanging one rather than a healthy one (fraction)",
            AIM_HANGING_COST,
            Some(hanging_cost),
        ),
    ];
    Ok(Report {
        mode: "dispatcher",
        events: args.events,
        body_bytes,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        alone,
        beside_healthy: healthy,
        beside_hanging: beside,
        second_endpoint_cost,
        hanging_cost,
        aims,
        notes,
    })
}

async fn post_json(http: &Client, url: &str, token: &str, body: &serde_json::Value) -> anyhow::Result<(u16, Bytes)> {
    let request = Request::builder()
        .method(hyper::Method::POST)
        .uri(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    client::call(http, request, Duration::from_secs(10)).await
}

/// Publish `n` unified events for `tenant`, as the normalizer does; the body size.
async fn publish_backlog(
    js: &async_nats::jetstream::Context,
    tenant: &str,
    n: usize,
    data: &str,
) -> anyhow::Result<usize> {
    let mut size = 0;
    let mut pending = Vec::with_capacity(1_000);
    for i in 0..n {
        let id = format!("evt_bench_{tenant}_{i}");
        let body = serde_json::to_vec(&json!({
            "id": id, "type": "payments.invoice.paid", "tenant_id": tenant,
            "account_id": "acct_bench", "connector": "stripe",
            "occurred_at": "2026-11-23T00:00:00Z", "received_at": "2026-11-23T00:00:00Z",
            "data": {"invoice": {"id": format!("in_{i}"), "amount_paid": 4200, "note": data}},
        }))?;
        size = body.len();
        let mut h = async_nats::HeaderMap::new();
        h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        h.insert("Switchyard-Type", "payments.invoice.paid");
        h.insert("Switchyard-Tenant", tenant);
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        h.insert("Switchyard-Received-Ms", now.to_string().as_str());
        let ack = js
            .publish_with_headers(format!("bench.unified.{tenant}"), h, body.into())
            .await
            .context("publishing a unified event")?;
        pending.push(ack.into_future());
        if pending.len() >= 1_000 {
            for a in futures::future::join_all(pending.drain(..)).await {
                a.context("a unified event's PubAck")?;
            }
        }
    }
    for a in futures::future::join_all(pending).await {
        a.context("a unified event's PubAck")?;
    }
    Ok(size)
}

pub fn human(r: &Report) -> String {
    let mut s = format!(
        "switchyard-bench dispatcher: {} events per drain, {} B bodies, {} CPUs\n\n",
        r.events, r.body_bytes, r.cpus
    );
    let us = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
    s.push_str(
        "drain                          delivered/s  dispatcher µs  nats µs  redis µs  busy cores  hanging reqs\n",
    );
    for d in [&r.alone, &r.beside_healthy, &r.beside_hanging] {
        s.push_str(&format!(
            "{:<30} {:>11.0}  {:>13}  {:>7}  {:>8}  {:>10}  {:>12}\n",
            d.label,
            d.delivered_per_sec,
            us(d.dispatcher_us_per_delivery),
            us(d.nats_us_per_delivery),
            us(d.redis_us_per_delivery),
            d.machine_busy_cores.map_or("-".into(), |c| format!("{c:.2}")),
            d.hanging_requests
        ));
    }
    s.push_str(&format!(
        "\na second healthy endpoint cost the first {:.1} % of its rate (two deliveries per event);\n\
         a hanging one instead of it cost the healthy one {:.1} %\n\n",
        r.second_endpoint_cost * 100.0,
        r.hanging_cost * 100.0
    ));
    for a in &r.aims {
        s.push_str(&format!(
            "aim: {} ≤ {}: {} ({})\n",
            a.what,
            a.limit,
            a.value.map_or("-".into(), |v| format!("{v:.3}")),
            match a.met {
                Some(true) => "met",
                Some(false) => "not met",
                None => "not measured",
            }
        ));
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}
