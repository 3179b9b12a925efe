//! `switchyard-bench http-floor`: what merely answering the ingress's load costs on this
//! machine, as a yardstick for `switchyard-bench ingress`.
//!
//! The same signed Stripe requests, on the same schedule and client, go to a server
//! that does nothing with them: it reads each request whole and answers the ingress's
//! 200 body at once. It runs as a child process on one runtime thread like the
//! ingress, so its CPU is measured the same way:
//! - `--server hyper`: hyper's HTTP/1.1 server, set up as the ingress sets it up;
//! - `--server raw`: bare tokio, finding the end of the headers and `content-length`
//!   itself (no HTTP library at all; keep-alive only, no chunked bodies).
//!
//! The CPU it reports per request is a floor under the ingress's: reading the socket,
//! writing the answer, parking and waking the thread, and (for `hyper`) the HTTP layer.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::load::{self, Target};
use crate::payload::{self, Plan};
use crate::stats::{Latency, Recorder};
use crate::{client, cpu, LoadArgs, PathArgs};

/// The ingress's answer to a new event, byte for byte the same length.
const ANSWER: &[u8] = br#"{"status":"accepted","events":1,"duplicates":0}"#;
/// A request head larger than this is refused (the load's are about 600 bytes).
const MAX_HEAD: usize = 16 * 1024;
/// A body larger than this is refused (the load's are about 2 KB).
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    Hyper,
    Raw,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Hyper => "hyper",
            Server::Raw => "raw",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which do-nothing server answers.
    #[arg(long, value_enum, default_value_t = Server::Hyper)]
    pub server: Server,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub paths: PathArgs,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

/// The hidden child command: serve on a free loopback port, print it, run until killed.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, value_enum)]
    pub server: Server,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub server: Server,
    pub rate: f64,
    pub duration_secs: f64,
    pub accepted_per_sec: f64,
    pub ack_latency: Option<Latency>,
    /// The server process's CPU (user + system) per answered request.
    pub server_cpu_us_per_request: Option<f64>,
    pub non_200: u64,
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let schedule = args.load.schedule()?;
    let stripe = args.paths.connector("stripe")?;
    let total = schedule.total();
    let start_unix = time::OffsetDateTime::now_utc().unix_timestamp();
    let requests = tokio::task::spawn_blocking(move || {
        payload::prepare(&Plan {
            connector: &stripe,
            secret: "whsec_floor",
            count: total,
            rate: schedule.rate,
            start_unix,
            duplicate_share: 0.0,
            run_tag: "floor",
            template: None,
        })
    })
    .await??;

    let exe = std::env::current_exe().context("finding this benchmark's own binary")?;
    let server = args.server.name();
    let mut child = tokio::process::Command::new(exe)
        .args(["serve-floor", "--server", server])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the do-nothing server")?;
    let pid = child.id().context("the do-nothing server exited at once")?;
    let stdout = child.stdout.take().context("the do-nothing server's output")?;
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).read_line(&mut line))
        .await
        .context("the do-nothing server did not say its port within 10 s")??;
    let addr = line.trim().to_string();
    if addr.is_empty() {
        bail!("the do-nothing server exited before listening");
    }

    let target = Arc::new(Target {
        client: client::new(schedule.max_in_flight),
        uri: format!("http://{addr}/v1/webhooks/stripe/floor").parse()?,
    });
    let recorder = Arc::new(Recorder::new(schedule.measured()));
    let start = Instant::now() + Duration::from_millis(200);
    let generator = tokio::spawn(load::run(target, Arc::new(requests), schedule, start, recorder.clone()));
    eprintln!(
        "bench: {server} server, warm-up {:?} at {} req/s",
        schedule.warmup, schedule.rate
    );
    tokio::time::sleep_until(start + schedule.warmup).await;
    let before = cpu::process_ticks(pid);
    eprintln!("bench: measuring, {:?}", schedule.duration);
    tokio::time::sleep_until(start + schedule.warmup + schedule.duration).await;
    let after = cpu::process_ticks(pid);
    tokio::time::timeout(schedule.timeout + Duration::from_secs(5), generator)
        .await
        .context("the load generator did not finish")??;
    let _ = child.kill().await;

    let load = recorder.summary();
    let hz = cpu::ticks_per_second() as f64;
    let server_cpu_us_per_request = match (before, after) {
        (Some(b), Some(a)) if load.accepted > 0 => Some((a - b) as f64 / hz * 1e6 / load.accepted as f64),
        _ => None,
    };
    Ok(Report {
        server: args.server,
        rate: schedule.rate,
        duration_secs: schedule.duration.as_secs_f64(),
        accepted_per_sec: load.accepted as f64 / schedule.duration.as_secs_f64(),
        ack_latency: load.ack_latency.clone(),
        server_cpu_us_per_request,
        non_200: load.sent.saturating_sub(load.accepted),
    })
}

pub fn human(r: &Report) -> String {
    let latency = r.ack_latency.as_ref().map_or("-".to_string(), |l| {
        format!("p50 {:.2}  p99 {:.2}  max {:.2} ms", l.p50_ms, l.p99_ms, l.max_ms)
    });
    let cpu = r
        .server_cpu_us_per_request
        .map_or("-".to_string(), |us| format!("{us:.1}"));
    format!(
        "\nhttp-floor: a do-nothing {} server at {} req/s for {} s\n  \
         answered 200/s        {:.1}\n  \
         answer latency        {latency}\n  \
         server CPU µs/request {cpu}\n  \
         not answered 200      {}\n\n\
         This is a floor under `switchyard-bench ingress` at the same rate: the ingress\n\
         does all of this and then verifies, stores and publishes.\n",
        r.server.name(),
        r.rate,
        r.duration_secs,
        r.accepted_per_sec,
        r.non_200
    )
}

/// The child: one runtime thread, like the ingress.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            match args.server {
                Server::Raw => {
                    tokio::spawn(raw_connection(stream));
                }
                Server::Hyper => {
                    let svc = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(ANSWER)))
                    });
                    let conn = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .into_owned();
                    tokio::spawn(conn);
                }
            }
        }
    })
}

/// Keep-alive HTTP/1.1 with `content-length` bodies, nothing else.
async fn raw_connection(mut stream: TcpStream) {
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        ANSWER.len()
    )
    .into_bytes();
    answer.extend_from_slice(ANSWER);
    let mut buf = vec![0u8; MAX_HEAD + MAX_BODY];
    let mut have = 0;
    loop {
        let head_end = loop {
            if let Some(at) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if have >= MAX_HEAD {
                return;
            }
            match stream.read(&mut buf[have..MAX_HEAD]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        };
        let body_len = content_length(&buf[..head_end]).unwrap_or(0);
        if body_len > MAX_BODY {
            return;
        }
        let end = head_end + body_len;
        while have < end {
            match stream.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => have += n,
            }
        }
        if stream.write_all(&answer).await.is_err() {
            return;
        }
        buf.copy_within(end..have, 0);
        have -= end;
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_found_in_any_case() {
        assert_eq!(
            content_length(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n"),
            Some(12)
        );
        assert_eq!(content_length(b"POST / HTTP/1.1\r\ncontent-length:7\r\n\r\n"), Some(7));
        assert_eq!(content_length(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
    }
}
