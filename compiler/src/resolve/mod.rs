//! Overlays: resolving a kustomization tree (base + overlays + components) the way
//! `kubectl kustomize` does, on the spanned tree, so that every value of the result keeps
//! the file and span it came from.
//!
//! Entry points: [`resolve`] builds one kustomization directory; [`resolve_all`] builds
//! several in parallel (a base they share is parsed once: the [`Loader`] caches files);
//! [`emit_yaml`] writes the result like `kustomize build`.
//!
//! Per kustomization, in kustomize's order: resources (files, and directories built
//! completely first, in parallel), components, `patchesStrategicMerge`, `patches`,
//! `namespace`, `namePrefix`, `nameSuffix`, labels, `commonAnnotations`, `patchesJson6902`.
//! The top kustomization's `sortOptions` (default: kustomize's legacy order) orders the
//! output.

pub mod budget;
mod emit;
mod fieldspec;
mod inline;
pub mod json6902;
mod kust;
mod refuse;
pub mod select;
pub mod smp;

pub use budget::{WriteError, write_yaml_limited};
pub use emit::{emit_yaml, key_less, write_yaml};

use crate::declare_codes;
use crate::diag::{Diagnostic, did_you_mean};
use crate::fs::{FileKind, normalize};
use crate::load::{LoadError, Loader};
use crate::span::Span;
use crate::yaml::{Entry, Node, Text, Value};
use json6902::{Op, OpKind};
use kust::{Kust, KustKind, PatchField, PatchSource, PatchSpec, PathRef, SortSpec, Target};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

declare_codes! {
    /// A file or directory named in a kustomization does not exist.
    ///
    /// An entry of `resources:`, `components:`, a patch's `path:` or `openapi.path` names a
    /// path, relative to the kustomization's directory, that is not there. kustomize fails the
    /// build the same way. Fix the path (the help suggests a close name when there is one), or
    /// remove the entry.
    PB1001 MISSING_FILE "missing-file" Error "a path named in a kustomization does not exist";
    /// A directory listed in a kustomization holds no kustomization file.
    ///
    /// A directory under `resources:` or `components:` is built as a kustomization, so it must
    /// hold `kustomization.yaml`, `kustomization.yml` or `Kustomization`. List the files
    /// themselves instead, or add a kustomization file to the directory.
    PB1002 NO_KUSTOMIZATION "no-kustomization" Error "a listed directory has no kustomization file";
    /// A file lies outside the kustomization's root (kustomize's load restrictor).
    ///
    /// Like kustomize (`LoadRestrictionsRootOnly`), pbc reads the files a kustomization names
    /// (resources, patches, the openapi file) only from its own directory or below, also when
    /// a symlink inside the directory points outside it. Directories (bases) may be anywhere.
    /// This keeps a tree from reading files it does not own. The same holds for the other
    /// files pbc reads: an `output-schema`/`input-schema` lies under the kustomization that
    /// holds the playbook naming it (or under the `schema-paths` directory it was found in),
    /// a catalog or evidence-rule file under the directory of `.pbc.yaml`. A refused file is
    /// not read, and nothing of it is shown. Move the file under the kustomization, make the
    /// directory holding it a base with its own kustomization, or build with
    /// `--load-restrictor none`.
    PB1003 OUTSIDE_ROOT "outside-root" Error "a file outside the kustomization root";
    /// Kustomizations include each other in a cycle.
    ///
    /// A kustomization may not include itself, a directory above itself, or a kustomization
    /// that (through others) includes it: the build would never end. The message shows the
    /// cycle; each label is one edge. Remove one of the edges.
    PB1004 CYCLE "kustomization-cycle" Error "kustomizations include each other in a cycle";
    /// A remote resource (a URL or a `github.com/…` repository) is listed.
    ///
    /// pbc builds only what is in the checked-out tree, so that a build is reproducible and
    /// reviewable; it never fetches from the network. Vendor the remote base into the
    /// repository (for example with `git subtree`) and list its local path.
    PB1005 REMOTE_RESOURCE "remote-resource" Error "remote resources are not supported";
    /// A kustomization has a field that kustomize does not know either.
    ///
    /// kustomize rejects unknown fields (`invalid Kustomization: json: unknown field`). Usually
    /// a typo: the help names the closest field.
    PB1006 UNKNOWN_FIELD "unknown-kustomization-field" Error "unknown field in a kustomization";
    /// A kustomize field that pbc does not implement.
    ///
    /// pbc resolves overlays itself, and implements `resources`, `components`, `patches` (and
    /// the deprecated `patchesStrategicMerge`, `patchesJson6902`, `commonLabels`, `bases`),
    /// `namePrefix`, `nameSuffix`, `namespace`, `labels`, `commonAnnotations`, `openapi` and
    /// `sortOptions`. Generators, `images`, `replacements`, `replicas`, `vars`, `helmCharts`,
    /// plugins and the rest would be silently ignored by a partial implementation, so they are
    /// errors. Remove the field, or express it as a patch.
    PB1007 UNSUPPORTED_FIELD "unsupported-kustomization-field" Error "a kustomize field pbc does not implement";
    /// A deprecated kustomize field.
    ///
    /// `commonLabels`, `bases`, `patchesStrategicMerge` and `patchesJson6902` still work (pbc
    /// resolves them as kustomize does), but kustomize deprecates them: use `labels`,
    /// `resources` and `patches`. `kustomize edit fix` rewrites them.
    PB1008 DEPRECATED_FIELD "deprecated-kustomization-field" Warning "a deprecated kustomize field";
    /// A kustomization field has the wrong shape, or a kustomization is of the wrong kind.
    ///
    /// For example `resources:` that is not a list, a label value that is not a string, a
    /// patch with both `path` and `patch`, an invalid target regular expression or selector, a
    /// `Component` listed under `resources:` (or a `Kustomization` under `components:`), or an
    /// empty kustomization. The message says what is expected.
    PB1009 INVALID_KUSTOMIZATION "invalid-kustomization" Error "a kustomization field is invalid";
    /// A strategic-merge patch without `target` names no resource.
    ///
    /// Without `target`, a strategic-merge patch applies to the resource with its `apiVersion`,
    /// `kind`, `metadata.name` (and namespace): its original name, an intermediate one or the
    /// current one. kustomize fails when none matches (`no resource matches strategic merge
    /// patch`). Usually the name is misspelt or the resource is not among the resources; the
    /// help names a close one.
    PB1010 PATCH_NO_MATCH "patch-matches-nothing" Error "a strategic-merge patch names no resource";
    /// A patch's `target` selects no resource.
    ///
    /// kustomize silently skips such a patch, which hides typos in a target. pbc warns. Check
    /// the target's `kind`, `name` (an anchored regular expression) and selectors.
    PB1011 TARGET_SELECTS_NOTHING "target-selects-nothing" Warning "a patch target selects nothing";
    /// A JSON 6902 patch operation failed.
    ///
    /// An operation's `path` (or `from`) does not exist in the resource, an index is out of
    /// bounds, or a `test` found a different value. kustomize fails the build; pbc reports the
    /// operation and leaves the resource unpatched. Check the path against the resource as it
    /// is at that point (after the earlier patches).
    PB1012 JSON_PATCH_FAILED "json-patch-failed" Error "a JSON patch operation failed";
    /// A patch is malformed.
    ///
    /// The patch is neither a strategic-merge patch (a mapping) nor a JSON 6902 patch (a list
    /// of operations), a JSON patch lacks a `target`, an operation is unknown or lacks `path`,
    /// `value` or `from`, or a pointer is invalid.
    PB1013 INVALID_PATCH "invalid-patch" Error "a patch is malformed";
    /// Two resources have the same id (group, version, kind, namespace and name).
    ///
    /// kustomize refuses to add a resource whose id is already registered; a namespace
    /// transformation that makes two ids equal is refused too. Rename one of them, or include
    /// the file only once.
    PB1014 DUPLICATE_RESOURCE "duplicate-resource" Error "two resources have the same id";
    /// A resource document is invalid: not a mapping, or without `kind` or `metadata.name`.
    ///
    /// Every document of a resource file must be a Kubernetes-style object with `apiVersion`,
    /// `kind` and `metadata.name`. Empty documents are skipped.
    PB1015 INVALID_RESOURCE "invalid-resource" Error "a resource document is invalid";
    /// A JSON patch addresses `spec.stages` by index after a strategic merge on the stages.
    ///
    /// A strategic-merge patch on `spec.stages` earlier in the same kustomization may add,
    /// delete or reorder stages, so an index such as `/spec/stages/2` may not be the stage it
    /// was written for (and kustomize orders merged stages differently from pbc). Address the
    /// stage by name with a strategic-merge patch instead.
    PB1016 STAGE_INDEX_AFTER_MERGE "stage-index-after-merge" Warning "a JSON patch indexes stages after a merge on them";
    /// `$setElementOrder/stages` names a stage that does not exist.
    ///
    /// The directive lists the stages in their new order; a name that is not a stage after
    /// the merge is ignored. Fix the name, or remove it from the list.
    PB1017 UNKNOWN_ORDERED_STAGE "unknown-ordered-stage" Warning "`$setElementOrder/stages` names an unknown stage";
    /// Kustomizations nest deeper than the limit (64).
    ///
    /// Real trees nest a few levels. The limit bounds the work an input can cause.
    PB1018 TOO_DEEP "kustomization-too-deep" Error "kustomizations nest too deeply";
    /// A strategic-merge patch names a stage the base does not have, and the stage could
    /// not run on its own.
    ///
    /// Stages merge by `name`: a patch stage whose name is in no base stage is appended as a
    /// new stage (kustomize's semantics). When that stage has neither `agent` nor `action`
    /// it is almost always a misspelt name of a base stage, meant to change it (say, its
    /// `approval` or `min-approvals`). The help names the closest base stage. Fix the name;
    /// or, to add a stage, give it an `agent` or an `action`. The findings the stage would
    /// cause on its own (no executor, a manual gate without approvers, …) are not reported
    /// on top of this one.
    PB1019 UNKNOWN_PATCH_STAGE "patch-names-unknown-stage" Error "a patch names a stage the base does not have";
    /// A resource that kustomize would transform in a way pbc does not implement yet.
    ///
    /// No longer reported: it refused a `kind: List` document, which pbc now expands into its
    /// items as kustomize does (a kind ending in `List` with `items`, each item a resource of
    /// its own, after the file's other documents). The code stays reserved so that it keeps
    /// its meaning; refusals are now `unsupported-overlay-feature`.
    PB1023 UNSUPPORTED_RESOURCE "unsupported-resource" Error "a resource pbc does not implement";
    /// A kustomization needs a kustomize feature pbc does not implement yet.
    ///
    /// pbc builds what `kubectl kustomize` builds, or refuses: it never approximates. It
    /// refuses a strategic-merge patch that merges a list of a built-in Kubernetes kind (a
    /// Deployment's `containers`, `volumes`, `env`, …, merged by the schema's merge keys) or
    /// uses a `$…` directive on one; a rename (`namePrefix`, `nameSuffix`, a patch) or a
    /// namespace change of a resource that another resource refers to by name (a
    /// RoleBinding's `roleRef`, a volume's `configMap.name`, …), which kustomize would
    /// rewrite; and a custom OpenAPI schema for kinds other than the Playbook. The finding
    /// names the field and the kind; its label shows the value kustomize would change. Write
    /// the final value yourself (replace the list, use the final name), or build the tree
    /// with kustomize.
    PB1024 UNSUPPORTED_OVERLAY "unsupported-overlay-feature" Error "a kustomize feature pbc does not implement";
}

