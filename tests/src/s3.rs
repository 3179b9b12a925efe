//! A real S3 API — SeaweedFS's all-in-one `weed server -s3` — on free ports
//! with a temporary data directory, for the claim-check store that holds
//! webhook bodies. It checks every request's SigV4 signature, as AWS does: the
//! key `local` with the secret `local` (what `core/config.default.toml`
//! configures) may do anything; anonymous requests may only touch the bucket
//! the readiness probe writes.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::managed::{Managed, Spec};
use crate::ports::{self, free_ports};
use crate::process::locate;

/// SeaweedFS starts master, volume server, filer and S3 gateway one after
/// another (about 3 s here), then allocates volumes on the first write.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// Bucket and object the readiness probe writes.
const PROBE_BUCKET: &str = "/swy-harness-probe";
const PROBE_OBJECT: &str = "/swy-harness-probe/probe";
/// The access key and secret the gateway accepts (the default configuration's).
pub const ACCESS_KEY_ID: &str = "local";
pub const SECRET_ACCESS_KEY: &str = "local";

/// How many volumes the server may create: enough for every bucket of a test
/// run (one each, see `master.toml` below) on any disk.
const VOLUMES: u32 = 4_000;

/// Volumes created at a time for a bucket in tests: one (see `master.toml` below).
const TEST_VOLUME_GROWTH: u32 = 1;
/// ... and for load runs: SeaweedFS's own default for one copy.
const LOAD_VOLUME_GROWTH: u32 = 7;

/// A running SeaweedFS with its S3 gateway. Dropping it kills the server and
/// deletes its data.
pub struct S3 {
    server: Managed,
}

