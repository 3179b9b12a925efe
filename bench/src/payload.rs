//! The requests the load generator sends: realistic Stripe `invoice.paid` events of
//! about 2 KB, each with its own event id, signed as Stripe signs them with the
//! connector file's own signer ([`switchyard_connectors::signature::sign`]). All are
//! prepared before the run, so the generator spends no CPU on JSON or HMAC while the
//! ingress is measured.

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::json;
use switchyard_connectors::signature::sign::sign;
use switchyard_connectors::Connector;

/// One request, ready to send.
#[derive(Clone)]
pub struct Prepared {
    pub body: Bytes,
    /// The signature header(s).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A copy of an earlier request (same event id), as a provider's retry would be.
    pub duplicate: bool,
}

/// What to prepare.
pub struct Plan<'a> {
    pub connector: &'a Connector,
    pub secret: &'a str,
    pub count: usize,
    /// Requests per second; request `i` is signed with the time it is due at.
    pub rate: f64,
    /// Unix time at which request 0 is due.
    pub start_unix: i64,
    /// Share of requests, 0.0–1.0, that repeat an earlier request of the last minute.
    pub duplicate_share: f64,
    /// Makes event ids differ between runs.
    pub run_tag: &'a str,
    /// The event to send, as a template ([`from_template`]); `None` is Stripe's
    /// `invoice.paid` of [`stripe_invoice_paid`].
    pub template: Option<&'a serde_json::Value>,
}

