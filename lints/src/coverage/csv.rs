//! The CSV rendering: one row per claim, and one row per control nobody claims (RFC 4180,
//! CRLF line ends, a header row). The Statement of Applicability and the provenance (the
//! catalog's version, the rule set's hash, the source commit, pbc's version, the time from
//! `SOURCE_DATE_EPOCH`) are columns of every row, so that a filtered sheet keeps them.

use super::{CoverageReport, EvidenceItem};

const HEADER: &[&str] = &[
    "environment",
    "production",
    "catalog",
    "control",
    "tag",
    "name",
    "status",
    "playbook",
    "stage",
    "claim_tag",
    "via",
    "claim_location",
    "evidence_found",
    "evidence",
    "missing",
    "not_assessed",
    "applicability_justification",
    "applicability_reference",
    "catalog_edition",
    "catalog_sha256",
    "rule_set_sha256",
    "targets",
    "source_commit",
    "source_dirty",
    "pbc_version",
    "generated_at",
];

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn items(list: &[EvidenceItem]) -> String {
    list.iter()
        .map(|e| match &e.location {
            Some(l) => format!("{}: {} ({l})", e.requirement, e.text),
            None => format!("{}: {}", e.requirement, e.text),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn row(out: &mut String, cells: &[&str]) {
    let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// Renders the report as CSV.
pub fn render(r: &CoverageReport) -> String {
    let mut out = String::new();
    row(&mut out, HEADER);
    let p = &r.provenance;
    let targets = p.targets.join(" ");
    let (commit, dirty) = match &p.source {
        Some(s) => (
            s.commit.clone().unwrap_or_default(),
            if s.dirty { "true" } else { "false" },
        ),
        None => (String::new(), ""),
    };
    let generated = p.generated_at.clone().unwrap_or_default();
    for e in &r.environments {
        let env = e.environment.as_deref().unwrap_or("");
        let prod = if e.production { "true" } else { "false" };
        for f in &e.frameworks {
            let version = p.catalogs.iter().find(|c| c.id == f.catalog);
            let edition = version.map(|v| v.edition.as_str()).unwrap_or("");
            let sha = version.map(|v| v.sha256.as_str()).unwrap_or("");
            for c in &f.controls {
                let just = c
                    .applicability
                    .as_ref()
                    .and_then(|a| a.justification.as_deref())
                    .unwrap_or("");
                let reference = c
                    .applicability
                    .as_ref()
                    .and_then(|a| a.reference.as_deref())
                    .unwrap_or("");
                let tail = [
                    just,
                    reference,
                    edition,
                    sha,
                    p.rule_set_sha256.as_str(),
                    targets.as_str(),
                    commit.as_str(),
                    dirty,
                    p.pbc_version.as_str(),
                    generated.as_str(),
                ];
                let base = [
                    env,
                    prod,
                    f.catalog.as_str(),
                    c.id.as_str(),
                    c.tag.as_str(),
                    c.name.as_str(),
                    c.status.as_str(),
                ];
                if c.claims.is_empty() {
                    let mut cells = base.to_vec();
                    cells.extend(["", "", "", "", "", "", "", "", ""]);
                    cells.extend(tail);
                    row(&mut out, &cells);
                    continue;
                }
                for cl in &c.claims {
                    let loc = cl
                        .location
                        .as_ref()
                        .map(|l| l.to_string())
                        .unwrap_or_default();
                    let found = match cl.evidence_found {
                        Some(true) => "true",
                        Some(false) => "false",
                        None => "",
                    };
                    let ev = items(&cl.evidence);
                    let miss = items(&cl.missing);
                    let mut cells = base.to_vec();
                    cells.extend([
                        cl.playbook.as_str(),
                        cl.stage.as_deref().unwrap_or(""),
                        cl.tag.as_str(),
                        cl.via.as_deref().unwrap_or(""),
                        loc.as_str(),
                        found,
                        ev.as_str(),
                        miss.as_str(),
                        cl.not_assessed.as_deref().unwrap_or(""),
                    ]);
                    cells.extend(tail);
                    row(&mut out, &cells);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::field("a,b"), "\"a,b\"");
        assert_eq!(super::field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(super::field("plain"), "plain");
    }
}
