//! Criterion benchmarks of pbc's pipeline on the generated monorepo
//! (`docs/performance.md`): the baseline (saphyr-parser's spanned events, one thread), then
//! load, resolve, emit, check and a whole `build --target resolved`.
//!
//! `cargo bench -p pbc-bench` runs N = 100 and 1,000; `PBC_BENCH_10K=1` adds N = 10,000
//! (slow on two cores). No timing is asserted anywhere: these only measure.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pbc_bench as b;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

fn sizes() -> Vec<usize> {
    let mut v = vec![100, 1000];
    if std::env::var_os("PBC_BENCH_10K").is_some_and(|x| !x.is_empty() && x != "0") {
        v.push(10_000);
    }
    v
}

fn pipeline(c: &mut Criterion) {
    for n in sizes() {
        let dir = b::monorepo(n);
        let files = b::tree_files(&dir);
        let texts = b::read_all(&files).expect("the generated tree is readable");
        let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
        let overlays = b::overlays(&dir);
        let mut g = c.benchmark_group(format!("n{n}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(if n >= 10_000 { 30 } else { 5 }))
            .throughput(Throughput::Bytes(bytes));

        // The baseline: every file of the tree through saphyr-parser, one thread.
        g.bench_function(BenchmarkId::new("bare_parse", n), |bch| {
            bch.iter(|| black_box(b::bare_parse(&texts)))
        });
        // Load: read, decode and parse every file into spanned trees (a fresh loader).
        g.bench_function(BenchmarkId::new("load", n), |bch| {
            bch.iter(|| {
                let l = b::loader(Path::new(""));
                black_box(b::load_all(&l, &files))
            })
        });
        // Resolve: the three overlays on a loader that has every file parsed already.
        let warm = b::loader(Path::new(""));
        b::load_all(&warm, &files);
        g.bench_function(BenchmarkId::new("resolve_3_overlays", n), |bch| {
            bch.iter(|| {
                for o in &overlays {
                    black_box(b::resolve_overlay(&warm, o).docs.len());
                }
            })
        });
        // Emit: the three resolved overlays as YAML.
        let resolved: Vec<_> = overlays
            .iter()
            .map(|o| b::resolve_overlay(&warm, o))
            .collect();
        g.bench_function(BenchmarkId::new("emit_3_overlays", n), |bch| {
            bch.iter(|| {
                for r in &resolved {
                    black_box(b::emit(r).len());
                }
            })
        });
        // Build: one overlay from nothing (load, resolve, emit), as one `pbc build` does.
        g.bench_function(BenchmarkId::new("build_one_overlay", n), |bch| {
            bch.iter(|| black_box(b::build_resolved(&overlays[0]).len()))
        });
        // Check: the whole tree (discovery, three overlays, model, types, compliance).
        g.bench_function(BenchmarkId::new("check", n), |bch| {
            bch.iter(|| black_box(b::check_tree(&dir).diags.len()))
        });
        g.finish();
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
