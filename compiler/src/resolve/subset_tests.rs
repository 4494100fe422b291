//! [`ResolveOptions::only`] and [`Resolution::separable`]: one resource file's documents
//! resolved alone come out as they do in the whole tree, and whatever ties documents to each
//! other makes the tree not separable.

use super::*;
use crate::fs::MemFs;
use std::sync::Arc;

fn pb(name: &str) -> String {
    format!(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: {name}\n  labels: {{team: a}}\nspec:\n  stages:\n    - name: s\n      prompt: hello\n"
    )
}

fn loader(overlay: &str) -> Loader {
    let mut fs = MemFs::new();
    fs.insert(
        "base/kustomization.yaml",
        "resources:\n  - a.yaml\n  - b.yaml\n",
    );
    fs.insert("base/a.yaml", pb("a"));
    fs.insert("base/b.yaml", format!("{}---\n{}", pb("b1"), pb("b2")));
    fs.insert("dev/kustomization.yaml", overlay);
    fs.insert(
        "dev/patch.yaml",
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: b2\nspec:\n  stages:\n    - name: s\n      prompt: patched\n",
    );
    Loader::new(Arc::new(fs), "", crate::yaml::Limits::default())
}

const OVERLAY: &str = "resources:\n  - ../base\nnamePrefix: dev-\nlabels:\n  - pairs: {env: dev}\npatches:\n  - path: patch.yaml\n  - target: {kind: Playbook, labelSelector: team=a}\n    patch: |-\n      - op: add\n        path: /metadata/labels/tier\n        value: gold\n";

fn emitted(docs: &[Node]) -> Vec<String> {
    docs.iter()
        .map(|d| emit_yaml(std::slice::from_ref(d)))
        .collect()
}

#[test]
fn one_files_documents_resolve_alone_as_in_the_whole_tree() {
    let l = loader(OVERLAY);
    let whole = resolve(&l, Path::new("dev"), &ResolveOptions::default()).expect("resolves");
    assert!(whole.separable);
    assert!(whole.diags.is_empty(), "{:?}", whole.diags);
    let opts = ResolveOptions {
        only: Some(l.resolve(Path::new("base/b.yaml"))),
        ..ResolveOptions::default()
    };
    let sub = resolve(&l, Path::new("dev"), &opts).expect("resolves");
    assert!(sub.separable);
    let all = emitted(&whole.docs);
    let alone = emitted(&sub.docs);
    assert_eq!(alone.len(), 2);
    assert_eq!(
        alone[..],
        all[1..],
        "b1 and b2, prefixed, labelled and patched"
    );
    assert!(alone[1].contains("prompt: patched") && alone[0].contains("tier: gold"));
    // `a.yaml` was not read.
    assert!(
        !sub.files.iter().any(|f| f.ends_with("a.yaml")),
        "{:?}",
        sub.files
    );
}

#[test]
fn what_ties_documents_together_is_not_separable() {
    let tied = [
        "resources:\n  - ../base\nreplacements:\n  - source: {kind: Playbook, name: a, fieldPath: spec.stages.0.prompt}\n    targets:\n      - select: {kind: Playbook, name: b1}\n        fieldPaths: [spec.stages.0.prompt]\n",
        "resources:\n  - ../base\nconfigMapGenerator:\n  - name: c\n    literals: [k=v]\n",
        "resources:\n  - ../base\npatches:\n  - target: {kind: Playbook}\n    patch: |-\n      - op: copy\n        from: /spec/stages/0/prompt\n        path: /metadata/labels/team\n",
    ];
    for overlay in tied {
        let l = loader(overlay);
        let r = resolve(&l, Path::new("dev"), &ResolveOptions::default()).expect("resolves");
        assert!(!r.separable, "{overlay}");
    }
}
