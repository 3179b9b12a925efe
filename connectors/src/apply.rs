//! A connector's mappings (compiled by [`crate::compile`] when the catalog loads) applied
//! to one provider event. The normalizer, `switchyard connectors map` and the fixture runner all
//! go through [`event_of`] and [`apply`], so a fixture that passes is what production does.
//!
//! A provider event type has one mapping or several tried in order; the first whose
//! `when` predicate holds applies. None applying means the event has no unified meaning,
//! and the connector's `unmapped` policy decides: drop it (counted) or pass it through as
//! `<connector>.<provider type>` with the provider event as `data`.
//!
//! A mapping marked `many` turns one provider event into several unified events of its
//! type, one per element of the list its `data` gives (at most [`MAX_MANY`]).

use serde_json::Value;

use crate::catalog::Connector;
use crate::mapping::{Input, Limits, MappingError};
use crate::model::UnmappedPolicy;

/// What became of one provider event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A unified type and its `data` (a mapping's result, or the provider event itself
    /// when passed through).
    Mapped { unified_type: String, data: Value },
    /// A `many` mapping applied: one unified event of `unified_type` per element of
    /// `items`, in order; there is at least one.
    Many { unified_type: String, items: Vec<Value> },
    /// No mapping applied and the connector's policy is to drop (counted by the caller).
    Dropped,
}

/// Why one event cannot be mapped; the normalizer dead-letters it with [`Self::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("the body is neither JSON nor a form")]
    MalformedBody,
    #[error("the batch body has no item {0}")]
    MissingItem(u32),
    #[error("the mapping for {provider_type:?} failed: {source}")]
    Mapping {
        provider_type: String,
        #[source]
        source: MappingError,
    },
    #[error("the mapping for {0:?} produced nothing")]
    Empty(String),
    #[error(
        "the mapping for {provider_type:?} gave {count} events, over the {MAX_MANY} one provider event may become; fix the mapping, then replay"
    )]
    TooMany { provider_type: String, count: usize },
    /// The event is larger than [`Limits::max_input_bytes`]: not evaluated at all.
    #[error(
        "the {provider_type:?} event is {bytes} bytes, over the {limit} bytes a mapping may be evaluated on (normalizer.mapping_max_input_bytes)"
    )]
    InputTooLarge {
        provider_type: String,
        bytes: usize,
        limit: usize,
    },
}

impl ApplyError {
    /// Whether a mapping's time limit stopped it (see [`MappingError::is_time_limit`]).
    pub fn is_time_limit(&self) -> bool {
        matches!(self, Self::Mapping { source, .. } if source.is_time_limit())
    }

    /// A closed set, used as the dead-letter reason and metric label; `engine_busy` is
    /// transient (the caller retries the event later rather than dead-lettering it).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MalformedBody => "malformed_body",
            Self::MissingItem(_) => "missing_item",
            // Abandoned evaluations still hold the engine: not this event's fault.
            Self::Mapping {
                source: MappingError::Busy(_),
                ..
            } => "engine_busy",
            Self::Mapping { .. } | Self::TooMany { .. } => "mapping_error",
            Self::Empty(_) => "mapping_empty",
            Self::InputTooLarge { .. } => "input_too_large",
        }
    }
}

/// The most unified events one provider event may become through a `many` mapping.
pub const MAX_MANY: usize = 100;

/// The provider event a body holds: the body itself, or item `item` of a batch.
pub fn event_of(
    connector: &Connector,
    body: &[u8],
    content_type: &str,
    item: Option<u32>,
) -> Result<Value, ApplyError> {
    let doc = crate::body::document(body, content_type, connector.event.document.as_ref())
        .ok_or(ApplyError::MalformedBody)?;
    let Some(i) = item else {
        return Ok(doc);
    };
    let items = match &connector.event.items {
        Some(path) => path.get(&doc),
        None => Some(&doc),
    };
    items
        .and_then(|v| match v {
            Value::Array(a) => a.get(i as usize),
            // A batch of one, as XML gives it (`body::xml`).
            one @ Value::Object(_) if i == 0 => Some(one),
            _ => None,
        })
        .cloned()
        .ok_or(ApplyError::MissingItem(i))
}

/// Map one provider event of type `provider_type`.
/// `event` is measured as compact JSON against [`Limits::max_input_bytes`].
pub fn apply(connector: &Connector, provider_type: &str, event: &Value, limits: Limits) -> Result<Outcome, ApplyError> {
    apply_input(
        connector,
        provider_type,
        &Input::new(event),
        || json_len(event),
        limits,
        || Ok(event.clone()),
    )
}

/// The length of `v` as compact JSON, counted without building the text.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

