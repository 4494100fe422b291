//! Every overlay diagnostic has a fixture in `testdata/overlays-bad/<case>/` (the tree's
//! `overlay/` directory is resolved) and snapshots of its human and JSON renderings, which
//! name the file and line of the culprit.

use pbc_compiler::diag::Summary;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::render::{self, HumanOptions};
use pbc_compiler::resolve::{ResolveOptions, resolve};
use pbc_compiler::yaml::Limits;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .unwrap_or(here)
        .canonicalize()
        .expect("workspace root")
}

/// (case, code of the first diagnostic, file it points at (relative to the case), line)
const EXPECTED: &[(&str, &str, &str, u32)] = &[
    (
        "component-under-resources",
        "PB1009",
        "overlay/kustomization.yaml",
        5,
    ),
    ("configurations-section", "PB1007", "overlay/config.yaml", 4),
    (
        "custom-openapi-schema",
        "PB1024",
        "schema/kustomization.yaml",
        6,
    ),
    ("cycle", "PB1004", "staging/kustomization.yaml", 4),
    ("cycle-ancestor", "PB1004", "overlay/kustomization.yaml", 4),
    (
        "deprecated-fields",
        "PB1008",
        "overlay/kustomization.yaml",
        3,
    ),
    (
        "duplicate-resource",
        "PB1014",
        "overlay/kustomization.yaml",
        5,
    ),
    ("invalid-json-op", "PB1013", "overlay/kustomization.yaml", 9),
    (
        "invalid-openapi-schema",
        "PB1009",
        "overlay/kustomization.yaml",
        6,
    ),
    ("invalid-resource", "PB1015", "overlay/playbooks.yaml", 20),
    ("invalid-target", "PB1009", "overlay/kustomization.yaml", 7),
    (
        "json-patch-annotation-collection",
        "PB2002",
        "overlay/ops.yaml",
        5,
    ),
    (
        "json-patch-path-not-found",
        "PB1012",
        "overlay/kustomization.yaml",
        13,
    ),
    ("json-patch-test-failed", "PB1012", "overlay/ops.yaml", 2),
    (
        "json-patch-without-target",
        "PB1013",
        "overlay/kustomization.yaml",
        6,
    ),
    (
        "kustomization-under-components",
        "PB1009",
        "overlay/kustomization.yaml",
        4,
    ),
    (
        "label-value-not-string",
        "PB1009",
        "overlay/kustomization.yaml",
        7,
    ),
    ("list-kind", "PB1015", "overlay/list.yaml", 4),
    (
        "missing-patch-file",
        "PB1001",
        "overlay/kustomization.yaml",
        6,
    ),
    (
        "missing-resource",
        "PB1001",
        "overlay/kustomization.yaml",
        5,
    ),
    (
        "no-kustomization",
        "PB1002",
        "overlay/kustomization.yaml",
        4,
    ),
    ("outside-root", "PB1003", "overlay/kustomization.yaml", 5),
    ("remote-resource", "PB1005", "overlay/kustomization.yaml", 4),
    ("smp-no-match", "PB1010", "overlay/patch.yaml", 4),
    ("smp-unknown-stage", "PB1019", "overlay/patch.yaml", 8),
    (
        "stage-index-after-merge",
        "PB1016",
        "overlay/kustomization.yaml",
        11,
    ),
    ("symlink-out", "PB1003", "overlay/kustomization.yaml", 4),
    (
        "target-selects-nothing",
        "PB1011",
        "overlay/kustomization.yaml",
        7,
    ),
    ("unknown-field", "PB1006", "overlay/kustomization.yaml", 5),
    (
        "unknown-ordered-stage",
        "PB1017",
        "overlay/kustomization.yaml",
        14,
    ),
    (
        "unsupported-field",
        "PB1007",
        "overlay/kustomization.yaml",
        5,
    ),
    (
        "yaml-syntax-in-resource",
        "PB0001",
        "base/code-review-agent.yaml",
        7,
    ),
];

