//! `pbc check`: discovery, then load → resolve → model → checks per unit, in
//! parallel, and the post-processing every command shares (suppressions, configured
//! severities, one report for problems in a shared base).

use crate::config::{self, Config};
use crate::diag::Diagnostic;
use crate::fs::normalize;
use crate::load::{LoadError, Loader};
use crate::span::Span;
use crate::yaml::Node;
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use crate::resolve::KUSTOMIZATION_FILES;
pub use report::{TreeDiags, report};

mod report;

/// What discovery found: trees (kustomization directories) and loose files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Units {
    /// Kustomization directories that no other found kustomization includes.
    pub trees: Vec<PathBuf>,
    /// YAML files outside every tree, and files named on the command line.
    pub files: Vec<(PathBuf, bool)>,
}

/// A command-line problem that stops the command (exit 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kustomization file in `dir`, if any.
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// Finds the units to check under the given paths. Uses the real disk and
/// honours `.gitignore`.
pub fn discover(paths: &[PathBuf]) -> Result<Units, UsageError> {
    let mut units = Units::default();
    let mut kdirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut loose: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| UsageError(format!("{}: {}", p.display(), io_reason(&e))))?;
        if meta.is_file() {
            units.files.push((normalize(p), true));
            continue;
        }
        if !meta.is_dir() {
            return Err(UsageError(format!(
                "{}: not a file or directory",
                p.display()
            )));
        }
        if kustomization_file(p).is_some() {
            units.trees.push(normalize(p));
            continue;
        }
        std::fs::read_dir(p)
            .map_err(|e| UsageError(format!("{}: {}", p.display(), io_reason(&e))))?;
        let walker = ignore::WalkBuilder::new(p)
            .require_git(false)
            .hidden(true)
            .sort_by_file_name(|a, b| a.cmp(b))
            .build();
        for entry in walker.flatten() {
            let path = entry.path();
            let Some(ft) = entry.file_type() else {
                continue;
            };
            if ft.is_dir() {
                if kustomization_file(path).is_some() {
                    kdirs.insert(normalize(path));
                }
            } else if ft.is_file() && is_yaml(path) {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !KUSTOMIZATION_FILES.contains(&name) && name != config::FILE_NAME {
                    loose.insert(normalize(path));
                }
            }
        }
    }
    // Kustomization directories included by another found one are not roots.
    let mut included: BTreeSet<PathBuf> = BTreeSet::new();
    for k in &kdirs {
        for r in kustomization_refs(k, &kdirs) {
            included.insert(r);
        }
    }
    for k in &kdirs {
        if !included.contains(k) {
            units.trees.push(k.clone());
        }
    }
    // Loose files: outside every kustomization directory.
    let kdir_set: std::collections::HashSet<&Path> = kdirs.iter().map(PathBuf::as_path).collect();
    for f in loose {
        if !f.ancestors().skip(1).any(|a| kdir_set.contains(a)) {
            units.files.push((f, false));
        }
    }
    units.trees.sort();
    units.trees.dedup();
    Ok(units)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The kustomization directories among `found` that the kustomization in `dir` refers to
