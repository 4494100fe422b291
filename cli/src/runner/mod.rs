//! `pbc runner`: the tasks of an emitted Argo workflow, each run inside its pod.
//!
//! - `run`: one stage with the engine of `pbc run` (`Runtime::run_workflow_stage`): the
//!   outputs of the stages before it come as `--upstream`, its output goes to
//!   `OUT/output.json` and each exported field to `OUT/fields/PARAM`; its audit entries are
//!   printed on standard output (one JSON object a line) and delivered to the configured
//!   sinks;
//! - `input`: the trigger payload checked against the playbook's input schema, its fields
//!   exported the same way;
//! - `gate`: the check after a gate's suspend (passes on exactly `approve`, with its signed
//!   approval statements verified when they are required or supplied);
//! - `notify` / `exit-notify`: notifications through the configured channels;
//! - `rollback`: the exit handler's undo steps, for the stages the workflow completed (read
//!   from the shared state store; with none, the steps are listed and the task fails).
//!
//! The playbook, its files, the agents file and `.pbc.yaml` are read from the directory the
//! workflow's ConfigMap is mounted at (`--dir`, default `/etc/pbc`); what the runner writes goes
//! under `--out` (default `/tmp/pbc`, an `emptyDir`: the root filesystem is read-only).

mod exports;
mod gate;
mod notify;
mod rollback;

use crate::cli::Global;
use crate::run::fail;
use clap::Subcommand;
use pbc_runtime::{Agents, Error, LoadOptions, RunOptions, Runtime, StageStatus};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the workflow's ConfigMap is mounted.
pub const DEFAULT_DIR: &str = "/etc/pbc";
/// The most of the audit log a task reads (its pod's log is printed from it).
const AUDIT_READ_MAX: u64 = 64 * 1024 * 1024;

/// Where a task writes what the workflow reads.
pub const DEFAULT_OUT: &str = "/tmp/pbc";

/// The playbook file in the mounted directory.
pub const PLAYBOOK_FILE: &str = "playbook.yaml";
/// The agents file in the mounted directory (optional).
pub const AGENTS_FILE: &str = "agents.yaml";
/// The configuration in the mounted directory (optional).
pub const CONFIG_FILE: &str = "pbc.yaml";

