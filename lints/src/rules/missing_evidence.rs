//! PB5005: a claimed control whose evidence rule the playbook fails.

use crate::Compliance;
use crate::evidence::Supply;
use crate::evidence::{Scope, evaluate_missing};
use crate::facts::{PlaybookFacts, Spanned};
use crate::tags::{Resolved, resolve};
use pbc_compiler::declare_codes;
use pbc_compiler::diag::{Diagnostic, Edit};
use pbc_compiler::span::SourceMap;

declare_codes! {
    /// A claimed control lacks the evidence its rule requires.
    ///
    /// A compliance tag claims that the playbook (or, on a stage, that stage) helps operate a
    /// control. For the controls that have an evidence rule, pbc checks that the resolved
    /// playbook shows the facts the rule requires, in the environment being checked. The
    /// warning names what is missing; a label points at where to add each item. A stage
    /// without `audit-log: required` is one edit away: the finding's fix (an editor's code
    /// action) sets it.
    ///
    /// Evidence kinds (a rule lists several; the rules and their rationales are in
    /// `lints/rules/evidence.yaml`, and an organisation may replace or add rules):
    ///
    /// - `audit-sink`: `spec.audit.log-to` names at least one sink that `audit-sinks:` in
    ///   `.pbc.yaml` defines.
    /// - `audit-log`: every stage with a human gate has `audit-log: required`, and at least
    ///   one stage has it (a stage-level claim: that stage has it); the records go to a
    ///   configured sink (`spec.audit.log-to`).
    /// - `audit-retention`: `spec.audit.retention` is set and is at least the organisation's
    ///   minimum.
    /// - `human-gate`: a gate with named approvers (a stage-level claim: on that stage).
    /// - `production-action-gates`: in a production environment (the overlay directory
    ///   under `overlays/`, matched against `production-environments`, default
    ///   `[production, prod]`), a gate with named approvers before every `action:` stage.
    ///   A conditional gate that can let the action through without a person (a branch
    ///   says `auto`, or no `else`) counts only when a policy (the stage's `policy:` or an
    ///   always-on one) checks the action's params. Not required in other environments; for
    ///   a playbook in no environment, `pbc coverage` reports the claim `not-assessed`.
    /// - `role-approvers`: every gate names at least one role, and there is a gate.
    /// - `gate-sla`: every human gate has an `sla` and an `on-pending` notification.
    /// - `rollback-on-failure`: `spec.rollback.on-failure` is set and is not `none`; with
    ///   `revert-to-previous`, every `action:` stage that can run has a `rollback` step.
    /// - `failure-notification`: `spec.rollback.notification` names a channel.
    /// - `revert-to-previous`: `on-failure: revert-to-previous`, and every `action:` stage
    ///   that can run (not refused by `risk: high`) has a `rollback` step.
    /// - `monitoring-alerts`: at least one alert under `spec.monitoring.alerts`, each with
    ///   `notify`.
    /// - `security-alerts`: at least one alert on a security-relevant signal (its metric's
    ///   name speaks of guardrails, failures, errors, violations, denials, changes,
    ///   incidents, …), each with `notify`; an alert on cost or latency does not count.
    /// - `rate-limits`: every `action:` stage that can run has a `spec.rate-limits` entry
    ///   for its action.
    /// - `stage-timeouts`: every stage that can run declares a `timeout` (a declaration:
    ///   the enforcement table has no row for timeouts).
    /// - `output-schemas`: every stage that can run declares an `output-schema` (a
    ///   declaration: no enforcement-table row; pbc's engine validates outputs).
    /// - `input-schema`: the trigger's input has an `input-schema` (a declaration: no
    ///   enforcement-table row; `pbc run` validates the input).
    /// - `stage-guardrails`: every agent stage that can run names guardrails of its own,
    ///   beyond the organisation's always-on ones.
    /// - `action-policies`: every `action:` stage that can run is checked by its `policy:`
    ///   or an `always-on-policies:` entry.
    /// - `gate-escalation`: every human gate has an `escalation` level, and there is a gate.
    /// - `two-person-approval`: every human gate needs two distinct approvers or more
    ///   (`min-approvals`), and there is a gate.
    ///
    /// Evidence holds only where the playbook runs enforces it: each kind rests on
    /// constructs (gates, approvers, SLA, audit sinks, rollback, rate limits, guardrails,
    /// policies, escalation, min-approvals), and every target in
    /// `targets.emit` (`.pbc.yaml`; default all: `local`, `serve`, `argo`, `langgraph`,
    /// `crd`) must enforce them. Today Argo and LangGraph do not check who approves, and
    /// only the local runtime and `pbc serve` run undo steps; the CRD runs nothing and is
    /// ignored. List only the targets you deploy through.
    ///
    /// A gate is `approval: manual`, `approval: conditional` with a manual branch, or
    /// `risk: medium`; a `high`-risk stage is refused and needs none. The built-in rules
    /// cover 31 SOC 2 criteria, 31 ISO 27001:2022 controls and 3 ISO 27001:2013 controls;
    /// `pbc explain CONTROL` (e.g. `pbc explain SOC2-CC8.1`) prints one rule, and
    /// docs/compliance.md lists them all. A claim on a control without a rule is reported
    /// by `pbc coverage` as
    /// `claimed-no-rule`, never as covered.
    ///
    /// ```yaml
    /// metadata:
    ///   compliance: [SOC2-CC8.1]      # change management …
    /// spec:
    ///   stages:
    ///     - name: deploy
    ///       action: k8s:apply         # … but in production this action has no gate
    /// ```
    PB5005 MISSING_EVIDENCE "missing-evidence" Warning "a claimed control lacks the evidence its rule requires";
}

