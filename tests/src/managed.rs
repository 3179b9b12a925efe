//! The start / stop / start-again cycle shared by the three servers.
//!
//! A [`Managed`] server owns a temporary directory (store, log) and a
//! [`Spec`]: its fixed command line, its main port and a readiness probe.
//! Starting spawns the process and polls the probe until it answers, the
//! process exits, or the deadline passes. All blocking work runs on
//! `spawn_blocking` threads with `std` sockets, so a server outlives the
//! runtime of the test that started it (see [`crate::shared`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tempfile::TempDir;

use crate::ports;
use crate::process::{Launch, ServerProcess};
use crate::wait::poll_blocking;

/// Lines of the server log quoted in a start-up error.
const LOG_LINES: usize = 30;
/// The server's stdout and stderr, in its directory.
const LOG_FILE: &str = "server.log";
/// How long a stopped server's port may keep accepting connections.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// Attempts at a first start whose server exits early (e.g. a free port was
/// taken by someone else before the server bound it); each picks new ports.
const START_ATTEMPTS: u32 = 3;

/// A readiness probe: `Err` says what was wrong, for the timeout message.
pub(crate) type Probe = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Everything needed to (re)start one server the same way.
pub(crate) struct Spec {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The port clients use; a stopped server refuses connections on it.
    pub port: u16,
    pub grace_secs: u32,
    pub leftovers: Vec<PathBuf>,
    pub ready_within: Duration,
    pub ready: Probe,
}

pub(crate) struct Managed {
    /// Declared first so it is dropped (server killed) before `dir` goes.
    process: Option<ServerProcess>,
    spec: Arc<Spec>,
    dir: TempDir,
}

/// Why a launch failed; only an early exit is worth retrying on new ports.
enum Failure {
    Exited(anyhow::Error),
    Other(anyhow::Error),
}

impl Managed {
    /// Creates the server's directory (`swy-<name>-…` under the system temp
    /// dir), then builds the spec with `build(dir)` — which picks ports — and
    /// starts the server, retrying with a fresh spec if it exits early.
    pub async fn start(
        name: &'static str,
        mut build: impl FnMut(&Path) -> anyhow::Result<Spec>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("swy-{name}-"))
            .tempdir()
            .context("creating a temporary directory")?;
        let mut attempt = 1;
        loop {
            let spec = Arc::new(build(dir.path())?);
            match launch(spec.clone(), dir.path().to_path_buf()).await {
                Ok(process) => {
                    return Ok(Self {
                        process: Some(process),
                        spec,
                        dir,
                    })
                }
                Err(Failure::Exited(_)) if attempt < START_ATTEMPTS => attempt += 1,
                Err(Failure::Exited(e) | Failure::Other(e)) => return Err(e),
            }
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// `None` while the server accepts connections on its port; else what an
    /// operator of the test run needs: that it is gone, and its log's last lines
    /// (kept: the wrapper deletes the directory only when the test process goes).
    pub fn gone(&self) -> Option<String> {
        ports::refuses(self.spec.port).ok()?;
        let tail = crate::process::log_tail(&self.dir.path().join(LOG_FILE), LOG_LINES);
        Some(format!(
            "{} no longer listens on port {}; its log ends:\n{tail}",
            self.spec.name, self.spec.port
        ))
    }

    /// Stops the server and waits until its port refuses connections.
    /// Stopping a stopped server does nothing.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(process) = self.process.take() else {
            return Ok(());
        };
        let spec = self.spec.clone();
        tokio::task::spawn_blocking(move || {
            process.stop();
            poll_blocking(
                &format!("{} to stop listening on port {}", spec.name, spec.port),
                STOP_DEADLINE,
                || Ok(()),
                || ports::refuses(spec.port),
            )
        })
        .await?
    }

    /// Starts the stopped server again on the same ports and directory, and
    /// waits until it is ready.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("{} is already running", self.spec.name);
        }
        let process = launch(self.spec.clone(), self.dir.path().to_path_buf())
            .await
            .map_err(|(Failure::Exited(e) | Failure::Other(e))| e)?;
        self.process = Some(process);
        Ok(())
    }
}

/// Spawns the server and waits for its probe. On failure the server is
/// stopped (keeping its directory) and the error quotes its log.
async fn launch(spec: Arc<Spec>, dir: PathBuf) -> Result<ServerProcess, Failure> {
    let joined = tokio::task::spawn_blocking(move || {
        let log = dir.join(LOG_FILE);
        let mut process = ServerProcess::spawn(&Launch {
            program: &spec.program,
            args: &spec.args,
            dir: &dir,
            log: &log,
            grace_secs: spec.grace_secs,
            leftovers: &spec.leftovers,
        })
        .map_err(Failure::Other)?;
        let mut exit = None;
        let waited = poll_blocking(
            &format!("{} on 127.0.0.1:{} to be ready", spec.name, spec.port),
            spec.ready_within,
            || match process.exited() {
                Some(status) => {
                    exit = Some(status);
                    Err(anyhow!("{} exited ({status}) before it was ready", spec.name))
                }
                None => Ok(()),
            },
            || (spec.ready)(),
        );
        match waited {
            Ok(()) => Ok(process),
            Err(e) => {
                let tail = process.log_tail(LOG_LINES);
                process.stop();
                let e = anyhow!(
                    "starting {} ({}) failed: {e:#}\nlast {LOG_LINES} lines of {}:\n{tail}",
                    spec.name,
                    spec.program.display(),
                    log.display()
                );
                Err(if exit.is_some() {
                    Failure::Exited(e)
                } else {
                    Failure::Other(e)
                })
            }
        }
    })
    .await;
    joined.unwrap_or_else(|e| Err(Failure::Other(e.into())))
}
