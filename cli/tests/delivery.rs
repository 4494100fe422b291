//! Delivery end to end through the `pbc` binary, to real receivers on loopback started by
//! the test (`tests/delivery/servers.py`): Slack (incoming webhook and `chat.postMessage`),
//! PagerDuty Events API v2 and a signed webhook over HTTP, and email through `aiosmtpd` with
//! STARTTLS. The receivers check each request against the service's documented shape
//! (Block Kit blocks, Events v2 fields and `dedup_key`, the webhook's HMAC and timestamp,
//! recomputed in Python) and record what they accepted.
//!
//! Needs python3 with aiosmtpd (`.ci/run` installs it into `.venv`): under CI a missing
//! one fails the tests; elsewhere they say so and pass.
#![cfg(unix)]

mod loopback;

use loopback::{pki, python, root, wait_until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const SLACK_TOKEN: &str = "xoxb-test-token";
const PD_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";
const HOOK_SECRET: &str = "s3cret-signing-key";
/// The secret part of a Slack incoming-webhook URL.
const SLACK_PATH_SECRET: &str = "T0SECRET/B0SECRET/XyZsecretPart";

/// The receivers: one process, killed on drop.
struct Receivers {
    child: Child,
    dir: PathBuf,
    http: u16,
    smtp: u16,
}

impl Receivers {
    fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> Option<Receivers> {
        let py = python("aiosmtpd")?;
        let rx = dir.join("rx");
        std::fs::create_dir_all(&rx).unwrap();
        let mut cmd = Command::new(py);
        cmd.arg(root().join("tests/delivery/servers.py"))
            .arg("--dir")
            .arg(&rx)
            .args(["--slack-token", SLACK_TOKEN, "--pd-key", PD_KEY])
            .args(["--hook-secret", HOOK_SECRET, "--smtp"]);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Value = serde_json::from_str(&line).expect("the receivers print their ports");
        Some(Receivers {
            child,
            dir: rx,
            http: ports["http"].as_u64().unwrap() as u16,
            smtp: ports["smtp"].as_u64().unwrap() as u16,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    fn lines(&self, file: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn received(&self, route: &str) -> Vec<Value> {
        self.lines("received.jsonl")
            .into_iter()
            .filter(|e| e["route"] == route)
            .collect()
    }

    fn mail(&self) -> Vec<Value> {
        self.lines("mail.jsonl")
    }

    fn flag(&self, name: &str, on: bool) {
        let p = self.dir.join(name);
        if on {
            std::fs::write(p, "").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("hang"));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: release}
spec:
  trigger: deploy
  stages:
    - name: prepare
      action: k8s:get
    - name: release
      action: deploy:release
      risk: medium
      approval: manual
      approvers: [{role: sre}]
      notification:
        on-pending: [CHANNELS]
        on-approved: [APPROVED]
"#;

const AGENTS: &str = r#"actions:
  "k8s:get": {command: [python3, -c, "import json,sys; json.load(sys.stdin); print('{}')"]}
  "deploy:release": {command: [python3, -c, "import json,sys; json.load(sys.stdin); print('{}')"]}
"#;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A project whose gate notifies `channels` when it asks and `approved` when approved.
    fn new(config: &str, channels: &str, approved: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join(".pbc.yaml"), config).unwrap();
        std::fs::write(
            p.join("release.yaml"),
            PLAYBOOK
                .replace("CHANNELS", channels)
                .replace("APPROVED", approved),
        )
        .unwrap();
        std::fs::write(p.join("agents.yaml"), AGENTS).unwrap();
        std::fs::write(p.join("in.json"), "{}").unwrap();
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pbc"));
        c.current_dir(self.path())
            .args(args)
            .env("PBC_STATE_DIR", self.path().join("state"))
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy")
            .env_remove("all_proxy");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn pbc(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        self.cmd(args, env).output().unwrap()
    }

    /// `pbc run`, waiting at the gate: the approval id.
    fn run(&self, env: &[(&str, String)]) -> (String, Output) {
        let out = self.pbc(
            &[
                "run",
                "release.yaml",
                "--input",
                "in.json",
                "--agents",
                "agents.yaml",
                "--as",
                "alice@example.com",
                "--format",
                "json",
            ],
            env,
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "pbc run: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(v["status"], "waiting-approval", "{v}");
        let id = v["stages"]["release"]["approval_id"]
            .as_str()
            .unwrap()
            .to_string();
        (id, out)
    }

    fn status(&self) -> Value {
        let out = self.pbc(&["notifications", "status", "--format", "json"], &[]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn roles() -> &'static str {
    "roles:\n  sre: [sam@example.com]\n"
}

fn notification_schema() -> jsonschema::Validator {
    let s: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/pbc-notification-v1.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&s)
        .unwrap()
}

#[test]
fn slack_pagerduty_email_and_a_signed_webhook_receive_what_their_services_document() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(tmp.path(), "pbc delivery test authority");
    let Some(rx) = Receivers::start(tmp.path(), Some((&cert, &key))) else {
        return;
    };
    let config = format!(
        r##"serve: {{public-url: "https://pbc.example.com"}}
tls: {{ca-file: "{ca}"}}
{roles}notifications:
  slack-hook: {{slack: {{webhook-url-env: PBC_T_SLACK_URL}}}}
  slack-bot: {{slack: {{token-env: PBC_T_SLACK_TOKEN, channel: "#security", api-url: "{api}"}}}}
  pager: {{pagerduty: {{routing-key-env: PBC_T_PD_KEY, api-url: "{pd}"}}}}
  mail: {{email: {{host: 127.0.0.1, port: {smtp}, tls: starttls, from: "pbc <pbc@example.com>", to: [ciso@example.com]}}}}
  hook: {{webhook: {{url: "{hook}", secret-env: PBC_T_HOOK_SECRET}}}}
"##,
        ca = ca.display(),
        roles = roles(),
        api = rx.url("/slack/api"),
        pd = rx.url("/pd"),
        smtp = rx.smtp,
        hook = rx.url("/hook"),
    );
    let p = Project::new(
        &config,
        "slack-hook, slack-bot, pager, mail, hook",
        "hook, mail",
    );
    let env = [
        (
            "PBC_T_SLACK_URL",
            rx.url(&format!("/slack/webhook?k={SLACK_PATH_SECRET}")),
        ),
        ("PBC_T_SLACK_TOKEN", SLACK_TOKEN.to_string()),
        ("PBC_T_PD_KEY", PD_KEY.to_string()),
        ("PBC_T_HOOK_SECRET", HOOK_SECRET.to_string()),
    ];
    let (id, run_out) = p.run(&env);
    let page = format!("https://pbc.example.com/ui/approvals/{id}");

    // Slack, incoming webhook: Block Kit with the facts and a button to the approval page.
    let slack = rx.received("/slack/webhook");
    assert_eq!(slack.len(), 1, "{slack:#?}");
    assert_eq!(slack[0]["ok"], true, "{:#?}", slack[0]);
    assert_eq!(slack[0]["acked"], true);
    let text = slack[0]["body"].to_string();
    for want in [
        "release",
        "alice@example.com",
        "role sre",
        "medium",
        page.as_str(),
        "Approval needed",
    ] {
        assert!(text.contains(want), "no {want:?} in {text}");
    }
    // With serve.public-url, Approve / Reject buttons carrying the approval id (pbc serve
    // receives them at /v1/slack/interactions).
    let buttons: Vec<&Value> = slack[0]["body"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap())
        .collect();
    for action in ["pbc-approve", "pbc-reject"] {
        assert!(
            buttons
                .iter()
                .any(|e| e["action_id"] == action && e["value"] == id.as_str()),
            "no {action} button for {id} in {text}"
        );
    }
    // Slack, bot token: the same message, to the channel, with the token.
    let bot = rx.received("/slack/api/chat.postMessage");
    assert_eq!(bot.len(), 1);
    assert_eq!(bot[0]["ok"], true, "{:#?}", bot[0]);
    assert_eq!(bot[0]["body"]["channel"], "#security");
    assert_eq!(bot[0]["body"]["blocks"], slack[0]["body"]["blocks"]);

    // PagerDuty: a trigger keyed by the approval, severity from the risk, linked to the page.
    let pd = rx.received("/pd/v2/enqueue");
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0]["ok"], true, "{:#?}", pd[0]);
    let ev = &pd[0]["body"];
    assert_eq!(ev["event_action"], "trigger");
    assert_eq!(ev["dedup_key"], id.as_str());
    assert_eq!(ev["payload"]["severity"], "error");
    assert_eq!(ev["payload"]["component"], "release");
    assert_eq!(ev["links"][0]["href"], page.as_str());

    // The webhook: signature checked by the receiver; the body is the documented schema; the
    // delivery id is the body's id.
    let hooks = rx.received("/hook");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["ok"], true, "{:#?}", hooks[0]);
    let body = &hooks[0]["body"];
    let schema = notification_schema();
    let errors: Vec<String> = schema.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{body:#}");
    assert_eq!(body["event"], "on-pending");
    assert_eq!(body["approval"], id.as_str());
    assert_eq!(body["approvers"], json!(["role sre"]));
    assert_eq!(hooks[0]["headers"]["x-pbc-delivery"], body["id"]);
    assert_eq!(hooks[0]["headers"]["idempotency-key"], body["id"]);

    // Email: over STARTTLS (the server requires it), a text and an HTML part.
    let mail = rx.mail();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0]["starttls"], true);
    assert_eq!(mail[0]["to"], json!(["ciso@example.com"]));
    assert_eq!(mail[0]["parts"], json!(["text/plain", "text/html"]));
    assert!(
        mail[0]["subject"]
            .as_str()
            .unwrap()
            .contains("Approval needed")
    );
    assert!(mail[0]["text"].as_str().unwrap().contains(&page));
    assert!(
        mail[0]["message_id"]
            .as_str()
            .unwrap()
            .contains(body["id"].as_str().unwrap())
    );

    // Deciding the approval resolves the PagerDuty alert and announces the decision.
    let out = p.pbc(&["approve", &id, "--as", "sam@example.com"], &env);
    assert!(out.status.success(), "{out:?}");
    let pd = rx.received("/pd/v2/enqueue");
    assert_eq!(pd.len(), 2, "{pd:#?}");
    assert_eq!(pd[1]["ok"], true, "{:#?}", pd[1]);
    assert_eq!(pd[1]["body"]["event_action"], "resolve");
    assert_eq!(pd[1]["body"]["dedup_key"], id.as_str());
    let hooks = rx.received("/hook");
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[1]["ok"], true);
    assert_eq!(hooks[1]["body"]["event"], "on-approved");
    assert_eq!(hooks[1]["body"]["by"], "sam@example.com");
    assert_eq!(rx.mail().len(), 2);

    let st = p.status();
    assert_eq!(
        (&st["pending"], &st["failed"]),
        (&json!(0), &json!(0)),
        "{st:#}"
    );
    // Five on-pending, the PagerDuty resolve, two on-approved.
    assert_eq!(st["sent"], 5 + 1 + 2, "{st:#}");

    // No secret reached the state, the audit log or the output.
    let mut seen = Vec::new();
    for e in std::fs::read_dir(p.path().join("state")).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() {
            seen.extend(std::fs::read(path).unwrap());
        }
    }
    seen.extend(&run_out.stdout);
    seen.extend(&run_out.stderr);
    seen.extend(&out.stdout);
    seen.extend(&out.stderr);
    let seen = String::from_utf8_lossy(&seen);
    for secret in [SLACK_TOKEN, PD_KEY, HOOK_SECRET, SLACK_PATH_SECRET] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
}

