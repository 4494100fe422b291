//! The runner image is `FROM scratch`: the static `pbc` and nothing else, no shared
//! libraries, no NSS modules, no `/etc/nsswitch.conf`. This runs the test's static `pbc` in a
//! root directory that holds only the binary, an `/etc/hosts` (what Kubernetes mounts into
//! every container) and the playbook's files, as user 65534: a stage whose `http` agent is
//! named by a host name (resolved through `/etc/hosts` by the C library's built-in `files`
//! lookup) reaches a server on loopback and the run succeeds.

mod loopback;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// An OpenAI-style chat-completions server on loopback answering `{"ok": true}` once.
fn serve_once(l: TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Headers, then the body by Content-Length.
        let (head_end, len) = loop {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (i + 4, len);
            }
        };
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        let host = String::from_utf8_lossy(&buf[..head_end])
            .lines()
            .find_map(|l| {
                l.strip_prefix("host: ")
                    .or_else(|| l.strip_prefix("Host: "))
            })
            .unwrap_or("")
            .to_string();
        let body = r#"{"choices":[{"message":{"content":"{\"ok\": true}"}}]}"#;
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        host
    })
}

#[test]
fn the_static_pbc_runs_with_nothing_but_itself_and_resolves_host_names() {
    if std::env::var("PBC_TEST_STATIC").as_deref() != Ok("1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the suite with the static pbc: PBC_TEST_STATIC=1 (see .ci/run)"
        );
        return;
    }
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test needs root for chroot(2); .ci/run runs as root"
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("w/rec")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_pbc"), r.join("pbc")).unwrap();
    std::fs::write(r.join("etc/hosts"), "127.0.0.1 agents.cluster.test\n").unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = serve_once(l);
    std::fs::write(
        r.join("w/pb.yaml"),
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata: {name: scratch}\nspec:\n  trigger: ev\n  stages:\n    - name: a\n      agent: bot\n      prompt: Say ok.\n",
    )
    .unwrap();
    std::fs::write(r.join("w/in.json"), "{}").unwrap();
    std::fs::write(
        r.join("w/agents.yaml"),
        format!(
            "agents:\n  bot: {{http: {{url: \"http://agents.cluster.test:{port}/v1/chat/completions\", model: m}}}}\n"
        ),
    )
    .unwrap();
    // The image's user may write only its working directory.
    let w = r.join("w");
    Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&w)
        .status()
        .unwrap();
    // Nothing but the binary: no loader, no libc.so, no NSS module.
    let entries: Vec<String> = std::fs::read_dir(r)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!Path::new(&r.join("lib")).exists(), "{entries:?}");
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot (coreutils)");
    let o = Command::new(chroot)
        .arg("--userspec=65534:65534")
        .arg(r)
        .args([
            "/pbc",
            "run",
            "/w/pb.yaml",
            "--input",
            "/w/in.json",
            "--agents",
            "/w/agents.yaml",
            "--state",
            "/w/st",
            "--format",
            "json",
        ])
        .env_clear()
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["stages"]["a"]["output"]["ok"], true);
    assert_eq!(
        server.join().unwrap(),
        format!("agents.cluster.test:{port}")
    );
    let _ = loopback::root();
}
