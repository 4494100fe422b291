//! Report commands (`pbc coverage`) fail on errors: diagnostics on stderr, exit 1, no report.

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

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbc-reports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const PLAYBOOK: &str = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: p\n  compliance: [TAGS]\nspec:\n  trigger: t\n  stages:\n    - name: a\n      agent: m\n      approval: auto\n";

#[test]
fn coverage_fails_on_unknown_and_ambiguous_tags() {
    let d = tmpdir("tags");
    std::fs::write(
        d.join("p.yaml"),
        PLAYBOOK.replace("TAGS", "SOC2-CC99.1, ISO27001-A.12.4"),
    )
    .unwrap();
    let out = pbc(&d, &["coverage", "p.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "no report on errors");
    assert!(
        err.contains("PB5001") && err.contains("SOC2-CC99.1"),
        "unknown: {err}"
    );
    assert!(
        err.contains("PB5003") && err.contains("ISO27001-A.12.4"),
        "ambiguous: {err}"
    );
    // A sound tag: the report, exit 0.
    std::fs::write(d.join("p.yaml"), PLAYBOOK.replace("TAGS", "SOC2-CC7.1")).unwrap();
    let out = pbc(&d, &["coverage", "p.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stdout.is_empty());
    // A bad configuration fails too.
    std::fs::write(d.join(".pbc.yaml"), "catalogs: [missing.yaml]\n").unwrap();
    let out = pbc(&d, &["coverage", "p.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn coverage_catalog_selects_what_is_named() {
    let d = tmpdir("catalogs");
    std::fs::write(d.join("p.yaml"), PLAYBOOK.replace("TAGS", "SOC2-CC7.1")).unwrap();
    let ids = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["coverage", "p.yaml", "--format", "json"];
        a.extend_from_slice(args);
        let out = pbc(&d, &a);
        assert_eq!(out.status.code(), Some(0));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["catalogs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]), ["soc2", "iso27001-2022"]);
    assert_eq!(ids(&["--catalog", "soc2"]), ["soc2"]);
    // A catalog outside the defaults, alone, is added to them.
    assert_eq!(
        ids(&["--catalog", "iso27001-2013"]),
        ["soc2", "iso27001-2013", "iso27001-2022"]
    );
    let out = pbc(&d, &["coverage", "p.yaml", "--catalog", "soc2"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(!md.contains("ISO/IEC 27001"), "{md}");
    let _ = std::fs::remove_dir_all(&d);
}