/// [`event_of`] then [`apply`], as the normalizer runs them: a JSON body that is itself
/// the event, and has mappings to try, is parsed once, straight into the engine's values
/// (the provider event as JSON is built only if it is passed through). The outcome is
/// the same as the two steps'.
pub fn map_body(
    connector: &Connector,
    provider_type: &str,
    body: &[u8],
    content_type: &str,
    item: Option<u32>,
    limits: Limits,
) -> Result<Outcome, ApplyError> {
    // An event the ingress could not read as the connector declares is delivered
    // whatever the connector's policy, as `<connector>.unrecognized`, the body as data.
    if provider_type == crate::extract::UNRECOGNIZED_TYPE {
        let data = event_of(connector, body, content_type, item).unwrap_or_else(|_| raw_data(body, content_type));
        return Ok(Outcome::Mapped {
            unified_type: pass_through_type(&connector.name, provider_type),
            data,
        });
    }
    let has_mappings = connector
        .mappings
        .get(provider_type)
        .is_some_and(|cases| !cases.is_empty());
    if item.is_some() {
        let event = event_of(connector, body, content_type, item)?;
        return apply(connector, provider_type, &event, limits);
    }
    if crate::body::is_form(content_type) || !has_mappings {
        let event = event_of(connector, body, content_type, item)?;
        return apply_input(
            connector,
            provider_type,
            &Input::new(&event),
            || body.len(),
            limits,
            || Ok(event.clone()),
        );
    }
    too_large(provider_type, body.len(), limits)?;
    let input = Input::parse(body).map_err(|_| ApplyError::MalformedBody)?;
    apply_input(
        connector,
        provider_type,
        &input,
        || body.len(),
        limits,
        || event_of(connector, body, content_type, item),
    )
}

/// A body that is neither JSON nor a form, as the data of an unrecognized event: its
/// text, or its bytes in base64 when it is not UTF-8.
fn raw_data(body: &[u8], content_type: &str) -> Value {
    use base64::Engine;
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::json!({"content_type": content_type, "body": text}),
        Err(_) => serde_json::json!({
            "content_type": content_type,
            "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
        }),
    }
}

/// Refuses an event of `bytes` over [`Limits::max_input_bytes`].
fn too_large(provider_type: &str, bytes: usize, limits: Limits) -> Result<(), ApplyError> {
    if bytes > limits.max_input_bytes {
        return Err(ApplyError::InputTooLarge {
            provider_type: provider_type.to_string(),
            bytes,
            limit: limits.max_input_bytes,
        });
    }
    Ok(())
}

/// The mappings of `provider_type` tried in order on `input`, whose size `bytes` is
/// asked for (and checked) only when there is a mapping to evaluate; `event` is the
/// provider event as JSON, asked for only when it is passed through.
fn apply_input(
    connector: &Connector,
    provider_type: &str,
    input: &Input<'_>,
    bytes: impl FnOnce() -> usize,
    limits: Limits,
    event: impl FnOnce() -> Result<Value, ApplyError>,
) -> Result<Outcome, ApplyError> {
    let failed = |source| ApplyError::Mapping {
        provider_type: provider_type.to_string(),
        source,
    };
    let cases = connector.mappings.get(provider_type).map_or(&[][..], Vec::as_slice);
    if !cases.is_empty() {
        too_large(provider_type, bytes(), limits)?;
    }
    for case in cases {
        if let Some(when) = &case.when {
            if when.evaluate_input(input, limits).map_err(failed)? != Some(Value::Bool(true)) {
                continue;
            }
        }
        let data = case
            .data
            .evaluate_input(input, limits)
            .map_err(failed)?
            .ok_or_else(|| ApplyError::Empty(provider_type.to_string()))?;
        let unified_type = case.unified_type.clone();
        return match data {
            Value::Array(items) if case.many => match items.len() {
                0 => Err(ApplyError::Empty(provider_type.to_string())),
                count if count > MAX_MANY => Err(ApplyError::TooMany {
                    provider_type: provider_type.to_string(),
                    count,
                }),
                _ => Ok(Outcome::Many { unified_type, items }),
            },
            data => Ok(Outcome::Mapped { unified_type, data }),
        };
    }
    Ok(match connector.unmapped {
        UnmappedPolicy::Drop => Outcome::Dropped,
        UnmappedPolicy::PassThrough => Outcome::Mapped {
            unified_type: pass_through_type(&connector.name, provider_type),
            data: event()?,
        },
    })
}

