//! Evidence rules: which observable facts of a resolved playbook back a claimed control.
//!
//! A rule is data (`lints/rules/evidence.yaml`, or an organisation's file of the same shape):
//! a control tag, the kinds of evidence it requires, and a rationale in plain words that a
//! reviewer can challenge. Each [`EvidenceKind`] is evaluated over [`PlaybookFacts`] for a
//! claim at playbook level (the whole playbook) or at stage level (that stage, plus the
//! playbook-wide settings such as audit sinks). The result lists the evidence found and what
//! is missing, each with the span it refers to.

use crate::catalog::Catalogs;
use crate::data::Reader;
use crate::facts::{ApproverKind, Duration, Gate, PlaybookFacts, Risk, StageFacts};
use crate::tags::{Resolved, resolve};
use pbc_compiler::config::Config;
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::load::Loader;
use pbc_compiler::model::{AuditLog, OnFailure};
use pbc_compiler::span::Span;
use pbc_compiler::yaml::Node;
use std::sync::OnceLock;

declare_codes! {
    /// An evidence rules file is not valid.
    ///
    /// Evidence rules are YAML (`lints/rules/evidence.yaml` is pbc's own):
    ///
    /// ```yaml
    /// rules:
    ///   - control: SOC2-CC8.1
    ///     requires: [human-gate, production-action-gates, audit-log, audit-sink]
    ///     rationale: >-
    ///       Why these facts show the control operates, in words a reviewer can challenge.
    /// ```
    ///
    /// `control` is a control tag of a loaded catalog; `requires` lists evidence kinds
    /// (`pbc explain PB5005` lists them all); `rationale` is required. A rule for a control
    /// that already has one replaces it; two rules for the same control in one file are an
    /// error.
    PB5011 EVIDENCE_RULES_INVALID "evidence-rules-invalid" Error "an evidence rules file is not valid";
}

/// A kind of evidence observable in a resolved playbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvidenceKind {
    /// `spec.audit.log-to` names at least one sink that the configuration defines
    /// (`audit-sinks:`); a name it does not define sends nothing anywhere.
    AuditSink,
    /// Playbook: every stage with a human gate has `audit-log: required`, and at least one
    /// stage has it. Stage: the stage has `audit-log: required`.
    AuditLog,
    /// `spec.audit.retention` is set, is a duration, and is at least the organisation's
    /// configured minimum.
    AuditRetention,
    /// Playbook: at least one gate with named approvers (a stage's, or `spec.approvers` of a
    /// `medium`-risk playbook). Stage: the stage has a gate with named approvers.
    HumanGate,
    /// In a production environment: a gate with named approvers before every `action:` stage
    /// (stage: before this one, if it is an action). Outside production: not required.
    ProductionActionGates,
    /// Every gate names at least one role (not only individuals), and there is a gate.
    RoleApprovers,
    /// Every human gate has an `sla` and an `on-pending` notification.
    GateSla,
    /// `spec.rollback.on-failure` is set and is not `none`.
    RollbackOnFailure,
    /// `spec.rollback.notification` names at least one channel.
    FailureNotification,
    /// `spec.rollback.on-failure: revert-to-previous`, and every `action:` stage recorded as
    /// changing state (`audit-log: required`) has a `rollback` step (stage: this action).
    RevertToPrevious,
    /// `spec.monitoring.alerts` has at least one alert, and every alert notifies someone.
    MonitoringAlerts,
}

/// Every evidence kind, in documentation order.
pub const KINDS: &[EvidenceKind] = &[
    EvidenceKind::AuditSink,
    EvidenceKind::AuditLog,
    EvidenceKind::AuditRetention,
    EvidenceKind::HumanGate,
    EvidenceKind::ProductionActionGates,
    EvidenceKind::RoleApprovers,
    EvidenceKind::GateSla,
    EvidenceKind::RollbackOnFailure,
    EvidenceKind::FailureNotification,
    EvidenceKind::RevertToPrevious,
    EvidenceKind::MonitoringAlerts,
];

