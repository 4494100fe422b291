//! The semantic pass on real files: the analysis the targets consume.

use pbc_compiler::check::{PlaybookDoc, check_document};
use pbc_compiler::config::Config;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::sema::lower::{Cond, Lit};
use pbc_compiler::types::SchemaStore;
use std::path::Path;
use std::sync::Arc;

#[test]
fn gates_are_lowered_fail_safe_from_the_checked_expressions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let loader = Loader::new(Arc::new(OsFs), &root, Default::default());
    let l = loader
        .load(Path::new(
            "testdata/seeds/code-review-agent/code-review-agent.yaml",
        ))
        .unwrap();
    let doc = PlaybookDoc::new(l.docs[0].root.clone(), None);
    let mut diags = Vec::new();
    // The seed's configuration defines the channels and audit sinks it names.
    let cfg = Config::load(
        &loader,
        Path::new("testdata/seeds/code-review-agent/.pbc.yaml"),
        &mut diags,
    )
    .expect("the seed's configuration");
    let (pb, an) = check_document(
        &loader,
        &SchemaStore::new(),
        &doc,
        &cfg,
        &|_, _| {},
        &mut diags,
    )
    .unwrap();
    assert!(!diags.iter().any(|d| d.is_error()), "{diags:?}");
    let i = pb
        .spec
        .stages
        .iter()
        .position(|s| s.name.value == "compliance-check")
        .unwrap();
    // `security-report.risk-level >= HIGH` gates unless the value is LOW or MEDIUM:
    // an absent or unknown risk level asks a person.
    let lowered = an.conditions[i][0].as_ref().expect("lowered");
    let path = vec!["security-report".to_string(), "risk-level".to_string()];
    assert_eq!(
        lowered.gate_manual(),
        Cond::Not(Box::new(Cond::In {
            path,
            values: vec![Lit::Str("LOW".into()), Lit::Str("MEDIUM".into())]
        }))
    );
    assert!(
        an.conditions[i][1].is_none(),
        "the else branch has no condition"
    );
    // The graph: security-review runs before compliance-check.
    let j = pb
        .spec
        .stages
        .iter()
        .position(|s| s.name.value == "security-review")
        .unwrap();
    assert!(an.graph.before(j, i));
    assert!(!an.graph.before(i, j));
}
