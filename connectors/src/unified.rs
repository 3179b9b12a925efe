//! The unified models: one JSON Schema (draft 2020-12) per unified event type, describing
//! the event's `data`, in `connectors/unified/<type>.schema.json`. Mappings in the catalog
//! may only name a type defined here (or one of their own connector's `<connector>.…`
//! types), and the fixtures check every mapped event against its schema.
//!
//! A file whose name is a single segment (`common.schema.json`) holds shared definitions
//! (`$defs`) the type files refer to with a relative `$ref`; every other file defines the
//! type its name says. Each file's `$id` is [`BASE_URI`] followed by its file name, so
//! references resolve in memory: nothing is fetched from the network or the disk.
//!
//! # Versions
//! Each type's file may say `"x-schema-version": <n>` (absent: 1), and every unified
//! event carries its type's version as `schema_version`. A change a consumer written for
//! the old schema cannot miss (a new optional field, a wider enum of a field documented
//! as open) keeps the version; one it could trip on (a field removed, renamed, retyped
//! or made required) raises it, and docs/unified.md says what changed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

/// The base of every model's `$id`. A reserved domain: the ids are names, never fetched.
pub const BASE_URI: &str = "https://switchyard.invalid/unified/";

const SUFFIX: &str = ".schema.json";

/// One problem with a model file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct ModelError {
    pub file: PathBuf,
    pub message: String,
}

/// The loaded unified models, each compiled once.
#[derive(Clone, Default)]
pub struct UnifiedModels {
    validators: BTreeMap<String, Arc<jsonschema::Validator>>,
    versions: BTreeMap<String, u32>,
}

/// The key of a type's version in its schema file.
pub const VERSION_KEY: &str = "x-schema-version";

impl fmt::Debug for UnifiedModels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.validators.keys()).finish()
    }
}

impl UnifiedModels {
    /// Load every `*.schema.json` in `dir`; every problem is reported at once.
    pub fn load_dir(dir: &Path) -> Result<Self, Vec<ModelError>> {
        let problem = |file: &Path, message: String| ModelError {
            file: file.to_path_buf(),
            message,
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| vec![problem(dir, format!("cannot read the unified models folder: {e}"))])?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(SUFFIX))
            })
            .collect();
        files.sort();
        let mut errors = Vec::new();
        let mut documents = Vec::new();
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let stem = name.trim_end_matches(SUFFIX).to_string();
            let doc: Value = match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("not JSON: {e}")))
            {
                Ok(v) => v,
                Err(e) => {
                    errors.push(problem(&path, e));
                    continue;
                }
            };
            let want_id = format!("{BASE_URI}{name}");
            if doc.get("$id").and_then(Value::as_str) != Some(want_id.as_str()) {
                errors.push(problem(&path, format!("\"$id\" must be {want_id:?}")));
            }
            let is_type = stem.contains('.');
            if is_type && !valid_unified_type(&stem) {
                errors.push(problem(
                    &path,
                    format!("{stem:?} is not a unified type name: use dot-separated lowercase segments"),
                ));
            } else if is_type && doc.get("title").and_then(Value::as_str) != Some(stem.as_str()) {
                errors.push(problem(&path, format!("\"title\" must be the type, {stem:?}")));
            }
            if let Some(v) = doc.get(VERSION_KEY) {
                if v.as_u64().is_none_or(|n| n == 0 || n > u64::from(u32::MAX)) {
                    errors.push(problem(
                        &path,
                        format!("\"{VERSION_KEY}\" must be a whole number from 1"),
                    ));
                }
            }
            documents.push((path, stem, is_type, want_id, doc));
        }
        let registry = jsonschema::Registry::new()
            .extend(documents.iter().map(|(_, _, _, id, doc)| (id.as_str(), doc.clone())))
            .and_then(|b| b.prepare());
        let registry = match registry {
            Ok(r) => r,
            Err(e) => {
                errors.push(problem(dir, format!("the schemas do not form a valid set: {e}")));
                return Err(errors);
            }
        };
        let mut validators = BTreeMap::new();
        let mut versions = BTreeMap::new();
        for (path, stem, is_type, _, doc) in &documents {
            let built = jsonschema::draft202012::options()
                .with_registry(&registry)
                .offline()
                .should_validate_formats(true)
                .build(doc);
            match built {
                Ok(v) if *is_type => {
                    validators.insert(stem.clone(), Arc::new(v));
                    let version = doc.get(VERSION_KEY).and_then(Value::as_u64).unwrap_or(1);
                    versions.insert(stem.clone(), u32::try_from(version).unwrap_or(1));
                }
                Ok(_) => {}
                Err(e) => errors.push(problem(path, format!("not a valid JSON Schema: {e}"))),
            }
        }
        if errors.is_empty() {
            Ok(Self { validators, versions })
        } else {
            Err(errors)
        }
    }

    /// Whether `unified_type` has a model.
    pub fn contains(&self, unified_type: &str) -> bool {
        self.validators.contains_key(unified_type)
    }

    /// The schema version of `unified_type`; `None` for a type without a model.
    pub fn version(&self, unified_type: &str) -> Option<u32> {
        self.versions.get(unified_type).copied()
    }

    /// Every defined type, sorted.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.validators.keys().map(String::as_str)
    }

    /// Check an event's `data` against its type's model. Each problem is one line:
    /// `<JSON pointer in data>: <what is wrong>`.
    pub fn validate(&self, unified_type: &str, data: &Value) -> Result<(), Vec<String>> {
        let Some(v) = self.validators.get(unified_type) else {
            return Err(vec![format!("{unified_type:?} is not a defined unified type")]);
        };
        let problems: Vec<String> = v
            .iter_errors(data)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {}", if at.is_empty() { "/" } else { &at }, e.masked())
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Defined types that share `unified_type`'s first segments, for "did you mean".
    pub fn neighbours(&self, unified_type: &str) -> Vec<&str> {
        let prefix = |s: &str, n: usize| s.split('.').take(n).collect::<Vec<_>>().join(".");
        for n in (1..=2).rev() {
            let want = prefix(unified_type, n);
            let near: Vec<&str> = self.types().filter(|t| prefix(t, n) == want).collect();
            if !near.is_empty() {
                return near;
            }
        }
        Vec::new()
    }
}

