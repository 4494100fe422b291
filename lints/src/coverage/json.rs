//! The JSON rendering; its schema is `schemas/coverage.schema.json`.

use super::{
    ApplicabilityInfo, Claim, CoverageReport, EvidenceItem, Location, PolicyCoverage, Provenance,
    Totals,
};
use serde_json::{Value, json};

fn loc(l: &Option<Location>) -> (Value, Value) {
    match l {
        Some(l) => (json!(l.file), json!(l.line)),
        None => (Value::Null, Value::Null),
    }
}

fn item(e: &EvidenceItem) -> Value {
    let (file, line) = loc(&e.location);
    let mut m = serde_json::Map::new();
    m.insert("requirement".into(), json!(e.requirement));
    m.insert("text".into(), json!(e.text));
    m.insert("file".into(), file);
    m.insert("line".into(), line);
    if let Some(h) = &e.hint {
        m.insert("hint".into(), json!(h));
    }
    Value::Object(m)
}

fn claim(c: &Claim) -> Value {
    let (file, line) = loc(&c.location);
    let mut v = json!({
        "playbook": c.playbook,
        "stage": c.stage,
        "tag": c.tag,
        "via": c.via,
        "file": file,
        "line": line,
        "evidence_found": c.evidence_found,
        "evidence": c.evidence.iter().map(item).collect::<Vec<_>>(),
        "missing": c.missing.iter().map(item).collect::<Vec<_>>(),
    });
    if let (Some(why), Some(m)) = (&c.not_assessed, v.as_object_mut()) {
        m.insert("not_assessed".into(), json!(why));
    }
    v
}

fn applicability(a: &ApplicabilityInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("status".into(), json!(a.status));
    if let Some(j) = &a.justification {
        m.insert("justification".into(), json!(j));
    }
    if let Some(r) = &a.reference {
        m.insert("reference".into(), json!(r));
    }
    Value::Object(m)
}

/// The provenance object; `commit` and `dirty` only when the source is recorded,
/// `generated_at` only when `SOURCE_DATE_EPOCH` gave a time.
pub(crate) fn provenance(p: &Provenance) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(s) = &p.source {
        m.insert("commit".into(), json!(s.commit));
        m.insert("dirty".into(), json!(s.dirty));
    }
    m.insert("pbc_version".into(), json!(p.pbc_version));
    m.insert(
        "catalogs".into(),
        p.catalogs
            .iter()
            .map(|c| json!({"id": c.id, "edition": c.edition, "sha256": c.sha256}))
            .collect(),
    );
    m.insert("rule_set_sha256".into(), json!(p.rule_set_sha256));
    m.insert("targets".into(), json!(p.targets));
    if let Some(t) = &p.generated_at {
        m.insert("generated_at".into(), json!(t));
    }
    Value::Object(m)
}

/// The totals object (shared with the other renderers' tests).
pub(crate) fn totals(t: &Totals) -> Value {
    json!({
        "controls": t.controls,
        "covered": t.covered,
        "claimed_without_evidence": t.claimed_without_evidence,
        "claimed_no_rule": t.claimed_no_rule,
        "not_claimed": t.not_claimed,
        "not_assessed": t.not_assessed,
        "not_applicable": t.not_applicable,
        "satisfied_externally": t.satisfied_externally,
    })
}

fn policies(p: &PolicyCoverage) -> Value {
    json!({
        "action_stages": p.action_stages,
        "with_policy": p.with_policy,
        "ratio": p.ratio(),
        "always_on": p.always_on,
        "playbooks": p.playbooks.iter().map(|b| json!({
            "playbook": b.playbook,
            "action_stages": b.action_stages,
            "with_policy": b.with_policy,
            "ratio": b.ratio(),
            "uncovered": b.uncovered.iter().map(|u| {
                let (file, line) = loc(&u.location);
                json!({"stage": u.stage, "file": file, "line": line})
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Renders the report as pretty JSON (one object, trailing newline).
pub fn render(r: &CoverageReport) -> String {
    let v = json!({
        "provenance": provenance(&r.provenance),
        "catalogs": r.catalogs.iter().map(|(id, title)| json!({"id": id, "title": title})).collect::<Vec<_>>(),
        "environments": r.environments.iter().map(|e| json!({
            "environment": e.environment,
            "production": e.production,
            "playbooks": e.playbooks,
            "frameworks": e.frameworks.iter().map(|f| json!({
                "catalog": f.catalog,
                "framework": f.framework,
                "title": f.title,
                "edition": f.edition,
                "totals": totals(&f.totals),
                "controls": f.controls.iter().map(|c| {
                    let mut v = json!({
                        "id": c.id,
                        "tag": c.tag,
                        "name": c.name,
                        "group": c.group,
                        "status": c.status.as_str(),
                        "rule": c.rule.as_ref().map(|r| json!({"requires": r.requires, "rationale": r.rationale})),
                        "claims": c.claims.iter().map(claim).collect::<Vec<_>>(),
                        "related": c.related.iter().map(|r| json!({
                            "catalog": r.catalog,
                            "id": r.id,
                            "tag": r.tag,
                            "name": r.name,
                            "status": r.status.as_str(),
                            "playbooks": r.playbooks,
                        })).collect::<Vec<_>>(),
                    });
                    if let (Some(a), Some(m)) = (&c.applicability, v.as_object_mut()) {
                        m.insert("applicability".into(), applicability(a));
                    }
                    v
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "policies": policies(&e.policies),
            "unresolved": e.unresolved.iter().map(|u| {
                let (file, line) = loc(&u.location);
                json!({"playbook": u.playbook, "stage": u.stage, "tag": u.tag, "file": file, "line": line})
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let mut v = v;
    if let (Some(o), Some(m)) = (&r.operating, v.as_object_mut()) {
        m.insert("operating".into(), super::operating::json(o));
    }
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