/// Prepares `plan.count` requests, in sending order.
pub fn prepare(plan: &Plan<'_>) -> anyhow::Result<Vec<Prepared>> {
    if !(0.0..=1.0).contains(&plan.duplicate_share) {
        bail!("--duplicate-share must be between 0 and 1");
    }
    let mut rng = SplitMix64(0x5eed_u64 ^ plan.count as u64);
    // Duplicates repeat a request from at most a minute back, well inside Stripe's
    // 300-second signature tolerance.
    let reach = ((plan.rate * 60.0) as usize).max(1);
    let mut out: Vec<Prepared> = Vec::with_capacity(plan.count);
    for i in 0..plan.count {
        if i > 0 && rng.unit() < plan.duplicate_share {
            let back = 1 + (rng.next() as usize) % i.min(reach);
            let mut copy = out[i - back].clone();
            copy.duplicate = true;
            out.push(copy);
            continue;
        }
        let due = plan.start_unix + (i as f64 / plan.rate) as i64;
        let body = Bytes::from(match plan.template {
            Some(t) => from_template(t, plan.run_tag, i, due),
            None => stripe_invoice_paid(plan.run_tag, i, due),
        });
        let headers = sign(
            &plan.connector.signature,
            plan.secret,
            &body,
            due,
            "POST",
            "",
            &http::HeaderMap::new(),
        )
        .into_iter()
        .map(|(name, value)| {
            Ok((
                HeaderName::try_from(name).context("the signer produced an invalid header name")?,
                HeaderValue::try_from(value).context("the signer produced an invalid header value")?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
        if headers.is_empty() {
            bail!("connector {} signs nothing the benchmark can send", plan.connector.name);
        }
        out.push(Prepared {
            body,
            headers,
            duplicate: false,
        });
    }
    Ok(out)
}

/// A Stripe `invoice.paid` event as Stripe sends it (pretty-printed), about 2 KB.
/// Event, invoice, customer and charge ids all derive from `i`.
pub fn stripe_invoice_paid(run_tag: &str, i: usize, created: i64) -> Vec<u8> {
    let n = format!("{run_tag}{i:010}");
    let amount = 1_000 + (i % 97) as i64 * 125;
    let event = json!({
        "id": format!("evt_1Bn{n}"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {
            "object": {
                "id": format!("in_1Bn{n}"),
                "object": "invoice",
                "account_country": "US",
                "account_name": "Switchyard Bench Inc.",
                "amount_due": amount,
                "amount_paid": amount,
                "amount_remaining": 0,
                "attempt_count": 1,
                "attempted": true,
                "billing_reason": "subscription_cycle",
                "charge": format!("ch_3Bn{n}"),
                "collection_method": "charge_automatically",
                "created": created - 3600,
                "currency": "usd",
                "customer": format!("cus_Bn{n}"),
                "customer_email": format!("customer{i}@example.com"),
                "customer_name": "Jenny Rosen",
                "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_1Bench/test_Bn{n}"),
                "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_1Bench/test_Bn{n}/pdf"),
                "lines": {
                    "object": "list",
                    "data": [{
                        "id": format!("il_1Bn{n}"),
                        "object": "line_item",
                        "amount": amount,
                        "currency": "usd",
                        "description": "1 × Switchyard Pro (at $10.00 / month)",
                        "period": { "end": created + 2_592_000, "start": created },
                        "plan": { "id": "price_1BenchPro", "interval": "month", "product": "prod_BenchPro" },
                        "quantity": 1,
                        "type": "subscription"
                    }],
                    "has_more": false,
                    "total_count": 1,
                    "url": format!("/v1/invoices/in_1Bn{n}/lines")
                },
                "livemode": false,
                "metadata": { "order_id": format!("order-{i}") },
                "number": format!("BENCH-{i:06}"),
                "paid": true,
                "payment_intent": format!("pi_3Bn{n}"),
                "period_end": created,
                "period_start": created - 2_592_000,
                "status": "paid",
                "status_transitions": { "finalized_at": created - 3500, "paid_at": created },
                "subscription": format!("sub_1Bn{n}"),
                "subtotal": amount,
                "tax": null,
                "total": amount
            }
        },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": "invoice.paid"
    });
    serde_json::to_vec_pretty(&event).expect("a JSON value serializes")
}

/// `template` (a Stripe-style event: `id`, `created`, `data.object.id`), pretty-printed,
/// with its event and object ids made unique by `i` and `created` set to `created`.
pub fn from_template(template: &serde_json::Value, run_tag: &str, i: usize, created: i64) -> Vec<u8> {
    let mut event = template.clone();
    let n = format!("{run_tag}{i:010}");
    if let Some(o) = event.as_object_mut() {
        o.insert("id".into(), json!(format!("evt_1Bn{n}")));
        o.insert("created".into(), json!(created));
    }
    if let Some(o) = event.pointer_mut("/data/object").and_then(|o| o.as_object_mut()) {
        o.insert("id".into(), json!(format!("in_1Bn{n}")));
    }
    serde_json::to_vec_pretty(&event).expect("a JSON value serializes")
}

/// A small, fast, deterministic generator (SplitMix64): which requests repeat which.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use switchyard_connectors::signature::{verify, RawWebhook};
    use switchyard_connectors::Catalog;

    use super::*;

    fn stripe() -> std::sync::Arc<Connector> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog");
        let catalog = Catalog::load_dir(&dir).expect("the shipped catalog loads");
        catalog.get("stripe").expect("stripe is in the catalog").clone()
    }

    #[test]
    fn events_are_about_two_kilobytes_with_unique_ids() {
        let a = stripe_invoice_paid("r1", 1, 1_700_000_000);
        let b = stripe_invoice_paid("r1", 2, 1_700_000_000);
        assert!((1_800..2_600).contains(&a.len()), "{} bytes", a.len());
        let id = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap()["id"].clone();
        assert_ne!(id(&a), id(&b));
    }

    #[test]
    fn prepared_requests_verify_with_the_connector_and_duplicates_repeat_earlier_ones() {
        let c = stripe();
        let now = 1_700_000_000;
        let requests = prepare(&Plan {
            connector: &c,
            secret: "whsec_bench",
            count: 200,
            rate: 100.0,
            start_unix: now,
            duplicate_share: 0.25,
            run_tag: "t",
            template: None,
        })
        .unwrap();
        let dups: Vec<&Prepared> = requests.iter().filter(|r| r.duplicate).collect();
        assert!((20..80).contains(&dups.len()), "{} duplicates", dups.len());
        for d in dups {
            assert!(requests.iter().any(|r| !r.duplicate && r.body == d.body));
        }
        for r in &requests {
            let mut headers = http::HeaderMap::new();
            for (n, v) in &r.headers {
                headers.insert(n, v.clone());
            }
            let raw = RawWebhook {
                method: http::Method::POST,
                url: "http://127.0.0.1/v1/webhooks/stripe/acct".into(),
                headers,
                body: r.body.clone(),
            };
            verify(&c.signature, raw, &["whsec_bench"], now + 2).expect("the signature verifies");
        }
    }
}