/// Whether files must lie under the kustomization's root (kustomize's `--load-restrictor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadRestrictor {
    /// `LoadRestrictionsRootOnly` (the default).
    #[default]
    RootOnly,
    /// `LoadRestrictionsNone`.
    None,
}

/// Options of a resolution.
#[derive(Clone, Debug)]
pub struct ResolveOptions {
    pub load_restrictor: LoadRestrictor,
    /// The deepest nesting of kustomizations accepted.
    pub max_depth: usize,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            load_restrictor: LoadRestrictor::RootOnly,
            max_depth: 64,
        }
    }
}

/// Where a resolved document's parts came from, beyond the spans its nodes carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocOrigin {
    /// The spans that built `metadata.name`: the original name, then each prefix or suffix
    /// (or patch) that changed it, innermost first.
    pub name: Vec<Span>,
    /// Regions whose findings are consequences of an overlay finding already reported (a
    /// stage a misspelt patch appended): the later checks drop findings inside them.
    pub quiet: Vec<Span>,
}

/// The result of resolving a kustomization directory.
#[derive(Debug, Default)]
pub struct Resolution {
    /// The resolved documents, in output order.
    pub docs: Vec<Node>,
    /// Per document (same index), where its name came from.
    pub origins: Vec<DocOrigin>,
    /// Loading and overlay problems.
    pub diags: Vec<Diagnostic>,
    /// Every file read (kustomizations, resources, patches), in first-read order.
    pub files: Vec<PathBuf>,
    /// Each included kustomization directory (bases, components) and the entry that
    /// included it.
    pub includes: Vec<(PathBuf, Span)>,
}

/// Why a directory could not be resolved at all (nothing to point a diagnostic at).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The path does not exist or is not a directory.
    NotADirectory(PathBuf),
    /// The directory holds no kustomization file.
    NoKustomization(PathBuf),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::NotADirectory(p) => write!(f, "{}: not a directory", p.display()),
            ResolveError::NoKustomization(p) => write!(
                f,
                "{}: no kustomization.yaml, kustomization.yml or Kustomization in this directory",
                p.display()
            ),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The kustomization file names kustomize accepts, in its order of preference.
pub const KUSTOMIZATION_FILES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file of a directory, if it has one.
pub fn find_kustomization(loader: &Loader, dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| loader.metadata(p).is_ok_and(|m| m.kind == FileKind::File))
}

/// Resolves the kustomization in `dir`.
pub fn resolve(
    loader: &Loader,
    dir: &Path,
    opts: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    let dir = normalize(dir);
    match loader.metadata(&dir) {
        Ok(m) if m.kind == FileKind::Dir => {}
        _ => return Err(ResolveError::NotADirectory(dir)),
    }
    if find_kustomization(loader, &dir).is_none() {
        return Err(ResolveError::NoKustomization(dir));
    }
    let ctx = Ctx {
        loader,
        opts,
        uid: AtomicU64::new(0),
        budget: budget::Budget::new(&loader.limits),
    };
    let (mut acc, sort) = ctx.build_dir(&dir, &[], None, KustKind::Kustomization);
    if ctx.budget.exceeded() {
        // Abandoned: what was built is incomplete (and was dropped).
        acc.res.clear();
    }
    if !acc.res.is_empty() {
        acc.diags.extend(refuse::name_references(&acc.res));
    }
    // kustomize writes every annotation value as a string (the scalar's text; a
    // collection becomes `""`, reported) and drops an empty `annotations` map.
    let lost: Vec<Diagnostic> = acc
        .res
        .par_iter_mut()
        .filter(|r| {
            r.node
                .get_path(&["metadata", "annotations"])
                .and_then(Node::as_map)
                .is_some_and(|m| m.is_empty() || m.iter().any(|e| e.value.as_str().is_none()))
        })
        .flat_map_iter(|r| {
            let md = r
                .node
                .as_map_mut()
                .and_then(|m| m.iter_mut().find(|e| e.key_str() == "metadata"));
            let found = match md {
                Some(md) if md.value.get("annotations").is_some() => {
                    normalize_annotations(&mut md.value, true)
                }
                _ => Vec::new(),
            };
            found
                .into_iter()
                .map(|(key, span, what)| collection_annotation(&key, span, what))
        })
        .collect();
    acc.diags.extend(lost);
    sort_resources(&mut acc.res, sort.as_ref());
    let mut files = Vec::new();
    let mut seen_files = std::collections::HashSet::new();
    for f in acc.files {
        if seen_files.insert(f.clone()) {
            files.push(f);
        }
    }
    // A file included twice (a diamond) reports its problems once.
    let mut diags: Vec<Diagnostic> = Vec::with_capacity(acc.diags.len());
    for d in acc.diags {
        if !diags.contains(&d) {
            diags.push(d);
        }
    }
    let (docs, origins) = acc
        .res
        .into_iter()
        .map(|r| {
            (
                r.node,
                DocOrigin {
                    name: r.name_spans,
                    quiet: r.quiet,
                },
            )
        })
        .unzip();
    Ok(Resolution {
        docs,
        origins,
        diags,
        files,
        includes: acc.includes,
    })
}

/// Resolves several kustomization directories in parallel.
pub fn resolve_all(
    loader: &Loader,
    dirs: &[PathBuf],
    opts: &ResolveOptions,
) -> Vec<Result<Resolution, ResolveError>> {
    dirs.par_iter().map(|d| resolve(loader, d, opts)).collect()
}

// ---------------------------------------------------------------------------------------
// Resources and their ids.

/// A resource id as kustomize compares them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ResId {
    group: Text,
    version: Text,
    kind: Text,
    ns: Text,
    name: Text,
}

fn text_at<'a>(n: &'a Node, path: &[&str]) -> &'a str {
    n.get_path(path)
        .and_then(|v| v.as_scalar())
        .map(|s| s.text.as_str())
        .unwrap_or("")
}

impl ResId {
    fn of(n: &Node) -> ResId {
        let api = text_at(n, &["apiVersion"]);
        let (group, version) = match api.split_once('/') {
            Some((g, v)) => (g.into(), v.into()),
            None => (Text::default(), api.into()),
        };
        ResId {
            group,
            version,
            kind: text_at(n, &["kind"]).into(),
            ns: text_at(n, &["metadata", "namespace"]).into(),
            name: text_at(n, &["metadata", "name"]).into(),
        }
    }

    fn namespaced(&self) -> bool {
        !fieldspec::cluster_scoped(&self.group, &self.version, &self.kind)
    }

    /// The namespace as kustomize compares it: `""` and `default` are the same.
    fn effective_ns(&self) -> &str {
        if !self.namespaced() {
            "_non_namespaceable_"
        } else if self.ns.is_empty() || self.ns == "default" {
            "default"
        } else {
            &self.ns
        }
    }

    fn same_gvk(&self, o: &ResId) -> bool {
        self.group == o.group && self.version == o.version && self.kind == o.kind
    }

    fn equals(&self, o: &ResId) -> bool {
        self.same_gvk(o) && self.name == o.name && self.effective_ns() == o.effective_ns()
    }

    /// The id with its effective namespace: two ids are [`ResId::equals`] exactly when
    /// their keys are equal, so duplicates are found through a hash map.
    fn key(mut self) -> ResId {
        let ns = self.effective_ns();
        if ns != self.ns {
            self.ns = ns.into();
        }
        self
    }

