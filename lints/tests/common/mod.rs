//! Shared helpers for the pbc-lints tests: load files relative to the repository root so that
//! paths in output are stable (`testdata/…`).
#![allow(dead_code)]

use pbc_compiler::diag::{Diagnostic, Summary, sort_and_dedup};
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::render::{self, HumanOptions, path_str};
use pbc_compiler::yaml::{Limits, Node};
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
