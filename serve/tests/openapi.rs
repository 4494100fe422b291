//! `schemas/pbc-serve-openapi.json` is the document the code generates (regenerate it with
//! `PBC_WRITE_OPENAPI=1 cargo test --workspace --test openapi`), and it is a valid OpenAPI 3.1
//! document whose every operation is authenticated except health and metrics, and documents
//! its error answers.

use serde_json::Value;
use std::path::Path;

fn committed_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/pbc-serve-openapi.json")
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = pbc_serve::openapi::document();
    let path = committed_path();
    if std::env::var_os("PBC_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/pbc-serve-openapi.json is not what the code generates; run \
         `PBC_WRITE_OPENAPI=1 cargo test --workspace --test openapi` and review the diff"
    );
    // Same inputs, same bytes.
    assert_eq!(generated, pbc_serve::openapi::document());
}

#[test]
fn every_route_is_documented_with_its_answers() {
    let doc: Value = serde_json::from_str(&pbc_serve::openapi::document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut ops = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            ops.push(format!("{} {path}", method.to_uppercase()));
            let responses = op["responses"].as_object().unwrap();
            let open = path == "/healthz" || path == "/metrics";
            // The web page: its sign-in form and style sheet are open; every other page
            // needs the session cookie, and redirects (303) carry no body.
            let page = path.starts_with("/ui");
            let open = open || path == "/ui/login" || path == "/ui/style.css";
            if page {
                assert!(
                    open || op["security"].to_string().contains("session"),
                    "{method} {path} has no session requirement"
                );
            } else if !open {
                assert!(
                    op["security"].as_array().is_some_and(|s| !s.is_empty()),
                    "{method} {path} has no security requirement"
                );
                for code in ["401", "429", "500"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
            }
            for (code, r) in responses {
                if page && code == "303" {
                    continue;
                }
                let content = r["content"].as_object().unwrap();
                assert!(!content.is_empty(), "{method} {path} {code} has no body");
            }
        }
    }
    ops.sort();
    assert_eq!(
        ops,
        [
            "DELETE /v1/kill-switch",
            "GET /healthz",
            "GET /metrics",
            "GET /ui",
            "GET /ui/approvals/{id}",
            "GET /ui/login",
            "GET /ui/runs/{id}",
            "GET /ui/style.css",
            "GET /v1/approvals",
            "GET /v1/kill-switch",
            "GET /v1/runs",
            "GET /v1/runs/{id}",
            "POST /ui/approvals/{id}/approve",
            "POST /ui/approvals/{id}/reject",
            "POST /ui/login",
            "POST /ui/logout",
            "POST /v1/approvals/{id}/approve",
            "POST /v1/approvals/{id}/reject",
            "POST /v1/events/{event}",
            "POST /v1/kill-switch",
            "POST /v1/runs",
            "POST /v1/runs/{id}/stop",
            "POST /v1/slack/interactions",
        ]
    );
    // Every reference resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "a reference to an undefined schema {name}"
        );
    }
}
