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
    pbc_measured(dir, args).0
}

/// Runs pbc under the watchdog; also returns its peak resident memory in KiB (0 where the
/// platform does not say).
fn pbc_measured(dir: &Path, args: &[&str]) -> (Output, u64) {
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
    let (status, rss) = loop {
        if let Some(done) = reap(&mut child) {
            break done;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pbc {args:?} did not finish: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: t_out.join().expect("stdout thread"),
        stderr: t_err.join().expect("stderr thread"),
    };
    (out, rss)
}

/// The child's exit status and peak memory (KiB) once it has ended.
#[cfg(unix)]
fn reap(child: &mut std::process::Child) -> Option<(std::process::ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: plain syscall on our own child's pid with valid out-pointers.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
    (r == pid).then(|| {
        (
            std::process::ExitStatus::from_raw(status),
            ru.ru_maxrss as u64,
        )
    })
}

#[cfg(not(unix))]
fn reap(child: &mut std::process::Child) -> Option<(std::process::ExitStatus, u64)> {
    child.try_wait().expect("wait").map(|s| (s, 0))
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
        &[
            "build",
            "tree",
            "--target",
            "argo",
            "--load-restrictor",
            "none",
        ],
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
    assert!(
        codes(&o).contains(&"PB3002".to_string()),
        "{}",
        all_output(&o)
    );
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
    assert!(
        codes(&o).contains(&"PB0011".to_string()),
        "{}",
        all_output(&o)
    );
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

/// The kustomization "diamond": each of 21 levels includes the next twice, once through a
/// directory that adds a name suffix. 42 tiny files would build 2^20 resources.
fn diamond(d: &Path, levels: usize) {
    let last = levels - 1;
    write(
        d,
        &format!("l{last}/kustomization.yaml"),
        "resources: [cm.yaml]\n",
    );
    write(
        d,
        &format!("l{last}/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: x\n",
    );
    for i in 0..last {
        let next = i + 1;
        write(
            d,
            &format!("l{i}/kustomization.yaml"),
            &format!("resources:\n  - ../l{next}\n  - sfx\n"),
        );
        write(
            d,
            &format!("l{i}/sfx/kustomization.yaml"),
            &format!("nameSuffix: -s{i}\nresources:\n  - ../../l{next}\n"),
        );
    }
}

/// Peak memory a budgeted run stays far below (the unbudgeted runs take gigabytes).
const MEMORY_BOUND_KIB: u64 = 1024 * 1024;

#[test]
fn a_kustomization_diamond_stops_at_the_resource_budget() {
    let d = tmpdir("diamond");
    diamond(&d, 21);
    let (o, rss) = pbc_measured(&d, &["check", "l0", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        codes(&o).contains(&"PB1020".to_string()),
        "{}",
        all_output(&o)
    );
    assert!(rss < MEMORY_BOUND_KIB, "check: {rss} KiB");
    // The same through `pbc build`, with a budget set in `.pbc.yaml` (the default one is
    // proved above; a smaller one keeps the unoptimised test binary quick).
    write(&d, ".pbc.yaml", "limits:\n  max-resources: 1000\n");
    {
        let args = ["build", "l0"];
        let (o, rss) = pbc_measured(&d, &args);
        assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
        let all = all_output(&o);
        assert!(
            all.contains("PB1020") && all.contains("limit of 1000"),
            "{all}"
        );
        // The finding names the kustomization whose include passes the budget.
        assert!(all.contains("`l"), "{all}");
        assert!(rss < MEMORY_BOUND_KIB, "{args:?}: {rss} KiB");
    }
    // A smaller diamond under the budget builds.
    let d = tmpdir("diamond-small");
    diamond(&d, 5);
    let o = pbc(&d, &["build", "l0"]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("kind: ConfigMap")
            .count(),
        16
    );
}

#[test]
fn copy_operations_that_double_a_resource_stop_at_the_node_budget() {
    let d = tmpdir("copy-ops");
    let mut patch = String::new();
    for i in 0..25 {
        patch.push_str(&format!("- op: copy\n  from: /data\n  path: /data/c{i}\n"));
    }
    write(&d, "tree/patch.yaml", &patch);
    write(
        &d,
        "tree/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: x\n  b: y\n",
    );
    write(
        &d,
        "tree/kustomization.yaml",
        "resources: [cm.yaml]\npatches:\n  - path: patch.yaml\n    target: {kind: ConfigMap}\n",
    );
    for args in [
        &["build", "tree"][..],
        &["check", "tree", "--format", "json"][..],
    ] {
        let (o, rss) = pbc_measured(&d, args);
        assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
        let all = all_output(&o);
        assert!(all.contains("PB1021") && all.contains("copy"), "{all}");
        // Nothing of the doubled tree was written.
        assert!(o.stdout.len() < 64 * 1024, "{} bytes", o.stdout.len());
        assert!(rss < MEMORY_BOUND_KIB, "{args:?}: {rss} KiB");
    }
}

#[test]
fn the_output_budget_stops_a_build_at_the_document_that_passes_it() {
    let d = tmpdir("output-budget");
    write(&d, ".pbc.yaml", "limits:\n  max-output-bytes: 200\n");
    let mut res = String::from("resources:\n");
    for i in 0..10 {
        res.push_str(&format!("  - cm{i}.yaml\n"));
        write(
            &d,
            &format!("tree/cm{i}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n  a: x\n"),
        );
    }
    write(&d, "tree/kustomization.yaml", &res);
    let o = pbc(&d, &["build", "tree"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(all_output(&o).contains("PB1022"), "{}", all_output(&o));
    assert!(o.stdout.len() <= 200, "{}", o.stdout.len());
}

/// A playbook of `n` stages: without `needs` (each waits for the one before it), or with a
/// `needs` chain.
fn big_playbook(n: usize, needs: bool) -> String {
    let mut s = String::from(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: big\nspec:\n  trigger: pull-request-created\n  stages:\n",
    );
    for i in 0..n {
        if !needs {
            s.push_str(&format!("    - {{name: s{i}, agent: glm-5}}\n"));
        } else if i == 0 {
            s.push_str("    - {name: s0, agent: glm-5, needs: []}\n");
        } else {
            s.push_str(&format!(
                "    - {{name: s{i}, agent: glm-5, needs: [s{}]}}\n",
                i - 1
            ));
        }
    }
    s
}

/// The process ended by itself, with an exit code (not killed by a signal such as the
/// SIGSEGV of a stack overflow), and reported no crash.
fn no_crash(o: &Output) {
    let all = all_output(o);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "status {:?}: {}",
        o.status,
        &all[..all.len().min(2000)]
    );
    assert!(
        !all.contains("PB9001") && !all.contains("overflow"),
        "{all}"
    );
}

#[test]
fn a_hundred_thousand_stages_are_checked_and_built_without_recursion() {
    let d = tmpdir("stages-100k");
    write(&d, "chain.yaml", &big_playbook(100_000, false));
    write(&d, "needs.yaml", &big_playbook(100_000, true));
    for f in ["chain.yaml", "needs.yaml"] {
        let o = pbc(&d, &["check", f, "--format", "json"]);
        no_crash(&o);
        assert_eq!(o.status.code(), Some(0), "{f}: {:?}", codes(&o));
        // The CRD target is linear in the stages: it is built.
        let o = pbc(&d, &["build", f, "--target", "crd"]);
        no_crash(&o);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", all_output(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("s99999"));
        // So is the LangGraph graph.
        let o = pbc(&d, &["build", f, "--target", "langgraph"]);
        no_crash(&o);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", all_output(&o));
        // The Argo workflow hands each stage every earlier stage's output: quadratic in a
        // chain, so it stops at the output budget, with a finding instead of gigabytes.
        let o = pbc(&d, &["build", f, "--target", "argo"]);
        no_crash(&o);
        assert!(all_output(&o).contains("PB1022"), "{f}: {}", all_output(&o));
    }
}

#[test]
fn a_cycle_through_a_hundred_thousand_stages_is_reported() {
    let d = tmpdir("cycle-100k");
    let text = big_playbook(100_000, true).replace("needs: []", "needs: [s99999]");
    write(&d, "cycle.yaml", &text);
    let o = pbc(&d, &["check", "cycle.yaml", "--format", "json"]);
    no_crash(&o);
    assert!(codes(&o).iter().any(|c| c == "PB4002"), "{:?}", codes(&o));
}

#[test]
fn deeply_nested_yaml_is_refused_not_overflowed() {
    let d = tmpdir("deep-yaml");
    let n = 100_000;
    write(
        &d,
        "deep.yaml",
        &format!("{}{}\n", "[".repeat(n), "]".repeat(n)),
    );
    write(
        &d,
        "deep-block.yaml",
        &(0..n)
            .map(|i| format!("{}k:\n", " ".repeat(i % 200)))
            .collect::<String>(),
    );
    for f in ["deep.yaml", "deep-block.yaml"] {
        let o = pbc(&d, &["check", f, "--format", "json"]);
        no_crash(&o);
    }
    let o = pbc(&d, &["check", "deep.yaml", "--format", "json"]);
    assert!(codes(&o).contains(&"PB0005".to_string()), "{:?}", codes(&o));
    // A configured depth is capped, so that no walk can overflow a stack.
    write(&d, ".pbc.yaml", "limits:\n  max-depth: 100000000\n");
    let o = pbc(&d, &["check", "deep.yaml", "--format", "json"]);
    no_crash(&o);
    assert!(codes(&o).contains(&"PB0005".to_string()), "{:?}", codes(&o));
}