impl S3 {
    /// Starts `weed server -s3` on eight free ports and waits until the S3
    /// gateway lists buckets and has stored a probe object (so the volumes
    /// are allocated before the tests' first writes).
    ///
    /// The binary is `$SWITCHYARD_WEED`, else
    /// `<workspace>/.cache/seaweedfs/bin/weed` (as installed by
    /// `deploy/local/install-deps`), else `weed` on `PATH`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(TEST_VOLUME_GROWTH).await
    }

    /// [`S3::start`] growing volumes as SeaweedFS does by default, several at a time,
    /// for load runs: with one volume per bucket, a benchmark's bucket filled it within
    /// half a minute (64 MB), and the PUT that found it full waited about 200 ms for the
    /// next.
    pub async fn start_for_load() -> anyhow::Result<Self> {
        Self::start_with(LOAD_VOLUME_GROWTH).await
    }

    async fn start_with(growth: u32) -> anyhow::Result<Self> {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = manifest_dir.parent().unwrap_or(manifest_dir);
        let program = locate(
            "weed",
            "SWITCHYARD_WEED",
            &[workspace.join(".cache/seaweedfs/bin")],
            &[],
        )?;
        let server = Managed::start("s3", |dir| {
            let data = dir.join("data");
            std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
            // Read from the working directory, which is `dir`: one volume per
            // bucket rather than seven. The suite makes a bucket per pipeline
            // and a volume holds two open files, so seven each ran the server
            // towards its limit on open files.
            let master = dir.join("master.toml");
            std::fs::write(&master, format!("[master.volume_growth]\ncopy_1 = {growth}\n"))
                .with_context(|| format!("writing {}", master.display()))?;
            let identities = dir.join("s3-identities.json");
            std::fs::write(&identities, identities_json())
                .with_context(|| format!("writing {}", identities.display()))?;
            let p = free_ports(8);
            let flag = |name: &str, value: &dyn std::fmt::Display| -> OsString { format!("-{name}={value}").into() };
            let args = vec![
                // Logs to the server log only, not to files under /tmp.
                "-logtostderr".into(),
                "server".into(),
                flag("ip", &"127.0.0.1"),
                flag("ip.bind", &"127.0.0.1"),
                flag("dir", &data.display()),
                flag("master.port", &p[0]),
                flag("master.port.grpc", &p[1]),
                flag("volume.port", &p[2]),
                flag("volume.port.grpc", &p[3]),
                flag("filer.port", &p[4]),
                flag("filer.port.grpc", &p[5]),
                "-s3".into(),
                flag("s3.port", &p[6]),
                flag("s3.port.grpc", &p[7]),
                flag("s3.config", &identities.display()),
                flag("s3.port.iceberg", &0),
                flag("s3.port.lance", &0),
                flag("master.telemetry", &false),
                // A count, not 0 ("free disk / volume size"): on a machine with
                // 20 GB free the automatic count ran out after ~45 of the
                // suite's buckets (seven volumes each then), so each later
                // write failed. Volumes are not preallocated; an unused one costs
                // nothing, and `minFreeSpace` still guards a really full disk.
                flag("volume.max", &VOLUMES),
                flag("master.volumeSizeLimitMB", &64),
                // Read-only only when the disk is really full: the default, 1 %
                // of the disk, is 2.5 GB of a 250 GB one, and a CI machine whose
                // build trees leave less than that free would turn every volume
                // read-only mid-suite.
                flag("volume.minFreeSpace", &"64MiB"),
                // A restarted single master waits one election timeout
                // (default 10 s) before it leads again.
                flag("master.electionTimeout", &"1s"),
                // Keep these sockets in our directory rather than /tmp.
                flag("filer.localSocket", &dir.join("filer.sock").display()),
                flag("s3.localSocket", &dir.join("s3.sock").display()),
            ];
            // The gRPC sockets always go to /tmp; removed after each exit.
            let leftovers = [("master", p[1]), ("volume", p[3]), ("filer", p[5]), ("s3", p[7])]
                .iter()
                .map(|(kind, port)| PathBuf::from(format!("/tmp/seaweedfs-{kind}-grpc-{port}.sock")))
                .collect();
            let s3_port = p[6];
            Ok(Spec {
                name: "weed (SeaweedFS)",
                program: program.clone(),
                args,
                port: s3_port,
                // A graceful stop waits 15 s and more for gRPC streams;
                // SIGKILL at once (its writes are already in its files).
                grace_secs: 0,
                leftovers,
                ready_within: READY_WITHIN,
                ready: Box::new(move || stores_objects(s3_port)),
            })
        })
        .await?;
        Ok(Self { server })
    }

    /// `http://127.0.0.1:<s3 port>`, for an S3 client with path-style
    /// addressing (any region, any credentials).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// `None` while the server listens; else that it is gone, with its log's
    /// last lines.
    pub fn gone(&self) -> Option<String> {
        self.server.gone()
    }

    /// The S3 gateway's port.
    pub fn port(&self) -> u16 {
        self.server.spec().port
    }

    /// Stops SeaweedFS (SIGKILL) and waits until the S3 port refuses
    /// connections. For outage tests.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.server.stop().await
    }

    /// Starts SeaweedFS again on the same ports with the same data, and
    /// waits until it is ready (about 3 s).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.server.start_again().await
    }
}

/// SeaweedFS's identities file: our key may do everything, anonymous requests
/// only what the readiness probe does.
fn identities_json() -> String {
    let probe = PROBE_BUCKET.trim_start_matches('/');
    serde_json::json!({
        "identities": [
            {
                "name": "switchyard",
                "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            },
            {
                "name": "anonymous",
                "actions": [format!("Admin:{probe}"), format!("Read:{probe}"), format!("Write:{probe}"), "List".to_string()]
            }
        ]
    })
    .to_string()
}

/// Ready when `GET /` answers 200 and a small object can be stored.
fn stores_objects(port: u16) -> Result<(), String> {
    expect(port, "GET", "/", b"", &[200])?;
    // 409: the bucket exists already (a restart, or an earlier probe).
    expect(port, "PUT", PROBE_BUCKET, b"", &[200, 409])?;
    expect(port, "PUT", PROBE_OBJECT, b"probe", &[200])
}

/// Sends one HTTP/1.1 request over a fresh connection and checks the status.
fn expect(port: u16, method: &str, path: &str, body: &[u8], ok: &[u16]) -> Result<(), String> {
    let status = status(port, method, path, body).map_err(|e| format!("{method} {path}: {e}"))?;
    if ok.contains(&status) {
        Ok(())
    } else {
        Err(format!("{method} {path} answered {status}"))
    }
}

fn status(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut stream = ports::connect(port, Duration::from_secs(10))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    // "HTTP/1.1 200 OK"
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {:?}", line.trim_end())))
}
