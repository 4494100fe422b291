use super::*;

const NOW: i64 = 1_790_000_000; // 2026-09-21T12:53:20Z
const SHA: &str = "aa11";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn keys() -> Keys {
    let mut s = ApprovalSettings::default();
    s.keys.insert(
        "ann@example.com".into(),
        public_key_base64(&key(1).verifying_key()),
    );
    s.keys.insert(
        "bob@example.com".into(),
        public_key_base64(&key(2).verifying_key()),
    );
    s.keys.insert(
        "dev@example.com".into(),
        public_key_base64(&key(4).verifying_key()),
    );
    s.delegates
        .insert("serve".into(), public_key_base64(&key(3).verifying_key()));
    Keys::from_settings(&s)
}

fn roles() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([(
        "security".to_string(),
        vec!["ann@example.com".to_string(), "bob@example.com".to_string()],
    )])
}

fn check(token: &str, min: usize) -> Result<Vec<Verified>, Rejected> {
    let approvers = [ApproverRef::Role("security".into())];
    let roles = roles();
    let x = Expect {
        run: "r1",
        stage: "deploy",
        decision: "approve",
        playbook_sha256: SHA,
        requester: "bob@example.com",
        approvers: &approvers,
        roles: &roles,
        min_approvals: min,
        now: NOW,
    };
    verify_all(&split_tokens(token), &keys(), &x)
}

fn st(approver: &str) -> Statement {
    Statement::new("r1", "deploy", "approve", approver, SHA, NOW - 10, 3600)
}

#[test]
fn canonical_form_is_rfc8785() {
    let s = Statement::new("r", "s", "approve", "a@x", "00", 0, 60);
    assert_eq!(
        String::from_utf8(s.canonical()).unwrap(),
        r#"{"approver":"a@x","decision":"approve","expires_at":"1970-01-01T00:01:00Z","issued_at":"1970-01-01T00:00:00Z","playbook_sha256":"00","run":"r","stage":"s","v":1}"#
    );
}

#[test]
fn valid_passes_with_own_key_and_with_a_delegate() {
    let v = check(&st("ann@example.com").sign(&key(1)), 1).unwrap();
    assert_eq!(v[0].signed_by, "ann@example.com");
    let v = check(&st("ann@example.com").sign(&key(3)), 1).unwrap();
    assert_eq!(v[0].signed_by, "delegate:serve");
}

#[test]
fn each_reason() {
    let forged = st("ann@example.com").sign(&key(9));
    assert_eq!(check(&forged, 1).unwrap_err().code(), "forged-signature");
    // An altered payload under a valid signature.
    let good = st("ann@example.com").sign(&key(1));
    let (_, sig) = good.split_once('.').unwrap();
    let mut other = st("ann@example.com");
    other.run = "r2".into();
    let altered = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(other.canonical()));
    assert_eq!(check(&altered, 1).unwrap_err().code(), "forged-signature");
    let wrong = st("dev@example.com").sign(&key(4));
    assert!(matches!(
        check(&wrong, 1).unwrap_err(),
        Rejected::NotAnApprover { ref approver, .. } if approver == "dev@example.com"
    ));
    let requester = st("bob@example.com").sign(&key(2));
    assert_eq!(check(&requester, 1).unwrap_err().code(), "requester");
    let mut stale = st("ann@example.com");
    stale.playbook_sha256 = "bb22".into();
    assert_eq!(
        check(&stale.sign(&key(1)), 1).unwrap_err(),
        Rejected::ContentHash {
            signed: "bb22".into(),
            running: SHA.into()
        }
    );
    let expired = Statement::new(
        "r1",
        "deploy",
        "approve",
        "ann@example.com",
        SHA,
        NOW - 7200,
        3600,
    );
    assert_eq!(
        check(&expired.sign(&key(1)), 1).unwrap_err().code(),
        "expired"
    );
    let future = Statement::new(
        "r1",
        "deploy",
        "approve",
        "ann@example.com",
        SHA,
        NOW + 3600,
        3600,
    );
    assert_eq!(
        check(&future.sign(&key(1)), 1).unwrap_err().code(),
        "not-yet-valid"
    );
    let mut replay = st("ann@example.com");
    replay.run = "r0".into();
    assert_eq!(
        check(&replay.sign(&key(1)), 1).unwrap_err().code(),
        "other-run"
    );
    let mut other_stage = st("ann@example.com");
    other_stage.stage = "build".into();
    assert_eq!(
        check(&other_stage.sign(&key(1)), 1).unwrap_err().code(),
        "other-stage"
    );
    let mut reject = st("ann@example.com");
    reject.decision = "reject".into();
    assert_eq!(
        check(&reject.sign(&key(1)), 1).unwrap_err().code(),
        "decision-mismatch"
    );
    assert_eq!(check("", 1).unwrap_err(), Rejected::Missing);
    assert_eq!(check("abc", 1).unwrap_err().code(), "malformed");
    let nobody = Keys::default();
    let x_roles = roles();
    let x = Expect {
        run: "r1",
        stage: "deploy",
        decision: "approve",
        playbook_sha256: SHA,
        requester: "bob@example.com",
        approvers: &[],
        roles: &x_roles,
        min_approvals: 1,
        now: NOW,
    };
    assert_eq!(
        verify(&good, &nobody, &x).unwrap_err().code(),
        "unknown-key"
    );
}

#[test]
fn a_non_canonical_payload_is_refused() {
    let s = st("ann@example.com");
    let mut v = serde_json::to_value(&s).unwrap();
    v["v"] = serde_json::json!(1);
    let loose = serde_json::to_vec_pretty(&v).unwrap();
    let sig = key(1).sign(&loose);
    let token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&loose),
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    );
    assert_eq!(check(&token, 1).unwrap_err().code(), "malformed");
}

#[test]
fn min_approvals_counts_distinct_people() {
    let ann = st("ann@example.com").sign(&key(1));
    let ann_again = st("ann@example.com").sign(&key(3));
    assert_eq!(
        check(&format!("{ann} {ann_again}"), 2).unwrap_err(),
        Rejected::TooFew { need: 2, got: 1 }
    );
    // Two people of the role: a third member signs through the delegate.
    let cy = st("cy@example.com").sign(&key(3));
    let approvers = [
        ApproverRef::Role("security".into()),
        ApproverRef::User("cy@example.com".into()),
    ];
    let roles = roles();
    let x = Expect {
        run: "r1",
        stage: "deploy",
        decision: "approve",
        playbook_sha256: SHA,
        requester: "bob@example.com",
        approvers: &approvers,
        roles: &roles,
        min_approvals: 2,
        now: NOW,
    };
    assert_eq!(verify_all(&[ann, cy], &keys(), &x).unwrap().len(), 2);
}

#[test]
fn keys_round_trip_through_pem() {
    let (pem, public) = generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.pem");
    std::fs::write(&p, pem.as_bytes()).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let k = read_signing_key(&p).unwrap();
    assert_eq!(public_key_base64(&k.verifying_key()), public);
    std::fs::write(&p, "not a key").unwrap();
    let e = read_signing_key(&p).unwrap_err().to_string();
    assert!(e.contains("PKCS#8"), "{e}");
    assert!(!e.contains("not a key"), "{e}");
}
