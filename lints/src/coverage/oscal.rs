//! OSCAL 1.1 renderings of the coverage report (`--format oscal`, `--format
//! oscal-component`):
//!
//! - an `assessment-results` document: one result per environment; a finding per control
//!   claimed or named by the Statement of Applicability (`satisfied` when covered, else
//!   `not-satisfied`, the status and the Statement of Applicability as properties), each
//!   related to observations that carry the evidence found or missing with its `file:line`;
//! - a `component-definition`: one software component per playbook, its implemented
//!   requirements the controls it claims.
//!
//! Every UUID is a version 5 UUID of a stable name (same report, same bytes). Control ids
//! are OSCAL tokens: the catalog id and the control id, lower case (`soc2-cc6.3`,
//! `iso27001-2022-8.32`), since a token cannot start with a digit.

use super::{Claim, ControlReport, CoverageReport, EvidenceItem, Status};
use serde_json::{Value, json};

/// The OSCAL version these documents are written against.
pub const OSCAL_VERSION: &str = "1.1.2";

/// The namespace of pbc's own properties.
const NS: &str = "https://agenticops.io/ns/pbc";

/// The namespace of pbc's name-based UUIDs.
const UUID_NS: uuid::Uuid = uuid::Uuid::from_u128(0x6a1d_5c3e_8f0b_4b7a_9e21_3c4d_5e6f_7a8b);

fn id(name: &str) -> String {
    uuid::Uuid::new_v5(&UUID_NS, name.as_bytes()).to_string()
}

