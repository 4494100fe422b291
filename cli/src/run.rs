//! The runtime commands: thin wrappers over `pbc_runtime`.

use crate::cli::Global;
use pbc_runtime::{Agents, Error, LoadOptions, RunOptions, RunReport, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;

pub struct RunArgs {
    pub path: PathBuf,
    pub input: PathBuf,
    pub agents: Option<PathBuf>,
    pub playbook: Option<String>,
    pub state: Option<PathBuf>,
    pub as_who: Option<String>,
    pub json: bool,
    pub allow_unenforced_guardrails: bool,
}

pub(crate) fn fail(e: &Error) -> ExitCode {
    match e {
        Error::Invalid(lines) => {
            for l in lines {
                eprintln!("{l}");
            }
            eprintln!("error: the playbook has errors; nothing was run");
        }
        e => eprintln!("error: {e}"),
    }
    ExitCode::from(e.exit_code())
}

fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn open(state: Option<PathBuf>) -> Result<Runtime, Error> {
    Runtime::open(&pbc_runtime::default_state_dir(state.as_deref()))
}

/// Opens a state store that must already exist: deciding or resuming names something a run
/// created, so a missing store is a usage error and nothing is created.
fn open_existing(state: Option<PathBuf>) -> Result<Runtime, Error> {
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    if !pbc_runtime::state_store_exists(&dir) {
        return Err(Error::Usage(format!(
            "{}: no state store here (no state.db); give the state of the run with --state DIR or PBC_STATE_DIR",
            dir.display()
        )));
    }
    open(state)
}

fn read_input(path: &std::path::Path) -> Result<serde_json::Value, Error> {
    let text =
        pbc_runtime::files::read_text(path, "the input", pbc_runtime::files::MAX_INPUT_BYTES)?;
    if let Ok(v) = serde_json::from_str(&text) {
        return Ok(v);
    }
    // YAML (a superset of JSON) through the compiler's loader.
    let loader = pbc_compiler::load::Loader::new(
        std::sync::Arc::new(pbc_compiler::fs::MemFs::new()),
        "",
        Default::default(),
    );
    let l = loader.load_text(path.to_path_buf(), text);
    if let Some(d) = l.diags.iter().find(|d| d.is_error()) {
        return Err(Error::Usage(format!(
            "{}: the input is neither JSON nor YAML: {}",
            path.display(),
            d.message
        )));
    }
    Ok(l.docs
        .first()
        .map(|d| d.root.to_json())
        .unwrap_or(serde_json::Value::Null))
}

fn load_agents(path: Option<&PathBuf>) -> Result<Agents, Error> {
    match path {
        Some(p) => Agents::from_file(p).map_err(Error::Usage),
        None => {
            let default = PathBuf::from("agents.yaml");
            if default.is_file() {
                Agents::from_file(&default).map_err(Error::Usage)
            } else {
                Ok(Agents::default())
            }
        }
    }
}

fn print_report(r: &RunReport, json: bool, quiet: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
        );
        if let Some(rb) = &r.runbook {
            eprint!("{rb}");
        }
    } else if quiet {
        // The status line and what to decide, nothing else.
        println!("run {}  {}  {}", r.run, r.playbook, r.status);
        for a in &r.pending {
            println!(
                "  approval {} ({})",
                a.id,
                a.stage.as_deref().unwrap_or("playbook")
            );
        }
    } else {
        print!("{}", r.to_human());
    }
    ExitCode::from(r.status.exit_code())
}

/// `pbc run`.
pub fn run(g: &Global, a: RunArgs) -> ExitCode {
    let result = (|| {
        let c = pbc_runtime::load(
            &a.path,
            &LoadOptions {
                config: g.config.clone(),
                playbook: a.playbook.clone(),
            },
        )?;
        if let Some(note) = findings_note(c.warnings.len(), c.infos.len())
            && !g.quiet
        {
            eprintln!(
                "note: {note} in the playbook (`pbc check {}` shows them)",
                a.path.display()
            );
        }
        let input = read_input(&a.input)?;
        let agents = load_agents(a.agents.as_ref())?;
        if let Some(w) = agents.roles_warning(&c.frozen.config.roles) {
            eprintln!("warning: {w}");
        }
        let mut rt = open(a.state.clone())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        if !g.quiet {
            for r in rt.rejections(c.name())?.iter().take(3) {
                eprintln!("note: playbook {} was {}", c.name(), r.describe(now));
            }
        }
        let opts = RunOptions {
            requester: a.as_who.clone().unwrap_or_else(os_user),
            allow_unenforced_guardrails: a.allow_unenforced_guardrails,
        };
        let r = rt.run(&c, &agents, input, &opts);
        crate::notifications::deliver(&mut rt);
        r
    })();
    match result {
        Ok(r) => print_report(&r, a.json, g.quiet),
        Err(e) => fail(&e),
    }
}

