//! Shared helpers for the pbc-lints tests: load files relative to the repository root so that
//! paths in output are stable (`testdata/…`).
#![allow(dead_code)]

use pbc_compiler::check::{PlaybookCtx, PlaybookDoc, check_document};
use pbc_compiler::config::Config;
use pbc_compiler::diag::{Diagnostic, Summary, sort_and_dedup};
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::render::{self, HumanOptions, path_str};
use pbc_compiler::yaml::{Limits, Node};
use pbc_lints::Compliance;
use pbc_lints::evidence::Settings;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A loader over the real disk with the repository root as working directory.
pub fn loader() -> Loader {
    Loader::new(Arc::new(OsFs), root(), Limits::default())
}

/// The configuration `pbc check` would use for a path relative to the root (`.pbc.yaml`
/// found upward from it; the defaults without one); panics on a broken configuration.
pub fn config(rel: &str) -> Config {
    let loader = loader();
    let Some(path) = Config::discover(&OsFs, &root().join(rel)) else {
        return Config::default();
    };
    let mut diags = Vec::new();
    let cfg = Config::load(&loader, &path, &mut diags).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(diags.is_empty(), "{}: {diags:?}", path.display());
    cfg
}

/// The compliance settings of that configuration (production environments, retention
/// minimum, the defined audit sinks).
/// The fixtures are judged against the local runtime and `pbc serve`, which enforce every
/// construct evidence rests on (the default, every target, is tested in
/// cli/tests/compliance.rs).
pub fn settings(rel: &str) -> Settings {
    let mut s = Settings::from_config(&config(rel));
    s.targets = vec![
        pbc_compiler::enforcement::Target::Local,
        pbc_compiler::enforcement::Target::Serve,
    ];
    s
}

/// The Playbook documents of a file (relative to the root); panics on a load error, which
/// is a broken fixture.
pub fn playbooks(loader: &Loader, rel: &str) -> Vec<Node> {
    let loaded = loader
        .load(&root().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(loaded.diags.is_empty(), "{rel}: {:?}", loaded.diags);
    loaded
        .docs
        .iter()
        .filter(|d| pbc_compiler::check::is_playbook(&d.root))
        .map(|d| d.root.clone())
        .collect()
}

/// The resolved documents of a kustomization directory (relative to the root); panics on
/// an overlay problem, which is a broken fixture.
pub fn resolve(loader: &Loader, rel: &str) -> Vec<Node> {
    let r = pbc_compiler::resolve::resolve(
        loader,
        &root().join(rel),
        &pbc_compiler::resolve::ResolveOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(r.diags.is_empty(), "{rel}: {:?}", r.diags);
    r.docs
        .into_iter()
        .filter(pbc_compiler::check::is_playbook)
        .collect()
}

/// Runs what `pbc check` runs on each Playbook document (model, semantic checks, then the
/// compliance lints with `comp`, for environment `env`), sorted. The model reads the names
/// the configuration of `rel` (the documents' file or tree) defines.
pub fn check_docs(
    loader: &Loader,
    rel: &str,
    docs: Vec<Node>,
    comp: &Compliance,
    env: Option<&str>,
) -> Vec<Diagnostic> {
    let schemas = pbc_compiler::types::SchemaStore::new();
    let cfg = config(rel);
    let mut diags = Vec::new();
    // `DocCheck` is `'static`: the closure owns what it uses.
    let (comp, env) = (comp.clone(), env.map(str::to_string));
    let extra = move |cx: &PlaybookCtx<'_>, d: &mut Vec<Diagnostic>| {
        comp.check_playbook_with(cx.playbook, env.as_deref(), Some(&cx.loader.sources), d)
    };
    for root in docs {
        let doc = PlaybookDoc::new(root, None);
        check_document(loader, &schemas, &doc, &cfg, &extra, &mut diags);
    }
    sorted(loader, diags)
}

/// Runs what `pbc check` runs on each Playbook of a file (model, semantic checks, then the
/// compliance lints with `comp`, for environment `env`), sorted.
pub fn check_file(
    loader: &Loader,
    rel: &str,
    comp: &Compliance,
    env: Option<&str>,
) -> Vec<Diagnostic> {
    check_docs(loader, rel, playbooks(loader, rel), comp, env)
}

/// The environment of a fixture: from its directory (`…/overlays/<env>/x.yaml`).
pub fn env_of(rel: &str) -> Option<String> {
    Path::new(rel)
        .parent()
        .and_then(pbc_compiler::check::environment)
}

/// Sorts diagnostics as `pbc check` does.
pub fn sorted(loader: &Loader, mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let sources = &loader.sources;
    sort_and_dedup(&mut diags, |s| match sources.get(s.file) {
        Some(f) => (path_str(&f.path), s.start),
        None => (String::new(), s.start),
    });
    diags
}

/// The human rendering (no colour, 100 columns).
pub fn human(loader: &Loader, diags: &[Diagnostic]) -> String {
    let summary = Summary::of(diags, 1);
    render::human(
        &loader.sources,
        diags,
        &summary,
        &HumanOptions {
            color: false,
            width: 100,
        },
    )
}

/// The JSON rendering.
pub fn json(loader: &Loader, diags: &[Diagnostic]) -> String {
    let summary = Summary::of(diags, 1);
    render::json(&loader.sources, diags, &summary)
}
