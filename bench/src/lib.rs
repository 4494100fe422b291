//! Shared pieces of pbc's benchmarks (see `docs/performance.md`): the baseline
//! (a bare spanned parse with saphyr-parser, one thread) and each pipeline step wired as the
//! CLI wires it.

use pbc_compiler::check::{self, PlaybookCtx, Report};
use pbc_compiler::config::Config;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::resolve::{self, Resolution, ResolveOptions};
use saphyr_parser::Parser;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use xtask::gen_monorepo;

// The allocator of the `pbc` binary, so that the benches measure what the CLI runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The generated monorepo for `n` playbooks, made once per machine under the temporary
/// directory (`pbc-bench-N`), reused while its base kustomization is unchanged.
pub fn monorepo(n: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pbc-bench-{n}"));
    let fresh = std::fs::read_to_string(dir.join("base/kustomization.yaml"))
        .is_ok_and(|k| k == xtask::base_kustomization(n))
        && std::fs::read_to_string(dir.join(".pbc.yaml")).is_ok_and(|c| c == xtask::config())
        && dir.join("overlays/production/kustomization.yaml").is_file();
    if !fresh {
        gen_monorepo(n, &dir).expect("writable temporary directory");
    }
    dir
}

/// The three overlays of a generated monorepo.
pub fn overlays(dir: &Path) -> Vec<PathBuf> {
    xtask::OVERLAYS
        .iter()
        .map(|(env, _, _)| dir.join("overlays").join(env))
        .collect()
}

/// Every YAML and JSON file under `dir`, sorted: the files `pbc check` reads.
pub fn tree_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads files into memory; the error names the file that could not be read.
pub fn read_all(files: &[PathBuf]) -> Result<Vec<String>, String> {
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display())))
        .collect()
}

/// The baseline: saphyr-parser's spanned event stream over each text, one thread, the
/// events dropped. Returns the number of events (so that nothing is optimized away).
pub fn bare_parse(texts: &[String]) -> usize {
    let mut n = 0;
    for t in texts {
        let mut p = Parser::new_from_str(t);
        // A syntax error ends the file's events, as it ends pbc's parse of the file.
        while let Some(Ok((ev, span))) = p.next_event() {
            std::hint::black_box((ev, span));
            n += 1;
        }
    }
    n
}

/// A loader on the real file system, rooted at `cwd`.
pub fn loader(cwd: &Path) -> Loader {
    Loader::new(Arc::new(OsFs), cwd, Default::default())
}

/// Loads (parses) every file of the tree through the loader, in parallel as the checker
/// does. Returns the number of documents.
pub fn load_all(loader: &Loader, files: &[PathBuf]) -> usize {
    use rayon::prelude::*;
    files
        .par_iter()
        .map(|f| loader.load(f).map(|l| l.docs.len()).unwrap_or(0))
        .sum()
}

/// Resolves one overlay.
pub fn resolve_overlay(loader: &Loader, dir: &Path) -> Resolution {
    resolve::resolve(loader, dir, &ResolveOptions::default()).expect("a kustomization")
}

/// Emits a resolution as `pbc build --target resolved` does.
pub fn emit(res: &Resolution) -> String {
    resolve::emit_yaml(&res.docs)
}

/// `pbc build --target resolved DIR` without the process: a fresh loader, resolve, emit.
pub fn build_resolved(dir: &Path) -> String {
    let l = loader(Path::new(""));
    emit(&resolve_overlay(&l, dir))
}

/// `pbc check DIR` without the process and the rendering: discovery, the configuration found
/// upward (the monorepo's defines its channels and sinks), the compliance lints and the
/// emitted-name check, as the CLI wires them.
pub fn check_tree(dir: &Path) -> Report {
    let l = loader(Path::new(""));
    let mut diags: Vec<Diagnostic> = Vec::new();
    let cfg = match Config::discover(&OsFs, dir) {
        Some(p) => Config::load(&l, &p, &mut diags).expect("the monorepo's configuration"),
        None => Config::default(),
    };
    let comp = pbc_lints::Compliance::load(&cfg, &l, &mut diags);
    let extra = move |cx: &PlaybookCtx<'_>, d: &mut Vec<Diagnostic>| {
        comp.check_playbook_with(cx.playbook, cx.env.as_deref(), Some(&cx.loader.sources), d);
        pbc_targets::names::check_names(cx.playbook, &cx.doc.name_origin, &cx.loader.sources, d);
    };
    let units = check::discover(&[dir.to_path_buf()]).expect("discoverable");
    check::check(&l, &units, &cfg, &extra)
}
