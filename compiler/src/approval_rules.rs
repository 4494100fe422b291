//! Approval rules, checked statically against the role registry (`roles:` in `.pbc.yaml`,
//! the map the runtime freezes with each run): every role an approver list names exists and
//! has members; a gate's approvers are enough distinct people for its `min-approvals`, not
//! counting the identity that triggers the playbook (which is never allowed to decide);
//! the last escalation level asks someone; and a gate waits no longer than
//! `approvals.max-wait`. Without a `roles:` map, the role rules are not checked (pbc cannot
//! know who is in a role).

use crate::config::Config;
use crate::declare_codes;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{Approver, Gate, Playbook, Spanned, Stage, Trigger};
use crate::sema::stage_has_gate;
use crate::span::Span;

declare_codes! {
    /// An approver list names a role the role registry does not define.
    ///
    /// With `roles:` in `.pbc.yaml` (the map the runtime freezes with each run and checks
    /// approvers against), a `role:` approver naming no role in it can never be satisfied by
    /// anyone: the gate waits until it expires. Roles in an agents file are deprecated and
    /// not read here.
    ///
    /// Fix: correct the name (the help suggests the closest), or add the role under
    /// `roles:` with its members.
    PB6030 UNKNOWN_ROLE "unknown-role" Error "an approver names a role the role registry does not define";

    /// An approver list names a role that has no members.
    ///
    /// A role with an empty member list approves nobody; a gate asking only it can never be
    /// approved.
    ///
    /// Fix: add the people who hold the role under `roles:` in `.pbc.yaml`, or name another
    /// role.
    PB6031 EMPTY_ROLE "empty-role" Error "an approver role has no members";

    /// A gate's approvers are fewer distinct people than it needs.
    ///
    /// A gate needs `min-approvals` distinct people (1 by default). Its approvers — the users
    /// it names and the members of its roles, across its escalation levels — are counted as
    /// people (an address counts once however it is spelled). The identity that triggers the
    /// playbook (`schedule` for a schedule, `event:NAME` for a signed event) never decides its
    /// own run, so it does not count. With fewer people than needed, the gate can only
    /// expire.
    ///
    /// Fix: name more approvers (or add members to the role), or lower `min-approvals`.
    ///
    /// ```yaml
    /// approval: manual
    /// approvers: [{role: sre}]   # roles: {sre: [ann@example.com, bob@example.com]}
    /// min-approvals: 2
    /// ```
    PB6032 TOO_FEW_APPROVERS "too-few-approvers" Error "a gate's approvers are fewer distinct people than it needs";

    /// The last escalation level of a gate asks nobody.
    ///
    /// Escalation levels open one after another when a gate waits past its SLA; each should
    /// widen who may decide. A last level without `approvers` only notifies and then lets the
    /// gate expire: the chain of escalation ends without anyone new to decide.
    ///
    /// Fix: give the last level `approvers:` (the people who decide when everyone before did
    /// not), or remove the level.
    PB6033 ESCALATION_DEAD_END "escalation-dead-end" Error "the last escalation level names no approvers";

    /// A gate can wait longer than `approvals.max-wait`.
    ///
    /// `approvals.max-wait` in `.pbc.yaml` bounds how long any gate may wait for a decision:
    /// its `sla` plus every escalation level's `after`. A gate that can wait longer keeps a
    /// run (and what it holds) open past what the organisation allows.
    ///
    /// Fix: shorten the SLA or the escalation levels, or remove a level.
    PB6034 GATE_WAITS_TOO_LONG "gate-waits-too-long" Error "a gate can wait longer than `approvals.max-wait`";
}

/// The identity that triggers `pb`'s runs, which never decides them.
fn trigger_identity(pb: &Playbook) -> Option<String> {
    match &pb.spec.trigger.as_ref()?.value {
        Trigger::Event { event } | Trigger::EventWithSchema { event, .. } => {
            Some(format!("event:{}", event.value))
        }
        Trigger::Schedule { .. } => Some("schedule".into()),
    }
}

