//! A three-node NATS JetStream cluster on loopback, for tests of the scaled-out shape
//! (streams at replication 3; a node stopped and started again) and for fault injection.
//!
//! Each node is a [`Managed`] `nats-server` like [`crate::Nats`], with a client port, a
//! cluster (route) port and a monitoring port, all picked before any node starts so every
//! node can be given the others' routes. The nodes start together: a node's readiness
//! probe is its monitoring `/healthz`, which answers 200 only once JetStream has a meta
//! leader, and that takes two of the three.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::managed::{Managed, Spec};
use crate::ports::{self, free_ports};
use crate::process::locate;
use crate::{Redis, S3};

/// Nodes in the cluster: the smallest with a quorum that survives losing one.
pub const NODES: usize = 3;
/// Electing a JetStream meta leader takes a few seconds after the routes connect.
const READY_WITHIN: Duration = Duration::from_secs(40);
const CLUSTER_NAME: &str = "swy-test";

/// The three ports of one node.
#[derive(Debug, Clone, Copy)]
struct NodePorts {
    client: u16,
    route: u16,
    monitor: u16,
}

/// A running three-node JetStream cluster. Dropping it kills every node and deletes
/// their stores.
pub struct NatsCluster {
    nodes: Vec<Managed>,
    ports: Vec<NodePorts>,
}

impl NatsCluster {
    /// Starts three `nats-server -js` nodes routed to each other, and returns once every
    /// node reports JetStream healthy. The binary is found as for [`crate::Nats`].
    pub async fn start() -> anyhow::Result<Self> {
        let program = locate(
            "nats-server",
            "SWITCHYARD_NATS_SERVER",
            &[],
            &[PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")],
        )?;
        let picked = free_ports(NODES * 3);
        let ports: Vec<NodePorts> = picked
            .chunks(3)
            .map(|p| NodePorts {
                client: p[0],
                route: p[1],
                monitor: p[2],
            })
            .collect();
        let starts = (0..NODES).map(|i| {
            let (program, ports) = (program.clone(), ports.clone());
            // The ports are fixed (the other nodes' routes name them), so a retried
            // start reuses them.
            Managed::start("nats-node", move |dir| Ok(node_spec(&program, &ports, i, dir)))
        });
        let nodes = start_all(starts).await?;
        Ok(Self { nodes, ports })
    }

    /// Every node's client URL, comma-separated: what `nats.url` takes.
    pub fn url(&self) -> String {
        (0..NODES).map(|i| self.node_url(i)).collect::<Vec<_>>().join(",")
    }

    /// The client URL of node `i` alone.
    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.ports[i].client)
    }

    /// Stops node `i` (SIGTERM) and waits until its client port refuses connections.
    pub async fn stop_node(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].stop().await
    }

    /// Starts the stopped node `i` again with its ports and store, and waits until it is
    /// healthy (caught up with the meta leader).
    pub async fn start_node_again(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].start_again().await
    }
}

/// The command line of node `i`: its own ports and store, routes to all three (a route
/// to itself is ignored).
fn node_spec(program: &std::path::Path, ports: &[NodePorts], i: usize, dir: &std::path::Path) -> Spec {
    let me = ports[i];
    let routes = ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{}", p.route))
        .collect::<Vec<_>>()
        .join(",");
    let args: Vec<OsString> = [
        "-js".to_string(),
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        me.client.to_string(),
        "-m".into(),
        me.monitor.to_string(),
        "-n".into(),
        format!("node-{i}"),
        "--cluster_name".into(),
        CLUSTER_NAME.into(),
        "--cluster".into(),
        format!("nats://127.0.0.1:{}", me.route),
        "--routes".into(),
        routes,
        "-sd".into(),
    ]
    .into_iter()
    .map(OsString::from)
    .chain([OsString::from(dir.join("js"))])
    .collect();
    Spec {
        name: "nats-server (cluster node)",
        program: program.to_path_buf(),
        args,
        port: me.client,
        grace_secs: 5,
        leftovers: Vec::new(),
        ready_within: READY_WITHIN,
        ready: Box::new(move || healthy(me.monitor)),
    }
}

/// Ready when the monitoring endpoint's `/healthz` answers 200: the server is up and, with
/// JetStream, current with a meta leader.
fn healthy(monitor: u16) -> Result<(), String> {
    let mut stream = ports::connect(monitor, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer.lines().next().unwrap_or_default();
    if status.contains(" 200 ") {
        Ok(())
    } else {
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        Err(format!("{status}: {body}"))
    }
}

/// Awaits every start at once (the nodes need each other to become ready); the first
/// error wins, and the nodes already started are dropped (killed).
async fn start_all<F>(starts: impl Iterator<Item = F>) -> anyhow::Result<Vec<Managed>>
where
    F: std::future::Future<Output = anyhow::Result<Managed>> + Send + 'static,
{
    let handles: Vec<_> = starts.map(tokio::spawn).collect();
    let mut nodes = Vec::with_capacity(handles.len());
    let mut first_error = None;
    for h in handles {
        match h.await {
            Ok(Ok(node)) => nodes.push(node),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if nodes.len() == NODES => Ok(nodes),
        None => bail!("{} of {NODES} cluster nodes started", nodes.len()),
    }
}

/// What a scaled-out deployment talks to: a NATS cluster, Redis and S3.
pub struct ClusterServers {
    pub nats: NatsCluster,
    pub redis: Redis,
    pub s3: S3,
}

impl ClusterServers {
    /// Starts all of them at once; returns when all are ready.
    pub async fn start() -> anyhow::Result<Self> {
        let (nats, redis, s3) = tokio::try_join!(NatsCluster::start(), Redis::start(), S3::start())?;
        Ok(Self { nats, redis, s3 })
    }
}
