//! Every metric the alert rules (`deploy/prometheus/alerts.yml`) and the Grafana
//! dashboard (`deploy/grafana/switchyard.json`) name is one the binaries export, so a
//! renamed metric fails here instead of silently silencing an alert.
//!
//! The pipeline runs in-process on the shared servers and is sent the traffic that makes
//! every labelled series appear (a counter vector is only exported once one of its
//! label sets is used): a delivered Stripe event, a bad signature, an unmapped Stripe
//! event under a `drop` policy, an event for an unregistered HubSpot portal (a
//! normalizer dead letter), an endpoint answering 410 Gone (disabled, its delivery
//! dead-lettered) and a catalog edit (a reload). Then `/metrics` of the ingress, the
//! normalizer and the dispatcher are scraped and the sample names compared with the
//! names the rules and the dashboard use (a histogram's series are `_bucket`, `_sum`
//! and `_count`; its bare name is reported as such).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_core::config::{ConfiguredSecret, ConnectorSettings};
use switchyard_core::secret::Secret;
use switchyard_tests::{shared, wait_for, wait_until};
use tokio::net::TcpListener;

use crate::pipeline::{config_for, hubspot_v3_headers, Pipeline, Receiver};
use crate::walking_skeleton::{customer_created, now, stripe_signature, STRIPE_SECRET};

const WAIT: Duration = Duration::from_secs(30);
const HUBSPOT_APP_SECRET: &str = "hubspot-app-secret-for-metrics";
/// Series Prometheus makes itself for every scrape target.
const SYNTHETIC: &[&str] = &["up"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_alert_rules_and_the_dashboard_is_exported() {
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/switchyard.json")).unwrap())
            .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(!exprs.is_empty(), "the dashboard has no queries");

    // Recording rules the dashboard may use instead of raw metrics.
    let recorded: BTreeSet<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:").map(|n| n.trim().to_string()))
        .collect();
    let mut used = names_in(&rules);
    for e in &exprs {
        for name in names_in(e) {
            if name.contains(':') {
                assert!(
                    recorded.contains(&name),
                    "the dashboard uses {name}, which no recording rule in alerts.yml defines"
                );
            } else {
                used.insert(name);
            }
        }
    }
    used.retain(|n| !n.contains(':'));
    assert!(used.len() > 10, "too few metric names found: {used:?}");

    let catalog = tempfile::tempdir().unwrap();
    let p = start_pipeline(catalog.path()).await;
    send_traffic(&p).await;

    let targets = [
        format!("http://{}/metrics", p.ingress_ops),
        format!("http://{}/metrics", p.normalizer_ops),
        format!("http://{}/metrics", p.dispatcher_ops),
    ];
    let waited = wait_until("every metric the rules and the dashboard use", WAIT, || {
        let (http, targets, used) = (p.http.clone(), targets.clone(), used.clone());
        async move { missing(&http, &targets, &used).await.is_some_and(|m| m.is_empty()) }
    })
    .await;
    let left = missing(&p.http, &targets, &used).await;
    p.stop().await;
    if waited.is_err() {
        panic!(
            "metrics used by deploy/prometheus/alerts.yml or deploy/grafana/switchyard.json \
             that no binary exports:\n  {}",
            left.unwrap_or_default().join("\n  ")
        );
    }
}

/// The names in `used` that none of the `/metrics` `targets` exports (`None`: a scrape
/// failed).
async fn missing(http: &reqwest::Client, targets: &[String], used: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut exported = BTreeSet::new();
    for t in targets {
        let text = http.get(t).send().await.ok()?.text().await.ok()?;
        exported.extend(sample_names(&text));
    }
    Some(
        used.iter()
            .filter(|n| !SYNTHETIC.contains(&n.as_str()) && !exported.contains(*n))
            .map(|n| explain(n, &exported))
            .collect(),
    )
}

/// Why `name` is not exported: a histogram's base name is not a series.
fn explain(name: &str, exported: &BTreeSet<String>) -> String {
    if exported.contains(&format!("{name}_bucket")) {
        format!("{name} (a histogram: query {name}_bucket, _sum or _count)")
    } else {
        name.to_string()
    }
}

/// Every `expr` string in the dashboard (panels, nested rows, template variables' `query`).
pub(crate) fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::Object(q)) => {
                        if let Some(Value::String(s)) = q.get("query") {
                            out.push(s.clone());
                        }
                    }
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Metric and recording-rule names in a text: identifiers starting `switchyard_` (or a
/// recording rule's `level:switchyard_…:ops`), plus `up`. Label values such as
/// `switchyard-ingress` contain a `-` and are not names.
fn names_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("switchyard_") || t.contains(":switchyard_") || *t == "up")
        .map(str::to_string)
        .collect()
}

