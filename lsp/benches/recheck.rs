//! The language server's re-check after an edit (docs/performance.md): the generated monorepo
//! of 1,000 playbooks (a base and three overlays, xtask) with one more playbook of 500 lines
//! in the base, and the same playbook outside the tree, checked once; then each iteration
//! changes one buffer and re-checks, as a pause in typing does.
//! `recheck_base_500_lines`: the 500-line playbook of the base (each of the three overlays
//! that include it re-resolves and re-checks its documents); `recheck_loose_500_lines`: the
//! loose copy (its own unit only); `recheck_base_playbook`: one of the generated playbooks;
//! `recheck_overlay_patch`: a strategic-merge patch of `dev` naming one playbook (`dev` is
//! resolved whole; the playbooks it leaves as they were keep their findings).
//! No timing is asserted: this only measures.

use criterion::{Criterion, criterion_group, criterion_main};
use pbc_lsp::Workspace;
use pbc_lsp::convert::Encoding;
use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const N: usize = 1000;

/// A valid playbook of about 500 lines: 82 stages of six lines each, chained by `needs`.
fn big_playbook(name: &str) -> String {
    let mut s = format!(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: {name}\n  labels:\n    team: team-01\nspec:\n  trigger: pull-request-created\n  audit:\n    log-to: [langfuse]\n  stages:\n",
    );
    for k in 0..82 {
        let _ = write!(
            s,
            "    - name: step-{k}\n      agent: glm-5\n      prompt: Summarize part {k} of the change.\n      timeout: 10m\n      retries: 1\n"
        );
        if k > 0 {
            let _ = writeln!(s, "      needs: [step-{}]", k - 1);
        } else {
            s.push_str("      approval: auto\n");
        }
    }
    s
}

fn recheck(c: &mut Criterion) {
    let root = std::env::temp_dir().join(format!("pbc-lsp-bench-{N}"));
    xtask::gen_monorepo(N, &root).expect("writable temporary directory");
    let loose = root.join("standalone/big.yaml");
    std::fs::create_dir_all(root.join("standalone")).expect("writable temporary directory");
    let big = big_playbook("big-loose");
    assert!(big.lines().count() >= 490, "{} lines", big.lines().count());
    std::fs::write(&loose, &big).expect("writable temporary directory");
    // The same playbook in the base, listed last among its resources.
    let in_base = root.join("base/big.yaml");
    let big_base = big_playbook("big-base");
    std::fs::write(&in_base, &big_base).expect("writable temporary directory");
    let mut kust = xtask::base_kustomization(N);
    kust.push_str("  - big.yaml\n");
    std::fs::write(root.join("base/kustomization.yaml"), kust)
        .expect("writable temporary directory");
    // A patch of `dev` naming one playbook.
    let (env, prefix, json) = xtask::OVERLAYS[0];
    let mut dev = xtask::overlay_kustomization(env, prefix, json);
    dev.push_str("  - path: one.yaml\n");
    std::fs::write(root.join("overlays/dev/kustomization.yaml"), dev)
        .expect("writable temporary directory");
    let one = root.join("overlays/dev/one.yaml");
    let one_text = |k: u64| {
        format!(
            "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: {}\nspec:\n  stages:\n    - name: review\n      prompt: Summarise the analysis for the reviewer ({k}).\n",
            xtask::playbook_name(7)
        )
    };
    std::fs::write(&one, one_text(0)).expect("writable temporary directory");
    let base = root.join(format!("base/{}.yaml", xtask::playbook_name(7)));
    let base_text = xtask::playbook(7);

    let mut ws = Workspace::new(&root, Encoding::Utf16);
    ws.check();
    // The generated tree is clean: what the re-checks find is only what the edits break.
    let found: usize = ws.files.values().map(Vec::len).sum();
    assert_eq!(found, 0, "{:#?}", ws.files.keys().collect::<Vec<_>>());

    let mut g = c.benchmark_group("lsp");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut i = 0u64;
    g.bench_function(format!("recheck_base_500_lines/n{N}"), |b| {
        b.iter(|| {
            i += 1;
            let text = format!("{big_base}# edit {i}\n");
            ws.set_buffer(&in_base, Some(&text));
            ws.check();
            black_box(ws.files.len())
        })
    });
    g.bench_function(format!("recheck_loose_500_lines/n{N}"), |b| {
        b.iter(|| {
            i += 1;
            // An edit: the same playbook with a different comment, so the file is parsed.
            let text = format!("{big}# edit {i}\n");
            ws.set_buffer(&loose, Some(&text));
            ws.check();
            black_box(ws.files.len())
        })
    });
    g.bench_function(format!("recheck_base_playbook/n{N}"), |b| {
        b.iter(|| {
            i += 1;
            let text = format!("{base_text}# edit {i}\n");
            ws.set_buffer(&base, Some(&text));
            ws.check();
            black_box(ws.files.len())
        })
    });
    g.bench_function(format!("recheck_overlay_patch/n{N}"), |b| {
        b.iter(|| {
            i += 1;
            ws.set_buffer(&one, Some(&one_text(i)));
            ws.check();
            black_box(ws.files.len())
        })
    });
    g.finish();
    // Each edit kept the playbooks' ids: every re-check of a base file took the short path.
    assert!(
        ws.spliced > 0,
        "the base's edits re-checked the trees whole"
    );
    let _ = std::fs::remove_dir_all(Path::new(&root).join("standalone"));
    let _ = std::fs::remove_file(&in_base);
}

criterion_group!(benches, recheck);
criterion_main!(benches);
