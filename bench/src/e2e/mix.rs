//! The end-to-end load's requests: a realistic mix of correctly signed provider
//! webhooks built from the documented payloads in `connectors/fixtures/` — Stripe,
//! GitHub, Shopify and Slack single events and HubSpot batches — with their own event
//! ids, padded to sizes from 0.5 KB to 64 KB, signed with the connector file's own
//! signer at the time each is due.
//!
//! Request `i` is a pure function of `i` (which provider, which payload, which size,
//! which tenant, which ids), so a provider retry ("duplicate") of request `j` is made
//! again from `j` and nothing has to be kept in memory: a run of a million requests
//! costs no more memory than one of a thousand. Templates are serialized once; making
//! a request is two string substitutions and one HMAC.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use switchyard_connectors::signature::sign::sign;
use switchyard_connectors::{Catalog, Connector};
use switchyard_core::ids;

/// Share of requests per provider (sums to 1).
pub const MIX: [(&str, f64); 5] = [
    ("stripe", 0.35),
    ("github", 0.20),
    ("shopify", 0.15),
    ("slack", 0.15),
    ("hubspot", 0.15),
];

/// Body sizes: (share, smallest, largest) in bytes, uniform within a class. Most
/// webhooks are small; a few carry large objects. Mean about 5 KB.
const SIZES: [(f64, usize, usize); 4] = [
    (0.60, 512, 2_048),
    (0.28, 2_048, 8_192),
    (0.09, 8_192, 32_768),
    (0.03, 32_768, 65_536),
];

const PAD: &str = "@@PAD@@";

/// One payload of one provider, serialized with placeholders.
struct Template {
    /// The pretty-printed body; ids are `"@@IDk@@"` (quotes included), padding `@@PAD@@`.
    body: String,
    /// Event ids in the body (HubSpot: one per item; others one).
    ids: usize,
    /// Request headers from the fixture (`X-GitHub-Event`…), with `@@ID0@@` where the
    /// event id travels in a header.
    headers: Vec<(String, String)>,
}

struct Provider {
    name: &'static str,
    connector: Arc<Connector>,
    templates: Vec<Template>,
}

/// Everything needed to make any request of the run.
#[derive(Clone)]
pub struct Mix {
    providers: Arc<Vec<Provider>>,
    /// The signing secret of every registered account.
    pub secret: String,
    pub tenants: usize,
    /// Unix time at which request 0 is due, and the rate: request `i` is signed with
    /// its due time.
    pub start_unix: i64,
    pub rate: f64,
    pub duplicate_share: f64,
    /// `http://127.0.0.1:<port>` of the ingress: HubSpot signs the URL.
    pub ingress_url: String,
    /// Makes ids differ between ramp steps that share a stack.
    pub id_base: u64,
}

/// One request, ready to send.
pub struct Request {
    pub path: String,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The `webhook-id` each of its events is delivered under, and the tenant.
    pub webhook_ids: Vec<String>,
    pub tenant: usize,
    pub connector: &'static str,
    /// A provider retry of an earlier request (same event ids, same signature).
    pub duplicate: bool,
}

/// The account of `connector` owned by tenant `t`.
pub fn account(connector: &str, t: usize) -> String {
    format!("acct_{connector}_{t}")
}

/// The tenant `t`'s id.
pub fn tenant(t: usize) -> String {
    format!("tenant_{t}")
}

