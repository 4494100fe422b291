//! The Markdown rendering: a summary table per environment and framework, then per
//! environment and framework the table of every control, then the evidence of each claimed
//! control.

use super::{Claim, CoverageReport, EvidenceItem, PolicyCoverage, Provenance, percent};
use std::fmt::Write as _;

/// Escapes text for a Markdown table cell or list item: `|` (which ends a cell, even inside
/// a code span in GitHub's tables) and line breaks. Values appear inside code spans, where
/// HTML entities would show literally, so `<` and `>` are left alone.
fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn who(c: &Claim) -> String {
    let mut s = format!("`{}`", esc(&c.playbook));
    if let Some(st) = &c.stage {
        let _ = write!(s, " stage `{}`", esc(st));
    }
    if let Some(v) = &c.via {
        let _ = write!(s, " via {}", esc(v));
    }
    s
}

fn item(out: &mut String, e: &EvidenceItem, missing: bool) {
    let mark = if missing { "missing: " } else { "" };
    let _ = write!(out, "  - {mark}{} ({})", esc(&e.text), e.requirement);
    if let Some(l) = &e.location {
        let _ = write!(out, " — {}", esc(&l.to_string()));
    }
    if let Some(h) = &e.hint {
        let _ = write!(out, " — {}", esc(h));
    }
    out.push('\n');
}

/// The policy coverage of an environment: the total, a row per playbook, the uncovered
/// stages.
fn policies(out: &mut String, p: &PolicyCoverage) {
    let _ = writeln!(
        out,
        "Policy coverage: {} of {} action stages ({}) are checked by a policy before they run.\n",
        p.with_policy,
        p.action_stages,
        percent(p.ratio())
    );
    if !p.always_on.is_empty() {
        let names: Vec<String> = p
            .always_on
            .iter()
            .map(|n| format!("`{}`", esc(n)))
            .collect();
        let _ = writeln!(out, "Always-on policies: {}.\n", names.join(", "));
    }
    if p.playbooks.iter().all(|b| b.action_stages == 0) {
        return;
    }
    out.push_str("| Playbook | Action stages | With a policy | Coverage | Without a policy |\n| --- | ---: | ---: | ---: | --- |\n");
    for b in p.playbooks.iter().filter(|b| b.action_stages > 0) {
        let without: Vec<String> = b
            .uncovered
            .iter()
            .map(|u| match &u.location {
                Some(l) => format!("`{}` ({})", esc(&u.stage), esc(&l.to_string())),
                None => format!("`{}`", esc(&u.stage)),
            })
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            esc(&b.playbook),
            b.action_stages,
            b.with_policy,
            percent(b.ratio()),
            without.join("<br>")
        );
    }
    out.push('\n');
}

/// The provenance list under the title.
fn provenance(out: &mut String, p: &Provenance) {
    out.push_str("Provenance:\n\n");
    if let Some(s) = &p.source {
        let commit = s.commit.as_deref().unwrap_or("none (not a git checkout)");
        let dirty = if s.dirty {
            " (with uncommitted changes)"
        } else {
            ""
        };
        let _ = writeln!(out, "- Source commit: `{}`{dirty}", esc(commit));
    }
    let _ = writeln!(out, "- pbc version: `{}`", esc(&p.pbc_version));
    for c in &p.catalogs {
        let _ = writeln!(
            out,
            "- Catalog `{}`: {} (sha256 `{}`)",
            esc(&c.id),
            esc(&c.edition),
            c.sha256
        );
    }
    let _ = writeln!(out, "- Evidence rules: sha256 `{}`", p.rule_set_sha256);
    let targets: Vec<String> = p.targets.iter().map(|t| format!("`{t}`")).collect();
    let _ = writeln!(
        out,
        "- Targets evidence is judged against (`targets.emit`): {}",
        if targets.is_empty() {
            "none".to_string()
        } else {
            targets.join(", ")
        }
    );
    if let Some(t) = &p.generated_at {
        let _ = writeln!(out, "- Generated at: {} (`SOURCE_DATE_EPOCH`)", esc(t));
    }
    out.push('\n');
}