impl EvidenceKind {
    /// The name used in rule files and reports.
    pub fn name(self) -> &'static str {
        match self {
            EvidenceKind::AuditSink => "audit-sink",
            EvidenceKind::AuditLog => "audit-log",
            EvidenceKind::AuditRetention => "audit-retention",
            EvidenceKind::HumanGate => "human-gate",
            EvidenceKind::ProductionActionGates => "production-action-gates",
            EvidenceKind::RoleApprovers => "role-approvers",
            EvidenceKind::GateSla => "gate-sla",
            EvidenceKind::RollbackOnFailure => "rollback-on-failure",
            EvidenceKind::FailureNotification => "failure-notification",
            EvidenceKind::RevertToPrevious => "revert-to-previous",
            EvidenceKind::MonitoringAlerts => "monitoring-alerts",
        }
    }

    /// The kind with this name.
    pub fn parse(s: &str) -> Option<EvidenceKind> {
        KINDS.iter().copied().find(|k| k.name() == s)
    }

    /// What the kind requires, in one line.
    pub fn describe(self) -> &'static str {
        match self {
            EvidenceKind::AuditSink => {
                "`spec.audit.log-to` names at least one audit sink that `audit-sinks:` in .pbc.yaml defines"
            }
            EvidenceKind::AuditLog => {
                "every stage with a human gate has `audit-log: required` (a stage claim: that stage)"
            }
            EvidenceKind::AuditRetention => {
                "`spec.audit.retention` is set and at least the organisation's minimum"
            }
            EvidenceKind::HumanGate => "a gate with named approvers (a stage claim: on that stage)",
            EvidenceKind::ProductionActionGates => {
                "in a production environment, a gate with named approvers before every `action:` stage"
            }
            EvidenceKind::RoleApprovers => "every gate names at least one approver role",
            EvidenceKind::GateSla => {
                "every human gate has an `sla` and an `on-pending` notification"
            }
            EvidenceKind::RollbackOnFailure => "`spec.rollback.on-failure` is set and not `none`",
            EvidenceKind::FailureNotification => {
                "`spec.rollback.notification` names at least one channel"
            }
            EvidenceKind::RevertToPrevious => {
                "`on-failure: revert-to-previous` and a `rollback` step on every audited `action:` stage"
            }
            EvidenceKind::MonitoringAlerts => {
                "`spec.monitoring.alerts` has at least one alert, each with `notify`"
            }
        }
    }
}

/// Settings from the organisation's configuration that evidence depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Environment names treated as production (default `[production, prod]`).
    pub production_environments: Vec<String>,
    /// The minimum `audit.retention` (`None`: any declared retention).
    pub min_audit_retention: Option<Duration>,
    /// The audit sink names the configuration defines (`audit-sinks:`); only these are
    /// evidence.
    pub audit_sinks: Vec<String>,
    /// `always-on-policies:`: policies evaluated before every action stage.
    pub always_on_policies: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            production_environments: vec!["production".into(), "prod".into()],
            min_audit_retention: None,
            audit_sinks: Vec::new(),
            always_on_policies: Vec::new(),
        }
    }
}

impl Settings {
    /// The settings a configuration holds (production environments, the minimum
    /// retention, the defined audit sinks).
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            production_environments: cfg.production_environments.clone(),
            min_audit_retention: cfg.audit_retention_minimum,
            audit_sinks: cfg.audit_sinks.keys().cloned().collect(),
            always_on_policies: cfg
                .always_on_policies
                .iter()
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }

    /// True if `env` is a production environment.
    pub fn is_production(&self, env: Option<&str>) -> bool {
        env.is_some_and(|e| self.production_environments.iter().any(|p| p == e))
    }
}

/// One evidence rule: a control and what backs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceRule {
    /// The control tag as written in the rule file.
    pub control: String,
    /// The catalog and control id it resolves to.
    pub catalog: String,
    pub control_id: String,
    pub requires: Vec<EvidenceKind>,
    pub rationale: String,
    /// Where the rule is defined (in the rule file's source map).
    pub span: Span,
}

/// The evidence rules known to one invocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvidenceRules {
    pub rules: Vec<EvidenceRule>,
}

/// pbc's own rules file.
pub const BUILTIN_RULES: (&str, &str) = (
    "<builtin>/rules/evidence.yaml",
    include_str!("../rules/evidence.yaml"),
);

