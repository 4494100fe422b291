//! The benchmarks' generated monorepo (xtask) is a clean tree: the figures in
//! docs/performance.md measure checking playbooks, not reporting findings. A new check that
//! finds something in it fails here, and the generator (or the check) is fixed.

use pbc_lsp::Workspace;
use pbc_lsp::convert::Encoding;

#[test]
fn the_generated_monorepo_checks_clean() {
    let root = std::env::temp_dir().join(format!("pbc-lsp-generated-{}", std::process::id()));
    xtask::gen_monorepo(24, &root).expect("writable temporary directory");
    let mut ws = Workspace::new(&root, Encoding::Utf16);
    ws.check();
    let found: Vec<String> = ws
        .files
        .iter()
        .flat_map(|(p, fs)| {
            fs.iter()
                .map(move |f| format!("{}: {}", p.display(), f.diag.message))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&root);
    assert!(found.is_empty(), "{found:#?}");
}
