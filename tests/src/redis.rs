//! A real `redis-server` on a free port, persisting to an append-only file as
//! in production, for the registry and the components' short-lived state
//! (dedup marks, rate limits, delivery state).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::managed::{Managed, Spec};
use crate::ports::{self, free_port};
use crate::process::locate;

const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running `redis-server`. What it was told survives [`Redis::stop`] and
/// [`Redis::start_again`] (its append-only file); [`Redis::start_again_empty`]
/// loses it. Dropping it kills the server.
pub struct Redis {
    server: Managed,
}

impl Redis {
    /// Starts `redis-server` on a free port, bound to 127.0.0.1 with
    /// persistence off, and waits until it answers `PING`.
    ///
    /// The binary is `$SWITCHYARD_REDIS_SERVER`, else `redis-server` on
    /// `PATH`, in `/usr/sbin` or in `/usr/bin`.
    pub async fn start() -> anyhow::Result<Self> {
        let program = locate(
            "redis-server",
            "SWITCHYARD_REDIS_SERVER",
            &[],
            &[PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")],
        )?;
        let server = Managed::start("redis", |dir| {
            let port = free_port();
            let args: Vec<OsString> = vec![
                "--port".into(),
                port.to_string().into(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir.into(),
                "--save".into(),
                "".into(),
                // As in production: what was written survives a restart (start_again).
                "--appendonly".into(),
                "yes".into(),
                "--protected-mode".into(),
                "no".into(),
            ];
            Ok(Spec {
                name: "redis-server",
                program: program.clone(),
                args,
                port,
                grace_secs: 5,
                leftovers: Vec::new(),
                ready_within: READY_WITHIN,
                ready: Box::new(move || pongs(port)),
            })
        })
        .await?;
        Ok(Self { server })
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    /// `None` while the server listens; else that it is gone, with its log's
    /// last lines.
    pub fn gone(&self) -> Option<String> {
        self.server.gone()
    }

    pub fn port(&self) -> u16 {
        self.server.spec().port
    }

    /// Stops the server (SIGTERM) and waits until its port refuses
    /// connections. For outage tests.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.server.stop().await
    }

    /// Starts the stopped server again on the same port with the data it had,
    /// and waits until it answers `PING`.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.server.start_again().await
    }

    /// Starts the stopped server again with its data lost: its persistence files
    /// (the append-only folder or file, a snapshot) are deleted first.
    pub async fn start_again_empty(&mut self) -> anyhow::Result<()> {
        if self.server.is_running() {
            anyhow::bail!("redis-server is running: stop it before losing its data");
        }
        let dir = self.server.dir();
        for name in ["appendonlydir", "appendonly.aof", "dump.rdb"] {
            let path = dir.join(name);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("deleting {}", path.display()));
                }
                _ => {}
            }
        }
        self.server.start_again().await
    }
}

/// Ready when `PING` is answered with `+PONG`.
fn pongs(port: u16) -> Result<(), String> {
    let mut stream = ports::connect(port, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading the PING reply: {e}"))?;
    if line.trim_end() == "+PONG" {
        Ok(())
    } else {
        Err(format!("PING answered {:?}", line.trim_end()))
    }
}
