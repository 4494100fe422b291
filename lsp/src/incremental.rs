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
use pbc_compiler::yaml::{Entry, Node, Value};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A tree's findings by where they arose.
#[derive(Debug, Default)]
pub(crate) struct TreeState {
    /// The resolution's findings and those of the protected-environment comparison.
    diags: Vec<Diagnostic>,
    includes: Vec<(PathBuf, Span)>,
    separable: bool,
    /// Per resolved playbook, in output order: the document and the findings of its checks.
    docs: Vec<DocState>,
    /// The files the resolution read (kustomizations, patches, resources).
    files: HashSet<PathBuf>,
}

/// One resolved playbook of a tree and its findings. The document shares every part an
/// overlay did not change with the parsed file (and with the next resolution's document),
/// so keeping it costs little.
#[derive(Debug)]
struct DocState {
    doc: check::PlaybookDoc,
    diags: Vec<Diagnostic>,
}

impl DocState {
    /// The file the document came from.
    fn file(&self) -> FileId {
        self.doc.root.span.file
    }
}

impl TreeState {
    /// Resolves and checks the tree at `dir` whole. A playbook that resolves to what it
    /// was in `prev` keeps its findings there instead of being checked again: the caller
    /// passes `prev` only when nothing the checks read besides the documents changed.
    /// Returns the state and how many playbooks kept their findings.
    pub(crate) fn full(
        loader: &Loader,
        dir: &Path,
        cfg: &Config,
        schemas: &SchemaStore,
        extra: &DocCheck,
        prev: Option<&TreeState>,
    ) -> (Self, usize) {
        let tree = check::resolve_tree(loader, dir, &ResolveOptions::default(), cfg);
        let mut by_name: HashMap<&str, Vec<&DocState>> = HashMap::new();
        for d in prev.map(|p| p.docs.as_slice()).unwrap_or_default() {
            by_name.entry(name_of(&d.doc)).or_default().push(d);
        }
        let kept = AtomicUsize::new(0);
        let docs = tree
            .docs
            .into_par_iter()
            .map(|doc| {
                let same = by_name
                    .get(name_of(&doc))
                    .and_then(|c| c.iter().find(|d| same_doc(&d.doc, &doc)));
                let diags = match same {
                    Some(d) => {
                        kept.fetch_add(1, Ordering::Relaxed);
                        d.diags.clone()
                    }
                    None => check_one(loader, &doc, cfg, schemas, extra),
                };
                DocState { doc, diags }
            })
            .collect();
        let state = TreeState {
            docs,
            diags: tree.diags,
            includes: tree.includes,
            separable: tree.separable,
            files: tree.files.into_iter().collect(),
        };
        (state, kept.into_inner())
    }

    /// Whether one of the tree's playbooks came from the file `id`.
    pub(crate) fn has_source(&self, id: FileId) -> bool {
        self.docs.iter().any(|d| d.file() == id)
    }

    /// Whether every file in `changed` is one the resolution read: then the checks' other
    /// inputs (schemas, catalogs) are as they were, and [`TreeState::full`] may keep the
    /// findings of the playbooks that resolve as before.
    pub(crate) fn read_all(&self, changed: &BTreeSet<PathBuf>) -> bool {
        changed.iter().all(|p| self.read(p))
    }

    /// Whether the resolution read `path`.
    pub(crate) fn read(&self, path: &Path) -> bool {
        self.files.contains(path)
    }

