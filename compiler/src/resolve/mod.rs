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
//!
//! Where things are: `accumulate` builds a kustomization (resources, components, then
//! patches and transformers); `paths` checks the files it names; `resource` holds resource
//! ids; `patch` applies patches ([`smp`], [`json6902`], `ops`, [`select`]); `transform` the
//! namespace, prefix and suffix; `fieldspec` kustomize's field specs and built-in kinds;
//! `openapi` and [`schema`] the schema of merge keys (built-in or custom); `config` custom
//! field specs (`configurations`, `labels[].fields`); `order` the output order; `kust` reads a
//! kustomization; [`emit_yaml`] and [`budget`] write the result.

mod accumulate;
pub mod budget;
mod config;
mod digest;
mod emit;
mod fieldspec;
mod generate;
mod images;
mod inline;
pub mod json6902;
mod kust;
mod nameref;
mod openapi;
mod ops;
mod order;
mod origin;
mod patch;
mod paths;
mod plugins;
mod replace;
mod resource;
mod schema;
pub mod select;
pub mod smp;
mod smp_list;
mod transform;

pub use budget::{WriteError, write_yaml_limited};
pub use emit::{emit_yaml, key_less, write_yaml};

use crate::declare_codes;
use crate::diag::{Diagnostic, did_you_mean};
use crate::fs::{FileKind, normalize};
use crate::load::{LoadError, Loader};
use crate::span::Span;
use crate::yaml::{Node, Text, Value};
use json6902::{Op, OpKind};
use kust::{Kust, KustKind, PatchField, PatchSource, PatchSpec, PathRef, SortSpec, Target};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use accumulate::{Acc, Ctx, KDir};
pub(crate) use ops::parse_ops;
use order::sort_resources;
use paths::{load_error, looks_remote, looks_remote_host};
use resource::{Res, ResId, metadata_mut, remove_entry, restore, set_entry};
use transform::{collection_annotation, normalize_annotations};

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
    /// `namePrefix`, `nameSuffix`, `namespace`, `labels` (with `fields`), `commonAnnotations`,
    /// `configMapGenerator`, `secretGenerator`, `generatorOptions`, `images`, `replicas`,
    /// `replacements`, `openapi`, `sortOptions`, `configurations` (its `labels`,
    /// `commonLabels`, `templateLabels`, `commonAnnotations` and `nameReference` field specs),
    /// `generators` and `transformers` (configurations of kustomize's built-in generators and
    /// transformers that stand for those fields) and `buildMetadata: [originAnnotations]`.
    /// `vars` (deprecated by kustomize: write them as `replacements`), the other sections of a
    /// `configurations` file, `crds`, `helmCharts`, `validators`, plugins that are not built
    /// in, the other built-in transformers as configurations and the other `buildMetadata`
    /// options would be silently ignored by a partial implementation, so they are errors.
    /// Remove the field, or express it as a patch or a replacement.
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
    /// pbc builds what `kubectl kustomize` builds, or refuses: it never approximates.
    /// kustomize keeps one OpenAPI schema (`openapi`) for a whole build, set by the top
    /// kustomization or else by the first one that has it; a schema set below the top is
    /// added to the built-in one or used alone depending on what kustomize read before. pbc
    /// refuses a strategic merge whose result would depend on that (a kind the custom schema
    /// does not describe completely, a base merged before a later-listed base set the
    /// schema). Give `openapi` in the top kustomization, or build the tree with kustomize.
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
    /// Resolve only the documents of this resource file (a path as [`Loader::resolve`]
    /// gives it): every other resource file is skipped unread, the kustomizations, patches
    /// and transformers are applied as usual. Meaningful only for a tree whose full
    /// resolution was [`Resolution::separable`]; what depends on the other documents (a patch
    /// that matches none of these, `PB1010`/`PB1011`) is then not this subset's to say.
    pub only: Option<PathBuf>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            load_restrictor: LoadRestrictor::RootOnly,
            max_depth: 64,
            only: None,
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
    /// What strategic-merge patches removed, replaced whole or reordered (a `key: null`, a
    /// `$patch: delete|replace`, `$setElementOrder/stages`), in the order applied: the
    /// patch's span for a value that is no longer in the document to carry it.
    pub removed: Vec<Removal>,
}

/// A part of a document a patch removed (or replaced whole, or reordered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// Where, from the document's root: map keys, and a stage's name under
    /// `spec`/`stages` (`["spec", "stages", "deploy", "approval"]`).
    pub path: Vec<String>,
    /// The patch's text that did it (the key, or the `$patch` value).
    pub span: Span,
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
    /// Each resource document was resolved on its own: no replacement, generator,
    /// configuration file, generator or transformer configuration, generated name or
    /// rewritten name reference ties one document's result to another's. Then a change to a
    /// resource file that keeps its documents' ids, labels and annotations changes only the
    /// results of those documents, which [`ResolveOptions::only`] resolves alone.
    pub separable: bool,
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
        origin_on: Default::default(),
        keep_origin: Default::default(),
        cross: Default::default(),
    };
    let (mut acc, sort) = ctx.build_dir(
        &dir,
        &[],
        None,
        KustKind::Kustomization,
        &schema::SchemaState::Unset,
        String::new(),
    );
    if ctx.budget.exceeded() {
        // Abandoned: what was built is incomplete (and was dropped).
        acc.res.clear();
    }
    if !acc.res.is_empty() {
        if acc.res.iter().any(|r| r.needs_hash) || nameref::may_rewrite(&acc.res, &acc.name_refs) {
            ctx.cross.store(true, AtomicOrdering::Relaxed);
        }
        generate::hash_names(&mut acc.res);
        acc.diags.extend(nameref::fix(&mut acc.res, &acc.name_refs));
        origin::finish(&mut acc.res, ctx.keep_origin.load(AtomicOrdering::Relaxed));
        // kustomize drops the resources marked as local configuration last.
        acc.res.retain(|r| {
            r.node
                .get_path(&[
                    "metadata",
                    "annotations",
                    "config.kubernetes.io/local-config",
                ])
                .is_none_or(|v| v.as_scalar().is_some_and(|s| s.text.as_str() == "false"))
        });
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
                    removed: r.removed,
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
        separable: !ctx.cross.load(AtomicOrdering::Relaxed),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use resource::text_at;
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

#[cfg(test)]
mod provenance_tests;
#[cfg(test)]
mod subset_tests;
