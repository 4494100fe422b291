//! Provenance through the features of custom field specs, custom schemas, transformer
//! configurations and origin annotations: each value written keeps the span of what caused
//! it.

use super::*;
use crate::fs::MemFs;
use std::sync::Arc;

fn build(files: &[(&str, &str)]) -> (Loader, Resolution) {
    let mut fs = MemFs::new();
    for (p, t) in files {
        fs.insert(*p, *t);
    }
    let l = Loader::new(Arc::new(fs), "", crate::yaml::Limits::default());
    let r = resolve(&l, Path::new("k"), &ResolveOptions::default()).expect("resolves");
    (l, r)
}

/// The file and text of a value's span.
fn at(l: &Loader, n: &Node) -> (String, String) {
    let f = l.sources.get(n.span.file).expect("file");
    (f.path.display().to_string(), f.slice(n.span).to_string())
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    metadata:\n      labels: {a: b}\n    spec:\n      containers:\n        - name: c\n          image: x\n          ports:\n            - containerPort: 80\n";

#[test]
fn a_label_written_through_its_own_fields_keeps_the_pairs_span() {
    let (l, r) = build(&[
        (
            "k/kustomization.yaml",
            "resources:\n  - d.yaml\nlabels:\n  - pairs:\n      team: sre\n    fields:\n      - path: spec/template/metadata/labels\n        kind: Deployment\n",
        ),
        ("k/d.yaml", DEPLOY),
    ]);
    assert!(r.diags.is_empty(), "{:?}", r.diags);
    let v = r.docs[0]
        .get_path(&["spec", "template", "metadata", "labels", "team"])
        .expect("the label in the template");
    assert_eq!(at(&l, v), ("k/kustomization.yaml".into(), "sre".into()));
    // Not in selectors: only the entry's fields and metadata.
    assert!(r.docs[0].get_path(&["spec", "selector"]).is_none());
    assert!(
        r.docs[0]
            .get_path(&["metadata", "labels", "team"])
            .is_some()
    );
}

#[test]
fn a_custom_schema_merges_by_its_keys_and_the_patch_values_keep_their_span() {
    let schema = r##"{"definitions": {"c": {"x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "C"}], "properties": {"items": {"type": "array", "items": {"type": "object"}, "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "id"}}}}}"##;
    let (l, r) = build(&[
        (
            "k/kustomization.yaml",
            "resources:\n  - c.yaml\nopenapi:\n  path: s.json\npatches:\n  - patch: |-\n      apiVersion: example.com/v1\n      kind: C\n      metadata:\n        name: c\n      items:\n        - id: b\n          v: new\n",
        ),
        ("k/s.json", schema),
        (
            "k/c.yaml",
            "apiVersion: example.com/v1\nkind: C\nmetadata:\n  name: c\nitems:\n  - id: a\n    v: 1\n  - id: b\n    v: 2\n",
        ),
    ]);
    assert!(r.diags.is_empty(), "{:?}", r.diags);
    let items = r.docs[0]
        .get("items")
        .and_then(Node::as_seq)
        .expect("items");
    // Merged by `id` (kyaml: the patch's elements first, then the base's others).
    assert_eq!(items.len(), 2);
    let b = items
        .iter()
        .find(|i| i.get("id").and_then(Node::as_str) == Some("b"))
        .expect("b");
    assert_eq!(
        at(&l, b.get("v").expect("v")),
        ("k/kustomization.yaml".into(), "new".into())
    );
    assert!(
        items
            .iter()
            .any(|i| i.get("id").and_then(Node::as_str) == Some("a"))
    );
}

#[test]
fn a_transformer_configuration_writes_with_the_span_of_its_file() {
    let (l, r) = build(&[
        (
            "k/kustomization.yaml",
            "resources:\n  - d.yaml\ntransformers:\n  - labels.yaml\n",
        ),
        (
            "k/labels.yaml",
            "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: x\nlabels:\n  team: sre\nfieldSpecs:\n  - path: spec/template/metadata/labels\n    create: true\n",
        ),
        ("k/d.yaml", DEPLOY),
    ]);
    assert!(r.diags.is_empty(), "{:?}", r.diags);
    let v = r.docs[0]
        .get_path(&["spec", "template", "metadata", "labels", "team"])
        .expect("the label");
    assert_eq!(at(&l, v), ("k/labels.yaml".into(), "sre".into()));
    // Exactly its field specs: not in metadata.
    assert!(r.docs[0].get_path(&["metadata", "labels"]).is_none());
}

#[test]
fn an_origin_annotation_has_the_span_of_the_resources_entry() {
    let (l, r) = build(&[
        (
            "k/kustomization.yaml",
            "resources:\n  - ../base\nbuildMetadata: [originAnnotations]\n",
        ),
        ("base/kustomization.yaml", "resources:\n  - d.yaml\n"),
        ("base/d.yaml", DEPLOY),
    ]);
    assert!(r.diags.is_empty(), "{:?}", r.diags);
    let v = r.docs[0]
        .get_path(&["metadata", "annotations", "config.kubernetes.io/origin"])
        .expect("the origin");
    assert_eq!(v.as_str(), Some("path: ../base/d.yaml\n"));
    assert_eq!(
        at(&l, v),
        ("base/kustomization.yaml".into(), "d.yaml".into())
    );
}

#[test]
fn without_origin_annotations_kustomize_removes_them() {
    let (_, r) = build(&[
        ("k/kustomization.yaml", "resources:\n  - d.yaml\n"),
        (
            "k/d.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  annotations:\n    config.kubernetes.io/origin: \"path: x\"\n",
        ),
    ]);
    assert!(r.docs[0].get_path(&["metadata", "annotations"]).is_none());
}
