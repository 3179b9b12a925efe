//! Helpers of the fault scenarios that reach outside the stack. The disk-full
//! scenario's disk: SeaweedFS's data folder moved onto a small tmpfs
//! (stopped, contents copied, tmpfs mounted over the folder, started again), then
//! filled to the last byte with a filler file, then freed by removing it.
//!
//! Needs root (`mount`); the scenario is skipped with the reason otherwise. The tmpfs
//! is detached lazily at the end (`umount -l`): SeaweedFS still has it open until the
//! stack stops, and the kernel frees it when the last file closes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::cpu;
use crate::e2e::Rig;

/// Headroom of the tmpfs above what the folder holds when it is mounted, MiB: room for
/// the volumes SeaweedFS grows for a new bucket (several of `volumeSizeLimitMB` = 64).
const HEADROOM_MIB: u64 = 1_024;

pub struct Tmpfs {
    data: PathBuf,
    size_mib: u64,
    filler_mib: u64,
}

async fn sh(what: &str, script: &str) -> anyhow::Result<String> {
    let out = tokio::process::Command::new("/bin/sh")
        .args(["-c", script])
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

impl Tmpfs {
    /// Moves the running SeaweedFS's data folder onto a tmpfs.
    pub async fn under_s3(rig: &mut Rig) -> anyhow::Result<Self> {
        let pid = cpu::find_descendant(std::process::id(), "weed").context("finding SeaweedFS")?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).context("reading SeaweedFS's command line")?;
        let data = cmdline
            .split(|b| *b == 0)
            .filter_map(|a| std::str::from_utf8(a).ok())
            .find_map(|a| a.strip_prefix("-dir="))
            .map(PathBuf::from)
            .context("SeaweedFS has no -dir= argument")?;
        let servers = rig.stack.servers.as_mut().context("no servers")?;
        servers.s3.stop().await?;
        let side = data.with_extension("before-tmpfs");
        let used_kib: u64 = sh("du", &format!("du -sk {}", quote(&data)))
            .await?
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let size_mib = used_kib / 1_024 + HEADROOM_MIB;
        sh(
            "moving SeaweedFS's folder onto a tmpfs",
            &format!(
                "mv {d} {s} && mkdir {d} && mount -t tmpfs -o size={size_mib}m swy-bench-disk-full {d} && cp -a {s}/. {d}/ && rm -rf {s}",
                d = quote(&data),
                s = quote(&side)
            ),
        )
        .await?;
        let servers = rig.stack.servers.as_mut().context("no servers")?;
        servers.s3.start_again().await?;
        Ok(Self {
            data,
            size_mib,
            filler_mib: 0,
        })
    }

    /// Fills the tmpfs: a filler file takes every free byte.
    pub async fn fill(&mut self) -> anyhow::Result<()> {
        let filler = self.data.join("filler");
        // dd stops with "No space left on device", which is the point.
        let _ = sh(
            "filling the tmpfs",
            &format!(
                "dd if=/dev/zero of={} bs=1M count={} 2>/dev/null; sync",
                quote(&filler),
                self.size_mib
            ),
        )
        .await;
        self.filler_mib = std::fs::metadata(&filler).map_or(0, |m| m.len() / (1 << 20));
        Ok(())
    }

    /// Frees the space again.
    pub async fn grow(&mut self) -> anyhow::Result<()> {
        std::fs::remove_file(self.data.join("filler")).context("removing the filler")
    }

    pub fn describe(&self) -> String {
        format!("tmpfs of {} MiB, filler {} MiB", self.size_mib, self.filler_mib)
    }

    /// Detaches the tmpfs (lazily: SeaweedFS still has files open on it).
    pub async fn remove(self) {
        let _ = sh("unmounting the tmpfs", &format!("umount -l {}", quote(&self.data))).await;
    }
}

/// The cluster node (`node-<i>`) leading the raw stream (the cluster holds the
/// bench's streams only).
pub async fn raw_stream_leader(url: &str) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    let client = async_nats::connect(url)
        .await
        .context("connecting to the NATS cluster")?;
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js.stream_names().try_collect().await.context("listing streams")?;
    let raw = names
        .iter()
        .find(|n| n.ends_with("_RAW"))
        .with_context(|| format!("no raw stream among {names:?}"))?;
    let info = js.get_stream(raw).await?.info().await?.clone();
    let leader = info
        .cluster
        .and_then(|c| c.leader)
        .context("the raw stream has no leader")?;
    leader
        .strip_prefix("node-")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("leader {leader:?} is not one of the harness's nodes"))
}
