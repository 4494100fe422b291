//! pbc-lints: compliance for `agenticops/v1` playbooks.
//!
//! - [`catalog`]: the control catalogs as data (SOC 2 TSC, ISO/IEC 27001:2013 and 2022 Annex A
//!   with the 2013 → 2022 correspondence), and an organisation's own.
//! - [`tags`]: what a compliance tag names.
//! - [`rules`]: the lints, one rule per file (`PB5001`–`PB5005`).
//! - [`evidence`]: evidence rules as data, evaluated over [`facts`] of a resolved playbook.
//! - [`coverage`]: the control-coverage report and its renderers (markdown, json, csv, html).
//!
//! [`Compliance`] bundles the catalogs, the evidence rules and the organisation's settings;
//! [`extra_check`] plugs the lints into `pbc check`.

pub mod catalog;
pub mod coverage;
pub mod crosswalk;
mod data;
pub mod evidence;
pub mod facts;
pub mod rules;
pub mod tags;

use catalog::Catalogs;
use evidence::{EvidenceRules, Settings};
use facts::PlaybookFacts;
use pbc_compiler::check::PlaybookCtx;
use pbc_compiler::config::Config;
use pbc_compiler::diag::{Code, Diagnostic};
use pbc_compiler::model::Playbook;
use std::sync::{Arc, OnceLock};

pub use rules::codes;

/// Catalogs, evidence rules and settings: everything the compliance lints and the coverage
/// report depend on.
#[derive(Clone, Debug)]
pub struct Compliance {
    pub catalogs: Arc<Catalogs>,
    pub rules: Arc<EvidenceRules>,
    pub settings: Settings,
}

impl Compliance {
    /// pbc's built-in catalogs and evidence rules, with the given settings.
    pub fn builtin(settings: Settings) -> Compliance {
        static CATS: OnceLock<Arc<Catalogs>> = OnceLock::new();
        static RULES: OnceLock<Arc<EvidenceRules>> = OnceLock::new();
        Compliance {
            catalogs: CATS
                .get_or_init(|| Arc::new(Catalogs::builtin().clone()))
                .clone(),
            rules: RULES
                .get_or_init(|| Arc::new(EvidenceRules::builtin().clone()))
                .clone(),
            settings,
        }
    }

    /// The built-ins plus the organisation's catalogs and evidence rules named in the
    /// configuration (`catalogs`, `evidence-rules`), with its settings. Problems in those
    /// files (and files that cannot be read) are diagnostics.
    pub fn load(
        cfg: &Config,
        loader: &pbc_compiler::load::Loader,
        diags: &mut Vec<Diagnostic>,
    ) -> Compliance {
        let mut c = Compliance::from_config(cfg);
        if cfg.catalogs.is_empty() && cfg.evidence_rules.is_empty() {
            c.check_applicability(diags);
            return c;
        }
        let mut cats = (*c.catalogs).clone();
        // Files the configuration names are held to its directory (the load restrictor).
        for (path, span) in &cfg.catalogs {
            let loaded = loader
                .check_within(path, &cfg.root)
                .and_then(|()| cats.load_file(loader, path, diags).map(|_| ()));
            if let Err(e) = loaded {
                diags.push(missing_file(*span, &e));
            }
        }
        cats.validate(diags);
        let mut rules = (*c.rules).clone();
        for (path, span) in &cfg.evidence_rules {
            let loaded = loader
                .check_within(path, &cfg.root)
                .and_then(|()| rules.load_file(loader, &cats, path, diags));
            if let Err(e) = loaded {
                diags.push(missing_file(*span, &e));
            }
        }
        c.catalogs = Arc::new(cats);
        c.rules = Arc::new(rules);
        c.check_applicability(diags);
        c
    }

