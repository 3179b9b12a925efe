//! The operator's recovery loop, through the same library `switchyard dlq …` and
//! `switchyard replay raw` run: a dead letter is listed, the cause is fixed, the replay
//! delivers it (once, under the event's own `webhook-id`) and it leaves the dead-letter
//! stream; a dry run changes nothing; raw bodies in S3 go through a fixed mapping again.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_cli::dlq::DeadLetters;
use switchyard_cli::filter::Filter;
use switchyard_cli::progress::Silent;
use switchyard_cli::{raw, replay};
use switchyard_core::config::{Config, ConfiguredSecret, ConnectorSettings};
use switchyard_core::ids;
use switchyard_core::secret::Secret;
use switchyard_tests::{shared, wait_until};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{config_for, hubspot_v3_headers, Pipeline, Receiver};
use crate::walking_skeleton::{customer_created, now, stripe_signature, STRIPE_SECRET};

const APP_SECRET: &str = "hubspot-app-client-secret";
const WAIT: Duration = Duration::from_secs(30);

/// A pipeline whose HubSpot app secret verifies the connector-level URL, where an event
/// for a portal nobody registered is accepted and dead-lettered as `unknown_account`.
/// Its duplicate windows are 2 s, not 2 min: a normalizer dead letter is replayed only
/// once the window since it was dead-lettered has passed (see `cli/src/replay.rs`).
async fn hubspot_pipeline(tag: &str) -> Pipeline {
    let servers = shared().await;
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, tag);
    config.connectors.insert(
        "hubspot".into(),
        ConnectorSettings {
            secrets: vec![ConfiguredSecret::Plain(Secret::new(APP_SECRET))],
            public_keys: vec![],
            legacy_signatures: false,
        },
    );
    config.nats.duplicate_window_secs = 2;
    Pipeline::start(config).await.unwrap()
}

