//! `pbc coverage --matrix`: control × environment, for each framework. A row is a control
//! claimed (or excluded by the Statement of Applicability) in at least one environment; a
//! cell is its status there. A cell is marked **lost** when the control is covered in
//! another environment but not in this one: an overlay took evidence away (a dev overlay
//! that turns a security review to `auto`, say). Under each table, what each lost cell is
//! missing and where, so a reviewer goes straight to the patch.

use super::html::{esc as hesc, rich};
use super::{Claim, ControlReport, CoverageReport, Status};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One framework's matrix: its title, the environments (labels) and the rows.
struct Matrix<'a> {
    title: &'a str,
    catalog: &'a str,
    envs: Vec<String>,
    rows: Vec<Row<'a>>,
    /// Row index by control tag.
    index: BTreeMap<&'a str, usize>,
}

struct Row<'a> {
    tag: &'a str,
    name: &'a str,
    /// Per environment (same order as `envs`): the control's report there, if reported.
    cells: Vec<Option<&'a ControlReport>>,
}

impl Row<'_> {
    fn covered_somewhere(&self) -> bool {
        self.cells
            .iter()
            .any(|c| c.is_some_and(|c| c.status == Status::Covered))
    }

    /// Covered in another environment, and here claimed without the evidence or not
    /// claimed at all.
    fn lost(&self, i: usize) -> bool {
        self.covered_somewhere()
            && self.cells.get(i).copied().flatten().is_none_or(|c| {
                matches!(
                    c.status,
                    Status::ClaimedWithoutEvidence | Status::NotClaimed | Status::ClaimedNoRule
                )
            })
    }
}

fn matrices(r: &CoverageReport) -> Vec<Matrix<'_>> {
    let envs: Vec<String> = r
        .environments
        .iter()
        .map(|e| format!("{}{}", e.label(), e.production_marker()))
        .collect();
    let mut by_catalog: BTreeMap<&str, Matrix<'_>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (i, e) in r.environments.iter().enumerate() {
        for f in &e.frameworks {
            let m = by_catalog.entry(f.catalog.as_str()).or_insert_with(|| {
                order.push(f.catalog.as_str());
                Matrix {
                    title: f.title.as_str(),
                    catalog: f.catalog.as_str(),
                    envs: envs.clone(),
                    rows: Vec::new(),
                    index: BTreeMap::new(),
                }
            });
            for c in &f.controls {
                let row = match m.index.get(c.tag.as_str()) {
                    Some(k) => *k,
                    None => {
                        m.rows.push(Row {
                            tag: c.tag.as_str(),
                            name: c.name.as_str(),
                            cells: vec![None; envs.len()],
                        });
                        m.index.insert(c.tag.as_str(), m.rows.len() - 1);
                        m.rows.len() - 1
                    }
                };
                if let Some(cell) = m.rows[row].cells.get_mut(i) {
                    *cell = Some(c);
                }
            }
        }
    }
    order
        .into_iter()
        .filter_map(|c| by_catalog.remove(c))
        .map(|mut m| {
            // Only what some environment claims or excludes.
            m.rows.retain(|row| {
                row.cells
                    .iter()
                    .any(|c| c.is_some_and(|c| c.status != Status::NotClaimed))
            });
            m
        })
        .collect()
}

fn symbol(s: Status) -> &'static str {
    match s {
        Status::Covered => "✅",
        Status::ClaimedWithoutEvidence => "⚠️",
        Status::ClaimedNoRule => "❔",
        Status::NotClaimed => "—",
        Status::NotAssessed => "◌",
        Status::NotApplicable => "➖",
        Status::SatisfiedExternally => "↗",
    }
}

const LEGEND: &str = "✅ covered · ⚠️ claimed without evidence · ❔ claimed, no rule · — not claimed · ◌ not assessed · ➖ not applicable · ↗ satisfied externally. **lost**: covered in another environment, not in this one.";

/// `md`: escape for a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn who(c: &Claim) -> String {
    match &c.stage {
        Some(s) => format!("`{}` stage `{}`", md(&c.playbook), md(s)),
        None => format!("`{}`", md(&c.playbook)),
    }
}

/// The lost cells of `m`: (row, environment index).
fn lost_cells<'a>(m: &'a Matrix<'a>) -> Vec<(&'a Row<'a>, usize)> {
    let mut out = Vec::new();
    for row in &m.rows {
        for i in 0..m.envs.len() {
            if row.lost(i) {
                out.push((row, i));
            }
        }
    }
    out
}

