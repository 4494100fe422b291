//! `pbc diff` on a fixture repository: real commits made by the test in a temporary
//! directory, the base read from git (no checkout), the head from the working tree.

use pbc_compiler::diff::{self, Base, Change, Status};
use pbc_compiler::fs::OsFs;
use pbc_compiler::gitfs::GitFs;
use pbc_compiler::load::Loader;
use pbc_compiler::model::ModelOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fixed author and time: commit ids do not depend on when the test runs.
fn commit_all(dir: &Path, message: &str) -> String {
    let repo = git2::Repository::open(dir).expect("repo");
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    // Files deleted from the working tree leave the index too.
    index.update_all(["*"], None).expect("update");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("write tree"))
        .expect("tree");
    let sig = git2::Signature::new("pbc", "pbc@example.com", &git2::Time::new(1_700_000_000, 0))
        .expect("signature");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("commit")
        .to_string()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

const KUST_BASE: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - review.yaml
  - nightly.yaml
";

const REVIEW_BASE: &str = "\
apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: review
  compliance: [SOC2-CC8.1, ISO27001-8.25]
spec:
  trigger: pull-request-created
  stages:
    - name: lint
      agent: glm-5
    - name: analyse
      agent: glm-5
    - name: security
      agent: glm-5
      approval: manual
      approvers: [security-team]
      sla: 4h
      escalation:
        - after: 2h
          approvers: [ciso-office]
          notify: [email-ciso]
    - name: compliance
      agent: glm-5
      approval: conditional
      conditions:
        - if: security.risk-level >= HIGH
          then: manual
          approvers: [compliance-team]
        - if: security.findings > 3
          then: manual
        - else: auto
      approvers: [compliance-team]
      compliance: [SOC2-CC7.1]
    - name: merge
      action: git:merge
";

const REVIEW_HEAD: &str = "\
apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: review
  labels: {team: security}
  compliance: [SOC2-CC8.1, ISO27001-8.32]
spec:
  trigger: pull-request-created
  stages:
    - name: security
      agent: glm-5
      approval: manual
      approvers: [security-lead@example.com, security-team]
      sla: 4h
      escalation:
        - after: 1h
          approvers: [ciso-office]
          notify: [email-ciso]
    - name: analyse
      agent: glm-5
    - name: compliance
      agent: glm-5
      approval: conditional
      conditions:
        - if: security.risk-level >= MEDIUM
          then: manual
          approvers: [compliance-team]
        - if: >-
            security.findings
            > 3
          then: manual
        - else: auto
      approvers: [compliance-team]
      compliance: [SOC2-CC7.1, SOC2-CC6.1]
    - name: merge
      action: git:merge
      approval: manual
      approvers: [release-manager]
      retries: 2
    - name: deploy
      action: k8s:apply
";

/// The same playbook, restyled (flow style, other order of keys): no semantic change.
const NIGHTLY_BASE: &str = "\
apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: nightly
spec:
  trigger:
    schedule: \"0 3 * * *\"
    timezone: UTC
  stages:
    - name: scan
      agent: glm-5
      approvers: [sre, ops]
";

const NIGHTLY_HEAD: &str = "\
kind: Playbook
apiVersion: agenticops/v1
metadata: {name: nightly}
spec:
  trigger: {timezone: UTC, schedule: '0 3 * * *'}
  stages:
    - {agent: glm-5, name: scan, approval: auto, approvers: [ops, sre]}
";

const KUST_PROD_BASE: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
patches:
  - path: sla.yaml
";

const PROD_PATCH_BASE: &str = "\
apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: review
spec:
  stages:
    - name: security
      sla: 1h
";

const KUST_DEV: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
";

fn loose(name: &str) -> String {
    format!(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: {name}\nspec:\n  trigger: cron-job\n  stages:\n    - name: run\n      action: ops:run\n"
    )
}

/// Builds the fixture: a base commit, then a head commit.
fn fixture() -> (tempfile::TempDir, PathBuf, String) {
    let t = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(t.path()).expect("canonical");
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    git2::Repository::init_opts(&root, &opts).expect("init");
    write(&root, "playbooks/base/kustomization.yaml", KUST_BASE);
    write(&root, "playbooks/base/review.yaml", REVIEW_BASE);
    write(&root, "playbooks/base/nightly.yaml", NIGHTLY_BASE);
    write(
        &root,
        "playbooks/overlays/production/kustomization.yaml",
        KUST_PROD_BASE,
    );
    write(
        &root,
        "playbooks/overlays/production/sla.yaml",
        PROD_PATCH_BASE,
    );
    write(&root, "playbooks/overlays/dev/kustomization.yaml", KUST_DEV);
    write(&root, "jobs/old.yaml", &loose("old-job"));
    write(&root, "jobs/moved.yaml", &loose("moved-job"));
    write(&root, "README.md", "not yaml\n");
    let base = commit_all(&root, "base");
    write(&root, "playbooks/base/review.yaml", REVIEW_HEAD);
    write(&root, "playbooks/base/nightly.yaml", NIGHTLY_HEAD);
    write(
        &root,
        "playbooks/overlays/production/sla.yaml",
        &PROD_PATCH_BASE.replace("sla: 1h", "sla: 30m"),
    );
    std::fs::remove_file(root.join("jobs/old.yaml")).expect("rm");
    std::fs::remove_file(root.join("jobs/moved.yaml")).expect("rm");
    write(&root, "jobs/new.yaml", &loose("new-job"));
    write(&root, "jobs/sub/moved.yaml", &loose("moved-job"));
    commit_all(&root, "head");
    (t, root, base)
}