/// POST one HubSpot contact creation for `portal` to the connector-level URL.
async fn hubspot_event(p: &Pipeline, id: u64, portal: u64) {
    let body = json!([{"eventId": id, "subscriptionId": 7, "portalId": portal, "appId": 1,
        "occurredAt": 1_700_000_000_000u64, "subscriptionType": "contact.creation",
        "attemptNumber": 0, "objectId": 100 + id}])
    .to_string();
    let path = "/v1/webhooks/hubspot";
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(p, path, &body, APP_SECRET), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// Wait until the dead letters matching `filter` number `n`.
async fn dead_letters(dlq: &DeadLetters, filter: &Filter, n: usize) -> Vec<switchyard_cli::dlq::Item> {
    wait_until(&format!("{n} dead letter(s)"), WAIT, || async {
        dlq.list(filter).await.unwrap().items.len() == n
    })
    .await
    .unwrap();
    dlq.list(filter).await.unwrap().items
}

fn by_reason(reason: &str) -> Filter {
    Filter {
        reason: Some(reason.into()),
        ..Default::default()
    }
}

async fn put(p: &Pipeline, path: &str, body: Value) -> Value {
    let (s, b) = p.admin(Method::PUT, path, Some(body)).await;
    assert!(s.is_success(), "{path}: {b}");
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normalizer_dead_letter_is_delivered_once_its_account_exists() {
    let p = hubspot_pipeline("replay-norm").await;
    let receiver = Receiver::start().await;
    put(&p, "/v1/tenants/alpha", json!({"name": "Alpha"})).await;
    let (s, b) = p
        .admin(
            Method::POST,
            "/v1/tenants/alpha/endpoints",
            Some(json!({"url": receiver.url, "event_types": ["*"]})),
        )
        .await;
    assert!(s.is_success(), "{b}");

    // Portal 77001 is not registered yet: accepted, stored, dead-lettered.
    hubspot_event(&p, 1, 77001).await;
    let dlq = DeadLetters::open(&p.config).await.unwrap();
    let filter = Filter {
        connector: Some("hubspot".into()),
        ..by_reason("unknown_account")
    };
    let listed = dead_letters(&dlq, &filter, 1).await;
    assert_eq!(listed[0].letter.stage, "normalizer");
    assert!(listed[0].letter.detail.contains("77001"), "{:?}", listed[0].letter);
    let shown = dlq.get(&listed[0].seq.to_string()).await.unwrap().unwrap();
    assert_eq!(shown.letter, listed[0].letter);
    assert_eq!(dlq.get(&listed[0].letter.id).await.unwrap().unwrap().seq, listed[0].seq);

    // Replayed before the fix, it fails the same way and is dead-lettered again.
    let opts = replay::Options {
        dry_run: false,
        rate: Some(50.0),
    };
    let summary = replay::replay(&dlq, &filter, &opts, &mut Silent, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((summary.done, summary.failed), (1, 0), "{summary:?}");
    let again = dead_letters(&dlq, &filter, 1).await;
    assert_ne!(again[0].seq, listed[0].seq);

    // The fix: register the account. Then replay.
    put(
        &p,
        "/v1/accounts/alpha_hubspot",
        json!({"tenant_id": "alpha", "connector": "hubspot", "external_id": "77001"}),
    )
    .await;
    let summary = replay::replay(&dlq, &filter, &opts, &mut Silent, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (summary.matched, summary.done, summary.failed),
        (1, 1, 0),
        "{summary:?}"
    );

    wait_until("the replayed event's delivery", WAIT, || async {
        !receiver.all().is_empty()
    })
    .await
    .unwrap();
    let delivered: Value = serde_json::from_slice(&receiver.all()[0].body).unwrap();
    assert_eq!(delivered["account_id"], "alpha_hubspot");
    assert_eq!(delivered["tenant_id"], "alpha");
    // Its id is the one it would have had, had the account existed when it arrived.
    let key = ids::idempotency_key("hubspot", "alpha_hubspot", "1");
    assert_eq!(delivered["id"], ids::unified_event_id(&key, 0));
    assert!(dlq.list(&Filter::default()).await.unwrap().items.is_empty());
    p.stop().await;
}

/// A receiver answering 500 until told otherwise; records what it was sent and answered.
struct Flaky {
    url: String,
    failing: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes, u16)>>>,
}

impl Flaky {
    async fn start() -> Self {
        let failing = Arc::new(AtomicBool::new(true));
        let seen: Arc<Mutex<Vec<(HeaderMap, Bytes, u16)>>> = Arc::default();
        let (f, s) = (failing.clone(), seen.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (f, s) = (f.clone(), s.clone());
                async move {
                    let status = if f.load(Ordering::SeqCst) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    s.lock().unwrap().push((headers, body, status.as_u16()));
                    status
                }
            }),
        );
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Self { url, failing, seen }
    }

    fn answered(&self, status: u16) -> Vec<(String, Value)> {
        let id = |h: &HeaderMap| h.get("webhook-id").unwrap().to_str().unwrap().to_string();
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, s)| *s == status)
            .map(|(h, b, _)| (id(h), serde_json::from_slice(b).unwrap()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_dead_letter_is_delivered_once_more_with_the_same_webhook_id() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "replay-disp"))
        .await
        .unwrap();
    let receiver = Flaky::start().await;
    p.register_stripe("tenant_d", "acct_d", STRIPE_SECRET, &receiver.url, &["*"])
        .await;
    let body = customer_created("evt_replay_dispatcher");
    let sig = stripe_signature(STRIPE_SECRET, now(), &body);
    let (status, _, answer) = p
        .post_webhook("/v1/webhooks/stripe/acct_d", std::slice::from_ref(&sig), &body)
        .await;
    assert_eq!(status, 200, "{answer}");

    // The first attempt and the schedule's three retries fail: a dead letter.
    let dlq = DeadLetters::open(&p.config).await.unwrap();
    let filter = Filter {
        stage: Some("dispatcher".into()),
        tenant: Some("tenant_d".into()),
        ..Default::default()
    };
    let listed = dead_letters(&dlq, &filter, 1).await;
    let letter = &listed[0].letter;
    assert_eq!(letter.attempts.len(), 4, "{letter:?}");
    let failed = receiver.answered(500);
    assert_eq!(failed.len(), 4);
    let (webhook_id, first_body) = failed[0].clone();
    assert_eq!(letter.event_id.as_deref(), Some(webhook_id.as_str()));

    // The endpoint is fixed; the replay delivers the event once more.
    receiver.failing.store(false, Ordering::SeqCst);
    let summary = replay::replay(
        &dlq,
        &filter,
        &replay::Options::default(),
        &mut Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!((summary.done, summary.failed), (1, 0), "{summary:?}");
    assert!(dlq.list(&Filter::default()).await.unwrap().items.is_empty());
    let names = p.config.names();
    wait_until("the replayed delivery, acknowledged", WAIT, || async {
        !receiver.answered(200).is_empty() && p.stream_messages(&names.retry_stream()).await == 0
    })
    .await
    .unwrap();
    let delivered = receiver.answered(200);
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].0, webhook_id,
        "the same webhook-id, so the receiver can dedupe"
    );
    assert_eq!(delivered[0].1, first_body);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_and_purge_deletes() {
    let p = hubspot_pipeline("replay-dry").await;
    hubspot_event(&p, 5, 88002).await;
    let dlq = DeadLetters::open(&p.config).await.unwrap();
    let before = dead_letters(&dlq, &Filter::default(), 1).await;
    let names = p.config.names();
    let raw_before = p.stream_messages(&names.raw_stream()).await;
    let (stop, dry) = (
        CancellationToken::new(),
        replay::Options {
            dry_run: true,
            rate: None,
        },
    );

    let s = replay::replay(&dlq, &Filter::default(), &dry, &mut Silent, &stop)
        .await
        .unwrap();
    assert_eq!((s.matched, s.done, s.dry_run), (1, 1, true), "{s:?}");
    assert_eq!(s.items[0].action, "would replay");
    assert_eq!(
        s.items[0].target.as_deref(),
        Some(names.raw_subject("hubspot").as_str())
    );
    let s = replay::purge(&dlq, &Filter::default(), true, &mut Silent, &stop)
        .await
        .unwrap();
    assert_eq!((s.done, s.items[0].action.as_str()), (1, "would purge"));
    let s = raw::replay_raw(&p.config, &raw_options("hubspot", None, true), &mut Silent, &stop)
        .await
        .unwrap();
    assert_eq!((s.matched, s.items[0].action.as_str()), (1, "would publish"), "{s:?}");

    let after = dlq.list(&Filter::default()).await.unwrap().items;
    assert_eq!(
        after.iter().map(|i| i.seq).collect::<Vec<_>>(),
        before.iter().map(|i| i.seq).collect::<Vec<_>>()
    );
    assert_eq!(p.stream_messages(&names.raw_stream()).await, raw_before);
    assert_eq!(p.stream_messages(&names.retry_stream()).await, 0);

    // A filter that matches nothing purges nothing; the right one purges.
    let s = replay::purge(&dlq, &by_reason("mapping_error"), false, &mut Silent, &stop)
        .await
        .unwrap();
    assert_eq!(s.matched, 0);
    let s = replay::purge(&dlq, &by_reason("unknown_account"), false, &mut Silent, &stop)
        .await
        .unwrap();
    assert_eq!((s.done, s.failed), (1, 0));
    assert!(dlq.list(&Filter::default()).await.unwrap().items.is_empty());
    p.stop().await;
}

