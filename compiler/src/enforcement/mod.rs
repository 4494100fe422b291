//! The enforcement table: for each governance construct of a playbook and each target pbc
//! emits or runs, the mechanism that enforces it there, or none.
//!
//! This is plain data, read by the compliance evidence rules (a requirement is met only by a
//! construct that every target the environment deploys to enforces; config `targets.emit`,
//! default all) and meant to be printed as is. A cell names the code that enforces the
//! construct; `None` means a playbook deployed through that target declares the construct but
//! nothing stops a run that ignores it. When a target learns to enforce a construct, its cell
//! changes here and nowhere else.
//!
//! Some cells depend on how the targets are configured ([`Deployment`]): the Argo runner
//! counts rate limits and runs undo steps only with a state store its pods share, and checks
//! who approved only with signed approvals. [`mechanism`] is the table without
//! configuration (what evidence relies on); [`mechanism_in`] reads it.
//!
//! [`declared`] lists the controls a playbook declares, [`check`] reports those a target in
//! `targets.emit` does not enforce, and `pbc enforcement` prints the map.
//!
//! The CRD target emits data only: pbc ships no controller that runs a `Playbook` custom
//! resource, so it executes nothing and enforces nothing ([`Target::executes`]); an
//! environment that emits only the CRD has no run whose gates could be skipped, and evidence
//! ignores it.

pub mod check;
pub mod declared;

pub use check::CODES;
pub use declared::{Declared, declared};

/// A target a playbook is deployed through (config `targets.emit` names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `pbc run` / `approve` / `resume`: the runtime engine (`runtime/src/engine`).
    Local,
    /// `pbc serve`: the same engine behind an HTTP API with authenticated identities.
    Serve,
    /// The Argo `WorkflowTemplate` (`targets/src/argo`) whose tasks run `pbc runner`.
    Argo,
    /// The LangGraph JSON and its Python loader (`targets/python/pbc_langgraph.py`).
    Langgraph,
    /// The `Playbook` custom resource and its definition (`targets/src/crd.rs`).
    Crd,
}

/// Every target, in table order.
pub const TARGETS: &[Target] = &[
    Target::Local,
    Target::Serve,
    Target::Argo,
    Target::Langgraph,
    Target::Crd,
];

impl Target {
    /// The name in `targets.emit` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Serve => "serve",
            Target::Argo => "argo",
            Target::Langgraph => "langgraph",
            Target::Crd => "crd",
        }
    }

    /// The target with this name.
    pub fn parse(s: &str) -> Option<Target> {
        TARGETS.iter().copied().find(|t| t.name() == s)
    }

    /// False for a target that only declares (the CRD: no controller runs it).
    pub fn executes(self) -> bool {
        self != Target::Crd
    }

    fn column(self) -> usize {
        self as usize
    }
}

/// A governance construct of a playbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Construct {
    /// A stage waits for a person: `approval: manual`, a conditional gate's manual branch,
    /// `risk: medium`.
    Gate,
    /// Only the named approvers (users, members of roles) decide a gate.
    Approvers,
    /// A gate needs several distinct approvals (`min-approvals`).
    MinApprovals,
    /// A pending gate expires after its `sla` (never approving).
    Sla,
    /// `escalation` levels: after each `after`, more approvers, notified.
    Escalation,
    /// Guardrails on a stage's input and output.
    Guardrail,
    /// A stage's `policy` and the always-on policies decide before it executes.
    Policy,
    /// `spec.rate-limits`.
    RateLimit,
    /// `spec.audit.log-to`: audit records delivered to configured sinks.
    AuditSink,
    /// `spec.rollback`: undo steps of completed stages run on failure.
    Rollback,
    /// `risk: high` refuses a stage (nothing executes it).
    Risk,
}

/// Every construct, in table order.
pub const CONSTRUCTS: &[Construct] = &[
    Construct::Gate,
    Construct::Approvers,
    Construct::MinApprovals,
    Construct::Sla,
    Construct::Escalation,
    Construct::Guardrail,
    Construct::Policy,
    Construct::RateLimit,
    Construct::AuditSink,
    Construct::Rollback,
    Construct::Risk,
];

