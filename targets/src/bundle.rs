//! Compiling a tree into artifacts (`pbc build`), and the release bundle (`pbc bundle`).
//!
//! Layout of a bundle directory:
//!
//! ```text
//! OUT/manifest.json              {"environment", "files": [{"path", "sha256"}], "source"}
//! OUT/resolved/<playbook>.yaml   the resolved playbook (overlays applied)
//! OUT/argo/<playbook>.yaml       the ConfigMap(s), WorkflowTemplate (+ CronWorkflow)
//! OUT/crd-definition/playbooks.<group>.yaml   the CustomResourceDefinition (applied first)
//! OUT/crd/<playbook>.yaml        the playbook as a custom resource
//! OUT/langgraph/<playbook>.json  pbc.langgraph/v1
//! OUT/coverage.json              the control-coverage report (supplied by the caller)
//! ```
//!
//! Every file but the manifest's `source` block depends only on the resolved input and the
//! configuration: no path, time, host or commit, so the same input gives the same bytes on
//! any machine and from any checkout path. `manifest.json` lists every other file, sorted by
//! path, with its SHA-256; its `source` block records the git commit of the input (null
//! outside a git checkout), whether the input had uncommitted changes, and the pbc version.

use crate::{Settings, Unit};
use pbc_compiler::check::{self, DocCheck, PlaybookDoc};
use pbc_compiler::config::Config;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::load::Loader;
use pbc_compiler::model::Playbook;
use pbc_compiler::resolve::{self, ResolveOptions};
use pbc_compiler::sema::Analysis;
use pbc_compiler::span::Span;
use pbc_compiler::types::SchemaStore;
use pbc_compiler::yaml::Node;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A checked playbook.
pub struct Compiled {
    pub doc: PlaybookDoc,
    pub playbook: Playbook,
    pub analysis: Analysis,
    /// Where `metadata.name` came from (the original name, then each prefix or suffix).
    pub name_origin: Vec<Span>,
    /// The playbook's files for the Argo workflow's ConfigMap.
    pub carried: crate::argo::carried::Carried,
}

impl Compiled {
    pub fn unit(&self) -> Unit<'_> {
        Unit {
            root: &self.doc.root,
            playbook: &self.playbook,
            analysis: &self.analysis,
        }
    }
}

/// A resolved and checked tree (or file).
#[derive(Default)]
pub struct Compilation {
    /// Every resolved document, in output order.
    pub resolved: Vec<Node>,
    /// The playbooks among them that the model could read.
    pub playbooks: Vec<Compiled>,
    /// Every finding: loading, overlays, model, semantics, the extra passes, names.
    pub diags: Vec<Diagnostic>,
    /// The tree, when a kustomization directory was compiled.
    pub tree: Option<PathBuf>,
    /// The configuration's files for the Argo workflows' ConfigMaps.
    pub carried: crate::argo::carried::Carried,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}

/// Why nothing could be compiled (exit 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resolves and checks `path`: a kustomization directory, or a playbook file. Runs the
/// model, the semantic checks, `extra` and [`crate::names::check_names`] on each playbook;
/// applies suppressions and the configured severities.
pub fn compile(
    loader: &Loader,
    cfg: &Config,
    path: &Path,
    opts: &ResolveOptions,
    extra: &DocCheck,
) -> Result<Compilation, UsageError> {
    let mut out = Compilation::default();
    let abs = loader.resolve(path);
    let (docs, origins): (Vec<Node>, Vec<resolve::DocOrigin>) = if abs.is_file() {
        let loaded = loader.load(path).map_err(|e| UsageError(e.to_string()))?;
        out.diags.extend(loaded.diags.iter().cloned());
        loaded
            .docs
            .iter()
            .map(|d| (d.root.clone(), resolve::DocOrigin::default()))
            .unzip()
    } else {
        let res = resolve::resolve(loader, path, opts).map_err(|e| UsageError(e.to_string()))?;
        out.diags.extend(res.diags);
        out.tree = Some(path.to_path_buf());
        res.docs.into_iter().zip(res.origins).unzip()
    };
    let mut schemas = SchemaStore::with_root(&cfg.root);
    if opts.load_restrictor == resolve::LoadRestrictor::None {
        schemas = schemas.unrestricted();
    }
    for (root, origin) in docs.into_iter().zip(origins) {
        out.resolved.push(root.clone());
        let is_pb = check::is_playbook(&root)
            || root.get("apiVersion").and_then(Node::as_str) == Some("agenticops/v1");
        if !is_pb {
            continue;
        }
        let origin_name = origin.name;
        let doc = PlaybookDoc {
            root,
            tree: out.tree.clone(),
            name_origin: origin_name.clone(),
            quiet: origin.quiet,
        };
        let mut diags = Vec::new();
        if let Some((playbook, analysis)) =
            check::check_document(loader, &schemas, &doc, cfg, extra, &mut diags)
        {
            crate::names::check_names(&playbook, &origin_name, &loader.sources, &mut diags);
            let carried = crate::argo::carried::of_playbook(loader, cfg, &doc.root, &playbook);
            out.playbooks.push(Compiled {
                doc,
                playbook,
                analysis,
                name_origin: origin_name,
                carried,
            });
        }
        out.diags.extend(diags);
    }
    if !out.playbooks.is_empty() {
        out.carried = crate::argo::carried::of_config(loader, cfg);
    }
    pbc_compiler::config::apply_suppressions(&loader.sources, &mut out.diags);
    cfg.apply_levels(&mut out.diags);
    let mut seen: Vec<Diagnostic> = Vec::new();
    for d in std::mem::take(&mut out.diags) {
        if !seen.contains(&d) {
            seen.push(d);
        }
    }
    out.diags = seen;
    Ok(out)
}

