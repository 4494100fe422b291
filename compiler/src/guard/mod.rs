//! Protected environments: an overlay of a protected environment may not weaken what it
//! deploys. Each resolved playbook of such a tree is compared with the same playbook
//! resolved from the overlay's bases (its directory resources, each resolved as a tree of
//! its own) and, when `promotion-order` names an earlier environment whose overlay is a
//! sibling directory, with that environment's. Documents match by kind and original
//! `metadata.name` (before prefixes and suffixes).
//!
//! Where things are: [`compare`] finds the weakenings of one playbook; [`suppress`] reads
//! the `# pbc:allow(CODE): reason` comments (a reason is required for these codes).

mod compare;
mod conditions;
pub mod suppress;

use crate::check::is_playbook;
use crate::config::Config;
use crate::declare_codes;
use crate::diag::Diagnostic;
use crate::fs::normalize;
use crate::load::Loader;
use crate::resolve::{Removal, Resolution, ResolveOptions, find_kustomization, resolve};
use crate::span::Span;
use crate::yaml::Node;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use suppress::Suppressed;

declare_codes! {
    /// An overlay of a protected environment removes a gate.
    ///
    /// The base (or the previous environment of `promotion-order`) gates a stage with
    /// `approval: manual` or `conditional`, and the overlay removes the `approval:` key
    /// (`approval: null`, a `$patch: replace` of the stage) or the whole stage
    /// (`$patch: delete`). The stage then runs without anyone approving it in the
    /// environment where it matters most. Environments are protected through `environments`
    /// and `production-environments` in `.pbc.yaml`.
    ///
    /// Fix: keep the gate in the overlay. If the environment really must run without it,
    /// say why where the patch does it, with a reviewed exception:
    /// `# pbc:allow(PB1030): <reason>` on the patch line or the line above.
    PB1030 GATE_REMOVED "gate-removed" Error "an overlay of a protected environment removes a gate";
    /// An overlay of a protected environment relaxes a stage's approval.
    ///
    /// The base gates the stage with `approval: manual` or `conditional`, and the overlay sets
    /// `approval: auto` (nobody approves), or turns `manual` into `conditional` (someone
    /// approves only when a condition holds). Either way the protected environment gates the
    /// stage less often than what it was promoted from.
    ///
    /// Fix: keep the base's approval. A reviewed exception is
    /// `# pbc:allow(PB1031): <reason>` on the patch line or the line above.
    PB1031 APPROVAL_RELAXED "approval-relaxed" Error "an overlay of a protected environment relaxes an approval";
    /// An overlay of a protected environment removes approvers.
    ///
    /// A gated stage (a manual `conditions[]` branch, or `spec.approvers`) has fewer approvers
    /// than in the base: a named role or user is gone (lists are replaced whole by a patch, so
    /// an overlay that means to add an approver must repeat the base's), the list is removed,
    /// or `min-approvals` is lower. A branch without approvers of its own has the stage's.
    /// Fewer people can then approve alone what the base meant to be checked by them.
    ///
    /// Fix: list the base's approvers too. A reviewed exception is
    /// `# pbc:allow(PB1032): <reason>` on the patch line or the line above.
    PB1032 APPROVERS_REMOVED "approvers-removed" Error "an overlay of a protected environment removes approvers";
    /// An overlay of a protected environment widens a condition so that it gates less often.
    ///
    /// pbc finds the cases it can decide: a `conditions[]` branch that gated with `then:
    /// manual` is gone or turned `auto`, `else: manual` became `else: auto`, or a branch's
    /// simple comparison (`FIELD OP NUMBER`) keeps its field and operator but relaxes its
    /// threshold (`x > 10` became `x > 100`). Other rewrites of a condition are not compared.
    ///
    /// Fix: keep the base's branches and thresholds. A reviewed exception is
    /// `# pbc:allow(PB1033): <reason>` on the patch line or the line above.
    PB1033 CONDITION_WIDENED "condition-widened" Error "an overlay of a protected environment widens a gate's condition";
    /// An overlay of a protected environment removes a guardrail or a policy.
    ///
    /// A stage's `guardrails` list lacks a guardrail the base has (lists are replaced whole
    /// by a patch: repeat the base's guardrails when adding one), or its `policy` is removed
    /// or replaced by another. The checks the base relied on then do not run there.
    ///
    /// Fix: keep the base's guardrails and policy. A reviewed exception is
    /// `# pbc:allow(PB1034): <reason>` on the patch line or the line above.
    PB1034 GUARDRAIL_REMOVED "guardrail-removed" Error "an overlay of a protected environment removes a guardrail or a policy";
    /// An overlay of a protected environment weakens audit logging.
    ///
    /// A stage the base marks `audit-log: required` is `optional` (or unmarked), or
    /// `spec.audit.log-to` lacks a sink the base writes to. The environment's audit trail then
    /// misses what the base promised to record.
    ///
    /// Fix: keep the base's audit settings. A reviewed exception is
    /// `# pbc:allow(PB1035): <reason>` on the patch line or the line above.
    PB1035 AUDIT_WEAKENED "audit-weakened" Error "an overlay of a protected environment weakens audit logging";
    /// An overlay of a protected environment lengthens an SLA or drops an escalation level.
    ///
    /// A stage's `sla` is longer than the base's (or removed), or its `escalation` has fewer
    /// levels. A pending approval then waits longer before anyone else is asked.
    ///
    /// Fix: keep the base's SLA and escalation levels (shorter is fine). A reviewed exception
    /// is `# pbc:allow(PB1036): <reason>` on the patch line or the line above.
    PB1036 ESCALATION_WEAKENED "escalation-weakened" Error "an overlay of a protected environment lengthens an SLA or drops an escalation level";
    /// An overlay of a protected environment lowers a risk level.
    ///
    /// `spec.risk` or a stage's `risk` is lower than in the base (`low` < `medium` < `high`;
    /// a stage without `risk` has the playbook's). A lower risk drops the approval a
    /// `medium` risk requires, or lets a `high`-risk stage run at all.
    ///
    /// Fix: keep the base's risk. A reviewed exception is
    /// `# pbc:allow(PB1037): <reason>` on the patch line or the line above.
    PB1037 RISK_LOWERED "risk-lowered" Error "an overlay of a protected environment lowers a risk level";
    /// An overlay of a protected environment reorders stages.
    ///
    /// Stages run in list order unless `needs` says otherwise, so a `$setElementOrder/stages`
    /// or a replaced stage list that changes the order of the base's stages can run a stage
    /// before the review the base put in front of it.
    ///
    /// Fix: keep the base's order (stages a patch adds are appended). A reviewed exception is
    /// `# pbc:allow(PB1038): <reason>` on the patch line or the line above.
    PB1038 STAGES_REORDERED "stages-reordered" Error "an overlay of a protected environment reorders stages";
    /// An overlay of a protected environment removes a rollback step.
    ///
    /// A stage's `rollback` (the undo step `revert-to-previous` runs) is removed, or
    /// `spec.rollback.on-failure` is no longer `revert-to-previous`. A failed run then leaves
    /// the changes of the completed stages in place.
    ///
    /// Fix: keep the base's rollback. A reviewed exception is
    /// `# pbc:allow(PB1039): <reason>` on the patch line or the line above.
    PB1039 ROLLBACK_REMOVED "rollback-removed" Error "an overlay of a protected environment removes a rollback step";
    /// A suppression of a protected-environment finding gives no reason.
    ///
    /// The findings PB1030–PB1039 may be allowed only as reviewed exceptions:
    /// `# pbc:allow(PB1031): the on-call rotation approves in the incident channel` on the
    /// patch line or the line above. A comment without a reason suppresses nothing, and is
    /// itself this error. The reasons are listed in `pbc check --format json` (`suppressed`)
    /// and in the GitHub Action's job summary, so that a reviewer sees every exception.
    ///
    /// Fix: add the reason after the closing parenthesis: `# pbc:allow(CODE): reason`.
    PB1040 SUPPRESSION_WITHOUT_REASON "suppression-without-reason" Error "a suppression of a protected-environment finding gives no reason";
}

