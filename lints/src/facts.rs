//! The facts evidence rules look at, extracted from one resolved Playbook document.
//!
//! Evidence rules never read YAML: they read these facts, each with the span it came from
//! (for "evidence at file:line" and for pointing at where missing evidence goes). Phase 1
//! extracts them from the spanned [`Node`] tree; when the typed model is available the same
//! facts can be built from it without touching the rules. Extraction is lenient: a value of
//! the wrong shape is simply absent here (the shape checks report it).

use pbc_compiler::span::Span;
use pbc_compiler::yaml::Node;
use std::path::Path;

/// A string value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned {
    pub value: String,
    pub span: Span,
}

/// Whether an approver is a role or a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApproverKind {
    Role,
    User,
}

/// One entry of an `approvers` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approver {
    pub kind: ApproverKind,
    pub name: String,
    pub span: Span,
}

/// `low` / `medium` / `high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// A stage's `approval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    Auto,
    Manual,
    Conditional,
}

/// One branch of a conditional gate (`if` … `then`, or the closing `else`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    /// `then: manual` / `else: manual`.
    pub manual: bool,
    pub approvers: Vec<Approver>,
    pub span: Span,
}

/// What a stage runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageKind {
    Agent(Spanned),
    Action(Spanned),
    Unknown,
}

/// The facts of one stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageFacts {
    pub name: String,
    /// The span of the name value (or of the stage item when it has none).
    pub name_span: Span,
    /// The span of the whole stage item.
    pub span: Span,
    pub kind: StageKind,
    pub approval: Approval,
    pub approval_span: Option<Span>,
    pub approvers: Vec<Approver>,
    pub branches: Vec<Branch>,
    pub risk: Option<(Risk, Span)>,
    pub sla: Option<Spanned>,
    /// `notification.on-pending` channels.
    pub on_pending: Vec<Spanned>,
    /// `audit-log` value (`required` / `optional`).
    pub audit_log: Option<Spanned>,
    /// The `rollback` key of the stage's undo step.
    pub rollback_step: Option<Span>,
    /// Stage-level compliance tags.
    pub tags: Vec<Spanned>,
}

/// A monitoring alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub condition: Option<Spanned>,
    pub notify: Vec<Spanned>,
    pub span: Span,
}

/// The facts of one Playbook document in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaybookFacts {
    pub name: String,
    pub name_span: Span,
    /// The document's span (its start is where a whole-document note points).
    pub span: Span,
    /// The environment the document was resolved for (`None` outside `overlays/`).
    pub environment: Option<String>,
    /// True when the environment is one of the configured production environments.
    pub production: bool,
    /// Playbook-level compliance tags (`metadata.compliance`).
    pub tags: Vec<Spanned>,
    /// The `spec` key (where missing playbook-level fields go).
    pub spec_key: Option<Span>,
    pub risk: Option<(Risk, Span)>,
    /// `spec.approvers`.
    pub approvers: Vec<Approver>,
    pub stages_key: Option<Span>,
    pub stages: Vec<StageFacts>,
    /// The `spec.audit` key.
    pub audit_key: Option<Span>,
    pub audit_sinks: Vec<Spanned>,
    /// The `log-to` key.
    pub audit_log_to_key: Option<Span>,
    pub retention: Option<Spanned>,
    /// The `spec.rollback` key.
    pub rollback_key: Option<Span>,
    pub on_failure: Option<Spanned>,
    pub rollback_notification: Vec<Spanned>,
    /// The `spec.monitoring` key.
    pub monitoring_key: Option<Span>,
    pub alerts: Vec<Alert>,
}

/// The environment of a tree: the directory directly under the nearest `overlays/` in its
/// path (contract §6), else none.
pub fn environment_of(path: &Path) -> Option<String> {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let i = parts.iter().rposition(|p| p == "overlays")?;
    parts.get(i + 1).cloned()
}

fn str_of(n: &Node) -> Option<Spanned> {
    let s = n.as_scalar()?;
    if s.text.is_empty() || n.is_null() {
        return None;
    }
    Some(Spanned {
        value: s.text.clone(),
        span: n.span,
    })
}

fn str_list(n: Option<&Node>) -> Vec<Spanned> {
    match n {
        Some(n) => match n.as_seq() {
            Some(items) => items.iter().filter_map(str_of).collect(),
            None => str_of(n).into_iter().collect(),
        },
        None => Vec::new(),
    }
}

fn key_span(n: &Node, key: &str) -> Option<Span> {
    n.entry(key).map(|e| e.key.span)
}

fn risk_of(n: Option<&Node>) -> Option<(Risk, Span)> {
    let n = n?;
    let r = match n.as_str()? {
        "low" => Risk::Low,
        "medium" => Risk::Medium,
        "high" => Risk::High,
        _ => return None,
    };
    Some((r, n.span))
}

