//! One server process whose life is tied to the test process.
//!
//! Each server runs under a small `sh` wrapper ([`WRAPPER`]) that holds the
//! read end of a pipe on its stdin; this process holds the write end. When
//! that pipe closes — because [`ServerProcess`] was dropped, or because the
//! test process died for whatever reason, including servers kept in a
//! `static` whose `Drop` never runs — the wrapper kills the server. A test
//! run therefore leaves no servers behind.
//!
//! Also here: finding the server binaries ([`locate`]).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::wait::POLL_INTERVAL;

/// The wrapper, run as `sh -c WRAPPER sh GRACE DIR LEFTOVERS PROGRAM ARGS...`
/// in the server's directory (where it finds any configuration file there).
///
/// It first raises its soft limit on open files to the hard one: a shared
/// server holds files for every test of a run (JetStream's streams,
/// SeaweedFS's volumes). Under a soft limit of 512 the shared nats-server
/// died mid-suite and every later test failed.
///
/// It starts the server in the background, then a watchdog that blocks in
/// `read` on the inherited stdin pipe. The read returns when this process
/// writes `stop` (an ordinary stop: the server's directory is kept for a
/// restart) or at end of file (the handle was dropped or this process is
/// gone: the directory is deleted too). Either way the watchdog sends SIGTERM,
/// waits GRACE seconds, then SIGKILL (GRACE 0: SIGKILL at once). The wrapper
/// itself waits for the server, so it exits when the server does — a server
/// that dies on its own is seen at once — and then removes LEFTOVERS, the
/// space-separated paths of sockets the server leaves outside DIR.
const WRAPPER: &str = r#"
grace=$1 dir=$2 leftovers=$3
shift 3
ulimit -n "$(ulimit -Hn)" 2>/dev/null || :
exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
(
    if ! read -r _ <&3; then : >"$dir/.harness-gone"; fi
    if [ "$grace" -gt 0 ]; then
        kill -TERM "$server" 2>/dev/null
        sleep "$grace"
    fi
    kill -KILL "$server" 2>/dev/null
) &
watchdog=$!
exec 3<&-
wait "$server"
status=$?
kill "$watchdog" 2>/dev/null
for f in $leftovers; do
    if [ -S "$f" ]; then rm -f "$f"; fi
done
if [ -e "$dir/.harness-gone" ]; then rm -rf "$dir"; fi
exit "$status"
"#;

/// Extra time, beyond the grace period, that stopping may take before the
/// wrapper itself is killed.
const STOP_SLACK: Duration = Duration::from_secs(10);

/// How to run one server; see [`ServerProcess::spawn`].
pub struct Launch<'a> {
    /// The server binary.
    pub program: &'a Path,
    pub args: &'a [OsString],
    /// The server's own directory: deleted by the wrapper when the test
    /// process goes away (not on [`ServerProcess::stop`]).
    pub dir: &'a Path,
    /// Where the server's stdout and stderr are appended.
    pub log: &'a Path,
    /// Seconds between SIGTERM and SIGKILL when stopping; 0 kills at once.
    pub grace_secs: u32,
    /// Sockets the server leaves outside `dir`, removed after it exits. The
    /// paths must not contain spaces.
    pub leftovers: &'a [PathBuf],
}

/// A running server (under its wrapper). Dropping it kills the server and
/// waits for it.
pub struct ServerProcess {
    /// The `sh` wrapper; the server is its child.
    wrapper: Child,
    /// Write end of the wrapper's stdin pipe. Kept open for the server's
    /// whole life: closing it, by `Drop` or by the death of this process,
    /// makes the wrapper kill the server.
    tie: Option<ChildStdin>,
    /// Bounds how long stopping waits; see [`Launch::grace_secs`].
    grace: Duration,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the server under the wrapper. Does not wait for readiness.
    pub fn spawn(launch: &Launch<'_>) -> anyhow::Result<Self> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(launch.log)
            .with_context(|| format!("opening {}", launch.log.display()))?;
        let leftovers = launch
            .leftovers
            .iter()
            .map(|p| p.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut wrapper = Command::new("/bin/sh")
            .current_dir(launch.dir)
            .arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(launch.grace_secs.to_string())
            .arg(launch.dir)
            .arg(leftovers)
            .arg(launch.program)
            .args(launch.args)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", launch.program.display()))?;
        let tie = wrapper.stdin.take();
        Ok(Self {
            wrapper,
            tie,
            grace: Duration::from_secs(launch.grace_secs.into()),
            log: launch.log.to_path_buf(),
        })
    }

    /// `Some(status)` once the server has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.wrapper.try_wait().ok().flatten()
    }

    /// Stops the server (SIGTERM, SIGKILL after the grace period) and waits
    /// for it, keeping its directory so it can be started again.
    pub fn stop(mut self) {
        if let Some(tie) = &mut self.tie {
            // If the wrapper is already gone this fails; nothing to stop then.
            let _ = tie.write_all(b"stop\n");
        }
        self.finish();
    }

    /// The last `n` lines of the server's log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    /// Closes the tie and waits, bounded, for the wrapper to exit.
    fn finish(&mut self) {
        drop(self.tie.take());
        let end = Instant::now() + self.grace + STOP_SLACK;
        while self.exited().is_none() {
            if Instant::now() >= end {
                // The wrapper is stuck; kill it. Its watchdog still ends the
                // server once the grace period is over.
                let _ = self.wrapper.kill();
                let _ = self.wrapper.wait();
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The last `n` lines of the file at `path` (at most its last 64 KiB).
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Finds a server binary: the path in `env_var` if set, else the first
/// executable `name` in `before_path`, then `$PATH`, then `after_path`.
/// The error says where it looked and to run `deploy/local/install-deps`.
pub(crate) fn locate(
    name: &str,
    env_var: &str,
    before_path: &[PathBuf],
    after_path: &[PathBuf],
) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return Ok(path);
        }
        bail!("{env_var}={} is not an executable file", path.display());
    }
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let dirs = before_path.iter().chain(&path_dirs).chain(after_path);
    if let Some(found) = dirs.map(|d| d.join(name)).find(|p| is_executable(p)) {
        return Ok(found);
    }
    let places: Vec<String> = before_path
        .iter()
        .map(|d| d.display().to_string())
        .chain(["$PATH".to_owned()])
        .chain(after_path.iter().map(|d| d.display().to_string()))
        .collect();
    bail!(
        "{name} not found (looked at ${env_var}, then in {}); run deploy/local/install-deps, \
         or set {env_var} to the binary",
        places.join(", ")
    )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