    /// `Playbook code-review-agent` (with its namespace, if any).
    fn describe(&self) -> String {
        let kind = if self.kind.is_empty() {
            "resource"
        } else {
            &self.kind
        };
        if self.ns.is_empty() {
            format!("{kind} `{}`", self.name)
        } else {
            format!("{kind} `{}` in namespace `{}`", self.name, self.ns)
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

struct Res {
    node: Node,
    orig: ResId,
    /// Ids the resource had before transformers changed them.
    prev: Vec<ResId>,
    uid: u64,
    name_spans: Vec<Span>,
    /// See [`DocOrigin::quiet`].
    quiet: Vec<Span>,
    /// The YAML nodes this resource accounts for (the node budget): counted when it was
    /// read, grown by the patches applied to it.
    nodes: u64,
}

impl Res {
    fn cur(&self) -> ResId {
        ResId::of(&self.node)
    }

    fn store_prev(&mut self) {
        let c = self.cur();
        if self.prev.last() != Some(&c) {
            self.prev.push(c);
        }
    }

    fn is_playbook(&self) -> bool {
        text_at(&self.node, &["apiVersion"]) == "agenticops/v1"
            && text_at(&self.node, &["kind"]) == "Playbook"
    }

    fn meta_map(&self, field: &str) -> BTreeMap<String, String> {
        self.node
            .get_path(&["metadata", field])
            .and_then(|m| m.as_map())
            .map(|m| {
                m.iter()
                    .filter_map(|e| {
                        Some((
                            e.key_str().to_string(),
                            e.value.as_scalar()?.text.as_str().to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn name_node(&self) -> Option<&Node> {
        self.node.get_path(&["metadata", "name"])
    }
}

/// Sets `key: value` in the mapping `n` (replacing the value in place if the key exists).
fn set_entry(n: &mut Node, key: Node, value: Node) {
    if let Some(m) = n.as_map_mut() {
        if let Some(e) = m
            .iter_mut()
            .find(|e| e.key_str() == key.as_scalar().map(|s| s.text.as_str()).unwrap_or(""))
        {
            e.value = value;
        } else {
            m.push(Entry { key, value });
        }
    }
}

fn remove_entry(n: &mut Node, key: &str) {
    if let Some(m) = n.as_map_mut() {
        m.retain(|e| e.key_str() != key);
    }
}

/// The `metadata` mapping of a resource, created (with `span`) if missing.
fn metadata_mut(doc: &mut Node, span: Span) -> Option<&mut Node> {
    let m = doc.as_map_mut()?;
    let i = match m.iter().position(|e| e.key_str() == "metadata") {
        Some(i) => i,
        None => {
            m.push(Entry {
                key: Node::string(span, "metadata"),
                value: Node::map(span, Vec::new()),
            });
            m.len() - 1
        }
    };
    let md = &mut m[i].value;
    if md.as_map().is_none() {
        *md = Node::map(span, Vec::new());
    }
    Some(md)
}

// ---------------------------------------------------------------------------------------
// The build.

#[derive(Default)]
struct Acc {
    res: Vec<Res>,
    diags: Vec<Diagnostic>,
    files: Vec<PathBuf>,
    includes: Vec<(PathBuf, Span)>,
}

impl Acc {
    fn merge_meta(&mut self, other: &mut Acc) {
        self.diags.append(&mut other.diags);
        self.files.append(&mut other.files);
        self.includes.append(&mut other.includes);
    }
}

/// A kustomization being built, for cycle detection.
#[derive(Clone)]
struct Frame {
    canon: PathBuf,
    display: PathBuf,
    /// The entry that included it (none for the top).
    via: Option<Span>,
}

struct Ctx<'a> {
    loader: &'a Loader,
    opts: &'a ResolveOptions,
    uid: AtomicU64,
    budget: budget::Budget,
}

/// The kustomization being accumulated: its directory and root.
struct KDir<'k> {
    kust: &'k Kust,
    dir: PathBuf,
    /// The canonical root for the load restrictor.
    root: PathBuf,
    file: crate::span::FileId,
}

fn looks_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("git::")
}

fn looks_remote_host(s: &str) -> bool {
    ["github.com/", "gitlab.com/", "bitbucket.org/"]
        .iter()
        .any(|h| s.starts_with(h))
}

impl<'a> Ctx<'a> {
    fn display(&self, p: &Path) -> String {
        crate::render::path_str(&self.loader.display_path(p))
    }

    fn canon(&self, p: &Path) -> PathBuf {
        self.loader.canonicalize(p).unwrap_or_else(|_| normalize(p))
    }

    /// A "did you mean" for a missing path, from the names in its directory.
    fn suggest_path(&self, path: &Path, text: &str) -> Option<String> {
        let parent = path.parent()?;
        let name = path.file_name()?.to_str()?;
        let entries = self.loader.fs.read_dir(parent).ok()?;
        let names: Vec<String> = entries
            .iter()
            .filter_map(|e| e.file_name()?.to_str().map(str::to_string))
            .collect();
        let best = did_you_mean(name, names.iter().map(String::as_str))?;
        let prefix = text.strip_suffix(name).unwrap_or("");
        Some(format!("{prefix}{best}"))
    }

    fn missing(&self, r: &PathRef, path: &Path, what: &str) -> Diagnostic {
        let mut d = Diagnostic::new(
            &MISSING_FILE,
            r.span,
            format!("{what} `{}` does not exist", r.text),
        )
        .with_label_text(format!("no such file or directory: {}", self.display(path)));
        if let Some(s) = self.suggest_path(path, &r.text) {
            d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                format!("use `{s}`"),
                vec![crate::diag::Edit {
                    span: r.span,
                    text: s,
                }],
            );
        }
        d
    }

    /// The load restrictor: `path` (a file) must lie under `root`.
    fn check_root(&self, kd: &KDir<'_>, r: &PathRef, path: &Path) -> Option<Diagnostic> {
        if self.opts.load_restrictor == LoadRestrictor::None {
            return None;
        }
        // A file directly in the kustomization's directory that is not a link lies in its
        // canonical root: one `lstat` instead of resolving every component of the path.
        if path.parent() == Some(kd.dir.as_path())
            && path.file_name().is_some()
            && self.loader.fs.is_symlink(path) == Some(false)
        {
            return None;
        }
        let canon = self.canon(path);
        if canon.starts_with(&kd.root) {
            return None;
        }
        let lexically_inside = normalize(path).starts_with(normalize(&kd.dir));
        let msg = if lexically_inside {
            format!(
                "`{}` is a symlink to `{}`, which is outside the kustomization root `{}`",
                r.text,
                self.display(&canon),
                self.display(&kd.dir)
            )
        } else {
            format!(
                "`{}` is outside the kustomization root `{}`",
                r.text,
                self.display(&kd.dir)
            )
        };
        Some(
            Diagnostic::new(&OUTSIDE_ROOT, r.span, msg).with_help(
                "a kustomization reads files only from its own directory or below (kustomize's load restrictor): move the file there, make its directory a base with its own kustomization, or build with `--load-restrictor none`",
            ),
        )
    }

    fn remote(&self, r: &PathRef) -> Diagnostic {
        Diagnostic::new(
            &REMOTE_RESOURCE,
            r.span,
            format!("`{}` is a remote resource; pbc builds only local files", r.text),
        )
        .with_help("vendor the remote base into this repository (e.g. with `git subtree`) and list its local path")
    }

    /// Builds the kustomization in `dir` on a fresh accumulator.
    fn build_dir(
        &self,
        dir: &Path,
        stack: &[Frame],
        via: Option<Span>,
        expect: KustKind,
    ) -> (Acc, Option<SortSpec>) {
        let mut acc = Acc::default();
        let Some((kust, kd_dir, file)) = self.load_kust(dir, via, expect, &mut acc) else {
            return (acc, None);
        };
        let mut stack2 = stack.to_vec();
        let canon = self.canon(dir);
        stack2.push(Frame {
            canon: canon.clone(),
            display: dir.to_path_buf(),
            via,
        });
        let kd = KDir {
            kust: &kust,
            dir: kd_dir,
            root: canon,
            file,
        };
        self.accumulate(&kd, &mut acc, &stack2);
        (acc, kust.sort.clone())
    }

    /// Finds, loads and reads a directory's kustomization, checking its kind.
    fn load_kust(
        &self,
        dir: &Path,
        via: Option<Span>,
        expect: KustKind,
        acc: &mut Acc,
    ) -> Option<(Kust, PathBuf, crate::span::FileId)> {
        // Like kustomize, a kustomization's own paths are taken from its real directory
        // (symbolic links resolved): `../../base` in an overlay reached through a link
        // names the base next to the real overlay.
        let real = self.canon(dir);
        let Some(kfile) = find_kustomization(self.loader, &real) else {
            if let Some(v) = via {
                acc.diags.push(
                    Diagnostic::new(
                        &NO_KUSTOMIZATION,
                        v,
                        format!(
                            "the directory `{}` holds no kustomization.yaml, kustomization.yml or Kustomization",
                            self.display(dir)
                        ),
                    )
                    .with_help("list the files of the directory one by one, or add a kustomization.yaml to it"),
                );
            }
            return None;
        };
        let loaded = match self.loader.load(&kfile) {
            Ok(l) => l,
            Err(e) => {
                if let Some(v) = via {
                    acc.diags.push(load_error(v, &e));
                }
                return None;
            }
        };
        acc.files.push(kfile.clone());
        acc.diags.extend(loaded.diags.iter().cloned());
        let file = loaded.file.id;
        let root = loaded
            .docs
            .iter()
            .find(|d| !d.root.is_null())
            .map(|d| d.root.clone())
            .unwrap_or_else(|| Node::null(Span::point(file, 0)));
        if loaded.has_errors() && root.is_null() {
            return None;
        }
        let kust = kust::parse(&root, Span::point(file, 0), &mut acc.diags)?;
        if kust.kind != expect
            && let Some(v) = via
        {
            let msg = match kust.kind {
                KustKind::Component => format!(
                    "`{}` is a Component; list it under `components:`, not `resources:`",
                    self.display(dir)
                ),
                KustKind::Kustomization => format!(
                    "`{}` is a Kustomization, not a Component; list it under `resources:`, not `components:`",
                    self.display(dir)
                ),
            };
            acc.diags.push(
                Diagnostic::new(&INVALID_KUSTOMIZATION, v, msg)
                    .with_help("a Component (`kind: Component`) runs inside the kustomization that lists it under `components:`; a Kustomization is built on its own and listed under `resources:`"),
            );
            return None;
        }
        Some((kust, real, file))
    }

    /// Cycle and depth checks before entering `dir`. `Err` carries the diagnostic.
    fn check_enter(&self, dir: &Path, r: &PathRef, stack: &[Frame]) -> Result<(), Box<Diagnostic>> {
        if stack.len() >= self.opts.max_depth {
            return Err(Box::new(Diagnostic::new(
                &TOO_DEEP,
                r.span,
                format!(
                    "kustomizations nest more than {} levels deep",
                    self.opts.max_depth
                ),
            )));
        }
        let cand = self.canon(dir);
        if let Some(i) = stack.iter().position(|f| f.canon.starts_with(&cand)) {
            let visited = &stack[i];
            let mut chain: Vec<String> = stack[i..]
                .iter()
                .map(|f| self.display(&f.display))
                .collect();
            chain.push(self.display(dir));
            let msg = if visited.canon == cand {
                format!(
                    "kustomizations include each other in a cycle: {}",
                    chain.join(" → ")
                )
            } else {
                format!(
                    "`{}` contains `{}`, which is being built: a kustomization cannot include its own directory or one above it",
                    r.text,
                    self.display(&stack[stack.len() - 1].display)
                )
            };
            let mut d = Diagnostic::new(&CYCLE, r.span, msg)
                .with_label_text(format!("includes `{}`", self.display(dir)));
            for (j, f) in stack.iter().enumerate().skip(i + 1) {
                if let Some(v) = f.via {
                    d = d.with_label(
                        v,
                        format!(
                            "`{}` includes `{}`",
                            self.display(&stack[j - 1].display),
                            self.display(&f.display)
                        ),
                    );
                }
            }
            return Err(Box::new(d.with_help(
                "remove one of the includes so that the kustomizations form a tree",
            )));
        }
        Ok(())
    }

    fn new_res(&self, node: Node, nodes: u64) -> Res {
        let orig = ResId::of(&node);
        let name_spans = node
            .get_path(&["metadata", "name"])
            .map(|n| vec![n.span])
            .unwrap_or_default();
        Res {
            node,
            orig,
            prev: Vec::new(),
            uid: self.uid.fetch_add(1, AtomicOrdering::Relaxed),
            name_spans,
            quiet: Vec::new(),
            nodes,
        }
    }

    /// One entry of `resources:`: a file or a directory, built on its own accumulator.
    fn resource_entry(&self, kd: &KDir<'_>, r: &PathRef, stack: &[Frame]) -> Acc {
        let mut acc = Acc::default();
        if looks_remote(&r.text) {
            acc.diags.push(self.remote(r));
            return acc;
        }
        let path = normalize(&kd.dir.join(&r.text));
        let meta = match self.loader.metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                acc.diags.push(if looks_remote_host(&r.text) {
                    self.remote(r)
                } else {
                    self.missing(r, &path, "the resource")
                });
                return acc;
            }
        };
        if meta.kind == FileKind::Dir {
            if let Err(d) = self.check_enter(&path, r, stack) {
                acc.diags.push(*d);
                return acc;
            }
            acc.includes.push((path.clone(), r.span));
            let (mut sub, _) = self.build_dir(&path, stack, Some(r.span), KustKind::Kustomization);
            acc.merge_meta(&mut sub);
            acc.res = sub.res;
            return acc;
        }
        if let Some(d) = self.check_root(kd, r, &path) {
            acc.diags.push(d);
            return acc;
        }
        let loaded = match self.loader.load(&path) {
            Ok(l) => l,
            Err(e) => {
                acc.diags.push(load_error(r.span, &e));
                return acc;
            }
        };
        acc.files.push(path);
        acc.diags.extend(loaded.diags.iter().cloned());
        // kustomize expands a `…List` with `items` into its items, appended after the
        // file's other documents.
        let mut queue: std::collections::VecDeque<(Node, u64)> = loaded
            .docs
            .iter()
            .map(|d| (d.root.clone(), d.nodes))
            .collect();
        while let Some((root, nodes)) = queue.pop_front() {
            let root = &root;
            if root.is_null() {
                continue;
            }
            if root.as_map().is_none() {
                acc.diags.push(Diagnostic::new(
                    &INVALID_RESOURCE,
                    root.span,
                    format!("a resource must be a mapping, not {}", root.type_name()),
                ));
                continue;
            }
            if root
                .get("kind")
                .and_then(|k| k.as_str())
                .is_none_or(str::is_empty)
            {
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_RESOURCE,
                        root.span.sub(0, 0),
                        "this resource has no `kind`",
                    )
                    .with_help("every resource needs `apiVersion`, `kind` and `metadata.name`"),
                );
                continue;
            }
            if root
                .get("kind")
                .and_then(Node::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && let Some(items) = root.get("items")
            {
                match items.as_seq() {
                    Some(list) => {
                        queue.extend(list.iter().map(|i| (i.clone(), i.count() as u64)));
                    }
                    None if items.is_null() => {}
                    None => acc.diags.push(Diagnostic::new(
                        &INVALID_RESOURCE,
                        items.span,
                        format!(
                            "`items` of a list must be a list, not {}",
                            items.type_name()
                        ),
                    )),
                }
                continue;
            }
            if root
                .get_path(&["metadata", "name"])
                .and_then(|n| n.as_scalar())
                .is_none_or(|s| s.text.is_empty())
            {
                let at = root
                    .entry("metadata")
                    .map(|e| e.key.span)
                    .unwrap_or(root.span.sub(0, 0));
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_RESOURCE,
                        at,
                        "this resource has no `metadata.name`",
                    )
                    .with_help("every resource needs `apiVersion`, `kind` and `metadata.name`"),
                );
                continue;
            }
            acc.res.push(self.new_res(root.clone(), nodes));
        }
        acc
    }

    /// Adds a resource whose current id is `id`, refusing a duplicate id. `index` maps the
    /// [`ResId::key`] of every resource of `acc` to its position.
    fn append_id(
        &self,
        acc: &mut Acc,
        index: &mut HashMap<ResId, usize>,
        res: Res,
        id: ResId,
        entry: Span,
    ) {
        let key = id.clone().key();
        if let Some(first) = index.get(&key).map(|&i| &acc.res[i]) {
            let mut d = Diagnostic::new(
                &DUPLICATE_RESOURCE,
                entry,
                format!("{} is defined twice", id.describe()),
            )
            .with_label_text("adds it a second time");
            if let Some(n) = first.name_node() {
                d = d.with_label(n.span, "first defined here");
            }
            if let Some(n) = res.name_node() {
                d = d.with_label(n.span, "defined again here");
            }
            acc.diags.push(d.with_help(
                "two resources may not share group, version, kind, namespace and name: rename one, or include the file once",
            ));
            return;
        }
        index.insert(key, acc.res.len());
        acc.res.push(res);
    }

    fn accumulate(&self, kd: &KDir<'_>, acc: &mut Acc, stack: &[Frame]) {
        if self.budget.exceeded() {
            return;
        }
        let k = kd.kust;
        // 1. Resources, each built independently (in parallel), appended in order.
        let subs: Vec<(Acc, Vec<ResId>)> = k
            .resources
            .par_iter()
            .map(|r| {
                let sub = self.resource_entry(kd, r, stack);
                let ids = sub.res.iter().map(Res::cur).collect();
                (sub, ids)
            })
            .collect();
        let mut index: HashMap<ResId, usize> =
            HashMap::with_capacity(acc.res.len() + k.resources.len());
        for (i, r) in acc.res.iter().enumerate() {
            index.entry(r.cur().key()).or_insert(i);
        }
        let mut nodes: u64 = acc.res.iter().map(|r| r.nodes).sum();
        let mut stopped = false;
        for (r, (mut sub, ids)) in k.resources.iter().zip(subs) {
            // The findings of every entry are kept, also past a budget (one of them may be
            // the budget's finding, from a build in parallel).
            acc.merge_meta(&mut sub);
            if stopped {
                continue;
            }
            nodes = nodes.saturating_add(sub.res.iter().map(|r| r.nodes).sum());
            for (res, id) in sub.res.into_iter().zip(ids) {
                self.append_id(acc, &mut index, res, id, r.span);
            }
            stopped = self.over_budget(kd, r.span, acc, nodes);
        }
        if stopped || self.budget.exceeded() {
            acc.res.clear();
            return;
        }
        // openapi: the file must exist and be under the root; a schema for the Playbook
        // alone has no effect (pbc always merges stages by name), another is refused.
        if let Some(o) = &k.openapi {
            let path = normalize(&kd.dir.join(&o.text));
            if self.loader.metadata(&path).is_err() {
                acc.diags.push(self.missing(o, &path, "the openapi file"));
            } else if let Some(d) = self.check_root(kd, o, &path) {
                acc.diags.push(d);
            } else if let Ok(bytes) = self
                .loader
                .fs
                .read(&path, self.loader.limits.max_file_bytes)
                && let Some(d) = refuse::custom_schema(&bytes, o.span)
            {
                acc.diags.push(d);
            }
        }
        // 2. Components, run on everything accumulated so far.
        for c in &k.components {
            if looks_remote(&c.text) {
                acc.diags.push(self.remote(c));
                continue;
            }
            let path = normalize(&kd.dir.join(&c.text));
            match self.loader.metadata(&path) {
                Ok(m) if m.kind == FileKind::Dir => {}
                Ok(_) => {
                    acc.diags.push(Diagnostic::new(
                        &INVALID_KUSTOMIZATION,
                        c.span,
                        format!("a component must be a directory with a `kind: Component` kustomization; `{}` is a file", c.text),
                    ));
                    continue;
                }
                Err(_) => {
                    acc.diags.push(self.missing(c, &path, "the component"));
                    continue;
                }
            }
            if let Err(d) = self.check_enter(&path, c, stack) {
                acc.diags.push(*d);
                continue;
            }
            acc.includes.push((path.clone(), c.span));
            let Some((ckust, cdir, cfile)) =
                self.load_kust(&path, Some(c.span), KustKind::Component, acc)
            else {
                continue;
            };
            let canon = self.canon(&path);
            let mut stack2 = stack.to_vec();
            stack2.push(Frame {
                canon: canon.clone(),
                display: path.clone(),
                via: Some(c.span),
            });
            let ckd = KDir {
                kust: &ckust,
                dir: cdir,
                root: canon,
                file: cfile,
            };
            self.accumulate(&ckd, acc, &stack2);
            if self.budget.exceeded() {
                return;
            }
        }
        // 3. Patches.
        let mut merged_stages: HashMap<u64, Span> = HashMap::new();
        for p in k.patches_sm.iter().chain(&k.patches) {
            self.patch(kd, p, acc, &mut merged_stages);
            if self.budget.exceeded() {
                acc.res.clear();
                return;
            }
        }
        // 4. Transformers.
        if let Some(ns) = &k.namespace {
            self.set_namespace(ns, acc);
        }
        if k.prefix.is_some() || k.suffix.is_some() {
            self.prefix_suffix(k.prefix.as_ref(), k.suffix.as_ref(), acc);
        }
        for l in &k.labels {
            acc.res
                .par_iter_mut()
                .for_each(|r| fieldspec::apply_pairs(&mut r.node, l));
        }
        if let Some(a) = &k.annotations {
            acc.res
                .par_iter_mut()
                .for_each(|r| fieldspec::apply_pairs(&mut r.node, a));
        }
        for p in &k.patches_json {
            self.patch(kd, p, acc, &mut merged_stages);
            if self.budget.exceeded() {
                acc.res.clear();
                return;
            }
        }
    }

    /// The resource and node budgets after the `resources:` entry at `entry` was added:
    /// over one, the finding (from the first to notice), the accumulated resources
    /// dropped, and true.
    fn over_budget(&self, kd: &KDir<'_>, entry: Span, acc: &mut Acc, nodes: u64) -> bool {
        let b = &self.budget;
        let finding = if acc.res.len() > b.max_resources {
            Some(b.too_many_resources(entry, &self.display(&kd.dir), acc.res.len()))
        } else if nodes > b.max_nodes {
            Some(b.too_many_nodes(
                entry,
                format!("with this entry, the build of `{}`", self.display(&kd.dir)),
            ))
        } else {
            None
        };
        let Some(d) = finding else {
            return b.exceeded();
        };
        if b.trip() {
            acc.diags.push(d);
        }
        acc.res.clear();
        true
    }

    fn set_namespace(&self, ns: &Node, acc: &mut Acc) {
        let text = ns.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
        for r in &mut acc.res {
            let id = r.cur();
            if id.namespaced() {
                r.store_prev();
                if let Some(md) = metadata_mut(&mut r.node, ns.span) {
                    set_entry(
                        md,
                        Node::string(ns.span, "namespace"),
                        Node::string(ns.span, text.clone()),
                    );
                }
            } else if id.kind == "Namespace" && id.group.is_empty() && id.version == "v1" {
                r.store_prev();
                if let Some(md) = metadata_mut(&mut r.node, ns.span) {
                    set_entry(
                        md,
                        Node::string(ns.span, "name"),
                        Node::string(ns.span, text.clone()),
                    );
                }
                r.name_spans.push(ns.span);
            }
            fieldspec::namespace_fields(&mut r.node, &id, ns, &text);
        }
        // The transformation must not make two ids equal.
        let mut first_of: HashMap<ResId, usize> = HashMap::with_capacity(acc.res.len());
        for i in 0..acc.res.len() {
            let id = acc.res[i].cur();
            let j = *first_of.entry(id.clone().key()).or_insert(i);
            if j != i {
                let mut d = Diagnostic::new(
                    &DUPLICATE_RESOURCE,
                    ns.span,
                    format!(
                        "setting the namespace makes two resources {}",
                        id.describe()
                    ),
                );
                for k in [j, i] {
                    if let Some(n) = acc.res[k].node.get_path(&["metadata", "name"]) {
                        d = d.with_label(n.span, "one of them");
                    }
                }
                acc.diags.push(d);
            }
        }
    }

    fn prefix_suffix(&self, prefix: Option<&Node>, suffix: Option<&Node>, acc: &mut Acc) {
        let p = prefix
            .and_then(|n| n.as_scalar())
            .map(|s| s.text.as_str())
            .unwrap_or("");
        let s = suffix
            .and_then(|n| n.as_scalar())
            .map(|s| s.text.as_str())
            .unwrap_or("");
        let span = prefix.or(suffix).map(|n| n.span).unwrap_or_default();
        acc.res.par_iter_mut().for_each(|r| {
            let id = r.cur();
            if matches!(
                id.kind.as_str(),
                "CustomResourceDefinition" | "APIService" | "Namespace"
            ) {
                return;
            }
            r.store_prev();
            let new = format!("{p}{}{s}", id.name);
            if let Some(md) = metadata_mut(&mut r.node, span) {
                set_entry(md, Node::string(span, "name"), Node::string(span, new));
            }
            r.name_spans.extend(prefix.map(|n| n.span));
            r.name_spans.extend(suffix.map(|n| n.span));
        });
    }

    // -------------------------------------------------------------------------------------
    // Patches.

    /// Loads a patch's documents (inline or from a file).
    fn patch_docs(&self, kd: &KDir<'_>, p: &PatchSpec, acc: &mut Acc) -> Option<Vec<Node>> {
        let (docs, span) = match &p.source {
            PatchSource::Inline(n) => {
                let file = self.loader.sources.get(kd.file)?;
                let (docs, diags) = inline::parse_inline(&file, n, &self.loader.limits);
                acc.diags.extend(diags);
                (docs, n.span)
            }
            PatchSource::Path(r) => {
                if looks_remote(&r.text) {
                    acc.diags.push(self.remote(r));
                    return None;
                }
                let path = normalize(&kd.dir.join(&r.text));
                match self.loader.metadata(&path) {
                    Ok(m) if m.kind == FileKind::File => {}
                    Ok(_) => {
                        acc.diags.push(Diagnostic::new(
                            &INVALID_PATCH,
                            r.span,
                            format!("the patch `{}` is a directory, not a file", r.text),
                        ));
                        return None;
                    }
                    Err(_) => {
                        acc.diags.push(self.missing(r, &path, "the patch file"));
                        return None;
                    }
                }
                if let Some(d) = self.check_root(kd, r, &path) {
                    acc.diags.push(d);
                    return None;
                }
                let loaded = match self.loader.load(&path) {
                    Ok(l) => l,
                    Err(e) => {
                        acc.diags.push(load_error(r.span, &e));
                        return None;
                    }
                };
                acc.files.push(path);
                acc.diags.extend(loaded.diags.iter().cloned());
                (loaded.docs.clone(), r.span)
            }
        };
        let roots: Vec<Node> = docs
            .into_iter()
            .map(|d| d.root)
            .filter(|r| !r.is_null())
            .collect();
        if roots.is_empty() {
            acc.diags
                .push(Diagnostic::new(&INVALID_PATCH, span, "the patch is empty"));
            return None;
        }
        Some(roots)
    }

    fn patch(&self, kd: &KDir<'_>, p: &PatchSpec, acc: &mut Acc, merged: &mut HashMap<u64, Span>) {
        let Some(roots) = self.patch_docs(kd, p, acc) else {
            return;
        };
        let is_json = roots[0].as_seq().is_some();
        match (is_json, p.field) {
            (true, PatchField::StrategicMerge) => {
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_PATCH,
                        roots[0].span,
                        "`patchesStrategicMerge` holds a JSON patch (a list of operations)",
                    )
                    .with_help("list JSON patches under `patches:` with a `target`"),
                );
                return;
            }
            (false, PatchField::Json6902) => {
                acc.diags.push(
                    Diagnostic::new(
                        &INVALID_PATCH,
                        roots[0].span,
                        "`patchesJson6902` holds a strategic-merge patch, not a list of operations",
                    )
                    .with_help("list strategic-merge patches under `patches:`"),
                );
                return;
            }
            _ => {}
        }
        if is_json {
            if roots.len() > 1 {
                acc.diags.push(Diagnostic::new(
                    &INVALID_PATCH,
                    roots[1].span,
                    "a JSON patch is one list of operations; this second document is ignored",
                ));
            }
            let Some(ops) = parse_ops(&roots[0], &mut acc.diags) else {
                return;
            };
            let Some(target) = &p.target else {
                acc.diags.push(
                    Diagnostic::new(&INVALID_PATCH, p.span, "a JSON patch needs a `target`")
                        .with_help(
                            "add `target:` with the `kind` and `name` of the resources to patch",
                        ),
                );
                return;
            };
            // Each selected resource is patched on its own (in parallel); the problems are
            // reported in resource order.
            let merged = &*merged;
            // The node budget: what each operation adds, charged as it runs.
            let values: Vec<(u64, usize)> = ops
                .iter()
                .map(|o| {
                    o.value
                        .as_ref()
                        .map_or((0, 0), |v| (v.count() as u64, v.depth()))
                })
                .collect();
            let max_depth = self.loader.limits.max_depth;
            let base: u64 = acc.res.iter().map(|r| r.nodes).sum();
            let grown = AtomicU64::new(0);
            let max_nodes = self.budget.max_nodes;
            let per_res: Vec<Vec<Diagnostic>> = acc
                .res
                .par_iter_mut()
                .filter(|r| selects(r, target))
                .map(|r| {
                let mut diags = Vec::new();
                if let Some(ms) = merged.get(&r.uid) {
                    for op in &ops {
                        for (ptr, span) in std::iter::once((&op.path, op.path_span))
                            .chain(op.from.as_ref().map(|(f, s)| (f, *s)))
                        {
                            if stage_index(ptr) {
                                diags.push(
                                    Diagnostic::new(
                                        &STAGE_INDEX_AFTER_MERGE,
                                        span,
                                        format!("`{ptr}` addresses a stage by index after a strategic merge on the stages of {}", r.cur().describe()),
                                    )
                                    .with_label(*ms, "the stages are merged here")
                                    .with_help("the merge may add, delete or reorder stages; patch the stage by name with a strategic-merge patch instead"),
                                );
                            }
                        }
                    }
                }
                r.store_prev();
                let before_name = r.name_node().map(|n| n.span);
                // kustomize's resources always carry (internal) annotations while patches
                // run, so an op may add under `/metadata/annotations` of a resource that
                // has none; and it writes annotations back as strings, dropping an empty map.
                let md_span = r.node.get("metadata").map(|m| m.span).unwrap_or_default();
                let had_annotations = r.node.get_path(&["metadata", "annotations"]).is_some();
                if !had_annotations && let Some(md) = metadata_mut(&mut r.node, md_span) {
                    set_entry(
                        md,
                        Node::string(md_span, "annotations"),
                        Node::map(md_span, Vec::new()),
                    );
                }
                let mut added = 0u64;
                let charge = |cost: Option<u64>| {
                    let Some(c) = cost else { return false };
                    added = added.saturating_add(c);
                    let before = grown.fetch_add(c, AtomicOrdering::Relaxed);
                    base.saturating_add(before).saturating_add(c) <= max_nodes
                };
                let result = budget::apply_json(&mut r.node, &ops, &values, charge, max_nodes, max_depth);
                if result.is_ok() {
                    r.nodes = r.nodes.saturating_add(added);
                }
                if let Some(md) = r
                    .node
                    .as_map_mut()
                    .and_then(|m| m.iter_mut().find(|e| e.key_str() == "metadata"))
                {
                    for (key, span, found) in normalize_annotations(&mut md.value, false) {
                        diags.push(collection_annotation(&key, span, found));
                    }
                }
                let result = match result {
                    Ok(()) => Ok(()),
                    Err(budget::JsonStop::Failed(e)) => Err(e),
                    Err(budget::JsonStop::TooDeep(i)) => {
                        diags.push(
                            Diagnostic::new(
                                &crate::yaml::NESTING_TOO_DEEP,
                                ops[i].span,
                                format!("this `{}` operation would nest {} deeper than {max_depth} levels (`limits.max-depth`); the resource is left unpatched", ops[i].kind.as_str(), r.cur().describe()),
                            )
                            .with_help("nest less (every later step walks the whole depth)"),
                        );
                        return diags;
                    }
                    Err(budget::JsonStop::OverBudget(i)) => {
                        if self.budget.trip() {
                            let what = format!("this `{}` operation on {}", ops[i].kind.as_str(), r.cur().describe());
                            diags.push(self.budget.too_many_nodes(ops[i].span, what));
                        }
                        return diags;
                    }
                };
                if let Err(e) = result {
                    let op = &ops[e.index];
                    let span = if e.in_from {
                        op.from.as_ref().map(|f| f.1).unwrap_or(op.path_span)
                    } else {
                        op.path_span
                    };
                    diags.push(
                        Diagnostic::new(
                            &JSON_PATCH_FAILED,
                            span,
                            format!("the `{}` operation failed on {}: {}", op.kind.as_str(), r.cur().describe(), e.message),
                        )
                        .with_help("the path is read against the resource as the earlier patches left it; the resource is left unpatched"),
                    );
                    return diags;
                }
                let after = r.name_node().map(|n| n.span);
                if after != before_name
                    && let Some(s) = after
                {
                    r.name_spans.push(s);
                }
                diags
                })
                .collect();
            if per_res.is_empty() {
                acc.diags.push(nothing_selected(target));
            }
            acc.diags.extend(per_res.into_iter().flatten());
            return;
        }
        for doc in &roots {
            if doc.as_map().is_none() {
                acc.diags.push(Diagnostic::new(
                    &INVALID_PATCH,
                    doc.span,
                    format!(
                        "a strategic-merge patch must be a mapping, not {}",
                        doc.type_name()
                    ),
                ));
                continue;
            }
            let sel: Vec<usize> = match &p.target {
                Some(t) => {
                    let s = select(&acc.res, t);
                    if s.is_empty() {
                        acc.diags.push(nothing_selected(t));
                    }
                    s
                }
                None => {
                    let pid = ResId::of(doc);
                    let hits: Vec<usize> = acc
                        .res
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| {
                            std::iter::once(&r.orig)
                                .chain(&r.prev)
                                .any(|id| id.equals(&pid))
                                || r.cur().equals(&pid)
                        })
                        .map(|(i, _)| i)
                        .collect();
                    if hits.len() != 1 {
                        acc.diags
                            .push(self.no_match(doc, &pid, hits.len(), p, &acc.res));
                        continue;
                    }
                    hits
                }
            };
            let mut deleted = Vec::new();
            let doc_nodes = doc.count() as u64;
            for i in sel {
                let r = &mut acc.res[i];
                if let Some((field, at)) = refuse::builtin_merge(&r.node, doc) {
                    acc.diags
                        .push(refuse::builtin_merge_refusal(p.span, &field, at, &r.cur()));
                    continue;
                }
                // A merge adds at most the patch's own nodes.
                r.nodes = r.nodes.saturating_add(doc_nodes);
                let playbook = r.is_playbook();
                let keep = |n: &Node, path: &[&str]| n.get_path(path).cloned();
                let api = keep(&r.node, &["apiVersion"]);
                let kind = keep(&r.node, &["kind"]);
                let name = keep(&r.node, &["metadata", "name"]);
                let ns = keep(&r.node, &["metadata", "namespace"]);
                if p.allow_name_change || p.allow_kind_change {
                    r.store_prev();
                }
                let m = smp::merge_resource(&mut r.node, doc, playbook);
                if m.deleted || r.node.as_map().is_none_or(|m| m.is_empty()) {
                    deleted.push(i);
                    continue;
                }
                restore(&mut r.node, &["apiVersion"], api);
                if !p.allow_kind_change {
                    restore(&mut r.node, &["kind"], kind);
                }
                if !p.allow_name_change {
                    restore(&mut r.node, &["metadata", "name"], name);
                } else if let Some(n) = r.name_node()
                    && name.as_ref().is_none_or(|o| o.span != n.span)
                {
                    r.name_spans.push(n.span);
                }
                restore(&mut r.node, &["metadata", "namespace"], ns);
                if let Some(s) = m.stages_touched {
                    merged.insert(r.uid, s);
                }
                for u in m.unknown_stages {
                    r.quiet.push(u.stage_span);
                    acc.diags.push(unknown_stage(&u, &r.cur().describe()));
                }
                for (n, s) in m.unknown_order {
                    acc.diags.push(
                        Diagnostic::new(
                            &UNKNOWN_ORDERED_STAGE,
                            s,
                            format!("`$setElementOrder/stages` names `{n}`, which is not a stage of {}", r.cur().describe()),
                        )
                        .with_help("list only existing stage names; the rest keep their order after the listed ones"),
                    );
                }
            }
            for i in deleted.into_iter().rev() {
                acc.res.remove(i);
            }
        }
        let total: u64 = acc.res.iter().map(|r| r.nodes).sum();
        if total > self.budget.max_nodes && self.budget.trip() {
            acc.diags.push(
                self.budget
                    .too_many_nodes(p.span, "this strategic-merge patch".to_string()),
            );
        }
    }

    fn no_match(
        &self,
        doc: &Node,
        pid: &ResId,
        n: usize,
        p: &PatchSpec,
        res: &[Res],
    ) -> Diagnostic {
        let at = doc
            .get_path(&["metadata", "name"])
            .map(|n| n.span)
            .unwrap_or(doc.span.sub(0, 0));
        if n > 1 {
            return Diagnostic::new(
                &PATCH_NO_MATCH,
                at,
                format!(
                    "this strategic-merge patch matches {n} resources named {}",
                    pid.describe()
                ),
            )
            .with_label(p.span, "patch listed here")
            .with_help("add a `target:` to the patch entry to choose the resources");
        }
        let mut d = Diagnostic::new(
            &PATCH_NO_MATCH,
            at,
            format!(
                "no resource matches this strategic-merge patch for {} ({})",
                pid.describe(),
                pid.api_version()
            ),
        )
        .with_label(p.span, "patch listed here");
        let names: Vec<Text> = res
            .iter()
            .filter(|r| r.cur().same_gvk(pid) || r.orig.same_gvk(pid))
            .flat_map(|r| std::iter::once(r.orig.name.clone()).chain(std::iter::once(r.cur().name)))
            .collect();
        if let Some(s) = did_you_mean(&pid.name, names.iter().map(Text::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                format!("use `{s}`"),
                vec![crate::diag::Edit {
                    span: at,
                    text: s.to_string(),
                }],
            );
        } else {
            d = d.with_help("a patch without `target` applies to the resource with its apiVersion, kind and name; check them, or add a `target:`");
        }
        d
    }
}

