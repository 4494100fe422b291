//! Every input a fuzz target ever failed on, replayed through the same harness
//! (`pbc_compiler::fuzzing`): `testdata/fuzz-regressions/<target>/*`. A new crash input goes
//! there (docs/fuzzing.md); this test then fails until the bug is fixed, and keeps it fixed.
//! One small input per harness also runs here, so that a harness that breaks is noticed by
//! `cargo test` and not only by the fuzz CI step.

use pbc_compiler::fuzzing;
use std::path::PathBuf;

fn replay(target: &str, harness: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/fuzz-regressions")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    inputs.sort();
    for p in inputs {
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        eprintln!("replaying {}", p.display());
        harness(&data);
    }
}

#[test]
fn loader_regressions() {
    replay("loader", fuzzing::load);
}

#[test]
fn expr_regressions() {
    replay("expr", fuzzing::expr);
}

#[test]
fn resolve_regressions() {
    replay("resolve", fuzzing::resolve);
}

#[test]
fn model_regressions() {
    replay("model", fuzzing::model);
}

#[test]
fn json6902_regressions() {
    replay("json6902", fuzzing::json6902);
}

const PLAYBOOK: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: fuzz-smoke
spec:
  trigger: pull-request-created
  stages:
    - name: analyze
      agent: glm-5
      output-schema: schemas/report.json
    - name: review
      agent: glm-5
      approval: conditional
      approvers: [{role: reviewers}]
      conditions:
        - if: report.risk-level >= HIGH AND report.owner.team == 'sre'
          then: manual
        - else: auto
";

#[test]
fn harnesses_run_on_a_small_input() {
    fuzzing::load(PLAYBOOK.as_bytes());
    fuzzing::model(PLAYBOOK.as_bytes());
    fuzzing::expr(b"report.risk-level IN [HIGH, CRITICAL] OR report.wait < 4h");
    fuzzing::json6902(
        format!("{PLAYBOOK}---\n- {{op: add, path: /spec/stages/0/sla, value: 1h}}\n").as_bytes(),
    );
    let tree = format!(
        "==> overlay/kustomization.yaml <==\nresources: [../base]\nnamePrefix: dev-\n\
         ==> base/kustomization.yaml <==\nresources: [playbook.yaml]\n\
         ==> base/playbook.yaml <==\n{PLAYBOOK}"
    );
    fuzzing::resolve(tree.as_bytes());
}

#[test]
fn resolve_input_splits_into_files() {
    let files = fuzzing::split_tree(b"a: 1\n==> x/k.yaml <==\nb: 2\n==> /y <==\n");
    let names: Vec<String> = files
        .iter()
        .map(|(p, d)| format!("{}={}", p.display(), String::from_utf8_lossy(d)))
        .collect();
    assert_eq!(
        names,
        ["kustomization.yaml=a: 1\n", "x/k.yaml=b: 2\n", "y="]
    );
}