fn raw_options(connector: &str, account: Option<&str>, dry_run: bool) -> raw::Options {
    let now = time::OffsetDateTime::now_utc();
    raw::Options {
        connector: connector.into(),
        account: account.map(str::to_string),
        since: now - time::Duration::minutes(10),
        until: now + time::Duration::minutes(1),
        dry_run,
        rate: None,
        new_ids: false,
    }
}

const ACME: &str = r#"
name = "acme"
title = "Acme (test)"
unmapped = "pass_through"
[signature]
scheme = "token"
header = "X-Acme-Token"
[event]
id = { json = "id" }
type = { json = "type" }
"#;

/// A broken mapping: it raises an error on every event.
const ACME_BROKEN: &str =
    "[mappings.\"widget.made\"]\ntype = \"crm.contact.created\"\ndata = '$error(\"this mapping is broken\")'\n";

/// The shipped catalog and unified models, copied to `to`, with acme beside them.
fn catalog_with_acme(to: &Path, extra: &str) -> std::path::PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors");
    for folder in ["catalog", "unified"] {
        std::fs::create_dir_all(to.join(folder)).unwrap();
        for e in std::fs::read_dir(shipped.join(folder)).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(folder).join(e.file_name())).unwrap();
            }
        }
    }
    std::fs::write(to.join("catalog/acme.toml"), format!("{ACME}{extra}")).unwrap();
    to.join("catalog")
}

