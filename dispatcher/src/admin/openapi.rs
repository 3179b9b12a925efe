//! `GET /v1/openapi.json`: the checked-in OpenAPI 3.1 document (`dispatcher/openapi.json`).
//! A test holds it and [`super::routes`] to the same set of routes.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;
    use crate::admin::{routes, OPENAPI_PATH};

    const METHODS: &[&str] = &["get", "put", "post", "patch", "delete", "head", "options", "trace"];

    #[test]
    fn the_document_describes_exactly_the_routes() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("a path item").iter() {
                if METHODS.contains(&method.as_str()) {
                    documented.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        let mut served: BTreeSet<String> = routes().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        served.insert(format!("GET {OPENAPI_PATH}"));
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "not in openapi.json: {missing:?}; in openapi.json but not routed: {extra:?}"
        );
    }

    /// Every `$ref` points at a schema, response or parameter the document defines.
    #[test]
    fn every_reference_resolves() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not local"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| collect_refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
            _ => {}
        }
    }
}