/// `segment(.segment)+`, each segment lowercase letters, digits and '_'.
pub fn valid_unified_type(s: &str) -> bool {
    let mut n = 0;
    for seg in s.split('.') {
        if seg.is_empty()
            || !seg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return false;
        }
        n += 1;
    }
    n >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> UnifiedModels {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("unified");
        UnifiedModels::load_dir(&dir).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn the_shipped_models_load_and_cover_the_required_types() {
        let m = shipped();
        for t in [
            "crm.contact.created",
            "crm.company.deleted",
            "crm.deal.updated",
            "ticketing.ticket.closed",
            "ticketing.comment.created",
            "payments.charge.refunded",
            "payments.invoice.payment_failed",
            "payments.subscription.canceled",
            "payments.customer.updated",
            "commerce.order.cancelled",
            "scm.pull_request.merged",
            "scm.push",
            "messaging.message.created",
            "calendar.event.canceled",
            "incident.acknowledged",
        ] {
            assert!(m.contains(t), "{t}");
        }
        assert!(!m.contains("common"));
    }

    #[test]
    fn data_is_checked_against_the_shared_shapes() {
        let m = shipped();
        let charge = json!({"charge": {"id": "ch_1", "amount": 2000, "currency": "USD", "status": "succeeded",
                                       "created_at": "2023-11-14T22:13:20Z"}});
        assert_eq!(m.validate("payments.charge.succeeded", &charge), Ok(()));
        let bad = json!({"charge": {"id": "ch_1", "amount": 20.5, "currency": "usd", "status": "succeeded",
                                    "created_at": "yesterday", "colour": "red"}});
        let problems = m.validate("payments.charge.succeeded", &bad).unwrap_err();
        let text = problems.join("\n");
        assert!(text.contains("/charge/amount"), "{text}");
        assert!(text.contains("/charge/currency"), "{text}");
        assert!(text.contains("/charge/created_at"), "{text}");
        assert!(text.contains("colour"), "{text}");
        assert!(m.validate("payments.charge.exploded", &charge).is_err());
        // The same kind of object's types, whichever the catalog has.
        let near = m.neighbours("payments.charge.exploded");
        assert!(near.contains(&"payments.charge.succeeded"), "{near:?}");
        assert!(near.iter().all(|t| t.starts_with("payments.charge.")), "{near:?}");
    }

    #[test]
    fn a_broken_model_folder_is_refused_with_every_problem() {
        let dir = std::env::temp_dir().join(format!("switchyard-unified-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        write("a.b.schema.json", "{ not json");
        write(
            "x.y.schema.json",
            &json!({"$id": format!("{BASE_URI}x.y.schema.json"), "title": "wrong", "type": "object"}).to_string(),
        );
        write(
            "x.z.schema.json",
            &json!({"$id": format!("{BASE_URI}x.z.schema.json"), "title": "x.z", "type": 12}).to_string(),
        );
        let errors = UnifiedModels::load_dir(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:?}");
        assert!(text[0].contains("a.b.schema.json: not JSON"), "{text:?}");
        assert!(text[1].contains("\"title\""), "{text:?}");
        assert!(text[2].contains("not a valid JSON Schema"), "{text:?}");
    }
}
