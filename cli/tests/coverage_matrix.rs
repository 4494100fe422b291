//! `pbc coverage --matrix`: control × environment. The fixture's dev overlay turns the
//! release gate to `auto`: SOC2-CC6.3 is covered in production and **lost** in dev, and
//! the lost evidence points at the dev patch's line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pbc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run pbc")
}

const TREE: &str = "testdata/compliance/matrix";

#[test]
fn the_matrix_shows_the_evidence_a_dev_overlay_loses() {
    let o = pbc(&["coverage", TREE, "--matrix"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("| Control | dev | production |"), "{md}");
    assert!(
        md.contains("| `SOC2-CC6.3` Role-based access, least privilege, segregation | ⚠️ claimed without evidence **lost** | ✅ covered |"),
        "{md}"
    );
    // What dev lost, at the patch that took it.
    assert!(
        md.contains("- `SOC2-CC6.3` in dev: `deploy` stage `release`: missing a gate with named approvers on stage `release` (human-gate) — testdata/compliance/matrix/overlays/dev/patch.yaml:8"),
        "{md}"
    );
    // Production loses nothing.
    assert!(!md.contains("in production:"), "{md}");
    // The same in HTML, the lost cell marked.
    let o = pbc(&["coverage", TREE, "--matrix", "--format", "html"]);
    assert_eq!(o.status.code(), Some(0));
    let html = String::from_utf8_lossy(&o.stdout);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("<td class=\"lost\">⚠️ claimed without evidence lost</td><td class=\"covered\">✅ covered</td>"),
        "{html}"
    );
    assert!(html.contains("overlays/dev/patch.yaml:8"), "{html}");
    // Same inputs, same bytes.
    assert_eq!(pbc(&["coverage", TREE, "--matrix"]).stdout, o_stdout_md());
}

fn o_stdout_md() -> Vec<u8> {
    pbc(&["coverage", TREE, "--matrix"]).stdout
}

#[test]
fn the_matrix_is_markdown_or_html() {
    let o = pbc(&["coverage", TREE, "--matrix", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--matrix writes markdown or html"));
}
