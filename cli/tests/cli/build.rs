//! `pbc build` (resolved, the targets), `pbc bundle` and `pbc diff` through the binary:
//! kubectl's output on the example, overlay problems on stderr, targets to stdout and files,
//! byte-identical bundles from any path, a diff against a git revision.

use super::*;

#[test]
fn build_resolved_equals_kubectl_on_the_example() {
    for env in ["dev", "staging", "production"] {
        let dir = format!("testdata/example/playbooks/overlays/{env}");
        let out = pbc(&workspace(), &["build", &dir]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = std::fs::read_to_string(
            workspace().join(format!("testdata/oracle/example-kubectl/{env}.yaml")),
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{env}");
    }
}

#[test]
fn build_reports_overlay_problems_on_stderr() {
    let d = tmpdir("build-bad");
    std::fs::write(
        d.join("kustomization.yaml"),
        "resources:\n  - missing.yaml\n",
    )
    .unwrap();
    let out = pbc(&d, &["build", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PB1001") && err.contains("kustomization.yaml:2"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Commits the working directory of a fresh or existing repository (fixed author and time).
fn commit_all(dir: &Path, message: &str) {
    let repo = git2::Repository::open(dir)
        .or_else(|_| git2::Repository::init(dir))
        .unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("pbc", "pbc@example.com", &git2::Time::new(0, 0)).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap();
}

#[test]
fn diff_against_a_revision() {
    let d = tmpdir("diff");
    let pb = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: job\nspec:\n  trigger: t\n  stages:\n    - name: deploy\n      action: k8s:apply\n";
    std::fs::create_dir_all(d.join("playbooks")).unwrap();
    std::fs::write(d.join("playbooks/job.yaml"), pb).unwrap();
    commit_all(&d, "base");
    std::fs::write(
        d.join("playbooks/job.yaml"),
        format!("{pb}      approval: manual\n      approvers: [sre]\n"),
    )
    .unwrap();
    let md = pbc(&d, &["diff", "--base", "HEAD"]);
    let text = String::from_utf8_lossy(&md.stdout);
    assert_eq!(
        md.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&md.stderr)
    );
    assert!(
        text.contains("stage `deploy`: **approval** `auto` → `manual`"),
        "{text}"
    );
    let j = pbc(
        &d,
        &["diff", "--base", "HEAD", "--format", "json", "playbooks"],
    );
    assert_eq!(j.status.code(), Some(0));
    let v = json(&j);
    assert_eq!(v["summary"]["changed"], 1);
    assert_eq!(
        v["environments"][0]["playbooks"][0]["changes"][0]["kind"],
        "approval-changed"
    );
    // A problem in the working tree: reported on stderr, exit 1, the diff still printed.
    std::fs::write(
        d.join("playbooks/bad.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nx: [\n",
    )
    .unwrap();
    let bad = pbc(&d, &["diff", "--base", "HEAD"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad.yaml"));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("**approval**"));
    // Unknown revisions and paths, and directories outside any repository: exit 2.
    let unknown = pbc(&d, &["diff", "--base", "no-such-branch"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown revision `no-such-branch`"));
    let missing = pbc(&d, &["diff", "--base", "HEAD", "nowhere"]);
    assert_eq!(missing.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&d);
    let plain = tmpdir("diff-plain");
    let out = pbc(&plain, &["diff", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a git repository"));
    let _ = std::fs::remove_dir_all(&plain);
}

#[test]
fn build_targets_to_stdout_and_files() {
    let ws = workspace();
    let out = pbc(
        &ws,
        &[
            "build",
            "testdata/example/playbooks/overlays/dev",
            "--target",
            "argo",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind: WorkflowTemplate") && text.contains("\n---\n"));
    // A schedule-triggered seed (a file) gets a CronWorkflow too.
    let out = pbc(
        &ws,
        &[
            "build",
            "testdata/seeds/ops-actions/nightly-maintenance.yaml",
            "--target",
            "argo",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: CronWorkflow"));
    // `all` needs -o.
    let out = pbc(
        &ws,
        &[
            "build",
            "testdata/example/playbooks/overlays/dev",
            "--target",
            "all",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let d = tmpdir("build-all");
    let o = d.join("out");
    let out = pbc(
        &ws,
        &[
            "build",
            "testdata/example/playbooks/overlays/staging",
            "--target",
            "all",
            "-o",
            o.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    for f in [
        "argo/staging-code-review-agent.yaml",
        "crd-definition/playbooks.agenticops.io.yaml",
        "crd/staging-code-review-agent.yaml",
        "langgraph/staging-code-review-agent.json",
        "resolved/staging-code-review-agent.yaml",
    ] {
        assert!(o.join(f).is_file(), "{f}");
    }
}

#[test]
fn build_target_needs_the_checks_to_pass() {
    let d = tmpdir("build-bad");
    std::fs::write(
        d.join("p.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: p\nspec:\n  trigger: t\n  stages:\n    - name: a\n      agent: m\n      approval: manual\n",
    )
    .unwrap();
    let out = pbc(&d, &["build", "p.yaml", "--target", "argo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PB2012"));
}

#[test]
fn bundle_and_check() {
    let d = tmpdir("bundle");
    let o = d.join("bundle");
    let ws = workspace();
    let root = "testdata/example/playbooks";
    let args = |check: bool| {
        let mut v = vec!["bundle", root, "--env", "production", "-o"];
        v.push(o.to_str().unwrap());
        if check {
            v.push("--check");
        }
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |check: bool| {
        let a = args(check);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        pbc(&ws, &a)
    };
    let out = run(true);
    assert_eq!(out.status.code(), Some(1), "nothing written yet: drift");
    let out = run(false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = std::fs::read_to_string(o.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"environment\": \"production\""));
    assert_eq!(run(true).status.code(), Some(0));
    std::fs::write(o.join("argo/code-review-agent.yaml"), "x\n").unwrap();
    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("argo/code-review-agent.yaml"));
    let out = pbc(
        &ws,
        &["bundle", root, "--env", "nope", "-o", o.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_bundle_is_byte_identical_from_any_path_and_working_directory() {
    let a = tmpdir("bundle-a");
    let b = tmpdir("bundle-b");
    // Each with its configuration, which defines the channels and sinks the tree names.
    copy_dir(&workspace().join("testdata/example"), &a);
    copy_dir(&workspace().join("testdata/example"), &b.join("deep/er"));
    // One run from the tree's parent, the other from far above it.
    let out_a = pbc(
        &a,
        &["bundle", "playbooks", "--env", "production", "-o", "out"],
    );
    assert_eq!(
        out_a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out_a.stderr)
    );
    let out_b = pbc(
        &b,
        &[
            "bundle",
            "deep/er/playbooks",
            "--env",
            "production",
            "-o",
            "out",
        ],
    );
    assert_eq!(
        out_b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out_b.stderr)
    );
    let mut files = Vec::new();
    fn walk(d: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    walk(&a.join("out"), &a.join("out"), &mut files);
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in &files {
        let x = std::fs::read(a.join("out").join(f)).unwrap();
        let y = std::fs::read(b.join("out").join(f)).unwrap();
        assert!(x == y, "{} differs", f.display());
    }
    let cov = std::fs::read_to_string(a.join("out/coverage.json")).unwrap();
    assert!(
        cov.contains("\"file\": \"base/code-review-agent.yaml\""),
        "evidence paths are relative to the playbook root"
    );
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}
