//! The diff report as JSON and as Markdown (for a pull-request comment).

use super::*;

// ---------------------------------------------------------------------------------------
// Rendering.

/// The report as pretty JSON (one object, trailing newline).
pub fn json(r: &DiffReport) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

/// Inline code that survives any content: a fence longer than any backtick run inside,
/// newlines flattened. (Markdown inside code is not interpreted, so user text can't inject
/// links, images or HTML into a comment.)
pub fn code(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut longest = 0;
    let mut run = 0;
    for c in flat.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if longest > 0 || flat.starts_with(' ') || flat.ends_with(' ') {
        format!("{fence} {flat} {fence}")
    } else {
        format!("{fence}{flat}{fence}")
    }
}

/// Untrusted text as plain Markdown: one line, every character Markdown or HTML could read
/// escaped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.split_whitespace().collect::<Vec<_>>().join(" ").chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '!' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

pub(super) fn problems_md(out: &mut String, r: &DiffReport) {
    if r.problems.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n> [!WARNING]\n> Some files could not be read; the playbooks in them may show as \
         added or removed (`pbc check` says more):"
    );
    for p in &r.problems {
        let side = match p.side {
            Side::Base => "base",
            Side::WorkingTree => "working tree",
        };
        let at = match (&p.file, p.line) {
            (Some(f), Some(l)) => format!(" {}", code(&format!("{f}:{l}"))),
            (Some(f), None) => format!(" {}", code(f)),
            _ => String::new(),
        };
        let _ = writeln!(out, "> - {side}{at}: {} {}", p.code, text(&p.message));
    }
}

pub(super) fn code_list(v: &[String]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
}

pub(super) fn opt(v: &Option<String>, absent: &str) -> String {
    match v {
        Some(s) => code(s),
        None => absent.to_string(),
    }
}

pub(super) fn level_md(l: &Level) -> String {
    let mut s = format!("after {}", code(&l.after));
    if !l.approvers.is_empty() {
        let _ = write!(s, " ask {}", code_list(&l.approvers));
    }
    if !l.notify.is_empty() {
        let _ = write!(s, " notify {}", code_list(&l.notify));
    }
    s
}

pub(super) fn branch_md(b: &Branch) -> String {
    let mut s = match &b.test {
        Some(t) => format!("if {} then {}", code(t), code(&b.then)),
        None => format!("else {}", code(&b.then)),
    };
    if !b.approvers.is_empty() {
        let _ = write!(s, " (approvers {})", code_list(&b.approvers));
    }
    s
}

pub(super) fn delta_md(added: &[String], removed: &[String]) -> String {
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", code_list(added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", code_list(removed)));
    }
    parts.join("; ")
}

pub(super) fn scope(stage: &Option<String>) -> String {
    match stage {
        Some(s) => format!("stage {}", code(s)),
        None => "playbook".into(),
    }
}

pub(super) fn list_md(out: &mut String, indent: &str, label: &str, items: &[String]) {
    if items.is_empty() {
        let _ = writeln!(out, "{indent}- {label}: none");
    } else {
        let _ = writeln!(out, "{indent}- {label}:");
        for i in items {
            let _ = writeln!(out, "{indent}  - {i}");
        }
    }
}