impl Construct {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Construct::Gate => "gate",
            Construct::Approvers => "approvers",
            Construct::MinApprovals => "min-approvals",
            Construct::Sla => "sla",
            Construct::Escalation => "escalation",
            Construct::Guardrail => "guardrail",
            Construct::Policy => "policy",
            Construct::RateLimit => "rate-limit",
            Construct::AuditSink => "audit-sink",
            Construct::Rollback => "rollback",
            Construct::Risk => "risk",
        }
    }
}

/// One row of the table: a construct and its mechanism per target (in [`TARGETS`] order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub construct: Construct,
    pub cells: [Option<&'static str>; 5],
}

/// Gate. Local and serve: the engine opens a question and the run waits
/// (`runtime/src/engine/gates.rs`; conditional gates fail safe to manual). Argo: a
/// `suspend` then `pbc runner gate`, which passes on exactly `approve`
/// (`targets/src/argo/gates.rs`, `cli/src/runner/gate.rs`). LangGraph: the graph
/// interrupts before the approval node and its router goes on only on `approved`
/// (`interrupt_before` in `pbc_langgraph.py`).
pub const GATE: Row = Row {
    construct: Construct::Gate,
    cells: [
        Some("engine gate: the run waits for a decision"),
        Some("engine gate: the run waits for a decision"),
        Some("suspend + `pbc runner gate` passing on exactly `approve`"),
        Some("interrupt before the approval node"),
        None,
    ],
};

/// Approvers. Local: the engine accepts a decision only from the gate's users and its
/// roles' members, never the requester (`runtime/src/engine/decisions.rs`); the local CLI
/// asserts who decides. Serve: the same rule on an authenticated identity (bearer token
/// or OIDC, `serve/src/auth.rs`). Argo: whoever may resume the workflow supplies the
/// decision; only with `approvals.require-signature: true` does `pbc runner gate` check
/// who (a signed statement from a listed approver, `runtime/src/approval_sig.rs`): the
/// cell is [`mechanism_in`]'s, given the configuration; without it, evidence errs on the
/// side of not claiming. LangGraph: `approvers()` lists who may decide; the host
/// records any decision (`decide()` checks no identity).
pub const APPROVERS: Row = Row {
    construct: Construct::Approvers,
    cells: [
        Some("engine decision rule (identity asserted by the local CLI)"),
        Some("engine decision rule on an authenticated identity"),
        None,
        None,
        None,
    ],
};

/// min-approvals. Local and serve: each person's approval is recorded once, and the one
/// that makes the number decides (`runtime/src/engine/votes.rs`). Argo: resuming a suspend
/// proves nobody, so `pbc runner gate` wants that many signed statements from distinct
/// listed approvers, with or without `require-signature`. LangGraph: `decide()` takes one
/// decision.
pub const MIN_APPROVALS: Row = Row {
    construct: Construct::MinApprovals,
    cells: [
        Some("engine counts distinct approvers (identities asserted by the local CLI)"),
        Some("engine counts distinct authenticated approvers"),
        Some("`pbc runner gate`: signed statements from that many distinct approvers"),
        None,
        None,
    ],
};

/// SLA. Local and serve: deadlines expire a pending question, never approving
/// (`runtime/src/engine/deadlines.rs`; serve applies them every second). Argo: the
/// suspend's `duration`, and the check fails an expired suspend. LangGraph: no timer.
pub const SLA: Row = Row {
    construct: Construct::Sla,
    cells: [
        Some("engine deadlines: expiry never approves"),
        Some("engine deadlines, applied every second"),
        Some("suspend `duration`; the check fails an expired gate"),
        None,
        None,
    ],
};