#[test]
fn every_bad_tree_reports_at_the_culprit() {
    let root = root();
    let bad = root.join("testdata/overlays-bad");
    let mut dirs: Vec<String> = std::fs::read_dir(&bad)
        .expect("testdata/overlays-bad")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("overlay").is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    dirs.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
    assert_eq!(
        dirs, listed,
        "every fixture needs an EXPECTED row, and every row a fixture"
    );

    for &(case, code, file, line) in EXPECTED {
        let loader = Loader::new(Arc::new(OsFs), root.clone(), Limits::default());
        let dir = bad.join(case).join("overlay");
        let r = resolve(&loader, &dir, &ResolveOptions::default())
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(!r.diags.is_empty(), "{case}: no diagnostic");
        let first = &r.diags[0];
        let pos = render::position(&loader.sources, first.span).expect("a position");
        assert_eq!(first.code.id, code, "{case}: {}", first.message);
        assert_eq!(
            pos.file,
            format!("testdata/overlays-bad/{case}/{file}"),
            "{case}"
        );
        assert_eq!(pos.line, line, "{case}: {}", first.message);

        let summary = Summary::of(&r.diags, r.files.len());
        let human = render::human(
            &loader.sources,
            &r.diags,
            &summary,
            &HumanOptions {
                color: false,
                width: 100,
            },
        );
        let json = render::json(&loader.sources, &r.diags, &summary);
        insta::assert_snapshot!(format!("{case}__human"), human);
        insta::assert_snapshot!(format!("{case}__json"), json);
    }
}

#[test]
fn load_restrictor_none_allows_files_outside_the_root() {
    let root = root();
    let loader = Loader::new(Arc::new(OsFs), root.clone(), Limits::default());
    let opts = ResolveOptions {
        load_restrictor: pbc_compiler::resolve::LoadRestrictor::None,
        ..ResolveOptions::default()
    };
    for case in ["outside-root", "symlink-out"] {
        let dir = root
            .join("testdata/overlays-bad")
            .join(case)
            .join("overlay");
        let r = resolve(&loader, &dir, &opts).expect("resolves");
        assert!(r.diags.is_empty(), "{case}: {:?}", r.diags);
    }
}

#[test]
fn every_code_is_documented() {
    for c in pbc_compiler::resolve::CODES {
        assert!(c.id.starts_with("PB1"), "{}", c.id);
        assert!(c.doc.lines().count() >= 3, "{} needs a real doc", c.id);
    }
}

/// The codes `pbc check` reports for a case's overlay.
fn check_codes(case: &str) -> Vec<String> {
    let root = root();
    let loader = Loader::new(Arc::new(OsFs), root.clone(), Limits::default());
    let units = pbc_compiler::check::Units {
        trees: vec![
            root.join("testdata/overlays-bad")
                .join(case)
                .join("overlay"),
        ],
        files: Vec::new(),
    };
    let cfg = pbc_compiler::config::Config::default();
    let report = pbc_compiler::check::check(&loader, &units, &cfg, &|_, _| {});
    report.diags.iter().map(|d| d.code.id.to_string()).collect()
}

#[test]
fn a_misspelt_patch_stage_is_reported_once_at_its_name() {
    // The stage the patch appends has no executor and a manual gate without approvers; those
    // findings are its consequences, inside the patch's stage: not reported on top.
    assert_eq!(check_codes("smp-unknown-stage"), ["PB1019"]);
    // They are there to drop: the same resolved document checked without the overlay's
    // root cause has them.
    let root = root();
    let loader = Loader::new(Arc::new(OsFs), root.clone(), Limits::default());
    let dir = root.join("testdata/overlays-bad/smp-unknown-stage/overlay");
    let r = resolve(&loader, &dir, &ResolveOptions::default()).unwrap();
    assert!(!r.origins[0].quiet.is_empty());
    let doc = pbc_compiler::check::PlaybookDoc::new(r.docs[0].clone(), Some(dir));
    let mut diags = Vec::new();
    pbc_compiler::check::check_document(
        &loader,
        &pbc_compiler::types::SchemaStore::new(),
        &doc,
        &pbc_compiler::config::Config::default(),
        &|_, _| {},
        &mut diags,
    );
    let codes: Vec<&str> = diags.iter().map(|d| d.code.id).collect();
    assert!(codes.contains(&"PB2009"), "{codes:?}");
}

#[test]
fn a_patched_collection_annotation_fails_the_check() {
    // Written directly, a mapping annotation value is PB2002; patched in, it is too (the
    // resolved document would otherwise carry `""` and pass).
    assert_eq!(
        check_codes("json-patch-annotation-collection"),
        ["PB2002", "PB2002"]
    );
}
