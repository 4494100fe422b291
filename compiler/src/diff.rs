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

// ---------------------------------------------------------------------------------------
// Discovery through a FileSystem.

/// The deepest directory nesting discovery descends into.
const MAX_WALK_DEPTH: usize = 64;

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

fn is_dir(loader: &Loader, p: &Path) -> bool {
    loader.fs.metadata(p).is_ok_and(|m| m.kind == FileKind::Dir)
}

/// Directories a kustomization includes (`resources`, `bases`, `components`), read through
/// the loader.
fn kustomization_refs(loader: &Loader, dir: &Path) -> Vec<PathBuf> {
    let Some(kf) = crate::resolve::find_kustomization(loader, dir) else {
        return Vec::new();
    };
    let Ok(loaded) = loader.load(&kf) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(d) = loaded.docs.first() {
        for key in ["resources", "bases", "components"] {
            for item in d.root.get(key).and_then(Node::as_seq).unwrap_or(&[]) {
                if let Some(s) = item.as_str() {
                    let p = normalize(&dir.join(s));
                    if is_dir(loader, &p) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// Finds the units under `paths` the way [`check::discover`] does, but through the loader's
/// file system (a git tree has no `.gitignore`d files to skip; hidden entries are skipped).
/// Returns the units and the paths that do not exist on this file system.
pub fn discover_in(loader: &Loader, paths: &[PathBuf]) -> (Units, Vec<PathBuf>) {
    let mut units = Units::default();
    let mut missing = Vec::new();
    let mut kdirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut loose: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths {
        let p = normalize(p);
        let Ok(meta) = loader.fs.metadata(&p) else {
            missing.push(p);
            continue;
        };
        match meta.kind {
            FileKind::File => {
                units.files.push((p, true));
                continue;
            }
            FileKind::Dir => {}
            FileKind::Other => {
                missing.push(p);
                continue;
            }
        }
        if crate::resolve::find_kustomization(loader, &p).is_some() {
            units.trees.push(p);
            continue;
        }
        // Walk, never entering a directory twice (links may loop).
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut stack: Vec<(PathBuf, usize)> = vec![(p, 0)];
        while let Some((dir, depth)) = stack.pop() {
            if depth > MAX_WALK_DEPTH {
                continue;
            }
            if let Ok(c) = loader.fs.canonicalize(&dir)
                && !seen.insert(c)
            {
                continue;
            }
            if depth > 0 && crate::resolve::find_kustomization(loader, &dir).is_some() {
                kdirs.insert(normalize(&dir));
            }
            let Ok(entries) = loader.fs.read_dir(&dir) else {
                continue;
            };
            for e in entries.into_iter().rev() {
                let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with('.') {
                    continue;
                }
                match loader.fs.metadata(&e).map(|m| m.kind) {
                    Ok(FileKind::Dir) => stack.push((e, depth + 1)),
                    Ok(FileKind::File)
                        if is_yaml(&e)
                            && !KUSTOMIZATION_FILES.contains(&name)
                            && name != crate::config::FILE_NAME =>
                    {
                        loose.insert(normalize(&e));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut included: BTreeSet<PathBuf> = BTreeSet::new();
    for k in &kdirs {
        included.extend(kustomization_refs(loader, k));
    }
    for k in &kdirs {
        if !included.contains(k) {
            units.trees.push(k.clone());
        }
    }
    for f in loose {
        if !kdirs.iter().any(|k| f.starts_with(k)) {
            units.files.push((f, false));
        }
    }
    units.trees.sort();
    units.trees.dedup();
    (units, missing)
}

// ---------------------------------------------------------------------------------------
// One side: the playbooks found, modelled.

/// A playbook of one side.
#[derive(Debug, Clone)]
pub struct Found {
    /// The environment (`None` outside `overlays/`).
    pub env: Option<String>,
    /// The tree directory, or the file for a loose playbook (display path).
    pub unit: String,
    /// Where `metadata.name` is written (display path and 1-based line), if known.
    pub file: Option<String>,
    pub line: Option<u32>,
    pub playbook: Playbook,
    /// The resolved document.
    pub root: Node,
}

/// The playbooks of one side, keyed by environment and name, and the problems that kept
/// something from being read (loading and overlay errors; documents the model refused).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub playbooks: BTreeMap<(Option<String>, String), Found>,
    pub diags: Vec<Diagnostic>,
}

fn is_agenticops(root: &Node) -> bool {
    check::is_playbook(root)
        || root.get("apiVersion").and_then(Node::as_str) == Some(model::API_VERSION)
}

/// Resolves and models every playbook of the units.
pub fn snapshot(loader: &Loader, units: &Units, opts: &ModelOptions) -> Snapshot {
    let mut snap = Snapshot::default();
    let ropts = crate::resolve::ResolveOptions::default();
    let mut docs: Vec<(Option<String>, String, Node)> = Vec::new();
    for t in &units.trees {
        let unit = path_str(&loader.display_path(t));
        match crate::resolve::resolve(loader, t, &ropts) {
            Ok(res) => {
                snap.diags.extend(res.diags);
                let env = check::environment(t);
                docs.extend(
                    res.docs
                        .into_iter()
                        .filter(is_agenticops)
                        .map(|d| (env.clone(), unit.clone(), d)),
                );
            }
            Err(e) => snap.diags.push(check::load_error_diag(
                loader,
                &crate::load::LoadError::Io(loader.display_path(t), e.to_string()),
            )),
        }
    }
    for (f, _) in &units.files {
        let unit = path_str(&loader.display_path(f));
        match loader.load(f) {
            Ok(l) => {
                let pbs: Vec<&crate::yaml::Document> =
                    l.docs.iter().filter(|d| is_agenticops(&d.root)).collect();
                if !pbs.is_empty() || l.has_errors() {
                    snap.diags.extend(l.diags.iter().cloned());
                }
                docs.extend(
                    pbs.into_iter()
                        .map(|d| (None, unit.clone(), d.root.clone())),
                );
            }
            Err(e) => snap.diags.push(check::load_error_diag(loader, &e)),
        }
    }
    for (env, unit, root) in docs {
        let mut mdiags = Vec::new();
        let Some(pb) = model::from_document(&root, &loader.sources, opts, &mut mdiags) else {
            snap.diags.extend(mdiags);
            continue;
        };
        let pos = crate::render::position(&loader.sources, pb.metadata.name.span);
        let mut name = pb.name().to_string();
        if snap.playbooks.contains_key(&(env.clone(), name.clone())) {
            // Two playbooks of one name in one environment (reported by `pbc check`):
            // keep both apart.
            name = format!("{name} ({unit})");
        }
        snap.playbooks.insert(
            (env.clone(), name),
            Found {
                env,
                unit,
                file: pos.as_ref().map(|p| p.file.clone()),
                line: pos.map(|p| p.line),
                playbook: pb,
                root,
            },
        );
    }
    snap.diags.retain(Diagnostic::is_error);
    snap
}

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

// ---------------------------------------------------------------------------------------
// Comparing.

fn approver_names(a: &Option<model::Spanned<Vec<Approver>>>) -> Vec<String> {
    a.as_ref()
        .map(|v| v.value.iter().map(|x| x.name().value.clone()).collect())
        .unwrap_or_default()
}

fn strings(v: &[model::Spanned<String>]) -> Vec<String> {
    v.iter().map(|s| s.value.clone()).collect()
}

fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

/// `(added, removed)` between two lists read as sets, in the lists' own orders.
fn set_delta(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let b = set(before);
    let a = set(after);
    let mut added: Vec<String> = Vec::new();
    for x in after {
        if !b.contains(x.as_str()) && !added.contains(x) {
            added.push(x.clone());
        }
    }
    let mut removed: Vec<String> = Vec::new();
    for x in before {
        if !a.contains(x.as_str()) && !removed.contains(x) {
            removed.push(x.clone());
        }
    }
    (added, removed)
}

/// Whitespace-insensitive text of an expression (a folded scalar reflows).
fn expr_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn levels(s: &Stage) -> Vec<Level> {
    s.escalation
        .iter()
        .map(|l| Level {
            after: l.after.value.to_string(),
            approvers: approver_names(&l.approvers),
            notify: strings(&l.notify),
        })
        .collect()
}

fn level_key(l: &Level) -> (String, BTreeSet<&str>, BTreeSet<&str>) {
    (l.after.clone(), set(&l.approvers), set(&l.notify))
}

fn branches(s: &Stage) -> Vec<Branch> {
    s.conditions
        .iter()
        .map(|c| Branch {
            test: c.test.as_ref().map(|t| expr_text(&t.text.value)),
            then: c.then.value.to_string(),
            approvers: approver_names(&c.approvers),
        })
        .collect()
}

fn branch_key(b: &Branch) -> (Option<String>, String, BTreeSet<&str>) {
    (b.test.clone(), b.then.clone(), set(&b.approvers))
}

/// Keys of a mapping whose values differ (by their JSON), skipping `handled`.
fn other_fields(
    before: Option<&Node>,
    after: Option<&Node>,
    handled: &[&str],
    prefix: &str,
) -> Vec<String> {
    let obj = |n: Option<&Node>| match n.map(Node::to_json) {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let b = obj(before);
    let a = obj(after);
    let mut keys: Vec<&String> = a.keys().collect();
    for k in b.keys() {
        if !a.contains_key(k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .filter(|k| !handled.contains(&k.as_str()))
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| format!("{prefix}{k}"))
        .collect()
}

const STAGE_HANDLED: &[&str] = &[
    "name",
    "approval",
    "approvers",
    "sla",
    "escalation",
    "conditions",
    "risk",
    "compliance",
];

fn stage_node(root: &Node, index: usize) -> Option<&Node> {
    root.get_path(&["spec", "stages"])?.as_seq()?.get(index)
}

fn stage_changes(old: &Found, new: &Found, b: &Stage, a: &Stage, out: &mut Vec<Change>) {
    let stage = a.name.value.clone();
    if b.approval() != a.approval() {
        out.push(Change::ApprovalChanged {
            stage: stage.clone(),
            before: b.approval().to_string(),
            after: a.approval().to_string(),
        });
    }
    let (ba, aa) = (approver_names(&b.approvers), approver_names(&a.approvers));
    if set(&ba) != set(&aa) {
        let (added, removed) = set_delta(&ba, &aa);
        out.push(Change::ApproversChanged {
            stage: Some(stage.clone()),
            before: ba,
            after: aa,
            added,
            removed,
        });
    }
    let sla = |s: &Stage| s.sla.as_ref().map(|d| d.value.to_string());
    if sla(b) != sla(a) {
        out.push(Change::SlaChanged {
            stage: stage.clone(),
            before: sla(b),
            after: sla(a),
        });
    }
    let (bl, al) = (levels(b), levels(a));
    if bl.iter().map(level_key).ne(al.iter().map(level_key)) {
        out.push(Change::EscalationChanged {
            stage: stage.clone(),
            before: bl,
            after: al,
        });
    }
    let (bc, ac) = (branches(b), branches(a));
    if bc.iter().map(branch_key).ne(ac.iter().map(branch_key)) {
        out.push(Change::ConditionsChanged {
            stage: stage.clone(),
            before: bc,
            after: ac,
        });
    }
    let risk = |s: &Stage| s.risk.as_ref().map(|r| r.value.to_string());
    if risk(b) != risk(a) {
        out.push(Change::RiskChanged {
            stage: Some(stage.clone()),
            before: risk(b),
            after: risk(a),
        });
    }
    let (bt, at) = (strings(&b.compliance), strings(&a.compliance));
    if set(&bt) != set(&at) {
        let (added, removed) = set_delta(&bt, &at);
        out.push(Change::ComplianceChanged {
            stage: Some(stage.clone()),
            before: bt,
            after: at,
            added,
            removed,
        });
    }
    let fields = other_fields(
        stage_node(&old.root, b.index),
        stage_node(&new.root, a.index),
        STAGE_HANDLED,
        "",
    );
    if !fields.is_empty() {
        out.push(Change::FieldsChanged {
            stage: Some(stage),
            fields,
        });
    }
}

/// The stages of a playbook by name (the first of a duplicated name).
fn by_name(pb: &Playbook) -> BTreeMap<&str, &Stage> {
    let mut m = BTreeMap::new();
    for s in &pb.spec.stages {
        m.entry(s.name.value.as_str()).or_insert(s);
    }
    m
}

fn stage_names(pb: &Playbook) -> Vec<String> {
    pb.spec
        .stages
        .iter()
        .map(|s| s.name.value.clone())
        .collect()
}

/// The differences between two versions of one playbook.
pub fn compare(old: &Found, new: &Found) -> Vec<Change> {
    let (b, a) = (&old.playbook, &new.playbook);
    let mut out = Vec::new();
    // Playbook level: what gates and claims.
    let risk = |p: &Playbook| p.spec.risk.as_ref().map(|r| r.value.to_string());
    if risk(b) != risk(a) {
        out.push(Change::RiskChanged {
            stage: None,
            before: risk(b),
            after: risk(a),
        });
    }
    let (ba, aa) = (
        approver_names(&b.spec.approvers),
        approver_names(&a.spec.approvers),
    );
    if set(&ba) != set(&aa) {
        let (added, removed) = set_delta(&ba, &aa);
        out.push(Change::ApproversChanged {
            stage: None,
            before: ba,
            after: aa,
            added,
            removed,
        });
    }
    let (bt, at) = (
        strings(&b.metadata.compliance),
        strings(&a.metadata.compliance),
    );
    if set(&bt) != set(&at) {
        let (added, removed) = set_delta(&bt, &at);
        out.push(Change::ComplianceChanged {
            stage: None,
            before: bt,
            after: at,
            added,
            removed,
        });
    }
    // Stages: added, removed, reordered.
    let (bs, as_) = (by_name(b), by_name(a));
    for s in &a.spec.stages {
        if !bs.contains_key(s.name.value.as_str()) {
            out.push(Change::StageAdded {
                stage: s.name.value.clone(),
                position: s.index + 1,
            });
        }
    }
    for s in &b.spec.stages {
        if !as_.contains_key(s.name.value.as_str()) {
            out.push(Change::StageRemoved {
                stage: s.name.value.clone(),
                position: s.index + 1,
            });
        }
    }
    let common_b: Vec<&str> = b
        .spec
        .stages
        .iter()
        .map(|s| s.name.value.as_str())
        .filter(|n| as_.contains_key(n))
        .collect();
    let common_a: Vec<&str> = a
        .spec
        .stages
        .iter()
        .map(|s| s.name.value.as_str())
        .filter(|n| bs.contains_key(n))
        .collect();
    if common_b != common_a {
        out.push(Change::StagesReordered {
            before: stage_names(b),
            after: stage_names(a),
        });
    }
    // Each stage both sides have, in the new order.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for s in &a.spec.stages {
        let n = s.name.value.as_str();
        if !done.insert(n) {
            continue;
        }
        if let (Some(bst), Some(ast)) = (bs.get(n), as_.get(n)) {
            stage_changes(old, new, bst, ast, &mut out);
        }
    }
    // Everything else, by field name.
    let mut fields = other_fields(
        old.root.get("metadata"),
        new.root.get("metadata"),
        &["name", "compliance"],
        "metadata.",
    );
    fields.extend(other_fields(
        old.root.get("spec"),
        new.root.get("spec"),
        &["stages", "approvers", "risk"],
        "spec.",
    ));
    fields.extend(other_fields(
        Some(&old.root),
        Some(&new.root),
        &["metadata", "spec"],
        "",
    ));
    if !fields.is_empty() {
        out.push(Change::FieldsChanged {
            stage: None,
            fields,
        });
    }
    out
}

fn entry(f: &Found, name: &str, status: Status, changes: Vec<Change>) -> PlaybookDiff {
    PlaybookDiff {
        name: name.to_string(),
        status,
        unit: f.unit.clone(),
        file: f.file.clone(),
        line: f.line,
        stages: stage_names(&f.playbook),
        changes,
    }
}

/// Compares two snapshots.
pub fn diff(base: Base, old: &Snapshot, new: &Snapshot) -> DiffReport {
    let mut envs: BTreeMap<Option<String>, EnvDiff> = BTreeMap::new();
    let mut summary = Counts::default();
    let keys: BTreeSet<&(Option<String>, String)> =
        old.playbooks.keys().chain(new.playbooks.keys()).collect();
    for key in keys {
        let (env, name) = key;
        let e = envs.entry(env.clone()).or_insert_with(|| EnvDiff {
            environment: env.clone(),
            playbooks: Vec::new(),
            unchanged: 0,
        });
        match (old.playbooks.get(key), new.playbooks.get(key)) {
            (None, Some(n)) => {
                summary.added += 1;
                e.playbooks.push(entry(n, name, Status::Added, Vec::new()));
            }
            (Some(o), None) => {
                summary.removed += 1;
                e.playbooks
                    .push(entry(o, name, Status::Removed, Vec::new()));
            }
            (Some(o), Some(n)) => {
                let changes = compare(o, n);
                if changes.is_empty() {
                    summary.unchanged += 1;
                    e.unchanged += 1;
                } else {
                    summary.changed += 1;
                    e.playbooks.push(entry(n, name, Status::Changed, changes));
                }
            }
            (None, None) => {}
        }
    }
    DiffReport {
        base,
        environments: envs.into_values().collect(),
        summary,
        problems: Vec::new(),
    }
}

fn problems(loader: &Loader, side: Side, diags: &[Diagnostic]) -> Vec<Problem> {
    diags
        .iter()
        .map(|d| {
            let pos = crate::render::position(&loader.sources, d.span);
            Problem {
                side,
                code: d.code.id.to_string(),
                message: d.message.clone(),
                file: pos.as_ref().map(|p| p.file.clone()),
                line: pos.map(|p| p.line),
            }
        })
        .collect()
}

/// Everything `pbc diff` computes.
#[derive(Debug)]
pub struct Outcome {
    pub report: DiffReport,
    /// Problems that kept something of the old side from being read (its loader's spans).
    pub base_diags: Vec<Diagnostic>,
    /// The same for the new side.
    pub head_diags: Vec<Diagnostic>,
}

/// Discovers, resolves and compares `paths` on two sides. `head` reads the working tree:
/// discovery there is [`check::discover`] (honouring `.gitignore`); `base` reads through its
/// own file system ([`discover_in`]). A path may be missing on one side (everything under it
/// was added or removed); missing on both, it is a usage error.
pub fn run(
    base: &Loader,
    base_info: Base,
    head: &Loader,
    paths: &[PathBuf],
    opts: &ModelOptions,
) -> Result<Outcome, UsageError> {
    let (base_units, base_missing) = discover_in(base, paths);
    let head_paths: Vec<PathBuf> = paths
        .iter()
        .filter(|p| head.fs.metadata(&head.resolve(p)).is_ok())
        .cloned()
        .collect();
    for p in paths {
        let on_head = head_paths.contains(p);
        if !on_head && base_missing.contains(&normalize(p)) {
            return Err(UsageError(format!(
                "{}: no such file or directory, neither in the working tree nor at `{}`",
                p.display(),
                base_info.rev
            )));
        }
    }
    let head_units = if head_paths.is_empty() {
        Units::default()
    } else {
        check::discover(&head_paths)?
    };
    let (old, new) = rayon::join(
        || snapshot(base, &base_units, opts),
        || snapshot(head, &head_units, opts),
    );
    let mut report = diff(base_info, &old, &new);
    report.problems = problems(base, Side::Base, &old.diags);
    report
        .problems
        .extend(problems(head, Side::WorkingTree, &new.diags));
    Ok(Outcome {
        report,
        base_diags: old.diags,
        head_diags: new.diags,
    })
}

// ---------------------------------------------------------------------------------------
// Rendering.

/// The report as pretty JSON (one object, trailing newline).
pub fn json(r: &DiffReport) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

/// Inline code that survives any content: a fence longer than any backtick run inside,
/// newlines flattened. (Markdown inside code is not interpreted, so user text can't inject
/// links, images or HTML into a comment.)
pub fn code(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut longest = 0;
    let mut run = 0;
    for c in flat.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if longest > 0 || flat.starts_with(' ') || flat.ends_with(' ') {
        format!("{fence} {flat} {fence}")
    } else {
        format!("{fence}{flat}{fence}")
    }
}

/// Untrusted text as plain Markdown: one line, every character Markdown or HTML could read
/// escaped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.split_whitespace().collect::<Vec<_>>().join(" ").chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '!' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn problems_md(out: &mut String, r: &DiffReport) {
    if r.problems.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n> [!WARNING]\n> Some files could not be read; the playbooks in them may show as \
         added or removed (`pbc check` says more):"
    );
    for p in &r.problems {
        let side = match p.side {
            Side::Base => "base",
            Side::WorkingTree => "working tree",
        };
        let at = match (&p.file, p.line) {
            (Some(f), Some(l)) => format!(" {}", code(&format!("{f}:{l}"))),
            (Some(f), None) => format!(" {}", code(f)),
            _ => String::new(),
        };
        let _ = writeln!(out, "> - {side}{at}: {} {}", p.code, text(&p.message));
    }
}

fn code_list(v: &[String]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
}

fn opt(v: &Option<String>, absent: &str) -> String {
    match v {
        Some(s) => code(s),
        None => absent.to_string(),
    }
}

fn level_md(l: &Level) -> String {
    let mut s = format!("after {}", code(&l.after));
    if !l.approvers.is_empty() {
        let _ = write!(s, " ask {}", code_list(&l.approvers));
    }
    if !l.notify.is_empty() {
        let _ = write!(s, " notify {}", code_list(&l.notify));
    }
    s
}

fn branch_md(b: &Branch) -> String {
    let mut s = match &b.test {
        Some(t) => format!("if {} then {}", code(t), code(&b.then)),
        None => format!("else {}", code(&b.then)),
    };
    if !b.approvers.is_empty() {
        let _ = write!(s, " (approvers {})", code_list(&b.approvers));
    }
    s
}

fn delta_md(added: &[String], removed: &[String]) -> String {
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", code_list(added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", code_list(removed)));
    }
    parts.join("; ")
}

fn scope(stage: &Option<String>) -> String {
    match stage {
        Some(s) => format!("stage {}", code(s)),
        None => "playbook".into(),
    }
}

fn list_md(out: &mut String, indent: &str, label: &str, items: &[String]) {
    if items.is_empty() {
        let _ = writeln!(out, "{indent}- {label}: none");
    } else {
        let _ = writeln!(out, "{indent}- {label}:");
        for i in items {
            let _ = writeln!(out, "{indent}  - {i}");
        }
    }
}

fn change_md(out: &mut String, c: &Change) {
    match c {
        Change::StageAdded { stage, position } => {
            let _ = writeln!(
                out,
                "  - stage {} **added** at position {position}",
                code(stage)
            );
        }
        Change::StageRemoved { stage, position } => {
            let _ = writeln!(
                out,
                "  - stage {} **removed** (was at position {position})",
                code(stage)
            );
        }
        Change::StagesReordered { before, after } => {
            let _ = writeln!(
                out,
                "  - stages **reordered**: {} → {}",
                before
                    .iter()
                    .map(|s| code(s))
                    .collect::<Vec<_>>()
                    .join(", "),
                after.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
            );
        }
        Change::ApprovalChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(
                out,
                "  - stage {}: **approval** {} → {}",
                code(stage),
                code(before),
                code(after)
            );
        }
        Change::ApproversChanged {
            stage,
            before,
            after,
            added,
            removed,
        } => {
            let _ = writeln!(
                out,
                "  - {}: **approvers** {} ({} → {})",
                scope(stage),
                delta_md(added, removed),
                code_list(before),
                code_list(after)
            );
        }
        Change::SlaChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(
                out,
                "  - stage {}: **sla** {} → {}",
                code(stage),
                opt(before, "none"),
                opt(after, "none")
            );
        }
        Change::EscalationChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(out, "  - stage {}: **escalation** changed", code(stage));
            let b: Vec<String> = before.iter().map(level_md).collect();
            let a: Vec<String> = after.iter().map(level_md).collect();
            list_md(out, "    ", "before", &b);
            list_md(out, "    ", "after", &a);
        }
        Change::ConditionsChanged {
            stage,
            before,
            after,
        } => {
            let _ = writeln!(out, "  - stage {}: **conditions** changed", code(stage));
            let b: Vec<String> = before.iter().map(branch_md).collect();
            let a: Vec<String> = after.iter().map(branch_md).collect();
            list_md(out, "    ", "before", &b);
            list_md(out, "    ", "after", &a);
        }
        Change::RiskChanged {
            stage,
            before,
            after,
        } => {
            let absent = if stage.is_some() {
                "unset (the playbook's)"
            } else {
                "unset (`low`)"
            };
            let _ = writeln!(
                out,
                "  - {}: **risk** {} → {}",
                scope(stage),
                opt(before, absent),
                opt(after, absent)
            );
        }
        Change::ComplianceChanged {
            stage,
            added,
            removed,
            ..
        } => {
            let _ = writeln!(
                out,
                "  - {}: **compliance tags** {}",
                scope(stage),
                delta_md(added, removed)
            );
        }
        Change::FieldsChanged { stage, fields } => {
            let _ = writeln!(
                out,
                "  - {}: other fields changed: {}",
                scope(stage),
                code_list(fields)
            );
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report as Markdown, for a pull-request comment or a job summary. Headings start at
/// level 3 so that it nests under a page's own.
pub fn markdown(r: &DiffReport) -> String {
    let mut out = String::new();
    let short = |c: &str| code(c.get(..12).unwrap_or(c));
    let against = match r.base.commit.as_deref() {
        // A sha given as the revision is shown once, shortened.
        Some(c) if r.base.rev.len() >= 7 && c.starts_with(&r.base.rev) => short(c),
        Some(c) => format!("{} ({})", code(&r.base.rev), short(c)),
        None => code(&r.base.rev),
    };
    let _ = writeln!(out, "### Playbook changes against {against}\n");
    let s = r.summary;
    if !r.has_changes() {
        let _ = writeln!(
            out,
            "No playbook changed ({} compared).",
            plural(s.unchanged, "playbook", "playbooks")
        );
        problems_md(&mut out, r);
        return out;
    }
    let _ = writeln!(
        out,
        "{} added, {} removed, {} changed, {} unchanged.",
        s.added, s.removed, s.changed, s.unchanged
    );
    problems_md(&mut out, r);
    for e in &r.environments {
        if e.playbooks.is_empty() {
            continue;
        }
        let title = match &e.environment {
            Some(env) => format!("Environment {}", code(env)),
            None => "No environment".to_string(),
        };
        let _ = writeln!(out, "\n#### {title}\n");
        for p in &e.playbooks {
            let status = match p.status {
                Status::Added => "added",
                Status::Removed => "removed",
                Status::Changed => "changed",
            };
            let _ = writeln!(out, "- {} **{status}** in {}", code(&p.name), code(&p.unit));
            match p.status {
                Status::Added | Status::Removed => {
                    let _ = writeln!(out, "  - stages: {}", code_list(&p.stages));
                }
                Status::Changed => {
                    for c in &p.changes {
                        change_md(&mut out, c);
                    }
                }
            }
        }
        if e.unchanged > 0 {
            let _ = writeln!(
                out,
                "\n{} unchanged in this environment.",
                plural(e.unchanged, "playbook", "playbooks")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_fence_backticks_and_flatten_newlines() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("x\ny"), "`x y`");
        assert_eq!(code("<img src=x>"), "`<img src=x>`");
    }

    #[test]
    fn text_escapes_markdown_and_html() {
        assert_eq!(text("a [b](c) <i>"), "a \\[b\\](c) &lt;i&gt;");
        assert_eq!(text("x\n `y`"), "x \\`y\\`");
    }

    #[test]
    fn set_delta_keeps_order() {
        let b = vec!["a".to_string(), "b".to_string()];
        let a = vec!["c".to_string(), "a".to_string()];
        assert_eq!(set_delta(&b, &a), (vec!["c".into()], vec!["b".into()]));
    }
}
