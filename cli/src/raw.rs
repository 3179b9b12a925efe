//! `replay raw`: re-drive the raw bodies still in S3 through the current mappings (the
//! backfill after a mapping fix).
//!
//! Segments are self-describing ([`switchyard_claimcheck`]): each record
//! header names connector, account, tenant, receive time, content type and the kept
//! request headers. So for every segment written in the time range, every record of
//! the connector (and account) received in the range is read, its events are extracted
//! exactly as the ingress did ([`switchyard_connectors::extract`]), and one
//! [`RawEnvelope`] per event is published to the raw stream, pointing at the same
//! claim-check. The normalizer then maps them with the catalog it has now.
//!
//! # Ids
//! A re-driven event keeps its identity: same connector, account and provider event
//! id, so the same idempotency key and the same unified event id, which is the
//! `webhook-id` of its delivery. A receiver that already has the event dedupes the
//! copy; one that never got it (it was dead-lettered, or mapped to nothing) gets it as
//! new. Only the raw message's `Nats-Msg-Id` is new (`<key>:redrive:<run>`), or the
//! raw stream's duplicate window would drop it. Note that the unified stream dedupes
//! by the event id too: an event re-driven within `nats.duplicate_window_secs` of its
//! first normalization is dropped there.
//!
//! With [`Options::new_ids`] the provider event id becomes `<id>#redrive-<run>`, and so
//! the idempotency key and the unified id (the `webhook-id`) are new: receivers see a
//! new event. For a mapping fix that changed what already-delivered events should have
//! been, and only for receivers that can take a corrected copy.

use anyhow::{bail, Context};
use async_nats::jetstream;
use switchyard_claimcheck::read::keys_between;
use switchyard_claimcheck::{read_segment, ClaimCheckStore, Record};
use switchyard_connectors::{extract, Catalog};
use switchyard_core::config::Config;
use switchyard_core::envelope::{ClaimRef, RawEnvelope};
use switchyard_core::timefmt::{from_unix_millis, unix_millis};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::progress::{Outcome, Pace, Progress, Summary};

#[derive(Debug, Clone)]
pub struct Options {
    pub connector: String,
    /// The account id (as in `/v1/webhooks/<connector>/<account>`), or, for events that
    /// came through the connector-level URL, the provider's account id (routing key).
    pub account: Option<String>,
    /// Bodies received in `[since, until]`.
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    pub dry_run: bool,
    pub rate: Option<f64>,
    /// Give the re-driven events new ids (see the module documentation).
    pub new_ids: bool,
}

