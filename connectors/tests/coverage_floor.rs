//! The depth the catalog promises (issue 17): every shipped connector says what its
//! provider documents (`[coverage]`, or `open` with why its types are the sender's own),
//! and each one with a list maps at least [`FLOOR`] % of the documented types that a
//! unified domain models. A new connector without a list, or a mapping removed, fails
//! here with the connectors to fix.

use std::path::Path;

use switchyard_connectors::Catalog;

/// The least mapped share (%) of a connector's modelled, documented types.
const FLOOR: f64 = 90.0;

#[test]
fn every_connector_documents_its_types_and_maps_the_modelled_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let catalog = Catalog::load_dir(&dir).expect("the shipped catalog loads");
    let mut missing = Vec::new();
    let mut shallow = Vec::new();
    for name in catalog.names() {
        let connector = catalog.get(name).expect("a listed connector");
        if connector.coverage.is_none() {
            missing.push(name.to_string());
            continue;
        }
        let report = connector.coverage_report();
        if let Some(p) = report.percent() {
            if p < FLOOR {
                shallow.push(format!("{name} {p:.0} % (gaps: {})", report.gaps.join(", ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these connectors have no [coverage] section: {}; list the provider's documented event types \
         (with the page they come from), or say `open = \"<why>\"` when the sender names its own",
        missing.join(", ")
    );
    assert!(
        shallow.is_empty(),
        "below {FLOOR} % mapped: {}; map the gaps, or pass a type through with its reason \
         (`switchyard connectors coverage --gaps`)",
        shallow.join("; ")
    );
}
