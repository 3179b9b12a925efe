//! CPU time from `/proc`: how the benchmark measures what one accepted webhook costs.
//!
//! A process's CPU time is `utime + stime` of `/proc/<pid>/stat` (all its threads,
//! living and exited), in clock ticks. The benchmark takes a [`Snapshot`] when the
//! measured window opens and another when it closes; [`Window`] is the difference. The
//! processes it watches are found among this process's own descendants by executable
//! name ([`find_descendant`]): the harness runs each server under a small `sh` wrapper,
//! so the server is a grandchild.
//!
//! Also here: the whole machine's busy time (`/proc/stat`) and the ingress's threads
//! (`/proc/<pid>/task/*/stat`), to see where the time goes when an aim is missed.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Upper bound on `/proc` entries read while looking for descendants.
const MAX_PROC_ENTRIES: usize = 100_000;

/// Clock ticks per second of `utime` and `stime` (`USER_HZ`), from `getconf CLK_TCK`;
/// 100, Linux's value on every common architecture, if that fails.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|hz| *hz > 0)
        .unwrap_or(100)
}

/// What `/proc/<pid>/stat` says that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// `utime + stime`, in clock ticks.
    pub ticks: u64,
}

/// Parses one `stat` line. `comm` is in parentheses and may itself contain spaces and
/// parentheses, so the fields after it are found from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_string();
    // After ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    // cmajflt utime stime ...
    let rest: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(Stat {
        comm,
        ppid,
        ticks: utime + stime,
    })
}

fn read_stat(path: &Path) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// CPU ticks used so far by process `pid`, all threads included.
pub fn process_ticks(pid: u32) -> Option<u64> {
    read_stat(&Path::new("/proc").join(pid.to_string()).join("stat")).map(|s| s.ticks)
}

/// The first descendant of `root` whose executable's file name is `name`.
pub fn find_descendant(root: u32, name: &str) -> Option<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten().take(MAX_PROC_ENTRIES) {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(stat) = read_stat(&entry.path().join("stat")) {
            children.entry(stat.ppid).or_default().push(pid);
        }
    }
    // Breadth first; the visited set bounds the walk even if /proc changed under us.
    let mut queue = vec![root];
    let mut seen = std::collections::HashSet::new();
    while let Some(pid) = queue.pop() {
        if !seen.insert(pid) {
            continue;
        }
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if is_named(child, name) {
                return Some(child);
            }
            queue.push(child);
        }
    }
    None
}

/// Whether process `pid` runs the program `name`: its executable's file name, or, as
/// the executable may be a link target of another name (`redis-server` →
/// `redis-check-rdb`), the file name of its first argument.
fn is_named(pid: u32, name: &str) -> bool {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    if exe.as_deref().and_then(Path::file_name).is_some_and(|n| n == name) {
        return true;
    }
    // Some servers rewrite their command line into one string: "redis-server 127.0.0.1:6379".
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|b| *b == 0 || *b == b' ').next().unwrap_or_default();
    Path::new(std::ffi::OsStr::from_bytes(argv0))
        .file_name()
        .is_some_and(|n| n == name)
}

/// The machine's busy and total CPU ticks, summed over all CPUs (`/proc/stat`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineTicks {
    pub busy: u64,
    pub total: u64,
    /// Ticks the hypervisor ran something else while this VM wanted the CPU (inside
    /// `busy`).
    pub steal: u64,
}

pub fn machine_ticks() -> Option<MachineTicks> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine(text.lines().next()?)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time
/// is already inside user time.
fn parse_machine(line: &str) -> Option<MachineTicks> {
    let v: Vec<u64> = line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v.try_into().ok()?;
    let busy = user + nice + system + irq + softirq + steal;
    Some(MachineTicks {
        busy,
        total: busy + idle + iowait,
        steal,
    })
}

/// CPUs' worth of time the host took from this VM between two readings `wall` apart.
pub fn stolen_cores(a: Option<MachineTicks>, b: Option<MachineTicks>, wall: Duration, hz: u64) -> Option<f64> {
    let (a, b) = (a?, b?);
    let secs = wall.as_secs_f64();
    (secs > 0.0 && hz > 0).then(|| b.steal.saturating_sub(a.steal) as f64 / hz as f64 / secs)
}

/// Stolen time above which a run's CPU figures are not to be trusted: on this kind of VM
/// a process's own CPU time grows with it (the same drain measured 55 µs an event with
/// 0.17 s stolen and 237 µs with 7.8 s).
pub const STEAL_NOTE_CORES: f64 = 0.02;

/// The note a window with `stolen` cores of steal deserves, if any.
pub fn steal_note(stolen: Option<f64>) -> Option<String> {
    let stolen = stolen.filter(|s| *s >= STEAL_NOTE_CORES)?;
    Some(format!(
        "the host took {stolen:.2} cores from this VM during the window (steal): every CPU figure above is \
         inflated by it; run again when the machine's steal is near 0"
    ))
}