/// Reads an `approvers` list: `{role: R}`, `{user: EMAIL}`, or a bare string (a role; with
/// `@`, a user).
pub fn approvers_of(n: Option<&Node>) -> Vec<Approver> {
    let Some(items) = n.and_then(Node::as_seq) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in items {
        if let Some(s) = i.as_str() {
            if s.is_empty() {
                continue;
            }
            let kind = if s.contains('@') {
                ApproverKind::User
            } else {
                ApproverKind::Role
            };
            out.push(Approver {
                kind,
                name: s.to_string(),
                span: i.span,
            });
        } else if let Some(role) = i.get("role").and_then(str_of) {
            out.push(Approver {
                kind: ApproverKind::Role,
                name: role.value,
                span: i.span,
            });
        } else if let Some(user) = i.get("user").and_then(str_of) {
            out.push(Approver {
                kind: ApproverKind::User,
                name: user.value,
                span: i.span,
            });
        }
    }
    out
}

fn stage_facts(item: &Node) -> Option<StageFacts> {
    item.as_map()?;
    let name = item.get("name").and_then(str_of);
    let kind = if let Some(a) = item.get("action").and_then(str_of) {
        StageKind::Action(a)
    } else if let Some(a) = item.get("agent").and_then(str_of) {
        StageKind::Agent(a)
    } else {
        StageKind::Unknown
    };
    let approval_node = item.get("approval");
    let approval = match approval_node.and_then(Node::as_str) {
        Some("manual") => Approval::Manual,
        Some("conditional") => Approval::Conditional,
        _ => Approval::Auto,
    };
    let mut branches = Vec::new();
    for c in item.get("conditions").and_then(Node::as_seq).unwrap_or(&[]) {
        let outcome = c
            .get("then")
            .or_else(|| c.get("else"))
            .and_then(Node::as_str);
        branches.push(Branch {
            manual: outcome == Some("manual"),
            approvers: approvers_of(c.get("approvers")),
            span: c.span,
        });
    }
    Some(StageFacts {
        name: name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
        name_span: name.map(|n| n.span).unwrap_or(item.span),
        span: item.span,
        kind,
        approval,
        approval_span: approval_node.map(|n| n.span),
        approvers: approvers_of(item.get("approvers")),
        branches,
        risk: risk_of(item.get("risk")),
        sla: item.get("sla").and_then(str_of),
        on_pending: str_list(item.get_path(&["notification", "on-pending"])),
        audit_log: item.get("audit-log").and_then(str_of),
        rollback_step: item
            .entry("rollback")
            .filter(|e| e.value.as_map().is_some())
            .map(|e| e.key.span),
        tags: str_list(item.get("compliance")),
    })
}

impl PlaybookFacts {
    /// Extracts the facts of a Playbook document. `production` says whether `environment` is
    /// a production one (the caller knows the configuration).
    pub fn from_node(root: &Node, environment: Option<&str>, production: bool) -> PlaybookFacts {
        let meta = root.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(str_of);
        let spec = root.get("spec");
        let empty = Node::null(Span::point(root.span.file, root.span.start));
        let spec_node = spec.unwrap_or(&empty);
        let audit = spec_node.get("audit");
        let rollback = spec_node.get("rollback");
        let monitoring = spec_node.get("monitoring");
        let alerts = monitoring
            .and_then(|m| m.get("alerts"))
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .map(|a| Alert {
                condition: a.get("condition").and_then(str_of),
                notify: str_list(a.get("notify")),
                span: a.span,
            })
            .collect();
        PlaybookFacts {
            name: name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
            name_span: name
                .map(|n| n.span)
                .unwrap_or(Span::point(root.span.file, root.span.start)),
            span: root.span,
            environment: environment.map(str::to_string),
            production,
            tags: str_list(meta.and_then(|m| m.get("compliance"))),
            spec_key: key_span(root, "spec"),
            risk: risk_of(spec_node.get("risk")),
            approvers: approvers_of(spec_node.get("approvers")),
            stages_key: key_span(spec_node, "stages"),
            stages: spec_node
                .get("stages")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(stage_facts)
                .collect(),
            audit_key: key_span(spec_node, "audit"),
            audit_sinks: str_list(audit.and_then(|a| a.get("log-to"))),
            audit_log_to_key: audit.and_then(|a| key_span(a, "log-to")),
            retention: audit.and_then(|a| a.get("retention")).and_then(str_of),
            rollback_key: key_span(spec_node, "rollback"),
            on_failure: rollback.and_then(|r| r.get("on-failure")).and_then(str_of),
            rollback_notification: str_list(rollback.and_then(|r| r.get("notification"))),
            monitoring_key: key_span(spec_node, "monitoring"),
            alerts,
        }
    }

