//! What the system under test says about itself: the ingress's `/metrics` (scraped at
//! both ends of the measured window: how big the commit groups were, how long S3 PUTs
//! and publishes took) and JetStream's streams after the run (does the raw stream hold
//! every event the ingress acknowledged?), and the dead letters by subject (the chaos
//! run's).

use std::time::Duration;

use anyhow::Context;
use futures::TryStreamExt;
use serde::Serialize;

use crate::client::{self, Client};

/// Sum and count of one Prometheus histogram, over all its label sets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SumCount {
    pub sum: f64,
    pub count: f64,
}

/// Reads `<name>_sum` and `<name>_count` from Prometheus text.
pub fn histogram(text: &str, name: &str) -> SumCount {
    let mut out = SumCount::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (series, value) = match rest.rsplit_once(' ') {
            Some((s, v)) => (s, v.trim().parse::<f64>().unwrap_or(0.0)),
            None => continue,
        };
        let suffix = series.split('{').next().unwrap_or(series).trim();
        match suffix {
            "_sum" => out.sum += value,
            "_count" => out.count += value,
            _ => {}
        }
    }
    out
}

/// The ingress's `/metrics` text, or `None` if it could not be read.
pub async fn scrape(http: &Client, ingress_ops_url: &str) -> Option<String> {
    match client::get(http, &format!("{ingress_ops_url}/metrics"), Duration::from_secs(5)).await {
        Ok((200, body)) => Some(String::from_utf8_lossy(&body).into_owned()),
        _ => None,
    }
}

/// The ingress's view of the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Internals {
    /// Commit groups written (one S3 PUT and one round of publishes each).
    pub groups: u64,
    /// Requests per group, on average.
    pub mean_group_requests: Option<f64>,
    pub mean_s3_put_ms: Option<f64>,
    /// Publishing a group's envelopes until the last PubAck.
    pub mean_publish_ms: Option<f64>,
    /// Request start to response, as the ingress times it.
    pub mean_ack_ms: Option<f64>,
}

impl Internals {
    /// The difference between two scrapes.
    pub fn between(before: &str, after: &str) -> Self {
        let delta = |name: &str| {
            let (a, b) = (histogram(before, name), histogram(after, name));
            SumCount {
                sum: b.sum - a.sum,
                count: b.count - a.count,
            }
        };
        let mean = |d: SumCount, scale: f64| (d.count > 0.0).then(|| d.sum / d.count * scale);
        let groups = delta("switchyard_ingress_batch_requests");
        Self {
            groups: groups.count.max(0.0) as u64,
            mean_group_requests: mean(groups, 1.0),
            mean_s3_put_ms: mean(delta("switchyard_ingress_s3_put_seconds"), 1_000.0),
            mean_publish_ms: mean(delta("switchyard_ingress_publish_seconds"), 1_000.0),
            mean_ack_ms: mean(delta("switchyard_ingress_ack_seconds"), 1_000.0),
        }
    }
}

/// One JetStream stream after the run.
#[derive(Debug, Clone, Serialize)]
pub struct StreamState {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
}

/// JetStream on `nats_url`, and the names of its streams.
async fn jetstream(nats_url: &str) -> anyhow::Result<(async_nats::jetstream::Context, Vec<String>)> {
    let nats = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(nats_url)
        .await?;
    let js = async_nats::jetstream::new(nats);
    let names: Vec<String> = js.stream_names().try_collect().await?;
    Ok((js, names))
}

/// Every stream on the server, with its message count; bounded to 10 s.
pub async fn streams(nats_url: &str) -> anyhow::Result<Vec<StreamState>> {
    let read = async {
        let (js, names) = jetstream(nats_url).await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let info = js.get_stream(&name).await?.info().await?.clone();
            out.push(StreamState {
                name,
                messages: info.state.messages,
                bytes: info.state.bytes,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        anyhow::Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .context("JetStream did not list its streams within 10 s")?
}

/// Messages per subject of the stream whose name ends with `suffix` (`_DEAD_LETTERS`);
/// empty if there is no such stream.
pub async fn subjects(nats_url: &str, suffix: &str) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let read = async {
        let (js, names) = jetstream(nats_url).await?;
        let mut out = std::collections::BTreeMap::new();
        if let Some(name) = names.iter().find(|n| n.ends_with(suffix)) {
            let stream = js.get_stream(name).await?;
            let mut subjects = stream.info_with_subjects(">").await?;
            while let Some((subject, count)) = subjects.try_next().await? {
                out.insert(subject, count as u64);
            }
        }
        anyhow::Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .context("JetStream did not list the subjects within 10 s")?
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# HELP switchyard_ingress_batch_requests Requests per group.\n\
        switchyard_ingress_batch_requests_bucket{le=\"1\"} 1\n\
        switchyard_ingress_batch_requests_sum 10\n\
        switchyard_ingress_batch_requests_count 2\n\
        switchyard_ingress_ack_seconds_sum{connector=\"stripe\"} 0.5\n\
        switchyard_ingress_ack_seconds_count{connector=\"stripe\"} 100\n";
    const AFTER: &str = "switchyard_ingress_batch_requests_sum 110\n\
        switchyard_ingress_batch_requests_count 12\n\
        switchyard_ingress_ack_seconds_sum{connector=\"stripe\"} 1.5\n\
        switchyard_ingress_ack_seconds_count{connector=\"stripe\"} 600\n\
        switchyard_ingress_ack_seconds_sum{connector=\"github\"} 0\n\
        switchyard_ingress_ack_seconds_count{connector=\"github\"} 0\n";

    #[test]
    fn differences_of_histograms() {
        let i = Internals::between(BEFORE, AFTER);
        assert_eq!(i.groups, 10);
        assert_eq!(i.mean_group_requests, Some(10.0));
        assert_eq!(i.mean_ack_ms, Some(2.0));
        assert_eq!(i.mean_s3_put_ms, None);
    }
}
