//! The web page (`/ui`) of `pbc serve`, through the real binary on loopback: the security
//! headers and cookies, the sign-in, CSRF tokens refused when forged, the engine's rules
//! (the requester may not decide), escaped output; and a real browser (headless Chromium
//! driven by Selenium, `tests/serve/ui_browser.py`) that signs in, sees a pending approval
//! with its details, approves it and sees the run finish.
//!
//! The browser test needs python3 with selenium (`.ci/run` installs tests/serve/requirements.txt
//! into .venv) and Debian's chromium and chromium-driver: under CI a missing one fails the
//! test; elsewhere it says so and passes.
#![cfg(unix)]

mod serve_common;

use serde_json::Value;
use serve_common::web::{form, request};
use serve_common::{Server, approvals, project, repo};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A run of `deploy` started by ann with `version`, waiting at its gate; its approval id.
fn waiting_run(s: &Server, version: &str) -> (String, String) {
    let body = serde_json::json!({"playbook": "deploy", "input": {"version": version}});
    let (code, v) = s.post("/v1/runs", "ann-token", &body.to_string());
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

/// Signs in with `token`; the session cookie.
fn sign_in(s: &Server, token: &str) -> String {
    let page = request("GET", &format!("{}/ui/login", s.url), &[], None);
    assert_eq!(page.status, 200);
    let nonce = page.cookie("pbc_login").expect("the login nonce cookie");
    assert_eq!(page.hidden("csrf").as_deref(), Some(nonce.as_str()));
    let r = request(
        "POST",
        &format!("{}/ui/login", s.url),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &format!("pbc_login={nonce}")),
        ],
        Some(&form(&[
            ("csrf", &nonce),
            ("token", token),
            ("next", "/ui"),
        ])),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    r.cookie("pbc_session").expect("a session cookie")
}

fn status_of(dir: &Path, id: &str) -> String {
    approvals(dir)
        .into_iter()
        .find(|a| a.0 == id)
        .map(|a| a.1)
        .unwrap()
}

