//! Comparing two snapshots: playbooks added, removed or changed, and per stage what changed
//! (gates, approvers, escalation levels, conditions, other fields).

use super::*;

// ---------------------------------------------------------------------------------------
// Comparing.

pub(super) fn approver_names(a: &Option<model::Spanned<Vec<Approver>>>) -> Vec<String> {
    a.as_ref()
        .map(|v| v.value.iter().map(|x| x.name().value.clone()).collect())
        .unwrap_or_default()
}

pub(super) fn strings(v: &[model::Spanned<String>]) -> Vec<String> {
    v.iter().map(|s| s.value.clone()).collect()
}

pub(super) fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

/// `(added, removed)` between two lists read as sets, in the lists' own orders.
pub(super) fn set_delta(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
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
pub(super) fn expr_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn levels(s: &Stage) -> Vec<Level> {
    s.escalation
        .iter()
        .map(|l| Level {
            after: l.after.value.to_string(),
            approvers: approver_names(&l.approvers),
            notify: strings(&l.notify),
        })
        .collect()
}

pub(super) fn level_key(l: &Level) -> (String, BTreeSet<&str>, BTreeSet<&str>) {
    (l.after.clone(), set(&l.approvers), set(&l.notify))
}

pub(super) fn branches(s: &Stage) -> Vec<Branch> {
    s.conditions
        .iter()
        .map(|c| Branch {
            test: c.test.as_ref().map(|t| expr_text(&t.text.value)),
            then: c.then.value.to_string(),
            approvers: approver_names(&c.approvers),
        })
        .collect()
}

pub(super) fn branch_key(b: &Branch) -> (Option<String>, String, BTreeSet<&str>) {
    (b.test.clone(), b.then.clone(), set(&b.approvers))
}

/// Keys of a mapping whose values differ (by their JSON), skipping `handled`.
pub(super) fn other_fields(
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

pub(super) const STAGE_HANDLED: &[&str] = &[
    "name",
    "approval",
    "approvers",
    "sla",
    "escalation",
    "conditions",
    "risk",
    "compliance",
];

pub(super) fn stage_node(root: &Node, index: usize) -> Option<&Node> {
    root.get_path(&["spec", "stages"])?.as_seq()?.get(index)
}

pub(super) fn stage_changes(old: &Found, new: &Found, b: &Stage, a: &Stage, out: &mut Vec<Change>) {
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
pub(super) fn by_name(pb: &Playbook) -> BTreeMap<&str, &Stage> {
    let mut m = BTreeMap::new();
    for s in &pb.spec.stages {
        m.entry(s.name.value.as_str()).or_insert(s);
    }
    m
}

pub(super) fn stage_names(pb: &Playbook) -> Vec<String> {
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

pub(super) fn entry(f: &Found, name: &str, status: Status, changes: Vec<Change>) -> PlaybookDiff {
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

pub(super) fn problems(loader: &Loader, side: Side, diags: &[Diagnostic]) -> Vec<Problem> {
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