fn restore(doc: &mut Node, path: &[&str], value: Option<Node>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut n = doc;
    for p in parents {
        let Some(m) = n.as_map_mut() else {
            return;
        };
        let i = match m.iter().position(|e| e.key_str() == *p) {
            Some(i) => i,
            None => {
                let Some(v) = &value else {
                    return;
                };
                m.push(Entry {
                    key: Node::string(v.span, *p),
                    value: Node::map(v.span, Vec::new()),
                });
                m.len() - 1
            }
        };
        n = &mut m[i].value;
    }
    match value {
        Some(v) => {
            if n.get(last).is_some_and(|cur| cur == &v) {
                return;
            }
            set_entry(n, Node::string(v.span, *last), v);
        }
        None => remove_entry(n, last),
    }
}

/// Annotations as kustomize writes them back after a JSON patch: every value a string (a
/// collection becomes `""`), and no empty map. Returns the collections it emptied (key,
/// span of the value, what it was): that is data lost, which the caller reports.
fn normalize_annotations(md: &mut Node, null_text: bool) -> Vec<(String, Span, &'static str)> {
    let mut lost = Vec::new();
    let empty = match md
        .as_map_mut()
        .and_then(|m| m.iter_mut().find(|e| e.key_str() == "annotations"))
    {
        Some(e) => match &mut e.value.value {
            Value::Map(m) => {
                for a in m.iter_mut() {
                    let found = match &a.value.value {
                        Value::Map(_) => Some("a mapping"),
                        Value::Seq(_) => Some("a list"),
                        _ => None,
                    };
                    if let Some(found) = found {
                        lost.push((a.key_str().to_string(), a.value.span, found));
                    }
                    let text = match &a.value.value {
                        Value::Scalar(s)
                            if null_text || s.kind != crate::yaml::ScalarKind::Null =>
                        {
                            s.text.as_str().to_owned()
                        }
                        _ => String::new(),
                    };
                    if a.value.as_str().is_none() {
                        a.value = Node::string(a.value.span, text);
                    }
                }
                m.is_empty()
            }
            _ => false,
        },
        None => false,
    };
    if empty {
        remove_entry(md, "annotations");
    }
    lost
}

