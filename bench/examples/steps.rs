//! `cargo run --release -p pbc-bench --example steps -- STEP DIR`: one step of the
//! pipeline in a process of its own, for profilers (callgrind, massif, perf):
//! `build` (one overlay: load, resolve, emit) or `check` (the whole tree).

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(step), Some(dir)) = (args.first(), args.get(1).map(PathBuf::from)) else {
        eprintln!("usage: steps build|check DIR");
        std::process::exit(2);
    };
    match step.as_str() {
        "build" => println!("{} bytes", pbc_bench::build_resolved(&dir).len()),
        "check" => println!("{} findings", pbc_bench::check_tree(&dir).diags.len()),
        _ => {
            eprintln!("unknown step `{step}`");
            std::process::exit(2);
        }
    }
}