/// Where the runner reads and writes.
#[derive(clap::Args, Debug, Clone)]
pub struct Place {
    /// The directory the workflow's ConfigMap is mounted at.
    #[arg(long, env = "PBC_RUNNER_DIR", default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Where outputs, exported fields and the state go.
    #[arg(long, env = "PBC_RUNNER_OUT", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum RunnerCommand {
    /// Run one stage of the playbook, as a task of the workflow.
    Run {
        /// The playbook's name (it must be the mounted playbook's).
        #[arg(long)]
        playbook: String,
        /// The stage's name.
        #[arg(long)]
        stage: String,
        /// The workflow's name (recorded as who started the stage).
        #[arg(long)]
        workflow: String,
        /// The workflow's uid (`{{workflow.uid}}`), recorded with the stage's run: the exit
        /// handler's undo steps find the workflow's stages by it.
        #[arg(long, default_value = "")]
        workflow_uid: String,
        /// The trigger payload (JSON).
        #[arg(long)]
        input: String,
        /// `STAGE=OUTPUT_JSON`: the output of a stage done before (empty: it did not run).
        #[arg(long, value_name = "STAGE=JSON")]
        upstream: Vec<String>,
        /// `PARAM=/json/pointer`: a field of the output to write to `OUT/fields/PARAM`.
        #[arg(long, value_name = "PARAM=POINTER")]
        export: Vec<String>,
        /// As `--export`, a duration written in seconds.
        #[arg(long, value_name = "PARAM=POINTER")]
        export_seconds: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Check the trigger payload and export the fields conditions read.
    Input {
        /// The playbook's name (it must be the mounted playbook's).
        #[arg(long)]
        playbook: String,
        /// The trigger payload (JSON).
        #[arg(long)]
        input: String,
        /// `PARAM=/json/pointer`: a field to write to `OUT/fields/PARAM`.
        #[arg(long, value_name = "PARAM=POINTER")]
        export: Vec<String>,
        /// As `--export`, a duration written in seconds.
        #[arg(long, value_name = "PARAM=POINTER")]
        export_seconds: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// The check after a gate's suspend.
    Gate {
        /// The gate's task name (`<stage>-approval`, `<stage>-escalation-N`, …).
        #[arg(long)]
        gate: String,
        /// `final`, `level` or `refuse`.
        #[arg(long)]
        mode: String,
        /// The value supplied to the suspend.
        #[arg(long, default_value = "")]
        decision: String,
        /// A refused stage's definition (printed as its runbook).
        #[arg(long, default_value = "")]
        runbook: String,
        /// The playbook's name (it must be the mounted playbook's); needed to check signed
        /// approvals.
        #[arg(long, default_value = "")]
        playbook: String,
        /// The workflow's name (`{{workflow.name}}`): the run a signed approval must name.
        #[arg(long, default_value = "")]
        workflow: String,
        /// The stage the gate belongs to (empty: the playbook's own approval).
        #[arg(long, default_value = "")]
        stage: String,
        /// The signed approval statements supplied to the suspend (its output `approval`).
        #[arg(long, default_value = "")]
        approval: String,
        /// Who may approve (JSON).
        #[arg(long, default_value = "[]")]
        approvers: String,
        #[command(flatten)]
        place: Place,
    },
    /// Send a gate's notification to its channels.
    Notify {
        /// The playbook's name (it must be the mounted playbook's).
        #[arg(long)]
        playbook: String,
        /// The workflow's name (`{{workflow.name}}`).
        #[arg(long)]
        workflow: String,
        /// The stage's name.
        #[arg(long)]
        stage: String,
        /// The notification's event (`approval-pending`, `escalated`, …).
        #[arg(long)]
        event: String,
        /// The channels (JSON list).
        #[arg(long)]
        channels: String,
        /// Who approves (JSON).
        #[arg(long, default_value = "[]")]
        approvers: String,
        #[command(flatten)]
        place: Place,
    },
    /// The exit handler's notifications on a run that did not succeed.
    ExitNotify {
        /// The playbook's name (it must be the mounted playbook's).
        #[arg(long)]
        playbook: String,
        /// The workflow's name (`{{workflow.name}}`).
        #[arg(long)]
        workflow: String,
        /// `{{workflow.status}}`: how the run ended.
        #[arg(long)]
        status: String,
        /// `{{workflow.failures}}`: the failed nodes (JSON).
        #[arg(long, default_value = "")]
        failures: String,
        /// Who is told what (JSON: `rollback`, `gates`, `stages`).
        #[arg(long)]
        channels: String,
        #[command(flatten)]
        place: Place,
    },
    /// The exit handler's undo steps: for each stage the workflow completed, latest first,
    /// read from the state store the pods share (without one, the steps are listed for a
    /// person and the task fails, so that the workflow shows the rollback was not done).
    Rollback {
        /// The playbook's name (it must be the mounted playbook's).
        #[arg(long)]
        playbook: String,
        /// The workflow's name (`{{workflow.name}}`).
        #[arg(long)]
        workflow: String,
        /// The workflow's uid (`{{workflow.uid}}`): the stage runs that are this workflow's.
        #[arg(long, default_value = "")]
        workflow_uid: String,
        /// `{{workflow.status}}`: how the run ended.
        #[arg(long)]
        status: String,
        /// `{{workflow.failures}}`: the failed nodes (JSON).
        #[arg(long, default_value = "[]")]
        failures: String,
        /// The undo steps (JSON), latest stage first.
        #[arg(long)]
        steps: String,
        #[command(flatten)]
        place: Place,
    },
}

/// `pbc runner …`.
pub fn main(g: &Global, cmd: RunnerCommand) -> ExitCode {
    match cmd {
        RunnerCommand::Run {
            playbook,
            stage,
            workflow,
            workflow_uid,
            input,
            upstream,
            export,
            export_seconds,
            place,
        } => {
            let ex = match exports::parse(&export, &export_seconds) {
                Ok(e) => e,
                Err(e) => return fail(&e),
            };
            let task = Task {
                playbook: &playbook,
                stage: &stage,
                workflow: &workflow,
                uid: &workflow_uid,
            };
            match run_stage(g, &place, &task, &input, &upstream, &ex) {
                Ok(code) => code,
                Err(e) => fail(&e),
            }
        }
        RunnerCommand::Input {
            playbook,
            input,
            export,
            export_seconds,
            place,
        } => {
            let r = exports::parse(&export, &export_seconds).and_then(|ex| {
                let c = load(g, &place, &playbook)?;
                let mut v = parse_json(&input, "--input")?;
                pbc_runtime::input::check(&c, &mut v)?;
                exports::write(&place.out, None, &v, &ex)
            });
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        RunnerCommand::Gate {
            gate,
            mode,
            decision,
            runbook,
            playbook,
            workflow,
            stage,
            approval,
            approvers,
            place,
        } => gate::check(
            g,
            &place,
            &gate,
            &mode,
            &decision,
            &runbook,
            &gate::Signed {
                playbook: &playbook,
                workflow: &workflow,
                stage: &stage,
                approval: &approval,
                approvers: &approvers,
            },
        ),
        RunnerCommand::Notify {
            playbook,
            workflow,
            stage,
            event,
            channels,
            approvers,
            place,
        } => notify::gate_event(
            g, &place, &playbook, &workflow, &stage, &event, &channels, &approvers,
        ),
        RunnerCommand::ExitNotify {
            playbook,
            workflow,
            status,
            failures,
            channels,
            place,
        } => notify::exit(
            g, &place, &playbook, &workflow, &status, &failures, &channels,
        ),
        RunnerCommand::Rollback {
            playbook,
            workflow,
            workflow_uid,
            status,
            failures,
            steps,
            place,
        } => rollback::main(
            g,
            &place,
            &rollback::Ended {
                playbook: &playbook,
                workflow: &workflow,
                uid: &workflow_uid,
                status: &status,
                failures: &failures,
                steps: &steps,
            },
        ),
    }
}

fn parse_json(text: &str, what: &str) -> Result<Value, Error> {
    if text.len() as u64 > pbc_runtime::files::MAX_INPUT_BYTES {
        return Err(Error::Usage(format!("{what}: more than the input limit")));
    }
    serde_json::from_str(text).map_err(|e| Error::Usage(format!("{what}: not JSON: {e}")))
}

/// The configuration: `--config`, else `pbc.yaml` in the mounted directory, else none.
fn config(g: &Global, place: &Place) -> Option<PathBuf> {
    g.config.clone().or_else(|| {
        let p = place.dir.join(CONFIG_FILE);
        p.is_file().then_some(p)
    })
}

fn load(g: &Global, place: &Place, playbook: &str) -> Result<pbc_runtime::Compiled, Error> {
    let c = pbc_runtime::load(
        &place.dir.join(PLAYBOOK_FILE),
        &LoadOptions {
            config: config(g, place),
            playbook: Some(playbook.to_string()),
        },
    )?;
    if c.name() != playbook {
        return Err(Error::Usage(format!(
            "the mounted playbook is `{}`, not `{playbook}`",
            c.name()
        )));
    }
    Ok(c)
}

fn agents(place: &Place) -> Result<Agents, Error> {
    let p = place.dir.join(AGENTS_FILE);
    if p.is_file() {
        Agents::from_file(&p).map_err(Error::Usage)
    } else {
        Ok(Agents::default())
    }
}

/// `NAME=JSON` pairs; an empty value: the stage did not run (Argo's default `""`).
fn upstream(list: &[String]) -> Result<BTreeMap<String, Value>, Error> {
    let mut m = BTreeMap::new();
    for u in list {
        let Some((name, v)) = u.split_once('=') else {
            return Err(Error::Usage(format!(
                "--upstream {u}: expected STAGE=OUTPUT_JSON"
            )));
        };
        if v.trim().is_empty() {
            continue;
        }
        m.insert(
            name.to_string(),
            parse_json(v, &format!("--upstream {name}"))?,
        );
    }
    Ok(m)
}

/// Which stage of which workflow a task runs.
struct Task<'a> {
    playbook: &'a str,
    stage: &'a str,
    workflow: &'a str,
    uid: &'a str,
}

fn run_stage(
    g: &Global,
    place: &Place,
    t: &Task<'_>,
    input: &str,
    up: &[String],
    ex: &[exports::Export],
) -> Result<ExitCode, Error> {
    let (stage, workflow) = (t.stage, t.workflow);
    let c = load(g, place, t.playbook)?;
    let input = parse_json(input, "--input")?;
    let upstream = upstream(up)?;
    let agents = agents(place)?;
    let state = place.out.join("state");
    let mut rt = Runtime::open(&state)?;
    let opts = RunOptions {
        requester: format!("argo:workflow/{workflow}"),
        allow_unenforced_guardrails: false,
    };
    let uid = Some(t.uid).filter(|u| !u.is_empty());
    let task = pbc_runtime::WorkflowTask {
        stage,
        upstream: &upstream,
        uid,
    };
    let r = rt.run_workflow_stage(&c, &agents, &task, input, &opts);
    crate::notifications::deliver(&mut rt);
    let r = r?;
    print_audit(&rt, &r.run)?;
    let Some(s) = r.stage(stage) else {
        return Err(Error::Store(format!("stage `{stage}` vanished")));
    };
    eprintln!("stage {stage}: {}", s.status.as_str());
    if let Some(e) = &s.error {
        eprintln!("  {e}");
    }
    if let Some(rb) = &r.runbook {
        eprint!("{rb}");
    }
    match s.status {
        StageStatus::Passed => {
            let out = s.output.clone().unwrap_or(Value::Null);
            exports::write(&place.out, Some(&out), &out, ex)?;
            Ok(ExitCode::SUCCESS)
        }
        StageStatus::Skipped => Ok(ExitCode::SUCCESS),
        _ => Ok(ExitCode::from(1)),
    }
}

/// The run's audit entries on standard output, one JSON object a line, as the log holds
/// them (the pod's log). With a shared PostgreSQL store the log holds every pod's runs: only
/// this one's lines are printed.
fn print_audit(rt: &Runtime, run: &str) -> Result<(), Error> {
    let text = rt.audit_text(AUDIT_READ_MAX)?;
    let mut out = String::new();
    for line in text.lines() {
        let ours = serde_json::from_str::<Value>(line)
            .ok()
            .is_some_and(|v| v.get("run").and_then(Value::as_str) == Some(run));
        if ours {
            out.push_str(line);
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(())
}
