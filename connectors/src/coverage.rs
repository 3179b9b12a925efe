//! How much of what a provider documents becomes unified events. A connector file lists
//! the event types its provider documents (`[coverage] documented`, with the page they
//! come from) and, each with a one-line reason, those it passes through on purpose
//! (`passed_through`: no unified domain models them). Every other documented type that
//! has no mapping is a gap, and counts against the connector. `switchyard connectors
//! coverage` prints the report, and the generated pages show it.
//!
//! A connector whose types the sender invents (Standard Webhooks, SNS, Pub/Sub) says so
//! with `open = "<why>"` instead of a list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::problems::{err, nth_line_containing, CatalogError};

/// `[coverage]` of a connector file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageSpec {
    /// The provider's page listing its event types.
    #[serde(default)]
    pub source: String,
    /// Every event type the provider documents, as the connector's `[event] type` reads it.
    #[serde(default)]
    pub documented: Vec<String>,
    /// Documented types deliberately delivered as `<connector>.<type>`: type → why.
    #[serde(default)]
    pub passed_through: BTreeMap<String, String>,
    /// Instead of a list: why the types are the sender's own.
    #[serde(default)]
    pub open: Option<String>,
}

/// One connector's coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub connector: String,
    pub documented: usize,
    pub mapped: usize,
    pub passed_through: usize,
    /// Documented, not mapped, no reason given.
    pub gaps: Vec<String>,
    /// Why there is no list (open types), or that the file has no `[coverage]`.
    pub none: Option<String>,
}

impl Report {
    /// Mapped share of the documented types that a unified domain models; `None` when
    /// there is nothing to count.
    pub fn percent(&self) -> Option<f64> {
        let modelled = self.mapped + self.gaps.len();
        (self.none.is_none() && modelled > 0).then(|| 100.0 * self.mapped as f64 / modelled as f64)
    }

    /// `87 %`, `n/a`.
    pub fn percent_text(&self) -> String {
        match self.percent() {
            Some(p) => format!("{} %", p.floor() as u32),
            None => "n/a".to_string(),
        }
    }
}

/// The report of the connector `name`, whose file says `spec`, with mappings for the
/// provider types `mapped` (see [`crate::Connector::coverage_report`]).
pub fn report<V>(name: &str, spec: Option<&CoverageSpec>, mapped: &BTreeMap<String, V>) -> Report {
    let mut report = Report {
        connector: name.to_string(),
        documented: 0,
        mapped: 0,
        passed_through: 0,
        gaps: Vec::new(),
        none: None,
    };
    let Some(spec) = spec else {
        report.none = Some("no [coverage] in the connector file".into());
        return report;
    };
    if let Some(why) = &spec.open {
        report.none = Some(why.clone());
        return report;
    }
    report.documented = spec.documented.len();
    for t in &spec.documented {
        if mapped.contains_key(t) {
            report.mapped += 1;
        } else if spec.passed_through.contains_key(t) {
            report.passed_through += 1;
        } else {
            report.gaps.push(t.clone());
        }
    }
    report
}

/// The problems of a `[coverage]` section: a list and `open` both or neither, a type
/// listed twice, a reason for a type not documented or mapped anyway, an empty reason,
/// a mapped type missing from the list.
pub(crate) fn check(
    path: &Path,
    text: &str,
    spec: &CoverageSpec,
    mapped: &BTreeMap<String, impl Sized>,
    errors: &mut Vec<CatalogError>,
) {
    let line = nth_line_containing(text, "[coverage]", 0);
    let mut problem = |field: &str, message: String| errors.push(err(path, line, field, message));
    match (&spec.open, spec.documented.is_empty()) {
        (Some(_), false) => problem("coverage.open", "give either `open` or `documented`, not both".into()),
        (None, true) => problem(
            "coverage.documented",
            "list the provider's event types (or say why they are open with `open = \"…\"`)".into(),
        ),
        _ => {}
    }
    if spec.open.is_none() && spec.source.trim().is_empty() {
        problem("coverage.source", "name the page the documented types come from".into());
    }
    let mut seen = BTreeSet::new();
    for t in &spec.documented {
        if !seen.insert(t.as_str()) {
            problem("coverage.documented", format!("{t:?} is listed twice"));
        }
    }
    for (t, why) in &spec.passed_through {
        if !seen.contains(t.as_str()) {
            problem(
                "coverage.passed_through",
                format!("{t:?} is not in `documented`: add it there, or remove it here"),
            );
        } else if mapped.contains_key(t) {
            problem(
                "coverage.passed_through",
                format!("{t:?} has a mapping: remove it from `passed_through`"),
            );
        }
        if why.trim().is_empty() {
            problem("coverage.passed_through", format!("{t:?} needs a one-line reason"));
        }
    }
    if spec.open.is_none() {
        for t in mapped.keys() {
            if !seen.contains(t.as_str()) {
                problem(
                    "coverage.documented",
                    format!("{t:?} has a mapping but is not in `documented`: add it"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::catalog::Catalog;
    use crate::unified::UnifiedModels;

    const CONNECTOR: &str = r#"
name = "acme"
title = "Acme"
[signature]
scheme = "hmac"
algorithm = "sha256"
message = "{body}"
encoding = "hex"
header = { format = "plain", name = "X-Sig" }
[event]
id = { json = "id" }
type = { json = "type" }
[mappings."thing.made"]
type = "acme.made"
data = '{"id": id}'
"#;

    fn load(coverage: &str) -> Result<Catalog, String> {
        let text = format!("{CONNECTOR}\n[coverage]\n{coverage}\n");
        Catalog::from_sources_with_models(vec![(PathBuf::from("acme.toml"), text)], UnifiedModels::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn mapped_passed_through_and_gaps_are_counted() {
        let c = load(
            r#"source = "https://acme.test/events"
documented = ["thing.made", "thing.gone", "bill.sent"]
passed_through = { "bill.sent" = "billing has no unified model" }"#,
        )
        .unwrap();
        let r = c.get("acme").unwrap().coverage_report();
        assert_eq!((r.documented, r.mapped, r.passed_through), (3, 1, 1));
        assert_eq!(r.gaps, vec!["thing.gone".to_string()]);
        assert_eq!(r.percent_text(), "50 %");
    }

    #[test]
    fn open_types_have_no_share() {
        let c = load(r#"open = "senders name their own types""#).unwrap();
        let r = c.get("acme").unwrap().coverage_report();
        assert_eq!(r.percent(), None);
        assert_eq!(r.percent_text(), "n/a");
    }

    #[test]
    fn inconsistent_sections_are_load_errors_naming_the_type() {
        let e = load(
            r#"source = "https://acme.test/events"
documented = ["thing.gone", "thing.gone"]
passed_through = { "bill.sent" = "", "thing.gone" = "x" }"#,
        )
        .unwrap_err();
        assert!(e.contains("\"thing.gone\" is listed twice"), "{e}");
        assert!(e.contains("\"bill.sent\" is not in `documented`"), "{e}");
        assert!(e.contains("\"bill.sent\" needs a one-line reason"), "{e}");
        assert!(
            e.contains("\"thing.made\" has a mapping but is not in `documented`"),
            "{e}"
        );
        let e = load("documented = []").unwrap_err();
        assert!(e.contains("list the provider's event types"), "{e}");
        let e = load(
            r#"open = "x"
documented = ["thing.made"]"#,
        )
        .unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }
}