/// Sample names in a Prometheus text exposition.
fn sample_names(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
}

/// A pipeline with a catalog of its own (so it can be edited) and a HubSpot app secret
/// (so an event for an unregistered portal is accepted, then dead-lettered).
async fn start_pipeline(catalog: &Path) -> Pipeline {
    let servers = shared().await;
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "metrics");
    config.catalog = copy_catalog(catalog);
    // Stripe events without a mapping are dropped (counted) rather than passed through.
    let stripe = config.catalog.join("stripe.toml");
    let text = std::fs::read_to_string(&stripe).unwrap();
    assert!(
        text.contains("unmapped = \"pass_through\""),
        "stripe.toml's unmapped policy moved"
    );
    std::fs::write(
        &stripe,
        text.replace("unmapped = \"pass_through\"", "unmapped = \"drop\""),
    )
    .unwrap();
    config.connectors.insert(
        "hubspot".into(),
        ConnectorSettings {
            secrets: vec![ConfiguredSecret::Plain(Secret::new(HUBSPOT_APP_SECRET))],
            public_keys: vec![],
            legacy_signatures: false,
        },
    );
    Pipeline::start(config).await.unwrap()
}

fn copy_catalog(to: &Path) -> PathBuf {
    let shipped = repo().join("connectors");
    for folder in ["catalog", "unified"] {
        std::fs::create_dir_all(to.join(folder)).unwrap();
        for e in std::fs::read_dir(shipped.join(folder)).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(folder).join(e.file_name())).unwrap();
            }
        }
    }
    to.join("catalog")
}

async fn send_traffic(p: &Pipeline) {
    let receiver = Receiver::start().await;
    p.register_stripe("tenant_m", "acct_m", STRIPE_SECRET, &receiver.url, &["*"])
        .await;
    // A second endpoint of the same tenant answers 410 Gone: disabled, dead-lettered.
    let gone = gone_receiver().await;
    let (s, b) = p
        .admin(
            Method::POST,
            "/v1/tenants/tenant_m/endpoints",
            Some(json!({"url": gone, "event_types": ["*"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let path = "/v1/webhooks/stripe/acct_m";
    let body = customer_created("evt_metrics_1");
    let (status, _, answer) = p
        .post_webhook(path, &[stripe_signature(STRIPE_SECRET, now(), &body)], &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    let bad = customer_created("evt_metrics_2");
    let (status, _, _) = p
        .post_webhook(path, &[stripe_signature("whsec_wrong", now(), &bad)], &bad)
        .await;
    assert_eq!(status, 401);
    let unmapped = customer_created("evt_metrics_3").replace("customer.created", "balance.available");
    let (status, _, answer) = p
        .post_webhook(path, &[stripe_signature(STRIPE_SECRET, now(), &unmapped)], &unmapped)
        .await;
    assert_eq!(status, 200, "{answer}");

    let hubspot = json!([{"eventId": 1, "subscriptionId": 7, "portalId": 424242, "appId": 1,
        "occurredAt": 1_700_000_000_000u64, "subscriptionType": "contact.creation",
        "attemptNumber": 0, "objectId": 101}])
    .to_string();
    let path = "/v1/webhooks/hubspot";
    let headers = hubspot_v3_headers(p, path, &hubspot, HUBSPOT_APP_SECRET);
    let (status, _, answer) = p.post_webhook(path, &headers, &hubspot).await;
    assert_eq!(status, 200, "{answer}");

    // A catalog edit: every binary reloads (counted by outcome).
    let stripe = p.config.catalog.join("stripe.toml");
    let mut text = std::fs::read_to_string(&stripe).unwrap();
    text.push_str("\n# edited by the metrics test\n");
    std::fs::write(&stripe, text).unwrap();

    wait_for("the Stripe event's delivery", WAIT, || async {
        receiver.all().first().cloned()
    })
    .await
    .unwrap();
}

/// A receiver answering every POST with 410 Gone; its URL.
async fn gone_receiver() -> String {
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { StatusCode::GONE }));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    url
}