/// The matrix as Markdown.
pub fn markdown(r: &CoverageReport) -> String {
    let mut out = String::from("# Compliance coverage across environments\n\n");
    let _ = writeln!(out, "{LEGEND}\n");
    for m in matrices(r) {
        let _ = writeln!(out, "## {} (`{}`)\n", md(m.title), md(m.catalog));
        if m.rows.is_empty() {
            out.push_str("No environment claims a control of this framework.\n\n");
            continue;
        }
        out.push_str("| Control |");
        for e in &m.envs {
            let _ = write!(out, " {} |", md(e));
        }
        out.push_str("\n| --- |");
        for _ in &m.envs {
            out.push_str(" --- |");
        }
        out.push('\n');
        for row in &m.rows {
            let _ = write!(out, "| `{}` {} |", md(row.tag), md(row.name));
            for (i, c) in row.cells.iter().enumerate() {
                let s = c.map_or(Status::NotClaimed, |c| c.status);
                let lost = if row.lost(i) { " **lost**" } else { "" };
                let _ = write!(out, " {} {}{lost} |", symbol(s), s.label());
            }
            out.push('\n');
        }
        out.push('\n');
        let lost = lost_cells(&m);
        if lost.is_empty() {
            continue;
        }
        out.push_str("### Evidence lost by overlays\n\n");
        for (row, i) in lost {
            let env = &m.envs[i];
            match row.cells[i] {
                Some(c) if !c.claims.is_empty() => {
                    for claim in &c.claims {
                        for e in &claim.missing {
                            let _ = write!(
                                out,
                                "- `{}` in {}: {}: missing {} ({})",
                                md(row.tag),
                                md(env),
                                who(claim),
                                md(&e.text),
                                e.requirement
                            );
                            if let Some(l) = &e.location {
                                let _ = write!(out, " — {}", md(&l.to_string()));
                            }
                            out.push('\n');
                        }
                    }
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "- `{}` in {}: no playbook claims it here",
                        md(row.tag),
                        md(env)
                    );
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The matrix as one self-contained HTML page (no scripts, no external assets).
pub fn html(r: &CoverageReport) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    out.push_str("<title>Compliance coverage across environments</title>\n<style>");
    out.push_str(
        "body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; }\n\
         table { border-collapse: collapse; margin: .5rem 0 1rem; }\n\
         th, td { border: 1px solid #999; padding: .25rem .45rem; text-align: left; }\n\
         th { background: #eee; }\n\
         td.lost { background: #fde2e2; font-weight: 600; }\n\
         td.covered { background: #e3f4e1; }\n",
    );
    out.push_str("</style>\n</head>\n<body>\n<h1>Compliance coverage across environments</h1>\n");
    let _ = writeln!(
        out,
        "<p>{}</p>",
        hesc(LEGEND).replace("**lost**", "<strong>lost</strong>")
    );
    for m in matrices(r) {
        let _ = writeln!(
            out,
            "<h2>{} (<code>{}</code>)</h2>",
            hesc(m.title),
            hesc(m.catalog)
        );
        if m.rows.is_empty() {
            out.push_str("<p>No environment claims a control of this framework.</p>\n");
            continue;
        }
        out.push_str("<table>\n<thead><tr><th>Control</th>");
        for e in &m.envs {
            let _ = write!(out, "<th>{}</th>", hesc(e));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &m.rows {
            let _ = write!(
                out,
                "<tr><td><code>{}</code> {}</td>",
                hesc(row.tag),
                hesc(row.name)
            );
            for (i, c) in row.cells.iter().enumerate() {
                let s = c.map_or(Status::NotClaimed, |c| c.status);
                let (class, lost) = if row.lost(i) {
                    (" class=\"lost\"", " lost")
                } else if s == Status::Covered {
                    (" class=\"covered\"", "")
                } else {
                    ("", "")
                };
                let _ = write!(
                    out,
                    "<td{class}>{} {}{lost}</td>",
                    symbol(s),
                    hesc(s.label())
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        let lost = lost_cells(&m);
        if lost.is_empty() {
            continue;
        }
        out.push_str("<h3>Evidence lost by overlays</h3>\n<ul>\n");
        for (row, i) in lost {
            let env = &m.envs[i];
            let claims = row.cells[i].map(|c| c.claims.as_slice()).unwrap_or(&[]);
            if claims.is_empty() {
                let _ = writeln!(
                    out,
                    "<li><code>{}</code> in {}: no playbook claims it here</li>",
                    hesc(row.tag),
                    hesc(env)
                );
            }
            for claim in claims {
                for e in &claim.missing {
                    let at = e
                        .location
                        .as_ref()
                        .map(|l| format!(" — <code>{}</code>", hesc(&l.to_string())))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "<li><code>{}</code> in {}: <code>{}</code>{}: missing {} ({}){at}</li>",
                        hesc(row.tag),
                        hesc(env),
                        hesc(&claim.playbook),
                        claim
                            .stage
                            .as_ref()
                            .map(|s| format!(" stage <code>{}</code>", hesc(s)))
                            .unwrap_or_default(),
                        rich(&e.text),
                        hesc(e.requirement)
                    );
                }
            }
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}
