//! `pbc lsp` driven over stdio by real clients: pygls's language client (tests/lsp/client.py:
//! open, change, diagnostics appearing and clearing, related information, hover, definition,
//! references, completion, code actions, both position encodings) and headless Neovim's
//! built-in client (tests/lsp/nvim.lua: diagnostics, then a code action applied). Needs
//! python3 with pygls (tests/lsp/requirements.txt) and Debian's neovim: under CI a missing
//! one fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of the fixture workspace (the tests change files in it).
fn workspace() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/lsp/workspace"), t.path());
    t
}

/// A python3 with pygls: the repository's `.venv`, `PBC_TEST_PYTHON` or `python3`; `None`
/// (outside CI) when there is none.
fn python() -> Option<PathBuf> {
    let mut cands = vec![repo().join(".venv/bin/python3")];
    if let Some(p) = std::env::var_os("PBC_TEST_PYTHON") {
        cands.push(PathBuf::from(p));
    }
    cands.push(PathBuf::from("python3"));
    let py = cands.into_iter().find(|c| {
        Command::new(c)
            .args(["-c", "import pygls.lsp.client, lsprotocol"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if py.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the language server tests need python3 with pygls (tests/lsp/requirements.txt) under CI"
        );
        eprintln!("skipped: no python3 with pygls (tests/lsp/requirements.txt)");
    }
    py
}

fn client(encoding: &str) {
    let Some(py) = python() else { return };
    let ws = workspace();
    let out = Command::new(py)
        .arg(repo().join("tests/lsp/client.py"))
        .arg(env!("CARGO_BIN_EXE_pbc"))
        .arg(ws.path())
        .arg(encoding)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout.trim(), "ok", "stderr:\n{stderr}");
}

#[test]
fn a_client_offering_utf32_gets_utf32_positions_and_every_feature() {
    client("utf-32");
}

#[test]
fn a_client_offering_only_utf16_gets_utf16_positions() {
    client("utf-16");
}

#[test]
fn headless_neovim_receives_the_diagnostics_and_applies_a_code_action() {
    let nvim = Path::new("/usr/bin/nvim");
    if !nvim.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Neovim test needs Debian's neovim (apt-get install neovim) under CI"
        );
        eprintln!("skipped: no /usr/bin/nvim (apt-get install neovim)");
        return;
    }
    let ws = workspace();
    let out = Command::new(nvim)
        .args(["--headless", "--clean", "-u", "NONE", "-c"])
        .arg(format!(
            "luafile {}",
            repo().join("tests/lsp/nvim.lua").display()
        ))
        .env("PBC", env!("CARGO_BIN_EXE_pbc"))
        .env("PBC_LSP_WS", ws.path())
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("ok"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
