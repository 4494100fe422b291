//! `bare-parse DIR [ROUNDS]`: the baseline of the benchmarks. Reads every YAML and JSON
//! file under DIR into memory, then runs saphyr-parser's spanned event parser over them on
//! one thread, ROUNDS times (default 5), and prints the median wall time in milliseconds.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: bare-parse DIR [ROUNDS]");
        std::process::exit(2);
    };
    if !dir.is_dir() {
        eprintln!("bare-parse: {}: not a directory", dir.display());
        std::process::exit(2);
    }
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let files = pbc_bench::tree_files(&dir);
    let texts = match pbc_bench::read_all(&files) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bare-parse: {e}");
            std::process::exit(2);
        }
    };
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut times = Vec::new();
    let mut events = 0;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        events = pbc_bench::bare_parse(&texts);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    eprintln!(
        "{} files, {bytes} bytes, {events} events; rounds (ms): {:?}",
        files.len(),
        times
            .iter()
            .map(|t| (t * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    println!("{median:.1}");
}