pub(super) fn change_md(out: &mut String, c: &Change) {
    match c {
        Change::StageAdded { stage, position } => {
            let _ = writeln!(
                out,
                "  - stage {} **added** at position {position}",
                code(stage)
            );
        }
        Change::StageRemoved { stage, position } => {
            let _ = writeln!(
                out,
                "  - stage {} **removed** (was at position {position})",
                code(stage)
            );
        }
        Change::StagesReordered { before, after } => {
            let _ = writeln!(
                out,
                "  - stages **reordered**: {} → {}",
                before
                    .iter()
                    .map(|s| code(s))
                    .collect::<Vec<_>>()
                    .join(", "),
                after.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
            );
        }
        Change::ApprovalChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(
                out,
                "  - stage {}: **approval** {} → {}",
                code(stage),
                code(before),
                code(after)
            );
        }
        Change::ApproversChanged {
            stage,
            before,
            after,
            added,
            removed,
        } => {
            let _ = writeln!(
                out,
                "  - {}: **approvers** {} ({} → {})",
                scope(stage),
                delta_md(added, removed),
                code_list(before),
                code_list(after)
            );
        }
        Change::SlaChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(
                out,
                "  - stage {}: **sla** {} → {}",
                code(stage),
                opt(before, "none"),
                opt(after, "none")
            );
        }
        Change::EscalationChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(out, "  - stage {}: **escalation** changed", code(stage));
            let b: Vec<String> = before.iter().map(level_md).collect();
            let a: Vec<String> = after.iter().map(level_md).collect();
            list_md(out, "    ", "before", &b);
            list_md(out, "    ", "after", &a);
        }
        Change::ConditionsChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(out, "  - stage {}: **conditions** changed", code(stage));
            let b: Vec<String> = before.iter().map(branch_md).collect();
            let a: Vec<String> = after.iter().map(branch_md).collect();
            list_md(out, "    ", "before", &b);
            list_md(out, "    ", "after", &a);
        }
        Change::RiskChanged {
            stage,
            before,
            after,
        } => {
            let absent = if stage.is_some() {
                "unset (the playbook's)"
            } else {
                "unset (`low`)"
            };
            let _ = writeln!(
                out,
                "  - {}: **risk** {} → {}",
                scope(stage),
                opt(before, absent),
                opt(after, absent)
            );
        }
        Change::ComplianceChanged {
            stage,
            added,
            removed,
            ..
        } => {
            let _ = writeln!(
                out,
                "  - {}: **compliance tags** {}",
                scope(stage),
                delta_md(added, removed)
            );
        }
        Change::FieldsChanged { stage, fields } => {
            let _ = writeln!(
                out,
                "  - {}: other fields changed: {}",
                scope(stage),
                code_list(fields)
            );
        }
    }
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report as Markdown, for a pull-request comment or a job summary. Headings start at
/// level 3 so that it nests under a page's own.
pub fn markdown(r: &DiffReport) -> String {
    let mut out = String::new();
    let short = |c: &str| code(c.get(..12).unwrap_or(c));
    let against = match r.base.commit.as_deref() {
        // A sha given as the revision is shown once, shortened.
        Some(c) if r.base.rev.len() >= 7 && c.starts_with(&r.base.rev) => short(c),
        Some(c) => format!("{} ({})", code(&r.base.rev), short(c)),
        None => code(&r.base.rev),
    };
    let _ = writeln!(out, "### Playbook changes against {against}\n");
    let s = r.summary;
    if !r.has_changes() {
        let _ = writeln!(
            out,
            "No playbook changed ({} compared).",
            plural(s.unchanged, "playbook", "playbooks")
        );
        problems_md(&mut out, r);
        return out;
    }
    let _ = writeln!(
        out,
        "{} added, {} removed, {} changed, {} unchanged.",
        s.added, s.removed, s.changed, s.unchanged
    );
    problems_md(&mut out, r);
    for e in &r.environments {
        if e.playbooks.is_empty() {
            continue;
        }
        let title = match &e.environment {
            Some(env) => format!("Environment {}", code(env)),
            None => "No environment".to_string(),
        };
        let _ = writeln!(out, "\n#### {title}\n");
        for p in &e.playbooks {
            let status = match p.status {
                Status::Added => "added",
                Status::Removed => "removed",
                Status::Changed => "changed",
            };
            let _ = writeln!(out, "- {} **{status}** in {}", code(&p.name), code(&p.unit));
            match p.status {
                Status::Added | Status::Removed => {
                    let _ = writeln!(out, "  - stages: {}", code_list(&p.stages));
                }
                Status::Changed => {
                    for c in &p.changes {
                        change_md(&mut out, c);
                    }
                }
            }
        }
        if e.unchanged > 0 {
            let _ = writeln!(
                out,
                "\n{} unchanged in this environment.",
                plural(e.unchanged, "playbook", "playbooks")
            );
        }
    }
    out
}
