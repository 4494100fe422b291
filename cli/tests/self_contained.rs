//! The repository stands on its own: its docs, help text, schemas and test data cite no
//! document a user of a fresh clone does not have, and no test or script reads a directory
//! outside the clone. Every reference file a test reads is in `testdata/reference/` and named
//! in its `SOURCES.md`.

use std::path::{Path, PathBuf};

/// The directory beside a clone that must never be read (spelt in two pieces so that this
/// file does not match its own search).
const OUTSIDE: &str = concat!("..", "/shared");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of the repository (honouring `.gitignore`), relative to its root.
fn files() -> Vec<PathBuf> {
    let root = workspace();
    let mut out = Vec::new();
    for entry in ignore::WalkBuilder::new(&root)
        .hidden(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build()
    {
        let entry = entry.expect("the repository can be walked");
        if entry.file_type().is_some_and(|t| t.is_file()) {
            let rel = entry.path().strip_prefix(&root).expect("under the root");
            out.push(rel.to_path_buf());
        }
    }
    out.sort();
    assert!(
        out.len() > 100,
        "the walk found the repository ({} files)",
        out.len()
    );
    out
}

/// Whether a file is read by people: docs, help text, schemas, test data, and the comments
/// of the code (rustdoc).
fn is_user_facing(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    if s.starts_with("testdata/reference/") || s.starts_with("target/") {
        return false; // upstream files, copied unchanged
    }
    if s.starts_with("testdata/kustomize-cases/") {
        // kustomize's own test trees and kubectl's outputs, as extracted (some refer to a
        // directory of their own tree named `shared`, one level up).
        return false;
    }
    let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(
        ext,
        "md" | "snap" | "yaml" | "yml" | "json" | "sh" | "py" | "txt"
    ) || (ext == "rs" && !s.ends_with("self_contained.rs"))
        || s.starts_with(".ci/")
        || rel.file_name().is_some_and(|n| n == "PBC-ONLY")
}

/// Citations of documents that live outside the repository: the product's external
/// contract by section, its design seeds, the issue tracker.
fn outside_citations(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = text.to_ascii_lowercase();
    for (n, line) in lower.lines().enumerate() {
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '§' || c == '/' || c == '.'))
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let numbered = b.trim_end_matches('.').chars().all(|c| c.is_ascii_digit())
                && !b.trim_end_matches('.').is_empty();
            if (a == "seed" || a == "seeds" || a == "issue") && numbered {
                found.push(format!("line {}: `{a} {b}`", n + 1));
            }
        }
        if line.contains("contract §") || line.contains("contract section") {
            found.push(format!("line {}: a contract section", n + 1));
        }
        if line.contains('§') {
            found.push(format!("line {}: a section sign", n + 1));
        }
        if line.contains("shared/reference") || line.contains(OUTSIDE) {
            found.push(format!("line {}: a path outside the repository", n + 1));
        }
    }
    found
}

#[test]
fn user_facing_text_cites_nothing_outside_the_repository() {
    let root = workspace();
    let mut bad = Vec::new();
    let mut read = 0;
    for rel in files().into_iter().filter(|r| is_user_facing(r)) {
        let Ok(mut text) = std::fs::read_to_string(root.join(&rel)) else {
            continue; // binary data
        };
        if rel.extension().is_some_and(|e| e == "rs") && !rel.starts_with("cli/src") {
            // Code: its comments (rustdoc and the notes a reader follows). The CLI's sources
            // are checked whole: they hold the help text.
            text = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("//") {
                        l
                    } else {
                        ""
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        read += 1;
        for f in outside_citations(&text) {
            bad.push(format!("{}: {f}", rel.display()));
        }
    }
    assert!(
        read > 100,
        "read the docs, schemas and test data ({read} files)"
    );
    assert!(
        bad.is_empty(),
        "cite the thing itself, not a document outside the repository:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_citation_finder_finds_what_it_looks_for() {
    assert_eq!(outside_citations("as contract §4 says").len(), 2);
    assert_eq!(
        outside_citations("the layout of Seed 000 and issue 6.").len(),
        2
    );
    assert_eq!(
        outside_citations(&format!("copied from {OUTSIDE}/x")).len(),
        1
    );
    assert!(outside_citations("seeded from testdata; issue the command; 000 seeds").is_empty());
}

#[test]
fn tests_and_scripts_read_nothing_outside_the_clone() {
    let root = workspace();
    let mut bad = Vec::new();
    for rel in files() {
        let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
        let script = matches!(ext, "rs" | "sh" | "py") || rel.starts_with(".ci");
        if !script {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&rel)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains(OUTSIDE) || line.contains(concat!("PBC_", "SHARED")) {
                bad.push(format!("{}:{}", rel.display(), n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "reads outside the clone:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_reference_file_names_its_source() {
    let root = workspace();
    let sources = std::fs::read_to_string(root.join("testdata/reference/SOURCES.md"))
        .expect("testdata/reference/SOURCES.md");
    let mut unnamed = Vec::new();
    let mut n = 0;
    for rel in files() {
        let Ok(inner) = rel.strip_prefix("testdata/reference") else {
            continue;
        };
        if inner == Path::new("SOURCES.md") {
            continue;
        }
        n += 1;
        let name = format!("`{}`", inner.to_string_lossy());
        if !sources.contains(&name) {
            unnamed.push(name);
        }
    }
    assert!(n >= 5, "the reference files are in the repository ({n})");
    assert!(
        unnamed.is_empty(),
        "not in SOURCES.md: {}",
        unnamed.join(", ")
    );
}