/// Which artifacts to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Resolved,
    Argo,
    Crd,
    Langgraph,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::Resolved,
        Target::Argo,
        Target::Crd,
        Target::Langgraph,
    ];

    pub fn dir(self) -> &'static str {
        match self {
            Target::Resolved => "resolved",
            Target::Argo => "argo",
            Target::Crd => "crd",
            Target::Langgraph => "langgraph",
        }
    }
}

fn file_stem(root: &Node, taken: &[String], dir: &str, ext: &str) -> String {
    let name = root
        .get_path(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or("unnamed");
    let kind = root.get("kind").and_then(Node::as_str).unwrap_or("");
    let base = if check::is_playbook(root) || kind.is_empty() {
        name.to_string()
    } else {
        format!("{}-{name}", kind.to_lowercase())
    };
    let mut cand = format!("{dir}/{base}.{ext}");
    if taken.contains(&cand) {
        let ns = root
            .get_path(&["metadata", "namespace"])
            .and_then(Node::as_str)
            .unwrap_or("default");
        cand = format!("{dir}/{base}.{ns}.{ext}");
        let mut n = 2;
        while taken.contains(&cand) {
            cand = format!("{dir}/{base}.{ns}.{n}.{ext}");
            n += 1;
        }
    }
    cand
}

/// The artifacts of a compilation, by path relative to the output directory. LangGraph
/// lowerings that could only be made conservatively are reported in `diags`.
pub fn artifacts(
    c: &Compilation,
    targets: &[Target],
    settings: &Settings,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut taken: Vec<String> = Vec::new();
    let claim = |root: &Node, dir: &str, ext: &str, taken: &mut Vec<String>| {
        let p = file_stem(root, taken, dir, ext);
        taken.push(p.clone());
        p
    };
    for t in targets {
        match t {
            Target::Resolved => {
                for root in &c.resolved {
                    let p = claim(root, "resolved", "yaml", &mut taken);
                    files.insert(p, resolve::emit_yaml(std::slice::from_ref(root)));
                }
            }
            Target::Argo => {
                for pb in &c.playbooks {
                    if let Some(d) = crate::argo::too_large(pb.unit(), settings) {
                        diags.push(d);
                        continue;
                    }
                    let carried = c.carried.merged(&pb.carried);
                    diags.extend(crate::argo::file_outputs(pb.unit(), &carried));
                    let mounted = match crate::argo::mount(pb.unit(), &carried) {
                        Ok(m) => m,
                        Err(ds) => {
                            diags.extend(ds);
                            continue;
                        }
                    };
                    let p = claim(&pb.doc.root, "argo", "yaml", &mut taken);
                    files.insert(p, crate::argo::emit_yaml(pb.unit(), settings, &mounted));
                }
            }
            Target::Crd => {
                let def = crate::crd::definition_path(settings);
                files.insert(def.clone(), crate::crd::definition_yaml(settings));
                taken.push(def);
                for pb in &c.playbooks {
                    let p = claim(&pb.doc.root, "crd", "yaml", &mut taken);
                    files.insert(p, crate::crd::custom_resource_yaml(pb.unit(), settings));
                }
            }
            Target::Langgraph => {
                for pb in &c.playbooks {
                    let p = claim(&pb.doc.root, "langgraph", "json", &mut taken);
                    files.insert(p, crate::langgraph::emit_json(pb.unit(), diags));
                }
            }
        }
    }
    files
}

/// Where the bundle's input came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// The commit checked out (`HEAD`), or `None` outside a git checkout.
    pub commit: Option<String>,
    /// True if the commit does not hold the input as it was read: a file under the bundled
    /// directory, or any file the bundle read (bases, components, patches, schemas,
    /// `.pbc.yaml`, catalogs, evidence rules), is modified, new, untracked, ignored, or lies
    /// outside the repository.
    pub dirty: bool,
}

