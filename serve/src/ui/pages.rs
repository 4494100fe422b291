//! The HTML of the web page, written with maud: every value interpolated with `(...)` is
//! escaped, so a playbook, stage, message or reason cannot inject markup. No JavaScript: the
//! forms post, the server answers with a page or a redirect, and a run still moving reloads
//! itself with `<meta http-equiv="refresh">`.

use maud::{DOCTYPE, Markup, html};
use pbc_runtime::clock::rfc3339;
use pbc_runtime::{Approval, AuditEntry, RunReport, RunSummary};

/// What every page needs to know about who is looking.
pub struct Viewer<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
}

/// The page around `body`.
pub fn layout(title: &str, viewer: Option<&Viewer>, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh {
                    meta http-equiv="refresh" content="2";
                }
                title { (title) " · pbc" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header {
                    a.brand href="/ui" { "pbc" }
                    @if let Some(v) = viewer {
                        span.who { (v.user) }
                        form.inline method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(nonce: &str, next: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        false,
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(nonce);
                input type="hidden" name="next" value=(next);
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required;
                p.hint { "Your pbc serve bearer token, or an OIDC ID token." }
                button #sign-in type="submit" { "Sign in" }
            }
        },
    )
}

fn when(ms: Option<i64>) -> String {
    ms.map(rfc3339).unwrap_or_else(|| "none".into())
}

fn approvers(a: &Approval) -> String {
    if a.approvers.is_empty() {
        return "anyone but the requester".into();
    }
    a.approvers
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An approval with its run's playbook and requester.
pub struct Pending<'a> {
    pub approval: &'a Approval,
    pub playbook: &'a str,
    pub requested_by: &'a str,
}

fn approval_card(p: &Pending) -> Markup {
    let a = p.approval;
    html! {
        article.approval id={ "approval-" (a.id) } {
            h3 {
                a href={ "/ui/approvals/" (a.id) } {
                    (a.stage.as_deref().unwrap_or("(playbook)")) " in " (p.playbook)
                }
            }
            dl {
                dt { "Approval" } dd.id { (a.id) }
                dt { "Run" } dd { a href={ "/ui/runs/" (a.run) } { (a.run) } }
                dt { "Requested by" } dd { (p.requested_by) }
                dt { "Who may decide" } dd.approvers { (approvers(a)) }
                dt { "Deadline" } dd.deadline { (when(a.deadline)) }
                dt { "Escalation level" } dd.level { (a.level) " of " (a.escalation.len()) }
            }
        }
    }
}

pub fn home(v: &Viewer, pending: &[Pending], runs: &[RunSummary]) -> Markup {
    layout(
        "Approvals",
        Some(v),
        false,
        html! {
            h1 { "Approvals you may decide" }
            @if pending.is_empty() {
                p.empty #no-approvals { "Nothing waits for you." }
            }
            @for p in pending { (approval_card(p)) }
            h2 { "Runs" }
            @if runs.is_empty() {
                p.empty { "No runs yet." }
            } @else {
                table.runs {
                    thead { tr { th { "Run" } th { "Playbook" } th { "Status" } th { "Waiting on" } th { "Started" } } }
                    tbody {
                        @for r in runs {
                            tr {
                                td { a href={ "/ui/runs/" (r.run) } { (r.run) } }
                                td { (r.playbook) }
                                td.status { (r.status.as_str()) }
                                td { (r.waiting_on.as_deref().unwrap_or("")) }
                                td { (rfc3339(r.started)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One approval, with the forms to decide it when `v` may.
pub fn approval(v: &Viewer, p: &Pending, may_decide: bool, error: Option<&str>) -> Markup {
    let a = p.approval;
    let pending = a.status.as_str() == "pending";
    html! {
        (layout(&format!("Approval {}", a.id), Some(v), false, html! {
            h1 { "Approval " (a.id) }
            @if let Some(e) = error {
                p.error role="alert" #error { (e) }
            }
            (approval_card(p))
            dl {
                dt { "Kind" } dd { (a.kind.as_str()) }
                dt { "Status" } dd #approval-status { (a.status.as_str()) }
                @if let Some(by) = &a.decided_by {
                    dt { "Decided by" } dd { (by) }
                }
                @if let Some(r) = &a.reason {
                    dt { "Reason" } dd { (r) }
                }
            }
            h2 { "What is asked" }
            pre.message #message { (a.message) }
            @if pending && may_decide {
                div.decide {
                    form method="post" action={ "/ui/approvals/" (a.id) "/approve" } {
                        input type="hidden" name="csrf" value=(v.csrf);
                        button.approve #approve type="submit" { "Approve" }
                    }
                    form method="post" action={ "/ui/approvals/" (a.id) "/reject" } {
                        input type="hidden" name="csrf" value=(v.csrf);
                        label for="reason" { "Reason (required to reject)" }
                        textarea #reason name="reason" rows="3" required {}
                        button.reject #reject type="submit" { "Reject" }
                    }
                }
            } @else if pending {
                p.note { "You may not decide this approval (you requested the run, or you are not one of its approvers)." }
            }
        }))
    }
}

pub fn run(v: &Viewer, r: &RunReport, audit: &[AuditEntry]) -> Markup {
    let moving = !r.status.is_final() && r.pending.is_empty();
    layout(
        &format!("Run {}", r.run),
        Some(v),
        moving,
        html! {
            h1 { "Run " (r.run) }
            dl {
                dt { "Playbook" } dd { (r.playbook) }
                dt { "Status" } dd #run-status { (r.status.as_str()) }
                dt { "Requested by" } dd { (r.requester) }
                dt { "Started" } dd { (rfc3339(r.started)) }
                @if let Some(m) = &r.message {
                    dt { "Outcome" } dd { (m) }
                }
            }
            @for a in &r.pending {
                p { "Waiting on approval " a href={ "/ui/approvals/" (a.id) } { (a.id) } }
            }
            h2 { "Stages" }
            table.stages {
                thead { tr { th { "Stage" } th { "Status" } th { "Attempts" } th { "Detail" } } }
                tbody {
                    @for s in &r.stages {
                        tr {
                            td { (s.name) }
                            td.status { (s.status.as_str()) }
                            td { (s.attempts) }
                            td {
                                @if let Some(e) = &s.error { (e) }
                                @else if let Some(o) = &s.output {
                                    code { (cut(&o.to_string(), 300)) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Audit trail" }
            ol.audit {
                @for e in audit {
                    li {
                        time { (e.time) } " "
                        strong { (e.event) }
                        @if let Some(s) = &e.stage { " · " (s) }
                        " · " (e.actor)
                    }
                }
            }
        },
    )
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n).collect();
    t.push('…');
    t
}

/// An error page.
pub fn problem(v: Option<&Viewer>, title: &str, message: &str) -> Markup {
    layout(
        title,
        v,
        false,
        html! {
            h1 { (title) }
            p.error role="alert" #error { (message) }
            p { a href="/ui" { "Back to the approvals" } }
        },
    )
}

/// The style sheet (served as a file: the CSP allows no inline style).
pub const CSS: &str = r#"
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9}
header{display:flex;gap:.75rem;align-items:center;padding:.6rem 1rem;background:#1f2937;color:#fff;flex-wrap:wrap}
header a.brand{color:#fff;font-weight:700;text-decoration:none;margin-right:auto}
header .who{opacity:.85}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.5rem}h3{font-size:1.05rem;margin:.2rem 0 .5rem}
article.approval{background:#fff;border:1px solid #d6d9de;border-radius:6px;padding:.8rem;margin:.8rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:.4rem 0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
pre.message{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #d6d9de;padding:.7rem;border-radius:6px}
form{margin:.6rem 0}form.inline{display:inline;margin:0}
label{display:block;font-weight:600;margin:.4rem 0 .2rem}
input[type=password],textarea{width:100%;padding:.5rem;font:inherit;border:1px solid #9aa1ab;border-radius:4px}
button{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid #4b5563;background:#fff;cursor:pointer;margin-top:.4rem}
button.approve{background:#166534;color:#fff;border-color:#166534}
button.reject{background:#991b1b;color:#fff;border-color:#991b1b}
.decide{display:grid;gap:.5rem}
.error{color:#991b1b;font-weight:600}.hint,.note,.empty{color:#4b5563}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e5e7eb;vertical-align:top;overflow-wrap:anywhere}
ol.audit{padding-left:1.4rem}ol.audit li{margin:.15rem 0}
@media (max-width:40rem){table.runs td:nth-child(4),table.runs th:nth-child(4),table.runs td:nth-child(5),table.runs th:nth-child(5){display:none}}
"#;
