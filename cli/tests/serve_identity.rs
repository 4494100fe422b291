//! Identities of `pbc serve` besides bearer tokens, through the real binary on loopback:
//! OIDC JWTs (`serve.oidc`) signed by a key the test makes, verified against a JWKS file
//! (accepted; expired, not-yet-valid, wrong-audience, wrong-issuer and wrong-key tokens
//! refused), and Slack's Approve / Reject buttons (`serve.slack`): a request signed as Slack
//! signs it decides by the API's rules and its outcome is posted to the response_url (a
//! loopback server); a bad signature, a stale timestamp or a replay is refused and changes
//! nothing.

mod serve_common;

use ed25519_dalek::{Signer, SigningKey};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use serve_common::web::{Recorder, form, request};
use serve_common::{Server, approvals, project};
use sha2::Sha256;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://login.example.com";
const SLACK_SECRET: &str = "slack-signing-secret-for-tests";

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn random_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    SigningKey::from_bytes(&seed)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An EdDSA JWT with `claims`, signed by `key` (kid `k1`).
fn jwt(key: &SigningKey, claims: &Value) -> String {
    let head = b64url(
        json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"})
            .to_string()
            .as_bytes(),
    );
    let body = b64url(claims.to_string().as_bytes());
    let sig = key.sign(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64url(&sig.to_bytes()))
}

fn claims(email: &str, aud: &str, exp: i64, nbf: i64) -> Value {
    json!({"iss": ISSUER, "aud": aud, "sub": "u-1", "email": email, "iat": nbf, "nbf": nbf, "exp": exp})
}

/// `project()` with more `serve:` settings.
fn with_serve(dir: &Path, more: &str) {
    let p = dir.join(".pbc.yaml");
    let mut cfg = std::fs::read_to_string(&p).unwrap();
    cfg.push_str(more);
    std::fs::write(p, cfg).unwrap();
}

/// A run of `deploy` started by ann, waiting at its gate; (run, approval).
fn waiting_run(s: &Server) -> (String, String) {
    let (code, v) = s.post(
        "/v1/runs",
        "ann-token",
        r#"{"playbook": "deploy", "input": {"version": "2.0"}}"#,
    );
    assert_eq!(code, 201, "{v}");
    let run = v["run"].as_str().unwrap().to_string();
    s.wait_status(&run, "waiting-approval");
    let (_, v) = s.get("/v1/approvals", "sam-token");
    let id = v["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["run"] == run.as_str())
        .and_then(|a| a["id"].as_str())
        .unwrap()
        .to_string();
    (run, id)
}

fn status_of(dir: &Path, id: &str) -> String {
    approvals(dir)
        .into_iter()
        .find(|a| a.0 == id)
        .map(|a| a.1)
        .unwrap()
}

#[test]
fn oidc_tokens_are_verified_against_the_jwks() {
    let dir = project("1h", "30m");
    let key = random_key();
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "use": "sig",
        "x": b64url(key.verifying_key().as_bytes())}]});
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    with_serve(
        dir.path(),
        &format!("  oidc: {{issuer: '{ISSUER}', audience: pbc, jwks-file: jwks.json}}\n"),
    );
    let s = Server::start(dir.path(), ".");
    let (run, id) = waiting_run(&s);
    let t = now();

    // Valid: sam (role sre by the email claim) sees and may decide the approval.
    let good = jwt(&key, &claims("sam@example.com", "pbc", t + 600, t - 10));
    let (code, v) = s.get("/v1/approvals", &good);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["approvals"][0]["id"], id.as_str());

    // Refused: expired (beyond the 60 s of skew), not yet valid, another audience, another
    // issuer, another key, and a token without the user claim.
    let other = random_key();
    let mut wrong_issuer = claims("sam@example.com", "pbc", t + 600, t - 10);
    wrong_issuer["iss"] = json!("https://evil.example.com");
    let mut no_email = claims("sam@example.com", "pbc", t + 600, t - 10);
    no_email.as_object_mut().unwrap().remove("email");
    for (what, token) in [
        (
            "expired",
            jwt(&key, &claims("sam@example.com", "pbc", t - 120, t - 900)),
        ),
        (
            "not yet valid",
            jwt(&key, &claims("sam@example.com", "pbc", t + 900, t + 300)),
        ),
        (
            "wrong audience",
            jwt(
                &key,
                &claims("sam@example.com", "other-app", t + 600, t - 10),
            ),
        ),
        ("wrong issuer", jwt(&key, &wrong_issuer)),
        (
            "wrong key",
            jwt(&other, &claims("sam@example.com", "pbc", t + 600, t - 10)),
        ),
        ("no user claim", jwt(&key, &no_email)),
    ] {
        let (code, v) = s.call(
            "POST",
            &format!("/v1/approvals/{id}/approve"),
            Some(&token),
            &[],
            None,
        );
        assert_eq!(code, 401, "{what}: {v}");
        assert_eq!(status_of(dir.path(), &id), "pending", "{what}");
    }
    let log = s.log();
    assert!(log.contains("JWT expired"), "{log}");
    assert!(!log.contains(&good), "a token was logged");

    // Within the skew, an expired-by-30-seconds token still passes; ann's JWT is the
    // requester's and may not decide (the engine's rule, as with tokens).
    let ann = jwt(&key, &claims("ann@example.com", "pbc", t - 30, t - 600));
    let (code, _) = s.call(
        "POST",
        &format!("/v1/approvals/{id}/approve"),
        Some(&ann),
        &[],
        None,
    );
    assert_eq!(code, 403);
    let (code, v) = s.call(
        "POST",
        &format!("/v1/approvals/{id}/approve"),
        Some(&good),
        &[],
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["by"], "sam@example.com");
    s.wait_status(&run, "succeeded");
    // Configured tokens still work beside OIDC.
    assert_eq!(s.get("/v1/runs", "lee-token").0, 200);

    // The web page's sign-in takes a JWT; the session ends when the JWT does (10 minutes
    // here, with the 60 s of skew), not after the usual 8 hours.
    let login = request("GET", &format!("{}/ui/login", s.url), &[], None);
    let nonce = login.cookie("pbc_login").unwrap();
    let r = request(
        "POST",
        &format!("{}/ui/login", s.url),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &format!("pbc_login={nonce}")),
        ],
        Some(&form(&[("csrf", &nonce), ("token", &good)])),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pbc_session="))
        .unwrap()
        .to_string();
    let max_age: u64 = cookie
        .split("; ")
        .find_map(|p| p.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=660).contains(&max_age), "{cookie}");
}