/// The OSCAL control id of a control of a catalog.
pub fn control_id(catalog: &str, control: &str) -> String {
    format!("{catalog}-{control}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "ns": NS, "value": value})
}

/// A non-empty string (OSCAL strings must contain a non-space character).
fn text(s: &str) -> String {
    if s.trim().is_empty() {
        "(none)".to_string()
    } else {
        s.to_string()
    }
}

fn metadata(r: &CoverageReport, title: &str, at: &str) -> Value {
    let mut props = vec![
        prop("pbc-version", &r.provenance.pbc_version),
        prop("evidence-rules-sha256", &r.provenance.rule_set_sha256),
    ];
    if let Some(s) = &r.provenance.source
        && let Some(c) = &s.commit
    {
        props.push(prop("source-commit", c));
    }
    for c in &r.provenance.catalogs {
        props.push(prop("catalog-sha256", &format!("{}:{}", c.id, c.sha256)));
    }
    json!({
        "title": title,
        "last-modified": at,
        "version": r.provenance.pbc_version,
        "oscal-version": OSCAL_VERSION,
        "props": props,
    })
}

fn evidence_href(e: &EvidenceItem) -> Option<String> {
    e.location
        .as_ref()
        .map(|l| format!("{}#L{}", l.file.replace(' ', "%20"), l.line))
}

fn observation(key: &str, c: &Claim, e: &EvidenceItem, found: bool, at: &str) -> Value {
    let mut ev = json!({
        "description": format!(
            "{}{}",
            e.location
                .as_ref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default(),
            text(&e.text)
        ),
    });
    if let Some(h) = evidence_href(e) {
        ev["href"] = json!(h);
    }
    let who = match &c.stage {
        Some(s) => format!("playbook `{}` stage `{}`", c.playbook, s),
        None => format!("playbook `{}`", c.playbook),
    };
    let mut o = json!({
        "uuid": id(key),
        "title": format!("{} {} ({})", if found { "Found:" } else { "Missing:" }, e.requirement, who),
        "description": text(&e.text),
        "props": [prop("evidence-kind", e.requirement), prop("evidence", if found { "found" } else { "missing" })],
        "methods": ["EXAMINE"],
        "collected": at,
        "relevant-evidence": [ev],
    });
    if let Some(h) = &e.hint {
        o["remarks"] = json!(h);
    }
    o
}

fn finding(
    env: &str,
    catalog: &str,
    c: &ControlReport,
    at: &str,
    observations: &mut Vec<Value>,
) -> Value {
    let cid = control_id(catalog, &c.id);
    let mut related = Vec::new();
    for (k, claim) in c.claims.iter().enumerate() {
        for (found, items) in [(true, &claim.evidence), (false, &claim.missing)] {
            for (j, e) in items.iter().enumerate() {
                let key = format!("obs/{env}/{catalog}/{}/{k}/{found}/{j}", c.id);
                observations.push(observation(&key, claim, e, found, at));
                related.push(json!({"observation-uuid": id(&key)}));
            }
        }
    }
    let satisfied = matches!(
        c.status,
        Status::Covered | Status::NotApplicable | Status::SatisfiedExternally
    );
    let reason = match c.status {
        Status::Covered => "pass",
        Status::ClaimedWithoutEvidence | Status::ClaimedNoRule => "fail",
        _ => "other",
    };
    let mut props = vec![prop("coverage-status", c.status.as_str())];
    let mut remarks = Vec::new();
    if let Some(a) = &c.applicability {
        props.push(prop("applicability", a.status));
        if let Some(j) = &a.justification {
            remarks.push(format!("Statement of Applicability: {j}"));
        }
        if let Some(r) = &a.reference {
            remarks.push(format!("Satisfied by: {r}"));
        }
    }
    for claim in &c.claims {
        let mut p = format!("claimed by playbook `{}`", claim.playbook);
        if let Some(s) = &claim.stage {
            p.push_str(&format!(" stage `{s}`"));
        }
        if let Some(l) = &claim.location {
            p.push_str(&format!(" ({l})"));
        }
        if let Some(w) = &claim.not_assessed {
            p.push_str(&format!(": not assessed, {w}"));
        }
        remarks.push(p);
    }
    let description = match &c.rule {
        Some(r) => format!(
            "{}: {}. Evidence required: {}. {}",
            c.tag,
            c.status.label(),
            r.requires.join(", "),
            r.rationale
        ),
        None => format!(
            "{}: {} (no evidence rule: never counted as covered)",
            c.tag,
            c.status.label()
        ),
    };
    let mut f = json!({
        "uuid": id(&format!("finding/{env}/{catalog}/{}", c.id)),
        "title": format!("{} {}", c.tag, text(&c.name)),
        "description": description,
        "props": props,
        "target": {
            "type": "objective-id",
            "target-id": cid,
            "status": {"state": if satisfied { "satisfied" } else { "not-satisfied" }, "reason": reason},
        },
    });
    if !related.is_empty() {
        f["related-observations"] = json!(related);
    }
    if !remarks.is_empty() {
        f["remarks"] = json!(remarks.join("\n\n"));
    }
    f
}

/// The `assessment-results` document. `at`: its time (RFC 3339).
pub fn assessment_results(r: &CoverageReport, at: &str) -> String {
    let mut results = Vec::new();
    for e in &r.environments {
        let env = e.environment.as_deref().unwrap_or("none");
        let mut observations = Vec::new();
        let mut findings = Vec::new();
        let mut reviewed = Vec::new();
        for f in &e.frameworks {
            for c in f
                .controls
                .iter()
                .filter(|c| !c.claims.is_empty() || c.applicability.is_some())
            {
                reviewed.push(json!({"control-id": control_id(&f.catalog, &c.id)}));
                findings.push(finding(env, &f.catalog, c, at, &mut observations));
            }
        }
        let selection = if reviewed.is_empty() {
            json!({"description": "No control is claimed in this environment.", "include-all": {}})
        } else {
            json!({"include-controls": reviewed})
        };
        let mut res = json!({
            "uuid": id(&format!("result/{env}")),
            "title": format!("Environment {}{}", e.label(), e.production_marker()),
            "description": format!(
                "Control coverage of the playbooks in {} ({}), from their resolved definitions; evidence counts only what the targets enforce.",
                e.label(),
                if e.playbooks.is_empty() { "none".to_string() } else { e.playbooks.join(", ") }
            ),
            "start": at,
            "end": at,
            "props": [prop("environment", env), prop("production", if e.production { "true" } else { "false" })],
            "reviewed-controls": {"control-selections": [selection]},
        });
        if !observations.is_empty() {
            res["observations"] = json!(observations);
        }
        if !findings.is_empty() {
            res["findings"] = json!(findings);
        }
        results.push(res);
    }
    if results.is_empty() {
        results.push(json!({
            "uuid": id("result/empty"),
            "title": "No playbooks",
            "description": "The paths named no playbook.",
            "start": at,
            "reviewed-controls": {"control-selections": [{"include-all": {}}]},
        }));
    }
    let doc = json!({
        "assessment-results": {
            "uuid": id(&format!("assessment-results/{}", r.provenance.rule_set_sha256)),
            "metadata": metadata(r, "pbc control coverage: assessment results", at),
            "import-ap": {"href": "#pbc-playbook-checks", "remarks": "pbc assesses the resolved playbooks against its evidence rules; there is no separate assessment plan document."},
            "results": results,
        }
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// The `component-definition` document: a component per playbook.
pub fn component_definition(r: &CoverageReport, at: &str) -> String {
    use std::collections::BTreeMap;
    // playbook → catalog → control id → (tag, claims described)
    let mut by_pb: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, Vec<String>>>> = BTreeMap::new();
    for e in &r.environments {
        for f in &e.frameworks {
            for c in &f.controls {
                for claim in &c.claims {
                    let d = by_pb
                        .entry(claim.playbook.as_str())
                        .or_default()
                        .entry(f.catalog.as_str())
                        .or_default()
                        .entry(c.id.as_str())
                        .or_default();
                    let mut line = format!("{}: {} in {}", c.tag, c.status.label(), e.label());
                    if let Some(s) = &claim.stage {
                        line.push_str(&format!(", stage `{s}`"));
                    }
                    if let Some(l) = &claim.location {
                        line.push_str(&format!(" ({l})"));
                    }
                    if !d.contains(&line) {
                        d.push(line);
                    }
                }
            }
        }
    }
    let components: Vec<Value> = by_pb
        .iter()
        .map(|(pb, cats)| {
            let imps: Vec<Value> = cats
                .iter()
                .map(|(cat, controls)| {
                    let title = r
                        .catalogs
                        .iter()
                        .find(|(i, _)| i == cat)
                        .map(|(_, t)| t.as_str())
                        .unwrap_or(cat);
                    json!({
                        "uuid": id(&format!("impl/{pb}/{cat}")),
                        "source": format!("#catalog-{cat}"),
                        "description": format!("The controls of {title} that playbook `{pb}` claims, with their coverage per environment."),
                        "implemented-requirements": controls.iter().map(|(ctl, lines)| json!({
                            "uuid": id(&format!("req/{pb}/{cat}/{ctl}")),
                            "control-id": control_id(cat, ctl),
                            "description": lines.join("; "),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "uuid": id(&format!("component/{pb}")),
                "type": "software",
                "title": pb,
                "description": format!("The agent playbook `{pb}` (agenticops/v1), as pbc resolved it."),
                "props": [prop("kind", "Playbook")],
                "control-implementations": imps,
            })
        })
        .collect();
    let mut cd = json!({
        "uuid": id(&format!("component-definition/{}", r.provenance.rule_set_sha256)),
        "metadata": metadata(r, "pbc playbooks: component definition", at),
    });
    if !components.is_empty() {
        cd["components"] = json!(components);
    }
    let mut s =
        serde_json::to_string_pretty(&json!({"component-definition": cd})).unwrap_or_default();
    s.push('\n');
    s
}
