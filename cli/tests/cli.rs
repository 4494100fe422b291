//! End-to-end tests of the `pbc` binary: exit codes, output formats, hostile inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "cli/build.rs"]
mod build;

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("PBC_STATE_DIR")
        .output()
        .expect("run pbc")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbc-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn example_tree_is_clean() {
    let out = pbc(&workspace(), &["check", "testdata/example"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn hostile_inputs_end_with_findings() {
    let d = tmpdir("hostile");
    // Billion laughs.
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    std::fs::write(d.join("bomb.yaml"), bomb).unwrap();
    // 10,000-deep nesting, flow and block.
    std::fs::write(
        d.join("deep-flow.yaml"),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    )
    .unwrap();
    // Compact block sequences: `- - - … x` nests one level per dash on a single line.
    let block = format!("{}x\n", "- ".repeat(10_000));
    std::fs::write(d.join("deep-block.yaml"), block).unwrap();
    std::fs::write(d.join("latin1.yaml"), b"name: caf\xe9\n").unwrap();
    std::fs::write(d.join("binary.yaml"), b"\x7fELF\x02\x01\x01\x00\x00\x00").unwrap();
    // 50 MB: written sparse-free but cheap (repeated line).
    let big = "key: value\n".repeat(50 * 1024 * 1024 / 11 + 1);
    std::fs::write(d.join("big.yaml"), big).unwrap();

    for (file, code) in [
        ("bomb.yaml", "PB0006"),
        ("deep-flow.yaml", "PB0005"),
        ("deep-block.yaml", "PB0005"),
        ("latin1.yaml", "PB0002"),
        ("binary.yaml", "PB0003"),
        ("big.yaml", "PB0004"),
    ] {
        let out = pbc(&d, &["check", "--format", "json", file]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json(&out);
        assert_eq!(codes(&v), vec![code.to_string()], "{file}");
    }
    // Invalid UTF-8 is reported at the exact byte: line 1, column 10 (after "name: caf").
    let v = json(&pbc(&d, &["check", "--format", "json", "latin1.yaml"]));
    assert_eq!(v["diagnostics"][0]["line"], 1);
    assert_eq!(v["diagnostics"][0]["column"], 10);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn panics_are_internal_errors_with_exit_2() {
    let out = pbc(&workspace(), &["debug-panic"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PB9001") && err.contains("internal error"),
        "{err}"
    );
}

#[test]
fn missing_path_is_exit_2() {
    let out = pbc(&workspace(), &["check", "no/such/path"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/path"));
}

#[test]
fn formats() {
    let d = tmpdir("formats");
    std::fs::write(d.join("a.yaml"), "a: 1\na: 2\nb: on\n").unwrap();
    let gh = pbc(&d, &["check", "--format", "github", "a.yaml"]);
    assert_eq!(gh.status.code(), Some(1));
    let text = String::from_utf8_lossy(&gh.stdout);
    assert!(
        text.starts_with(
            "::error file=a.yaml,line=2,col=1,endLine=2,endColumn=2,title=PB0007::duplicate key `a`"
        ),
        "{text}"
    );
    assert!(
        text.contains("::warning file=a.yaml,line=3,col=4"),
        "{text}"
    );
    let sarif = pbc(&d, &["check", "--format", "sarif", "a.yaml"]);
    let v: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["columnKind"], "unicodeCodePoints");
    assert_eq!(v["runs"][0]["results"].as_array().unwrap().len(), 2);
    let human = pbc(&d, &["check", "a.yaml"]);
    let h = String::from_utf8_lossy(&human.stdout);
    assert!(!h.contains('\u{1b}'), "NO_COLOR and a pipe: no escapes");
    assert!(h.contains("failed: 1 error, 1 warning"), "{h}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn config_severity_and_suppression() {
    let d = tmpdir("config");
    std::fs::write(
        d.join(".pbc.yaml"),
        "severity:\n  PB0008: deny\n  PB0999: allow\n",
    )
    .unwrap();
    std::fs::write(
        d.join("a.yaml"),
        "x: on\n# pbc:allow(PB0008)\ny: off\nz: yes # pbc:allow(PB0008)\n",
    )
    .unwrap();
    let out = pbc(&d, &["check", "--format", "json", "a.yaml"]);
    let v = json(&out);
    let ds = v["diagnostics"].as_array().unwrap();
    // PB0999 is unknown (a warning in .pbc.yaml); x: on is denied (error); y and z suppressed.
    let got: Vec<(String, String, u64)> = ds
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().into(),
                d["severity"].as_str().unwrap().into(),
                d["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("PB0022".into(), "warning".into(), 3),
            ("PB0008".into(), "error".into(), 1)
        ]
    );
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn explain_documents_every_code() {
    let list = pbc(&workspace(), &["explain"]);
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(ids.len() >= 10, "{text}");
    for id in ids {
        let out = pbc(&workspace(), &["explain", id]);
        assert_eq!(out.status.code(), Some(0), "{id}");
        assert!(out.stdout.len() > 80, "{id} is barely documented");
    }
    assert_eq!(
        pbc(&workspace(), &["explain", "PB7777"]).status.code(),
        Some(2)
    );
}

#[test]
fn a_patched_condition_is_reported_at_the_patch_with_the_base_producer_labelled() {
    let dir = "testdata/overlays-types/patched-condition/overlays/prod";
    let out = pbc(&workspace(), &["check", "--format", "json", dir]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "PB3012");
    assert_eq!(
        d["file"],
        "testdata/overlays-types/patched-condition/overlays/prod/stricter-merge.yaml"
    );
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(9), Some(31))
    );
    let labels: Vec<String> = d["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{}:{}", l["file"].as_str().unwrap(), l["line"]))
        .collect();
    assert!(
        labels
            .contains(&"testdata/overlays-types/patched-condition/base/review.yaml:8".to_string()),
        "{labels:?}"
    );
    insta::assert_snapshot!(
        "patched_condition_json",
        String::from_utf8_lossy(&out.stdout)
    );
    let human = pbc(&workspace(), &["check", dir]);
    insta::assert_snapshot!(
        "patched_condition_human",
        String::from_utf8_lossy(&human.stdout)
    );
}

#[test]
fn a_protected_overlay_weakening_its_base_fails_at_the_patch_line() {
    let dir = "testdata/protected/overlays/production/no-reason";
    let out = pbc(&workspace(), &["check", "--format", "json", dir]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let at: Vec<(String, String, u64)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let patch = format!("{dir}/patch.yaml");
    assert_eq!(
        at,
        [
            ("PB1031".to_string(), patch.clone(), 8),
            ("PB1040".to_string(), patch.clone(), 8)
        ]
    );
    // Nothing was suppressed: no `suppressed` list.
    assert!(v.get("suppressed").is_none());
    insta::assert_snapshot!("protected_json", String::from_utf8_lossy(&out.stdout));
    let human = pbc(&workspace(), &["check", dir]);
    assert_eq!(human.status.code(), Some(1));
    insta::assert_snapshot!("protected_human", String::from_utf8_lossy(&human.stdout));
}

#[test]
fn reasoned_suppressions_are_listed_in_the_json_output() {
    let dir = "testdata/protected/overlays/production/stage-deleted-allowed";
    let out = pbc(&workspace(), &["check", "--format", "json", dir]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(
        v["suppressed"],
        serde_json::json!([{
            "code": "PB1030",
            "file": format!("{dir}/patch.yaml"),
            "line": 9,
            "reason": "release notes are published by the docs site",
        }])
    );
}

#[test]
fn promotion_order_finds_the_previous_environment_from_inside_an_overlay() {
    // `pbc check .` inside `overlays/production/promotion`: staging's sibling overlay is found
    // through the real path, and has more approvers.
    let d = tmpdir("promotion");
    let fixtures = workspace().join("testdata/protected");
    let cfg = std::fs::read_to_string(fixtures.join(".pbc.yaml")).unwrap()
        + "promotion-order: [dev, staging, production]\n";
    std::fs::write(d.join("pbc.yaml"), cfg).unwrap();
    let config = d.join("pbc.yaml");
    let out = pbc(
        &fixtures.join("overlays/production/promotion"),
        &[
            "check",
            "--format",
            "json",
            "--config",
            config.to_str().unwrap(),
            ".",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(codes(&v), ["PB1032"]);
    assert_eq!(v["diagnostics"][0]["file"], "patch.yaml");
    assert_eq!(v["diagnostics"][0]["line"], 10);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_base_problem_is_reported_once_with_each_overlay_labelled() {
    let d = tmpdir("shared");
    // The tree and its configuration (which defines the channels and sinks it names).
    copy_dir(&workspace().join("testdata/example"), &d);
    let f = d.join("playbooks/base/code-review-agent.yaml");
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replace("risk-level >= HIGH", "risk-level >= HIHG");
    std::fs::write(&f, text).unwrap();
    let out = pbc(&d, &["check", "--format", "json", "."]);
    let v = json(&out);
    // The example's compliance warnings (claims its emitted targets do not all enforce)
    // are not this test's subject.
    let ds: Vec<&serde_json::Value> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] != "PB5005")
        .collect();
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(ds[0]["code"], "PB3015");
    assert_eq!(ds[0]["file"], "playbooks/base/code-review-agent.yaml");
    let overlays: Vec<&str> = ds[0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["file"].as_str())
        .filter(|f| f.contains("overlays"))
        .collect();
    assert_eq!(
        overlays,
        vec![
            "playbooks/overlays/dev/kustomization.yaml",
            "playbooks/overlays/production/kustomization.yaml",
            "playbooks/overlays/staging/kustomization.yaml",
        ]
    );
    let _ = std::fs::remove_dir_all(&d);
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

#[test]
fn coverage_per_environment_and_filtered() {
    let out = pbc(
        &workspace(),
        &["coverage", "--format", "json", "testdata/example"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for env in ["dev", "staging", "production"] {
        assert!(text.contains(&format!("\"{env}\"")), "{env} missing");
    }
    let one = pbc(
        &workspace(),
        &[
            "coverage",
            "--format",
            "csv",
            "--env",
            "production",
            "testdata/example",
        ],
    );
    assert_eq!(one.status.code(), Some(0));
    let csv = String::from_utf8_lossy(&one.stdout).to_string();
    assert!(
        csv.contains("production") && !csv.contains(",dev,") && !csv.contains(",staging,"),
        "{csv}"
    );
    let none = pbc(
        &workspace(),
        &["coverage", "--env", "qa", "testdata/example"],
    );
    assert_eq!(none.status.code(), Some(2));
    let bad = pbc(
        &workspace(),
        &["coverage", "--catalog", "nist", "testdata/example"],
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn every_bad_fixture_exits_1_with_its_error_and_every_warning_fixture_exits_0() {
    let mut checked = 0;
    for (dir, want) in [("testdata/bad", 1), ("testdata/warn", 0)] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(workspace().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let rel = format!("{dir}/{name}");
            let out = pbc(&workspace(), &["check", "--format", "json", &rel]);
            assert_eq!(out.status.code(), Some(want), "{rel}");
            let v = json(&out);
            let code = &name[..6];
            let sev = if want == 1 { "error" } else { "warning" };
            assert!(
                v["diagnostics"].as_array().unwrap().iter().any(|d| d["code"] == code && (d["severity"] == sev || d["severity"] == "info")),
                "{rel}: no {sev} {code}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} fixtures");
}

#[test]
fn organisation_catalogs_and_rules_come_from_the_configuration() {
    let d = tmpdir("org");
    for f in ["acme-catalog.yaml", "acme-rules.yaml"] {
        std::fs::copy(
            workspace().join("testdata/compliance/data").join(f),
            d.join(f),
        )
        .unwrap();
    }
    std::fs::write(
        d.join(".pbc.yaml"),
        "catalogs: [acme-catalog.yaml]\nevidence-rules: [acme-rules.yaml]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("pb.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: deploy\n  compliance: [ACME-CM-1, ACME-CM-9]\nspec:\n  trigger: release\n  stages:\n    - name: ship\n      agent: glm-5\n",
    )
    .unwrap();
    let v = json(&pbc(&d, &["check", "--format", "json", "pb.yaml"]));
    // ACME-CM-1 is known (its evidence is missing), ACME-CM-9 is not a control.
    let got: Vec<(String, u64)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["code"].as_str().unwrap().to_string(),
                x["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("PB5005".to_string(), 16), ("PB5001".to_string(), 27)]
    );
    // A catalog file that does not exist is reported at its entry in .pbc.yaml.
    std::fs::write(d.join(".pbc.yaml"), "catalogs: [nope.yaml]\n").unwrap();
    let v = json(&pbc(&d, &["check", "--format", "json", "pb.yaml"]));
    assert_eq!(v["diagnostics"][0]["code"], "PB0021");
    assert_eq!(v["diagnostics"][0]["file"], ".pbc.yaml");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sarif_of_every_fixture_is_valid_against_the_schema() {
    let root = workspace();
    let text =
        std::fs::read_to_string(root.join("testdata/reference/sarif/sarif-schema-2.1.0.json"))
            .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let out = pbc(
        &root,
        &[
            "check",
            "--format",
            "sarif",
            "testdata/bad",
            "testdata/warn",
            "testdata/compliance/lints",
            "testdata/overlays-bad",
            "testdata/example",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // Compliance codes (pbc-lints) are rules too, described from their docs.
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let pb5 = rules
        .iter()
        .find(|r| r["id"].as_str().unwrap().starts_with("PB5"))
        .expect("a compliance rule");
    assert_eq!(pb5["properties"]["tags"][0], "compliance");
    assert!(pb5["fullDescription"]["text"].as_str().unwrap().len() > 20);
}

#[test]
fn check_reports_a_name_made_too_long_by_a_prefix_once_at_the_prefix() {
    let d = tmpdir("long-name");
    copy_dir(&workspace().join("testdata/example"), &d);
    let k = d.join("playbooks/overlays/staging/kustomization.yaml");
    let text = std::fs::read_to_string(&k).unwrap().replace(
        "namePrefix: staging-",
        "namePrefix: a-very-long-environment-specific-prefix-that-goes-on-",
    );
    std::fs::write(&k, text).unwrap();
    let v = json(&pbc(
        &d,
        &["check", "--format", "json", "playbooks/overlays/staging"],
    ));
    let ds: Vec<&serde_json::Value> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] != "PB5005")
        .collect();
    assert_eq!(ds.len(), 2, "{ds:?}");
    for x in ds {
        assert_eq!(x["code"], "PB6001");
        assert_eq!(x["file"], "playbooks/overlays/staging/kustomization.yaml");
    }
    let _ = std::fs::remove_dir_all(&d);
}
