//! A connector file's mappings compiled and checked when the catalog loads: every
//! expression parsed, every target a defined unified type (or the connector's own
//! `<connector>.…`), every problem reported with its line.

use std::collections::BTreeMap;
use std::path::Path;

use crate::mapping::Mapping;
use crate::model::MappingCases;
use crate::problems::{err, nth_line_containing, CatalogError};
use crate::unified::{valid_unified_type, UnifiedModels};

/// One mapping ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    /// Applies only when this evaluates to `true`; `None`: always.
    pub when: Option<Mapping>,
    pub unified_type: String,
    pub data: Mapping,
    /// `data` gives one unified event per element ([`crate::model::MappingSpec::many`]).
    pub many: bool,
}

/// Compile and check a connector file's mappings, adding every problem to `errors`.
pub(crate) fn compile(
    path: &Path,
    text: &str,
    connector: &str,
    specs: &BTreeMap<String, MappingCases>,
    models: &UnifiedModels,
    errors: &mut Vec<CatalogError>,
) -> BTreeMap<String, Vec<CompiledMapping>> {
    let mut out = BTreeMap::new();
    for (provider_type, MappingCases(cases)) in specs {
        let mut compiled = Vec::with_capacity(cases.len());
        for (k, m) in cases.iter().enumerate() {
            let (field, line) = if cases.len() == 1 {
                let line = nth_line_containing(text, &format!("mappings.\"{provider_type}\"]"), 0)
                    .or_else(|| nth_line_containing(text, &format!("mappings.{provider_type}]"), 0));
                (format!("mappings.\"{provider_type}\""), line)
            } else {
                let line = nth_line_containing(text, &format!("[[mappings.\"{provider_type}\"]]"), k);
                (format!("mappings.\"{provider_type}\"[{k}]"), line)
            };
            if let Some(problem) = type_problem(&m.unified_type, connector, models) {
                errors.push(err(path, line, &format!("{field}.type"), problem));
            }
            if m.when.is_none() && k + 1 < cases.len() {
                errors.push(err(
                    path,
                    line,
                    &format!("{field}.when"),
                    "only the last mapping of a list may omit `when`: the ones after it could never apply",
                ));
            }
            let when = match m.when.as_deref().map(Mapping::compile).transpose() {
                Ok(w) => w,
                Err(e) => {
                    errors.push(err(path, line, &format!("{field}.when"), e.to_string()));
                    None
                }
            };
            match Mapping::compile(&m.data) {
                Ok(data) => compiled.push(CompiledMapping {
                    when,
                    unified_type: m.unified_type.clone(),
                    data,
                    many: m.many,
                }),
                Err(e) => errors.push(err(path, line, &format!("{field}.data"), e.to_string())),
            }
        }
        out.insert(provider_type.clone(), compiled);
    }
    out
}

/// Why `unified_type` may not be a mapping's target, if it may not.
fn type_problem(unified_type: &str, connector: &str, models: &UnifiedModels) -> Option<String> {
    if !valid_unified_type(unified_type) {
        return Some(format!(
            "{unified_type:?} is not a unified event type: write dot-separated lowercase segments such as payments.charge.refunded"
        ));
    }
    if models.contains(unified_type) || unified_type.starts_with(&format!("{connector}.")) {
        return None;
    }
    let near = models.neighbours(unified_type);
    let hint = if models.types().next().is_none() {
        "no unified models are loaded: is the unified/ folder beside the catalog missing?".to_string()
    } else if near.is_empty() {
        let all: Vec<&str> = models.types().collect();
        format!("defined types: {}", all.join(", "))
    } else {
        format!("did you mean one of {}?", near.join(", "))
    };
    Some(format!(
        "{unified_type:?} is neither a defined unified type nor one of this connector's own \"{connector}.…\" types ({hint})"
    ))
}
