//! Paths as kustomize takes them: every command resolves an overlay's `../../base` the same
//! from inside the overlay, from a sibling overlay, through a symbolic link and by absolute
//! path, and gives the same output each way.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pbc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("PBC_STATE_DIR")
        .output()
        .expect("run pbc")
}

fn ok(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: stdout {}\nstderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbc-paths-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // The real path: a test that compares paths must not depend on a linked temp dir.
    std::fs::canonicalize(&d).unwrap()
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

/// Files, relative to a directory, with their bytes.
type Tree = Vec<(PathBuf, Vec<u8>)>;

/// Every file under `d`, relative to it, with its bytes.
fn tree(d: &Path) -> Tree {
    let mut out = Vec::new();
    let mut todo = vec![d.to_path_buf()];
    while let Some(x) = todo.pop() {
        for e in std::fs::read_dir(&x).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p.strip_prefix(d).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// A JSON report with every `file` and `unit` value removed (paths are shown relative to
/// the working directory, so they differ from one invocation to the next; nothing else may).
fn without_files(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(text).expect("json");
    let mut stack = vec![&mut v];
    while let Some(x) = stack.pop() {
        match x {
            serde_json::Value::Object(m) => {
                m.remove("file");
                m.remove("unit");
                stack.extend(m.values_mut());
            }
            serde_json::Value::Array(a) => stack.extend(a.iter_mut()),
            _ => {}
        }
    }
    v
}

fn commit_all(dir: &Path) {
    let repo = git2::Repository::init(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("t", "t@example.com", &git2::Time::new(0, 0)).unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .unwrap();
}

#[cfg(unix)]
#[test]
fn every_command_resolves_an_overlay_the_same_from_any_directory() {
    let t = tmpdir("styles");
    let repo = t.join("repo");
    // The tree and its configuration (found through the link too: its real place).
    copy_dir(&workspace().join("testdata/example"), &repo);
    commit_all(&repo);
    // An uncommitted change in the overlay, so that `pbc diff` has something to show.
    let patch = repo.join("playbooks/overlays/production/audit-retention-patch.yaml");
    let text = std::fs::read_to_string(&patch).unwrap();
    std::fs::write(&patch, text.replace("2555d", "3000d")).unwrap();
    std::os::unix::fs::symlink(repo.join("playbooks/overlays"), t.join("link")).unwrap();
    let prod = repo.join("playbooks/overlays/production");
    let abs = prod.to_str().unwrap().to_string();
    // (working directory, the overlay as given there)
    let styles: Vec<(PathBuf, &str)> = vec![
        (prod.clone(), "."),
        (repo.join("playbooks/overlays/staging"), "../production"),
        (t.join("link/production"), "."),
        (t.clone(), "link/production"),
        (t.join("link/staging"), "../production"),
        (PathBuf::from("/"), abs.as_str()),
        (repo.clone(), "playbooks/overlays/production"),
    ];
    let expected = std::fs::read_to_string(
        workspace().join("testdata/oracle/example-kubectl/production.yaml"),
    )
    .unwrap()
    .replace("2555d", "3000d");
    let input = t.join("input.json");
    std::fs::write(&input, "{}\n").unwrap();
    let mut first: Option<(Tree, Tree)> = None;
    let mut first_cov = None;
    let mut first_diff = None;
    for (i, (cwd, dir)) in styles.iter().enumerate() {
        let what = format!("from {} with {dir}", cwd.display());
        // build: what kubectl kustomize prints.
        let out = ok(&pbc(cwd, &["build", dir]), &what);
        assert_eq!(out, expected, "{what}");
        // build --target all -o, and the bundle: the same bytes each way.
        let built = t.join(format!("built-{i}"));
        ok(
            &pbc(
                cwd,
                &[
                    "build",
                    dir,
                    "--target",
                    "all",
                    "-o",
                    built.to_str().unwrap(),
                ],
            ),
            &what,
        );
        let bundled = t.join(format!("bundle-{i}"));
        ok(
            &pbc(
                cwd,
                &[
                    "bundle",
                    dir,
                    "--env",
                    "production",
                    "-o",
                    bundled.to_str().unwrap(),
                ],
            ),
            &what,
        );
        let now = (tree(&built), tree(&bundled));
        assert!(now.0.len() >= 8 && now.1.len() >= 10, "{what}: {:?}", now.0);
        match &first {
            None => first = Some(now),
            Some(f) => assert!(*f == now, "{what}: other artifacts"),
        }
        // check: clean, and production is the environment (its stricter rules ran).
        let out = ok(&pbc(cwd, &["check", dir]), &what);
        let summary = out.lines().last().unwrap_or_default();
        assert!(summary.starts_with("ok: 0 errors"), "{what}: {out}");
        // coverage: the production environment, the same report.
        let cov = ok(&pbc(cwd, &["coverage", dir, "--format", "json"]), &what);
        let cov = without_files(&cov);
        assert!(cov.to_string().contains("\"production\""), "{what}: {cov}");
        match &first_cov {
            None => first_cov = Some(cov),
            Some(f) => assert_eq!(*f, cov, "{what}: other coverage"),
        }
        // diff against the commit: the changed retention, in production.
        let out = ok(
            &pbc(cwd, &["diff", "--base", "HEAD", dir, "--format", "json"]),
            &what,
        );
        let out = without_files(&out);
        let env = &out["environments"][0];
        assert!(
            env["environment"] == "production" && env.to_string().contains("spec.audit"),
            "{what}: {out}"
        );
        match &first_diff {
            None => first_diff = Some(out),
            Some(f) => assert_eq!(*f, out, "{what}: other diff"),
        }
        // run: it loads the overlay and asks which of its playbooks to run.
        let out = pbc(
            cwd,
            &[
                "run",
                dir,
                "--input",
                input.to_str().unwrap(),
                "--state",
                t.join("state").to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("code-review-agent, security-review-agent") && !err.contains("PB1001"),
            "{what}: {err}"
        );
    }
    // Without a path, `pbc check` and `pbc coverage` take the working directory.
    let out = ok(&pbc(&prod, &["check"]), "check without a path");
    let summary = out.lines().last().unwrap_or_default();
    assert!(summary.starts_with("ok: 0 errors"), "{out}");
    let cov = ok(
        &pbc(&prod, &["coverage", "--format", "json"]),
        "coverage without a path",
    );
    assert_eq!(Some(without_files(&cov)), first_cov);
    let _ = std::fs::remove_dir_all(&t);
}

#[test]
fn files_beside_the_working_directory_are_shown_relative_to_it() {
    let t = tmpdir("shown");
    copy_dir(&workspace().join("testdata/example"), &t);
    let base = t.join("playbooks/base/code-review-agent.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(
        &base,
        text.replacen("stages:", "stages:\n    - name: 7\n", 1),
    )
    .unwrap();
    let prod = t.join("playbooks/overlays/production");
    let out = pbc(&prod, &["check", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["file"].as_str())
        .collect();
    assert!(
        files.contains(&"../../base/code-review-agent.yaml"),
        "{files:?}"
    );
    let _ = std::fs::remove_dir_all(&t);
}