impl EvidenceRules {
    /// The built-in rules (parsed once per process).
    pub fn builtin() -> &'static EvidenceRules {
        static CELL: OnceLock<EvidenceRules> = OnceLock::new();
        CELL.get_or_init(|| {
            let (rules, diags) = EvidenceRules::parse_builtin(Catalogs::builtin());
            // The embedded file is tested; a problem here is a bug in pbc, not in the input.
            assert!(
                diags.is_empty(),
                "built-in evidence rules are invalid: {diags:?}"
            );
            rules
        })
    }

    /// Parses the embedded rules file (exposed for tests).
    pub fn parse_builtin(cats: &Catalogs) -> (EvidenceRules, Vec<Diagnostic>) {
        let loader = crate::catalog::builtin_loader();
        let mut rules = EvidenceRules::default();
        let mut diags = Vec::new();
        rules.load_text(&loader, cats, BUILTIN_RULES.0, BUILTIN_RULES.1, &mut diags);
        (rules, diags)
    }

    /// The rule for a control.
    pub fn get(&self, catalog: &str, control: &str) -> Option<&EvidenceRule> {
        self.rules
            .iter()
            .find(|r| r.catalog == catalog && r.control_id == control)
    }

    /// Parses a rules file's text through `loader` and adds its rules (a rule replaces an
    /// earlier one for the same control).
    pub fn load_text(
        &mut self,
        loader: &Loader,
        cats: &Catalogs,
        display: &str,
        text: &str,
        diags: &mut Vec<Diagnostic>,
    ) {
        let loaded = loader.load_text(display, text);
        diags.extend(loaded.diags.iter().cloned());
        if loaded.has_errors() {
            return;
        }
        if let Some(doc) = loaded.docs.first() {
            self.read(&doc.root, cats, diags);
        }
    }

    /// Loads a rules file from disk through `loader`.
    pub fn load_file(
        &mut self,
        loader: &Loader,
        cats: &Catalogs,
        path: &std::path::Path,
        diags: &mut Vec<Diagnostic>,
    ) -> Result<(), pbc_compiler::load::LoadError> {
        let loaded = loader.load(path)?;
        diags.extend(loaded.diags.iter().cloned());
        if !loaded.has_errors()
            && let Some(doc) = loaded.docs.first()
        {
            self.read(&doc.root, cats, diags);
        }
        Ok(())
    }

    /// Reads a rules document.
    pub fn read(&mut self, root: &Node, cats: &Catalogs, diags: &mut Vec<Diagnostic>) {
        let mut r = Reader::new(&EVIDENCE_RULES_INVALID, diags);
        let Some(fields) = r.fields(root, "an evidence rules file", &["rules"]) else {
            return;
        };
        let mut here: Vec<EvidenceRule> = Vec::new();
        for (_, v, _) in fields {
            let Some(items) = v.as_seq() else {
                r.error(
                    v.span,
                    format!("`rules` must be a list, found {}", v.type_name()),
                );
                continue;
            };
            for item in items {
                if let Some(rule) = read_rule(&mut r, item, cats) {
                    if let Some(prev) = here
                        .iter()
                        .find(|p| p.catalog == rule.catalog && p.control_id == rule.control_id)
                    {
                        let prev_span = prev.span;
                        r.diags.push(
                            Diagnostic::new(
                                &EVIDENCE_RULES_INVALID,
                                rule.span,
                                format!("a second rule for `{}`", rule.control),
                            )
                            .with_label(prev_span, "the first rule for it"),
                        );
                        r.errors += 1;
                        continue;
                    }
                    here.push(rule);
                }
            }
        }
        for rule in here {
            self.rules
                .retain(|p| !(p.catalog == rule.catalog && p.control_id == rule.control_id));
            self.rules.push(rule);
        }
    }
}

