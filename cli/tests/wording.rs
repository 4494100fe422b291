//! What users read: human diagnostics, `pbc explain`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str], columns: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", columns)
        .output()
        .expect("run pbc")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The production overlay with a patch that names no resource (PB1010: a label in another
/// file, and a message with `agenticops/v1`).
fn tree_with_a_stray_patch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbc-wording-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let src = workspace().join("testdata/example/playbooks");
    let mut todo = vec![(src.clone(), d.join("playbooks"))];
    while let Some((from, to)) = todo.pop() {
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let p = e.unwrap().path();
            let t = to.join(p.file_name().unwrap());
            if p.is_dir() {
                todo.push((p, t));
            } else {
                std::fs::copy(&p, &t).unwrap();
            }
        }
    }
    let patch = d.join("playbooks/overlays/production/code-review-agent-patch.yaml");
    let text = std::fs::read_to_string(&patch).unwrap();
    std::fs::write(
        &patch,
        text.replacen(
            "name: code-review-agent",
            "name: code-review-agent-with-a-rather-long-name",
            1,
        ),
    )
    .unwrap();
    d
}

#[test]
fn labels_in_other_files_have_no_empty_advice_header() {
    let d = tree_with_a_stray_patch("advice");
    let out = pbc(
        &d.join("playbooks/overlays/production"),
        &["check", "."],
        "100",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PB1010") && text.contains("patch listed here"),
        "{text}"
    );
    assert!(!text.contains("Advice:"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn names_are_never_split_across_lines() {
    let d = tree_with_a_stray_patch("wrap");
    let dir = d.join("playbooks/overlays/production");
    let json = pbc(&dir, &["check", ".", "--format", "json"], "100");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    // Every name the messages and help quote in backticks.
    let mut names = Vec::new();
    for diag in v["diagnostics"].as_array().unwrap() {
        for field in ["message", "help"] {
            let s = diag[field].as_str().unwrap_or("");
            names.extend(s.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    assert!(
        names
            .iter()
            .any(|n| n.contains("agenticops/v1") || n.len() > 30),
        "{names:?}"
    );
    for columns in ["40", "60", "80"] {
        let out = pbc(&dir, &["check", "."], columns);
        let text = String::from_utf8_lossy(&out.stdout);
        for n in &names {
            assert!(
                text.contains(&format!("`{n}`")),
                "`{n}` split at {columns} columns:\n{text}"
            );
        }
        assert!(text.contains("(agenticops/v1)"), "{text}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn explain_an_ambiguous_name_lists_its_codes() {
    let out = pbc(&workspace(), &["explain", "unknown-field"], "100");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("PB2001") && err.contains("PB3012"),
        "both codes named: {err}"
    );
    // A name one code has explains it.
    let out = pbc(&workspace(), &["explain", "yaml-syntax"], "100");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("PB0001"));
}