#[test]
fn kill_9_during_delivery_then_the_next_command_delivers_once_per_id() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rx) = Receivers::start(tmp.path(), None) else {
        return;
    };
    let config = format!(
        "{}notifications:\n  hook: {{webhook: {{url: \"{}\", secret-env: PBC_T_HOOK_SECRET, timeout: 60s}}}}\n",
        roles(),
        rx.url("/hook")
    );
    let p = Project::new(&config, "hook", "hook");
    let env = [("PBC_T_HOOK_SECRET", HOOK_SECRET.to_string())];
    rx.flag("hang", true);
    let mut child = p
        .cmd(
            &[
                "run",
                "release.yaml",
                "--input",
                "in.json",
                "--agents",
                "agents.yaml",
                "--as",
                "alice@example.com",
            ],
            &env,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The run committed its gate and its notification, and pbc is sending it: kill -9.
    wait_until("the notification to arrive", || {
        !rx.received("/hook").is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    rx.flag("hang", false);
    let first = rx.received("/hook");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["acked"], false);
    let id = first[0]["body"]["id"].clone();

    // Nothing is lost: the outbox still holds it.
    let st = p.status();
    assert_eq!(st["pending"], 1, "{st:#}");
    assert_eq!(st["deliveries"][0]["id"], id);

    // Any next command delivers it; a second one sends nothing more.
    let out = p.pbc(&["runs"], &env);
    assert!(out.status.success(), "{out:?}");
    let out = p.pbc(&["runs"], &env);
    assert!(out.status.success(), "{out:?}");
    let all = rx.received("/hook");
    let acked: Vec<&Value> = all.iter().filter(|e| e["acked"] == true).collect();
    assert_eq!(acked.len(), 1, "{all:#?}");
    assert_eq!(acked[0]["body"]["id"], id);
    assert_eq!(acked[0]["headers"]["x-pbc-delivery"], id);
    assert_eq!(all.len(), 2, "one hung attempt, one delivery: {all:#?}");
    let st = p.status();
    assert_eq!(
        (&st["pending"], &st["sent"]),
        (&json!(0), &json!(1)),
        "{st:#}"
    );

    // The audit log says what happened, and its chain holds.
    let log = std::fs::read_to_string(p.path().join("state/audit.jsonl")).unwrap();
    let events: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .filter(|e| e.starts_with("notification-"))
        .collect();
    assert_eq!(events, ["notification-queued", "notification-sent"]);
    let out = p.pbc(&["audit", "verify"], &[]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_failing_channel_never_blocks_the_run_and_is_retried_until_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rx) = Receivers::start(tmp.path(), None) else {
        return;
    };
    let config = format!(
        "{}notifications:\n  hook: {{webhook: {{url: \"{}\", secret-env: PBC_T_HOOK_SECRET, retries: 1}}}}\n  slack-hook: {{slack: {{webhook-url-env: PBC_T_SLACK_URL, retries: 0, timeout: 2s}}}}\n",
        roles(),
        rx.url("/hook")
    );
    let p = Project::new(&config, "hook, slack-hook", "hook");
    // The Slack URL holds its key; the port is closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = [
        ("PBC_T_HOOK_SECRET", HOOK_SECRET.to_string()),
        (
            "PBC_T_SLACK_URL",
            format!("http://127.0.0.1:{closed}/services/{SLACK_PATH_SECRET}"),
        ),
    ];
    rx.flag("fail", true);
    let (_id, out) = p.run(&env);
    // The run waits at its gate (exit 0) although no channel took the notification.
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notifications: 2 failed"), "{stderr}");
    let st = p.status();
    assert_eq!(st["failed"], 2, "{st:#}");
    let errs: Vec<String> = st["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["last_error"].as_str().unwrap().to_string())
        .collect();
    assert!(
        errs.iter()
            .any(|e| e.contains("answered 503") && e.contains("after 2 attempts")),
        "{errs:?}"
    );
    assert!(
        !errs.iter().any(|e| e.contains(SLACK_PATH_SECRET)),
        "{errs:?}"
    );
    assert_eq!(rx.received("/hook").len(), 2, "two attempts");

    // The receiver is back: `retry` delivers the failed ones.
    rx.flag("fail", false);
    let out = p.pbc(&["notifications", "retry"], &env);
    assert!(out.status.success(), "{out:?}");
    let hooks = rx.received("/hook");
    assert_eq!(hooks.len(), 3);
    assert_eq!(hooks[2]["acked"], true);
    assert_eq!(hooks[2]["ok"], true, "{:#?}", hooks[2]);
    let st = p.status();
    assert_eq!(
        (&st["sent"], &st["failed"]),
        (&json!(1), &json!(1)),
        "{st:#}"
    );
}

#[test]
fn notifications_test_sends_a_sample_and_names_the_defined_channels() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rx) = Receivers::start(tmp.path(), None) else {
        return;
    };
    let config = format!(
        "notifications:\n  pager: {{pagerduty: {{routing-key-env: PBC_T_PD_KEY, api-url: \"{}\"}}}}\n",
        rx.url("/pd")
    );
    let p = Project::new(&config, "pager", "pager");
    let out = p.pbc(
        &["notifications", "test", "pager"],
        &[("PBC_T_PD_KEY", PD_KEY.to_string())],
    );
    assert!(out.status.success(), "{out:?}");
    let pd = rx.received("/pd/v2/enqueue");
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0]["ok"], true, "{:#?}", pd[0]);
    // Without the variable: an error naming it, nothing sent.
    let out = p.pbc(&["notifications", "test", "pager"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PBC_T_PD_KEY") && err.contains("not set"),
        "{err}"
    );
    let out = p.pbc(&["notifications", "test", "pagr"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("defined: `pager`"), "{err}");
    assert_eq!(rx.received("/pd/v2/enqueue").len(), 1);
}

#[test]
fn https_proxy_is_honoured_and_no_proxy_bypasses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(rx) = Receivers::start(tmp.path(), None) else {
        return;
    };
    // The webhook names a host that does not resolve: only the proxy can reach it.
    let config = format!(
        "{}notifications:\n  hook: {{webhook: {{url: \"http://hooks.example.invalid/hook\", secret-env: PBC_T_HOOK_SECRET, retries: 0}}}}\n  direct: {{webhook: {{url: \"{}\", secret-env: PBC_T_HOOK_SECRET, retries: 0}}}}\n",
        roles(),
        rx.url("/hook")
    );
    let p = Project::new(&config, "hook, direct", "direct");
    let proxy = format!("http://127.0.0.1:{}", rx.http);
    let env = [
        ("PBC_T_HOOK_SECRET", HOOK_SECRET.to_string()),
        ("HTTP_PROXY", proxy.clone()),
        ("HTTPS_PROXY", proxy),
        ("NO_PROXY", "127.0.0.1,localhost".to_string()),
    ];
    p.run(&env);
    let hooks = rx.received("/hook");
    assert_eq!(hooks.len(), 2, "{hooks:#?}");
    assert!(
        hooks.iter().all(|h| h["ok"] == true && h["acked"] == true),
        "{hooks:#?}"
    );
    // One tunnel, to the host only the proxy reaches; the NO_PROXY host went direct.
    let tunnels = rx.received("CONNECT");
    assert_eq!(tunnels.len(), 1, "{tunnels:#?}");
    assert_eq!(tunnels[0]["target"], "hooks.example.invalid:80");
    let hosts: Vec<&str> = hooks.iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert!(hosts.contains(&"hooks.example.invalid"), "{hosts:?}");
    assert!(
        hosts.iter().any(|h| h.starts_with("127.0.0.1:")),
        "{hosts:?}"
    );
}