#[test]
fn the_page_signs_in_checks_csrf_and_decides_by_the_engines_rules() {
    let dir = project("1h", "30m");
    let s = Server::start(dir.path(), ".");
    let (run, id) = waiting_run(&s, "<script>alert(1)</script>");

    // Not signed in: to the sign-in page; every answer carries the security headers.
    let r = request("GET", &format!("{}/ui", s.url), &[], None);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/ui/login?next=%2Fui"));
    let login = request("GET", &format!("{}/ui/login", s.url), &[], None);
    let csp = login.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    assert!(login.body.contains("name=\"viewport\""));
    let nonce_cookie = login.set_cookies().join("\n");
    assert!(nonce_cookie.contains("HttpOnly") && nonce_cookie.contains("SameSite=Strict"));

    // A sign-in form not served here (no matching nonce) and a bad token are refused.
    let forged = request(
        "POST",
        &format!("{}/ui/login", s.url),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&form(&[("csrf", "0000"), ("token", "sam-token")])),
    );
    assert_eq!(forged.status, 403);
    assert!(forged.cookie("pbc_session").is_none());
    let nonce = login.cookie("pbc_login").unwrap();
    let bad = request(
        "POST",
        &format!("{}/ui/login", s.url),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &format!("pbc_login={nonce}")),
        ],
        Some(&form(&[("csrf", &nonce), ("token", "wrong-token")])),
    );
    assert_eq!(bad.status, 401);
    assert!(bad.cookie("pbc_session").is_none());

    // sam signs in: the session cookie is HttpOnly and SameSite=Strict.
    let sam = sign_in(&s, "sam-token");
    let cookie = format!("pbc_session={sam}");
    let home = request(
        "GET",
        &format!("{}/ui", s.url),
        &[("Cookie", &cookie)],
        None,
    );
    assert_eq!(home.status, 200);
    assert!(home.body.contains(&id), "{}", home.body);
    let csrf = home.hidden("csrf").unwrap();
    // The approval page holds the approval message, escaped.
    let page = request(
        "GET",
        &format!("{}/ui/approvals/{id}", s.url),
        &[("Cookie", &cookie)],
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("proposed:"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.body.contains("<script>"));

    // A forged CSRF token changes nothing.
    let post = |cookie: &str, what: &str, fields: &[(&str, &str)]| {
        request(
            "POST",
            &format!("{}/ui/approvals/{id}/{what}", s.url),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", cookie),
            ],
            Some(&form(fields)),
        )
    };
    let r = post(&cookie, "approve", &[("csrf", &"f".repeat(64))]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("CSRF"), "{}", r.body);
    let r = post(&cookie, "approve", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(status_of(dir.path(), &id), "pending");
    // ann's own token in ann's session: a CSRF token of another session is refused too.
    let ann = sign_in(&s, "ann-token");
    let ann_cookie = format!("pbc_session={ann}");
    let r = post(&ann_cookie, "approve", &[("csrf", &csrf)]);
    assert_eq!(r.status, 403);
    // With her own CSRF token, ann (the requester) may still not decide: the engine's rule.
    let ann_csrf = request(
        "GET",
        &format!("{}/ui", s.url),
        &[("Cookie", &ann_cookie)],
        None,
    )
    .hidden("csrf")
    .unwrap();
    let r = post(&ann_cookie, "approve", &[("csrf", &ann_csrf)]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(status_of(dir.path(), &id), "pending");
    // A rejection needs a reason.
    let r = post(&cookie, "reject", &[("csrf", &csrf), ("reason", "  ")]);
    assert_eq!(r.status, 400);
    assert_eq!(status_of(dir.path(), &id), "pending");

    // sam approves: to the run's page; the run finishes.
    let r = post(&cookie, "approve", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/ui/runs/{run}").as_str())
    );
    s.wait_status(&run, "succeeded");
    let page = request(
        "GET",
        &format!("{}/ui/runs/{run}", s.url),
        &[("Cookie", &cookie)],
        None,
    );
    assert!(page.body.contains("approval-granted"), "{}", page.body);
    // Deciding again: 409, shown on the page.
    let r = post(&cookie, "approve", &[("csrf", &csrf)]);
    assert_eq!(r.status, 409);

    // Signing out ends the session.
    let r = request(
        "POST",
        &format!("{}/ui/logout", s.url),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        Some(&form(&[("csrf", &csrf)])),
    );
    assert_eq!(r.status, 303);
    let r = request(
        "GET",
        &format!("{}/ui", s.url),
        &[("Cookie", &cookie)],
        None,
    );
    assert_eq!(r.status, 303);
}

/// A python3 with selenium, and chromium with its driver; `None` (outside CI) when missing.
fn browser_tools() -> Option<PathBuf> {
    let mut cands = vec![repo().join(".venv/bin/python3")];
    if let Some(p) = std::env::var_os("PBC_TEST_PYTHON") {
        cands.push(PathBuf::from(p));
    }
    cands.push(PathBuf::from("python3"));
    let py = cands.into_iter().find(|c| {
        Command::new(c)
            .args(["-c", "import selenium"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let driver = Path::new("/usr/bin/chromedriver").is_file();
    match py {
        Some(py) if driver => Some(py),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the browser test needs python3 with selenium (tests/serve/requirements.txt) and /usr/bin/chromedriver (apt-get install chromium-driver) under CI"
            );
            eprintln!(
                "skipped: no python3 with selenium, or no /usr/bin/chromedriver (apt-get install chromium-driver)"
            );
            None
        }
    }
}

#[test]
fn a_browser_signs_in_approves_and_sees_the_run_finish() {
    let Some(py) = browser_tools() else { return };
    let dir = project("1h", "30m");
    let s = Server::start(dir.path(), ".");
    let (run, id) = waiting_run(&s, "1.4.2");
    let out = Command::new(py)
        .arg(repo().join("tests/serve/ui_browser.py"))
        .args([
            "--url",
            &s.url,
            "--token",
            "sam-token",
            "--run",
            &run,
            "--approval",
            &id,
        ])
        .env("SE_OFFLINE", "true")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the browser test failed:\n{text}\n{}",
        s.log()
    );
    let v: Value =
        serde_json::from_str(text.lines().rfind(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(v["forged_csrf_status"], 403, "{v}");
    assert_eq!(v["run_status"], "succeeded", "{v}");
    let (_, r) = s.get(&format!("/v1/runs/{run}"), "ann-token");
    assert_eq!(r["status"], "succeeded");
    assert_eq!(status_of(dir.path(), &id), "approved");
}
