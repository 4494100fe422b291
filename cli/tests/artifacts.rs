//! Artifacts in the order they can be applied: the CRD before the custom resources.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pbc")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_crd_comes_first_on_stdout_and_apart_in_files() {
    let ws = workspace();
    let dir = "testdata/example/playbooks/overlays/production";
    let out = pbc(&ws, &["build", dir, "--target", "crd"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert!(docs.len() >= 3, "{text}");
    assert!(
        docs[0].contains("kind: CustomResourceDefinition"),
        "{}",
        docs[0]
    );
    assert!(
        docs[0].contains("argocd.argoproj.io/sync-wave"),
        "{}",
        docs[0]
    );
    assert!(docs[1..].iter().all(|d| d.contains("kind: Playbook")));

    let o = std::env::temp_dir().join(format!("pbc-artifacts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&o);
    let out = pbc(
        &ws,
        &["build", dir, "--target", "crd", "-o", o.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    let def = std::fs::read_to_string(o.join("crd-definition/playbooks.agenticops.io.yaml"))
        .expect("the definition in crd-definition/");
    assert!(def.contains("kind: CustomResourceDefinition"));
    // crd/ holds only custom resources: `kubectl apply -f crd/` after the definition is
    // Established.
    let mut names = Vec::new();
    for e in std::fs::read_dir(o.join("crd")).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(!t.contains("CustomResourceDefinition"), "{}", p.display());
        names.push(p.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert_eq!(
        names,
        ["code-review-agent.yaml", "security-review-agent.yaml"]
    );
    let _ = std::fs::remove_dir_all(&o);
}
