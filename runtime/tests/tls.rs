//! HTTPS in the default build: a TLS server on loopback (127.0.0.1 only) with a certificate
//! authority generated for the test. The `http` executor and a `webhook` channel reach it when
//! `tls.ca-file` in `.pbc.yaml` names the authority's certificate, and fail with an error that
//! says TLS and points at `tls.ca-file` when it does not.

use pbc_runtime::exec::{ChatCall, http_chat};
use pbc_runtime::{Agents, LoadOptions, RunOptions, RunStatus, Runtime, StageStatus, load};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A certificate authority (its PEM) and a rustls server configuration whose certificate,
/// for `127.0.0.1`, that authority signed.
fn pki() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "pbc test authority");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

/// An HTTPS server on loopback: answers every POST with `body` and records the JSON bodies
/// it received (before answering, so a call that returned has been seen).
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Server {
    fn start(config: Arc<rustls::ServerConfig>, body: &'static str) -> Server {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("https://{}", l.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                // Bounds a stuck peer; no test waits on it.
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                let Some(v) = read_request(&mut tls) else {
                    continue; // the handshake failed: the client did not trust us
                };
                seen2.lock().unwrap().push(v);
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Server { base, seen }
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(s: &mut impl Read) -> Option<Value> {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

const CHAT_ANSWER: &str =
    r#"{"choices": [{"message": {"role": "assistant", "content": "{\"severity\": \"high\"}"}}]}"#;

fn call<'a>(url: &'a str, request: &'a Value, ca_file: Option<&'a Path>) -> ChatCall<'a> {
    ChatCall {
        url,
        model: "gpt-x",
        system_prompt: None,
        prompt: "Triage.",
        request,
        timeout: Duration::from_secs(20),
        api_key: None,
        ca_file,
    }
}

fn write_ca(dir: &Path, pem: &str) -> PathBuf {
    let p = dir.join("ca.pem");
    std::fs::write(&p, pem).unwrap();
    p
}

#[test]
fn the_http_executor_speaks_tls_trusting_the_configured_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, config) = pki();
    let ca_file = write_ca(dir.path(), &ca);
    let server = Server::start(config, CHAT_ANSWER);
    let url = format!("{}/v1/chat/completions", server.base);
    let req = json!({"input": {"alert": "disk"}});

    let out = http_chat(&call(&url, &req, Some(&ca_file))).unwrap();
    assert_eq!(out, json!({"severity": "high"}));
    assert_eq!(server.seen().len(), 1);
    assert_eq!(server.seen()[0]["model"], "gpt-x");

    // Without the authority the server's certificate is not trusted: a clear TLS error.
    let err = http_chat(&call(&url, &req, None)).unwrap_err().to_string();
    assert!(err.contains("TLS handshake failed"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(err.contains("tls.ca-file"), "{err}");
    assert_eq!(
        server.seen().len(),
        1,
        "nothing was sent over an untrusted connection"
    );
}

#[test]
fn a_ca_file_that_holds_no_certificate_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let req = json!({});
    // Nothing listens there: the CA file is read (and refused) before any connection.
    let err = http_chat(&call("https://127.0.0.1:9/x", &req, Some(&bad)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tls.ca-file") && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = http_chat(&call("https://127.0.0.1:9/x", &req, Some(dir.path())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a file"), "{err}");
}

#[test]
fn a_webhook_speaks_tls_trusting_the_configured_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, config) = pki();
    let ca_file = write_ca(dir.path(), &ca);
    let server = Server::start(config, "{}");
    let def = pbc_compiler::config::ChannelDef::Webhook(pbc_compiler::config::WebhookDef {
        url: Some(format!("{}/hook", server.base)),
        url_env: None,
        secret_env: None,
        timeout: 20,
        retries: 0,
    });
    let note = json!({"event": "on-pending", "message": "approve release"});
    pbc_runtime::delivery::send_now("hook", &def, &note, Some(&ca_file), None).unwrap();
    assert_eq!(server.seen(), std::slice::from_ref(&note));

    let err = pbc_runtime::delivery::send_now("hook", &def, &note, None, None).unwrap_err();
    assert!(err.contains("TLS handshake failed"), "{err}");
    assert!(err.contains("tls.ca-file"), "{err}");
    assert_eq!(server.seen().len(), 1);
}

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: triage}
spec:
  trigger: alert
  stages:
    - name: triage
      agent: gpt-x
      prompt: Rate the alert.
      approval: manual
      approvers: [{role: sre}]
      notification:
        on-pending: [hook]
        on-failure: [hook]