fn slack_sign(ts: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let b = mac.finalize().into_bytes();
    format!(
        "v0={}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// A block_actions body: `user` pressed `action` on approval `id`, with `reason` typed.
fn interaction(
    user: &str,
    action: &str,
    id: &str,
    reason: Option<&str>,
    response_url: &str,
) -> String {
    let p = json!({
        "type": "block_actions",
        "user": {"id": user, "username": "someone"},
        "actions": [{"type": "button", "action_id": action, "block_id": "pbc-decide", "value": id}],
        "state": {"values": {"pbc-reason": {"pbc-reason": {"type": "plain_text_input", "value": reason}}}},
        "response_url": response_url,
    });
    form(&[("payload", &p.to_string())])
}

fn post_slack(s: &Server, body: &str, ts: i64, sig: &str) -> (u16, Value) {
    let ts = ts.to_string();
    let r = request(
        "POST",
        &format!("{}/v1/slack/interactions", s.url),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Slack-Request-Timestamp", &ts),
            ("X-Slack-Signature", sig),
        ],
        Some(body),
    );
    serve_common::openapi::check(
        "POST",
        "/v1/slack/interactions",
        r.status,
        r.header("content-type").unwrap_or(""),
        &r.body,
    );
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

#[test]
fn slack_buttons_decide_only_when_signed_by_slack() {
    let dir = project("1h", "30m");
    with_serve(
        dir.path(),
        "  slack:\n    signing-secret-env: PBC_TEST_SLACK_SECRET\n    users: {U0SAM: sam@example.com, U0ANN: ann@example.com}\n",
    );
    let s = Server::start_with(
        dir.path(),
        ".",
        &[],
        &[("PBC_TEST_SLACK_SECRET", Path::new(SLACK_SECRET))],
    );
    let rec = Recorder::start();
    let (run, id) = waiting_run(&s);
    let approve = interaction("U0SAM", "pbc-approve", &id, None, &rec.url);
    let t = now();

    // A bad signature, a stale timestamp (correctly signed), a signature of another body:
    // 401, nothing decided.
    let (code, _) = post_slack(&s, &approve, t, &format!("v0={}", "0".repeat(64)));
    assert_eq!(code, 401);
    let (code, _) = post_slack(&s, &approve, t - 600, &slack_sign(t - 600, &approve));
    assert_eq!(code, 401);
    let other = interaction("U0SAM", "pbc-approve", "zzzzzzzz", None, &rec.url);
    let (code, _) = post_slack(&s, &approve, t, &slack_sign(t, &other));
    assert_eq!(code, 401);
    assert_eq!(status_of(dir.path(), &id), "pending");

    // Signed, but the requester, an unknown Slack user, or a rejection without a reason:
    // answered (Slack needs a 200), nothing decided, the reason posted to the response_url.
    let mut posted = 0;
    for (user, action, why) in [
        ("U0ANN", "pbc-approve", "Not decided"),
        ("U0NOBODY", "pbc-approve", "not known to pbc"),
        ("U0SAM", "pbc-reject", "needs a reason"),
    ] {
        let body = interaction(user, action, &id, None, &rec.url);
        let (code, v) = post_slack(&s, &body, t, &slack_sign(t, &body));
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["decided"], false, "{v}");
        posted += 1;
        let msg: Value = serde_json::from_str(&rec.wait(posted)).unwrap();
        assert_eq!(msg["response_type"], "ephemeral");
        assert!(msg["text"].as_str().unwrap().contains(why), "{msg}");
    }
    assert_eq!(status_of(dir.path(), &id), "pending");

    // sam approves from Slack: decided, the message replaced with the outcome, the run goes on.
    let sig = slack_sign(t, &approve);
    let (code, v) = post_slack(&s, &approve, t, &sig);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["decided"], true, "{v}");
    let msg: Value = serde_json::from_str(&rec.wait(posted + 1)).unwrap();
    assert_eq!(msg["replace_original"], true);
    assert!(
        msg["text"]
            .as_str()
            .unwrap()
            .contains("Approved by sam@example.com"),
        "{msg}"
    );
    s.wait_status(&run, "succeeded");
    assert_eq!(status_of(dir.path(), &id), "approved");

    // The same request again: a replay, refused.
    let (code, v) = post_slack(&s, &approve, t, &sig);
    assert_eq!(code, 409, "{v}");
}

