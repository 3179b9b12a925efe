//! docs/connectors.md, docs/unified.md and the README's catalog table are what the catalog gives: a connector or a
//! unified type added without regenerating them fails here, with the command to run.

use std::path::Path;

use switchyard_connectors::Catalog;

#[test]
fn the_generated_catalog_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog_dir = root.join("catalog");
    let catalog = Catalog::load_dir(&catalog_dir).expect("the shipped catalog loads");
    let pages = switchyard_connectors::docs::render(&catalog, &Catalog::models_dir(&catalog_dir)).unwrap();
    for (name, expected) in [("connectors.md", &pages.connectors), ("unified.md", &pages.unified)] {
        let path = root.join("../docs").join(name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == *expected,
            "docs/{name} is not what the catalog gives; run `cargo run -p switchyard-cli -- connectors docs` and commit it"
        );
    }
    let readme = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let spliced = switchyard_connectors::docs::splice_readme(&readme, &pages.readme_table)
        .expect("the README has the catalog table's markers");
    assert!(
        spliced == readme,
        "the README's catalog table is not what the catalog gives; run `cargo run -p switchyard-cli -- connectors docs` and commit it"
    );
}
