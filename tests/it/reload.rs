//! The connector catalog changes without a restart: a new connector file takes effect
//! for the next request, and a broken edit is rejected, counted, and changes nothing.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use switchyard_tests::{shared, wait_until};

use crate::pipeline::{config_for, Pipeline, Receiver};

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

/// A copy of the shipped catalog (and the unified models beside it) to edit.
fn copy_catalog(to: &Path) -> std::path::PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors");
    for folder in ["catalog", "unified"] {
        let from = shipped.join(folder);
        let Ok(entries) = std::fs::read_dir(&from) else {
            continue;
        };
        std::fs::create_dir_all(to.join(folder)).unwrap();
        for e in entries.flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(folder).join(e.file_name())).unwrap();
            }
        }
    }
    to.join("catalog")
}

async fn reloads_rejected(p: &Pipeline) -> u64 {
    p.metric(
        p.ingress_ops,
        "switchyard_ingress_catalog_reloads_total{outcome=\"rejected\"}",
    )
    .await
    .unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connector_file_takes_effect_and_a_broken_edit_changes_nothing() {
    let servers = shared().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "reload");
    config.catalog = copy_catalog(tmp.path());
    let p = Pipeline::start(config.clone()).await.unwrap();
    let receiver = Receiver::start().await;
    let event = json!({"id": "a1", "type": "widget.made"}).to_string();
    let token = [("X-Acme-Token".to_string(), "acme-token".to_string())];
    let (status, _, _) = p.post_webhook("/v1/webhooks/acme/acme_1", &token, &event).await;
    assert_eq!(status, 404, "acme is not in the catalog yet");

    std::fs::write(config.catalog.join("acme.toml"), ACME).unwrap();
    // The dispatcher's admin API accepts an acme account once it has reloaded.
    let (s, b) = p
        .admin(Method::PUT, "/v1/tenants/tenant_r", Some(json!({"name": "R"})))
        .await;
    assert!(s.is_success(), "{b}");
    let (s, b) = p
        .admin(
            Method::POST,
            "/v1/tenants/tenant_r/endpoints",
            Some(json!({"url": receiver.url, "event_types": ["*"]})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    wait_until("the dispatcher knows acme", Duration::from_secs(15), || async {
        let (s, _) = p
            .admin(
                Method::PUT,
                "/v1/accounts/acme_1",
                Some(json!({"tenant_id": "tenant_r", "connector": "acme", "signing_secrets": ["acme-token"]})),
            )
            .await;
        s.is_success()
    })
    .await
    .unwrap();
    wait_until("the ingress accepts acme", Duration::from_secs(15), || async {
        p.post_webhook("/v1/webhooks/acme/acme_1", &token, &event).await.0 == 200
    })
    .await
    .unwrap();
    wait_until("the acme event is delivered", Duration::from_secs(20), || async {
        !receiver.all().is_empty()
    })
    .await
    .unwrap();
    let delivered: serde_json::Value = serde_json::from_slice(&receiver.all()[0].body).unwrap();
    assert_eq!(delivered["type"], "acme.widget.made");

    // A broken edit: rejected and counted; acme keeps working as before.
    std::fs::write(
        config.catalog.join("acme.toml"),
        "name = \"acme\"\nnot_a_field = true\n",
    )
    .unwrap();
    wait_until("the broken edit is rejected", Duration::from_secs(15), || async {
        reloads_rejected(&p).await >= 1
    })
    .await
    .unwrap();
    let again = json!({"id": "a2", "type": "widget.made"}).to_string();
    let (status, _, answer) = p.post_webhook("/v1/webhooks/acme/acme_1", &token, &again).await;
    assert_eq!(status, 200, "{answer}");
    p.stop().await;
}

/// A mapping whose output breaks its unified schema: the tenant still gets the event, as
/// the provider's own type with the provider's data and `mapping_error` saying why; it is
/// counted, and nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_event_that_breaks_its_schema_goes_out_as_the_providers_own_with_why() {
    let servers = shared().await;
    let tmp = tempfile::tempdir().unwrap();
    let catalog = copy_catalog(tmp.path());
    let acme = format!("{ACME}\n[mappings.\"widget.made\"]\ntype = \"crm.contact.created\"\ndata = '{{\"contact\": \"not an object\"}}'\n");
    std::fs::write(catalog.join("acme.toml"), acme).unwrap();
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "schema");
    config.catalog = catalog;
    let p = Pipeline::start(config).await.unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_s", "acme_s", "acme", "acme-token", &receiver.url, &["*"])
        .await;
    let token = [("X-Acme-Token".to_string(), "acme-token".to_string())];
    let event = json!({"id": "s1", "type": "widget.made", "colour": "teal"});
    let (status, _, answer) = p
        .post_webhook("/v1/webhooks/acme/acme_s", &token, &event.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");

    wait_until("the event is delivered", Duration::from_secs(20), || async {
        !receiver.all().is_empty()
    })
    .await
    .unwrap();
    let delivered: serde_json::Value = serde_json::from_slice(&receiver.all()[0].body).unwrap();
    assert_eq!(delivered["type"], "acme.widget.made", "{delivered}");
    assert_eq!(delivered["data"], event, "the provider's data, unchanged");
    assert!(delivered.get("schema_version").is_none(), "{delivered}");
    let why = &delivered["mapping_error"];
    assert_eq!(why["type"], "crm.contact.created", "{delivered}");
    assert_eq!(why["reason"], "schema_violation", "{delivered}");
    assert!(why["detail"].as_str().unwrap().contains("/contact"), "{delivered}");
    let counted = p
        .metric(
            p.normalizer_ops,
            "switchyard_normalizer_mapping_fallbacks_total{connector=\"acme\",type=\"crm.contact.created\"}",
        )
        .await;
    assert_eq!(counted, Some(1.0));
    let names = p.config.names();
    assert_eq!(
        p.stream_messages(&names.dead_letter_stream()).await,
        0,
        "no dead letter"
    );
    p.stop().await;
}