/// An annotation value that is a mapping or a list after a JSON patch: kustomize writes it
/// as `""`, so it is reported with the same code as the same value written directly.
fn collection_annotation(key: &str, span: Span, found: &str) -> Diagnostic {
    Diagnostic::new(
        &crate::model::WRONG_TYPE,
        span,
        format!("expected a string (annotation value) for `{key}`, found {found}"),
    )
    .with_label_text("annotation values are strings")
    .with_help(
        "kustomize writes a mapping or list annotation value as `\"\"`, so the value would be lost; write it as a string (for structured data, a JSON string)",
    )
}

/// A patch stage that names no base stage and has no executor (see [`smp::UnknownStage`]).
fn unknown_stage(u: &smp::UnknownStage, resource: &str) -> Diagnostic {
    /// Labels at the base's stages: enough to see them, bounded for huge playbooks.
    const MAX_LABELS: usize = 12;
    let best = did_you_mean(&u.name, u.base.iter().map(|(n, _)| n.as_str()));
    let message = match best {
        Some(b) => format!(
            "patch names stage `{}`, which the base does not have; did you mean `{b}`?",
            u.name
        ),
        None => format!(
            "patch names stage `{}`, which the base does not have",
            u.name
        ),
    };
    let mut d = Diagnostic::new(&UNKNOWN_PATCH_STAGE, u.name_span, message)
        .with_label_text("no base stage has this name")
        .with_help(format!(
            "stages merge by `name`, so this one would be appended to {resource} as a new stage with neither `agent` nor `action`; fix the name, or give the new stage an `agent` or an `action`"
        ));
    for (n, span) in u.base.iter().take(MAX_LABELS) {
        let text = if Some(n.as_str()) == best {
            "the base stage with the closest name"
        } else {
            "a stage of the base"
        };
        d = d.with_label(*span, text);
    }
    d
}

