//! Signed approval statements made the way an approver's own tool would: the RFC 8785 payload
//! written out by hand (keys sorted, no spaces), Ed25519-signed, base64url without padding.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey};

/// A key from a fixed seed.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// Its public key as `approvals.keys` takes it.
pub fn public(k: &SigningKey) -> String {
    STANDARD.encode(k.verifying_key().to_bytes())
}

/// What a statement says.
#[derive(Clone)]
pub struct St {
    pub run: String,
    pub stage: String,
    pub approver: String,
    pub sha: String,
    pub issued: String,
    pub expires: String,
}

/// `base64url(payload).base64url(signature)`.
pub fn sign(k: &SigningKey, s: &St) -> String {
    let payload = format!(
        r#"{{"approver":"{}","decision":"approve","expires_at":"{}","issued_at":"{}","playbook_sha256":"{}","run":"{}","stage":"{}","v":1}}"#,
        s.approver, s.expires, s.issued, s.sha, s.run, s.stage
    );
    let sig = k.sign(payload.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    )
}

/// A time `secs` from now, RFC 3339 UTC.
pub fn at(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = now + secs;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let (days, rem) = (t.div_euclid(86400), t.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The SHA-256 of the resolved playbook `pbc build --target resolved` prints for `playbook`
/// in `dir` (the text the bundle writes to `resolved/<name>.yaml`, whose hash its manifest
/// lists).
pub fn built_sha(dir: &std::path::Path, playbook: &str) -> String {
    use sha2::Digest as _;
    // `--target resolved` builds a kustomization: one listing the playbook alone.
    let k = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join(playbook), k.path().join(playbook)).unwrap();
    std::fs::write(
        k.path().join("kustomization.yaml"),
        format!("resources:\n  - {playbook}\n"),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pbc"))
        .args(["build", ".", "--target", "resolved"])
        .current_dir(k.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    sha2::Sha256::digest(&o.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