async fn acme_event(p: &Pipeline, account: &str, id: &str) {
    let token = [("X-Acme-Token".to_string(), "acme-token".to_string())];
    let body = json!({"id": id, "type": "widget.made"}).to_string();
    let (status, _, answer) = p
        .post_webhook(&format!("/v1/webhooks/acme/{account}"), &token, &body)
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_raw_re_drives_a_connectors_events_from_s3_through_the_fixed_mapping() {
    let servers = shared().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut config: Config = config_for(&servers.nats, &servers.redis, &servers.s3, "replay-raw");
    config.catalog = catalog_with_acme(tmp.path(), ACME_BROKEN);
    let p = Pipeline::start(config.clone()).await.unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_r", "acme_a", "acme", "acme-token", &receiver.url, &["*"])
        .await;
    put(
        &p,
        "/v1/accounts/acme_b",
        json!({"tenant_id": "tenant_r", "connector": "acme", "signing_secrets": ["acme-token"]}),
    )
    .await;
    for (account, id) in [("acme_a", "w1"), ("acme_a", "w2"), ("acme_b", "w3")] {
        acme_event(&p, account, id).await;
    }
    let dlq = DeadLetters::open(&config).await.unwrap();
    dead_letters(&dlq, &by_reason("mapping_error"), 3).await;
    assert!(receiver.all().is_empty());

    // The fix ships (a restart with the corrected file); acme_a's events are re-driven.
    p.stop().await;
    std::fs::write(config.catalog.join("acme.toml"), ACME).unwrap();
    let p = Pipeline::start(config.clone()).await.unwrap();
    let stop = CancellationToken::new();
    let s = raw::replay_raw(&config, &raw_options("acme", Some("acme_a"), false), &mut Silent, &stop)
        .await
        .unwrap();
    assert_eq!((s.matched, s.done, s.failed), (2, 2, 0), "{s:?}");
    wait_until("both re-driven events delivered", WAIT, || async {
        receiver.all().len() == 2
    })
    .await
    .unwrap();
    let mut ids: Vec<String> = receiver
        .all()
        .iter()
        .map(|d| {
            let e: Value = serde_json::from_slice(&d.body).unwrap();
            assert_eq!(e["type"], "acme.widget.made");
            assert_eq!(e["account_id"], "acme_a");
            d.headers["webhook-id"].to_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    // The ids the events had from the start: a receiver that had them would dedupe.
    let mut expected: Vec<String> = ["w1", "w2"]
        .iter()
        .map(|w| ids::unified_event_id(&ids::idempotency_key("acme", "acme_a", w), 0))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);

    // With new ids, the same events arrive again as new events.
    let opts = raw::Options {
        new_ids: true,
        ..raw_options("acme", Some("acme_a"), false)
    };
    let s = raw::replay_raw(&config, &opts, &mut Silent, &stop).await.unwrap();
    assert_eq!(s.done, 2, "{s:?}");
    wait_until("the new-id copies delivered", WAIT, || async {
        receiver.all().len() == 4
    })
    .await
    .unwrap();
    let fresh: Vec<String> = receiver.all()[2..]
        .iter()
        .map(|d| d.headers["webhook-id"].to_str().unwrap().to_string())
        .collect();
    assert!(fresh.iter().all(|id| !expected.contains(id)), "{fresh:?}");
    p.stop().await;
}

/// A mapping that never ends: stopped by its time limit on every try.
const ACME_ENDLESS: &str =
    "[mappings.\"widget.made\"]\ntype = \"acme.widget.made\"\ndata = '($f := function($x) { $f($x + 1) }; $f(0))'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_out_of_time_is_tried_again_before_its_dead_letter() {
    let servers = shared().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut config: Config = config_for(&servers.nats, &servers.redis, &servers.s3, "time-limit");
    config.catalog = catalog_with_acme(tmp.path(), ACME_ENDLESS);
    config.normalizer.mapping_timeout_ms = 50;
    config.normalizer.mapping_timeout_attempts = 3;
    let p = Pipeline::start(config.clone()).await.unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_t", "acme_t", "acme", "acme-token", &receiver.url, &["*"])
        .await;
    acme_event(&p, "acme_t", "slow-1").await;

    // Two more tries, 2 s apart, then the dead letter names every attempt.
    let dlq = DeadLetters::open(&config).await.unwrap();
    let letters = dead_letters(&dlq, &by_reason("mapping_error"), 1).await;
    let detail = &letters[0].letter.detail;
    assert!(
        detail.contains("D1012") && detail.contains("on each of 3 attempts"),
        "{detail}"
    );
    let retries = p
        .metric(
            p.normalizer_ops,
            "switchyard_normalizer_time_limit_retries_total{connector=\"acme\"}",
        )
        .await;
    assert_eq!(retries, Some(2.0));
    assert!(receiver.all().is_empty());
    p.stop().await;
}