    /// Each `compliance.applicability` entry must name one control of the loaded catalogs.
    fn check_applicability(&self, diags: &mut Vec<Diagnostic>) {
        for a in &self.settings.applicability {
            if let tags::Resolved::Control { .. } = tags::resolve(&self.catalogs, &a.control) {
                continue;
            }
            diags.push(
                Diagnostic::new(
                    &pbc_compiler::config::CONFIG_BAD_VALUE,
                    a.control_span,
                    format!(
                        "`{}` in `compliance.applicability` names no control of the loaded catalogs",
                        a.control
                    ),
                )
                .with_help(
                    "write the control as a playbook tag names it: `SOC2-CC6.4`, `ISO27001-5.7` (2022 Annex A)",
                ),
            );
        }
    }

    /// The built-ins with the settings of a configuration.
    pub fn from_config(cfg: &Config) -> Compliance {
        Compliance::builtin(Settings::from_config(cfg))
    }

    /// The facts of a Playbook resolved for `environment`.
    pub fn facts(&self, pb: &Playbook, environment: Option<&str>) -> PlaybookFacts {
        PlaybookFacts::from_model(pb, environment, self.settings.is_production(environment))
    }

    /// Runs the tag lints on one list of tags.
    pub fn lint_tags(&self, tags: &[facts::Spanned<String>], diags: &mut Vec<Diagnostic>) {
        rules::lint_tags(&self.catalogs, tags, diags);
    }

    /// The tag lints alone on one resolved Playbook (unknown, ambiguous and superseded
    /// control ids): what a coverage report must not pass over in silence.
    pub fn check_tags(
        &self,
        pb: &Playbook,
        environment: Option<&str>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let facts = self.facts(pb, environment);
        self.lint_tags(&facts.tags, diags);
        for s in &facts.stages {
            self.lint_tags(&s.tags, diags);
        }
    }

    /// Every compliance lint on one resolved Playbook: the tag lints on
    /// `metadata.compliance` and on each stage's `compliance`, then the evidence of each
    /// claim.
    pub fn check_playbook(
        &self,
        pb: &Playbook,
        environment: Option<&str>,
        diags: &mut Vec<Diagnostic>,
    ) {
        self.check_playbook_with(pb, environment, None, diags);
    }

    /// [`Compliance::check_playbook`], with the playbook's sources: the fixes that add a
    /// line (`audit-log: required` under a stage) are written in the line's indentation.
    pub fn check_playbook_with(
        &self,
        pb: &Playbook,
        environment: Option<&str>,
        sources: Option<&pbc_compiler::span::SourceMap>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let facts = self.facts(pb, environment);
        self.lint_tags(&facts.tags, diags);
        for s in &facts.stages {
            self.lint_tags(&s.tags, diags);
        }
        rules::missing_evidence::check(self, &facts, sources, diags);
    }
}

/// The compliance lints as the `pbc check` pass that runs after the model and semantic
/// checks (`pbc_compiler::check::DocCheck`): built-in catalogs and rules, production
/// environments from the configuration, the environment from the tree's path.
pub fn extra_check(cx: &PlaybookCtx<'_>, diags: &mut Vec<Diagnostic>) {
    Compliance::from_config(cx.cfg).check_playbook_with(
        cx.playbook,
        cx.env.as_deref(),
        Some(&cx.loader.sources),
        diags,
    );
}

fn missing_file(span: pbc_compiler::span::Span, e: &pbc_compiler::load::LoadError) -> Diagnostic {
    use pbc_compiler::load::LoadError;
    if matches!(e, LoadError::NotAFile(..) | LoadError::OutsideRoot { .. }) {
        return e.diagnostic(span);
    }
    Diagnostic::new(
        &pbc_compiler::config::CONFIG_BAD_VALUE,
        span,
        format!("cannot read {e}"),
    )
    .with_help("the path is relative to `.pbc.yaml`")
}

/// The code with this id among the compliance codes.
pub fn lookup(id: &str) -> Option<&'static Code> {
    codes().into_iter().find(|c| c.id.eq_ignore_ascii_case(id))
}
