//! `pbc diff`: the semantic difference, per environment and playbook, between two sets of
//! resolved playbooks, usually a git revision (read through [`crate::gitfs::GitFs`]) and
//! the working tree.
//!
//! Each side is discovered the way `pbc check` discovers (trees and loose files), resolved
//! with the overlay resolver and read into the typed model. A playbook is identified by its
//! environment (the directory directly under the tree's nearest `overlays/`)
//! and its resolved `metadata.name`, so moving a file does not read as a removal and an
//! addition. What is compared is what a reviewer of a gate or a control must see:
//! stages added, removed or reordered; per stage `approval`, `approvers`, `sla`,
//! `escalation`, `conditions`, `risk` and `compliance`; at the playbook level
//! `metadata.compliance`, `spec.approvers` and `spec.risk`; and, so that no change goes
//! unmentioned, the names of any other fields that differ. Effective values are compared
//! (`approval` defaults to `auto`; approver lists and tags are sets; expressions ignore
//! reflowed whitespace), so a restyled file shows no change.

use crate::check::{self, KUSTOMIZATION_FILES, Units, UsageError};
use crate::diag::Diagnostic;
use crate::fs::{FileKind, normalize};
use crate::load::Loader;
use crate::model::{self, Approver, ModelOptions, Playbook, Stage};
use crate::render::path_str;
use crate::yaml::Node;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod compare;
mod discover;
mod render;
#[cfg(test)]
mod tests;

pub use compare::{Outcome, compare, diff, run};
pub use discover::{Found, Snapshot, discover_in, snapshot};
pub use render::{code, json, markdown, text};

// ---------------------------------------------------------------------------------------
// The report.

/// What happened to a playbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Added,
    Removed,
    Changed,
}

/// One escalation level, as compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Level {
    pub after: String,
    pub approvers: Vec<String>,
    pub notify: Vec<String>,
}

/// One branch of `conditions`, as compared. `if` is `None` for the closing `else`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Branch {
    #[serde(rename = "if")]
    pub test: Option<String>,
    pub then: String,
    pub approvers: Vec<String>,
}

/// One difference. `stage` is `None` for a playbook-level change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// A stage only the new side has (`position` is 1-based, in the new order).
    StageAdded { stage: String, position: usize },
    /// A stage only the old side has (`position` in the old order).
    StageRemoved { stage: String, position: usize },
    /// The stages both sides have are in another order.
    StagesReordered {
        before: Vec<String>,
        after: Vec<String>,
    },
    ApprovalChanged {
        stage: String,
        before: String,
        after: String,
    },
    ApproversChanged {
        stage: Option<String>,
        before: Vec<String>,
        after: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    SlaChanged {
        stage: String,
        before: Option<String>,
        after: Option<String>,
    },
    EscalationChanged {
        stage: String,
        before: Vec<Level>,
        after: Vec<Level>,
    },
    ConditionsChanged {
        stage: String,
        before: Vec<Branch>,
        after: Vec<Branch>,
    },
    RiskChanged {
        stage: Option<String>,
        before: Option<String>,
        after: Option<String>,
    },
    ComplianceChanged {
        stage: Option<String>,
        before: Vec<String>,
        after: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// Other fields that differ, by name (`prompt`, `spec.audit`).
    FieldsChanged {
        stage: Option<String>,
        fields: Vec<String>,
    },
}

/// One playbook that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlaybookDiff {
    pub name: String,
    pub status: Status,
    /// The tree or file it belongs to (the new side's, else the old side's).
    pub unit: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Its stages, in order (the new side's, else the old side's).
    pub stages: Vec<String>,
    pub changes: Vec<Change>,
}

/// The playbooks of one environment that differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvDiff {
    pub environment: Option<String>,
    pub playbooks: Vec<PlaybookDiff>,
    pub unchanged: usize,
}

/// Counts over all environments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// The old side's name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Base {
    /// The revision as given (`origin/main`).
    pub rev: String,
    /// The commit it names, if it names one.
    pub commit: Option<String>,
}

/// Which side a problem is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Base,
    WorkingTree,
}

/// A file that could not be read, parsed or resolved on one side: the playbooks in it are
/// missing from that side, so they may show as added or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub side: Side,
    pub code: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The whole diff.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    pub base: Base,
    /// Every environment either side has, `null` (no environment) first, then by name;
    /// environments where nothing changed have no playbooks listed.
    pub environments: Vec<EnvDiff>,
    pub summary: Counts,
    /// Errors that kept something from being read (also printed on stderr).
    pub problems: Vec<Problem>,
}

impl DiffReport {
    /// True if any playbook was added, removed or changed.
    pub fn has_changes(&self) -> bool {
        let s = self.summary;
        s.added + s.removed + s.changed > 0
    }
}