/// The controls of a framework with related evidence from the crosswalk.
fn related(out: &mut String, env: &str, f: &super::FrameworkReport) {
    let with: Vec<_> = f
        .controls
        .iter()
        .filter(|c| !c.related.is_empty())
        .collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "#### Related evidence (crosswalk, never counted as covered) — {} — {}\n",
        esc(env),
        esc(&f.title)
    );
    for c in with {
        let rel: Vec<String> = c
            .related
            .iter()
            .map(|r| {
                let by: Vec<String> = r
                    .playbooks
                    .iter()
                    .map(|p| format!("`{}`", esc(p)))
                    .collect();
                format!(
                    "`{}` {} by {}",
                    esc(&r.tag),
                    r.status.label(),
                    by.join(", ")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "- **{}** {} — {} — related: {}",
            esc(&c.id),
            esc(&c.name),
            c.status.label(),
            rel.join("; ")
        );
    }
    out.push('\n');
}

/// Renders the report as Markdown.
pub fn render(r: &CoverageReport) -> String {
    let mut out = String::new();
    out.push_str("# Control coverage\n\n");
    let cats: Vec<String> = r
        .catalogs
        .iter()
        .map(|(id, t)| format!("{} (`{}`)", esc(t), esc(id)))
        .collect();
    let _ = writeln!(out, "Catalogs: {}.\n", cats.join(", "));
    provenance(&mut out, &r.provenance);
    out.push_str(
        "Statuses: **covered** (claimed, evidence found), **claimed without evidence**, \
         **claimed, no rule** (no evidence rule exists; never counted as covered), \
         **not claimed**; not gaps: **not assessed** (a requirement depends on an \
         environment the playbook is not in), **not applicable** and **satisfied \
         externally** (the Statement of Applicability, `compliance.applicability`).\n\n",
    );
    out.push_str("## Summary\n\n");
    out.push_str("| Environment | Framework | Controls | Covered | Claimed without evidence | Claimed, no rule | Not claimed | Not assessed | Not applicable | Satisfied externally |\n");
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for e in &r.environments {
        for f in &e.frameworks {
            let t = &f.totals;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                esc(e.label()),
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
    out.push('\n');
    for e in &r.environments {
        let prod = e.production_marker();
        let _ = writeln!(out, "## Environment: {}{prod}\n", esc(e.label()));
        if e.playbooks.is_empty() {
            out.push_str("No playbooks.\n\n");
        } else {
            let p: Vec<String> = e
                .playbooks
                .iter()
                .map(|p| format!("`{}`", esc(p)))
                .collect();
            let _ = writeln!(out, "Playbooks: {}.\n", p.join(", "));
        }
        if !e.unresolved.is_empty() {
            out.push_str("Tags that name no control (not counted):\n\n");
            for u in &e.unresolved {
                let stage = u
                    .stage
                    .as_ref()
                    .map(|s| format!(" stage `{}`", esc(s)))
                    .unwrap_or_default();
                let at = u
                    .location
                    .as_ref()
                    .map(|l| format!(" — {}", esc(&l.to_string())))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "- `{}` in `{}`{stage}{at}",
                    esc(&u.tag),
                    esc(&u.playbook)
                );
            }
            out.push('\n');
        }
        policies(&mut out, &e.policies);
        for f in &e.frameworks {
            let t = &f.totals;
            let _ = writeln!(out, "### {} — {}\n", esc(e.label()), esc(&f.title));
            let _ = writeln!(
                out,
                "{} controls: {} covered, {} claimed without evidence, {} claimed with no rule, {} not claimed; not gaps: {} not assessed, {} not applicable, {} satisfied externally.\n",
                t.controls,
                t.covered,
                t.claimed_without_evidence,
                t.claimed_no_rule,
                t.not_claimed,
                t.not_assessed,
                t.not_applicable,
                t.satisfied_externally
            );
            out.push_str("| Control | Name | Status | Claimed by |\n| --- | --- | --- | --- |\n");
            for c in &f.controls {
                let mut by: Vec<String> = c.claims.iter().map(who).collect();
                if let Some(a) = &c.applicability {
                    for (k, v) in [
                        ("justification", &a.justification),
                        ("reference", &a.reference),
                    ] {
                        if let Some(v) = v {
                            by.push(format!("{k}: {}", esc(v)));
                        }
                    }
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    esc(&c.id),
                    esc(&c.name),
                    c.status.label(),
                    by.join("<br>")
                );
            }
            out.push('\n');
            related(&mut out, e.label(), f);
            let claimed: Vec<_> = f
                .controls
                .iter()
                .filter(|c| !c.claims.is_empty() || c.applicability.is_some())
                .collect();
            if claimed.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "#### Evidence — {} — {}\n",
                esc(e.label()),
                esc(&f.title)
            );
            for c in claimed {
                let _ = writeln!(
                    out,
                    "**{}** {} — {}\n",
                    esc(&c.tag),
                    esc(&c.name),
                    c.status.label()
                );
                if let Some(a) = &c.applicability {
                    let _ = writeln!(
                        out,
                        "Statement of Applicability: {}{}{}.\n",
                        a.status,
                        a.justification
                            .as_ref()
                            .map(|j| format!(" — justification: {}", esc(j)))
                            .unwrap_or_default(),
                        a.reference
                            .as_ref()
                            .map(|r| format!(" — reference: {}", esc(r)))
                            .unwrap_or_default()
                    );
                }
                match &c.rule {
                    Some(rule) => {
                        let req: Vec<String> =
                            rule.requires.iter().map(|k| format!("`{k}`")).collect();
                        let _ = writeln!(
                            out,
                            "Rule: requires {}. {}\n",
                            req.join(", "),
                            esc(&rule.rationale)
                        );
                    }
                    None => {
                        out.push_str("Rule: none (no evidence rule exists for this control).\n\n")
                    }
                }
                for cl in &c.claims {
                    let at = cl
                        .location
                        .as_ref()
                        .map(|l| format!(" at {}", esc(&l.to_string())))
                        .unwrap_or_default();
                    let verdict = match (cl.evidence_found, &cl.not_assessed) {
                        (Some(false), _) => "evidence missing".to_string(),
                        (_, Some(why)) => format!("not assessed: {}", esc(why)),
                        (Some(true), None) => "evidence found".to_string(),
                        (None, None) => "no rule".to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "- {} — tag `{}`{at} — {verdict}",
                        who(cl),
                        esc(&cl.tag)
                    );
                    for m in &cl.missing {
                        item(&mut out, m, true);
                    }
                    for ev in &cl.evidence {
                        item(&mut out, ev, false);
                    }
                }
                out.push('\n');
            }
        }
    }
    if let Some(o) = &r.operating {
        super::operating::markdown(&mut out, o);
    }
    out
}
