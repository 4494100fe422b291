//! Every answer of the server, checked against the committed OpenAPI document
//! (`schemas/pbc-serve-openapi.json`): the path and method are documented, the status is one
//! the operation declares, and a JSON body validates against its schema.

use serde_json::{Value, json};
use std::sync::OnceLock;

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text = std::fs::read_to_string(super::repo().join("schemas/pbc-serve-openapi.json"))
            .expect("schemas/pbc-serve-openapi.json");
        serde_json::from_str(&text).expect("the OpenAPI document is JSON")
    })
}

/// The documented path template `path` (no query) matches.
fn template(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    document()["paths"]
        .as_object()?
        .keys()
        .find(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() == segs.len()
                && ts.iter().zip(&segs).all(|(t, s)| {
                    (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                })
        })
        .map(String::as_str)
}

fn validate(schema: &Value, body: &Value, what: &str) {
    let root = json!({
        "allOf": [schema],
        "components": document()["components"],
    });
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the answer does not match the OpenAPI document:\n  {}\nbody: {body}",
        errors.join("\n  ")
    );
}

/// Panics unless the answer is one the document describes.
pub fn check(method: &str, path: &str, status: u16, content_type: &str, text: &str) {
    let what = format!("{method} {path} -> {status}");
    let Some(t) = template(path) else {
        // Not an endpoint: the fallback answers 404 with the error shape.
        assert_eq!(status, 404, "{what}: an undocumented path answered");
        let body: Value = serde_json::from_str(text).expect("a JSON error");
        validate(
            &json!({"$ref": "#/components/schemas/ErrorBody"}),
            &body,
            &what,
        );
        return;
    };
    let op = &document()["paths"][t][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{what}: {method} {t} is not documented");
    let resp = &op["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "{what}: status {status} is not documented for {method} {t}; body: {text}"
    );
    let content = resp["content"].as_object().expect("documented content");
    let media = content_type.split(';').next().unwrap_or("").trim();
    let Some((_, c)) = content
        .iter()
        .find(|(k, _)| k.split(';').next().unwrap_or("").trim() == media)
    else {
        panic!(
            "{what}: content type {content_type:?} is not documented (documented: {:?})",
            content.keys().collect::<Vec<_>>()
        );
    };
    if media == "application/json" {
        let body: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {text}"));
        validate(&c["schema"], &body, &what);
    }
}
