//! The differential test against kustomize's own test suite.
//!
//! `testdata/kustomize-cases/<case>/` holds a tree taken from a krusty test of kustomize
//! (`tests/kustomize/extract.py` wrote them), `build` (the directory built, relative to
//! `tree/`), and what `kubectl kustomize` made of it: `expected.yaml`, or
//! `expected-error.txt` when it failed. pbc's resolver builds every tree; each case is one of
//!
//! - MATCH: both build, and the documents are equal as data, document order included;
//! - ERROR-AGREES: both fail;
//! - REFUSED: kubectl builds, pbc fails with an "unsupported" finding naming the feature it
//!   does not implement (or only on a repeated mapping key, which pbc rejects on purpose).
//!
//! Anything else (different output, a pbc error where kubectl builds that is not a refusal,
//! a pbc build where kubectl fails) fails the test: pbc never builds something other than
//! kustomize does without saying so. The counts are recorded in `docs/overlays.md`.

use pbc_compiler::diag::{Diagnostic, Severity};
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::resolve::{LoadRestrictor, ResolveOptions, emit_yaml, resolve};
use pbc_compiler::yaml::Limits;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The codes of pbc's refusals: a kustomize feature it does not implement.
const UNSUPPORTED: &[&str] = &[
    "unsupported-kustomization-field",
    "unsupported-resource",
    "unsupported-overlay-feature",
];

/// Where pbc reads YAML more strictly than kustomize, on purpose: a mapping that repeats a
/// key is an error (kustomize keeps the last value). A case failing only on these is
/// counted as REFUSED: pbc says why it does not build the tree.
const STRICTER: &[&str] = &["duplicate-key"];

fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .unwrap_or(here)
        .canonicalize()
        .expect("workspace root")
}

fn cases() -> Vec<PathBuf> {
    let dir = root().join("testdata/kustomize-cases");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/kustomize-cases")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Match,
    ErrorAgrees,
    Refused(String),
    Different(String),
}

fn errors(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

fn describe(d: &Diagnostic) -> String {
    format!("{} {}: {}", d.code.id, d.code.name, d.message)
}

/// A short account of the first difference between two document lists.
fn first_difference(want: &[Value], got: &[Value]) -> String {
    let id = |d: &Value| {
        format!(
            "{}/{}",
            d.get("kind").and_then(Value::as_str).unwrap_or("?"),
            d.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        )
    };
    if want.len() != got.len() {
        return format!(
            "kubectl {} documents {:?}, pbc {} {:?}",
            want.len(),
            want.iter().map(id).collect::<Vec<_>>(),
            got.len(),
            got.iter().map(id).collect::<Vec<_>>()
        );
    }
    for (a, b) in want.iter().zip(got) {
        if a != b {
            return format!("{}:\n    kubectl {a}\n    pbc     {b}", id(a));
        }
    }
    "none".into()
}

fn run_case(case: &Path) -> Outcome {
    // Each case on its own loader: trees of different cases share file names.
    let l = Loader::new(Arc::new(OsFs), root(), Limits::default());
    let build = std::fs::read_to_string(case.join("build")).expect("build");
    let options = std::fs::read_to_string(case.join("options")).unwrap_or_default();
    let opts = ResolveOptions {
        load_restrictor: if options.contains("load-restrictor: none") {
            LoadRestrictor::None
        } else {
            LoadRestrictor::RootOnly
        },
        ..ResolveOptions::default()
    };
    let dir = case.join("tree").join(build.trim());
    let kubectl_fails = case.join("expected-error.txt").is_file();
    let r = match resolve(&l, &dir, &opts) {
        Ok(r) => r,
        Err(e) => {
            return if kubectl_fails {
                Outcome::ErrorAgrees
            } else {
                Outcome::Different(format!("pbc fails ({e}), kubectl builds"))
            };
        }
    };
    let errs = errors(&r.diags);
    if !errs.is_empty() {
        if kubectl_fails {
            return Outcome::ErrorAgrees;
        }
        if errs.iter().all(|d| STRICTER.contains(&d.code.name)) {
            return Outcome::Refused(describe(errs[0]));
        }
        return match errs.iter().find(|d| UNSUPPORTED.contains(&d.code.name)) {
            Some(d) => Outcome::Refused(describe(d)),
            None => Outcome::Different(format!(
                "pbc fails, kubectl builds: {}",
                errs.iter()
                    .map(|d| describe(d))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        };
    }
    if kubectl_fails {
        let why = std::fs::read_to_string(case.join("expected-error.txt")).unwrap_or_default();
        return Outcome::Different(format!("pbc builds, kubectl fails: {}", why.trim()));
    }
    // What pbc prints, read back as data.
    let text = emit_yaml(&r.docs);
    let back = l.load_text(case.join("pbc-output.yaml"), text.clone());
    if back.has_errors() {
        return Outcome::Different(format!("pbc's output does not read back:\n{text}"));
    }
    let got: Vec<Value> = back
        .docs
        .iter()
        .filter(|d| !d.root.is_null())
        .map(|d| d.root.to_json())
        .collect();
    let expected = case.join("expected.yaml");
    let want_loaded = l.load(&expected).expect("expected.yaml");
    assert!(
        !want_loaded.has_errors(),
        "{}: {:?}",
        expected.display(),
        want_loaded.diags
    );
    let want: Vec<Value> = want_loaded
        .docs
        .iter()
        .filter(|d| !d.root.is_null())
        .map(|d| d.root.to_json())
        .collect();
    if want == got {
        Outcome::Match
    } else {
        Outcome::Different(first_difference(&want, &got))
    }
}

#[test]
fn pbc_matches_kubectl_or_refuses_on_kustomizes_own_tests() {
    let cases = cases();
    let (mut matched, mut agreed, mut refused) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut refusals: std::collections::BTreeMap<String, usize> = Default::default();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match run_case(case) {
            Outcome::Match => matched += 1,
            Outcome::ErrorAgrees => agreed += 1,
            Outcome::Refused(why) => {
                refused += 1;
                // The finding's kind, without the resource it names.
                let kind = why.split(':').next().unwrap_or("").to_string();
                *refusals.entry(kind).or_default() += 1;
                if std::env::var_os("PBC_CASES_VERBOSE").is_some() {
                    println!("REFUSED {name}: {why}");
                }
            }
            Outcome::Different(why) => failures.push(format!("{name}: {why}")),
        }
    }
    let compared = matched + agreed + refused + failures.len();
    println!(
        "kustomize cases: {compared} compared: {matched} MATCH, {agreed} ERROR-AGREES, {refused} REFUSED, {} DIFFERENT",
        failures.len()
    );
    for (k, n) in &refusals {
        println!("  refused {n:>3}  {k}");
    }
    assert!(
        failures.is_empty(),
        "{} cases differ from kubectl kustomize:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        compared,
        cases.len(),
        "compared fewer cases than testdata/kustomize-cases holds"
    );
    assert!(
        compared >= 250,
        "testdata/kustomize-cases holds only {compared} cases"
    );
}
