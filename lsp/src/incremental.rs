//! Re-checking a tree after an edit to one of its playbook files, without resolving and
//! checking the whole tree again.
//!
//! A tree keeps, per resolved playbook, the file it came from and its findings, and the
//! findings of its resolution. When one resource file changed and its documents kept their
//! ids, labels and annotations (the [`signature`]), and the tree's resolution ties no
//! document to another ([`Resolution::separable`]), only that file's documents are resolved
//! again ([`ResolveOptions::only`]) and checked; the other documents' findings stand. In
//! every other case the tree is resolved and checked whole, as `pbc check` does.
//!
//! [`Resolution::separable`]: pbc_compiler::resolve::Resolution::separable
//! [`ResolveOptions::only`]: pbc_compiler::resolve::ResolveOptions::only

use pbc_compiler::check::{self, DocCheck};
use pbc_compiler::config::Config;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::load::{Loaded, Loader};
use pbc_compiler::resolve::ResolveOptions;
use pbc_compiler::span::{FileId, Span};
use pbc_compiler::types::SchemaStore;
use pbc_compiler::yaml::Node;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A tree's findings by where they arose.
#[derive(Debug, Default)]
pub(crate) struct TreeState {
    /// The resolution's findings and those of the protected-environment comparison.
    diags: Vec<Diagnostic>,
    includes: Vec<(PathBuf, Span)>,
    separable: bool,
    /// Per resolved playbook, in output order: the file its document came from, and the
    /// findings of its checks.
    docs: Vec<(FileId, Vec<Diagnostic>)>,
}

impl TreeState {
    /// Resolves and checks the tree at `dir` whole.
    pub(crate) fn full(
        loader: &Loader,
        dir: &Path,
        cfg: &Config,
        schemas: &SchemaStore,
        extra: &DocCheck,
    ) -> Self {
        let tree = check::resolve_tree(loader, dir, &ResolveOptions::default(), cfg);
        TreeState {
            docs: check_docs(loader, tree.docs, cfg, schemas, extra),
            diags: tree.diags,
            includes: tree.includes,
            separable: tree.separable,
        }
    }

    /// The tree's state after the resource file `file` (id `id`) changed, found by resolving
    /// and checking that file's documents only; `None` when that cannot stand for the whole
    /// (the caller then resolves the tree whole). `same_ids`: the file's documents kept
    /// their [`signature`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn splice(
        &self,
        loader: &Loader,
        dir: &Path,
        file: &Path,
        id: FileId,
        cfg: &Config,
        schemas: &SchemaStore,
        extra: &DocCheck,
    ) -> Option<Self> {
        let sources: HashSet<FileId> = self.docs.iter().map(|(f, _)| *f).collect();
        // The tree's own findings must each lie in one document's file, or they could be
        // about the changed documents without showing it.
        let own_file = |d: &Diagnostic| {
            sources.contains(&d.span.file) && d.labels.iter().all(|l| l.span.file == d.span.file)
        };
        if !self.separable || !sources.contains(&id) || !self.diags.iter().all(own_file) {
            return None;
        }
        let opts = ResolveOptions {
            only: Some(loader.resolve(file)),
            ..ResolveOptions::default()
        };
        let sub = check::resolve_tree(loader, dir, &opts, cfg);
        let before = self.docs.iter().filter(|(f, _)| *f == id).count();
        if !sub.separable
            || sub.docs.len() != before
            || sub.docs.iter().any(|d| d.root.span.file != id)
        {
            return None;
        }
        // Whether a patch or a target matches nothing is the whole tree's to say: the ids,
        // labels and annotations it selects on did not change, so neither did the answer.
        let fresh: Vec<Diagnostic> = sub
            .diags
            .into_iter()
            .filter(|d| !matches!(d.code.id, "PB1010" | "PB1011"))
            .collect();
        let mut rechecked = check_docs(loader, sub.docs, cfg, schemas, extra).into_iter();
        let docs = self
            .docs
            .iter()
            .map(|(f, diags)| match *f == id {
                true => rechecked.next().unwrap_or_default(),
                false => (*f, diags.clone()),
            })
            .collect();
        let diags = self
            .diags
            .iter()
            .filter(|d| d.span.file != id)
            .cloned()
            .chain(fresh)
            .collect();
        Some(TreeState {
            diags,
            includes: self.includes.clone(),
            separable: true,
            docs,
        })
    }

    /// The tree's report, as `pbc check` of the tree gives it.
    pub(crate) fn report(&self, loader: &Loader, cfg: &Config, dir: &Path) -> check::Report {
        let mut diags = self.diags.clone();
        diags.extend(self.docs.iter().flat_map(|(_, d)| d.iter().cloned()));
        check::report(
            loader,
            cfg,
            vec![(Some((dir.to_path_buf(), self.includes.clone())), diags)],
        )
    }
}

/// Checks each playbook (in parallel); its source file and findings, in order.
fn check_docs(
    loader: &Loader,
    docs: Vec<check::PlaybookDoc>,
    cfg: &Config,
    schemas: &SchemaStore,
    extra: &DocCheck,
) -> Vec<(FileId, Vec<Diagnostic>)> {
    docs.into_par_iter()
        .map(|d| {
            let mut found = Vec::new();
            check::check_document(loader, schemas, &d, cfg, extra, &mut found);
            (d.root.span.file, found)
        })
        .collect()
}

/// What of a resource file a kustomization selects and names by: per document its
/// `apiVersion`, `kind`, `metadata.name`, `metadata.namespace`, labels and annotations.
/// `None` for a file whose documents cannot be compared so (it does not parse, a `…List`,
/// a label that is not a scalar).
pub(crate) fn signature(loaded: &Loaded) -> Option<String> {
    if loaded.has_errors() {
        return None;
    }
    let mut out = String::new();
    for d in &loaded.docs {
        let r = &d.root;
        out.push('\u{1e}');
        if r.is_null() {
            continue;
        }
        let text = |n: Option<&Node>| {
            n.and_then(Node::as_scalar)
                .map(|s| s.text.as_str().to_string())
                .unwrap_or_default()
        };
        let kind = text(r.get("kind"));
        if kind.ends_with("List") {
            return None;
        }
        for part in [
            kind,
            text(r.get("apiVersion")),
            text(r.get_path(&["metadata", "name"])),
            text(r.get_path(&["metadata", "namespace"])),
        ] {
            out.push_str(&part);
            out.push('\u{1f}');
        }
        for key in ["labels", "annotations"] {
            let Some(m) = r.get_path(&["metadata", key]) else {
                continue;
            };
            out.push_str(key);
            for e in m.as_map()? {
                out.push('\u{1f}');
                out.push_str(e.key_str());
                out.push('=');
                out.push_str(e.value.as_scalar()?.text.as_str());
            }
        }
    }
    Some(out)
}