/// through `resources`, `bases` and `components` (normalized). A light read used only for
/// discovery: only a found kustomization directory can be included, so the file system
/// is not asked about the other entries.
fn kustomization_refs(dir: &Path, found: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let Some(kf) = kustomization_file(dir) else {
        return Vec::new();
    };
    // Through the file system seam: size-bounded and file-type checked like every read.
    let limit = crate::yaml::Limits::default().max_file_bytes;
    let Ok(text) = crate::fs::FileSystem::read(&crate::fs::OsFs, &kf, limit)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
    else {
        return Vec::new();
    };
    let sm = crate::span::SourceMap::new();
    let f = sm.add(kf, text);
    let mut sink = Vec::new();
    let docs = crate::yaml::parse(&f, &crate::yaml::Limits::default(), &mut sink);
    let mut out = Vec::new();
    if let Some(d) = docs.first() {
        for key in ["resources", "bases", "components"] {
            for item in d.root.get(key).and_then(Node::as_seq).unwrap_or(&[]) {
                if let Some(s) = item.as_str() {
                    let p = normalize(&dir.join(s));
                    if found.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// The result of checking.
#[derive(Debug, Default)]
pub struct Report {
    pub diags: Vec<Diagnostic>,
    /// The number of files read.
    pub files: usize,
    /// The findings suppression comments removed (with their reasons).
    pub suppressed: Vec<crate::guard::Suppressed>,
}

/// One playbook document, ready for the checks: the resolved tree and where it came from.
#[derive(Debug, Clone)]
pub struct PlaybookDoc {
    pub root: Node,
    /// The tree (kustomization dir) it was resolved in, if any.
    pub tree: Option<PathBuf>,
    /// The spans that built `metadata.name` (the original name, then each prefix, suffix or
    /// patch that changed it); empty outside a tree.
    pub name_origin: Vec<Span>,
    /// Regions whose findings are consequences of an overlay finding already reported
    /// ([`crate::resolve::DocOrigin::quiet`]): not reported again.
    pub quiet: Vec<Span>,
}

impl PlaybookDoc {
    /// A document read on its own or in a tree, with no name provenance beyond its spans.
    pub fn new(root: Node, tree: Option<PathBuf>) -> Self {
        PlaybookDoc {
            root,
            tree,
            name_origin: Vec::new(),
            quiet: Vec::new(),
        }
    }
}

/// Everything a per-playbook check sees.
pub struct PlaybookCtx<'a> {
    pub doc: &'a PlaybookDoc,
    pub playbook: &'a crate::model::Playbook,
    pub analysis: &'a crate::sema::Analysis,
    /// The tree's environment: the directory directly under its nearest `overlays/`.
    pub env: Option<String>,
    pub cfg: &'a Config,
    pub loader: &'a Loader,
}

/// A pass that runs after the model and semantic checks (compliance lints, policies).
pub type DocCheck = dyn Fn(&PlaybookCtx<'_>, &mut Vec<Diagnostic>) + Sync;

/// The environment of a tree: the directory directly under its nearest `overlays/`.
/// The path is taken as the real directory on disk (`.` inside `overlays/production` is
/// `production`; a link to an overlay is that overlay), else as the absolute path.
pub fn environment(tree: &Path) -> Option<String> {
    let real = std::fs::canonicalize(tree)
        .or_else(|_| std::path::absolute(tree))
        .unwrap_or_else(|_| tree.to_path_buf());
    let comps: Vec<String> = normalize(&real)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let i = comps.iter().rposition(|c| c == "overlays")?;
    comps.get(i + 1).cloned()
}

/// Model, semantic checks and the extra passes for one Playbook document.
pub fn check_document(
    loader: &Loader,
    schemas: &crate::types::SchemaStore,
    doc: &PlaybookDoc,
    cfg: &Config,
    extra: &DocCheck,
    diags: &mut Vec<Diagnostic>,
) -> Option<(crate::model::Playbook, crate::sema::Analysis)> {
    let opts = crate::model::ModelOptions::from_config(cfg);
    let before = diags.len();
    let pb = crate::model::from_document(&doc.root, &loader.sources, &opts, diags);
    // A name made too long by an overlay's prefix or suffix is the targets' name check's
    // finding (it names each part); the model's DNS-1123 length complaint would repeat it.
    if doc.name_origin.len() > 1 {
        let mut i = before;
        while i < diags.len() {
            let d = &diags[i];
            let too_long = d.code.id == "PB2008"
                && doc.name_origin[1..].contains(&d.span)
                && d.label
                    .as_deref()
                    .is_some_and(|l| l.contains("characters long"));
            if too_long {
                diags.remove(i);
            } else {
                i += 1;
            }
        }
    }
    drop_consequences(&doc.quiet, before, diags);
    let pb = pb?;
    let cx = crate::sema::Ctx {
        loader,
        schemas,
        schema_paths: &cfg.schema_paths,
    };
    let analysis = crate::sema::analyze(&pb, &cx, diags);
    crate::enforcement::check::check(&pb, cfg, diags);
    crate::approval_rules::check(&pb, cfg, diags);
    let pctx = PlaybookCtx {
        doc,
        playbook: &pb,
        analysis: &analysis,
        env: doc.tree.as_deref().and_then(environment),
        cfg,
        loader,
    };
    extra(&pctx, diags);
    drop_consequences(&doc.quiet, before, diags);
    Some((pb, analysis))
}

/// Report the root cause once: the findings from `from` on whose primary span lies inside
/// a quiet region (one an overlay finding already explains) are dropped.
fn drop_consequences(quiet: &[Span], from: usize, diags: &mut Vec<Diagnostic>) {
    if quiet.is_empty() || from >= diags.len() {
        return;
    }
    let inside = |s: Span| {
        quiet
            .iter()
            .any(|q| q.file == s.file && q.start <= s.start && s.end <= q.end)
    };
    let mut i = from;
    while i < diags.len() {
        if inside(diags[i].span) {
            diags.remove(i);
        } else {
            i += 1;
        }
    }
}

/// True if a document declares `kind: Playbook`.
pub fn is_playbook(root: &Node) -> bool {
    root.get("kind").and_then(Node::as_str) == Some("Playbook")
}

/// Loads a loose file and returns its Playbook documents (plus load findings, for a file
/// named explicitly, holding playbooks or not parsing).
pub fn file_unit(
    loader: &Loader,
    path: &Path,
    explicit: bool,
    diags: &mut Vec<Diagnostic>,
) -> Vec<PlaybookDoc> {
    let loaded = match loader.load(path) {
        Ok(l) => l,
        Err(e) => {
            diags.push(load_error_diag(loader, &e));
            return Vec::new();
        }
    };
    let playbooks: Vec<PlaybookDoc> = loaded
        .docs
        .iter()
        .filter(|d| {
            is_playbook(&d.root)
                || d.root.get("apiVersion").and_then(Node::as_str) == Some("agenticops/v1")
        })
        .map(|d| PlaybookDoc::new(d.root.clone(), None))
        .collect();
    // A discovered file that is not a playbook is none of pbc's business, unless it does
    // not parse; a file named on the command line is always reported.
    if explicit || !playbooks.is_empty() || loaded.has_errors() {
        diags.extend(loaded.diags.iter().cloned());
    }
    playbooks
}

/// A load failure inside a tree or for a discovered file, as a finding.
pub fn load_error_diag(loader: &Loader, e: &LoadError) -> Diagnostic {
    let path = e.path().to_path_buf();
    let msg = match e {
        LoadError::NotFound(p) => format!("{}: no such file or directory", p.display()),
        _ => e.to_string(),
    };
    let code = match e {
        LoadError::NotAFile(..) => &crate::load::NOT_A_FILE,
        LoadError::OutsideRoot { .. } => &crate::resolve::OUTSIDE_ROOT,
        _ => &crate::yaml::UNREADABLE,
    };
    let file = loader
        .sources
        .find(&path)
        .unwrap_or_else(|| loader.sources.add(path, ""));
    Diagnostic::new(code, Span::point(file.id, 0), msg)
}

/// A tree resolved for the checks ([`resolve_tree`]).
#[derive(Debug, Default)]
pub struct TreeDocs {
    /// Its Playbook documents (overlays applied), in output order.
    pub docs: Vec<PlaybookDoc>,
    /// The resolution's findings and those of the protected-environment comparison.
    pub diags: Vec<Diagnostic>,
    /// The entries that included other kustomizations, for labelling problems in shared
    /// bases.
    pub includes: Vec<(PathBuf, Span)>,
    /// [`crate::resolve::Resolution::separable`].
    pub separable: bool,
    /// The files the resolution read (kustomizations, patches, resources).
    pub files: Vec<PathBuf>,
}

/// Resolves a tree (overlays applied) into its Playbook documents. The tree of a protected
/// environment is also compared with its bases ([`crate::guard`]).
pub fn resolve_tree(
    loader: &Loader,
    dir: &Path,
    opts: &crate::resolve::ResolveOptions,
    cfg: &Config,
) -> TreeDocs {
    let mut diags = Vec::new();
    match crate::resolve::resolve(loader, dir, opts) {
        Ok(mut res) => {
            diags.append(&mut res.diags);
            crate::guard::check_tree(loader, dir, &res, cfg, opts, &mut diags);
            let docs = res
                .docs
                .into_iter()
                .zip(res.origins)
                .filter(|(d, _)| {
                    is_playbook(d)
                        || d.get("apiVersion").and_then(Node::as_str) == Some("agenticops/v1")
                })
                .map(|(root, origin)| PlaybookDoc {
                    root,
                    tree: Some(dir.to_path_buf()),
                    name_origin: origin.name,
                    quiet: origin.quiet,
                })
                .collect();
            TreeDocs {
                docs,
                diags,
                includes: res.includes,
                separable: res.separable,
                files: res.files,
            }
        }
        Err(e) => {
            let path = dir.to_path_buf();
            let file = loader
                .sources
                .find(&path)
                .unwrap_or_else(|| loader.sources.add(loader.display_path(&path), ""));
            diags.push(Diagnostic::new(
                &crate::yaml::UNREADABLE,
                Span::point(file.id, 0),
                e.to_string(),
            ));
            TreeDocs {
                diags,
                ..TreeDocs::default()
            }
        }
    }
}

/// Checks the units. `doc_check` runs the model and the semantic checks on each Playbook.
pub fn check(loader: &Loader, units: &Units, cfg: &Config, extra: &DocCheck) -> Report {
    enum Unit<'a> {
        Tree(&'a Path),
        File(&'a Path, bool),
    }
    let all: Vec<Unit> = units
        .trees
        .iter()
        .map(|t| Unit::Tree(t))
        .chain(units.files.iter().map(|(f, e)| Unit::File(f, *e)))
        .collect();
    let schemas = crate::types::SchemaStore::with_root(&cfg.root);
    let ropts = crate::resolve::ResolveOptions::default();
    // A unit in two steps: resolve (or load) it, then check its playbooks.
    type Resolved = (
        Option<(PathBuf, Vec<(PathBuf, Span)>)>,
        Vec<PlaybookDoc>,
        Vec<Diagnostic>,
    );
    let prepare = |u: &Unit<'_>| -> Resolved {
        match u {
            Unit::Tree(t) => {
                let tree = resolve_tree(loader, t, &ropts, cfg);
                (
                    Some((t.to_path_buf(), tree.includes)),
                    tree.docs,
                    tree.diags,
                )
            }
            Unit::File(f, explicit) => {
                let mut diags = Vec::new();
                (None, file_unit(loader, f, *explicit, &mut diags), diags)
            }
        }
    };
    let finish = |(tree, docs, mut diags): Resolved| -> TreeDiags {
        // The playbooks of a unit are checked in parallel too (a handful of trees would not
        // keep every core busy); each resolved document is freed once checked.
        let per_doc: Vec<Vec<Diagnostic>> = docs
            .into_par_iter()
            .map(|d| {
                let mut dd = Vec::new();
                check_document(loader, &schemas, &d, cfg, extra, &mut dd);
                dd
            })
            .collect();
        diags.extend(per_doc.into_iter().flatten());
        (tree, diags)
    };
    // Trees are resolved one after another: trees that share a base would otherwise wait on
    // each other, since a file is parsed once and a thread that needs a file another is
    // parsing waits for it. Once a tree is resolved its files are parsed, so the next tree
    // is resolved while the playbooks of this one are checked (its serial parts then overlap
    // with the checks). Loose files are independent: in parallel.
    let (trees, files): (Vec<Unit>, Vec<Unit>) =
        all.into_iter().partition(|u| matches!(u, Unit::Tree(_)));
    let mut per_unit: Vec<TreeDiags> = Vec::with_capacity(trees.len() + files.len());
    let mut pending = trees.first().map(prepare);
    for next in trees.iter().skip(1) {
        let Some(cur) = pending.take() else { break };
        let (done, resolved) = rayon::join(|| finish(cur), || prepare(next));
        per_unit.push(done);
        pending = Some(resolved);
    }
    per_unit.extend(pending.map(finish));
    per_unit.extend(
        files
            .par_iter()
            .map(|u| finish(prepare(u)))
            .collect::<Vec<_>>(),
    );
    report(loader, cfg, per_unit)
}
