//! The admin API end to end, on the dispatcher's real listener with Redis and NATS
//! behind it: round trips, pagination, field-level validation, auth, 404 and 409,
//! secret rotation, re-enabling, the attempts log, and deletes that reach the caches.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_dispatcher::attempts::AttemptRecord;
use switchyard_tests::{shared, wait_until};

use crate::pipeline::{config_for, Pipeline, ADMIN_TOKEN};
use crate::walking_skeleton::{customer_created, now, stripe_signature, STRIPE_SECRET};

async fn start(tag: &str) -> Pipeline {
    let servers = shared().await;
    Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, tag))
        .await
        .unwrap()
}

/// Asserts a 400 naming `field`; returns the message.
fn assert_invalid(answer: (reqwest::StatusCode, Value), field: &str) -> String {
    let (status, body) = answer;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], field, "{body}");
    assert!(matches!(body["code"].as_str(), Some("invalid")), "{body}");
    body["error"].as_str().unwrap_or_default().to_string()
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_accounts_round_trip_page_and_conflict() {
    let p = start("admin-accounts").await;
    for t in ["t-c", "t-a", "t-b"] {
        let (s, b) = p
            .admin(Method::PUT, &format!("/v1/tenants/{t}"), Some(json!({"name": t})))
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = p
        .admin(Method::PUT, "/v1/tenants/t-a", Some(json!({"name": "A"})))
        .await;
    assert_eq!((s.as_u16(), b["name"].as_str()), (200, Some("A")), "{b}");
    let (s, b) = p.admin(Method::GET, "/v1/tenants/t-a", None).await;
    assert_eq!((s.as_u16(), b["id"].as_str()), (200, Some("t-a")), "{b}");

    // Pages in id order, the cursor carrying on where the last page ended.
    let (s, b) = p.admin(Method::GET, "/v1/tenants?limit=2", None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(ids(&b), ["t-a", "t-b"]);
    let cursor = b["next_cursor"].as_str().expect("a next page").to_string();
    let (_, b) = p
        .admin(Method::GET, &format!("/v1/tenants?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(
        (ids(&b), b["next_cursor"].clone()),
        (vec!["t-c".to_string()], Value::Null)
    );
    assert_invalid(p.admin(Method::GET, "/v1/tenants?limit=0", None).await, "limit");
    assert_invalid(p.admin(Method::PUT, "/v1/tenants/bad.id", None).await, "tenant_id");

    // Accounts: listed by tenant, by connector, by both, and all of them page by page.
    for (id, tenant, connector, ext) in [
        ("acc-1", "t-a", "stripe", Some("x1")),
        ("acc-2", "t-a", "hubspot", None),
        ("acc-3", "t-b", "stripe", Some("x3")),
    ] {
        let (s, b) = p
            .admin(
                Method::PUT,
                &format!("/v1/accounts/{id}"),
                Some(json!({"tenant_id": tenant, "connector": connector, "external_id": ext, "signing_secrets": ["s3cr3t-value"]})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        assert!(!b.to_string().contains("s3cr3t-value"), "secrets are write-only: {b}");
    }
    let list = |q: &'static str| {
        let p = &p;
        async move {
            let (s, b) = p.admin(Method::GET, &format!("/v1/accounts{q}"), None).await;
            assert_eq!(s, 200, "{b}");
            (ids(&b), b["next_cursor"].as_str().map(str::to_string))
        }
    };
    assert_eq!(list("?tenant_id=t-a").await.0, ["acc-1", "acc-2"]);
    assert_eq!(list("?connector=stripe").await.0, ["acc-1", "acc-3"]);
    assert_eq!(list("?tenant_id=t-a&connector=stripe").await.0, ["acc-1"]);
    assert_eq!(
        list("?limit=2").await,
        (vec!["acc-1".into(), "acc-2".into()], Some("acc-2".into()))
    );
    assert_eq!(list("?limit=2&cursor=acc-2").await, (vec!["acc-3".into()], None));

    // 409: an external id taken by another account of the connector; moving an account.
    let (s, b) = p
        .admin(
            Method::PUT,
            "/v1/accounts/acc-4",
            Some(json!({"tenant_id": "t-b", "connector": "stripe", "external_id": "x1"})),
        )
        .await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (409, Some("external_id")), "{b}");
    let (s, b) = p
        .admin(
            Method::PUT,
            "/v1/accounts/acc-1",
            Some(json!({"tenant_id": "t-b", "connector": "stripe", "external_id": "x1"})),
        )
        .await;
    assert_eq!((s.as_u16(), b["field"].as_str()), (409, Some("tenant_id")), "{b}");
    let msg = assert_invalid(
        p.admin(
            Method::PUT,
            "/v1/accounts/acc-5",
            Some(json!({"tenant_id": "t-b", "connector": "no-such-connector"})),
        )
        .await,
        "connector",
    );
    assert!(msg.contains("stripe"), "names the known connectors: {msg}");
    assert_invalid(
        p.admin(Method::PUT, "/v1/accounts/acc-5", Some(json!({"tenant_id": "t-b"})))
            .await,
        "connector",
    );

    // Delete frees the external id for another account.
    let (s, _) = p.admin(Method::DELETE, "/v1/accounts/acc-1", None).await;
    assert_eq!(s, 204);
    assert_eq!(p.admin(Method::GET, "/v1/accounts/acc-1", None).await.0, 404);
    assert_eq!(p.admin(Method::DELETE, "/v1/accounts/acc-1", None).await.0, 404);
    let (s, b) = p
        .admin(
            Method::PUT,
            "/v1/accounts/acc-4",
            Some(json!({"tenant_id": "t-b", "connector": "stripe", "external_id": "x1"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(list("?connector=stripe").await.0, ["acc-3", "acc-4"]);

    // Deleting a tenant takes its endpoints and accounts with it.
    let (s, b) = p
        .admin(
            Method::POST,
            "/v1/tenants/t-a/endpoints",
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(p.admin(Method::DELETE, "/v1/tenants/t-a", None).await.0, 204);
    assert_eq!(p.admin(Method::GET, "/v1/tenants/t-a", None).await.0, 404);
    assert_eq!(p.admin(Method::GET, "/v1/tenants/t-a/endpoints", None).await.0, 404);
    assert_eq!(p.admin(Method::GET, "/v1/accounts/acc-2", None).await.0, 404);
    assert_eq!(p.admin(Method::DELETE, "/v1/tenants/t-a", None).await.0, 404);
    assert!(list("?tenant_id=t-a").await.0.is_empty());
    let (_, b) = p.admin(Method::GET, "/v1/tenants", None).await;
    assert_eq!(ids(&b), ["t-b", "t-c"]);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_round_trip_and_refuse_bad_fields_by_name() {
    let p = start("admin-endpoints").await;
    let (s, _) = p.admin(Method::PUT, "/v1/tenants/acme", None).await;
    assert_eq!(s, 201);
    let (s, created) = p
        .admin(
            Method::POST,
            "/v1/tenants/acme/endpoints",
            Some(json!({
                "url": "http://127.0.0.1:9/hook", "description": "billing", "event_types": ["payments.*"],
                "filter": "data.amount > 10000 and connector = \"stripe\"",
                "headers": {"X-Team": "billing"}, "rate_limit": 5, "max_in_flight": 3
            })),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/tenants/acme/endpoints/{id}");
    let (s, got) = p.admin(Method::GET, &path, None).await;
    assert_eq!(s, 200, "{got}");
    assert!(got.get("secret").is_none(), "the secret is shown once: {got}");
    assert_eq!(got["headers"], json!({"x-team": "billing"}));
    assert_eq!(
        (got["rate_limit"].as_u64(), got["max_in_flight"].as_u64()),
        (Some(5), Some(3))
    );
    assert_eq!(got["filter"], created["filter"]);
    assert_eq!(
        (got["enabled"].as_bool(), &got["disabled_reason"]),
        (Some(true), &Value::Null)
    );
    let (_, list) = p.admin(Method::GET, "/v1/tenants/acme/endpoints", None).await;
    assert_eq!(ids(&list), [id.as_str()]);

    // Each bad field is refused by name, on create and on update.
    let create = |body: Value| {
        let p = &p;
        async move {
            let mut full = json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]});
            full.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
            p.admin(Method::POST, "/v1/tenants/acme/endpoints", Some(full)).await
        }
    };
    let msg = assert_invalid(create(json!({"url": "http://10.0.0.1/x"})).await, "url");
    assert!(msg.contains("10.0.0.1"), "{msg}");
    assert_invalid(create(json!({"url": "ftp://example.com/x"})).await, "url");
    assert_invalid(create(json!({"url": "http://user:pw@127.0.0.1:9/x"})).await, "url");
    assert_invalid(create(json!({"event_types": ["Payments.Paid"]})).await, "event_types");
    assert_invalid(create(json!({"event_types": []})).await, "event_types");
    let msg = assert_invalid(create(json!({"filter": "data.amount >"})).await, "filter");
    assert!(msg.contains("JSONata"), "the engine's message: {msg}");
    assert_invalid(create(json!({"headers": {"webhook-id": "x"}})).await, "headers");
    assert_invalid(create(json!({"headers": {"Connection": "close"}})).await, "headers");
    assert_invalid(create(json!({"headers": {"bad header": "x"}})).await, "headers");
    assert_invalid(create(json!({"rate_limit": 0})).await, "rate_limit");
    assert_invalid(create(json!({"max_in_flight": 1001})).await, "max_in_flight");
    assert_invalid(create(json!({"max_in_flight": "ten"})).await, "max_in_flight");
    assert_invalid(create(json!({"colour": "blue"})).await, "colour");
    let (s, _) = p
        .admin(
            Method::POST,
            "/v1/tenants/nobody/endpoints",
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(s, 404);

    assert_invalid(
        p.admin(Method::PATCH, &path, Some(json!({"url": "http://10.0.0.1/x"})))
            .await,
        "url",
    );
    assert_invalid(
        p.admin(Method::PATCH, &path, Some(json!({"filter": "$$$("}))).await,
        "filter",
    );
    let (_, unchanged) = p.admin(Method::GET, &path, None).await;
    assert_eq!(
        unchanged["url"], "http://127.0.0.1:9/hook",
        "a refused update changes nothing"
    );

    // PATCH: left-out fields stay, null clears.
    let (s, b) = p
        .admin(
            Method::PATCH,
            &path,
            Some(
                json!({"url": "http://127.0.0.1:10/other", "filter": null, "rate_limit": null,
                        "event_types": ["payments.*.*", "crm.contact.created"], "headers": {}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["url"], "http://127.0.0.1:10/other");
    assert_eq!((&b["filter"], &b["rate_limit"]), (&Value::Null, &Value::Null));
    assert_eq!(
        (b["max_in_flight"].as_u64(), b["description"].as_str()),
        (Some(3), Some("billing"))
    );
    assert_eq!(b["headers"], json!({}));

    assert_eq!(p.admin(Method::DELETE, &path, None).await.0, 204);
    assert_eq!(p.admin(Method::GET, &path, None).await.0, 404);
    assert_eq!(p.admin(Method::DELETE, &path, None).await.0, 404);
    assert_eq!(p.admin(Method::PATCH, &path, Some(json!({}))).await.0, 404);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_old_secret_for_its_grace_and_enable_starts_afresh() {
    let p = start("admin-rotate").await;
    p.admin(Method::PUT, "/v1/tenants/acme", None).await;
    let (_, created) = p
        .admin(
            Method::POST,
            "/v1/tenants/acme/endpoints",
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/tenants/acme/endpoints/{id}");

    let (s, rotated) = p
        .admin(
            Method::POST,
            &format!("{path}/rotate-secret"),
            Some(json!({"grace_period_secs": 3600})),
        )
        .await;
    assert_eq!(s, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != created["secret"].as_str().unwrap());
    let (_, got) = p.admin(Method::GET, &path, None).await;
    let previous = got["previous_secrets"].as_array().unwrap().clone();
    assert_eq!(previous.len(), 1, "{got}");
    let expires = time::OffsetDateTime::parse(
        previous[0]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert!((expires - (now() + 3600)).abs() <= 60, "expires in an hour: {got}");
    assert!(!got.to_string().contains("whsec_"), "no secret in the view: {got}");

    // No body: the configured grace (24 h); a grace over 7 days is refused.
    let (s, b) = p.admin(Method::POST, &format!("{path}/rotate-secret"), None).await;
    assert_eq!(
        (s.as_u16(), b["previous_secrets"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{b}"
    );
    assert_invalid(
        p.admin(
            Method::POST,
            &format!("{path}/rotate-secret"),
            Some(json!({"grace_period_secs": 8 * 86400})),
        )
        .await,
        "grace_period_secs",
    );
    // A grace of 0 retires the current secret at once.
    let (_, b) = p
        .admin(
            Method::POST,
            &format!("{path}/rotate-secret"),
            Some(json!({"grace_period_secs": 0})),
        )
        .await;
    assert_eq!(b["previous_secrets"].as_array().map(Vec::len), Some(2), "{b}");

    // Disabled (here by hand) with a failure streak; enable clears both.
    let (_, b) = p.admin(Method::PATCH, &path, Some(json!({"enabled": false}))).await;
    assert_eq!(
        (b["enabled"].as_bool(), b["disabled_reason"].as_str()),
        (Some(false), Some("manual"))
    );
    let names = p.config.names();
    let breaker_key = names.redis_key(&format!("breaker:{id}"));
    let mut redis = redis::Client::open(p.config.redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("HSET")
        .arg(&breaker_key)
        .arg("since_ms")
        .arg(1)
        .arg("count")
        .arg(9)
        .query_async(&mut redis)
        .await
        .unwrap();
    let (s, b) = p.admin(Method::POST, &format!("{path}/enable"), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["enabled"].as_bool(), &b["disabled_reason"]),
        (Some(true), &Value::Null)
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(&breaker_key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!exists, "the failure streak is forgotten");
    assert_eq!(
        p.admin(Method::POST, "/v1/tenants/acme/endpoints/ep_nope/enable", None)
            .await
            .0,
        404
    );

    // The attempts log as the delivery engine writes it.
    let record = AttemptRecord {
        event_id: "evt_test".into(),
        endpoint_id: id.clone(),
        tenant_id: "acme".into(),
        attempt: 1,
        at_ms: now() * 1000,
        class: "http_error".into(),
        status: Some(500),
        latency_ms: 12,
        error: None,
        response_body: "oops".into(),
    };
    let record = serde_json::to_string(&record).unwrap();
    for key in [format!("attempts:ep:{id}"), "attempts:ev:evt_test".to_string()] {
        let () = redis::cmd("LPUSH")
            .arg(names.redis_key(&key))
            .arg(&record)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let (s, b) = p.admin(Method::GET, &format!("{path}/attempts?limit=10"), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"][0]["status"], 500, "{b}");
    assert!(b["data"][0]["at"].is_string(), "{b}");
    let (_, b) = p.admin(Method::GET, "/v1/events/evt_test/attempts", None).await;
    assert_eq!(b["data"].as_array().map(Vec::len), Some(1), "{b}");
    let (s, b) = p.admin(Method::GET, "/v1/events/evt_none/attempts", None).await;
    assert_eq!((s.as_u16(), b["data"].as_array().map(Vec::len)), (200, Some(0)));
    assert_invalid(
        p.admin(Method::GET, &format!("{path}/attempts?limit=0"), None).await,
        "limit",
    );
    assert_eq!(
        p.admin(Method::GET, "/v1/tenants/acme/endpoints/ep_nope/attempts", None)
            .await
            .0,
        404
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_body_errors_and_the_openapi_document() {
    let p = start("admin-auth").await;
    let url = |path: &str| format!("http://{}{path}", p.admin);
    let status = |r: reqwest::Response| r.status().as_u16();

    let r = p.http.get(url("/v1/tenants")).send().await.unwrap();
    assert_eq!(status(r), 401);
    let r = p
        .http
        .get(url("/v1/tenants"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    let (s, b): (u16, Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!((s, b["code"].as_str()), (401, Some("unauthorized")));

    // The document needs no token, and lists what the router serves.
    let r = p.http.get(url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/tenants/{tenant_id}/endpoints/{endpoint_id}/rotate-secret"].is_object());

    // A body that is not JSON: 415 without the content type, 400 when it does not parse.
    let r = p
        .http
        .put(url("/v1/tenants/acme"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body("name=acme")
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 415);
    let r = p
        .http
        .put(url("/v1/tenants/acme"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let (s, b): (u16, Value) = (r.status().as_u16(), r.json().await.unwrap());
    assert_eq!((s, b["code"].as_str()), (400, Some("malformed_json")), "{b}");

    let (s, b) = p.admin(Method::GET, "/v1/nowhere", None).await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (404, Some("not_found")));
    let (s, _) = p.admin(Method::POST, "/v1/tenants", Some(json!({}))).await;
    assert_eq!(s, 405);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tenants_webhooks_are_refused_once_the_caches_hear_of_it() {
    let p = start("admin-delete").await;
    p.register_stripe("gone", "acct_gone", STRIPE_SECRET, "http://127.0.0.1:9/hook", &["*"])
        .await;
    let path = "/v1/webhooks/stripe/acct_gone";
    let send = |n: u32| {
        let p = &p;
        async move {
            let body = customer_created(&format!("evt_gone_{n}"));
            let sig = stripe_signature(STRIPE_SECRET, now(), &body);
            p.post_webhook(path, &[sig], &body).await.0
        }
    };
    assert_eq!(send(0).await, 200);
    assert_eq!(p.admin(Method::DELETE, "/v1/tenants/gone", None).await.0, 204);
    let mut n = 0;
    wait_until(
        "the ingress to refuse the deleted account",
        Duration::from_secs(10),
        || {
            n += 1;
            let attempt = send(n);
            async move { attempt.await == 404 }
        },
    )
    .await
    .unwrap();
    p.stop().await;
}

/// The store's compare-and-set, which the admin API's updates (and the dispatcher's
/// disabling) rest on: a write from a stale read changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_a_stale_read_neither_overwrites_nor_resurrects() {
    use switchyard_registry::sealed::Sealer;
    use switchyard_registry::store::{connect, Replaced};
    use switchyard_registry::RegistryStore;

    let p = start("admin-cas").await;
    p.admin(Method::PUT, "/v1/tenants/acme", None).await;
    let (_, created) = p
        .admin(
            Method::POST,
            "/v1/tenants/acme/endpoints",
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let store = RegistryStore::new(
        connect(&p.config.redis).await.unwrap(),
        p.config.names(),
        Sealer::from_config(&p.config.secrets).unwrap(),
        Duration::from_secs(2),
    );
    let (mut ep, read_at) = store.get_endpoint_versioned("acme", &id).await.unwrap().unwrap();
    let path = format!("/v1/tenants/acme/endpoints/{id}");
    let (s, _) = p
        .admin(Method::PATCH, &path, Some(json!({"description": "newer"})))
        .await;
    assert_eq!(s, 200);
    ep.enabled = false;
    assert_eq!(store.replace_endpoint(&ep, &read_at).await.unwrap(), Replaced::Changed);
    let (_, got) = p.admin(Method::GET, &path, None).await;
    assert_eq!(
        (got["description"].as_str(), got["enabled"].as_bool()),
        (Some("newer"), Some(true))
    );

    let (ep, read_at) = store.get_endpoint_versioned("acme", &id).await.unwrap().unwrap();
    assert_eq!(p.admin(Method::DELETE, &path, None).await.0, 204);
    assert_eq!(store.replace_endpoint(&ep, &read_at).await.unwrap(), Replaced::Gone);
    assert_eq!(p.admin(Method::GET, &path, None).await.0, 404);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_stored_before_the_indexes_existed_are_indexed_on_first_use() {
    let p = start("admin-backfill").await;
    p.admin(Method::PUT, "/v1/tenants/old", None).await;
    let (s, _) = p
        .admin(
            Method::PUT,
            "/v1/accounts/acc-old",
            Some(json!({"tenant_id": "old", "connector": "stripe"})),
        )
        .await;
    assert_eq!(s, 201);
    // As a registry written before the indexes: the record alone.
    let names = p.config.names();
    let mut redis = redis::Client::open(p.config.redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("DEL")
        .arg(names.redis_key("account-index"))
        .arg(names.redis_key("account-index:tenant:old"))
        .arg(names.redis_key("account-index:connector:stripe"))
        .arg(names.redis_key("account-index-built"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let (_, b) = p.admin(Method::GET, "/v1/accounts?connector=stripe", None).await;
    assert_eq!(ids(&b), ["acc-old"]);
    assert_eq!(p.admin(Method::DELETE, "/v1/tenants/old", None).await.0, 204);
    assert_eq!(p.admin(Method::GET, "/v1/accounts/acc-old", None).await.0, 404);
    p.stop().await;
}
