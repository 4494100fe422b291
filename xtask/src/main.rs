//! `cargo run -p xtask -- gen-monorepo --n 1000 --out DIR`

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo run -p xtask -- gen-monorepo --n N --out DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen-monorepo") => {}
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    let mut n: Option<usize> = None;
    let mut out: Option<PathBuf> = None;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--n" => n = it.next().and_then(|v| v.replace('_', "").parse().ok()),
            "--out" => out = it.next().map(PathBuf::from),
            _ => {
                eprintln!("unknown argument `{a}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(n), Some(out)) = (n, out) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match xtask::gen_monorepo(n, &out) {
        Ok(()) => {
            println!(
                "{}: {n} playbooks, base/ and overlays/{{dev,staging,production}}",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
