//! Protected environments: the fixtures in `testdata/protected/` (a base, and overlays per
//! environment under `overlays/<env>/<case>/`) show each weakening caught at the patch line,
//! each allowed by a reasoned suppression (and listed as suppressed), a suppression without a
//! reason refused, `environments:` protecting a non-production environment, and
//! `promotion-order` comparing with the previous environment.

use pbc_compiler::check::{Report, Units, check};
use pbc_compiler::config::Config;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::yaml::Limits;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

const FIX: &str = "testdata/protected";

/// Checks `overlays/<case>` with the fixtures' configuration, after `tweak`.
fn run(case: &str, tweak: &str) -> (Loader, Report) {
    let root = root();
    let loader = Loader::new(Arc::new(OsFs), root.clone(), Limits::default());
    let mut diags = Vec::new();
    let mut cfg = Config::load(&loader, &root.join(FIX).join(".pbc.yaml"), &mut diags)
        .expect("the fixtures' configuration");
    if !tweak.is_empty() {
        let l = loader.load_text("tweak.yaml", tweak.to_string());
        cfg.apply(&l.docs[0].root, &mut diags);
    }
    assert!(diags.is_empty(), "{diags:?}");
    let units = Units {
        trees: vec![root.join(FIX).join("overlays").join(case)],
        files: Vec::new(),
    };
    let report = check(&loader, &units, &cfg, &|_, _| {});
    (loader, report)
}

/// (code, file relative to the fixtures, line) of each error of a PB103x/PB1040 code.
fn found(loader: &Loader, report: &Report) -> Vec<(String, String, u32)> {
    report
        .diags
        .iter()
        .filter(|d| d.code.id.starts_with("PB103") || d.code.id == "PB1040")
        .map(|d| {
            let (path, lc, _) = loader.sources.resolve(d.span).expect("a known file");
            // Paths are shown relative to the loader's root (the workspace).
            let rel = path
                .strip_prefix(FIX)
                .map(Path::to_path_buf)
                .unwrap_or(path);
            (d.code.id.to_string(), rel.display().to_string(), lc.line)
        })
        .collect()
}

fn suppressed(loader: &Loader, report: &Report) -> Vec<(String, u32, Option<String>)> {
    report
        .suppressed
        .iter()
        .map(|s| {
            let (_, lc, _) = loader.sources.resolve(s.span).expect("a known file");
            (s.code.id.to_string(), lc.line, s.reason.clone())
        })
        .collect()
}

fn own(list: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
    list.iter()
        .map(|(c, f, l)| (c.to_string(), f.to_string(), *l))
        .collect()
}

const ALL: &str = "overlays/production/all/patch.yaml";

#[test]
fn each_weakening_is_an_error_at_the_patch_line() {
    let (loader, report) = run("production/all", "");
    assert_eq!(
        found(&loader, &report),
        own(&[
            ("PB1037", ALL, 7),  // spec.risk medium -> low
            ("PB1032", ALL, 9),  // spec.approvers: release-managers gone
            ("PB1034", ALL, 12), // guardrail pii-detection gone
            ("PB1033", ALL, 15), // branch `analysis.critical == true` gone
            ("PB1033", ALL, 15), // threshold 10 -> 100
            ("PB1036", ALL, 18), // sla 4h -> 8h
            ("PB1031", ALL, 20), // manual -> auto
            ("PB1035", ALL, 21), // audit-log required -> optional
            ("PB1034", ALL, 22), // policy removed
            ("PB1039", ALL, 23), // rollback step removed
            ("PB1036", ALL, 25), // escalation 2 levels -> 1
            ("PB1037", ALL, 28), // stage risk medium -> low
            ("PB1032", ALL, 31), // sign-off approvers: qa-lead gone
            ("PB1030", ALL, 33), // publish: approval removed
            ("PB1039", ALL, 35), // on-failure revert-to-previous -> notify-only
            ("PB1035", ALL, 37), // audit sink siem gone
        ])
    );
    // Each has a label at the base's value.
    for d in report
        .diags
        .iter()
        .filter(|d| d.code.id.starts_with("PB103"))
    {
        let l = d.labels.first().expect("a label at the base");
        let f = loader.sources.get(l.span.file).expect("file");
        assert!(f.path.ends_with("base/deploy.yaml"), "{d:?}");
    }
    let threshold = report
        .diags
        .iter()
        .find(|d| d.message.contains("threshold"))
        .expect("the relaxed threshold");
    assert!(threshold.message.contains("analysis.score > 100"));
}

#[test]
fn a_gated_stage_removed_entirely_is_a_removed_gate() {
    let (loader, report) = run("production/stage-deleted", "");
    assert_eq!(
        found(&loader, &report),
        own(&[("PB1030", "overlays/production/stage-deleted/patch.yaml", 8)])
    );
}

#[test]
fn reordering_stages_is_an_error_at_the_order() {
    let (loader, report) = run("production/reordered", "");
    assert_eq!(
        found(&loader, &report),
        own(&[("PB1038", "overlays/production/reordered/patch.yaml", 6)])
    );
}

