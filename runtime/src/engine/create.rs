//! Creating runs: the input checked against the playbook's schema, every executor the run
//! may need present, the role map frozen, then the run's rows and first audit entry written
//! in one transaction — alone, several at once with an idempotency key's answer, or with a
//! schedule fire claimed.

use super::{FrozenRun, KillSwitch, Live, RunRow, Runtime, StageRow, random_hex, run_guards};
use crate::agents::Agents;
use crate::audit;
use crate::db::params;
use crate::guardrails::Redactor;
use crate::load::{Compiled, thaw};
use crate::report::{RunOptions, RunStatus, StageStatus};
use crate::store::to_json;
use crate::{Error, Result};
use pbc_compiler::model::Risk;
use serde_json::{Value, json};

/// What `begin_remembered` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Begun {
    /// The runs started, or (replayed) those the first request started.
    pub runs: Vec<String>,
    /// The key was remembered already: nothing was started.
    pub replayed: bool,
}

/// The run ids of a remembered `{"runs": [...]}` answer.
fn runs_of(answer: &str) -> Vec<String> {
    serde_json::from_str::<Value>(answer)
        .ok()
        .and_then(|v| {
            v["runs"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// What else shapes a new run: one stage only, ids already taken by runs prepared beside it,
/// a schedule fire to claim.
pub(super) struct How<'a> {
    pub(super) only: Option<String>,
    pub(super) taken: &'a [String],
    pub(super) fire: Option<i64>,
    /// In a workflow (`pbc runner`): the outputs of the stages done before (absent: skipped).
    pub(super) upstream: Option<&'a std::collections::BTreeMap<String, Value>>,
}

/// A run prepared by `prepare`, written by `insert`.
pub(super) struct NewRun {
    pub(super) id: String,
    playbook: String,
    requester: String,
    input: Value,
    pub(super) frozen: FrozenRun,
    rows: Vec<StageRow>,
    entry: crate::audit::AuditEntry,
    log_to: Vec<String>,
    sinks: std::collections::BTreeMap<String, pbc_compiler::config::SinkDef>,
    /// `audit.retention` in seconds (Object Lock on `s3` sinks).
    retention: Option<u64>,
    sink_settings: crate::delivery::Settings,
    now: i64,
    /// A schedule fire (its due time) claimed in the same transaction.
    fire: Option<i64>,
}

impl Runtime {
    /// Creates a run (input checked, executors checked, rows and the first audit entry
    /// committed) without executing anything; returns its id.
    pub(super) fn create(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        input: Value,
        opts: &RunOptions,
        only: Option<String>,
    ) -> Result<String> {
        self.create_fired(c, agents, input, opts, only, None)
    }

    /// [`Self::create`]; with `fire`, the schedule fire due then is claimed in the run's
    /// transaction (refused, nothing written, when it was claimed before).
    pub(super) fn create_fired(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        input: Value,
        opts: &RunOptions,
        only: Option<String>,
        fire: Option<i64>,
    ) -> Result<String> {
        let how = How {
            only,
            taken: &[],
            fire,
            upstream: None,
        };
        let n = self.prepare(c, agents, input, opts, how)?;
        self.commit(|tx| Self::insert(tx, &n))?;
        Ok(n.id)
    }

    /// Creates a run of each `(playbook, input)` in one transaction, together with the answer
    /// `{"runs": [ID, ...]}` remembered for `key` (an idempotency key): either every run
    /// exists and the key answers them, or nothing does. A key already remembered (by a
    /// request that raced this one) starts nothing and answers as the first time.
    pub fn begin_remembered(
        &mut self,
        starts: &[(&Compiled, Value)],
        agents: &Agents,
        opts: &RunOptions,
        key: Option<&str>,
    ) -> Result<Begun> {
        let mut news: Vec<NewRun> = Vec::with_capacity(starts.len());
        for (c, input) in starts {
            let taken: Vec<String> = news.iter().map(|n| n.id.clone()).collect();
            let how = How {
                only: None,
                taken: &taken,
                fire: None,
                upstream: None,
            };
            news.push(self.prepare(c, agents, input.clone(), opts, how)?);
        }
        let ids: Vec<String> = news.iter().map(|n| n.id.clone()).collect();
        let answer = json!({"runs": ids}).to_string();
        let memo = key.map(super::service::idem_key);
        self.commit(|tx| {
            if let Some(m) = &memo
                && let Some(first) = tx.meta_get(m)?
            {
                return Ok(Begun {
                    runs: runs_of(&first),
                    replayed: true,
                });
            }
            for n in &news {
                Self::insert(tx, n)?;
            }
            if let Some(m) = &memo {
                tx.meta_set(m, &answer)?;
            }
            Ok(Begun {
                runs: ids.clone(),
                replayed: false,
            })
        })
    }

    /// Everything a new run's rows hold, checked, not yet written.
    pub(super) fn prepare(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        mut input: Value,
        opts: &RunOptions,
        how: How<'_>,
    ) -> Result<NewRun> {
        let How {
            only,
            taken,
            fire,
            upstream,
        } = how;
        self.check_kill_switch("starting a run")?;
        // The input schema's defaults filled in, or the run refused before anything exists.
        crate::input::check(c, &mut input)?;
        // The role map the run freezes: `.pbc.yaml` `roles:` over the agents file's.
        let agents = &agents.with_config_roles(&c.frozen.config.roles);
        self.apply_deadlines()?;
        // Every executor the run may need must exist (high-risk stages never run).
        let pb = &c.playbook;
        let mut missing = Vec::new();
        for s in &pb.spec.stages {
            if s.risk(&pb.spec) == Risk::High || only.as_ref().is_some_and(|o| *o != s.name.value) {
                continue;
            }
            if let Some(a) = s.agent()
                && !agents.agents.contains_key(&a.value)
            {
                missing.push(format!("agent `{}` (stage {})", a.value, s.name.value));
            }
            if let Some(a) = s.action()
                && agents.action(&a.value.to_string()).is_none()
            {
                missing.push(format!("action `{}` (stage {})", a.value, s.name.value));
            }
        }
        if !missing.is_empty() && pb.spec.risk() != Risk::High {
            return Err(Error::Usage(format!(
                "the agents file{} has no executor for {}",
                agents
                    .source
                    .as_ref()
                    .map(|p| format!(" {}", p.display()))
                    .unwrap_or_default(),
                missing.join(", ")
            )));
        }
        let id = loop {
            let id = format!("run-{}", random_hex(8));
            if self.load_run(&id).is_err() && !taken.contains(&id) {
                break id;
            }
        };
        let now = self.now();
        let frozen = FrozenRun {
            playbook: c.frozen.clone(),
            agents: agents.clone(),
            allow_unenforced: opts.allow_unenforced_guardrails,
            only_stage: only.clone(),
            workflow: upstream.is_some(),
            workflow_uid: None,
        };
        let run = RunRow {
            id: id.clone(),
            playbook: c.name().to_string(),
            status: RunStatus::Running,
            requester: opts.requester.clone(),
            input: input.clone(),
            frozen: frozen.clone(),
            created_at: now,
            stop_requested: None,
            message: None,
            rollback_done: false,
        };
        let stages: Vec<StageRow> = pb
            .spec
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let done = upstream.and_then(|u| u.get(&s.name.value));
                StageRow {
                    name: s.name.value.clone(),
                    idx: i,
                    status: match &only {
                        _ if done.is_some() => StageStatus::Passed,
                        Some(o) if *o != s.name.value => StageStatus::Skipped,
                        _ => StageStatus::Pending,
                    },
                    output: done.cloned(),
                    guardrails: Vec::new(),
                    findings: Vec::new(),
                    error: None,
                    attempts: 0,
                    approval_id: None,
                    risk_approved: false,
                    gate_approved: false,
                    started_at: None,
                    finished_at: None,
                }
            })
            .collect();
        let live = Live {
            redactor: Redactor::new(run_guards(c)),
            run,
            c: thaw(&c.frozen)?,
            agents: agents.clone(),
            stages,
        };
        let previous = self.rejections(c.name())?;
        let mut details = json!({
            "source": c.frozen.source,
            "requester": opts.requester,
            "input_sha256": audit::sha256_hex(to_json(&input).as_bytes()),
            "agents": agents.source.as_ref().map(|p| p.display().to_string()),
            "allow_unenforced_guardrails": opts.allow_unenforced_guardrails,
        });
        if let Some(o) = &only {
            details["only_stage"] = json!(o);
        }
        if let Some(due) = fire {
            details["scheduled_for"] = json!(crate::clock::rfc3339(due));
        }
        if !previous.is_empty() {
            details["previous_rejections"] = json!(previous.len());
        }
        let e = self.entry(&live, None, "run-started", &opts.requester, details);
        let rows = live.stages.clone();
        let log_to: Vec<String> = live
            .c
            .playbook
            .spec
            .audit
            .as_ref()
            .map(|a| a.log_to.iter().map(|s| s.value.clone()).collect())
            .unwrap_or_default();
        let sinks = live.c.frozen.config.audit_sinks.clone();
        let retention = live
            .c
            .playbook
            .spec
            .audit
            .as_ref()
            .and_then(|a| a.retention.as_ref())
            .map(|r| r.value.seconds);
        let sink_settings = crate::delivery::Settings {
            ca_file: live.c.frozen.config.tls_ca_file.clone(),
            public_url: None,
        };
        Ok(NewRun {
            id,
            playbook: live.run.playbook,
            requester: opts.requester.clone(),
            input,
            frozen,
            rows,
            entry: e,
            log_to,
            sinks,
            retention,
            sink_settings,
            now,
            fire,
        })
    }

    /// Writes a prepared run (refused while the kill switch is engaged).
    pub(super) fn insert(tx: &crate::store::Tx<'_>, n: &NewRun) -> Result<()> {
        if let Some(due) = n.fire
            && !super::schedule::claim(tx, &n.playbook, due, &n.id)?
        {
            return Err(super::schedule::claimed());
        }
        crate::delivery::sinks::register(
            tx,
            &n.id,
            &n.log_to,
            &n.sinks,
            n.retention,
            &n.sink_settings,
        )?;
        KillSwitch::refuse_if_engaged(tx, "starting a run")?;
        tx.conn()
            .execute(
                "INSERT INTO runs(id, playbook, status, requester, input, frozen, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![n.id, n.playbook, RunStatus::Running.as_str(), n.requester, to_json(&n.input), to_json(&n.frozen), n.now],
            )
            .map_err(|e| Error::Store(e.to_string()))?;
        for s in &n.rows {
            Self::save_stage(tx, &n.id, s)?;
        }
        tx.audit(n.entry.clone())?;
        Ok(())
    }
}
