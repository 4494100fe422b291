//! Compliance you can sign: evidence only from what the deployment targets enforce, each
//! over-claim turned into the right status (`testdata/compliance/holds`), the Statement of
//! Applicability, provenance in every format, and a bundle whose `coverage.json` does not
//! change with a commit that changes no input.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn holds() -> PathBuf {
    workspace().join("testdata/compliance/holds")
}

fn pbc(dir: &Path, args: &[&str], epoch: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pbc"));
    c.args(args).current_dir(dir).env("NO_COLOR", "1");
    match epoch {
        Some(e) => c.env("SOURCE_DATE_EPOCH", e),
        None => c.env_remove("SOURCE_DATE_EPOCH"),
    };
    c.output().expect("run pbc")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbc-compliance-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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

fn coverage_json(dir: &Path, epoch: Option<&str>) -> Value {
    let out = pbc(
        dir,
        &[
            "coverage",
            "playbooks/overlays/production",
            "loose",
            "--format",
            "json",
        ],
        epoch,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn env<'a>(r: &'a Value, name: Option<&str>) -> &'a Value {
    r["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"].as_str() == name)
        .unwrap_or_else(|| panic!("environment {name:?}"))
}

fn control<'a>(e: &'a Value, catalog: &str, id: &str) -> &'a Value {
    e["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["catalog"] == catalog)
        .and_then(|f| {
            f["controls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
        })
        .unwrap_or_else(|| panic!("{catalog} {id}"))
}

/// The texts of a claim's missing evidence.
fn missing(c: &Value) -> Vec<String> {
    c["claims"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|cl| cl["missing"].as_array().unwrap().iter())
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

fn schema_valid(v: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("schemas/coverage.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn each_over_claim_gets_the_right_status() {
    let r = coverage_json(&holds(), Some("1700000000"));
    schema_valid(&r);
    let prod = env(&r, Some("production"));

    // Audit logging with no configured sink: the records go nowhere.
    let c = control(prod, "soc2", "CC6.2");
    assert_eq!(c["status"], "claimed-without-evidence", "{c:#}");
    assert!(
        missing(c)
            .iter()
            .any(|m| m.contains("configured audit sink")),
        "{c:#}"
    );

    // A cost KPI is not security monitoring; a guardrail-trigger alert is.
    let c = control(prod, "soc2", "CC7.2");
    assert_eq!(c["status"], "claimed-without-evidence", "{c:#}");
    assert!(
        missing(c)
            .iter()
            .any(|m| m.contains("security-relevant") && m.contains("cost-per-run > 5")),
        "{c:#}"
    );
    let c = control(prod, "iso27001-2022", "8.16");
    assert_eq!(c["status"], "covered", "{c:#}");

    // A conditional gate on an agent's estimate is no production gate, unless a policy
    // bounds the action's params.
    let c = control(prod, "soc2", "CC8.1");
    assert_eq!(c["status"], "claimed-without-evidence", "{c:#}");
    assert!(
        missing(c)
            .iter()
            .any(|m| m.contains("conditional gate") && m.contains("`apply`")),
        "{c:#}"
    );
    let c = control(prod, "iso27001-2022", "8.32");
    assert_eq!(c["status"], "covered", "{c:#}");

    // revert-to-previous cannot undo a stage that has no rollback step.
    let c = control(prod, "soc2", "A1.2");
    assert_eq!(c["status"], "claimed-without-evidence", "{c:#}");
    assert!(
        missing(c)
            .iter()
            .any(|m| m.contains("`rollback` step") && m.contains("`backfill`")),
        "{c:#}"
    );

    // A playbook in no environment: production gates are not assessed, and not a gap.
    let none = env(&r, None);
    let c = control(none, "iso27001-2022", "8.2");
    assert_eq!(c["status"], "not-assessed", "{c:#}");
    assert!(
        c["claims"][0]["not_assessed"]
            .as_str()
            .is_some_and(|w| w.contains("production-action-gates")),
        "{c:#}"
    );

    // The Statement of Applicability, in every environment, never a gap.
    for e in [prod, none] {
        let c = control(e, "soc2", "CC6.4");
        assert_eq!(c["status"], "not-applicable");
        assert_eq!(
            c["applicability"]["justification"],
            "No physical facilities; the playbooks run on a cloud provider's hosts."
        );
        let c = control(e, "iso27001-2022", "8.13");
        assert_eq!(c["status"], "satisfied-externally");
        assert_eq!(
            c["applicability"]["reference"],
            "Backup runbook BK-7 (platform team)"
        );
    }
    let totals = |e: &Value, cat: &str| -> Value {
        e["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["catalog"] == cat)
            .unwrap()["totals"]
            .clone()
    };
    let t = totals(prod, "soc2");
    assert_eq!(t["not_applicable"], 1, "{t}");
    // 61 SOC 2 criteria: 1 not applicable, 4 claimed without evidence, the rest not claimed.
    assert_eq!(t["claimed_without_evidence"], 4, "{t}");
    assert_eq!(t["not_claimed"], 56, "{t}");
    let t = totals(none, "iso27001-2022");
    assert_eq!(t["not_assessed"], 1, "{t}");
    assert_eq!(t["satisfied_externally"], 1, "{t}");
    assert_eq!(t["claimed_without_evidence"], 0, "{t}");

    // Provenance.
    let p = &r["provenance"];
    assert_eq!(p["generated_at"], "2023-11-14T22:13:20Z", "{p}");
    assert_eq!(p["targets"], serde_json::json!(["local", "serve"]));
    assert!(p["commit"].is_string() || p["commit"].is_null(), "{p}");
    assert!(p["dirty"].is_boolean(), "{p}");
    assert_eq!(p["pbc_version"], env!("CARGO_PKG_VERSION"));
    let ids: Vec<&str> = p["catalogs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["soc2", "iso27001-2022"]);
}

#[test]
fn time_only_from_source_date_epoch() {
    let r = coverage_json(&holds(), None);
    assert!(r["provenance"].get("generated_at").is_none(), "{r:#}");
    let out = pbc(&holds(), &["coverage", "loose"], Some("tomorrow"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH"));
}

#[test]
fn every_format_shows_the_statement_of_applicability_and_provenance() {
    for format in ["markdown", "csv", "html"] {
        let out = pbc(
            &holds(),
            &[
                "coverage",
                "playbooks/overlays/production",
                "--format",
                format,
            ],
            Some("1700000000"),
        );
        assert_eq!(out.status.code(), Some(0), "{format}");
        let text = String::from_utf8_lossy(&out.stdout);
        for want in [
            "No physical facilities",
            "Backup runbook BK-7",
            "not-applicable",
            "2023-11-14T22:13:20Z",
        ] {
            let found = text.contains(want)
                || (want == "not-applicable" && text.contains("not applicable"));
            assert!(found, "{format}: no `{want}` in\n{text}");
        }
        let p = coverage_json(&holds(), None);
        let sha = p["provenance"]["rule_set_sha256"].as_str().unwrap();
        assert!(text.contains(sha), "{format}: no rule-set hash");
    }
}

/// Without `targets.emit`, every target counts: Argo and LangGraph do not check who
/// approves, so a gate's approvers are no evidence.
#[test]
fn evidence_needs_every_emitted_target_to_enforce_it() {
    let d = tmpdir("emit-all");
    copy_dir(&holds(), &d);
    let cfg = std::fs::read_to_string(d.join(".pbc.yaml")).unwrap();
    std::fs::write(
        d.join(".pbc.yaml"),
        cfg.replace("targets:\n  emit: [local, serve]\n", ""),
    )
    .unwrap();
    let r = coverage_json(&d, None);
    let c = control(env(&r, Some("production")), "iso27001-2022", "8.32");
    assert_eq!(c["status"], "claimed-without-evidence", "{c:#}");
    assert!(
        missing(c)
            .iter()
            .any(|m| m.contains("`approvers`") && m.contains("`argo`, `langgraph`")),
        "{c:#}"
    );
    // A construct two evidence kinds rest on (the audit sink of `audit-sink` and of
    // `audit-log`) is listed under each kind, and named once in the finding.
    let texts = missing(control(env(&r, Some("production")), "soc2", "CC8.1"));
    let sink = "`audit-sink` enforced by every target in `targets.emit` (not by `langgraph`)";
    assert_eq!(texts.iter().filter(|t| *t == sink).count(), 2, "{texts:#?}");
    let out = pbc(
        &d,
        &["check", "playbooks/overlays/production", "--format", "json"],
        None,
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pb5005: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            x["code"] == "PB5005" && x["message"].as_str().is_some_and(|m| m.contains("CC8.1"))
        })
        .filter_map(|x| x["message"].as_str())
        .collect();
    assert!(!pb5005.is_empty(), "{report:#}");
    for m in pb5005 {
        assert_eq!(m.matches(sink).count(), 1, "{m}");
    }
    // An unknown target is a configuration error.
    std::fs::write(
        d.join(".pbc.yaml"),
        cfg.replace("emit: [local, serve]", "emit: [local, argo-runner]"),
    )
    .unwrap();
    let out = pbc(&d, &["coverage", "loose"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown target `argo-runner`"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

fn commit(repo: &git2::Repository, message: &str) {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("t", "t@example.com", &git2::Time::new(0, 0)).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap();
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn bundles_of_one_commit_are_identical_and_a_commit_without_input_changes_does_not_drift() {
    let d = tmpdir("bundle");
    let repo_dir = d.join("repo");
    copy_dir(&holds(), &repo_dir);
    let repo = git2::Repository::init(&repo_dir).unwrap();
    commit(&repo, "init");
    let bundle = |out: &Path, check: bool| {
        let mut args = vec!["bundle", "playbooks", "--env", "production", "-o"];
        let o = out.to_str().unwrap();
        args.push(o);
        if check {
            args.push("--check");
        }
        pbc(&repo_dir, &args, Some("1700000000"))
    };
    let (a, b) = (d.join("a"), d.join("b"));
    for out in [&a, &b] {
        let o = bundle(out, false);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(files(&a), files(&b), "two bundles of one commit");
    let cov: Value =
        serde_json::from_slice(&std::fs::read(a.join("coverage.json")).unwrap()).unwrap();
    let p = &cov["provenance"];
    for absent in ["commit", "dirty", "generated_at"] {
        assert!(
            p.get(absent).is_none(),
            "coverage.json carries `{absent}`: {p}"
        );
    }
    assert!(p["rule_set_sha256"].is_string(), "{p}");
    schema_valid(&cov);

    // A commit that changes no input: the bundle is the same but for the manifest's source.
    std::fs::write(repo_dir.join("NOTES.md"), "release notes\n").unwrap();
    commit(&repo, "notes");
    let o = bundle(&a, true);
    assert_eq!(
        o.status.code(),
        Some(0),
        "--check after a commit that changes no input: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let c = d.join("c");
    assert_eq!(bundle(&c, false).status.code(), Some(0));
    let strip = |fs: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        fs.into_iter()
            .filter(|(p, _)| p != "manifest.json")
            .collect()
    };
    assert_eq!(strip(files(&a)), strip(files(&c)));
    let manifest = |dir: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
    };
    assert_ne!(
        manifest(&a)["source"]["commit"],
        manifest(&c)["source"]["commit"]
    );
    let _ = std::fs::remove_dir_all(&d);
}

fn explain(control: &str) -> Output {
    pbc(&workspace(), &["explain", control], None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn explain_prints_a_controls_rule_and_crosswalk() {
    // A SOC 2 criterion with a rule: its name, each required kind with its meaning, the
    // rationale, and the ISO 27001:2022 controls the crosswalk links it to.
    let o = explain("SOC2-CC8.1");
    assert!(o.status.success(), "{o:?}");
    let text = stdout(&o);
    assert!(
        text.starts_with(
            "SOC2-CC8.1: Changes authorized, tested, approved before implementation\n"
        ),
        "{text}"
    );
    for kind in [
        "human-gate",
        "production-action-gates",
        "audit-log",
        "audit-sink",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(kind) && l.len() > kind.len() + 10),
            "{kind} and its meaning in:\n{text}"
        );
    }
    assert!(text.contains("rationale:\n  CC8.1 asks"), "{text}");
    assert!(
        text.contains("ISO27001-8.32  Change management (has a rule)"),
        "{text}"
    );

    // The 2022 tag forms and letter case name the same control.
    let a = stdout(&explain("ISO27001:2022-5.26"));
    assert_eq!(a, stdout(&explain("ISO27001-5.26")));
    assert_eq!(a, stdout(&explain("iso27001-5.26")));
    assert!(
        a.starts_with("ISO27001-5.26: Response to information security incidents\n"),
        "{a}"
    );
    for kind in ["rollback-on-failure", "failure-notification", "gate-sla"] {
        assert!(a.contains(kind), "{kind} in:\n{a}");
    }
    assert!(a.contains("SOC2-CC7.4"), "{a}");

    // A control with no rule says so, and what a claim of it is.
    let n = stdout(&explain("ISO27001-5.1"));
    assert!(
        n.starts_with("ISO27001-5.1: Policies for information security\n"),
        "{n}"
    );
    assert!(n.contains("no evidence rule"), "{n}");
    assert!(n.contains("`claimed-no-rule`"), "{n}");

    // An objective of 2013 is ambiguous; a tag of no catalog is unknown: usage errors.
    assert_eq!(explain("ISO27001-A.12.4").status.code(), Some(2));
    let u = explain("SOC2-CC99.1");
    assert_eq!(u.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&u.stderr).contains("unknown code or control"));
    // Diagnostic codes are explained as before.
    assert!(stdout(&explain("PB5005")).starts_with("PB5005 (missing-evidence)"));
}

/// The edits of a fix from `pbc check --format json` (1-based lines, columns in
/// characters), applied to `text` from the last to the first.
fn apply_fix(text: &str, fix: &Value) -> String {
    let offset = |line: u64, col: u64| -> usize {
        let start: usize = text
            .split_inclusive('\n')
            .take(line as usize - 1)
            .map(str::len)
            .sum();
        let rest = &text[start..];
        start
            + rest
                .char_indices()
                .nth(col as usize - 1)
                .map_or(rest.len(), |(i, _)| i)
    };
    let mut edits: Vec<(usize, usize, String)> = fix["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = |k: &str| e[k].as_u64().unwrap();
            (
                offset(n("line"), n("column")),
                offset(n("end_line"), n("end_column")),
                e["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (s, e, t) in edits {
        out.replace_range(s..e, &t);
    }
    out
}

/// PB5005's fix for a stage without `audit-log: required` adds the line under the stage's
/// name, indented like it: applied, the playbook has the evidence (the finding no longer
/// names it) and still parses and checks.
#[test]
fn the_audit_log_fix_applied_supplies_the_evidence() {
    let d = tmpdir("audit-log-fix");
    let file = d.join("p.yaml");
    let text = std::fs::read_to_string(
        workspace().join("testdata/compliance/lints/missing-evidence.yaml"),
    )
    .unwrap();
    std::fs::write(&file, &text).unwrap();
    let check = || -> Value {
        let out = pbc(&d, &["check", "p.yaml", "--format", "json"], None);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let gap = "`audit-log: required` on stage `approve`";
    let before = check();
    let fixes: Vec<&Value> = before["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["message"].as_str().is_some_and(|m| m.contains(gap)))
        .map(|x| &x["fix"])
        .collect();
    assert!(!fixes.is_empty(), "{before:#}");
    assert!(
        fixes.iter().all(|f| f == &fixes[0]),
        "one edit for one gap: {fixes:#?}"
    );
    let fixed = apply_fix(&text, fixes[0]);
    assert!(
        fixed.contains("    - name: approve\n      audit-log: required\n"),
        "{fixed}"
    );
    std::fs::write(&file, &fixed).unwrap();
    let after = check();
    let messages: Vec<&str> = after["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["message"].as_str())
        .collect();
    assert!(!messages.iter().any(|m| m.contains(gap)), "{messages:#?}");
    // Nothing new: the fixed file has no finding the original did not have.
    let codes = |v: &Value| -> std::collections::BTreeSet<String> {
        v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(codes(&after).is_subset(&codes(&before)), "{after:#}");
    let _ = std::fs::remove_dir_all(&d);
}
