//! `pbc bundle`: byte-identical from two checkout paths; drift detection.

mod common;

use pbc_targets::bundle::{self, CoverageInput};
use std::path::Path;

fn coverage(i: &CoverageInput<'_>) -> Result<String, String> {
    Ok(format!("{{\"environment\": \"{}\"}}\n", i.environment))
}

fn build(cwd: &Path) -> bundle::Bundle {
    let l = common::loader(cwd);
    bundle::build(
        &l,
        &common::config(&cwd.join("playbooks")),
        &cwd.join("playbooks"),
        "production",
        &common::no_extra,
        &coverage,
        "0.0.0-test",
    )
    .expect("bundle")
}

#[test]
fn the_same_bundle_from_two_directories() {
    let src = common::repo().join("testdata/example");
    let a = common::temp_dir("a");
    let b = common::temp_dir("b").join("deeper/checkout");
    common::copy_dir(&src, &a);
    common::copy_dir(&src, &b);
    let ba = build(&a);
    let bb = build(&b);
    assert!(ba.diags.iter().all(|d| !d.is_error()), "{:?}", ba.diags);
    assert!(ba.files.len() >= 8, "{:?}", ba.files.keys());
    assert_eq!(ba.files, bb.files);
    assert_eq!(ba.manifest, bb.manifest);
    // Written to disk, the bytes are the same too.
    let (oa, ob) = (a.join("out"), b.join("out"));
    bundle::write(&oa, &ba).expect("write");
    bundle::write(&ob, &bb).expect("write");
    for p in ba
        .files
        .keys()
        .chain(std::iter::once(&"manifest.json".to_string()))
    {
        assert_eq!(
            std::fs::read(oa.join(p)).expect("a"),
            std::fs::read(ob.join(p)).expect("b"),
            "{p}"
        );
    }
    // Outside a git checkout the commit is null.
    let m: serde_json::Value = serde_json::from_str(&ba.manifest).expect("json");
    assert_eq!(m["source"]["commit"], serde_json::Value::Null);
    assert_eq!(m["environment"], "production");
    let paths: Vec<&str> = m["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    // The CRD apart from the custom resources, so that it can be applied (and waited for)
    // before them.
    assert!(
        paths.contains(&"crd-definition/playbooks.agenticops.io.yaml")
            && paths.contains(&"coverage.json")
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("crd/") && p.contains("definition"))
    );
    let def = &ba.files["crd-definition/playbooks.agenticops.io.yaml"];
    assert!(def.contains("kind: CustomResourceDefinition"));
    assert!(
        def.contains("argocd.argoproj.io/sync-wave: '-1'")
            || def.contains("argocd.argoproj.io/sync-wave: \"-1\""),
        "{def}"
    );
    for p in paths.iter().filter(|p| p.starts_with("crd/")) {
        assert!(!ba.files[*p].contains("CustomResourceDefinition"), "{p}");
    }
    // No artifact names the checkout path.
    for (p, text) in &ba.files {
        assert!(!text.contains(&*a.to_string_lossy()), "{p} holds the path");
    }
    // --check: clean, then each kind of drift is named.
    assert!(bundle::drift(&oa, &ba).is_empty());
    std::fs::write(oa.join("argo/code-review-agent.yaml"), "changed\n").expect("write");
    std::fs::write(oa.join("langgraph/stale.json"), "{}\n").expect("write");
    std::fs::remove_file(oa.join("crd-definition/playbooks.agenticops.io.yaml")).expect("rm");
    assert_eq!(
        bundle::drift(&oa, &ba),
        [
            "argo/code-review-agent.yaml",
            "crd-definition/playbooks.agenticops.io.yaml",
            "langgraph/stale.json"
        ]
    );
    // The manifest's source block is ignored.
    let mut m2 = m.clone();
    m2["source"]["commit"] = serde_json::json!("0123456789abcdef");
    m2["source"]["dirty"] = serde_json::json!(true);
    std::fs::write(
        ob.join("manifest.json"),
        serde_json::to_string_pretty(&m2).expect("json"),
    )
    .expect("write");
    assert!(bundle::drift(&ob, &bb).is_empty());
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(b.parent().and_then(|p| p.parent()).expect("root"));
}

#[test]
fn sha256_is_the_standard_one() {
    assert_eq!(
        bundle::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