#[test]
fn a_file_audit_sink_receives_exactly_its_runs_audit_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join(".pbc.yaml"),
        format!(
            "{}notifications:\n  note: {{file: notes.jsonl}}\naudit-sinks:\n  trail: {{file: audit/trail.jsonl}}\n",
            roles()
        ),
    )
    .unwrap();
    let audited = PLAYBOOK
        .replace("CHANNELS", "note")
        .replace("APPROVED", "note")
        + "  audit: {log-to: [trail]}\n";
    std::fs::write(p.join("release.yaml"), audited).unwrap();
    // The same playbook under another name and without `log-to`: none of its lines go there.
    let quiet = PLAYBOOK
        .replace("CHANNELS", "note")
        .replace("APPROVED", "note")
        .replace("metadata: {name: release}", "metadata: {name: quiet}");
    std::fs::write(p.join("quiet.yaml"), quiet).unwrap();
    std::fs::write(p.join("agents.yaml"), AGENTS).unwrap();
    std::fs::write(p.join("in.json"), "{}").unwrap();
    let pbc = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pbc"))
            .current_dir(p)
            .args(args)
            .env("PBC_STATE_DIR", p.join("state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        out
    };
    let run = |file: &str| -> (String, String) {
        let out = pbc(&[
            "run",
            file,
            "--input",
            "in.json",
            "--agents",
            "agents.yaml",
            "--as",
            "alice@example.com",
            "--format",
            "json",
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["run"].as_str().unwrap().to_string(),
            v["stages"]["release"]["approval_id"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let (quiet_run, quiet_gate) = run("quiet.yaml");
    let (run_id, gate) = run("release.yaml");
    pbc(&["approve", &quiet_gate, "--as", "sam@example.com"]);
    pbc(&["approve", &gate, "--as", "sam@example.com"]);
    pbc(&["resume", &run_id]);
    pbc(&["resume", &quiet_run]);

    let log = std::fs::read_to_string(p.join("state/audit.jsonl")).unwrap();
    let of = |run: &str| -> Vec<String> {
        log.lines()
            .filter(|l| serde_json::from_str::<Value>(l).unwrap()["run"] == run)
            .map(String::from)
            .collect()
    };
    let trail = std::fs::read_to_string(p.join("audit/trail.jsonl")).unwrap();
    let trail: Vec<String> = trail.lines().map(String::from).collect();
    let want = of(&run_id);
    assert!(
        want.iter().any(|l| l.contains("\"run-ended\"")),
        "{want:#?}"
    );
    assert_eq!(
        trail, want,
        "the sink holds the run's lines, byte for byte, in order"
    );
    assert!(!of(&quiet_run).is_empty());
    assert!(!trail.iter().any(|l| l.contains(&quiet_run)));
}
