//! The CSV rendering: one row per claim, and one row per control nobody claims (RFC 4180,
//! CRLF line ends, a header row).

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
    for e in &r.environments {
        let env = e.environment.as_deref().unwrap_or("");
        let prod = if e.production { "true" } else { "false" };
        for f in &e.frameworks {
            for c in &f.controls {
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
                    cells.extend(["", "", "", "", "", "", "", ""]);
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
                    ]);
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
