//! `--format sarif` against the official SARIF 2.1.0 schema (OASIS, Errata 01; copied to
//! `testdata/reference/sarif/`), on the findings of every bad fixture: rules, regions, related
//! locations and fixes.

use pbc_compiler::check;
use pbc_compiler::config::Config;
use pbc_compiler::diag::{Diagnostic, Summary};
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::render;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace")
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        workspace().join("testdata/reference/sarif/sarif-schema-2.1.0.json"),
    )
    .expect("the schema is in testdata/reference/sarif");
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF schema violations:\n{}",
        errors.join("\n")
    );
}

/// Checks the trees and files under `dirs` (relative to the workspace) as `pbc check` does.
fn findings(dirs: &[&str]) -> (Loader, Vec<Diagnostic>) {
    let root = workspace();
    let loader = Loader::new(Arc::new(OsFs), &root, Default::default());
    let paths: Vec<PathBuf> = dirs.iter().map(|d| root.join(d)).collect();
    let units = check::discover(&paths).expect("discover");
    // The configuration found upward from the first path, as `pbc check` finds it.
    let cfg = match Config::discover(&OsFs, &paths[0]) {
        Some(file) => {
            let mut cdiags = Vec::new();
            let cfg = Config::load(&loader, &file, &mut cdiags).expect("config loads");
            assert!(cdiags.is_empty(), "{cdiags:?}");
            cfg
        }
        None => Config::default(),
    };
    let report = check::check(&loader, &units, &cfg, &|_, _| {});
    (loader, report.diags)
}

#[test]
fn the_findings_of_every_bad_fixture_are_valid_sarif() {
    let (loader, diags) = findings(&[
        "testdata/bad",
        "testdata/warn",
        "testdata/overlays-bad",
        "testdata/overlays-types",
    ]);
    assert!(diags.len() > 100, "{}", diags.len());
    let text = render::sarif(&loader.sources, &diags, "0.1.0");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert_valid(&validator(), &doc);

    let run = &doc["runs"][0];
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    // No made-up home page: the project has no public URL to give.
    assert!(
        run["tool"]["driver"].get("informationUri").is_none(),
        "{}",
        run["tool"]["driver"]
    );
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), diags.len());
    // One rule per code that occurs, sorted, described from the code's documentation.
    let mut ids: Vec<&str> = diags.iter().map(|d| d.code.id).collect();
    ids.sort();
    ids.dedup();
    let rule_ids: Vec<&str> = rules
        .iter()
        .map(|r| r["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(rule_ids, ids);
    for r in rules {
        let code = pbc_compiler::codes::lookup(r["id"].as_str().unwrap_or("")).expect("known code");
        assert_eq!(r["name"], code.name);
        assert_eq!(r["shortDescription"]["text"], code.summary);
        let full = r["fullDescription"]["text"].as_str().unwrap_or("");
        assert!(full.len() > 20 && !full.contains('\n'), "{full}");
        assert!(
            r["help"]["markdown"]
                .as_str()
                .unwrap_or("")
                .starts_with(full.get(..20).unwrap_or(""))
        );
        let level = match code.severity {
            pbc_compiler::diag::Severity::Error => "error",
            pbc_compiler::diag::Severity::Warning => "warning",
            pbc_compiler::diag::Severity::Info => "note",
        };
        assert_eq!(r["defaultConfiguration"]["level"], level);
    }
    // Each result: its rule, and exactly the region of the JSON output.
    let json: Value = serde_json::from_str(&render::json(
        &loader.sources,
        &diags,
        &Summary::of(&diags, 0),
    ))
    .expect("JSON");
    let (mut related, mut fixes, mut non_ascii) = (0, 0, 0);
    for (res, j) in results
        .iter()
        .zip(json["diagnostics"].as_array().expect("array"))
    {
        let i = res["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(rules[i]["id"], res["ruleId"]);
        assert_eq!(res["ruleId"], j["code"]);
        let loc = &res["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], j["file"]);
        let region = &loc["region"];
        for (s, k) in [
            ("startLine", "line"),
            ("startColumn", "column"),
            ("endLine", "end_line"),
            ("endColumn", "end_column"),
        ] {
            assert_eq!(region[s], j[k], "{s} of {res}");
        }
        let labels = j["labels"].as_array().map(Vec::len).unwrap_or(0);
        let rel = res["relatedLocations"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        assert_eq!(rel, labels);
        related += rel;
        if !j["fix"].is_null() {
            fixes += 1;
            let change = &res["fixes"][0]["artifactChanges"][0];
            let edit = &j["fix"]["edits"][0];
            assert_eq!(
                change["replacements"][0]["insertedContent"]["text"],
                edit["text"]
            );
            assert_eq!(
                change["replacements"][0]["deletedRegion"]["startColumn"],
                edit["column"]
            );
        }
        let file = j["file"].as_str().unwrap_or("");
        let line = j["line"].as_u64().unwrap_or(0) as u32;
        if let Some(f) = loader.sources.find(Path::new(file)) {
            let text = f.line_text(line);
            if !text.is_ascii() {
                non_ascii += 1;
            }
        }
    }
    assert!(related > 0, "no related locations exercised");
    assert!(fixes > 0, "no fixes exercised");
    assert!(non_ascii > 0, "no non-ASCII line exercised");
}

#[test]
fn no_findings_is_valid_sarif_too() {
    let (loader, diags) = findings(&["testdata/example"]);
    assert!(diags.iter().all(|d| !d.is_error()));
    let doc: Value =
        serde_json::from_str(&render::sarif(&loader.sources, &[], "0.1.0")).expect("JSON");
    assert_valid(&validator(), &doc);
    assert_eq!(doc["runs"][0]["results"], Value::Array(vec![]));
    // The validator is not vacuous: a level SARIF does not define, an unknown field.
    let mut bad = doc.clone();
    bad["runs"][0]["results"] = serde_json::json!([{"message": {"text": "x"}, "level": "fatal"}]);
    assert!(!validator().is_valid(&bad));
    let mut bad = doc;
    bad["runs"][0]["colour"] = serde_json::json!("red");
    assert!(!validator().is_valid(&bad));
}

#[test]
fn uris_are_percent_encoded() {
    assert_eq!(render::sarif_uri("a/b.yaml"), ("a/b.yaml".into(), false));
    assert_eq!(
        render::sarif_uri("dir with space/café.yaml"),
        ("dir%20with%20space/caf%C3%A9.yaml".into(), false)
    );
    assert_eq!(
        render::sarif_uri("a:b#c?.yaml"),
        ("a%3Ab%23c%3F.yaml".into(), false)
    );
    assert_eq!(
        render::sarif_uri("/tmp/x.yaml"),
        ("file:///tmp/x.yaml".into(), true)
    );
    assert_eq!(
        render::sarif_uri("C:/x/y.yaml"),
        ("file:///C:/x/y.yaml".into(), true)
    );
}

#[test]
fn every_known_rule_is_a_valid_descriptor() {
    // Every code, as a rule, in a SARIF document with no results.
    let rules: Vec<Value> = pbc_compiler::codes::all()
        .into_iter()
        .map(render::sarif_rule)
        .collect();
    let doc = serde_json::json!({
        "$schema": render::SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "pbc", "rules": rules}}, "results": []}]
    });
    assert_valid(&validator(), &doc);
}
