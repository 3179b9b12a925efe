//! A real `nats-server` with JetStream, on a free port with a temporary
//! store, for the event log the ingress publishes to and the normalizer and
//! dispatcher consume from.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use crate::managed::{Managed, Spec};
use crate::ports::{self, free_port};
use crate::process::locate;

const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running `nats-server -js`. Dropping it kills the server and deletes its
/// store.
pub struct Nats {
    server: Managed,
}

impl Nats {
    /// Starts `nats-server -js` on a free port, with its JetStream store in a
    /// temporary directory, and waits until it greets clients.
    ///
    /// The binary is `$SWITCHYARD_NATS_SERVER`, else `nats-server` on `PATH`,
    /// in `/usr/sbin` or in `/usr/bin`.
    pub async fn start() -> anyhow::Result<Self> {
        let program = locate(
            "nats-server",
            "SWITCHYARD_NATS_SERVER",
            &[],
            &[PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")],
        )?;
        let server = Managed::start("nats", |dir| {
            let port = free_port();
            let args: [OsString; 7] = [
                "-js".into(),
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string().into(),
                "-sd".into(),
                OsString::from(dir.join("js")),
            ];
            Ok(Spec {
                name: "nats-server",
                program: program.clone(),
                args: args.into(),
                port,
                // JetStream flushes its store on SIGTERM; that takes well
                // under a second.
                grace_secs: 5,
                leftovers: Vec::new(),
                ready_within: READY_WITHIN,
                ready: Box::new(move || greets(port)),
            })
        })
        .await?;
        Ok(Self { server })
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }

    /// `None` while the server listens; else that it is gone, with its log's
    /// last lines.
    pub fn gone(&self) -> Option<String> {
        self.server.gone()
    }

    pub fn port(&self) -> u16 {
        self.server.spec().port
    }

    /// The JetStream store directory, kept across [`Nats::stop`] and
    /// [`Nats::start_again`].
    pub fn store_dir(&self) -> PathBuf {
        self.server.dir().join("js")
    }

    /// Stops the server (SIGTERM) and waits until its port refuses
    /// connections. For outage tests.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.server.stop().await
    }

    /// Starts the stopped server again on the same port with the same
    /// store, and waits until it greets clients.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.server.start_again().await
    }
}

/// Ready when a new connection is greeted with the server's `INFO` line.
fn greets(port: u16) -> Result<(), String> {
    let stream = ports::connect(port, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // The greeting is the first line; allow for a couple of others anyway.
    for _ in 0..3 {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("connection closed before INFO".into()),
            Ok(_) if line.starts_with("INFO") => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading INFO: {e}")),
        }
    }
    Err(format!("no INFO line; last line: {}", line.trim_end()))
}