impl Mix {
    /// Loads the five connectors and their fixtures.
    pub fn load(catalog_dir: &Path, fixtures_dir: &Path, secret: String) -> anyhow::Result<Self> {
        let catalog = Catalog::load_dir(catalog_dir)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("loading the connector catalog {}", catalog_dir.display()))?;
        let mut providers = Vec::new();
        for (name, _) in MIX {
            let connector = catalog
                .get(name)
                .with_context(|| format!("the catalog has no {name} connector"))?
                .clone();
            let dir = fixtures_dir.join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            let mut templates = Vec::new();
            for f in files {
                let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
                let fixture: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
                templates.push(template(name, &fixture).with_context(|| format!("{}", f.display()))?);
            }
            if templates.is_empty() {
                bail!("no fixtures in {}", dir.display());
            }
            providers.push(Provider {
                name,
                connector,
                templates,
            });
        }
        Ok(Self {
            providers: Arc::new(providers),
            secret,
            tenants: 1,
            start_unix: 0,
            rate: 1.0,
            duplicate_share: 0.0,
            ingress_url: String::new(),
            id_base: 0,
        })
    }

    /// Request `i` of the run (a duplicate repeats an earlier request of the last
    /// minute, made again from its own index).
    pub fn request(&self, i: usize) -> anyhow::Result<Request> {
        let mut rng = SplitMix64(0x5eed ^ (i as u64).wrapping_mul(0x9e37_79b9));
        if i > 0 && rng.unit() < self.duplicate_share {
            let reach = ((self.rate * 60.0) as usize).clamp(1, i);
            let back = 1 + (rng.next() as usize) % reach;
            let mut r = self.original(i - back)?;
            r.duplicate = true;
            return Ok(r);
        }
        self.original(i)
    }

    fn original(&self, i: usize) -> anyhow::Result<Request> {
        let mut rng = SplitMix64(0xfeed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut pick = rng.unit();
        let p = self
            .providers
            .iter()
            .zip(MIX)
            .find(|(_, (_, share))| {
                pick -= share;
                pick < 0.0
            })
            .map_or(&self.providers[0], |(p, _)| p);
        let t = &p.templates[(rng.next() as usize) % p.templates.len()];
        let mut pick = rng.unit();
        let (_, lo, hi) = SIZES
            .iter()
            .find(|(share, _, _)| {
                pick -= share;
                pick < 0.0
            })
            .copied()
            .unwrap_or(SIZES[0]);
        let size = lo + (rng.next() as usize) % (hi - lo);
        let tenant_idx = i % self.tenants;
        let account = account(p.name, tenant_idx);
        let n = self.id_base + i as u64;

        let mut body = t.body.clone();
        let mut event_ids = Vec::with_capacity(t.ids);
        for k in 0..t.ids {
            let token = format!("\"@@ID{k}@@\"");
            let (id, literal) = if p.name == "hubspot" {
                let id = (1_000_000_000 + n * 64 + k as u64).to_string();
                (id.clone(), id)
            } else {
                let id = provider_id(p.name, n);
                (id.clone(), format!("\"{id}\""))
            };
            body = body.replacen(&token, &literal, 1);
            event_ids.push(id);
        }
        let base = body.len() - PAD.len();
        body = body.replacen(PAD, &"x".repeat(size.saturating_sub(base)), 1);
        let body = Bytes::from(body);

        let due = self.start_unix + (i as f64 / self.rate) as i64;
        let path = format!("/v1/webhooks/{}/{account}", p.name);
        let url = format!("{}{path}", self.ingress_url);
        let mut headers = Vec::new();
        for (name, value) in &t.headers {
            let value = value.replace("@@ID0@@", event_ids.first().map_or("", String::as_str));
            headers.push((header_name(name)?, HeaderValue::try_from(value)?));
        }
        for (name, value) in sign(
            &p.connector.signature,
            &self.secret,
            &body,
            due,
            "POST",
            &url,
            &http::HeaderMap::new(),
        ) {
            headers.push((header_name(&name)?, HeaderValue::try_from(value)?));
        }
        let webhook_ids = event_ids
            .iter()
            .map(|id| ids::unified_event_id(&ids::idempotency_key(p.name, &account, id), 0))
            .collect();
        Ok(Request {
            path,
            body,
            headers,
            webhook_ids,
            tenant: tenant_idx,
            connector: p.name,
            duplicate: false,
        })
    }
}

fn header_name(name: &str) -> anyhow::Result<HeaderName> {
    HeaderName::try_from(name.to_ascii_lowercase()).with_context(|| format!("header name {name:?}"))
}