/// Checks every claim of a playbook (playbook level and stage level).
pub fn check(
    comp: &Compliance,
    pb: &PlaybookFacts,
    sources: Option<&SourceMap>,
    diags: &mut Vec<Diagnostic>,
) {
    check_list(comp, pb, Scope::Playbook, &pb.tags, sources, diags);
    for (i, s) in pb.stages.iter().enumerate() {
        check_list(comp, pb, Scope::Stage(i), &s.tags, sources, diags);
    }
}

/// The edit of a [`Supply`]: `required` over an `audit-log` value, or a line
/// `audit-log: required` after the stage's `name` line, indented like `name` (a stage
/// written as a flow mapping, `{name: …}`, gets none; neither without `sources`).
fn supply_edit(sources: Option<&SourceMap>, s: &Supply) -> Option<Edit> {
    match s {
        Supply::AuditLogValue(span) => Some(Edit {
            span: *span,
            text: "required".into(),
        }),
        Supply::AuditLogKey(name) => {
            let f = sources?.get(name.file)?;
            let line = f.line_col(name.start).line;
            let start = f.line_start(line)?;
            let text = f.line_text(line);
            let before = text.get(..usize::try_from(name.start.checked_sub(start)?).ok()?)?;
            let key = before.rfind("name")?;
            // Only `- ` and spaces before the key: a block mapping.
            if !before[..key].chars().all(|c| c == ' ' || c == '-') {
                return None;
            }
            let end = start + u32::try_from(text.len()).ok()?;
            Some(Edit {
                span: pbc_compiler::span::Span::point(name.file, end),
                text: format!("\n{}audit-log: required", " ".repeat(key)),
            })
        }
    }
}

fn check_list(
    comp: &Compliance,
    pb: &PlaybookFacts,
    scope: Scope,
    tags: &[Spanned<String>],
    sources: Option<&SourceMap>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut done: Vec<(String, String)> = Vec::new();
    for t in tags {
        let Resolved::Control { catalog, control } = resolve(&comp.catalogs, &t.value) else {
            continue;
        };
        let key = (catalog.id.clone(), control.id.clone());
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let Some(rule) = comp.rules.get(&catalog.id, &control.id) else {
            continue;
        };
        let outcome = evaluate_missing(rule, pb, scope, &comp.settings);
        if outcome.ok() {
            continue;
        }
        let whose = match scope {
            Scope::Playbook => format!("playbook `{}`", pb.name),
            Scope::Stage(i) => format!(
                "stage `{}`",
                pb.stages.get(i).map(|s| s.name.as_str()).unwrap_or("")
            ),
        };
        // Two kinds may miss the same thing (`audit-sink` and `audit-log` both rest on the
        // audit sink): the message says it once, with one label.
        let mut missing: Vec<&str> = Vec::new();
        let mut labels: Vec<(pbc_compiler::span::Span, &str)> = Vec::new();
        for m in &outcome.missing {
            if !missing.contains(&m.what.as_str()) {
                missing.push(&m.what);
            }
            if !labels.contains(&(m.at, m.hint.as_str())) {
                labels.push((m.at, &m.hint));
            }
        }
        let mut d = Diagnostic::new(
            &MISSING_EVIDENCE,
            t.span,
            format!(
                "`{}` ({}) is claimed by {whose}, but its evidence is missing: {}",
                t.value,
                control.name,
                missing.join("; ")
            ),
        )
        .with_label_text("claimed here");
        for (at, hint) in labels {
            d = d.with_label(at, hint);
        }
        // The gaps one edit closes (`audit-log: required` on a stage), each once.
        let mut edits: Vec<Edit> = Vec::new();
        for e in outcome
            .missing
            .iter()
            .filter_map(|m| supply_edit(sources, m.supply.as_ref()?))
        {
            if !edits.contains(&e) {
                edits.push(e);
            }
        }
        if !edits.is_empty() {
            d = d.with_fix("set `audit-log: required` where it is missing", edits);
        }
        let kinds: Vec<String> = rule
            .requires
            .iter()
            .map(|k| format!("`{}`", k.name()))
            .collect();
        d = d.with_help(format!(
            "the evidence rule for `{}` requires {}: {}",
            rule.control,
            kinds.join(", "),
            rule.rationale
        ));
        diags.push(d);
    }
}
