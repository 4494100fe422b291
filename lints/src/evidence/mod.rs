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
use pbc_compiler::config::{Applicability, Config};
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::enforcement::{Construct, TARGETS, Target};
use pbc_compiler::load::Loader;
use pbc_compiler::model::AuditLog;
use pbc_compiler::span::Span;
use pbc_compiler::yaml::Node;
use std::sync::OnceLock;

mod eval;
mod kind;
mod kinds_monitoring;
mod kinds_ops;
mod kinds_rollback;
mod outcome;
pub use eval::{evaluate, evaluate_missing};
pub use kind::{EvidenceKind, KINDS, SECURITY_SIGNALS, security_signal};
pub use outcome::{Found, Missing, Outcome, Scope, Supply};

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
    /// `targets.emit`: the targets the playbooks are deployed through (default all).
    pub targets: Vec<Target>,
    /// What the configuration says about the deployment (a shared store, signed
    /// approvals): cells of the enforcement table depend on it.
    pub deployment: pbc_compiler::enforcement::Deployment,
    /// `compliance.applicability`: the Statement of Applicability.
    pub applicability: Vec<Applicability>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            production_environments: vec!["production".into(), "prod".into()],
            min_audit_retention: None,
            audit_sinks: Vec::new(),
            always_on_policies: Vec::new(),
            targets: TARGETS.to_vec(),
            deployment: Default::default(),
            applicability: Vec::new(),
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
            targets: cfg.targets.emit.clone(),
            deployment: pbc_compiler::enforcement::Deployment::from_config(cfg),
            applicability: cfg.applicability.clone(),
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
    include_str!("../../rules/evidence.yaml"),
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