/// `N warning(s) and M info(s)`, or `None` when there are neither.
fn findings_note(warnings: usize, infos: usize) -> Option<String> {
    let w = (warnings > 0).then(|| format!("{warnings} warning(s)"));
    let i = (infos > 0).then(|| format!("{infos} info(s)"));
    match (w, i) {
        (Some(w), Some(i)) => Some(format!("{w} and {i}")),
        (w, i) => w.or(i),
    }
}

/// `pbc approve` / `pbc reject`.
pub fn decide(state: Option<PathBuf>, id: &str, who: &str, reason: Option<&str>) -> ExitCode {
    decide_with(state, id, reason, |rt| match reason {
        None => rt.approve(id, who),
        Some(r) => rt.reject(id, who, r),
    })
}

/// Records a decision with `f`, delivers the notifications it queued, and says what next.
pub(crate) fn decide_with(
    state: Option<PathBuf>,
    id: &str,
    reason: Option<&str>,
    f: impl FnOnce(&mut Runtime) -> Result<pbc_runtime::Decision, Error>,
) -> ExitCode {
    let result = open_existing(state).and_then(|mut rt| {
        let d = f(&mut rt);
        crate::notifications::deliver(&mut rt);
        d
    });
    match result {
        Ok(d) => {
            let role = d
                .role
                .as_ref()
                .map(|r| format!(" (as a member of {r})"))
                .unwrap_or_default();
            let at = d
                .stage
                .as_ref()
                .map(|s| format!("stage {s} of "))
                .unwrap_or_default();
            if d.status == pbc_runtime::ApprovalStatus::Pending && reason.is_none() {
                // One of several approvals a `min-approvals` gate needs.
                let left = (d.min_approvals as usize).saturating_sub(d.approved_by.len());
                println!(
                    "recorded {id}: {at}run {} by {}{role}: {} of {} distinct approvers ({})",
                    d.run,
                    d.by,
                    d.approved_by.len(),
                    d.min_approvals,
                    d.approved_by.join(", ")
                );
                println!(
                    "next: {left} more approver(s): pbc approve {id} --as WHO (a person who has not approved it)"
                );
                return ExitCode::SUCCESS;
            }
            println!("{} {id}: {at}run {} by {}{role}", d.status, d.run, d.by);
            match reason {
                None => println!("next: pbc resume {}", d.run),
                Some(_) => println!(
                    "the run ends rejected (a pbc process executing it ends it before its next step); `pbc resume {}` runs its on-failure path",
                    d.run
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pbc resume`.
pub fn resume(state: Option<PathBuf>, run: &str, agents: Option<PathBuf>, json: bool) -> ExitCode {
    let result = (|| {
        let agents = match &agents {
            Some(p) => Some(Agents::from_file(p).map_err(Error::Usage)?),
            None => None,
        };
        let mut rt = open_existing(state)?;
        let r = rt.resume(run, agents.as_ref());
        crate::notifications::deliver(&mut rt);
        r
    })();
    match result {
        Ok(r) => print_report(&r, json, false),
        Err(e) => fail(&e),
    }
}

/// `pbc runs`.
/// `pbc runs --stats`: policy figures over every run in the state store.
pub fn stats(state: Option<PathBuf>, json: bool) -> ExitCode {
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    let result = if pbc_runtime::state_store_exists(&dir) {
        open(state).and_then(|rt| rt.policy_stats())
    } else {
        Ok(pbc_runtime::PolicyStats {
            compliance_rate: 1.0,
            ..Default::default()
        })
    };
    match result {
        Ok(s) => {
            if json {
                let v = serde_json::json!({ "policy": s });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return ExitCode::SUCCESS;
            }
            println!(
                "policy decisions: {} ({} allowed, {} denied, {} approvals required)",
                s.evaluations, s.allowed, s.denied, s.approvals_required
            );
            println!("compliance rate:  {:.1}%", s.compliance_rate * 100.0);
            let list = |m: &std::collections::BTreeMap<String, u64>| {
                if m.is_empty() {
                    "none".to_string()
                } else {
                    m.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            println!(
                "violations:       by policy: {}",
                list(&s.violations_by_policy)
            );
            println!(
                "                  by stage risk: {}",
                list(&s.violations_by_risk)
            );
            println!(
                "evaluation:       p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                s.latency_ms.p50, s.latency_ms.p95, s.latency_ms.p99, s.latency_ms.max
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub fn runs(state: Option<PathBuf>, json: bool) -> ExitCode {
    // Read-only: a state that does not exist has no runs, and is not created.
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    let result = if dir.exists() && !dir.is_dir() {
        Err(Error::Usage(format!(
            "{}: the state directory is not a directory",
            dir.display()
        )))
    } else if pbc_runtime::state_store_exists(&dir) {
        open(state).and_then(|mut rt| {
            let r = (rt.runs()?, rt.kill_switch()?);
            crate::notifications::deliver(&mut rt);
            Ok(r)
        })
    } else {
        Ok((Vec::new(), pbc_runtime::KillSwitch::default()))
    };
    match result {
        Ok((list, kill_switch)) => {
            if json {
                let runs: Vec<serde_json::Value> = list.iter().map(|r| r.to_json()).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "runs": runs, "kill_switch": kill_switch.to_json() })
                    )
                    .unwrap_or_default()
                );
                return ExitCode::SUCCESS;
            }
            if kill_switch.engaged {
                println!(
                    "kill switch engaged by {}{}: no run starts or resumes until `pbc runs stop --release`",
                    kill_switch.by.as_deref().unwrap_or("unknown"),
                    kill_switch
                        .at
                        .map(|t| format!(" at {}", pbc_runtime::clock::rfc3339(t)))
                        .unwrap_or_default()
                );
            }
            if list.is_empty() {
                println!("no runs");
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                println!(
                    "{:<13} {:<28} {:<17} {:<28} {:>9} {:>9}",
                    "RUN", "PLAYBOOK", "STATUS", "WAITING ON", "AGE", "SLA LEFT"
                );
                for r in &list {
                    println!(
                        "{:<13} {:<28} {:<17} {:<28} {:>9} {:>9}",
                        r.run,
                        r.playbook,
                        r.status.as_str(),
                        r.waiting_on.as_deref().unwrap_or("-"),
                        pbc_runtime::clock::human_duration(now - r.started),
                        match r.sla_left_ms {
                            Some(ms) if ms < 0 => "passed".to_string(),
                            Some(ms) => pbc_runtime::clock::human_duration(ms),
                            None => "-".into(),
                        }
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pbc runs stop`.
pub fn stop(
    state: Option<PathBuf>,
    all: bool,
    run: Option<String>,
    who: Option<String>,
) -> ExitCode {
    if !all && run.is_none() {
        eprintln!("error: name a run, or stop every run with --all");
        return ExitCode::from(2);
    }
    let who = who.unwrap_or_else(os_user);
    match open(state).and_then(|mut rt| {
        let r = rt.stop(run.as_deref(), &who);
        crate::notifications::deliver(&mut rt);
        r
    }) {
        Ok(ids) => {
            if ids.is_empty() {
                println!("no unfinished run to stop");
            } else {
                println!("stopped by {who}: {}", ids.join(", "));
            }
            if all {
                println!(
                    "kill switch engaged by {who}: no run starts or resumes until `pbc runs stop --release`"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pbc runs stop --release`.
pub fn release(state: Option<PathBuf>, who: Option<String>) -> ExitCode {
    let who = who.unwrap_or_else(os_user);
    match open(state).and_then(|mut rt| rt.release_kill_switch(&who)) {
        Ok(Some(by)) => {
            println!("kill switch released by {who} (engaged by {by})");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("the kill switch is not engaged");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pbc audit verify [FILE]`.
pub fn verify(state: Option<PathBuf>, file: Option<PathBuf>) -> ExitCode {
    // Read-only: never creates a state directory or store.
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    let has_store = pbc_runtime::state_store_exists(&dir);
    let result = match &file {
        Some(f) if !has_store => {
            pbc_runtime::files::open_regular(f, "the audit log").and_then(|h| {
                pbc_runtime::audit::verify_reader(&mut std::io::BufReader::new(h), None)
                    .map_err(|e| Error::Usage(format!("{}: {e}", f.display())))
            })
        }
        None if !has_store && !dir.is_dir() => Err(Error::Usage(format!(
            "{}: no such state directory (give the state with --state DIR or PBC_STATE_DIR, or a log file)",
            dir.display()
        ))),
        None if !has_store => Err(Error::Usage(format!(
            "{}: no state store here (no state.db); `pbc audit verify FILE` checks a log's hash chain alone",
            dir.display()
        ))),
        _ => open(state).and_then(|mut rt| rt.verify_audit(file.as_deref())),
    };
    match result {
        Ok(v) if v.problem.is_some() || v.mismatches.is_empty() => match &v.problem {
            None => {
                if v.waiting > 0 {
                    eprintln!(
                        "warning: {} more entr{} recorded by the state store {} not in the file yet (it could not be written); the next pbc command that can write it appends them",
                        v.waiting,
                        if v.waiting == 1 { "y" } else { "ies" },
                        if v.waiting == 1 { "is" } else { "are" }
                    );
                }
                match v.recorded {
                    Some(n) => println!(
                        "ok: {} entries, hash chain intact, matching the {n} the state recorded",
                        v.entries
                    ),
                    None => println!(
                        "ok: {} entries, hash chain intact (no state store to compare with)",
                        v.entries
                    ),
                }
                ExitCode::SUCCESS
            }
            Some(p) => {
                println!("error: entry #{} (line {}): {}", p.seq, p.line, p.message);
                ExitCode::from(1)
            }
        },
        Ok(v) => {
            println!(
                "error: the hash chain ({} entries) is intact, but the state store does not match it:",
                v.entries
            );
            for m in &v.mismatches {
                println!("  - {m}");
            }
            ExitCode::from(1)
        }
        Err(e) => fail(&e),
    }
}

/// `pbc serve`: check errors refuse to start (exit 1), as does a bad state or address (2).
pub fn serve(o: pbc_serve::Options) -> ExitCode {
    match pbc_serve::serve(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
