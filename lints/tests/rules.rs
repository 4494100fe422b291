//! Every built-in evidence rule against its two fixtures
//! (`testdata/compliance/rules/overlays/production/<control>/{pass,fail}.yaml`, written by
//! `testdata/compliance/rules/generate.py`): each is a playbook claiming only that control,
//! checked as `pbc check` checks it (model, semantic checks, compliance lints) with the
//! configuration found upward from it, in the environment its path names (`production`).
//! `pass.yaml` must not report PB5005 for the control and `fail.yaml` must; neither may
//! report an error.

mod common;

use pbc_compiler::diag::Severity;
use pbc_lints::Compliance;
use pbc_lints::catalog::Catalogs;
use pbc_lints::evidence::{EvidenceRules, KINDS, Settings};
use std::collections::BTreeSet;

const DIR: &str = "testdata/compliance/rules/overlays/production";

/// `Some(true)` when `rel` reports PB5005 for `control`, `Some(false)` when it does not;
/// `Err` with the findings when it reports an error.
fn claims_missing(comp: &Compliance, rel: &str, control: &str) -> Result<bool, String> {
    let loader = common::loader();
    let env = common::env_of(rel);
    assert_eq!(env.as_deref(), Some("production"), "{rel}");
    let diags = common::check_file(&loader, rel, comp, env.as_deref());
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(common::human(&loader, &diags));
    }
    let prefix = format!("`{control}` (");
    Ok(diags
        .iter()
        .any(|d| d.code.id == "PB5005" && d.message.starts_with(&prefix)))
}

#[test]
fn every_rule_passes_and_fails_on_its_fixtures() {
    let comp = Compliance::builtin(Settings::from_config(&common::config(DIR)));
    let mut problems = Vec::new();
    for rule in &EvidenceRules::builtin().rules {
        for (file, want) in [("pass.yaml", false), ("fail.yaml", true)] {
            let rel = format!("{DIR}/{}/{file}", rule.control);
            if !common::root().join(&rel).is_file() {
                problems.push(format!(
                    "{rel} is missing (run testdata/compliance/rules/generate.py)"
                ));
                continue;
            }
            match claims_missing(&comp, &rel, &rule.control) {
                Err(found) => problems.push(format!("{rel} has errors:\n{found}")),
                Ok(got) if got != want => problems.push(if want {
                    format!("{rel} does not report PB5005 for `{}`", rule.control)
                } else {
                    format!("{rel} reports PB5005 for `{}`", rule.control)
                }),
                Ok(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_fixture_directory_is_a_rule() {
    let rules: BTreeSet<String> = EvidenceRules::builtin()
        .rules
        .iter()
        .map(|r| r.control.clone())
        .collect();
    let dirs: BTreeSet<String> = std::fs::read_dir(common::root().join(DIR))
        .unwrap_or_else(|e| panic!("{DIR}: {e}"))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let stale: Vec<&String> = dirs.difference(&rules).collect();
    assert!(
        stale.is_empty(),
        "fixtures for controls with no rule: {stale:?}"
    );
}

#[test]
fn the_rules_cover_thirty_soc2_criteria_and_thirty_iso2022_controls() {
    let rules = &EvidenceRules::builtin().rules;
    let count = |catalog: &str| rules.iter().filter(|r| r.catalog == catalog).count();
    assert!(count("soc2") >= 30, "{} SOC 2 rules", count("soc2"));
    assert!(
        count("iso27001-2022") >= 30,
        "{} ISO 27001:2022 rules",
        count("iso27001-2022")
    );
    // Every rule names a control of the built-in catalogs.
    let cats = Catalogs::builtin();
    for r in rules {
        assert!(
            cats.catalogs
                .iter()
                .any(|c| c.id == r.catalog && c.controls.iter().any(|x| x.id == r.control_id)),
            "{}",
            r.control
        );
    }
}

#[test]
fn every_evidence_kind_is_required_by_some_rule() {
    let used: BTreeSet<&str> = EvidenceRules::builtin()
        .rules
        .iter()
        .flat_map(|r| r.requires.iter().map(|k| k.name()))
        .collect();
    for k in KINDS {
        assert!(used.contains(k.name()), "no rule requires `{}`", k.name());
    }
}

#[test]
fn docs_list_every_rule_with_its_kinds() {
    let path = common::root().join("docs/compliance.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rules = &EvidenceRules::builtin().rules;
    let rows = doc
        .lines()
        .filter(|l| l.starts_with("| `SOC2-") || l.starts_with("| `ISO27001-"))
        .count();
    assert_eq!(
        rows,
        rules.len(),
        "rows of the rule table in docs/compliance.md"
    );
    for r in rules {
        let kinds: Vec<String> = r
            .requires
            .iter()
            .map(|k| format!("`{}`", k.name()))
            .collect();
        let prefix = format!("| `{}` |", r.control);
        let row = doc
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("docs/compliance.md has no row for {}", r.control));
        assert!(
            row.ends_with(&format!("| {} |", kinds.join(", "))),
            "docs/compliance.md: {row}\nthe rule requires {}",
            kinds.join(", ")
        );
    }
}

/// The message of the PB5005 a fixture reports for `control`, judged with `settings`.
fn pb5005(settings: Settings, control: &str, file: &str) -> Option<String> {
    let comp = Compliance::builtin(settings);
    let rel = format!("{DIR}/{control}/{file}");
    let loader = common::loader();
    let env = common::env_of(&rel);
    let prefix = format!("`{control}` (");
    common::check_file(&loader, &rel, &comp, env.as_deref())
        .into_iter()
        .find(|d| d.code.id == "PB5005" && d.message.starts_with(&prefix))
        .map(|d| d.message)
}

#[test]
fn the_new_kinds_hold_only_where_the_targets_enforce_them() {
    // The passing fixtures, judged against every target (the default `targets.emit`):
    // Argo counts rate limits only with a shared state store, and LangGraph enforces no
    // rate limit, guardrail, policy, escalation or min-approvals. The declarations
    // (`input-schema`, `output-schemas`, `stage-timeouts`) rest on no construct and hold.
    let all = || {
        let mut s = Settings::from_config(&common::config(DIR));
        s.targets = pbc_compiler::enforcement::TARGETS.to_vec();
        s
    };
    for (control, construct) in [
        ("SOC2-A1.1", "rate-limit"),
        ("ISO27001-8.12", "guardrail"),
        ("ISO27001-8.12", "policy"),
        ("ISO27001-5.24", "escalation"),
        ("SOC2-CC3.3", "min-approvals"),
    ] {
        let msg = pb5005(all(), control, "pass.yaml")
            .unwrap_or_else(|| panic!("{control} holds with every target"));
        assert!(
            msg.contains(&format!("`{construct}` enforced by every target")),
            "{control}: {msg}"
        );
    }
    for control in ["SOC2-PI1.1", "SOC2-PI1.2", "SOC2-PI1.4"] {
        assert_eq!(pb5005(all(), control, "pass.yaml"), None, "{control}");
    }
}
