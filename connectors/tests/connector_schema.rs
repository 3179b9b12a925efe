//! The published JSON Schema of the connector format (`connectors/connector.schema.json`,
//! for editors) agrees with the loader: every shipped connector file is valid against
//! it, and the mistakes the loader refuses are refused by the schema too.

use std::path::Path;

fn validator() -> jsonschema::Validator {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("connector.schema.json")).unwrap()).unwrap();
    jsonschema::draft202012::options()
        .build(&schema)
        .expect("the connector schema compiles")
}

fn as_json(toml_text: &str) -> serde_json::Value {
    let v: toml::Value = toml::from_str(toml_text).expect("valid TOML");
    serde_json::to_value(v).unwrap()
}

#[test]
fn every_shipped_connector_file_is_valid_against_the_published_schema() {
    let v = validator();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let doc = as_json(&std::fs::read_to_string(&path).unwrap());
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        checked += 1;
    }
    assert!(checked >= 21, "only {checked} connector files found");
}

#[test]
fn the_schema_refuses_what_the_loader_refuses() {
    let v = validator();
    let base = r#"
name = "acme"
title = "Acme"
[signature]
scheme = "token"
header = "X-Token"
[event]
id = { json = "id" }
type = { json = "type" }
"#;
    assert!(v.is_valid(&as_json(base)));
    for (what, text) in [
        ("unknown top-level field", format!("{base}\n[extra]\nx = 1\n")),
        (
            "unknown signature field",
            base.replace("header = \"X-Token\"", "header = \"X-Token\"\ncolour = \"red\""),
        ),
        (
            "unknown scheme",
            base.replace("scheme = \"token\"", "scheme = \"rot13\""),
        ),
        ("bad name", base.replace("name = \"acme\"", "name = \"Acme Corp\"")),
        ("missing event id", base.replace("id = { json = \"id\" }\n", "")),
        (
            "mapping without data",
            format!("{base}\n[mappings.\"thing.made\"]\ntype = \"crm.contact.created\"\n"),
        ),
    ] {
        assert!(!v.is_valid(&as_json(&text)), "{what} was accepted");
    }
}