fn person(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// Checks `pb`'s approver lists and gates against `cfg`.
pub fn check(pb: &Playbook, cfg: &Config, diags: &mut Vec<Diagnostic>) {
    let registry = !cfg.roles.is_empty();
    let requester = trigger_identity(pb);
    let mut lists: Vec<&Spanned<Vec<Approver>>> = Vec::new();
    lists.extend(pb.spec.approvers.as_ref());
    for s in &pb.spec.stages {
        lists.extend(s.approvers.as_ref());
        lists.extend(s.conditions.iter().filter_map(|c| c.approvers.as_ref()));
        lists.extend(s.escalation.iter().filter_map(|e| e.approvers.as_ref()));
    }
    if registry {
        for l in &lists {
            for a in &l.value {
                if let Approver::Role(r) = a {
                    role_exists(r, cfg, diags);
                }
            }
        }
    }
    if let Some(a) = pb.spec.approvers.as_ref().filter(|_| registry) {
        let who = format!("playbook `{}` (`risk: medium`)", pb.name());
        enough_people(&who, &[&a.value], 1, a.span, None, cfg, &requester, diags);
    }
    for s in &pb.spec.stages {
        if !stage_has_gate(pb, s) {
            continue;
        }
        gate_rules(s, registry, cfg, &requester, diags);
    }
}

fn role_exists(r: &Spanned<String>, cfg: &Config, diags: &mut Vec<Diagnostic>) {
    match cfg.roles.get(&r.value) {
        None => {
            let mut d = Diagnostic::new(
                &UNKNOWN_ROLE,
                r.span,
                format!("role `{}` is not in the role registry", r.value),
            )
            .with_label(r.span, "no such role under `roles:`");
            d = match did_you_mean(&r.value, cfg.roles.keys().map(String::as_str)) {
                Some(c) => d.with_help(format!(
                    "did you mean `{c}`? Or add `{}` under `roles:` in .pbc.yaml with its members",
                    r.value
                )),
                None => d.with_help(format!(
                    "add `{}` under `roles:` in .pbc.yaml with its members; defined roles: {}",
                    r.value,
                    cfg.roles
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            diags.push(d);
        }
        Some(m) if m.is_empty() => diags.push(
            Diagnostic::new(
                &EMPTY_ROLE,
                r.span,
                format!("role `{}` has no members", r.value),
            )
            .with_help(format!(
                "list the people who hold `{}` under `roles:` in .pbc.yaml",
                r.value
            )),
        ),
        Some(_) => {}
    }
}

/// The people `lists` name (users, and the members of roles the registry defines), once
/// each; `None` when a role is unknown (reported on its own).
fn people(lists: &[&Vec<Approver>], cfg: &Config) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        if !out.iter().any(|x| person(x) == person(p)) {
            out.push(p.trim().to_string());
        }
    };
    for l in lists {
        for a in l.iter() {
            match a {
                Approver::User(u) => add(&u.value),
                Approver::Role(r) => {
                    for m in cfg.roles.get(&r.value)? {
                        add(m);
                    }
                }
            }
        }
    }
    Some(out)
}

#[allow(clippy::too_many_arguments)]
fn enough_people(
    who: &str,
    lists: &[&Vec<Approver>],
    need: u32,
    span: Span,
    list_span: Option<Span>,
    cfg: &Config,
    requester: &Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(all) = people(lists, cfg) else {
        return;
    };
    let eligible: Vec<&String> = all
        .iter()
        .filter(|p| requester.as_ref().is_none_or(|r| person(r) != person(p)))
        .collect();
    if eligible.len() as u32 >= need {
        return;
    }
    let names = |v: &[&String]| v.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
    let message = if eligible.is_empty() && !all.is_empty() {
        format!(
            "{who}: its only approver is `{}`, the identity that triggers the playbook, which never decides its own run",
            names(&all.iter().collect::<Vec<_>>())
        )
    } else {
        format!(
            "{who} needs {need} distinct approvers, but only {} may approve it{}",
            match eligible.len() {
                0 => "nobody".to_string(),
                1 => "1 person".to_string(),
                n => format!("{n} people"),
            },
            if eligible.is_empty() {
                String::new()
            } else {
                format!(": {}", names(&eligible))
            }
        )
    };
    let mut d = Diagnostic::new(&TOO_FEW_APPROVERS, span, message).with_help(
        "name more approvers, or add members to the role under `roles:` in .pbc.yaml; or lower `min-approvals`",
    );
    if let Some(l) = list_span.filter(|l| *l != span) {
        d = d.with_label(l, "the approvers");
    }
    diags.push(d);
}

fn gate_rules(
    s: &Stage,
    registry: bool,
    cfg: &Config,
    requester: &Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let who = format!("stage `{}`", s.name.value);
    let levels: Vec<&Vec<Approver>> = s
        .escalation
        .iter()
        .filter_map(|e| e.approvers.as_ref().map(|a| &a.value))
        .collect();
    if registry {
        // Each way the gate can ask: the stage's approvers, and each manual branch's.
        let mut asks: Vec<(Option<usize>, &Spanned<Vec<Approver>>)> = Vec::new();
        if let Some(a) = &s.approvers {
            asks.push((None, a));
        }
        for (k, c) in s.conditions.iter().enumerate() {
            if c.then.value == Gate::Manual
                && let Some(a) = &c.approvers
            {
                asks.push((Some(k), a));
            }
        }
        for (branch, list) in asks {
            let need = s.min_approvals(branch);
            let min_span = branch
                .and_then(|k| s.conditions.get(k))
                .and_then(|c| c.min_approvals.as_ref())
                .or(s.min_approvals.as_ref())
                .map(|m| m.span);
            let mut all = vec![&list.value];
            all.extend(levels.iter().copied());
            enough_people(
                &who,
                &all,
                need,
                min_span.filter(|_| need > 1).unwrap_or(list.span),
                Some(list.span),
                cfg,
                requester,
                diags,
            );
        }
    }
    if let Some(last) = s.escalation.last()
        && last.approvers.as_ref().is_none_or(|a| a.value.is_empty())
    {
        let span = last.keys.get("after").unwrap_or(last.span);
        diags.push(
            Diagnostic::new(
                &ESCALATION_DEAD_END,
                span,
                format!(
                    "the last escalation level of {who} names no approvers: it asks nobody new, and the gate then expires"
                ),
            )
            .with_help("give this level `approvers:` (who decides when everyone before did not), or remove it"),
        );
    }
    if let Some(max) = cfg.approvals.max_wait_secs {
        let mut total = s.sla.as_ref().map_or(0, |d| d.value.seconds);
        let mut at = s.sla.as_ref().map(|d| d.span);
        if total <= max {
            for e in &s.escalation {
                total = total.saturating_add(e.after.value.seconds);
                at = Some(e.after.span);
                if total > max {
                    break;
                }
            }
        }
        if total > max
            && let Some(span) = at
        {
            diags.push(
                Diagnostic::new(
                    &GATE_WAITS_TOO_LONG,
                    span,
                    format!(
                        "the gate of {who} can wait {}, longer than `approvals.max-wait` ({})",
                        crate::model::Duration::from_secs(total),
                        crate::model::Duration::from_secs(max)
                    ),
                )
                .with_help("shorten the SLA or the escalation levels, or remove a level"),
            );
        }
    }
}