    /// The risk a stage runs at: its own, else the playbook's, else `low`.
    pub fn effective_risk(&self, stage: &StageFacts) -> Risk {
        stage.risk.or(self.risk).map(|r| r.0).unwrap_or(Risk::Low)
    }

    /// Where a missing playbook-level field goes: the `spec` key, else the document start.
    pub fn spec_anchor(&self) -> Span {
        self.spec_key
            .unwrap_or(Span::point(self.span.file, self.span.start))
    }
}

/// How a stage is gated by people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate<'a> {
    /// No person decides (auto, or a conditional without a manual branch).
    None,
    /// A person decides; the approvers who can (empty = the gate names nobody, or a manual
    /// branch has no approvers).
    People {
        approvers: Vec<&'a Approver>,
        /// True if every manual branch (or the manual gate) names approvers.
        complete: bool,
        /// True for a conditional gate (it may resolve to `auto`).
        conditional: bool,
        /// True when the gate exists because of `risk: medium`, not `approval`.
        by_risk: bool,
    },
    /// The stage never runs: its effective risk is `high` (contract §4).
    Refused,
}

impl StageFacts {
    /// The stage's gate (contract §4): `manual`; `conditional` with at least one manual
    /// branch (a manual branch without approvers uses the stage's); `risk: medium` (one
    /// approval from the stage's approvers); `risk: high` refuses the stage.
    pub fn gate<'a>(&'a self, pb: &PlaybookFacts) -> Gate<'a> {
        let risk = pb.effective_risk(self);
        if risk == Risk::High {
            return Gate::Refused;
        }
        match self.approval {
            Approval::Manual => Gate::People {
                approvers: self.approvers.iter().collect(),
                complete: !self.approvers.is_empty(),
                conditional: false,
                by_risk: false,
            },
            Approval::Conditional => {
                let manual: Vec<&Branch> = self.branches.iter().filter(|b| b.manual).collect();
                if manual.is_empty() {
                    return self.risk_gate(risk);
                }
                let mut approvers: Vec<&Approver> = Vec::new();
                let mut complete = true;
                for b in manual {
                    let list: Vec<&Approver> = if b.approvers.is_empty() {
                        self.approvers.iter().collect()
                    } else {
                        b.approvers.iter().collect()
                    };
                    complete &= !list.is_empty();
                    for a in list {
                        if !approvers
                            .iter()
                            .any(|x| x.name == a.name && x.kind == a.kind)
                        {
                            approvers.push(a);
                        }
                    }
                }
                Gate::People {
                    approvers,
                    complete,
                    conditional: true,
                    by_risk: false,
                }
            }
            Approval::Auto => self.risk_gate(risk),
        }
    }

    fn risk_gate(&self, risk: Risk) -> Gate<'_> {
        if risk == Risk::Medium {
            Gate::People {
                approvers: self.approvers.iter().collect(),
                complete: !self.approvers.is_empty(),
                conditional: false,
                by_risk: true,
            }
        } else {
            Gate::None
        }
    }

    /// True for an `action:` stage.
    pub fn is_action(&self) -> bool {
        matches!(self.kind, StageKind::Action(_))
    }

    /// `audit-log: required`.
    pub fn audit_log_required(&self) -> bool {
        self.audit_log
            .as_ref()
            .is_some_and(|a| a.value == "required")
    }

    /// A short description: ``stage `deploy` (action `k8s:apply`)``.
    pub fn describe(&self) -> String {
        match &self.kind {
            StageKind::Action(a) => format!("action stage `{}` (`{}`)", self.name, a.value),
            StageKind::Agent(_) => format!("agent stage `{}`", self.name),
            StageKind::Unknown => format!("stage `{}`", self.name),
        }
    }
}

/// Parses a duration `<whole number><s|m|h|d>` into seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let num = &s[..s.len() - 1];
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Formats seconds as the largest whole unit (`365d`, `90m`).
pub fn format_duration(secs: u64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= n && secs.checked_rem(n) == Some(0) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments() {
        assert_eq!(
            environment_of(Path::new("playbooks/overlays/production")).as_deref(),
            Some("production")
        );
        assert_eq!(
            environment_of(Path::new("/a/overlays/x/b/overlays/prod/sub")).as_deref(),
            Some("prod")
        );
        assert_eq!(environment_of(Path::new("playbooks/base")), None);
        assert_eq!(environment_of(Path::new("overlays")), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2555d"), Some(2555 * 86_400));
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("1h30m"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("PT4H"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
        assert_eq!(format_duration(365 * 86_400), "365d");
        assert_eq!(format_duration(5400), "90m");
        assert_eq!(format_duration(61), "61s");
    }
}
