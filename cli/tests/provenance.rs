//! The bundle manifest's `source.dirty`: true when any input of the bundle differs from the
//! commit, wherever it lies.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn commit_all(dir: &Path) {
    let repo = git2::Repository::init(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("t", "t@example.com", &git2::Time::new(0, 0)).unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .unwrap();
}

/// Bundles production from inside its overlay; returns `source.dirty`.
fn dirty(repo: &Path) -> bool {
    let out_dir = repo.parent().unwrap().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(["bundle", ".", "--env", "production", "-o"])
        .arg(&out_dir)
        .current_dir(repo.join("playbooks/overlays/production"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert!(m["source"]["commit"].is_string(), "{m}");
    m["source"]["dirty"].as_bool().unwrap()
}

#[test]
fn any_uncommitted_input_makes_the_bundle_dirty() {
    let t = std::env::temp_dir().join(format!("pbc-provenance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&t);
    let repo = t.join("repo");
    copy_dir(&workspace().join("testdata/example"), &repo);
    // The example's configuration (its channels and sinks) and one setting more.
    let example = std::fs::read_to_string(repo.join(".pbc.yaml")).unwrap();
    let config = |envs: &str| format!("{example}production-environments: {envs}\n");
    std::fs::write(repo.join(".pbc.yaml"), config("[production]")).unwrap();
    commit_all(&repo);
    assert!(!dirty(&repo), "a clean checkout");

    // A base edit, outside the bundled overlay.
    let base = repo.join("playbooks/base/code-review-agent.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(&base, format!("{text}# an uncommitted note\n")).unwrap();
    assert!(dirty(&repo), "an uncommitted base edit");
    std::fs::write(&base, &text).unwrap();
    assert!(!dirty(&repo), "the base restored");

    // The configuration, outside the playbook tree.
    std::fs::write(repo.join(".pbc.yaml"), config("[production, prod]")).unwrap();
    assert!(dirty(&repo), "an uncommitted configuration edit");
    std::fs::write(repo.join(".pbc.yaml"), config("[production]")).unwrap();

    // An output schema the base reads.
    let schema = repo.join("playbooks/base/schemas/security-report.json");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, format!("{text}\n")).unwrap();
    assert!(dirty(&repo), "an uncommitted schema edit");
    std::fs::write(&schema, &text).unwrap();
    assert!(!dirty(&repo), "everything restored");
    let _ = std::fs::remove_dir_all(&t);
}
