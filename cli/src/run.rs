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

fn fail(e: &Error) -> ExitCode {
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

fn open(state: Option<PathBuf>) -> Result<Runtime, Error> {
    Runtime::open(&pbc_runtime::default_state_dir(state.as_deref()))
}

fn read_input(path: &PathBuf) -> Result<serde_json::Value, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read the input: {e}", path.display())))?;
    if let Ok(v) = serde_json::from_str(&text) {
        return Ok(v);
    }
    // YAML (a superset of JSON) through the compiler's loader.
    let loader = pbc_compiler::load::Loader::new(
        std::sync::Arc::new(pbc_compiler::fs::MemFs::new()),
        "",
        Default::default(),
    );
    let l = loader.load_text(path.clone(), text);
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

fn print_report(r: &RunReport, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
        );
        if let Some(rb) = &r.runbook {
            eprint!("{rb}");
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
        if !c.warnings.is_empty() && !g.quiet {
            eprintln!(
                "note: {} warning(s) in the playbook (`pbc check {}` shows them)",
                c.warnings.len(),
                a.path.display()
            );
        }
        let input = read_input(&a.input)?;
        let agents = load_agents(a.agents.as_ref())?;
        let mut rt = open(a.state.clone())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        for r in rt.rejections(c.name())?.iter().take(3) {
            eprintln!("note: playbook {} was {}", c.name(), r.describe(now));
        }
        let opts = RunOptions {
            requester: a.as_who.clone().unwrap_or_else(os_user),
            allow_unenforced_guardrails: a.allow_unenforced_guardrails,
        };
        rt.run(&c, &agents, input, &opts)
    })();
    match result {
        Ok(r) => print_report(&r, a.json),
        Err(e) => fail(&e),
    }
}

/// `pbc approve` / `pbc reject`.
pub fn decide(state: Option<PathBuf>, id: &str, who: &str, reason: Option<&str>) -> ExitCode {
    let result = open(state).and_then(|mut rt| match reason {
        None => rt.approve(id, who),
        Some(r) => rt.reject(id, who, r),
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
        open(state)?.resume(run, agents.as_ref())
    })();
    match result {
        Ok(r) => print_report(&r, json),
        Err(e) => fail(&e),
    }
}

/// `pbc runs`.
pub fn runs(state: Option<PathBuf>, json: bool) -> ExitCode {
    let result = open(state).and_then(|mut rt| rt.runs());
    match result {
        Ok(list) => {
            if json {
                let runs: Vec<serde_json::Value> = list
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "run": r.run,
                            "playbook": r.playbook,
                            "status": r.status.as_str(),
                            "waiting_on": r.waiting_on,
                            "started": pbc_runtime::clock::rfc3339(r.started),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "runs": runs }))
                        .unwrap_or_default()
                );
            } else if list.is_empty() {
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
    match open(state).and_then(|mut rt| rt.stop(run.as_deref(), &who)) {
        Ok(ids) if ids.is_empty() => {
            println!("no unfinished run to stop");
            ExitCode::SUCCESS
        }
        Ok(ids) => {
            println!("stopped by {who}: {}", ids.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pbc audit verify [FILE]`.
pub fn verify(state: Option<PathBuf>, file: Option<PathBuf>) -> ExitCode {
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    let result = if file.is_some() && !dir.join("state.db").is_file() {
        let f = file.clone().unwrap_or_default();
        std::fs::read_to_string(&f)
            .map_err(|e| Error::Usage(format!("{}: {e}", f.display())))
            .map(|t| pbc_runtime::audit::verify(&t, None))
    } else {
        open(state).and_then(|mut rt| rt.verify_audit(file.as_deref()))
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