/// Reads one rule; a rule with any problem is dropped whole (a rule that silently requires
/// less than it says would be worse than none).
fn read_rule(r: &mut Reader<'_>, item: &Node, cats: &Catalogs) -> Option<EvidenceRule> {
    let errors_before = r.errors;
    let fields = r.fields(item, "a rule", &["control", "requires", "rationale"])?;
    let mut control = None;
    let mut requires = Vec::new();
    let mut rationale = None;
    for (k, v, _) in fields {
        match k {
            "control" => control = r.text(v, "`control`").map(|t| (t, v.span)),
            "requires" => {
                for (name, span) in r.text_list(v, "`requires`").unwrap_or_default() {
                    match EvidenceKind::parse(&name) {
                        Some(k) if !requires.contains(&k) => requires.push(k),
                        Some(_) => r.error(span, format!("`{name}` is listed twice")),
                        None => {
                            let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
                            let help = match pbc_compiler::diag::did_you_mean(
                                &name,
                                names.iter().copied(),
                            ) {
                                Some(s) => format!(
                                    "did you mean `{s}`? evidence kinds: {}",
                                    pbc_compiler::diag::one_of(&names)
                                ),
                                None => format!(
                                    "evidence kinds: {}",
                                    pbc_compiler::diag::one_of(&names)
                                ),
                            };
                            r.error_help(span, format!("unknown evidence kind `{name}`"), help);
                        }
                    }
                }
            }
            "rationale" => rationale = r.text(v, "`rationale`"),
            _ => {}
        }
    }
    let Some((control, cspan)) = control else {
        r.error(item.span, "a rule needs a `control`");
        return None;
    };
    let Some(rationale) = rationale else {
        r.error(
            cspan,
            format!("the rule for `{control}` has no `rationale`: say why its evidence shows the control operates"),
        );
        return None;
    };
    if requires.is_empty() {
        r.error(
            cspan,
            format!(
                "the rule for `{control}` requires no evidence (`requires` is empty or missing)"
            ),
        );
        return None;
    }
    match resolve(cats, &control) {
        Resolved::Control { .. } if r.errors > errors_before => None,
        Resolved::Control {
            catalog,
            control: c,
        } => Some(EvidenceRule {
            catalog: catalog.id.clone(),
            control_id: c.id.clone(),
            control,
            requires,
            rationale: rationale.split_whitespace().collect::<Vec<_>>().join(" "),
            span: cspan,
        }),
        _ => {
            r.error(
                cspan,
                format!("`{control}` is not a control of any loaded catalog"),
            );
            None
        }
    }
}

/// What a claim covers: the whole playbook, or one stage (by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Playbook,
    Stage(usize),
}

/// One piece of evidence found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: EvidenceKind,
    /// What was found (`audit sink \`langfuse\``).
    pub what: String,
    /// Where (`None` for a note such as "not a production environment").
    pub span: Option<Span>,
}

/// One piece of evidence missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub kind: EvidenceKind,
    /// What is missing, as a phrase (`a gate with named approvers before action stage …`).
    pub what: String,
    /// Where to add it.
    pub at: Span,
    /// What to write there.
    pub hint: String,
}

/// The evaluation of one rule for one claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub found: Vec<Found>,
    pub missing: Vec<Missing>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Evaluates every requirement of a rule.
pub fn evaluate(
    rule: &EvidenceRule,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
) -> Outcome {
    evaluate_with(rule, pb, scope, settings, true)
}

/// [`evaluate`] without describing the evidence found ([`Outcome::found`] stays empty):
/// what `check` needs.
pub fn evaluate_missing(
    rule: &EvidenceRule,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
) -> Outcome {
    evaluate_with(rule, pb, scope, settings, false)
}

fn evaluate_with(
    rule: &EvidenceRule,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
    describe: bool,
) -> Outcome {
    let mut out = Outcome::default();
    for k in &rule.requires {
        eval_kind(*k, pb, scope, settings, describe, &mut out);
    }
    out
}

struct Ctx<'a> {
    kind: EvidenceKind,
    out: &'a mut Outcome,
    /// Whether to describe the evidence found (coverage reports do; `check` needs only
    /// what is missing).
    describe: bool,
}

impl Ctx<'_> {
    fn found<S: Into<String>>(&mut self, what: impl FnOnce() -> S, span: Option<Span>) {
        if !self.describe {
            return;
        }
        self.out.found.push(Found {
            kind: self.kind,
            what: what().into(),
            span,
        });
    }
    fn missing(&mut self, what: impl Into<String>, at: Span, hint: impl Into<String>) {
        self.out.missing.push(Missing {
            kind: self.kind,
            what: what.into(),
            at,
            hint: hint.into(),
        });
    }
}

/// The stages a scope covers.
fn stages_in(pb: &PlaybookFacts, scope: Scope) -> Vec<&StageFacts> {
    match scope {
        Scope::Playbook => pb.stages.iter().collect(),
        Scope::Stage(i) => pb.stages.get(i).into_iter().collect(),
    }
}

fn has_people_gate(g: &Gate<'_>) -> bool {
    matches!(g, Gate::People { .. })
}