    /// Brings the tree up to date after the resource file `file` (id `id`) changed, by
    /// resolving and checking that file's documents only. False (and nothing changed) when
    /// that cannot stand for the whole: the caller then resolves the tree whole. The file's
    /// documents kept their [`signature`] (the caller saw to it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn splice(
        &mut self,
        loader: &Loader,
        dir: &Path,
        file: &Path,
        id: FileId,
        cfg: &Config,
        schemas: &SchemaStore,
        extra: &DocCheck,
    ) -> bool {
        let sources: HashSet<FileId> = self.docs.iter().map(DocState::file).collect();
        // The tree's own findings must each lie in one document's file, or they could be
        // about the changed documents without showing it.
        let own_file = |d: &Diagnostic| {
            sources.contains(&d.span.file) && d.labels.iter().all(|l| l.span.file == d.span.file)
        };
        if !self.separable || !sources.contains(&id) || !self.diags.iter().all(own_file) {
            return false;
        }
        let opts = ResolveOptions {
            only: Some(loader.resolve(file)),
            ..ResolveOptions::default()
        };
        let sub = check::resolve_tree(loader, dir, &opts, cfg);
        let at: Vec<usize> = (0..self.docs.len())
            .filter(|&i| self.docs[i].file() == id)
            .collect();
        if !sub.separable
            || sub.docs.len() != at.len()
            || sub.docs.iter().any(|d| d.root.span.file != id)
        {
            return false;
        }
        let rechecked: Vec<DocState> = sub
            .docs
            .into_par_iter()
            .map(|doc| DocState {
                diags: check_one(loader, &doc, cfg, schemas, extra),
                doc,
            })
            .collect();
        for (i, d) in at.into_iter().zip(rechecked) {
            self.docs[i] = d;
        }
        // Whether a patch or a target matches nothing is the whole tree's to say: the ids,
        // labels and annotations it selects on did not change, so neither did the answer.
        self.diags.retain(|d| d.span.file != id);
        self.diags.extend(
            sub.diags
                .into_iter()
                .filter(|d| !matches!(d.code.id, "PB1010" | "PB1011")),
        );
        self.files.extend(sub.files);
        true
    }

    /// The tree's report, as `pbc check` of the tree gives it.
    pub(crate) fn report(&self, loader: &Loader, cfg: &Config, dir: &Path) -> check::Report {
        let mut diags = self.diags.clone();
        diags.extend(self.docs.iter().flat_map(|d| d.diags.iter().cloned()));
        check::report(
            loader,
            cfg,
            vec![(Some((dir.to_path_buf(), self.includes.clone())), diags)],
        )
    }
}

/// The findings of one playbook's checks.
fn check_one(
    loader: &Loader,
    doc: &check::PlaybookDoc,
    cfg: &Config,
    schemas: &SchemaStore,
    extra: &DocCheck,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    check::check_document(loader, schemas, doc, cfg, extra, &mut found);
    found
}

/// A playbook's `metadata.name` as resolved.
fn name_of(doc: &check::PlaybookDoc) -> &str {
    doc.root
        .get_path(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or("")
}

/// Whether two resolved playbooks are the same to the checks: the same values at the same
/// places (spans included: findings point at them), from the same tree, with the same name
/// provenance and quiet regions.
fn same_doc(a: &check::PlaybookDoc, b: &check::PlaybookDoc) -> bool {
    a.tree == b.tree
        && a.name_origin == b.name_origin
        && a.quiet == b.quiet
        && same_node(&a.root, &b.root)
}

/// Whether two trees are equal, spans included. A collection both share (what no overlay
/// changed: the same parsed part of an unchanged file) is equal without a look inside.
/// Iterative: documents may nest deeply.
fn same_node(a: &Node, b: &Node) -> bool {
    let mut stack = vec![(a, b)];
    while let Some((x, y)) = stack.pop() {
        if x.span != y.span {
            return false;
        }
        match (&x.value, &y.value) {
            (Value::Scalar(p), Value::Scalar(q)) => {
                if p != q {
                    return false;
                }
            }
            (Value::Seq(p), Value::Seq(q)) => {
                let (p, q): (&Vec<Node>, &Vec<Node>) = (p, q);
                if std::ptr::eq(p, q) {
                    continue;
                }
                if p.len() != q.len() {
                    return false;
                }
                stack.extend(p.iter().zip(q));
            }
            (Value::Map(p), Value::Map(q)) => {
                let (p, q): (&Vec<Entry>, &Vec<Entry>) = (p, q);
                if std::ptr::eq(p, q) {
                    continue;
                }
                if p.len() != q.len() {
                    return false;
                }
                for (e, f) in p.iter().zip(q) {
                    stack.push((&e.key, &f.key));
                    stack.push((&e.value, &f.value));
                }
            }
            _ => return false,
        }
    }
    true
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
