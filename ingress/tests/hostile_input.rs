//! What an unauthenticated client can cost the ingress, measured on the real binary
//! (`switchyard-ingress` as a process, so its memory is its own) against real NATS,
//! Redis and SeaweedFS: made-up account ids, half-sent requests, more connections than
//! allowed, and where `/metrics` is served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use switchyard_tests::{free_ports, shared, unique_prefix, wait_until};
use tokio::sync::Semaphore;

/// The ingress process; killed when dropped.
struct Ingress {
    child: Child,
    public: u16,
    ops: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Ingress {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ingress {
    async fn start(extra: &str) -> Ingress {
        let servers = shared().await;
        let prefix = unique_prefix("hostile");
        let ports = free_ports(2);
        let dir = tempfile::tempdir().unwrap();
        let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog");
        let config = dir.path().join("switchyard.toml");
        std::fs::write(
            &config,
            format!(
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
path_style = true
access_key_id = "local"
secret_access_key = "local"
[secrets]
active_key = "t"
keys = {{ t = "{key}" }}
[telemetry]
log_level = "warn"
[ingress]
listen = "127.0.0.1:{public}"
ops_listen = "127.0.0.1:{ops}"
{extra}
[dispatcher]
admin_token = "unused"
"#,
                catalog = catalog.display(),
                nats = servers.nats.url(),
                redis = servers.redis.url(),
                s3 = servers.s3.endpoint(),
                key = B64.encode([3u8; 32]),
                public = ports[0],
                ops = ports[1],
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("ingress.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard-ingress"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting switchyard-ingress");
        let ingress = Ingress {
            child,
            public: ports[0],
            ops: ports[1],
            _dir: dir,
        };
        let url = format!("http://127.0.0.1:{}/readyz", ingress.public);
        wait_until("the ingress to be ready", Duration::from_secs(30), || {
            let url = url.clone();
            async move { reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", ingress.log()));
        ingress
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("ingress.log")).unwrap_or_default()
    }

    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kb * 1024
    }
}

/// POST `paths` with `parallel` requests at a time; every answer must be a 404.
async fn post_all(port: u16, paths: Vec<String>, parallel: usize) {
    let http = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(parallel));
    let mut tasks = Vec::with_capacity(paths.len());
    for path in paths {
        let (http, permit) = (http.clone(), gate.clone().acquire_owned().await.unwrap());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("http://127.0.0.1:{port}{path}"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("the ingress answers");
            drop(permit);
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }));
    }
    let mut bodies = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 404, "{body}");
        bodies.insert(body);
    }
    // Unknown, malformed and over-long ids all get the one answer.
    assert_eq!(bodies.len(), 1, "{bodies:?}");
}

fn random_id(n: usize) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789_-";
    (0..n).map(|_| alphabet[rand_index(alphabet.len())] as char).collect()
}

fn rand_index(n: usize) -> usize {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64));
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x % n as u64) as usize
    })
}

/// 100,000 made-up account ids (and 1,000 of 60 KB, which used to be cached whole:
/// +64 MB per 1,000) leave the ingress's memory within a stated bound.
const RSS_GROWTH_BOUND: u64 = 48 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_account_ids_does_not_grow_memory() {
    let ingress = Ingress::start("").await;
    // Warm up: connections, buffers and the allocator's first arenas.
    post_all(
        ingress.public,
        (0..2_000)
            .map(|_| format!("/v1/webhooks/stripe/{}", random_id(40)))
            .collect(),
        32,
    )
    .await;
    let before = ingress.rss_bytes();
    let long: Vec<String> = (0..1_000)
        .map(|_| format!("/v1/webhooks/stripe/{}", random_id(60 * 1024)))
        .collect();
    post_all(ingress.public, long, 16).await;
    for _ in 0..10 {
        let ids = (0..10_000)
            .map(|_| format!("/v1/webhooks/stripe/{}", random_id(1 + rand_index(64))))
            .collect();
        post_all(ingress.public, ids, 64).await;
    }
    let after = ingress.rss_bytes();
    let grown = after.saturating_sub(before);
    eprintln!(
        "ingress RSS {} MiB -> {} MiB after 101,000 unknown ids",
        before >> 20,
        after >> 20
    );
    assert!(
        grown < RSS_GROWTH_BOUND,
        "RSS grew by {} MiB (bound {} MiB)",
        grown >> 20,
        RSS_GROWTH_BOUND >> 20
    );
    // Counted, by reason, on the ops listener.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", ingress.ops))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"switchyard_ingress_rejections_total{connector="unknown",reason="malformed_path"} 1000"#),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("rejections"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Read from `s` until end of file or `deadline`; what arrived, and whether it closed.
fn read_until_closed(s: &mut TcpStream, deadline: Duration) -> (String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_honest_requests_are_served() {
    let ingress = Ingress::start("header_read_timeout_ms = 1500\nbody_read_timeout_ms = 1500").await;
    let addr = ("127.0.0.1", ingress.public);
    // 1,000 connections that send part of their headers and then nothing.
    let mut slow: Vec<TcpStream> = (0..1_000)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /v1/webhooks/stripe/acct_x HTTP/1.1\r\nHost: a\r\nContent-")
                .unwrap();
            s
        })
        .collect();
    // Honest requests are served meanwhile, promptly.
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let started = Instant::now();
        let r = http
            .get(format!("http://127.0.0.1:{}/readyz", ingress.public))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }
    // The half-sent requests are closed after the header timeout.
    let (_, closed) = read_until_closed(&mut slow[0], Duration::from_secs(10));
    assert!(closed, "a half-sent request's connection is still open");
    let (_, closed) = read_until_closed(&mut slow[999], Duration::from_secs(5));
    assert!(closed, "the last half-sent request's connection is still open");

    // A body that never arrives is answered 408 and closed.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /v1/webhooks/stripe/acct_x HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\":",
    )
    .unwrap();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10));
    // Unknown account: refused before the body is read (404) — either way, answered.
    assert!(
        answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    slow.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_connection_gets_503_and_is_closed() {
    let ingress = Ingress::start("max_connections = 50\nheader_read_timeout_ms = 60000").await;
    let addr = ("127.0.0.1", ingress.public);
    let held: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut extra = None;
    wait_until(
        "a connection past the cap to be refused",
        Duration::from_secs(10),
        || {
            let mut s = TcpStream::connect(addr).unwrap();
            let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(2));
            let refused = closed && answer.starts_with("HTTP/1.1 503");
            if refused {
                extra = Some(answer);
            }
            async move { refused }
        },
    )
    .await
    .unwrap();
    let answer = extra.unwrap();
    assert!(answer.to_ascii_lowercase().contains("retry-after:"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    // Freed slots serve again.
    drop(held);
    wait_until("the ingress to serve again", Duration::from_secs(10), || async {
        reqwest::get(format!("http://127.0.0.1:{}/healthz", ingress.public))
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_ops_listener_only() {
    let ingress = Ingress::start("").await;
    let public = reqwest::get(format!("http://127.0.0.1:{}/metrics", ingress.public))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let ops = reqwest::get(format!("http://127.0.0.1:{}/metrics", ingress.ops))
        .await
        .unwrap();
    assert_eq!(ops.status(), 200);
    assert!(ops
        .text()
        .await
        .unwrap()
        .contains("switchyard_ingress_in_flight_requests"));
    for probe in ["/healthz", "/readyz"] {
        for port in [ingress.public, ingress.ops] {
            let r = reqwest::get(format!("http://127.0.0.1:{port}{probe}")).await.unwrap();
            assert!(r.status().is_success(), "{probe} on {port}");
        }
    }
}