/// Re-drive; stops early when `stop` is cancelled.
pub async fn replay_raw(
    config: &Config,
    opts: &Options,
    progress: &mut dyn Progress,
    stop: &CancellationToken,
) -> anyhow::Result<Summary> {
    let catalog = Catalog::load_dir(&config.catalog)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("loading the catalog {}", config.catalog.display()))?;
    let Some(connector) = catalog.get(&opts.connector).cloned() else {
        let known: Vec<&str> = catalog.names().collect();
        bail!("unknown connector {:?} (known: {})", opts.connector, known.join(", "));
    };
    let store = ClaimCheckStore::new(&config.s3).await?;
    let (since, until) = (unix_millis(opts.since), unix_millis(opts.until));
    let run = unix_millis(OffsetDateTime::now_utc());

    // First everything there is to publish (envelopes are small), so the progress
    // has a total and an ETA.
    let mut summary = Summary::new("published", opts.dry_run);
    let mut envelopes = Vec::new();
    for key in keys_between(&store, since, until).await? {
        let segment = store.get(&key).await?;
        let records = match read_segment(&key, &segment) {
            Ok(r) => r,
            Err(e) => {
                summary.record(outcome(key, "skipped", None, Some(e.to_string())));
                continue;
            }
        };
        for record in records {
            let h = &record.header;
            if h.connector != connector.name || !(since..=until).contains(&h.received_ms) {
                continue;
            }
            match envelopes_of(&connector, &key, &record) {
                Ok(found) => envelopes.extend(found.into_iter().filter(|e| wanted(e, opts.account.as_deref()))),
                Err(why) => summary.record(outcome(format!("{key}@{}", record.offset), "skipped", None, Some(why))),
            }
        }
    }

    let js = if opts.dry_run {
        None
    } else {
        let client = switchyard_core::nats::connect(&config.nats, "switchyard-cli").await?;
        Some(jetstream::new(client))
    };
    let names = config.names();
    summary.matched = envelopes.len();
    progress.start(envelopes.len());
    let mut pace = Pace::new(opts.rate);
    for mut env in envelopes {
        if js.is_some() {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = pace.tick() => {}
            }
        }
        if stop.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        if opts.new_ids {
            env.event_id = format!("{}#redrive-{run}", env.event_id);
        }
        let key = env.idempotency_key();
        let msg_id = format!("{key}:redrive:{run}");
        let subject = names.raw_subject(&env.connector);
        let o = match &js {
            None => outcome(
                key,
                "would publish",
                Some(subject),
                Some(format!("message id {msg_id}")),
            ),
            Some(js) => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id.as_str());
                let payload = serde_json::to_vec(&env).expect("an envelope serializes");
                let acked = switchyard_core::publish::durably(js, subject.clone(), headers, payload.into()).await;
                match acked {
                    Ok(_) => outcome(key, "published", Some(subject), None),
                    Err(e) => outcome(key, "failed", Some(subject), Some(e.to_string())),
                }
            }
        };
        progress.item(&o);
        summary.record(o);
    }
    progress.finish();
    Ok(summary)
}

/// The envelopes the ingress published for one record, rebuilt from it.
fn envelopes_of(
    connector: &switchyard_connectors::Connector,
    key: &str,
    record: &Record,
) -> Result<Vec<RawEnvelope>, String> {
    let h = &record.header;
    let mut headers = http::HeaderMap::new();
    let kept = h
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain([("content-type", h.content_type.as_str())]);
    for (name, value) in kept {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    let mut events = extract::extract_from(&connector.event, &headers, &record.body);
    // The ids the ingress recorded win: they are what every dedupe window knows (a
    // record written before its connector kept the headers ids come from would
    // otherwise get new ones, and its events would be delivered twice).
    if events.len() == h.event_ids.len() {
        for (e, id) in events.iter_mut().zip(&h.event_ids) {
            e.id.clone_from(id);
        }
    }
    Ok(events
        .into_iter()
        .map(|e| RawEnvelope {
            connector: h.connector.clone(),
            // None for a batch spanning accounts (or an account unknown when it
            // arrived): the normalizer routes by `external_account`, as it did then.
            account_id: Some(h.account_id.clone()).filter(|a| !a.is_empty()),
            tenant_id: Some(h.tenant_id.clone()).filter(|t| !t.is_empty()),
            external_account: e.account,
            event_id: e.id,
            event_type: e.event_type,
            item: e.item,
            occurred_at: e
                .occurred_ms
                .and_then(|ms| from_unix_millis(ms.div_euclid(1000) * 1000)),
            received_ms: h.received_ms,
            claim: ClaimRef {
                key: key.to_string(),
                offset: record.offset,
                len: record.body.len() as u64,
            },
            content_type: h.content_type.clone(),
        })
        .collect())
}

fn wanted(env: &RawEnvelope, account: Option<&str>) -> bool {
    account.is_none_or(|a| {
        env.account_id.as_deref() == Some(a) || (env.account_id.is_none() && env.external_account.as_deref() == Some(a))
    })
}

fn outcome(id: String, action: &str, target: Option<String>, detail: Option<String>) -> Outcome {
    Outcome {
        id,
        action: action.into(),
        target,
        detail,
    }
}
