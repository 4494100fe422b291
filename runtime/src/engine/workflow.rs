//! One stage of an Argo workflow (`pbc runner run`): a run of that stage alone, the outputs of
//! the stages the workflow ran before it given, its gates left to the workflow's suspends.
//!
//! Everything else is `pbc run`'s: `when`, risk, guardrails, rate limits, policies, the
//! executor, output-schema validation, redaction and the audit entries. A question the
//! workflow has no suspend for (a policy's `require-approval`) fails the stage (fail closed),
//! and the on-failure path is the exit handler's, not the stage's: [`Runtime::rollback_workflow`]
//! finds the workflow's stage runs in a shared store and undoes the completed ones.

use super::Runtime;
use super::create::How;
use crate::agents::Agents;
use crate::db::params;
use crate::load::Compiled;
use crate::report::{RunOptions, RunReport};
use crate::report::{RunStatus, StageStatus};
use crate::{Error, Result};
use pbc_compiler::model::OnFailure;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the exit handler's on-failure path did ([`Runtime::rollback_workflow`]).
#[derive(Debug, Default)]
pub struct WorkflowRollback {
    /// The stage runs of the workflow found in the store.
    pub runs: usize,
    /// The runs an undo step was tried for (their audit entries are the pod's log).
    pub touched: Vec<String>,
    /// Stages undone, latest first.
    pub undone: Vec<String>,
    /// `STAGE: why`, for each undo step that failed or was not run again.
    pub failed: Vec<String>,
}

/// One task of a workflow: which stage, what the stages before it gave.
pub struct WorkflowTask<'a> {
    pub stage: &'a str,
    /// The outputs of the stages done before it (a stage not named here was skipped or did
    /// not run).
    pub upstream: &'a BTreeMap<String, Value>,
    /// The workflow's uid (`{{workflow.uid}}`), kept with the run: `${execution.id}`, and how
    /// the exit handler finds the workflow's stage runs.
    pub uid: Option<&'a str>,
}

impl Runtime {
    /// Runs stage `t.stage` of `c` as one task of a workflow.
    pub fn run_workflow_stage(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        t: &WorkflowTask<'_>,
        input: Value,
        opts: &RunOptions,
    ) -> Result<RunReport> {
        let (stage, upstream, uid) = (t.stage, t.upstream, t.uid);
        if c.playbook.stage(stage).is_none() {
            return Err(Error::Usage(format!(
                "playbook `{}` has no stage `{stage}`",
                c.name()
            )));
        }
        if upstream.contains_key(stage) {
            return Err(Error::Usage(format!(
                "stage `{stage}` is given as its own upstream"
            )));
        }
        let how = How {
            only: Some(stage.to_string()),
            taken: &[],
            fire: None,
            upstream: Some(upstream),
        };
        let mut n = self.prepare(c, agents, input, opts, how)?;
        n.frozen.workflow_uid = uid.filter(|u| !u.is_empty()).map(String::from);
        self.commit(|tx| Self::insert(tx, &n))?;
        self.drive(&n.id, None)?;
        self.report(&n.id)
    }

    /// The on-failure path of an Argo workflow, run by its exit handler: with
    /// `revert-to-previous`, the undo steps of the stages the workflow completed, latest
    /// first, each at most once. The stages are the runs its pods recorded in this store
    /// (requester `argo:workflow/WORKFLOW`, the workflow's `uid`); `not_completed` names
    /// stages whose task passed but whose gate then rejected or expired (they did not
    /// complete, as in `pbc run`). Only a store the pods share (PostgreSQL) holds them.
    pub fn rollback_workflow(
        &mut self,
        playbook: &str,
        workflow: &str,
        uid: &str,
        not_completed: &BTreeSet<String>,
    ) -> Result<WorkflowRollback> {
        let requester = format!("argo:workflow/{workflow}");
        let ids: Vec<String> = self.store.read(|c| {
            let mut st = c
                .prepare("SELECT id FROM runs WHERE playbook = ?1 AND requester = ?2 ORDER BY created_at, id")
                .map_err(|e| Error::Store(e.to_string()))?;
            st.query_map(params![playbook, requester], |r| r.get(0))
                .map_err(|e| Error::Store(e.to_string()))?
                .collect::<std::result::Result<Vec<String>, _>>()
                .map_err(|e| Error::Store(e.to_string()))
        })?;
        let mut out = WorkflowRollback::default();
        // (finished at, stage index, run): the completed stages with an undo step.
        let mut done: Vec<(i64, usize, String)> = Vec::new();
        for id in ids {
            let live = self.load_live(&id)?;
            let f = &live.run.frozen;
            if !f.workflow || f.workflow_uid.as_deref() != Some(uid) {
                continue;
            }
            out.runs += 1;
            let revert = live
                .c
                .playbook
                .spec
                .rollback
                .as_ref()
                .is_some_and(|r| r.on_failure.value == OnFailure::RevertToPrevious);
            let Some(stage) = f.only_stage.as_deref() else {
                continue;
            };
            let Some(i) = live.stages.iter().position(|s| s.name == stage) else {
                continue;
            };
            let row = &live.stages[i];
            let has_step = live
                .c
                .playbook
                .spec
                .stages
                .get(i)
                .is_some_and(|s| s.rollback.is_some());
            if revert
                && has_step
                && row.status == StageStatus::Passed
                && !not_completed.contains(stage)
            {
                done.push((row.finished_at.unwrap_or(0), i, id.clone()));
            }
        }
        done.sort();
        for (_, i, id) in done.into_iter().rev() {
            let mut live = self.load_live(&id)?;
            let name = live.stages[i].name.clone();
            out.touched.push(id.clone());
            match self.undo_stage(&mut live, i)? {
                Ok(()) => {
                    out.undone.push(name.clone());
                    let now = self.now();
                    let msg = format!("stage {name} rolled back by the workflow's exit handler");
                    self.commit(|tx| {
                        Self::save_run_status(tx, &id, RunStatus::RolledBack, Some(&msg), now)
                    })?;
                }
                Err(why) => out.failed.push(format!("{name}: {why}")),
            }
        }
        Ok(out)
    }
}
