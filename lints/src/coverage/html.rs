//! The HTML rendering: one self-contained page a reviewer can print. No scripts, no external
//! assets (a Content-Security-Policy forbids loading anything), inline CSS with print rules.
//! The summary per environment and framework comes first, then the controls.

use super::{Claim, CoverageReport, EvidenceItem, PolicyCoverage, Status, percent};
use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text and turns `` `code` `` spans (as the evidence texts write them) into
/// `<code>` elements.
pub(crate) fn rich(s: &str) -> String {
    let mut out = String::new();
    let mut parts = s.split('`').peekable();
    let mut inside = false;
    while let Some(p) = parts.next() {
        if inside && parts.peek().is_some() {
            out.push_str("<code>");
            out.push_str(&esc(p));
            out.push_str("</code>");
        } else if inside {
            // An unmatched backtick: keep it as text.
            out.push('`');
            out.push_str(&esc(p));
        } else {
            out.push_str(&esc(p));
        }
        inside = !inside;
    }
    out
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #111; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .5rem; border-bottom: 2px solid #333; }
h3 { font-size: 1.1rem; margin: 1.5rem 0 .4rem; }
p.meta { color: #333; margin: .2rem 0; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .92em; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #999; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; }
table.controls { table-layout: fixed; }
table.controls th.c-id { width: 6.5rem; }
table.controls th.c-name { width: 15rem; }
table.controls th.c-status { width: 8.5rem; }
tr.row-covered td, tr.row-claimed-without-evidence td, tr.row-claimed-no-rule td { background: #fafafa; }
.covered { color: #0a5d1a; }
.claimed-without-evidence { color: #9a1b00; }
.claimed-no-rule { color: #7a5200; }
.not-claimed { color: #555; font-weight: 400; }
.not-assessed, .not-applicable, .satisfied-externally { color: #35507a; font-weight: 400; }
tr.row-not-claimed td { color: #555; }
ul { margin: .2rem 0 .2rem 1.1rem; padding: 0; }
li { margin: .1rem 0; }
.loc { color: #333; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; }
.missing { color: #9a1b00; }
.rule { color: #333; font-size: .9em; margin: .2rem 0; }
.legend { font-size: .9em; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  section.environment { break-before: page; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

fn who(c: &Claim) -> String {
    let mut s = format!("<code>{}</code>", esc(&c.playbook));
    if let Some(st) = &c.stage {
        let _ = write!(s, " stage <code>{}</code>", esc(st));
    }
    if let Some(v) = &c.via {
        let _ = write!(s, " via {}", esc(v));
    }
    s
}

fn item(out: &mut String, e: &EvidenceItem, missing: bool) {
    if missing {
        let _ = write!(
            out,
            "<li class=\"missing\">missing: {} <span class=\"req\">({})</span>",
            rich(&e.text),
            esc(e.requirement)
        );
    } else {
        let _ = write!(
            out,
            "<li>{} <span class=\"req\">({})</span>",
            rich(&e.text),
            esc(e.requirement)
        );
    }
    if let Some(l) = &e.location {
        let _ = write!(out, " <span class=\"loc\">{}</span>", esc(&l.to_string()));
    }
    if let Some(h) = &e.hint {
        let _ = write!(out, " — {}", rich(h));
    }
    out.push_str("</li>");
}

/// The provenance list under the title.
fn provenance(out: &mut String, p: &super::Provenance) {
    out.push_str("<ul class=\"meta provenance\">");
    if let Some(s) = &p.source {
        let commit = s.commit.as_deref().unwrap_or("none (not a git checkout)");
        let dirty = if s.dirty {
            " (with uncommitted changes)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<li>Source commit: <code>{}</code>{dirty}</li>",
            esc(commit)
        );
    }
    let _ = write!(
        out,
        "<li>pbc version: <code>{}</code></li>",
        esc(&p.pbc_version)
    );
    for c in &p.catalogs {
        let _ = write!(
            out,
            "<li>Catalog <code>{}</code>: {} (sha256 <code>{}</code>)</li>",
            esc(&c.id),
            esc(&c.edition),
            esc(&c.sha256)
        );
    }
    let _ = write!(
        out,
        "<li>Evidence rules: sha256 <code>{}</code></li>",
        esc(&p.rule_set_sha256)
    );
    let targets: Vec<String> = p
        .targets
        .iter()
        .map(|t| format!("<code>{}</code>", esc(t)))
        .collect();
    let _ = write!(
        out,
        "<li>Targets evidence is judged against (<code>targets.emit</code>): {}</li>",
        if targets.is_empty() {
            "none".to_string()
        } else {
            targets.join(", ")
        }
    );
    if let Some(t) = &p.generated_at {
        let _ = write!(
            out,
            "<li>Generated at: {} (<code>SOURCE_DATE_EPOCH</code>)</li>",
            esc(t)
        );
    }
    out.push_str("</ul>\n");
}

fn status(s: Status) -> String {
    format!(
        "<span class=\"status {}\">{}</span>",
        s.as_str(),
        esc(s.label())
    )
}

/// The policy coverage of an environment: the total, a row per playbook with the stages
/// that lack a policy.
fn policies(out: &mut String, p: &PolicyCoverage) {
    let _ = writeln!(
        out,
        "<p class=\"meta\">Policy coverage: {} of {} action stages ({}) are checked by a policy before they run.</p>",
        p.with_policy,
        p.action_stages,
        percent(p.ratio())
    );
    if !p.always_on.is_empty() {
        let names: Vec<String> = p
            .always_on
            .iter()
            .map(|n| format!("<code>{}</code>", esc(n)))
            .collect();
        let _ = writeln!(
            out,
            "<p class=\"meta\">Always-on policies: {}.</p>",
            names.join(", ")
        );
    }
    if p.playbooks.iter().all(|b| b.action_stages == 0) {
        return;
    }
    out.push_str("<table class=\"policies\"><thead><tr><th>Playbook</th><th>Action stages</th><th>With a policy</th><th>Coverage</th><th>Without a policy</th></tr></thead><tbody>\n");
    for b in p.playbooks.iter().filter(|b| b.action_stages > 0) {
        let without: Vec<String> = b
            .uncovered
            .iter()
            .map(|u| match &u.location {
                Some(l) => format!(
                    "<code>{}</code> <span class=\"loc\">{}</span>",
                    esc(&u.stage),
                    esc(&l.to_string())
                ),
                None => format!("<code>{}</code>", esc(&u.stage)),
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&b.playbook),
            b.action_stages,
            b.with_policy,
            percent(b.ratio()),
            without.join("<br>")
        );
    }
    out.push_str("</tbody></table>\n");
}

/// Renders the report as one self-contained HTML page.
pub fn render(r: &CoverageReport) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>Control coverage</title>\n<style>");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n<h1>Control coverage</h1>\n");
    let cats: Vec<String> = r
        .catalogs
        .iter()
        .map(|(id, t)| format!("{} (<code>{}</code>)", esc(t), esc(id)))
        .collect();
    let _ = writeln!(out, "<p class=\"meta\">Catalogs: {}.</p>", cats.join(", "));
    provenance(&mut out, &r.provenance);
    out.push_str(
        "<p class=\"meta legend\">Statuses: <span class=\"status covered\">covered</span> (claimed, evidence found), \
         <span class=\"status claimed-without-evidence\">claimed without evidence</span>, \
         <span class=\"status claimed-no-rule\">claimed, no rule</span> (no evidence rule exists; never counted as covered), \
         <span class=\"status not-claimed\">not claimed</span>; not gaps: \
         <span class=\"status not-assessed\">not assessed</span> (a requirement depends on an environment the playbook is not in), \
         <span class=\"status not-applicable\">not applicable</span> and \
         <span class=\"status satisfied-externally\">satisfied externally</span> (the Statement of Applicability).</p>\n",
    );

    // Summary first.
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"summary\">\n<thead><tr><th>Environment</th><th>Framework</th><th class=\"n\">Controls</th><th class=\"n\">Covered</th><th class=\"n\">Claimed without evidence</th><th class=\"n\">Claimed, no rule</th><th class=\"n\">Not claimed</th><th class=\"n\">Not assessed</th><th class=\"n\">Not applicable</th><th class=\"n\">Satisfied externally</th></tr></thead>\n<tbody>\n");
    for e in &r.environments {
        for f in &e.frameworks {
            let t = &f.totals;
            let _ = writeln!(
                out,
                "<tr id=\"totals-{}-{}\"><td>{}{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                e.slug(),
                super::slug(&f.catalog),
                esc(e.label()),
                e.production_marker(),
                esc(&f.title),
                t.controls,
                t.covered,
                t.claimed_without_evidence,
                t.claimed_no_rule,
                t.not_claimed,
                t.not_assessed,
                t.not_applicable,
                t.satisfied_externally
            );
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");

    // Then the controls, per environment and framework.
    for e in &r.environments {
        let _ = writeln!(
            out,
            "<section class=\"environment\" id=\"env-{}\">\n<h2>Environment: {}{}</h2>",
            e.slug(),
            esc(e.label()),
            e.production_marker()
        );
        if e.playbooks.is_empty() {
            out.push_str("<p class=\"meta\">No playbooks.</p>\n");
        } else {
            let p: Vec<String> = e
                .playbooks
                .iter()
                .map(|p| format!("<code>{}</code>", esc(p)))
                .collect();
            let _ = writeln!(out, "<p class=\"meta\">Playbooks: {}.</p>", p.join(", "));
        }
        if !e.unresolved.is_empty() {
            out.push_str("<p class=\"meta\">Tags that name no control (not counted):</p>\n<ul>");
            for u in &e.unresolved {
                let _ = write!(
                    out,
                    "<li><code>{}</code> in <code>{}</code>",
                    esc(&u.tag),
                    esc(&u.playbook)
                );
                if let Some(s) = &u.stage {
                    let _ = write!(out, " stage <code>{}</code>", esc(s));
                }
                if let Some(l) = &u.location {
                    let _ = write!(out, " <span class=\"loc\">{}</span>", esc(&l.to_string()));
                }
                out.push_str("</li>");
            }
            out.push_str("</ul>\n");
        }
        policies(&mut out, &e.policies);
        for f in &e.frameworks {
            let t = &f.totals;
            let _ = writeln!(
                out,
                "<section class=\"framework\" id=\"fw-{}-{}\">\n<h3>{} — {}</h3>",
                e.slug(),
                super::slug(&f.catalog),
                esc(e.label()),
                esc(&f.title)
            );
            let _ = writeln!(
                out,
                "<p class=\"meta\">{} controls: {} covered, {} claimed without evidence, {} claimed with no rule, {} not claimed; not gaps: {} not assessed, {} not applicable, {} satisfied externally.</p>",
                t.controls,
                t.covered,
                t.claimed_without_evidence,
                t.claimed_no_rule,
                t.not_claimed,
                t.not_assessed,
                t.not_applicable,
                t.satisfied_externally
            );
            out.push_str("<table class=\"controls\">\n<thead><tr><th class=\"c-id\">Control</th><th class=\"c-name\">Name</th><th class=\"c-status\">Status</th><th>Claims and evidence</th></tr></thead>\n<tbody>\n");
            for c in &f.controls {
                let _ = write!(
                    out,
                    "<tr class=\"row-{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>",
                    c.status.as_str(),
                    esc(&c.id),
                    esc(&c.name),
                    status(c.status)
                );
                if let Some(a) = &c.applicability {
                    let _ = write!(
                        out,
                        "<p class=\"rule\">Statement of Applicability: {}",
                        esc(a.status)
                    );
                    if let Some(j) = &a.justification {
                        let _ = write!(out, " — justification: {}", rich(j));
                    }
                    if let Some(r) = &a.reference {
                        let _ = write!(out, " — reference: {}", rich(r));
                    }
                    out.push_str("</p>");
                }
                if !c.claims.is_empty() {
                    match &c.rule {
                        Some(rule) => {
                            let req: Vec<String> = rule
                                .requires
                                .iter()
                                .map(|k| format!("<code>{}</code>", esc(k)))
                                .collect();
                            let _ = write!(
                                out,
                                "<p class=\"rule\">Rule: requires {}. {}</p>",
                                req.join(", "),
                                rich(&rule.rationale)
                            );
                        }
                        None => out.push_str(
                            "<p class=\"rule\">Rule: none (no evidence rule exists for this control).</p>",
                        ),
                    }
                    out.push_str("<ul>");
                    for cl in &c.claims {
                        let verdict = match (cl.evidence_found, &cl.not_assessed) {
                            (Some(false), _) => "evidence missing".to_string(),
                            (_, Some(why)) => format!("not assessed: {}", rich(why)),
                            (Some(true), None) => "evidence found".to_string(),
                            (None, None) => "no rule".to_string(),
                        };
                        let _ = write!(out, "<li>{} — tag <code>{}</code>", who(cl), esc(&cl.tag));
                        if let Some(l) = &cl.location {
                            let _ =
                                write!(out, " <span class=\"loc\">{}</span>", esc(&l.to_string()));
                        }
                        let _ = write!(out, " — {verdict}");
                        if !cl.evidence.is_empty() || !cl.missing.is_empty() {
                            out.push_str("<ul>");
                            for m in &cl.missing {
                                item(&mut out, m, true);
                            }
                            for ev in &cl.evidence {
                                item(&mut out, ev, false);
                            }
                            out.push_str("</ul>");
                        }
                        out.push_str("</li>");
                    }
                    out.push_str("</ul>");
                }
                if !c.related.is_empty() {
                    let rel: Vec<String> = c
                        .related
                        .iter()
                        .map(|r| {
                            let by: Vec<String> = r
                                .playbooks
                                .iter()
                                .map(|p| format!("<code>{}</code>", esc(p)))
                                .collect();
                            format!(
                                "<code>{}</code> {} by {}",
                                esc(&r.tag),
                                r.status.label(),
                                by.join(", ")
                            )
                        })
                        .collect();
                    let _ = write!(
                        out,
                        "<p class=\"related\">Related (crosswalk, never counted as covered): {}</p>",
                        rel.join("; ")
                    );
                }
                out.push_str("</td></tr>\n");
            }
            out.push_str("</tbody>\n</table>\n</section>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_spans() {
        assert_eq!(
            super::rich("stage `a<b>` has `x"),
            "stage <code>a&lt;b&gt;</code> has `x"
        );
        assert_eq!(
            super::rich("`a` and `b`"),
            "<code>a</code> and <code>b</code>"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
