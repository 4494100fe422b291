//! The report of the checked units: a problem found through several trees (a shared base)
//! once, labelled with each tree; suppression comments and the configured severities
//! applied; in order.

use super::{Report, kustomization_file};
use crate::config::Config;
use crate::diag::{Diagnostic, sort_and_dedup};
use crate::load::Loader;
use crate::span::Span;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The report of the units' findings: a problem of a shared base once (labelled with each
/// tree), suppression comments and the configured severities applied, in order.
pub fn report(loader: &Loader, cfg: &Config, per_unit: Vec<TreeDiags>) -> Report {
    let mut diags = merge_shared(loader, per_unit);
    let mut suppressed = crate::guard::suppress::apply(&loader.sources, &mut diags);
    cfg.apply_levels(&mut diags);
    let sources = &loader.sources;
    suppressed.sort_by_cached_key(|x| {
        let file = sources
            .get(x.span.file)
            .map(|f| crate::render::path_str(&f.path));
        (file, x.span.start, x.code.id)
    });
    sort_and_dedup(&mut diags, |s| match sources.get(s.file) {
        Some(f) => (crate::render::path_str(&f.path), s.start),
        None => (String::new(), s.start),
    });
    Report {
        diags,
        files: loader.sources.len(),
        suppressed,
    }
}

/// The diagnostics of one unit, with its tree and the tree's include entries.
pub type TreeDiags = (Option<(PathBuf, Vec<(PathBuf, Span)>)>, Vec<Diagnostic>);

/// A problem found identically in several trees (a shared base) is reported once, with a
/// label per tree at the `resources:` entry through which it reaches the problem.
fn merge_shared(loader: &Loader, per_unit: Vec<TreeDiags>) -> Vec<Diagnostic> {
    let mut order: Vec<Diagnostic> = Vec::new();
    let mut trees_of: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut index: BTreeMap<(String, Span, String), usize> = BTreeMap::new();
    let mut trees: Vec<(PathBuf, Vec<(PathBuf, Span)>)> = Vec::new();
    for (tree, diags) in per_unit {
        let tree_idx = tree.map(|t| {
            trees.push(t);
            trees.len() - 1
        });
        for d in diags {
            let key = (d.code.id.to_string(), d.span, d.message.clone());
            let i = match index.get(&key) {
                Some(i) => *i,
                None => {
                    order.push(d);
                    index.insert(key, order.len() - 1);
                    order.len() - 1
                }
            };
            if let Some(t) = tree_idx {
                let v = trees_of.entry(i).or_default();
                if !v.contains(&t) {
                    v.push(t);
                }
            }
        }
    }
    let mut shared: Vec<(usize, Vec<usize>)> =
        trees_of.into_iter().filter(|(_, t)| t.len() > 1).collect();
    shared.sort();
    for (i, ts) in shared {
        let Some(d) = order.get_mut(i) else { continue };
        let Some(file) = loader.sources.get(d.span.file) else {
            continue;
        };
        let problem = loader.resolve(&file.path);
        for t in ts {
            let Some((root, includes)) = trees.get(t) else {
                continue;
            };
            let own_kf = kustomization_file(&loader.resolve(root)).map(|k| loader.resolve(&k));
            // The include entry of this tree's own kustomization that leads to the problem's
            // file (the deepest matching directory), else any entry that does.
            let leads = |(dir, _): &&(PathBuf, Span)| problem.starts_with(loader.resolve(dir));
            let in_own = |(_, sp): &&(PathBuf, Span)| {
                let f = loader.sources.get(sp.file).map(|f| loader.resolve(&f.path));
                f.is_some() && f == own_kf
            };
            let entry = includes
                .iter()
                .filter(leads)
                .filter(in_own)
                .max_by_key(|(dir, _)| dir.components().count())
                .or_else(|| {
                    includes
                        .iter()
                        .filter(leads)
                        .max_by_key(|(dir, _)| dir.components().count())
                });
            let span = match entry {
                Some((_, sp)) => *sp,
                None => match own_kf.as_ref().and_then(|k| loader.load(k).ok()) {
                    Some(l) => Span::point(l.file.id, 0),
                    None => continue,
                },
            };
            d.labels.push(crate::diag::Label {
                span,
                message: format!(
                    "also found through `{}`",
                    loader.display_path(root).display()
                ),
            });
        }
    }
    order
}