/// Signed approvals (`approvals.require-signature`): without `serve.signing-key` the server
/// cannot make a statement and an approval is refused (the run waits); with it, the server
/// signs for the person it authenticated, as a delegate trusted in `approvals.delegates`, and
/// the run goes past the gate. The statement in the audit entry verifies under the server's
/// public key and names the run, the stage and the person.
#[test]
fn approvals_signed_by_the_server_as_a_delegate_pass() {
    use base64::Engine as _;
    use ed25519_dalek::Verifier;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let d = project("1h", "1h");
    let dp = d.path();
    let key = SigningKey::from_bytes(&[7; 32]);
    let pem = key.to_pkcs8_pem(pkcs8::LineEnding::LF).unwrap();
    std::fs::write(dp.join("serve.pem"), pem.as_bytes()).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    let base = std::fs::read_to_string(dp.join(".pbc.yaml")).unwrap();
    let approvals_cfg = format!(
        "approvals:\n  require-signature: true\n  delegates:\n    pbc-serve: \"{public}\"\n"
    );
    std::fs::write(dp.join(".pbc.yaml"), format!("{base}{approvals_cfg}")).unwrap();

    let s = Server::start(dp, "deploy.yaml");
    let (code, v) = s.post(
        "/v1/runs",
        "ann-token",
        r#"{"playbook": "deploy", "input": {"version": "1.0.0"}}"#,
    );
    assert_eq!(code, 201, "{v}");
    let run = v["run"].as_str().unwrap().to_string();
    let waiting = s.wait_status(&run, "waiting-approval");
    let gate = waiting["stages"]["apply"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v) = s.post(&format!("/v1/approvals/{gate}/approve"), "sam-token", "");
    assert_eq!(code, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no signed approval statement"),
        "{v}"
    );
    let _stopped = s.terminate();

    // The same state, the server now holding its key.
    std::fs::write(
        dp.join(".pbc.yaml"),
        format!("{base}  signing-key: serve.pem\n{approvals_cfg}"),
    )
    .unwrap();
    let s = Server::start(dp, "deploy.yaml");
    let (code, v) = s.post(&format!("/v1/approvals/{gate}/approve"), "sam-token", "");
    assert_eq!(code, 200, "{v}");
    let done = s.wait_status(&run, "succeeded");
    assert_eq!(done["stages"]["apply"]["status"], "passed");
    let _stopped = s.terminate();

    let audit = std::fs::read_to_string(dp.join("st/audit.jsonl")).unwrap();
    let granted: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event"] == "approval-granted")
        .expect("an approval-granted entry");
    let token = granted["details"]["statement"].as_str().unwrap();
    let (p, sig) = token.split_once('.').unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.decode(p).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&b64.decode(sig).unwrap()).unwrap();
    key.verifying_key().verify(&payload, &sig).unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["run"], run.as_str());
    assert_eq!(st["stage"], "apply");
    assert_eq!(st["approver"], "sam@example.com");
    assert_eq!(st["decision"], "approve");
    assert_eq!(st["v"], 1);
}