fn approver_list(g: &Gate<'_>) -> String {
    match g {
        Gate::People { approvers, .. } => approvers
            .iter()
            .map(|a| match a.kind {
                ApproverKind::Role => format!("role `{}`", a.name),
                ApproverKind::User => format!("`{}`", a.name),
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// The playbook-level gate of a `medium`-risk playbook (`spec.approvers`), if it names people.
fn playbook_gate(pb: &PlaybookFacts) -> Option<Span> {
    let Some(r) = &pb.risk else {
        return None;
    };
    let (risk, span) = (r.value, r.span);
    if risk == Risk::Medium && !pb.approvers.is_empty() {
        Some(span)
    } else {
        None
    }
}

/// How to get an audit sink: name a defined one, or define one first.
fn audit_sink_hint(defined: &[String]) -> String {
    if defined.is_empty() {
        return "define a sink under `audit-sinks:` in .pbc.yaml (e.g. `trail: {file: .pbc/audit/trail.jsonl}`) and name it in `spec.audit.log-to`".into();
    }
    format!(
        "name in `spec.audit.log-to` a sink that `audit-sinks:` in .pbc.yaml defines: {}",
        pbc_compiler::diag::one_of(defined)
    )
}

fn eval_kind(
    kind: EvidenceKind,
    pb: &PlaybookFacts,
    scope: Scope,
    settings: &Settings,
    describe: bool,
    out: &mut Outcome,
) {
    let mut c = Ctx {
        kind,
        out,
        describe,
    };
    let stages = stages_in(pb, scope);
    let spec = pb.spec_anchor();
    match kind {
        EvidenceKind::AuditSink => {
            // Only a sink the configuration defines receives anything.
            let configured: Vec<_> = pb
                .audit_sinks
                .iter()
                .filter(|s| settings.audit_sinks.contains(&s.value))
                .collect();
            if configured.is_empty() {
                let at = pb.audit_log_to_key.or(pb.audit_key).unwrap_or(spec);
                let what = if pb.audit_sinks.is_empty() {
                    "an audit sink (`spec.audit.log-to`)"
                } else {
                    "a configured audit sink (`spec.audit.log-to` names none that `audit-sinks:` defines)"
                };
                c.missing(what, at, audit_sink_hint(&settings.audit_sinks));
            }
            for s in configured {
                c.found(|| format!("audit sink `{}`", s.value), Some(s.span));
            }
        }
        EvidenceKind::AuditLog => {
            let gated: Vec<&StageFacts> = match scope {
                Scope::Playbook => stages
                    .iter()
                    .copied()
                    .filter(|s| has_people_gate(&s.gate(pb)))
                    .collect(),
                Scope::Stage(_) => stages.clone(),
            };
            for s in &gated {
                match &s.audit_log {
                    Some(a) if a.value == AuditLog::Required => {
                        c.found(|| format!("`audit-log: required` on stage `{}`", s.name), Some(a.span))
                    }
                    other => c.missing(
                        format!("`audit-log: required` on stage `{}`", s.name),
                        other.as_ref().map(|a| a.span).unwrap_or(s.name_span),
                        format!("set `audit-log: required` on stage `{}`", s.name),
                    ),
                }
            }
            if scope == Scope::Playbook {
                let any: Vec<&StageFacts> = stages
                    .iter()
                    .copied()
                    .filter(|s| s.audit_log_required())
                    .collect();
                if any.is_empty() && gated.is_empty() {
                    c.missing(
                        "a stage with `audit-log: required`",
                        pb.stages_key.unwrap_or(spec),
                        "set `audit-log: required` on the stages whose decisions or effects must be on record",
                    );
                } else if gated.is_empty() {
                    for s in any {
                        if let Some(a) = &s.audit_log {
                            c.found(||
                                format!("`audit-log: required` on stage `{}`", s.name),
                                Some(a.span),
                            );
                        }
                    }
                }
            }
        }
        EvidenceKind::AuditRetention => match &pb.retention {
            None => c.missing(
                "an audit retention (`spec.audit.retention`)",
                pb.audit_key.unwrap_or(spec),
                match settings.min_audit_retention {
                    Some(m) => format!("add `retention: {m}` (or longer) under `spec.audit`"),
                    None => "add `retention: DURATION` (e.g. `365d`) under `spec.audit`".into(),
                },
            ),
            Some(r) => match settings.min_audit_retention {
                Some(min) if r.value < min => c.missing(
                    format!("a retention of at least {min} (it is {})", r.value),
                    r.span,
                    format!("raise the retention to at least `{min}`, the organisation's minimum"),
                ),
                Some(min) => c.found(||
                    format!("audit retention {} (minimum {min})", r.value),
                    Some(r.span),
                ),
                None => c.found(|| format!("audit retention {}", r.value), Some(r.span)),
            },
        },
        EvidenceKind::HumanGate => {
            let mut any = false;
            for s in &stages {
                let g = s.gate(pb);
                if let Gate::People { complete: true, .. } = g {
                    any = true;
                    c.found(||
                        format!("gate on stage `{}` approved by {}", s.name, approver_list(&g)),
                        Some(s.approval_span.unwrap_or(s.name_span)),
                    );
                }
            }
            if scope == Scope::Playbook
                && let Some(span) = playbook_gate(pb)
            {
                any = true;
                c.found(||
                    "approval of the `medium`-risk playbook by `spec.approvers`",
                    Some(span),
                );
            }
            if !any {
                let (what, at) = match scope {
                    Scope::Stage(_) => (
                        format!(
                            "a gate with named approvers on stage `{}`",
                            stages.first().map(|s| s.name.as_str()).unwrap_or("")
                        ),
                        stages.first().map(|s| s.name_span).unwrap_or(spec),
                    ),
                    Scope::Playbook => (
                        "a gate with named approvers on some stage".to_string(),
                        pb.stages_key.unwrap_or(spec),
                    ),
                };
                c.missing(
                    what,
                    at,
                    "add `approval: manual` (or `conditional`) with `approvers:` to the stage whose outcome a person must sign off",
                );
            }
        }
        EvidenceKind::ProductionActionGates => {
            if !pb.production {
                let note = match &pb.environment {
                    Some(e) => format!("not required: `{e}` is not a production environment"),
                    None => "not required: no environment (not under `overlays/`)".to_string(),
                };
                c.found(|| note, None);
                return;
            }
            let env = pb.environment.as_deref().unwrap_or("");
            let mut actions = 0;
            for s in stages.iter().filter(|s| s.is_action()) {
                actions += 1;
                match s.gate(pb) {
                    Gate::Refused => c.found(||
                        format!("{} is `high` risk: refused, never executed", s.describe()),
                        Some(s.name_span),
                    ),
                    g @ Gate::People { complete: true, .. } => c.found(||
                        format!("{} gated, approved by {}", s.describe(), approver_list(&g)),
                        Some(s.approval_span.unwrap_or(s.name_span)),
                    ),
                    _ => {
                        if let Some(span) = playbook_gate(pb) {
                            c.found(||
                                format!(
                                    "{} runs after the playbook's approval by `spec.approvers`",
                                    s.describe()
                                ),
                                Some(span),
                            );
                        } else {
                            c.missing(
                                format!(
                                    "a gate with named approvers before {} in production environment `{env}`",
                                    s.describe()
                                ),
                                s.approval_span.unwrap_or(s.name_span),
                                format!(
                                    "give stage `{}` `approval: manual` and `approvers:` (in the `{env}` overlay or the base)",
                                    s.name
                                ),
                            );
                        }
                    }
                }
            }
            if actions == 0 {
                c.found(||
                    format!("no `action:` stage to gate in production environment `{env}`"),
                    None,
                );
            }
        }
        EvidenceKind::RoleApprovers => {
            let mut gates = 0;
            for s in &stages {
                let g = s.gate(pb);
                let Gate::People { approvers, .. } = &g else {
                    continue;
                };
                gates += 1;
                if approvers.is_empty() {
                    c.missing(
                        format!("approvers on the gate of stage `{}` (it names nobody)", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!("add `approvers: [{{role: ROLE}}]` to stage `{}`", s.name),
                    );
                } else if let Some(role) = approvers.iter().find(|a| a.kind == ApproverKind::Role) {
                    c.found(||
                        format!("stage `{}` is approved by role `{}`", s.name, role.name),
                        Some(role.span),
                    );
                } else {
                    c.missing(
                        format!("an approver role on the gate of stage `{}`", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!(
                            "name a role (`- role: ROLE`) among the approvers of stage `{}`, not only people",
                            s.name
                        ),
                    );
                }
            }
            if gates == 0 {
                let (what, at) = match scope {
                    Scope::Stage(_) => (
                        format!(
                            "a gate with approver roles on stage `{}`",
                            stages.first().map(|s| s.name.as_str()).unwrap_or("")
                        ),
                        stages.first().map(|s| s.name_span).unwrap_or(spec),
                    ),
                    Scope::Playbook => (
                        "a gate with approver roles".to_string(),
                        pb.stages_key.unwrap_or(spec),
                    ),
                };
                c.missing(
                    what,
                    at,
                    "add `approval: manual` with `approvers: [{role: ROLE}]` where access is granted or used",
                );
            }
        }
        EvidenceKind::GateSla => {
            let mut gates = 0;
            for s in &stages {
                if !has_people_gate(&s.gate(pb)) {
                    continue;
                }
                gates += 1;
                match &s.sla {
                    Some(sla) => c.found(|| format!("stage `{}` has SLA {}", s.name, sla.value), Some(sla.span)),
                    None => c.missing(
                        format!("an `sla` on the gate of stage `{}`", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!("set `sla:` (e.g. `4h`) on stage `{}`", s.name),
                    ),
                }
                match s.on_pending.first() {
                    Some(ch) => c.found(||
                        format!("stage `{}` notifies `{}` when pending", s.name, ch.value),
                        Some(ch.span),
                    ),
                    None => c.missing(
                        format!("an `on-pending` notification on stage `{}`", s.name),
                        s.approval_span.unwrap_or(s.name_span),
                        format!(
                            "add `notification: {{on-pending: [CHANNEL]}}` to stage `{}`",
                            s.name
                        ),
                    ),
                }
            }
            if gates == 0 {
                c.found(|| "no human gate waits for a decision", None);
            }
        }
        EvidenceKind::RollbackOnFailure => match &pb.on_failure {
            Some(f) if f.value != OnFailure::DoNothing => {
                c.found(|| format!("`on-failure: {}`", f.value), Some(f.span))
            }
            Some(f) => c.missing(
                "a rollback on failure (`on-failure` is `none`)",
                f.span,
                "set `on-failure: revert-to-previous` (or `notify-only`)",
            ),
            None => c.missing(
                "a rollback on failure (`spec.rollback.on-failure`)",
                pb.rollback_key.unwrap_or(spec),
                "add `rollback: {on-failure: revert-to-previous, notification: [CHANNEL]}` under `spec`",
            ),
        },
        EvidenceKind::FailureNotification => {
            if pb.rollback_notification.is_empty() {
                c.missing(
                    "a failure notification (`spec.rollback.notification`)",
                    pb.rollback_key.unwrap_or(spec),
                    "add `notification: [CHANNEL]` under `spec.rollback`",
                );
            }
            for n in &pb.rollback_notification {
                c.found(|| format!("failures notify `{}`", n.value), Some(n.span));
            }
        }
        EvidenceKind::RevertToPrevious => {
            match &pb.on_failure {
                Some(f) if f.value == OnFailure::RevertToPrevious => {
                    c.found(|| "`on-failure: revert-to-previous`", Some(f.span))
                }
                Some(f) => c.missing(
                    format!("`on-failure: revert-to-previous` (it is `{}`)", f.value),
                    f.span,
                    "set `on-failure: revert-to-previous`",
                ),
                None => c.missing(
                    "`spec.rollback.on-failure: revert-to-previous`",
                    pb.rollback_key.unwrap_or(spec),
                    "add `rollback: {on-failure: revert-to-previous}` under `spec`",
                ),
            }
            for s in stages.iter().filter(|s| {
                s.is_action() && (scope != Scope::Playbook || s.audit_log_required())
            }) {
                match s.rollback_step {
                    Some(span) => c.found(|| format!("{} has a `rollback` step", s.describe()), Some(span)),
                    None => c.missing(
                        format!("a `rollback` step on {}", s.describe()),
                        s.name_span,
                        format!(
                            "add `rollback: {{action: LAYER:FUNCTION, params: …}}` to stage `{}`",
                            s.name
                        ),
                    ),
                }
            }
        }
        EvidenceKind::MonitoringAlerts => {
            if pb.alerts.is_empty() {
                c.missing(
                    "a monitoring alert (`spec.monitoring.alerts`)",
                    pb.monitoring_key.unwrap_or(spec),
                    "add `monitoring: {alerts: [{condition: METRIC > VALUE, notify: [CHANNEL]}]}` under `spec`",
                );
            }
            for a in &pb.alerts {
                let cond = &a.condition.value;
                match a.notify.first() {
                    Some(n) => c.found(||
                        format!("alert `{cond}` notifies `{}`", n.value),
                        Some(a.condition.span),
                    ),
                    None => c.missing(
                        format!("a `notify` channel on alert `{cond}`"),
                        a.span,
                        "add `notify: [CHANNEL]` to the alert",
                    ),
                }
            }
        }
    }
}