/// Escalation. Local and serve: deadlines move a question to its next level with more
/// approvers, notified. Argo: one suspend per level (`<stage>-escalation-N`), each opened
/// when the level before ended undecided. LangGraph: none.
pub const ESCALATION: Row = Row {
    construct: Construct::Escalation,
    cells: [
        Some("engine deadlines: next level, notified"),
        Some("engine deadlines: next level, notified"),
        Some("a suspend per escalation level"),
        None,
        None,
    ],
};

/// Guardrails. Local and serve: applied to a stage's input and output
/// (`runtime/src/guardrails.rs`). Argo: each task runs the stage with the same engine
/// (`pbc runner run`, unenforceable guardrails refused). LangGraph: the host's executors
/// run the stage; the loader applies none.
pub const GUARDRAIL: Row = Row {
    construct: Construct::Guardrail,
    cells: [
        Some("engine guardrails on input and output"),
        Some("engine guardrails on input and output"),
        Some("`pbc runner run`: the engine's guardrails"),
        None,
        None,
    ],
};

/// Policies. Local and serve: decided before the executor runs
/// (`runtime/src/engine/policy.rs`). Argo: the same engine in `pbc runner run`.
/// LangGraph: none.
pub const POLICY: Row = Row {
    construct: Construct::Policy,
    cells: [
        Some("engine policy decision before the executor runs"),
        Some("engine policy decision before the executor runs"),
        Some("`pbc runner run`: the engine's policy decision"),
        None,
        None,
    ],
};

/// Rate limits. Local and serve: counted in the state store across runs
/// (`runtime/src/engine/step.rs`). Argo: each task has its own state in the pod, so no
/// count spans runs, unless the configuration's `state:` names a PostgreSQL store the pods
/// share (then counted as locally: [`mechanism_in`]). LangGraph: none.
pub const RATE_LIMIT: Row = Row {
    construct: Construct::RateLimit,
    cells: [
        Some("state store counts across runs"),
        Some("state store counts across runs"),
        None,
        None,
        None,
    ],
};

/// Audit sinks. Local and serve: the outbox delivers audit records to the configured
/// sinks (`runtime/src/engine/delivery.rs`). Argo: `pbc runner run` delivers the stage's
/// records to the configured sinks. LangGraph: none.
pub const AUDIT_SINK: Row = Row {
    construct: Construct::AuditSink,
    cells: [
        Some("outbox delivery to the configured sinks"),
        Some("outbox delivery to the configured sinks"),
        Some("`pbc runner run` delivers to the configured sinks"),
        None,
        None,
    ],
};

/// Rollback. Local and serve: on failure, the undo steps of the completed stages run in
/// reverse order, once each (`runtime/src/engine/rollback.rs`). Argo: the exit handler's
/// `pbc runner rollback` runs them only with a shared PostgreSQL `state:` (without one it
/// lists them and fails): [`mechanism_in`]. LangGraph: none.
pub const ROLLBACK: Row = Row {
    construct: Construct::Rollback,
    cells: [
        Some("engine runs the undo steps on failure"),
        Some("engine runs the undo steps on failure"),
        None,
        None,
        None,
    ],
};

/// Risk. Local and serve: a `risk: high` stage is refused. Argo: a step that prints the
/// runbook and fails replaces the stage. LangGraph: a refused node (`refused:<id>`).
pub const RISK: Row = Row {
    construct: Construct::Risk,
    cells: [
        Some("engine refuses `risk: high`"),
        Some("engine refuses `risk: high`"),
        Some("a failing step replaces a `risk: high` stage"),
        Some("a refused node replaces a `risk: high` stage"),
        None,
    ],
};

/// The table, one row per construct in [`CONSTRUCTS`] order. Columns: local, serve, argo,
/// langgraph, crd.
pub const TABLE: &[Row] = &[
    GATE,
    APPROVERS,
    MIN_APPROVALS,
    SLA,
    ESCALATION,
    GUARDRAIL,
    POLICY,
    RATE_LIMIT,
    AUDIT_SINK,
    ROLLBACK,
    RISK,
];