/// Reads the git state of `dir` with git2 (no `git` binary needed); `inputs` are the files
/// the bundle was built from (absolute paths).
pub fn source_of(dir: &Path, inputs: &[PathBuf]) -> Source {
    let Ok(repo) = git2::Repository::discover(dir) else {
        return Source::default();
    };
    let commit = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id().to_string());
    let Some(work) = repo.workdir() else {
        return Source {
            commit,
            dirty: false,
        };
    };
    let work = std::fs::canonicalize(work).unwrap_or_else(|_| work.to_path_buf());
    let rel_of = |p: &Path| -> Option<String> {
        let abs = std::fs::canonicalize(p).ok()?;
        let rel = abs.strip_prefix(&work).ok()?;
        Some(rel.to_string_lossy().replace('\\', "/"))
    };
    // The bundled directory: anything changed or added under it (ignored files excepted).
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    match rel_of(dir) {
        Some(spec) if !spec.is_empty() => {
            opts.pathspec(spec);
        }
        Some(_) => {}
        None => {
            return Source {
                commit,
                dirty: true,
            };
        }
    }
    let mut dirty = repo
        .statuses(Some(&mut opts))
        .map(|s| !s.is_empty())
        .unwrap_or(true);
    // Every file read: it must be in the commit as it is on disk.
    for p in inputs {
        if dirty {
            break;
        }
        dirty = match rel_of(p) {
            Some(rel) if !rel.is_empty() => repo
                .status_file(Path::new(&rel))
                .map(|s| !s.is_empty())
                .unwrap_or(true),
            _ => true,
        };
    }
    Source { commit, dirty }
}

/// Every file `loader` has read, as an absolute path (what a bundle was built from).
pub fn inputs_read(loader: &Loader) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (0..loader.sources.len())
        .filter_map(|i| loader.sources.get(pbc_compiler::span::FileId(i as u32)))
        .map(|f| loader.resolve(&f.path))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest of a set of files.
pub fn manifest(
    env: &str,
    files: &BTreeMap<String, String>,
    source: &Source,
    version: &str,
) -> String {
    let list: Vec<Value> = files
        .iter()
        .map(|(p, c)| json!({"path": p, "sha256": sha256_hex(c.as_bytes())}))
        .collect();
    crate::out::json(&json!({
        "environment": env,
        "files": list,
        "source": {"commit": source.commit, "dirty": source.dirty, "pbc_version": version},
    }))
}

/// What the coverage step of a bundle is given.
pub struct CoverageInput<'a> {
    pub environment: &'a str,
    /// The overlay directory that was bundled.
    pub tree: &'a Path,
    pub compilation: &'a Compilation,
    pub loader: &'a Loader,
    pub cfg: &'a Config,
}

