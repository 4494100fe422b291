//! Hostile trees through the `pbc` binary: the load restrictor over every read, special
//! files, work budgets, and input sizes that a recursive algorithm would not survive.
//!
//! Every run has a watchdog: a run that hangs (a FIFO opened for reading blocks forever)
//! is killed and fails the test instead of hanging the suite. The watchdog is no timing
//! assertion: its limit is far above any normal run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Far above any run of these tests; reached only by a run that hangs.
const WATCHDOG: Duration = Duration::from_secs(300);

fn pbc(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("PBC_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pbc");
    // Drain the pipes on threads so that a large output cannot stall the child.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pbc {args:?} did not finish: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().expect("stdout thread"),
        stderr: t_err.join().expect("stderr thread"),
    }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbc-hard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn codes(o: &Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", all_output(o)));
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

fn messages(o: &Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect()
}

/// A playbook whose first stage's output (schema `schemas/report.json`) the second reads.
const PLAYBOOK: &str = "apiVersion: agenticops/v1
kind: Playbook
metadata:
  name: hardened
spec:
  trigger: pull-request-created
  stages:
    - name: analyze
      agent: glm-5
      output-schema: schemas/report.json
    - name: review
      agent: glm-5
      approval: conditional
      approvers: [{role: reviewers}]
      conditions:
        - if: report.rows > 10
          then: manual
        - else: auto
";

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - playbook.yaml
";

fn tree(dir: &Path) {
    write(dir, "tree/kustomization.yaml", KUSTOMIZATION);
    write(dir, "tree/playbook.yaml", PLAYBOOK);
}

#[cfg(unix)]
fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(r, 0, "mkfifo {}", p.display());
}

#[cfg(unix)]
#[test]
fn a_schema_symlinked_outside_the_root_is_refused_unread() {
    let d = tmpdir("schema-outside");
    tree(&d);
    // Not JSON: had it been read, the schema check would have quoted it.
    write(
        &d,
        "outside/secret.json",
        "TOP-SECRET-LINE-1 root:x:0:0\nTOP-SECRET-LINE-2\n",
    );
    std::fs::create_dir_all(d.join("tree/schemas")).unwrap();
    std::os::unix::fs::symlink(
        d.join("outside/secret.json"),
        d.join("tree/schemas/report.json"),
    )
    .unwrap();
    let json = pbc(&d, &["check", "tree", "--format", "json"]);
    assert_eq!(json.status.code(), Some(1), "{}", all_output(&json));
    assert!(
        codes(&json).contains(&"PB1003".to_string()),
        "{}",
        all_output(&json)
    );
    let human = pbc(&d, &["check", "tree"]);
    let build = pbc(&d, &["build", "tree", "--target", "argo"]);
    assert_eq!(build.status.code(), Some(1), "{}", all_output(&build));
    for o in [&json, &human, &build] {
        let all = all_output(o);
        assert!(!all.contains("TOP-SECRET"), "the file was read: {all}");
    }
    // `--load-restrictor none` lifts it, as for the files a kustomization names.
    let none = pbc(
        &d,
        &["build", "tree", "--target", "argo", "--load-restrictor", "none"],
    );
    assert!(
        all_output(&none).contains("PB3002"),
        "{}",
        all_output(&none)
    );
}

#[test]
fn a_non_json_schema_is_quoted_only_in_a_short_escaped_excerpt() {
    let d = tmpdir("schema-text");
    tree(&d);
    let mut text = String::from("root:x:0:0:root:/root:/bin/bash\u{1b}[31m");
    text.push_str(&"y".repeat(500));
    text.push_str("\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n");
    write(&d, "tree/schemas/report.json", &text);
    let o = pbc(&d, &["check", "tree", "--format", "json"]);
    assert!(codes(&o).contains(&"PB3002".to_string()), "{}", all_output(&o));
    let msg = messages(&o)
        .into_iter()
        .find(|m| m.contains("not a JSON Schema"))
        .expect("the PB3002 message");
    assert!(msg.chars().count() < 250, "{msg}");
    assert!(!msg.contains('\u{1b}'), "{msg}");
    assert!(!msg.contains("daemon"), "{msg}");
    assert!(!msg.contains(&"y".repeat(100)), "{msg}");
}

#[cfg(unix)]
#[test]
fn a_fifo_resource_or_schema_is_refused_by_type_without_blocking() {
    let d = tmpdir("fifo");
    tree(&d);
    write(&d, "tree/schemas/.keep", "");
    mkfifo(&d.join("tree/schemas/report.json"));
    let o = pbc(&d, &["check", "tree", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(codes(&o).contains(&"PB0011".to_string()), "{}", all_output(&o));
    assert!(
        messages(&o).iter().any(|m| m.contains("FIFO")),
        "{}",
        all_output(&o)
    );

    let d = tmpdir("fifo-resource");
    write(
        &d,
        "tree/kustomization.yaml",
        "resources:\n  - playbook.yaml\n  - pipe.yaml\n",
    );
    write(&d, "tree/playbook.yaml", PLAYBOOK);
    write(&d, "tree/schemas/report.json", r#"{"type": "object"}"#);
    mkfifo(&d.join("tree/pipe.yaml"));
    for args in [
        &["check", "tree", "--format", "json"][..],
        &["build", "tree"][..],
    ] {
        let o = pbc(&d, args);
        assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
        let all = all_output(&o);
        assert!(all.contains("PB0011") && all.contains("FIFO"), "{all}");
    }
}