/// A provider event id in the provider's own shape.
fn provider_id(connector: &str, n: u64) -> String {
    match connector {
        "stripe" => format!("evt_1Bench{n:012}"),
        "slack" => format!("Ev0BENCH{n:010}"),
        "github" => format!(
            "0b9a1e70-5e0d-11ef-{:04x}-{:012x}",
            (n >> 48) & 0xffff,
            n & 0xffff_ffff_ffff
        ),
        _ => format!("bench-{n:012}-0000-4000-8000-000000000000"),
    }
}

/// The fixture's body with its event ids replaced by placeholders and a padding field
/// added, and its headers.
fn template(connector: &str, fixture: &Value) -> anyhow::Result<Template> {
    let mut body = fixture.get("body").cloned().context("the fixture has no body")?;
    let mut headers: Vec<(String, String)> = fixture
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let pad = Value::String(PAD.into());
    let ids = match connector {
        "hubspot" => {
            let items = body.as_array_mut().context("a HubSpot body is an array")?;
            for (k, item) in items.iter_mut().enumerate() {
                item["eventId"] = Value::String(format!("@@ID{k}@@"));
            }
            let first = items.first_mut().context("an empty HubSpot batch")?;
            first["bench_padding"] = pad;
            items.len()
        }
        "stripe" | "slack" => {
            let field = if connector == "stripe" { "id" } else { "event_id" };
            body[field] = Value::String("@@ID0@@".into());
            body["bench_padding"] = pad;
            1
        }
        _ => {
            let header = if connector == "github" {
                "X-GitHub-Delivery"
            } else {
                "X-Shopify-Event-Id"
            };
            let h = headers
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case(header))
                .with_context(|| format!("the fixture has no {header} header"))?;
            h.1 = "@@ID0@@".into();
            // The id travels in a header: no token in the body.
            body["bench_padding"] = pad;
            1
        }
    };
    let body = serde_json::to_string_pretty(&body)?;
    Ok(Template { body, ids, headers })
}

/// A small, fast, deterministic generator (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use switchyard_connectors::signature::{verify, RawWebhook};

    use super::*;

    fn mix() -> Mix {
        let ws = crate::workspace();
        let mut m = Mix::load(
            &ws.join("connectors/catalog"),
            &ws.join("connectors/fixtures"),
            "bench_secret".into(),
        )
        .unwrap();
        m.tenants = 3;
        m.rate = 100.0;
        m.start_unix = 1_700_000_000;
        m.duplicate_share = 0.1;
        m.ingress_url = "http://127.0.0.1:9".into();
        m
    }

    #[test]
    fn every_request_verifies_and_retries_repeat_their_original() {
        let m = mix();
        let catalog = Catalog::load_dir(&crate::workspace().join("connectors/catalog")).unwrap();
        let (mut dups, mut sizes, mut connectors) = (0, Vec::new(), std::collections::BTreeSet::new());
        for i in 0..400 {
            let r = m.request(i).unwrap();
            let c = catalog.get(r.connector).unwrap();
            let mut headers = http::HeaderMap::new();
            for (n, v) in &r.headers {
                headers.insert(n, v.clone());
            }
            let raw = RawWebhook {
                method: http::Method::POST,
                url: format!("{}{}", m.ingress_url, r.path),
                headers,
                body: r.body.clone(),
            };
            verify(&c.signature, raw, &["bench_secret"], 1_700_000_010)
                .unwrap_or_else(|e| panic!("request {i} ({}) does not verify: {e:?}", r.connector));
            serde_json::from_slice::<Value>(&r.body).expect("the body is JSON");
            if r.duplicate {
                dups += 1;
            }
            assert!(!r.webhook_ids.is_empty());
            sizes.push(r.body.len());
            connectors.insert(r.connector);
        }
        assert!((15..80).contains(&dups), "{dups} retries");
        assert_eq!(connectors.len(), 5);
        assert!(sizes.iter().all(|s| (400..=70_000).contains(s)), "{sizes:?}");
        assert!(sizes.iter().any(|s| *s > 32_768));
        // A retry is byte-for-byte its original.
        let i = (1..400).find(|i| m.request(*i).unwrap().duplicate).unwrap();
        let r = m.request(i).unwrap();
        assert!((0..i).any(|j| m.original(j).unwrap().body == r.body));
    }
}
