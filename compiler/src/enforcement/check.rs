//! A control declared but not enforced where it runs: with `targets.emit` in the
//! configuration, each control of a playbook that one of the listed targets does not enforce
//! is an error naming that target (and only that one).

use super::{Deployment, TARGETS, Target, declared, mechanism_in, unenforced_in};
use crate::config::Config;
use crate::declare_codes;
use crate::diag::Diagnostic;
use crate::model::Playbook;

declare_codes! {
    /// A control the playbook declares is not enforced by a target it is deployed through.
    ///
    /// With `targets.emit` in `.pbc.yaml`, pbc checks every gate, approver list, SLA,
    /// escalation level, guardrail, policy, rate limit, audit sink, rollback and `risk: high`
    /// against the enforcement table (`pbc enforcement` prints it): a playbook deployed
    /// through a target that would run it while ignoring the control declares something
    /// nothing stops. The message names the control and each listed target that does not
    /// enforce it; the other targets are fine.
    ///
    /// Some cells depend on the configuration: the Argo runner counts rate limits and runs
    /// undo steps when `state:` names a PostgreSQL store its pods share, and checks who
    /// approved when `approvals.require-signature` is true.
    ///
    /// Fix: remove the target from `targets.emit` if you do not deploy through it, configure
    /// what lets it enforce the control (see the help), or remove the control if nothing
    /// needs it. Without `targets.emit`, pbc does not know the targets and reports nothing.
    ///
    /// ```yaml
    /// # .pbc.yaml
    /// targets:
    ///   emit: [local, argo]    # not langgraph: its graph has no timer for an `sla`
    /// ```
    PB6005 UNENFORCED_CONTROL "unenforced-control" Error "a declared control is not enforced by a target in `targets.emit`";
}

/// Reports the controls of `pb` that a target in `cfg.targets.emit` does not enforce.
pub fn check(pb: &Playbook, cfg: &Config, diags: &mut Vec<Diagnostic>) {
    if !cfg.targets.emit_set {
        return;
    }
    let d = Deployment::from_config(cfg);
    for c in declared(pb) {
        let gaps = unenforced_in(c.construct, &cfg.targets.emit, d);
        if gaps.is_empty() {
            continue;
        }
        let names = |ts: &[Target]| {
            ts.iter()
                .map(|t| format!("`{}`", t.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let place = match &c.stage {
            Some(s) => format!("stage `{s}`"),
            None => format!("playbook `{}`", pb.name()),
        };
        let enforcing: Vec<Target> = TARGETS
            .iter()
            .copied()
            .filter(|t| t.executes() && mechanism_in(c.construct, *t, d).is_some())
            .collect();
        let mut help = if enforcing.is_empty() {
            format!(
                "no target enforces `{}`: do not rely on it",
                c.construct.name()
            )
        } else {
            format!(
                "targets that enforce `{}`: {}; list in `targets.emit` only the targets you deploy through",
                c.construct.name(),
                names(&enforcing)
            )
        };
        if gaps.contains(&Target::Argo) {
            let full = Deployment {
                shared_state: true,
                signed_approvals: true,
            };
            if mechanism_in(c.construct, Target::Argo, full).is_some() {
                help.push_str(match c.construct {
                    super::Construct::Approvers => {
                        "; the Argo runner checks approvers with `approvals.require-signature: true`"
                    }
                    _ => "; the Argo runner enforces it with a shared PostgreSQL `state:`",
                });
            }
        }
        diags.push(
            Diagnostic::new(
                &UNENFORCED_CONTROL,
                c.span,
                format!(
                    "`{}` of {place} is not enforced by {}, listed in `targets.emit`",
                    c.what,
                    names(&gaps)
                ),
            )
            .with_label_text(format!("not enforced by {}", names(&gaps)))
            .with_help(help),
        );
    }
}
