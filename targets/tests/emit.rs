//! Snapshots of every emitter on testdata/, and determinism.

mod common;

use pbc_targets::Settings;
use pbc_targets::bundle::{Target, artifacts};

#[test]
fn every_emitter_on_testdata() {
    let root = common::repo();
    let inputs = common::inputs();
    assert!(inputs.len() >= 8, "{inputs:?}");
    let mut crd_seen = false;
    for rel in inputs {
        let (_, c) = common::compile(&root, &rel);
        assert!(!c.playbooks.is_empty(), "{rel}: no playbook");
        let mut diags = Vec::new();
        let files = artifacts(&c, &Target::ALL, &Settings::default(), &mut diags);
        let again = artifacts(&c, &Target::ALL, &Settings::default(), &mut Vec::new());
        assert_eq!(files, again, "{rel}: not deterministic");
        let tag = rel
            .trim_start_matches("testdata/")
            .trim_end_matches(".yaml")
            .replace('/', "__");
        for (path, text) in &files {
            if path.starts_with("crd-definition/") {
                if !crd_seen {
                    insta::assert_snapshot!("crd__definition", text);
                    crd_seen = true;
                }
                continue;
            }
            if path.starts_with("resolved/") {
                continue;
            }
            let name = format!("{tag}__{}", path.replace('/', "__"));
            insta::assert_snapshot!(name, text);
        }
    }
}