fn stage_index(ptr: &str) -> bool {
    ptr.strip_prefix("/spec/stages/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .is_some_and(|t| !t.is_empty() && (t == "-" || t.bytes().all(|c| c.is_ascii_digit())))
}

fn nothing_selected(t: &Target) -> Diagnostic {
    Diagnostic::new(
        &TARGET_SELECTS_NOTHING,
        t.span,
        "this patch target selects no resource; the patch does nothing",
    )
    .with_help("kustomize skips such a patch silently; check `kind`, `name` (an anchored regular expression) and the selectors")
}

/// The resources a target selects (kustomize's `Select`).
fn select(res: &[Res], t: &Target) -> Vec<usize> {
    res.par_iter()
        .enumerate()
        .filter(|(_, r)| selects(r, t))
        .map(|(i, _)| i)
        .collect()
}

/// Whether a patch target selects a resource.
fn selects(r: &Res, t: &Target) -> bool {
    {
        let cur = r.cur();
        if !t.namespace.is_any()
            && !t.namespace.matches(r.orig.effective_ns())
            && !t.namespace.matches(cur.effective_ns())
        {
            return false;
        }
        if !t.name.matches(&r.orig.name) && !t.name.matches(&cur.name) {
            return false;
        }
        if !t.group.matches(&cur.group)
            || !t.version.matches(&cur.version)
            || !t.kind.matches(&cur.kind)
        {
            return false;
        }
        if let Some(ls) = &t.labels
            && !ls.matches(&r.meta_map("labels"))
        {
            return false;
        }
        if let Some(asel) = &t.annotations
            && !asel.matches(&r.meta_map("annotations"))
        {
            return false;
        }
    }
    true
}

fn load_error(span: Span, e: &LoadError) -> Diagnostic {
    match e {
        LoadError::NotFound(p) => Diagnostic::new(
            &MISSING_FILE,
            span,
            format!("`{}` does not exist", crate::render::path_str(p)),
        ),
        _ => e.diagnostic(span),
    }
}

/// Reads a JSON 6902 operation list.
pub(crate) fn parse_ops(list: &Node, diags: &mut Vec<Diagnostic>) -> Option<Vec<Op>> {
    let items = list.as_seq()?;
    let mut ops = Vec::new();
    let mut ok = true;
    for it in items {
        let bad = |span: Span, msg: String| Diagnostic::new(&INVALID_PATCH, span, msg);
        let Some(m) = it.as_map() else {
            diags.push(bad(
                it.span,
                format!(
                    "a JSON patch operation must be a mapping, not {}",
                    it.type_name()
                ),
            ));
            ok = false;
            continue;
        };
        let get = |k: &str| m.iter().find(|e| e.key_str() == k).map(|e| &e.value);
        let Some(opn) = get("op") else {
            diags.push(
                bad(it.span, "this operation has no `op`".into()).with_help(
                    "`op` is one of `add`, `remove`, `replace`, `move`, `copy` or `test`",
                ),
            );
            ok = false;
            continue;
        };
        let Some(kind) = opn.as_str().and_then(OpKind::parse) else {
            let name = opn.as_scalar().map(|s| s.text.as_str()).unwrap_or("");
            let mut d = bad(opn.span, format!("`{name}` is not a JSON patch operation"));
            d = match did_you_mean(name, ["add", "remove", "replace", "move", "copy", "test"]) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(
                    "`op` is one of `add`, `remove`, `replace`, `move`, `copy` or `test`",
                ),
            };
            diags.push(d);
            ok = false;
            continue;
        };
        let ptr = |k: &str, diags: &mut Vec<Diagnostic>| -> Option<(String, Span)> {
            let v = get(k)?;
            match v.as_str() {
                Some(s) => match json6902::valid_pointer(s) {
                    Ok(()) => Some((s.to_string(), v.span)),
                    Err(msg) => {
                        diags.push(bad(v.span, msg));
                        None
                    }
                },
                None => {
                    diags.push(bad(v.span, format!("`{k}` must be a JSON pointer string")));
                    None
                }
            }
        };
        let Some((path, path_span)) = ptr("path", diags) else {
            if get("path").is_none() {
                diags.push(bad(
                    it.span,
                    format!("this `{}` operation has no `path`", kind.as_str()),
                ));
            }
            ok = false;
            continue;
        };
        let from = if matches!(kind, OpKind::Move | OpKind::Copy) {
            match ptr("from", diags) {
                Some(f) => Some(f),
                None => {
                    if get("from").is_none() {
                        diags.push(bad(
                            it.span,
                            format!("this `{}` operation has no `from`", kind.as_str()),
                        ));
                    }
                    ok = false;
                    continue;
                }
            }
        } else {
            None
        };
        let value = if matches!(kind, OpKind::Add | OpKind::Replace | OpKind::Test) {
            match get("value") {
                Some(v) => Some(v.clone()),
                None => {
                    diags.push(bad(
                        it.span,
                        format!("this `{}` operation has no `value`", kind.as_str()),
                    ));
                    ok = false;
                    continue;
                }
            }
        } else {
            None
        };
        ops.push(Op {
            kind,
            path,
            path_span,
            from,
            value,
            span: it.span,
        });
    }
    ok.then_some(ops)
}