/// How `target` enforces `construct` (`None`: it does not).
pub fn mechanism(construct: Construct, target: Target) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|r| r.construct == construct)
        .and_then(|r| r.cells.get(target.column()).copied().flatten())
}

/// The executing targets among `targets` that do not enforce `construct`.
pub fn unenforced(construct: Construct, targets: &[Target]) -> Vec<Target> {
    targets
        .iter()
        .copied()
        .filter(|t| t.executes() && mechanism(construct, *t).is_none())
        .collect()
}

/// What the configuration says about the deployment, beyond `targets.emit`: the facts some
/// cells of the table depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deployment {
    /// `state:` names a PostgreSQL store, which the runner pods share.
    pub shared_state: bool,
    /// `approvals.require-signature: true`: a gate passes only on a signed statement.
    pub signed_approvals: bool,
}

impl Deployment {
    /// The facts `cfg` states.
    pub fn from_config(cfg: &crate::config::Config) -> Deployment {
        Deployment {
            shared_state: cfg
                .state
                .as_deref()
                .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://")),
            signed_approvals: cfg.approvals.require_signature,
        }
    }
}

/// How `target` enforces `construct` in deployment `d`: [`mechanism`], plus what the Argo
/// runner enforces given a shared store or signed approvals.
pub fn mechanism_in(construct: Construct, target: Target, d: Deployment) -> Option<&'static str> {
    match (construct, target) {
        (Construct::Approvers, Target::Argo) if d.signed_approvals => {
            Some("`pbc runner gate`: a signed statement from a listed approver")
        }
        (Construct::RateLimit, Target::Argo) if d.shared_state => {
            Some("`pbc runner run` counts in the shared PostgreSQL store")
        }
        (Construct::Rollback, Target::Argo) if d.shared_state => {
            Some("the exit handler's `pbc runner rollback` runs the undo steps")
        }
        _ => mechanism(construct, target),
    }
}

/// The executing targets among `targets` that do not enforce `construct` in deployment `d`.
pub fn unenforced_in(construct: Construct, targets: &[Target], d: Deployment) -> Vec<Target> {
    targets
        .iter()
        .copied()
        .filter(|t| t.executes() && mechanism_in(construct, *t, d).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_construct_in_order() {
        let rows: Vec<Construct> = TABLE.iter().map(|r| r.construct).collect();
        assert_eq!(rows, CONSTRUCTS);
    }

    #[test]
    fn the_crd_executes_and_enforces_nothing() {
        assert!(TABLE.iter().all(|r| r.cells[4].is_none()));
        assert!(unenforced(Construct::Gate, &[Target::Crd]).is_empty());
    }

    #[test]
    fn lookups() {
        assert_eq!(Target::parse("argo"), Some(Target::Argo));
        assert_eq!(Target::parse("kubernetes"), None);
        assert!(mechanism(Construct::Rollback, Target::Argo).is_none());
        assert!(mechanism(Construct::Rollback, Target::Local).is_some());
        assert_eq!(
            unenforced(Construct::Approvers, TARGETS),
            vec![Target::Argo, Target::Langgraph]
        );
    }

    #[test]
    fn the_argo_runner_enforces_more_with_a_shared_store_and_signed_approvals() {
        let none = Deployment::default();
        let shared = Deployment {
            shared_state: true,
            ..none
        };
        let signed = Deployment {
            signed_approvals: true,
            ..none
        };
        for c in [Construct::RateLimit, Construct::Rollback] {
            assert!(mechanism_in(c, Target::Argo, none).is_none());
            assert!(mechanism_in(c, Target::Argo, shared).is_some());
            assert!(mechanism_in(c, Target::Argo, signed).is_none());
            assert!(mechanism_in(c, Target::Langgraph, shared).is_none());
        }
        assert!(mechanism_in(Construct::Approvers, Target::Argo, shared).is_none());
        assert!(mechanism_in(Construct::Approvers, Target::Argo, signed).is_some());
        assert_eq!(
            unenforced_in(Construct::Approvers, TARGETS, signed),
            vec![Target::Langgraph]
        );
    }
}