#[test]
fn reasoned_suppressions_allow_each_weakening_and_are_listed() {
    let (loader, report) = run("production/all-allowed", "");
    assert_eq!(found(&loader, &report), own(&[]));
    assert!(
        !report.diags.iter().any(|d| d.is_error()),
        "{:?}",
        report.diags
    );
    let s = suppressed(&loader, &report);
    let codes: Vec<&str> = s.iter().map(|(c, _, _)| c.as_str()).collect();
    for code in [
        "PB1030", "PB1031", "PB1032", "PB1033", "PB1034", "PB1035", "PB1036", "PB1037", "PB1039",
    ] {
        assert!(codes.contains(&code), "{code} not suppressed: {s:?}");
    }
    assert_eq!(s.len(), 16, "{s:?}");
    assert!(s.contains(&(
        "PB1031".into(),
        21,
        Some("deploys are approved in the change board".into())
    )));
    // The comment on the line above a finding counts too.
    assert!(s.contains(&(
        "PB1034".into(),
        13,
        Some("PII never reaches this stage in production".into())
    )));
    for (case, code, line) in [
        ("production/stage-deleted-allowed", "PB1030", 9),
        ("production/reordered-allowed", "PB1038", 7),
    ] {
        let (loader, report) = run(case, "");
        assert_eq!(found(&loader, &report), own(&[]), "{case}");
        let s = suppressed(&loader, &report);
        assert_eq!(s.len(), 1, "{case}: {s:?}");
        assert_eq!((s[0].0.as_str(), s[0].1), (code, line), "{case}");
        assert!(s[0].2.is_some(), "{case}");
    }
}

#[test]
fn a_suppression_without_a_reason_is_an_error_and_suppresses_nothing() {
    let (loader, report) = run("production/no-reason", "");
    let f = "overlays/production/no-reason/patch.yaml";
    assert_eq!(
        found(&loader, &report),
        own(&[("PB1031", f, 8), ("PB1040", f, 8)])
    );
    assert!(report.suppressed.is_empty());
}

#[test]
fn older_codes_keep_suppressing_without_a_reason() {
    // Only the protected-environment codes need a reason (unit-tested in the compiler; here
    // through `check`): a PB2013 warning suppressed by a bare comment is listed, reason null.
    let root = root();
    let dir = std::env::temp_dir().join(format!("pbc-protected-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pb = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: p\nspec:\n  trigger: t\n  stages:\n    - name: a\n      agent: glm-5\n      prompt: p\n      # pbc:allow(PB2013)\n      sla: 1h\n";
    std::fs::write(dir.join("p.yaml"), pb).unwrap();
    let loader = Loader::new(Arc::new(OsFs), root, Limits::default());
    let units = Units {
        trees: Vec::new(),
        files: vec![(dir.join("p.yaml"), true)],
    };
    let report = check(&loader, &units, &Config::default(), &|_, _| {});
    assert!(report.diags.is_empty(), "{:?}", report.diags);
    assert_eq!(report.suppressed.len(), 1);
    assert_eq!(report.suppressed[0].code.id, "PB2013");
    assert_eq!(report.suppressed[0].reason, None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dev_overlay_relaxing_a_manual_review_fails_only_when_dev_is_protected() {
    let f = "overlays/dev/relax/patch.yaml";
    let (loader, report) = run("dev/relax", "environments: {dev: {protect: true}}\n");
    assert_eq!(found(&loader, &report), own(&[("PB1031", f, 9)]));
    let (loader, report) = run("dev/relax", "");
    assert_eq!(found(&loader, &report), own(&[]));
    assert!(
        !report.diags.iter().any(|d| d.is_error()),
        "{:?}",
        report.diags
    );
    let (loader, report) = run("dev/relax", "environments: {dev: {protect: false}}\n");
    assert_eq!(found(&loader, &report), own(&[]));
    // A production name can be unprotected.
    let (loader, report) = run(
        "production/stage-deleted",
        "environments: {production: {protect: false}}\n",
    );
    assert_eq!(found(&loader, &report), own(&[]));
}

#[test]
fn promotion_order_compares_with_the_previous_environment() {
    let f = "overlays/production/promotion/patch.yaml";
    // Against the base alone, production's approvers are the base's: nothing to report.
    let (loader, report) = run("production/promotion", "");
    assert_eq!(found(&loader, &report), own(&[]));
    // Staging, before it, also asks the security team.
    let (loader, report) = run(
        "production/promotion",
        "promotion-order: [dev, staging, production]\n",
    );
    assert_eq!(found(&loader, &report), own(&[("PB1032", f, 10)]));
    let d = report
        .diags
        .iter()
        .find(|d| d.code.id == "PB1032")
        .expect("PB1032");
    assert!(d.message.contains("security-team"), "{}", d.message);
    let l = &d.labels[0];
    let lf = loader.sources.get(l.span.file).expect("file");
    assert!(
        lf.path.ends_with("overlays/staging/promotion/patch.yaml"),
        "{:?}",
        lf.path
    );
    assert!(l.message.contains("`staging`"), "{}", l.message);
}

#[test]
fn json_patch_removals_point_at_the_operation() {
    let f = "overlays/production/json-remove/kustomization.yaml";
    let (loader, report) = run("production/json-remove", "");
    assert_eq!(
        found(&loader, &report),
        own(&[("PB1030", f, 10), ("PB1039", f, 12)])
    );
}

#[test]
fn a_branch_losing_its_approvers_is_reported_at_the_branch() {
    let f = "overlays/production/branch-approvers/patch.yaml";
    let (loader, report) = run("production/branch-approvers", "");
    assert_eq!(found(&loader, &report), own(&[("PB1032", f, 15)]));
    let d = &report
        .diags
        .iter()
        .find(|d| d.code.id == "PB1032")
        .expect("PB1032");
    assert!(d.message.contains("security-team"), "{}", d.message);
    assert!(
        d.message.contains("analysis.critical == true"),
        "{}",
        d.message
    );
}

#[test]
fn lowering_min_approvals_is_a_relaxed_approval() {
    let f = "overlays/production/min-approvals/patch.yaml";
    let (loader, report) = run("production/min-approvals", "");
    assert_eq!(found(&loader, &report), own(&[("PB1032", f, 9)]));
    let d = &report
        .diags
        .iter()
        .find(|d| d.code.id == "PB1032")
        .expect("PB1032");
    assert!(d.message.contains("from 2 to 1"), "{}", d.message);
}
