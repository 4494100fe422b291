//! `pbc explain CONTROL`: a control of the built-in catalogs, the evidence rule pbc judges a
//! claim of it by (each kind with its meaning, and the rationale), and the controls the
//! SOC 2 ↔ ISO 27001:2022 crosswalk relates it to.

use pbc_lints::catalog::Catalogs;
use pbc_lints::crosswalk::Crosswalk;
use pbc_lints::evidence::EvidenceRules;
use pbc_lints::tags::{Resolved, resolve};
use std::fmt::Write as _;
use std::process::ExitCode;

/// What `arg` names when it is a control tag (`SOC2-CC6.1`, `ISO27001-5.26`,
/// `ISO27001:2022-5.26`; letter case is forgiven): the explanation, or a usage error for an
/// ambiguous one. `None` when it names no control.
pub fn control(arg: &str) -> Option<ExitCode> {
    let cats = Catalogs::builtin();
    let resolved = match resolve(cats, arg) {
        Resolved::Unknown {
            suggestion: Some(s),
            ..
        } if s.eq_ignore_ascii_case(arg) => resolve(cats, &s),
        other => other,
    };
    match resolved {
        Resolved::Control { catalog, control } => {
            print!(
                "{}",
                render(
                    cats,
                    EvidenceRules::builtin(),
                    Crosswalk::builtin(),
                    &catalog.id,
                    &control.id
                )
            );
            Some(ExitCode::SUCCESS)
        }
        Resolved::Ambiguous { objective, current } => {
            let mut msg = format!("`{arg}` does not say which control it means:");
            if let Some(o) = objective {
                let ids: Vec<String> = o.controls.iter().map(|c| c.id.clone()).collect();
                let _ = write!(
                    msg,
                    "\n  the 2013 control objective {} has controls {}",
                    o.id,
                    ids.join(", ")
                );
            }
            if let Some((cat, c)) = current {
                let _ = write!(msg, "\n  {} is {} ({})", cat.tag(&c.id), c.name, cat.title);
            }
            Some(crate::commands::usage_error(msg))
        }
        Resolved::Unknown { .. } => None,
    }
}

/// The explanation of one control, as printed.
pub fn render(
    cats: &Catalogs,
    rules: &EvidenceRules,
    crosswalk: &Crosswalk,
    catalog: &str,
    id: &str,
) -> String {
    let mut out = String::new();
    let Some(cat) = cats.catalogs.iter().find(|c| c.id == catalog) else {
        return out;
    };
    let name = cat.control(id).map(|c| c.name.clone()).unwrap_or_default();
    let _ = writeln!(out, "{}: {}", cat.tag(id), name);
    let _ = writeln!(
        out,
        "catalog: {} ({}), control {id}",
        cat.title, cat.edition
    );
    if let Some(succ) = cat.control(id).and_then(|c| c.successors.clone())
        && cat.superseded_by.is_some()
    {
        let _ = writeln!(
            out,
            "superseded: a claim of it also claims {}",
            if succ.is_empty() {
                "no successor".to_string()
            } else {
                succ.join(", ")
            }
        );
    }
    out.push('\n');
    match rules.get(catalog, id) {
        Some(rule) => {
            let _ = writeln!(
                out,
                "evidence rule (lints/rules/evidence.yaml): a claim is covered when the playbook shows"
            );
            let width = rule
                .requires
                .iter()
                .map(|k| k.name().len())
                .max()
                .unwrap_or(0);
            for k in &rule.requires {
                let _ = writeln!(out, "  {:<width$}  {}", k.name(), k.describe());
            }
            out.push_str("\nrationale:\n");
            for line in wrap(&rule.rationale, 96) {
                let _ = writeln!(out, "  {line}");
            }
        }
        None => {
            let text = "no evidence rule: pbc has no rule for this control, so a playbook's claim \
                 of it is `claimed-no-rule` in `pbc coverage` (never counted as covered). An \
                 organisation can add one in its own rules file (`evidence-rules:` in .pbc.yaml).";
            for line in wrap(text, 98) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let related = crosswalk.related(cats, catalog, id);
    if !related.is_empty() {
        out.push_str(
            "\nrelated by the SOC 2 / ISO 27001:2022 crosswalk (lints/rules/crosswalk.yaml):\n",
        );
        let rows: Vec<(String, String, &str)> = related
            .iter()
            .filter_map(|(cat_id, rid)| {
                let rc = cats.catalogs.iter().find(|c| &c.id == cat_id)?;
                let rname = rc.control(rid).map(|c| c.name.clone()).unwrap_or_default();
                let rule = if rules.get(cat_id, rid).is_some() {
                    "has a rule"
                } else {
                    "no rule"
                };
                Some((rc.tag(rid), rname, rule))
            })
            .collect();
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        for (tag, rname, rule) in rows {
            let _ = writeln!(out, "  {tag:<width$}  {rname} ({rule})");
        }
    }
    out
}

/// Words of `text` in lines of at most `width` characters (a longer word stands alone).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