/// Whether a code needs a reason to be suppressed (the protected-environment findings).
pub fn needs_reason(code: &str) -> bool {
    CODES
        .iter()
        .any(|c| c.id == code && c.id != SUPPRESSION_WITHOUT_REASON.id)
}

/// One resolved playbook, keyed for matching across resolutions.
struct Doc<'a> {
    /// `kind` and the original `metadata.name`.
    key: (String, String),
    node: &'a Node,
    removed: &'a [Removal],
}

fn docs_of<'a>(loader: &Loader, res: &'a Resolution) -> Vec<Doc<'a>> {
    res.docs
        .iter()
        .zip(&res.origins)
        .filter(|(d, _)| {
            is_playbook(d) || d.get("apiVersion").and_then(Node::as_str) == Some("agenticops/v1")
        })
        .map(|(d, o)| {
            let kind = d
                .get("kind")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string();
            let name = o
                .name
                .first()
                .and_then(|s| Some(loader.sources.get(s.file)?.slice(*s).to_string()))
                .filter(|s| !s.is_empty())
                .or_else(|| {
                    d.get_path(&["metadata", "name"])
                        .and_then(Node::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            Doc {
                key: (kind, name),
                node: d,
                removed: &o.removed,
            }
        })
        .collect()
}

/// The directories among a kustomization's `resources` (and `bases`) that hold a
/// kustomization: the overlay's bases.
fn base_dirs(loader: &Loader, dir: &Path) -> Vec<PathBuf> {
    let Some(kf) = find_kustomization(loader, dir) else {
        return Vec::new();
    };
    let Ok(loaded) = loader.load(&kf) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Some(doc) = loaded.docs.first() else {
        return out;
    };
    for key in ["resources", "bases"] {
        for item in doc.root.get(key).and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(s) = item.as_str() {
                let p = normalize(&dir.join(s));
                if find_kustomization(loader, &p).is_some() && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// The overlay of environment `prev` that corresponds to `dir` (an overlay of `env`):
/// `overlays/<prev>` with the same path below it, else `overlays/<prev>` itself. The
/// directories are found on the real path (as [`crate::check::environment`] does), and named
/// relative to `dir` as given.
fn sibling(loader: &Loader, dir: &Path, env: &str, prev: &str) -> Option<PathBuf> {
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let comps: Vec<_> = real.components().collect();
    let i = comps.iter().rposition(|c| c.as_os_str() == "overlays")?;
    if comps.get(i + 1).map(|c| c.as_os_str().to_string_lossy()) != Some(env.into()) {
        return None;
    }
    let rest: PathBuf = comps[i + 2..].iter().collect();
    let mut overlays = dir.to_path_buf();
    for _ in 0..=rest.components().count() {
        overlays.push("..");
    }
    [
        normalize(&overlays.join(prev).join(&rest)),
        normalize(&overlays.join(prev)),
    ]
    .into_iter()
    .find(|p| find_kustomization(loader, p).is_some())
}

/// Where a finding points when the patch that removed something left nothing behind: the
/// tree's kustomization file.
fn fallback_span(loader: &Loader, dir: &Path) -> Span {
    find_kustomization(loader, dir)
        .and_then(|k| loader.load(&k).ok())
        .map(|l| Span::point(l.file.id, 0))
        .unwrap_or_default()
}

/// The protected-environment findings of one resolved tree (`dir`, resolved as `res`).
pub fn check_tree(
    loader: &Loader,
    dir: &Path,
    res: &Resolution,
    cfg: &Config,
    opts: &ResolveOptions,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(env) = crate::check::environment(dir) else {
        return;
    };
    if !cfg.is_protected(&env) {
        return;
    }
    let current = docs_of(loader, res);
    if current.is_empty() {
        return;
    }
    let fallback = fallback_span(loader, dir);
    let mut against: Vec<(PathBuf, String)> = base_dirs(loader, dir)
        .into_iter()
        .map(|b| {
            let what = format!("the base `{}`", loader.display_path(&b).display());
            (b, what)
        })
        .collect();
    if let Some(prev) = cfg.previous_environment(&env)
        && let Some(p) = sibling(loader, dir, &env, prev)
        && normalize(&p) != normalize(dir)
    {
        against.push((p, format!("the previous environment `{prev}`")));
    }
    // The current playbooks by key, and the findings so far by code and place: one pass
    // each, not a scan per playbook.
    let mut by_key: HashMap<&(String, String), Vec<&Doc<'_>>> = HashMap::new();
    for c in &current {
        by_key.entry(&c.key).or_default().push(c);
    }
    let mut found: Vec<Diagnostic> = Vec::new();
    let mut seen: HashSet<(&'static str, Span)> = HashSet::new();
    for (other_dir, what) in against {
        let Ok(other) = resolve(loader, &other_dir, opts) else {
            continue;
        };
        let theirs: HashSet<Span> = other
            .origins
            .iter()
            .flat_map(|o| o.removed.iter().map(|r| r.span))
            .collect();
        for o in docs_of(loader, &other) {
            for c in by_key.get(&o.key).into_iter().flatten() {
                let removed: Vec<&Removal> = c
                    .removed
                    .iter()
                    .filter(|r| !theirs.contains(&r.span))
                    .collect();
                let mut cx = compare::Cmp {
                    removed,
                    against: &what,
                    fallback,
                    out: Vec::new(),
                };
                cx.playbook(o.node, c.node);
                for d in cx.out {
                    if seen.insert((d.code.id, d.span)) {
                        found.push(d);
                    }
                }
            }
        }
    }
    diags.extend(found);
}
