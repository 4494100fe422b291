//! pbc-policy: policies as code. A policy is Rego (evaluated with the embedded `regorus`
//! interpreter), Cedar (`cedar-policy`) or declarative rules (limits on a numeric param, per
//! stage and per rolling day, and allow/deny lists of values). Every kind answers one
//! [`Decision`]: `allow`, `deny` with reasons, or `require-approval` with approvers.
//!
//! - [`freeze`] reads the files the configuration names into a [`PolicySet`], the form a run
//!   keeps (so `resume` evaluates exactly what `run` started with);
//! - [`check`] compiles each policy and reports problems at the line of the policy file;
//! - [`Compiled::evaluate`] decides one stage from its input document
//!   (`schemas/policy-input.schema.json`): errors, undefined results and timeouts deny.

use pbc_compiler::declare_codes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod cedar;
mod freeze;
mod history;
mod rego;
mod rules;
pub mod static_check;
pub mod testing;

pub use freeze::{FileText, FrozenKind, FrozenPolicy, PolicySet, check, freeze};
pub use history::{HistoryRow, WINDOWS, aggregates};

declare_codes! {
    /// A file a policy names cannot be read.
    ///
    /// `policies:` in `.pbc.yaml` names Rego modules and data, Cedar policies, schemas and
    /// entities relative to the configuration's directory. A policy whose files cannot be
    /// read cannot be evaluated, and a stage bound to it would be refused.
    PB6010 POLICY_FILE_UNREADABLE "policy-file-unreadable" Error "a policy file cannot be read";
    /// A Rego module does not compile.
    ///
    /// The message is the Rego interpreter's, at the line and column it reports. Modules are
    /// Rego v1 (`deny contains msg if { ... }`), as OPA 1.0 reads them.
    PB6011 REGO_COMPILE "rego-compile-error" Error "a Rego module does not compile";
    /// A Cedar policy set, schema or entities file does not parse.
    ///
    /// The message is Cedar's, at the place it reports.
    PB6012 CEDAR_PARSE "cedar-parse-error" Error "a Cedar file does not parse";
    /// A Cedar policy fails validation against its schema.
    ///
    /// With `schema:` set, each policy is validated (strict mode) against it: unknown entity
    /// types, actions and attributes, and type errors, are reported at the policy's line.
    PB6013 CEDAR_INVALID "cedar-validation-error" Error "a Cedar policy fails validation against its schema";
    /// A Rego data document is not JSON or YAML.
    ///
    /// `data:` files are merged under `data`; each must hold one JSON or YAML document.
    PB6014 POLICY_DATA_INVALID "policy-data-invalid" Error "a policy data document cannot be read";
}

/// Every code this crate declares.
pub fn codes() -> Vec<&'static pbc_compiler::diag::Code> {
    let mut v = CODES.to_vec();
    v.extend(static_check::CODES);
    v
}

pbc_compiler::str_enum! { @serde
    /// What a policy decided.
    Verdict {
        Allow = "allow",
        Deny = "deny",
        RequireApproval = "require-approval",
    }
}

/// A policy's answer for one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub decision: Verdict,
    /// Why (a deny's reasons; for an allow, the warnings of `warn` rules).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Who may approve (`require-approval`): role names, or people (with an `@`).
    #[serde(default)]
    pub approvers: Vec<String>,
}

impl Decision {
    pub fn allow() -> Self {
        Decision {
            decision: Verdict::Allow,
            reasons: Vec::new(),
            approvers: Vec::new(),
        }
    }

    pub fn deny(reason: impl Into<String>) -> Self {
        Decision {
            decision: Verdict::Deny,
            reasons: vec![reason.into()],
            approvers: Vec::new(),
        }
    }

    /// The decision as JSON (`{"decision", "reasons", "approvers"}`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "decision": self.decision.as_str(),
            "reasons": self.reasons,
            "approvers": self.approvers,
        })
    }
}

/// A policy ready to evaluate (compiled once, evaluated many times).
pub struct Compiled {
    pub name: String,
    /// sha256 of the policy's files (its definition, for declarative rules).
    pub sha256: String,
    timeout_ms: u64,
    engine: Engine,
}

enum Engine {
    Rego(Box<rego::Rego>),
    Cedar(Box<cedar::Cedar>),
    Rules(Vec<pbc_compiler::config::RuleDef>),
    Undefined,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// A problem in a policy file: where (the file's index in the policy, a 1-based line and
/// column when the library reports one) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub file: Option<String>,
    /// Byte offsets in the file, when known.
    pub range: Option<(usize, usize)>,
    /// 1-based line and column, when known (and no range is).
    pub line_col: Option<(u32, u32)>,
    pub message: String,
    pub kind: ErrorKind,
}

/// Which code a [`PolicyError`] is reported with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    RegoCompile,
    CedarParse,
    CedarInvalid,
    DataInvalid,
}

impl ErrorKind {
    pub fn code(self) -> &'static pbc_compiler::diag::Code {
        match self {
            ErrorKind::RegoCompile => &REGO_COMPILE,
            ErrorKind::CedarParse => &CEDAR_PARSE,
            ErrorKind::CedarInvalid => &CEDAR_INVALID,
            ErrorKind::DataInvalid => &POLICY_DATA_INVALID,
        }
    }
}

impl FrozenPolicy {
    /// `rego`, `cedar`, `rules` or `undefined`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            FrozenKind::Rego { .. } => "rego",
            FrozenKind::Cedar { .. } => "cedar",
            FrozenKind::Rules(_) => "rules",
            FrozenKind::Undefined => "undefined",
        }
    }

    /// Compiles the policy (parses and checks its files).
    pub fn compile(&self) -> Result<Compiled, Vec<PolicyError>> {
        let engine = match &self.kind {
            FrozenKind::Rego {
                modules,
                data,
                query,
            } => Engine::Rego(Box::new(rego::Rego::compile(modules, data, query)?)),
            FrozenKind::Cedar {
                policies,
                schema,
                entities,
            } => Engine::Cedar(Box::new(cedar::Cedar::compile(
                policies,
                schema.as_ref(),
                entities.as_ref(),
            )?)),
            FrozenKind::Rules(r) => Engine::Rules(r.clone()),
            FrozenKind::Undefined => Engine::Undefined,
        };
        Ok(Compiled {
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            timeout_ms: self.timeout_ms,
            engine,
        })
    }
}

impl Compiled {
    /// Decides one stage. `input` is the input document; `history` the executed stages of
    /// the same action (the declarative rules' rolling windows); `now_ms` the time. An error,
    /// an undefined result or a timeout denies (fail closed).
    pub fn evaluate(&self, input: &Value, history: &[HistoryRow], now_ms: i64) -> Decision {
        match &self.engine {
            Engine::Rego(r) => r.evaluate(input, self.timeout_ms),
            Engine::Cedar(c) => c.evaluate(input),
            Engine::Rules(rules) => rules::evaluate(rules, input, history, now_ms),
            Engine::Undefined => Decision::deny(format!(
                "policy `{}` is only a name (the list form of `policies:`): there is nothing to evaluate, so the stage is refused",
                self.name
            )),
        }
    }

    /// The kind of policy: `rego`, `cedar`, `rules` or `undefined`.
    pub fn kind(&self) -> &'static str {
        match &self.engine {
            Engine::Rego(_) => "rego",
            Engine::Cedar(_) => "cedar",
            Engine::Rules(_) => "rules",
            Engine::Undefined => "undefined",
        }
    }

    /// The declarative rules' `group-by` params (the history rows they need).
    pub fn is_rules(&self) -> bool {
        matches!(self.engine, Engine::Rules(_))
    }
}
