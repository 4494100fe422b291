//! One stage of an Argo workflow (`pbc runner run`): a run of that stage alone, the outputs of
//! the stages the workflow ran before it given, its gates left to the workflow's suspends.
//!
//! Everything else is `pbc run`'s: `when`, risk, guardrails, rate limits, policies, the
//! executor, output-schema validation, redaction and the audit entries. A question the
//! workflow has no suspend for (a policy's `require-approval`) fails the stage (fail closed),
//! and the on-failure path is the exit handler's, not the stage's.

use super::Runtime;
use super::create::How;
use crate::agents::Agents;
use crate::load::Compiled;
use crate::report::{RunOptions, RunReport};
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;

impl Runtime {
    /// Runs stage `stage` of `c` as one task of a workflow: `upstream` holds the outputs of
    /// the stages done before it (a stage not named there was skipped or did not run).
    pub fn run_workflow_stage(
        &mut self,
        c: &Compiled,
        agents: &Agents,
        stage: &str,
        input: Value,
        upstream: &BTreeMap<String, Value>,
        opts: &RunOptions,
    ) -> Result<RunReport> {
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
        let n = self.prepare(c, agents, input, opts, how)?;
        self.commit(|tx| Self::insert(tx, &n))?;
        self.drive(&n.id, None)?;
        self.report(&n.id)
    }
}