"#;

/// A run whose `.pbc.yaml` has (or lacks) `tls.ca-file`: its report, the chat server and
/// the webhook server.
struct Ran {
    _dir: tempfile::TempDir,
    rt: Runtime,
    r: pbc_runtime::RunReport,
    chat: Server,
    hook: Server,
}

fn run_with(tls: bool) -> Ran {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (ca, config) = pki();
    write_ca(&dir, &ca);
    let chat = Server::start(config.clone(), CHAT_ANSWER);
    let hook = Server::start(config, "{}");
    let mut pbc = format!(
        "notifications:\n  hook: {{webhook: {{url: \"{}/hook\", timeout: 20s, retries: 0}}}}\n",
        hook.base
    );
    if tls {
        pbc.push_str("tls: {ca-file: ca.pem}\n");
    }
    std::fs::write(dir.join(".pbc.yaml"), pbc).unwrap();
    std::fs::write(dir.join("triage.yaml"), PLAYBOOK).unwrap();
    std::fs::write(
        dir.join("agents.yaml"),
        format!(
            "agents:\n  gpt-x: {{http: {{url: \"{}/v1/chat/completions\", model: gpt-x}}, timeout: 20s}}\nroles:\n  sre: [sam@example.com]\n",
            chat.base
        ),
    )
    .unwrap();
    let c = load(&dir.join("triage.yaml"), &LoadOptions::default()).unwrap();
    let agents = Agents::from_file(&dir.join("agents.yaml")).unwrap();
    let mut rt = Runtime::open(&dir.join("state")).unwrap();
    let r = rt
        .run(
            &c,
            &agents,
            json!({"alert": "disk"}),
            &RunOptions::requested_by("alice"),
        )
        .unwrap();
    // What every CLI command does when it ends.
    rt.deliver(pbc_runtime::delivery::DEFAULT_WAIT).unwrap();
    Ran {
        _dir: tmp,
        rt,
        r,
        chat,
        hook,
    }
}

#[test]
fn a_run_uses_tls_ca_file_from_the_configuration() {
    // (Bound whole: the temporary directory lives as long as the binding.)
    let Ran {
        _dir,
        r,
        chat,
        hook,
        ..
    } = run_with(true);
    assert_eq!(r.status, RunStatus::WaitingApproval, "{:?}", r.message);
    let st = r.stage("triage").unwrap();
    assert_eq!(st.status, StageStatus::WaitingApproval);
    assert_eq!(chat.seen().len(), 1);
    assert_eq!(hook.seen().len(), 1);
    assert_eq!(hook.seen()[0]["event"], "on-pending");

    // Without it, the agent's call fails on the certificate, and so does the notification.
    let Ran {
        _dir,
        rt,
        r,
        chat,
        hook,
    } = run_with(false);
    assert_eq!(r.status, RunStatus::Failed);
    assert!(chat.seen().is_empty() && hook.seen().is_empty());
    let log = rt.audit_log(&r.run).unwrap();
    let text: Vec<String> = log
        .entries
        .iter()
        .map(|e| serde_json::to_string(&e.details).unwrap())
        .collect();
    let text = text.join("\n");
    assert!(text.contains("TLS handshake failed"), "{text}");
    assert!(
        log.entries
            .iter()
            .any(|e| e.event == "notification-failed" && e.details["on"] == "on-failure"),
        "{text}"
    );
}
