//! What the tests with real receivers on loopback share (`delivery.rs`, `audit_sinks.rs`):
//! the repository's root, the python3 that has the receivers' packages, a throwaway PKI for
//! TLS receivers, and waiting with a hang guard.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A hang guard, not a timing.
pub const HANG: Duration = Duration::from_secs(60);

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The first python3 that can `import` every module of `imports` (comma-separated): the
/// repository's `.venv`, `PBC_TEST_PYTHON`, then `python3`. Under CI a missing one fails the
/// test (`.ci/run` installs `tests/delivery/requirements.txt`); elsewhere the test says so
/// and passes.
pub fn python(imports: &str) -> Option<PathBuf> {
    let mut cands = vec![root().join(".venv/bin/python3")];
    if let Some(p) = std::env::var_os("PBC_TEST_PYTHON") {
        cands.push(PathBuf::from(p));
    }
    cands.push(PathBuf::from("python3"));
    for c in cands {
        let ok = Command::new(&c)
            .args(["-c", &format!("import {imports}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(c);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 with {imports} is required under CI (.ci/run installs tests/delivery/requirements.txt into .venv)"
    );
    eprintln!(
        "skipped: no python3 with {imports} (pip install -r tests/delivery/requirements.txt)"
    );
    None
}

/// A test authority and a certificate for 127.0.0.1 it signed, written into `dir`: (the
/// authority's certificate, the server's certificate, its key).
pub fn pki(dir: &Path, authority: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, authority);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (a, c, k) = (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"));
    std::fs::write(&a, ca_cert.pem()).unwrap();
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (a, c, k)
}

/// Polls `f` until it holds; fails after [`HANG`].
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < HANG, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
