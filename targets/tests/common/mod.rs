//! Shared helpers of the targets' integration tests.
#![allow(dead_code)]

use pbc_compiler::check::PlaybookCtx;
use pbc_compiler::config::Config;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_targets::bundle::{self, Compilation};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

pub fn no_extra(_: &PlaybookCtx<'_>, _: &mut Vec<Diagnostic>) {}

pub fn loader(cwd: &Path) -> Loader {
    Loader::new(Arc::new(OsFs), cwd, Default::default())
}

/// The configuration `pbc` would use for `path`: `.pbc.yaml` found upward, else the
/// defaults; panics on a broken one.
pub fn config(path: &Path) -> Config {
    let Some(file) = Config::discover(&OsFs, path) else {
        return Config::default();
    };
    let mut diags = Vec::new();
    let cfg = Config::load(&loader(Path::new("")), &file, &mut diags)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(diags.is_empty(), "{}: {diags:?}", file.display());
    cfg
}

/// Compiles a path relative to `cwd` with its configuration; panics on errors.
pub fn compile(cwd: &Path, rel: &str) -> (Loader, Compilation) {
    let l = loader(cwd);
    let c = bundle::compile(
        &l,
        &config(&cwd.join(rel)),
        &cwd.join(rel),
        &Default::default(),
        &no_extra,
    )
    .expect("compiles");
    let errors: Vec<String> = c
        .diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.code.id, d.message))
        .collect();
    assert!(errors.is_empty(), "{rel}: {errors:?}");
    (l, c)
}

/// Every input of the targets' tests: overlays, seeds, targets fixtures (relative paths).
pub fn inputs() -> Vec<String> {
    let root = repo();
    let mut v = Vec::new();
    for env in ["dev", "staging", "production"] {
        v.push(format!("testdata/example/playbooks/overlays/{env}"));
    }
    for dir in ["testdata/seeds", "testdata/targets"] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .expect("dir")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .filter(|p| p.file_name().is_some_and(|n| n != ".pbc.yaml"))
                .collect();
            files.sort();
            for f in files {
                let rel = f.strip_prefix(&root).expect("under repo");
                v.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    v
}

/// A fresh empty directory under the system's temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "pbc-targets-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}
