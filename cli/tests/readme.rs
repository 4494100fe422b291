//! The README's example sessions print what the README says they print.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every ```text block of the README that starts with `$ pbc ...`: (arguments, output).
fn sessions(readme: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut rest = readme;
    while let Some(i) = rest.find("```text\n$ pbc ") {
        let block = &rest[i + "```text\n$ ".len()..];
        let Some(end) = block.find("```\n") else {
            break;
        };
        let (cmd, expected) = block[..end].split_once('\n').unwrap_or((&block[..end], ""));
        let args = cmd.split_whitespace().skip(1).map(str::to_string).collect();
        out.push((args, expected.to_string()));
        rest = &block[end..];
    }
    out
}

#[test]
fn the_readme_examples_print_what_it_says() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let sessions = sessions(&readme);
    assert!(!sessions.is_empty(), "no example session in the README");
    for (args, expected) in sessions {
        let out = Command::new(env!("CARGO_BIN_EXE_pbc"))
            .args(&args)
            .current_dir(workspace())
            .env("NO_COLOR", "1")
            .env_remove("COLUMNS")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "pbc {}",
            args.join(" ")
        );
    }
}
