//! Gates: the suspends of an approval (SLA, escalation levels), their checks
//! (`pbc runner gate`) and notifications, and who approves.

use super::{
    APPROVERS_ANNOTATION, APPROVERS_BY_BRANCH_ANNOTATION, CHECK_TEMPLATE, Emitter, NOTIFY_TEMPLATE,
    channels, go_duration, param, tag,
};
use crate::cond::{self, ApproverCase};
use crate::obj;
use crate::out::compact_json_for_argo;
use pbc_compiler::model::{Approver, Duration, Escalation};
use pbc_compiler::sema::lower::Cond;
use serde_json::{Value, json};

/// One level of a gate: its suspend task, duration, approvers (per branch), channels notified.
type Level = (String, Option<Duration>, Vec<ApproverCase>, Vec<String>);

/// The approvers in words: one list, or one per branch (`… if `x > 1`; … otherwise`).
fn approver_text(cases: &[ApproverCase]) -> String {
    if cond::same_approvers(cases) {
        return approver_list(cases.first().map(|c| c.approvers.as_slice()).unwrap_or(&[]));
    }
    cases
        .iter()
        .map(|c| format!("{} {}", approver_list(&c.approvers), c.branch))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `[{"branch": "if `x > 1`", "approvers": [...]}, …]`, in the order they are tried.
fn approvers_by_branch(cases: &[ApproverCase]) -> Value {
    Value::Array(
        cases
            .iter()
            .map(|c| json!({"branch": c.branch, "approvers": cond::approvers_json(&c.approvers)}))
            .collect(),
    )
}

fn approver_list(list: &[Approver]) -> String {
    if list.is_empty() {
        return "anyone with access to the Argo namespace".into();
    }
    list.iter()
        .map(cond::approver_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A gate to emit.
pub(super) struct GateSpec<'g> {
    /// The first suspend's task name (`<stage>-approval`).
    pub(super) name: String,
    /// The stage it belongs to (empty for the playbook's gate).
    pub(super) stage: String,
    pub(super) what: String,
    pub(super) depends: Vec<String>,
    /// When the gate asks (the stage's `when` included); `Const(true)` always.
    pub(super) when: Cond,
    /// Who approves, per branch of a conditional gate (one case otherwise).
    pub(super) approvers: Vec<ApproverCase>,
    pub(super) sla: Option<Duration>,
    pub(super) escalation: &'g [Escalation],
    pub(super) on_pending: Vec<String>,
    pub(super) on_approved: Vec<String>,
}

impl Emitter<'_> {
    pub(super) fn stage_gate(
        &mut self,
        i: usize,
        suffix: &str,
        depends: Vec<String>,
        when: Cond,
        verb: &str,
    ) -> String {
        let s = &self.pb.spec.stages[i];
        // The risk approval asks the stage's approvers; the approval gate, those of the
        // branch that fires (a `risk: medium` action's gate asks even when none does).
        let approvers = if suffix == "approval" {
            cond::approver_cases(self.an, i, s, s.action().is_some() && cond::medium(s))
        } else {
            cond::approver_cases(self.an, i, s, true)
                .pop()
                .into_iter()
                .collect()
        };
        let n = s.notification.as_ref();
        self.gate(GateSpec {
            name: format!("{}-{suffix}", s.name.value),
            stage: s.name.value.clone(),
            what: format!(
                "{verb} stage `{}` of playbook `{}`",
                s.name.value,
                self.pb.name()
            ),
            depends,
            when,
            approvers,
            sla: s.sla.as_ref().map(|d| d.value),
            escalation: &s.escalation,
            on_pending: n.map(|n| channels(&n.on_pending)).unwrap_or_default(),
            on_approved: n.map(|n| channels(&n.on_approved)).unwrap_or_default(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn notify_task(
        &mut self,
        name: String,
        depends: Option<String>,
        when: Option<String>,
        stage: &str,
        event: &str,
        chans: &[String],
        approvers: &[ApproverCase],
    ) {
        if chans.is_empty() {
            return;
        }
        self.use_shared(NOTIFY_TEMPLATE);
        self.tasks.push(obj! {
            "name" => name,
            "template" => NOTIFY_TEMPLATE,
            "depends" => depends,
            "when" => when,
            "arguments" => json!({"parameters": [
                param("stage", stage),
                param("event", event),
                param("channels", serde_json::to_string(chans).unwrap_or_default()),
                param("approvers", self.approvers_value(approvers)),
            ]}),
        });
    }

    /// The approvers as a parameter value: their JSON, or, when they depend on the branch
    /// that fires, an expression choosing the first case that holds.
    pub(super) fn approvers_value(&self, cases: &[ApproverCase]) -> String {
        let json_of = |c: &ApproverCase| {
            serde_json::to_string(&cond::approvers_json(&c.approvers)).unwrap_or_default()
        };
        if cond::same_approvers(cases) {
            return cases
                .first()
                .map(|c| compact_json_for_argo(&cond::approvers_json(&c.approvers)))
                .unwrap_or_else(|| "[]".into());
        }
        let mut rest = cases.iter().rev();
        let mut e = rest
            .next()
            .map(|c| cond::expr_str(&json_of(c)))
            .unwrap_or_else(|| "'[]'".into());
        for c in rest {
            e = match &c.when {
                Cond::Const(true) => cond::expr_str(&json_of(c)),
                Cond::Const(false) => e,
                w => format!(
                    "({}) ? {} : ({e})",
                    self.expr(w),
                    cond::expr_str(&json_of(c))
                ),
            };
        }
        tag(&e)
    }

    /// Emits a gate; returns the name of its final check task.
    pub(super) fn gate(&mut self, g: GateSpec<'_>) -> String {
        self.use_shared(CHECK_TEMPLATE);
        let depends = self.depends(g.depends.clone(), &g.when);
        let when0 = self.when(&g.when);
        let g_expr = match &g.when {
            Cond::Const(true) => None,
            c => Some(self.expr(c)),
        };
        // Levels: the SLA, then each escalation level.
        let mut levels: Vec<Level> = vec![(
            g.name.clone(),
            g.sla,
            g.approvers.clone(),
            g.on_pending.clone(),
        )];
        for (k, esc) in g.escalation.iter().enumerate() {
            let extra = esc
                .approvers
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_default();
            let approvers = cond::with_approvers(&g.approvers, &extra);
            let base = g.name.strip_suffix("-approval").unwrap_or(&g.name);
            levels.push((
                format!("{base}-escalation-{}", k + 1),
                Some(esc.after.value),
                approvers,
                channels(&esc.notify),
            ));
        }
        let multi = levels.len() > 1;
        let mut decisions: Vec<String> = Vec::new();
        for (k, (task, duration, approvers, notify)) in levels.iter().enumerate() {
            let (dep, when) = if k == 0 {
                (depends.clone(), when0.clone())
            } else {
                let prev = &decisions[k - 1];
                let opened = format!(
                    "tasks[{}].outputs.parameters['outcome'] == 'expired'",
                    cond::expr_str(prev)
                );
                let w = match &g_expr {
                    Some(e) => format!("({e}) && {opened}"),
                    None => opened,
                };
                (Some(prev.clone()), Some(tag(&w)))
            };
            let level = if k == 0 {
                "sla".to_string()
            } else {
                format!("escalation {k}")
            };
            let by_branch = !cond::same_approvers(approvers);
            let desc = format!(
                "Approve (`approve`) or reject (`reject`) to {}. Approvers: {}.{}",
                g.what,
                approver_text(approvers),
                match duration {
                    Some(d) if k == 0 =>
                        format!(" Expires after {} without a decision.", go_duration(*d)),
                    Some(d) => format!(
                        " Escalation level {k}; expires after {} without a decision.",
                        go_duration(*d)
                    ),
                    None => String::new(),
                }
            );
            let mut inputs = vec![json!({
                "name": "decision",
                "default": "reject",
                "enum": ["approve", "reject"],
                "description": desc,
            })];
            let annotations = if by_branch {
                // The branch that fires is known only at run time: the task supplies its
                // approvers as the input `approvers` (recorded in the node's inputs).
                inputs.push(json!({
                    "name": "approvers",
                    "description": "who may approve: the approvers of the branch of the gate's conditions that fired (JSON)",
                }));
                json!({APPROVERS_BY_BRANCH_ANNOTATION: compact_json_for_argo(&approvers_by_branch(approvers))})
            } else {
                let first = approvers
                    .first()
                    .map(|c| c.approvers.as_slice())
                    .unwrap_or(&[]);
                json!({APPROVERS_ANNOTATION: first.iter().map(cond::approver_str).collect::<Vec<_>>().join(",")})
            };
            self.templates.push(obj! {
                "name" => task.clone(),
                "metadata" => json!({"annotations": annotations}),
                "inputs" => json!({"parameters": inputs}),
                // `approval`: the signed approval statement(s) the check verifies.
                "outputs" => json!({"parameters": [
                    {"name": "decision", "valueFrom": {"supplied": {}}},
                    {"name": "approval", "valueFrom": {"supplied": {}, "default": ""}},
                ]}),
                "suspend" => match duration {
                    Some(d) => json!({"duration": go_duration(*d)}),
                    None => json!({}),
                },
                "metrics" => json!({"prometheus": [{
                    "name": "pbc_approval_wait_seconds",
                    "help": "How long a pbc approval gate waited for a decision",
                    "labels": [self.pb_label(), {"key": "gate", "value": task}, {"key": "level", "value": level}],
                    "gauge": {"value": "{{duration}}", "realtime": false},
                }]}),
            });
            self.tasks.push(obj! {
                "name" => task.clone(),
                "template" => task.clone(),
                "depends" => dep.clone(),
                "when" => when.clone(),
                "arguments" => by_branch.then(|| json!({"parameters": [param("approvers", self.approvers_value(approvers))]})),
            });
            let event = if k == 0 { "pending" } else { "escalated" };
            self.notify_task(
                format!("{task}-notify"),
                dep.clone(),
                when.clone(),
                &g.stage,
                event,
                notify,
                approvers,
            );
            if multi {
                let d = format!("{task}-decision");
                self.tasks.push(obj! {
                    "name" => d.clone(),
                    "template" => CHECK_TEMPLATE,
                    "depends" => task.clone(),
                    "when" => when.clone(),
                    "arguments" => json!({"parameters": [
                        param("gate", task.clone()),
                        param("mode", "level"),
                        param("decision", format!("{{{{tasks.{task}.outputs.parameters.decision}}}}")),
                        param("stage", g.stage.clone()),
                        param("approval", format!("{{{{tasks.{task}.outputs.parameters.approval}}}}")),
                        param("approvers", self.approvers_value(approvers)),
                    ]}),
                });
                decisions.push(d);
            }
        }
        let check = format!("{}-check", g.name);
        // The statements of the level that decided (each level's check verified its own).
        let approval = if multi {
            let outcome =
                |d: &str| format!("tasks[{}].outputs.parameters['outcome']", cond::expr_str(d));
            let supplied = |t: &str| {
                format!(
                    "tasks[{}].outputs.parameters['approval']",
                    cond::expr_str(t)
                )
            };
            let mut e = supplied(levels.last().map(|l| l.0.as_str()).unwrap_or_default());
            for (d, l) in decisions.iter().zip(&levels).rev().skip(1) {
                e = format!("({} == 'expired' ? {e} : {})", outcome(d), supplied(&l.0));
            }
            tag(&e)
        } else {
            format!("{{{{tasks.{}.outputs.parameters.approval}}}}", g.name)
        };
        let last_approvers = levels
            .last()
            .map(|l| l.2.clone())
            .unwrap_or_else(|| g.approvers.clone());
        let decision = if multi {
            let outcome =
                |d: &str| format!("tasks[{}].outputs.parameters['outcome']", cond::expr_str(d));
            let mut e = outcome(decisions.last().map(String::as_str).unwrap_or_default());
            for d in decisions.iter().rev().skip(1) {
                e = format!("({} == 'expired' ? {e} : {})", outcome(d), outcome(d));
            }
            tag(&e)
        } else {
            format!("{{{{tasks.{}.outputs.parameters.decision}}}}", g.name)
        };
        let check_dep = if multi {
            decisions.join(" && ")
        } else {
            g.name.clone()
        };
        self.tasks.push(obj! {
            "name" => check.clone(),
            "template" => CHECK_TEMPLATE,
            "depends" => check_dep,
            "when" => when0.clone(),
            "arguments" => json!({"parameters": [
                param("gate", g.name.clone()),
                param("mode", "final"),
                param("decision", decision),
                param("stage", g.stage.clone()),
                param("approval", approval),
                param("approvers", self.approvers_value(&last_approvers)),
            ]}),
        });
        self.notify_task(
            format!("{}-approved-notify", g.name),
            Some(check.clone()),
            when0,
            &g.stage,
            "approved",
            &g.on_approved,
            &g.approvers,
        );
        check
    }
}