// ---------------------------------------------------------------------------------------
// Output order.

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn gvk_string(id: &ResId) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&id.group, "~G"),
        or(&id.version, "~V"),
        or(&id.kind, "~K")
    )
}

/// Kustomize's output order: legacy (by kind priority, then group/version/kind, namespace and
/// name) unless the top kustomization asks for `fifo`.
fn sort_resources(res: &mut [Res], sort: Option<&SortSpec>) {
    if sort.is_some_and(|s| s.fifo) {
        return;
    }
    let (first, last): (Vec<String>, Vec<String>) = match sort.and_then(|s| s.legacy.clone()) {
        Some(l) => l,
        None => (
            ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
            ORDER_LAST.iter().map(|s| s.to_string()).collect(),
        ),
    };
    let mut rank: HashMap<&str, i64> = HashMap::new();
    for (i, k) in first.iter().enumerate() {
        rank.insert(k, i as i64 - first.len() as i64);
    }
    for (i, k) in last.iter().enumerate() {
        rank.insert(k, i as i64 + 1);
    }
    // The keys are computed once per resource, not per comparison.
    struct Keyed {
        id: ResId,
        rank: i64,
        gvk: String,
        ns_name: String,
        i: usize,
    }
    let mut keyed: Vec<Keyed> = res
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = r.cur();
            let rank = rank.get(id.kind.as_str()).copied().unwrap_or(0);
            let gvk = gvk_string(&id);
            let ns_name = format!(
                "{}|{}",
                if id.ns.is_empty() { "~X" } else { &id.ns },
                if id.name.is_empty() { "~N" } else { &id.name }
            );
            Keyed {
                id,
                rank,
                gvk,
                ns_name,
                i,
            }
        })
        .collect();
    keyed.sort_by(|ka, kb| {
        let (a, b) = (&ka.id, &kb.id);
        let gvk_eq = a.same_gvk(b);
        if !gvk_eq {
            if ka.rank != kb.rank {
                return ka.rank.cmp(&kb.rank);
            }
            let (sa, sb) = (&ka.gvk, &kb.gvk);
            if a.kind == "Namespace"
                && b.kind == "Namespace"
                && (a.group.is_empty() || b.group.is_empty())
            {
                return sb.cmp(sa);
            }
            return sa.cmp(sb);
        }
        ka.ns_name.cmp(&kb.ns_name)
    });
    let order: Vec<usize> = keyed.into_iter().map(|k| k.i).collect();
    apply_permutation(res, &order);
}