/// The type an unmapped event is passed through as.
pub fn pass_through_type(connector: &str, provider_type: &str) -> String {
    format!("{connector}.{provider_type}")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::catalog::Catalog;
    use crate::unified::UnifiedModels;

    const HEAD: &str = r#"name = "acme"
title = "Acme"
unmapped = "drop"
[signature]
scheme = "token"
header = "X-Token"
[event]
id = { json = "id" }
type = { json = "kind" }
"#;

    fn models() -> UnifiedModels {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("unified");
        UnifiedModels::load_dir(&dir).unwrap()
    }

    fn load(mappings: &str) -> Result<Catalog, String> {
        Catalog::from_sources_with_models(
            vec![(PathBuf::from("acme.toml"), format!("{HEAD}{mappings}"))],
            models(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn cases_are_tried_in_order_and_unmatched_events_follow_the_policy() {
        let catalog = load(
            r#"
[[mappings."pr"]]
when = 'action = "closed" and merged'
type = "acme.merged"
data = '{"n": n}'

[[mappings."pr"]]
when = 'action = "closed"'
type = "acme.closed"
data = '{"n": n}'

[mappings."ping"]
type = "acme.ping"
data = 'nothing'
"#,
        )
        .unwrap();
        let acme = catalog.get("acme").unwrap();
        let run = |t: &str, e: Value| apply(acme, t, &e, Limits::default());
        let mapped = |t: &str| Outcome::Mapped {
            unified_type: t.into(),
            data: json!({"n": 1}),
        };
        assert_eq!(
            run("pr", json!({"action": "closed", "merged": true, "n": 1})),
            Ok(mapped("acme.merged"))
        );
        assert_eq!(
            run("pr", json!({"action": "closed", "merged": false, "n": 1})),
            Ok(mapped("acme.closed"))
        );
        assert_eq!(run("pr", json!({"action": "labeled", "n": 1})), Ok(Outcome::Dropped));
        assert_eq!(run("other", json!({})), Ok(Outcome::Dropped));
        let empty = run("ping", json!({})).unwrap_err();
        assert_eq!(empty.reason(), "mapping_empty");
    }

    /// A notification naming several records becomes one event per record; naming one,
    /// one event; naming none, or more than the bound, a mapping error to fix.
    #[test]
    fn a_many_mapping_gives_one_event_per_element() {
        let catalog = load(
            r#"
[mappings."bulk"]
type = "acme.touched"
many = true
data = 'ids.{"id": $string($), "by": $$.who}'
"#,
        )
        .unwrap();
        let acme = catalog.get("acme").unwrap();
        let run = |e: Value| apply(acme, "bulk", &e, Limits::default());
        assert_eq!(
            run(json!({"ids": [1, 2, 3], "who": "ana"})),
            Ok(Outcome::Many {
                unified_type: "acme.touched".into(),
                items: vec![
                    json!({"id": "1", "by": "ana"}),
                    json!({"id": "2", "by": "ana"}),
                    json!({"id": "3", "by": "ana"})
                ],
            })
        );
        assert_eq!(
            run(json!({"ids": [7], "who": "ana"})),
            Ok(Outcome::Mapped {
                unified_type: "acme.touched".into(),
                data: json!({"id": "7", "by": "ana"}),
            })
        );
        assert_eq!(
            run(json!({"ids": [], "who": "ana"})).unwrap_err().reason(),
            "mapping_empty"
        );
        let ids: Vec<usize> = (0..=MAX_MANY).collect();
        let too_many = run(json!({"ids": ids, "who": "ana"})).unwrap_err();
        assert_eq!(too_many.reason(), "mapping_error");
        assert!(too_many.to_string().contains("101 events"), "{too_many}");
    }

    #[test]
    fn pass_through_keeps_the_provider_event() {
        let text = HEAD.replace("unmapped = \"drop\"", "unmapped = \"pass_through\"");
        let catalog = Catalog::from_sources(vec![(PathBuf::from("acme.toml"), text)]).unwrap();
        let event = json!({"id": "1", "kind": "thing.done"});
        let out = apply(catalog.get("acme").unwrap(), "thing.done", &event, Limits::default());
        assert_eq!(
            out,
            Ok(Outcome::Mapped {
                unified_type: "acme.thing.done".into(),
                data: event
            })
        );
    }

    #[test]
    fn undefined_types_bad_predicates_and_unreachable_cases_are_reported() {
        let text = load(
            r#"
[mappings."charge"]
type = "payments.charge.sucseeded"
data = '{}'

[[mappings."pr"]]
type = "scm.pull_request.opened"
data = '{}'

[[mappings."pr"]]
when = 'action = '
type = "scm.pull_request.closed"
data = '{}'

[[mappings."pr"]]
typo = 1
type = "scm.pull_request.closed"
data = '{}'
"#,
        )
        .unwrap_err();
        assert!(text.contains("unknown field `typo`"), "{text}");
        let text = load(
            r#"
[mappings."charge"]
type = "payments.charge.sucseeded"
data = '{}'

[[mappings."pr"]]
type = "scm.pull_request.opened"
data = '{}'

[[mappings."pr"]]
when = 'action = '
type = "scm.pull_request.closed"
data = '{}'
"#,
        )
        .unwrap_err();
        assert!(
            text.contains("acme.toml:11: mappings.\"charge\".type: \"payments.charge.sucseeded\" is neither"),
            "{text}"
        );
        assert!(text.contains("did you mean one of payments.charge."), "{text}");
        assert!(text.contains("payments.charge.succeeded"), "{text}");
        assert!(
            text.contains("acme.toml:15: mappings.\"pr\"[0].when: only the last"),
            "{text}"
        );
        assert!(
            text.contains("acme.toml:19: mappings.\"pr\"[1].when: JSONata does not compile"),
            "{text}"
        );
    }

    #[test]
    fn events_over_the_input_limit_are_refused_before_any_evaluation() {
        let catalog = load(
            r#"
[mappings."pr"]
type = "acme.merged"
data = '{"n": $count(list)}'
"#,
        )
        .unwrap();
        let acme = catalog.get("acme").unwrap();
        let body = serde_json::to_vec(&json!({"kind": "pr", "list": vec!["x"; 400]})).unwrap();
        let limits = Limits {
            max_input_bytes: body.len(),
            ..Limits::default()
        };
        let mapped = Outcome::Mapped {
            unified_type: "acme.merged".into(),
            data: json!({"n": 400}),
        };
        assert_eq!(
            map_body(acme, "pr", &body, "application/json", None, limits),
            Ok(mapped)
        );
        let smaller = Limits {
            max_input_bytes: body.len() - 1,
            ..limits
        };
        let err = map_body(acme, "pr", &body, "application/json", None, smaller).unwrap_err();
        assert_eq!(err.reason(), "input_too_large");
        assert_eq!(
            err.to_string(),
            format!(
                "the \"pr\" event is {} bytes, over the {} bytes a mapping may be evaluated on (normalizer.mapping_max_input_bytes)",
                body.len(),
                body.len() - 1
            )
        );
        let event: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            apply(acme, "pr", &event, smaller).unwrap_err().reason(),
            "input_too_large"
        );
        // No mapping to evaluate, nothing to bound: the event is dropped as before.
        assert_eq!(
            map_body(acme, "other", &body, "application/json", None, smaller),
            Ok(Outcome::Dropped)
        );
    }

    #[test]
    fn integers_past_two_to_the_53_survive_mapping_and_pass_through() {
        let text = HEAD.replace("unmapped = \"drop\"", "unmapped = \"pass_through\"");
        let text = format!(
            "{text}{}",
            r#"
[mappings."message"]
type = "acme.message"
data = '{"id": $string(id), "direct": id, "channel": channel, "n": n}'
"#
        );
        let catalog = Catalog::from_sources_with_models(vec![(PathBuf::from("acme.toml"), text)], models()).unwrap();
        let acme = catalog.get("acme").unwrap();
        let body = |kind: &str| {
            format!(
                r#"{{"id": 820982911946154508, "kind": "{kind}", "channel": {{"id": 1234567890123456789}}, "n": 42}}"#
            )
            .into_bytes()
        };
        let Ok(Outcome::Mapped { data, .. }) = map_body(
            acme,
            "message",
            &body("message"),
            "application/json",
            None,
            Limits::default(),
        ) else {
            panic!("not mapped")
        };
        let want = json!({
            "id": "820982911946154508", "direct": "820982911946154508",
            "channel": {"id": "1234567890123456789"}, "n": 42
        });
        assert_eq!(data, want);
        // Passed through, the provider event is the body as parsed, never the engine's:
        // the number stays a number, every digit kept.
        let Ok(Outcome::Mapped { data, .. }) = map_body(
            acme,
            "other",
            &body("other"),
            "application/json",
            None,
            Limits::default(),
        ) else {
            panic!("not passed through")
        };
        let want = json!({
            "id": 820_982_911_946_154_508u64, "kind": "other",
            "channel": {"id": 1_234_567_890_123_456_789u64}, "n": 42
        });
        assert_eq!(data, want);
        assert!(data.to_string().contains("820982911946154508"), "{data}");
    }

    #[test]
    fn batch_items_are_picked_out_of_the_body() {
        let text = HEAD.replace("[event]\n", "[event]\nitems = \"$\"\n");
        let catalog = Catalog::from_sources(vec![(PathBuf::from("acme.toml"), text)]).unwrap();
        let acme = catalog.get("acme").unwrap();
        let body = br#"[{"id": "a"}, {"id": "b"}]"#;
        assert_eq!(
            event_of(acme, body, "application/json", Some(1)),
            Ok(json!({"id": "b"}))
        );
        assert_eq!(
            event_of(acme, body, "application/json", Some(2)),
            Err(ApplyError::MissingItem(2))
        );
        assert_eq!(
            event_of(acme, b"{", "application/json", None),
            Err(ApplyError::MalformedBody)
        );
    }
}
