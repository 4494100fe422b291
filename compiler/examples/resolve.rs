//! `cargo run -p pbc-compiler --example resolve -- DIR`: resolves a kustomization directory
//! and prints the documents like `kustomize build`, and the diagnostics on stderr.

use pbc_compiler::diag::Summary;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::render::{HumanOptions, human};
use pbc_compiler::resolve::{ResolveOptions, emit_yaml, resolve};
use pbc_compiler::yaml::Limits;
use std::path::Path;
use std::sync::Arc;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: resolve DIR");
        std::process::exit(2);
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let loader = Loader::new(Arc::new(OsFs), cwd, Limits::default());
    match resolve(&loader, Path::new(&dir), &ResolveOptions::default()) {
        Ok(r) => {
            print!("{}", emit_yaml(&r.docs));
            let s = Summary::of(&r.diags, r.files.len());
            eprint!(
                "{}",
                human(&loader.sources, &r.diags, &s, &HumanOptions::default())
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