/// Busy CPUs of the whole machine between two readings `wall` apart (2.0 = two cores
/// busy).
pub fn busy_cores(a: Option<MachineTicks>, b: Option<MachineTicks>, wall: Duration, hz: u64) -> Option<f64> {
    let (a, b) = (a?, b?);
    let secs = wall.as_secs_f64();
    (secs > 0.0 && hz > 0).then(|| b.busy.saturating_sub(a.busy) as f64 / hz as f64 / secs)
}

/// A process the benchmark reports on.
#[derive(Debug, Clone)]
pub struct Watched {
    /// As shown in the report: `ingress`, `nats-server`, …
    pub label: String,
    pub pid: u32,
}

/// CPU counters at one moment.
pub struct Snapshot {
    at: Instant,
    processes: Vec<Option<u64>>,
    machine: Option<MachineTicks>,
    /// Thread id → (name, ticks) of the process whose threads are broken down.
    threads: BTreeMap<u32, (String, u64)>,
}

/// Reads the counters of `watched` (same order) and the threads of `threads_of`.
pub fn snapshot(watched: &[Watched], threads_of: Option<u32>) -> Snapshot {
    let mut threads = BTreeMap::new();
    if let Some(pid) = threads_of {
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten().take(MAX_PROC_ENTRIES) {
                let tid = task.file_name().to_str().and_then(|s| s.parse::<u32>().ok());
                if let (Some(tid), Some(stat)) = (tid, read_stat(&task.path().join("stat"))) {
                    threads.insert(tid, (stat.comm, stat.ticks));
                }
            }
        }
    }
    Snapshot {
        at: Instant::now(),
        processes: watched.iter().map(|w| process_ticks(w.pid)).collect(),
        machine: machine_ticks(),
        threads,
    }
}

/// CPU seconds of one process over the window; `None` if it could not be read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessCpu {
    pub label: String,
    pub pid: u32,
    pub cpu_secs: Option<f64>,
}

/// One thread's CPU seconds over the window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadCpu {
    pub tid: u32,
    pub name: String,
    pub cpu_secs: f64,
}

/// What happened between two snapshots.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Window {
    pub wall_secs: f64,
    pub processes: Vec<ProcessCpu>,
    /// Busy CPUs of the whole machine, averaged over the window (2.0 = two cores busy).
    pub machine_busy_cores: Option<f64>,
    /// CPUs' worth of time the host took from this VM over the window (steal).
    pub machine_stolen_cores: Option<f64>,
    /// Threads of the broken-down process, most CPU first (threads that ended within
    /// the window are missing; their time is still in the process total).
    pub threads: Vec<ThreadCpu>,
}

pub fn window(a: &Snapshot, b: &Snapshot, watched: &[Watched], hz: u64) -> Window {
    let hz = hz as f64;
    let wall_secs = b.at.duration_since(a.at).as_secs_f64();
    let processes = watched
        .iter()
        .enumerate()
        .map(|(i, w)| ProcessCpu {
            label: w.label.clone(),
            pid: w.pid,
            cpu_secs: match (
                a.processes.get(i).copied().flatten(),
                b.processes.get(i).copied().flatten(),
            ) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / hz),
                _ => None,
            },
        })
        .collect();
    let machine_busy_cores = busy_cores(a.machine, b.machine, b.at.duration_since(a.at), hz as u64);
    let machine_stolen_cores = stolen_cores(a.machine, b.machine, b.at.duration_since(a.at), hz as u64);
    let mut threads: Vec<ThreadCpu> = b
        .threads
        .iter()
        .map(|(tid, (name, ticks))| {
            let before = a.threads.get(tid).map_or(0, |(_, t)| *t);
            ThreadCpu {
                tid: *tid,
                name: name.clone(),
                cpu_secs: ticks.saturating_sub(before) as f64 / hz,
            }
        })
        .filter(|t| t.cpu_secs > 0.0)
        .collect();
    threads.sort_by(|x, y| y.cpu_secs.total_cmp(&x.cpu_secs));
    Window {
        wall_secs,
        processes,
        machine_busy_cores,
        machine_stolen_cores,
        threads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (tokio (runtime) w) S 4200 4242 4200 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 5 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: "tokio (runtime) w".into(),
                ppid: 4200,
                ticks: 325
            })
        );
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(process_ticks(me).is_some());
        let s = snapshot(
            &[Watched {
                label: "me".into(),
                pid: me,
            }],
            Some(me),
        );
        assert!(!s.threads.is_empty());
        assert!(machine_ticks().is_some_and(|m| m.total >= m.busy));
    }

    #[test]
    fn parses_the_machine_line() {
        let m = parse_machine("cpu  100 5 50 1000 20 1 2 3 0 0").unwrap();
        assert_eq!(m.busy, 161);
        assert_eq!(m.total, 1181);
        assert_eq!(m.steal, 3);
    }

    #[test]
    fn steal_over_the_bound_is_noted() {
        let at = |steal| {
            Some(MachineTicks {
                busy: 0,
                total: 0,
                steal,
            })
        };
        let stolen = stolen_cores(at(100), at(150), Duration::from_secs(10), 100);
        assert_eq!(stolen, Some(0.05));
        assert!(steal_note(stolen).is_some_and(|n| n.contains("0.05 cores")));
        assert_eq!(
            steal_note(stolen_cores(at(100), at(101), Duration::from_secs(10), 100)),
            None
        );
    }
}