fn run(root: &Path, rev: &str, paths: &[PathBuf]) -> diff::Outcome {
    let git = GitFs::open(root, rev).expect("revision");
    let info = Base {
        rev: rev.to_string(),
        commit: git.commit(),
    };
    let base = Loader::new(Arc::new(git), root.to_path_buf(), Default::default());
    let head = Loader::new(Arc::new(OsFs), root.to_path_buf(), Default::default());
    diff::run(&base, info, &head, paths, &ModelOptions::default()).expect("diff runs")
}

fn redact(s: &str, commit: &str) -> String {
    s.replace(commit, "<commit>")
        .replace(commit.get(..12).unwrap_or(commit), "<commit>")
}

#[test]
fn semantic_diff_per_environment_and_playbook() {
    let (_t, root, base) = fixture();
    let out = run(&root, "HEAD~1", std::slice::from_ref(&root));
    assert!(out.base_diags.is_empty(), "{:?}", out.base_diags);
    assert!(out.head_diags.is_empty(), "{:?}", out.head_diags);
    let r = &out.report;
    assert_eq!(r.base.commit.as_deref(), Some(base.as_str()));
    // dev and production: review changed, nightly unchanged (only restyled); no
    // environment: old-job removed, new-job added, moved-job unchanged (moved).
    assert_eq!(
        (
            r.summary.added,
            r.summary.removed,
            r.summary.changed,
            r.summary.unchanged
        ),
        (1, 1, 2, 3)
    );
    let envs: Vec<Option<&str>> = r
        .environments
        .iter()
        .map(|e| e.environment.as_deref())
        .collect();
    assert_eq!(envs, [None, Some("dev"), Some("production")]);
    let prod = &r.environments[2].playbooks[0];
    assert_eq!(
        (prod.name.as_str(), prod.status),
        ("review", Status::Changed)
    );
    // The production patch's SLA change shows in production only.
    let sla = |e: &diff::EnvDiff| {
        e.playbooks[0]
            .changes
            .iter()
            .any(|c| matches!(c, Change::SlaChanged { .. }))
    };
    assert!(sla(&r.environments[2]));
    assert!(!sla(&r.environments[1]));
    insta::assert_snapshot!("diff_markdown", redact(&diff::markdown(r), &base));
    insta::assert_snapshot!("diff_json", redact(&diff::json(r), &base));
}

#[test]
fn the_working_tree_is_the_new_side() {
    let (_t, root, _) = fixture();
    // Against HEAD: nothing yet.
    let out = run(&root, "HEAD", std::slice::from_ref(&root));
    assert!(!out.report.has_changes(), "{:#?}", out.report);
    // An uncommitted edit shows.
    write(
        &root,
        "playbooks/base/review.yaml",
        &REVIEW_HEAD.replace("after: 1h", "after: 3h"),
    );
    let out = run(&root, "HEAD", std::slice::from_ref(&root));
    assert_eq!(out.report.summary.changed, 2);
    let md = diff::markdown(&out.report);
    assert!(md.contains("**escalation** changed"), "{md}");
    assert!(md.contains("after `3h`"), "{md}");
}

#[test]
fn a_path_missing_on_one_side_is_all_added_or_removed() {
    let (_t, root, _) = fixture();
    let out = run(&root, "HEAD~1", &[root.join("jobs/sub")]);
    assert_eq!(out.report.summary.added, 1);
    let out = run(&root, "HEAD~1", &[root.join("jobs/old.yaml")]);
    assert_eq!(out.report.summary.removed, 1);
    let git = GitFs::open(&root, "HEAD").expect("revision");
    let base = Loader::new(Arc::new(git), root.clone(), Default::default());
    let head = Loader::new(Arc::new(OsFs), root.clone(), Default::default());
    let e = diff::run(
        &base,
        Base {
            rev: "HEAD".into(),
            commit: None,
        },
        &head,
        &[root.join("no/such/dir")],
        &ModelOptions::default(),
    )
    .expect_err("missing on both sides");
    assert!(
        e.0.contains("neither in the working tree nor at `HEAD`"),
        "{e}"
    );
}

#[test]
fn problems_reading_the_base_are_reported_with_the_base() {
    let (_t, root, _) = fixture();
    write(
        &root,
        "jobs/broken.yaml",
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata: [\n",
    );
    commit_all(&root, "broken");
    std::fs::remove_file(root.join("jobs/broken.yaml")).expect("rm");
    let out = run(&root, "HEAD", std::slice::from_ref(&root));
    assert_eq!(out.base_diags.len(), 1, "{:?}", out.base_diags);
    assert!(out.head_diags.is_empty());
    // The report says so: a playbook in that file would otherwise look added.
    let p = &out.report.problems;
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].side, p[0].file.as_deref()),
        (diff::Side::Base, Some("jobs/broken.yaml"))
    );
    let md = diff::markdown(&out.report);
    assert!(md.contains("> [!WARNING]"), "{md}");
    assert!(md.contains("> - base `jobs/broken.yaml:4`: PB0"), "{md}");
}
