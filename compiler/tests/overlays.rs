//! Differential tests of overlay resolution against `kubectl kustomize` (kustomize v5.5).
//!
//! Each `testdata/overlays/<case>/` holds a tree whose `overlay/` directory is built, and
//! `expected.yaml`, kubectl's output for it (`testdata/overlays/regen.sh` regenerates them).
//! pbc's resolution must equal it as data, document order included; each Playbook's
//! `spec.stages` is compared as a set, because pbc keeps the base order of merged stages
//! where kustomize puts the patched ones first. Trees marked `PBC-ONLY` use
//! pbc's deliberate differences and are compared exactly, stage order included, with
//! `expected.pbc.yaml`.

use pbc_compiler::diag::Severity;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::resolve::{ResolveOptions, emit_yaml, resolve};
use pbc_compiler::yaml::Limits;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .unwrap_or(here)
        .canonicalize()
        .expect("workspace root")
}

fn loader() -> Loader {
    Loader::new(Arc::new(OsFs), root(), Limits::default())
}

fn cases(marker: &str) -> Vec<PathBuf> {
    let dir = root().join("testdata/overlays");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/overlays")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("overlay").is_dir() && p.join(marker).is_file())
        .collect();
    out.sort();
    out
}

/// The documents of a YAML file as JSON data.
fn load_expected(l: &Loader, path: &Path) -> Vec<Value> {
    let loaded = l.load(path).expect("expected file");
    assert!(
        !loaded.has_errors(),
        "{}: {:?}",
        path.display(),
        loaded.diags
    );
    loaded
        .docs
        .iter()
        .filter(|d| !d.root.is_null())
        .map(|d| d.root.to_json())
        .collect()
}

fn resolved(l: &Loader, case: &Path) -> Vec<Value> {
    let r = resolve(l, &case.join("overlay"), &ResolveOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let errors: Vec<String> = r
        .diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.code.id, d.message))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:?}", case.display());
    // The emitted YAML reads back as the same data.
    let text = emit_yaml(&r.docs);
    let back = l.load_text(format!("{}/emitted.yaml", case.display()), text.clone());
    assert!(
        !back.has_errors(),
        "{}: {:?}\n{text}",
        case.display(),
        back.diags
    );
    let docs: Vec<Value> = r.docs.iter().map(|d| d.to_json()).collect();
    let reread: Vec<Value> = back.docs.iter().map(|d| d.root.to_json()).collect();
    assert_eq!(
        docs,
        reread,
        "{}: emit_yaml does not round-trip",
        case.display()
    );
    docs
}

/// Sorts each Playbook's stages, so that they compare as a set.
fn stages_as_set(mut docs: Vec<Value>) -> Vec<Value> {
    for d in &mut docs {
        if d.get("kind").and_then(Value::as_str) == Some("Playbook")
            && let Some(Value::Array(stages)) = d.pointer_mut("/spec/stages")
        {
            stages.sort_by_key(canonical);
        }
    }
    docs
}

/// JSON text with keys sorted at every level.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn names(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            format!(
                "{}/{}",
                d.get("kind").and_then(Value::as_str).unwrap_or("?"),
                d.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn resolution_equals_kubectl_kustomize() {
    let l = loader();
    let cases = cases("expected.yaml");
    let mut compared = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let want = stages_as_set(load_expected(&l, &case.join("expected.yaml")));
        let got = stages_as_set(resolved(&l, case));
        if want != got {
            failures.push(format!(
                "{}:\n  kubectl: {:?}\n  pbc:     {:?}\n  first difference: {}",
                case.display(),
                names(&want),
                names(&got),
                want.iter()
                    .zip(&got)
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("\n    kubectl {a}\n    pbc     {b}"))
                    .unwrap_or_else(|| "document count".into())
            ));
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        compared >= 25,
        "compared only {compared} trees with kubectl's output (at least 25 expected)"
    );
}

#[test]
fn pbc_only_trees_match_exactly() {
    let l = loader();
    let cases = cases("PBC-ONLY");
    assert!(cases.len() >= 3, "no pbc-only tree was compared");
    for case in &cases {
        let want = load_expected(&l, &case.join("expected.pbc.yaml"));
        let got = resolved(&l, case);
        assert_eq!(want, got, "{}", case.display());
    }
}

#[test]
fn emitted_yaml_matches_kubectl_text_for_most_trees() {
    // Not required (the comparison is as data), but the writer aims at kubectl's exact text.
    let l = loader();
    let cases = cases("expected.yaml");
    let mut same = 0;
    for case in &cases {
        let r = resolve(&l, &case.join("overlay"), &ResolveOptions::default()).expect("resolves");
        let want = std::fs::read_to_string(case.join("expected.yaml")).unwrap_or_default();
        if emit_yaml(&r.docs) == want {
            same += 1;
        }
    }
    assert!(
        same * 4 >= cases.len() * 3,
        "only {same} of {} trees are byte-identical",
        cases.len()
    );
}

#[test]
fn a_shared_base_is_read_once_and_files_are_listed() {
    let l = loader();
    let case = root().join("testdata/overlays/diamond");
    let r = resolve(&l, &case.join("overlay"), &ResolveOptions::default()).expect("resolves");
    assert_eq!(r.docs.len(), 4);
    let base_files = r
        .files
        .iter()
        .filter(|f| f.ends_with("base/code-review-agent.yaml"))
        .count();
    assert_eq!(base_files, 1, "{:?}", r.files);
    // Each file is registered once, however often it is included.
    assert_eq!(l.sources.len(), r.files.len(), "{:?}", r.files);
    assert_eq!(r.includes.len(), 4, "{:?}", r.includes);
}
