//! What a diff compares: the kustomization trees and loose files under the given paths (at
//! either revision), and each side's Playbooks, resolved and modelled.

use super::*;

// ---------------------------------------------------------------------------------------
// Discovery through a FileSystem.

/// The deepest directory nesting discovery descends into.
pub(super) const MAX_WALK_DEPTH: usize = 64;

pub(super) fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

pub(super) fn is_dir(loader: &Loader, p: &Path) -> bool {
    loader.fs.metadata(p).is_ok_and(|m| m.kind == FileKind::Dir)
}

/// Directories a kustomization includes (`resources`, `bases`, `components`), read through
/// the loader.
pub(super) fn kustomization_refs(loader: &Loader, dir: &Path) -> Vec<PathBuf> {
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

pub(super) fn is_agenticops(root: &Node) -> bool {
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