/// Produces `coverage.json` for a bundle; supplied by the caller (the CLI),
/// so that the compliance report and the bundle stay separate crates.
pub type CoverageFn<'a> = &'a dyn Fn(&CoverageInput<'_>) -> Result<String, String>;

/// The directory a bundle is built from: `ROOT/overlays/ENV`, or ROOT itself when it is the
/// overlay (its name is ENV, or it holds a kustomization and no `overlays/ENV`).
pub fn overlay_dir(loader: &Loader, root: &Path, env: &str) -> Result<PathBuf, UsageError> {
    let cand = root.join("overlays").join(env);
    if loader.resolve(&cand).is_dir() {
        return Ok(cand);
    }
    if check::kustomization_file(&loader.resolve(root)).is_some() {
        // An overlay bundled under another environment's name would be mislabelled.
        return match check::environment(&loader.resolve(root)) {
            Some(found) if found != env => Err(UsageError(format!(
                "{}: this is the overlay of environment `{found}`, not `{env}`",
                root.display()
            ))),
            _ => Ok(root.to_path_buf()),
        };
    }
    Err(UsageError(format!(
        "{}: no overlay `{env}` (looked for {} and a kustomization in {})",
        root.display(),
        cand.display(),
        root.display()
    )))
}

/// A built bundle, in memory.
pub struct Bundle {
    /// Every file but the manifest.
    pub files: BTreeMap<String, String>,
    pub manifest: String,
    pub compilation: Compilation,
    /// Findings of the compilation and the emitters.
    pub diags: Vec<Diagnostic>,
}

/// Builds the bundle of one environment in memory. Returns the findings without files when
/// the checks fail.
#[allow(clippy::too_many_arguments)]
pub fn build(
    loader: &Loader,
    cfg: &Config,
    root: &Path,
    env: &str,
    extra: &DocCheck,
    coverage: CoverageFn<'_>,
    version: &str,
) -> Result<Bundle, UsageError> {
    let dir = overlay_dir(loader, root, env)?;
    let compilation = compile(loader, cfg, &dir, &ResolveOptions::default(), extra)?;
    let mut diags = compilation.diags.clone();
    if compilation.has_errors() {
        return Ok(Bundle {
            files: BTreeMap::new(),
            manifest: String::new(),
            compilation,
            diags,
        });
    }
    let settings = Settings::from_config(cfg);
    let mut files = artifacts(&compilation, &Target::ALL, &settings, &mut diags);
    let cov = coverage(&CoverageInput {
        environment: env,
        tree: &dir,
        compilation: &compilation,
        loader,
        cfg,
    })
    .map_err(UsageError)?;
    files.insert("coverage.json".into(), cov);
    let source = source_of(&loader.resolve(&dir), &inputs_read(loader));
    let manifest = manifest(env, &files, &source, version);
    Ok(Bundle {
        files,
        manifest,
        compilation,
        diags,
    })
}

/// The subdirectories a bundle owns: files in them that the bundle does not hold are
/// removed when it is written.
pub const OWNED_DIRS: &[&str] = &["resolved", "argo", "crd-definition", "crd", "langgraph"];

/// Writes a bundle under `out`; removes stale files from the directories it owns.
pub fn write(out: &Path, b: &Bundle) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for d in OWNED_DIRS {
        let dir = out.join(d);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let rel = format!("{d}/{}", e.file_name().to_string_lossy());
                if e.path().is_file() && !b.files.contains_key(&rel) {
                    std::fs::remove_file(e.path())?;
                }
            }
        }
    }
    for (p, c) in &b.files {
        let path = out.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, c)?;
    }
    std::fs::write(out.join("manifest.json"), &b.manifest)
}

/// Compares a bundle built in memory with the directory `out`. Returns the drifted paths
/// (changed, missing, or present but not part of the bundle), sorted; the manifest's
/// `source` block is ignored.
pub fn drift(out: &Path, b: &Bundle) -> Vec<String> {
    let mut drifted = Vec::new();
    for (p, c) in &b.files {
        match std::fs::read(out.join(p)) {
            Ok(bytes) if bytes == c.as_bytes() => {}
            _ => drifted.push(p.clone()),
        }
    }
    for d in OWNED_DIRS {
        if let Ok(rd) = std::fs::read_dir(out.join(d)) {
            for e in rd.flatten() {
                let rel = format!("{d}/{}", e.file_name().to_string_lossy());
                if !b.files.contains_key(&rel) {
                    drifted.push(rel);
                }
            }
        }
    }
    let strip = |s: &str| -> Option<Value> {
        let mut v: Value = serde_json::from_str(s).ok()?;
        v.as_object_mut()?.remove("source");
        Some(v)
    };
    let on_disk = std::fs::read_to_string(out.join("manifest.json")).ok();
    if on_disk.as_deref().and_then(strip) != strip(&b.manifest) || on_disk.is_none() {
        drifted.push("manifest.json".into());
    }
    drifted.sort();
    drifted.dedup();
    drifted
}