fn apply_permutation(res: &mut [Res], order: &[usize]) {
    // order[k] = index of the element that goes to position k.
    let mut taken: Vec<Option<Res>> = Vec::with_capacity(res.len());
    // Swap out every element with a placeholder-free approach: rebuild through a Vec.
    let len = res.len();
    let mut tmp: Vec<Res> = Vec::with_capacity(len);
    for r in res.iter_mut() {
        let placeholder = Res {
            node: Node::null(Span::default()),
            orig: r.orig.clone(),
            prev: Vec::new(),
            uid: r.uid,
            name_spans: Vec::new(),
            quiet: Vec::new(),
            nodes: 0,
        };
        tmp.push(std::mem::replace(r, placeholder));
    }
    taken.extend(tmp.into_iter().map(Some));
    for (k, &i) in order.iter().enumerate() {
        if let Some(r) = taken.get_mut(i).and_then(Option::take) {
            res[k] = r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use std::sync::Arc;

    const PB: &str = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: p\nspec:\n  stages:\n    - name: a\n";

    fn loader(fs: MemFs) -> Loader {
        Loader::new(Arc::new(fs), "", crate::yaml::Limits::default())
    }

    #[test]
    fn kustomization_depth_is_bounded() {
        let mut fs = MemFs::new();
        for i in 0..80 {
            fs.insert(
                format!("k{i}/kustomization.yaml"),
                format!("resources:\n  - ../k{}\n", i + 1),
            );
        }
        fs.insert("k80/kustomization.yaml", "resources:\n  - p.yaml\n");
        fs.insert("k80/p.yaml", PB);
        let l = loader(fs);
        let r = resolve(&l, Path::new("k0"), &ResolveOptions::default()).expect("resolves");
        assert!(
            r.diags.iter().any(|d| d.code.id == "PB1018"),
            "{:?}",
            r.diags
        );
        assert!(r.docs.is_empty());
    }

    #[test]
    fn overlays_resolve_in_parallel_sharing_the_base() {
        let mut fs = MemFs::new();
        fs.insert("base/kustomization.yaml", "resources:\n  - p.yaml\n");
        fs.insert("base/p.yaml", PB);
        for env in ["dev", "prod"] {
            fs.insert(
                format!("{env}/kustomization.yaml"),
                format!("resources:\n  - ../base\nnamePrefix: {env}-\n"),
            );
        }
        let l = loader(fs);
        let rs = resolve_all(
            &l,
            &[PathBuf::from("dev"), PathBuf::from("prod")],
            &ResolveOptions::default(),
        );
        let names: Vec<String> = rs
            .iter()
            .map(|r| {
                let r = r.as_ref().expect("resolves");
                text_at(&r.docs[0], &["metadata", "name"]).to_string()
            })
            .collect();
        assert_eq!(names, ["dev-p", "prod-p"]);
        // The base's files were registered once.
        assert_eq!(l.sources.len(), 4);
        // The prefix is a synthesized value: its span is the namePrefix line.
        let r = rs[0].as_ref().expect("resolves");
        let name = r.docs[0].get_path(&["metadata", "name"]).expect("name");
        let f = l.sources.get(name.span.file).expect("file");
        assert_eq!(f.path, PathBuf::from("dev/kustomization.yaml"));
        assert_eq!(f.slice(name.span), "dev-");
        assert_eq!(r.origins[0].name.len(), 2);
    }

    #[test]
    fn missing_top_level_kustomization_is_an_error_value() {
        let mut fs = MemFs::new();
        fs.insert("x/p.yaml", PB);
        let l = loader(fs);
        assert_eq!(
            resolve(&l, Path::new("x"), &ResolveOptions::default()).err(),
            Some(ResolveError::NoKustomization(PathBuf::from("x")))
        );
        assert_eq!(
            resolve(&l, Path::new("nope"), &ResolveOptions::default()).err(),
            Some(ResolveError::NotADirectory(PathBuf::from("nope")))
        );
    }

    #[test]
    fn patch_values_keep_the_patch_span() {
        let mut fs = MemFs::new();
        fs.insert("base/kustomization.yaml", "resources:\n  - p.yaml\n");
        fs.insert("base/p.yaml", PB);
        fs.insert(
            "ov/kustomization.yaml",
            "resources:\n  - ../base\npatches:\n  - patch: |-\n      apiVersion: agenticops/v1\n      kind: Playbook\n      metadata:\n        name: p\n      spec:\n        stages:\n          - name: a\n            sla: 2h\ncommonLabels:\n  env: dev\n",
        );
        let l = loader(fs);
        let r = resolve(&l, Path::new("ov"), &ResolveOptions::default()).expect("resolves");
        let stage = &r.docs[0]
            .get_path(&["spec", "stages"])
            .expect("stages")
            .as_seq()
            .expect("list")[0];
        let sla = stage.get("sla").expect("sla");
        let name = stage.get("name").expect("name");
        let sf = l.sources.get(sla.span.file).expect("file");
        assert_eq!(sf.path, PathBuf::from("ov/kustomization.yaml"));
        assert_eq!(sf.slice(sla.span), "2h");
        assert_eq!(sf.line_col(sla.span.start).line, 12);
        let nf = l.sources.get(name.span.file).expect("file");
        assert_eq!(nf.path, PathBuf::from("base/p.yaml"));
        let env = r.docs[0]
            .get_path(&["metadata", "labels", "env"])
            .expect("label");
        let ef = l.sources.get(env.span.file).expect("file");
        assert_eq!(ef.slice(env.span), "dev");
    }
}
