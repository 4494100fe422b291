//! Policies on a stage's output: a policy with `check-output: true` is evaluated again once
//! the executor has answered (and its output schema and guardrails have passed), before the
//! output is stored or anything reads it. Its input document is the stage's, with `phase:
//! "output"` and `output`. A deny refuses the stage and the output is withheld (kept
//! nowhere but as a sha256 in the audit log); `require-approval` cannot be granted for an
//! output already produced, so it refuses too (fail closed).

use super::{Live, Runtime};
use crate::Result;
use crate::audit;
use crate::store::to_json;
use pbc_policy::Verdict;
use serde_json::{Value, json};

impl Runtime {
    /// Checks `output` of stage `i` against its output-checking policies. Returns true when
    /// the output may be kept; false when the stage was refused.
    pub(super) fn check_output_policies(
        &mut self,
        live: &mut Live,
        i: usize,
        output: &Value,
    ) -> Result<bool> {
        let stage = live.c.playbook.spec.stages[i].clone();
        let set = live.c.frozen.config.policies.clone();
        let names = set.for_stage(
            stage.policy.as_ref().map(|p| p.value.as_str()),
            stage.action().is_some(),
        );
        let names = set.output_checks(&names);
        if names.is_empty() {
            return Ok(true);
        }
        let history = match stage.action() {
            Some(a) => self.action_history(&a.value.to_string())?,
            None => Vec::new(),
        };
        let mut input = self.policy_input(live, i, &history)?;
        input["phase"] = json!("output");
        input["output"] = output.clone();
        let mut results = self.evaluate_policies(live, &set, names, &input, &history);
        for r in &mut results {
            if r.decision.decision == Verdict::RequireApproval {
                r.decision.decision = Verdict::Deny;
                r.decision.reasons.push(
                    "an approval cannot be asked for an output already produced: denied (fail closed)"
                        .to_string(),
                );
            }
        }
        self.store_decisions(live, i, &results, "output")?;
        let Some(denied) = results
            .iter()
            .find(|r| r.decision.decision == Verdict::Deny)
        else {
            return Ok(true);
        };
        live.stages[i].output = None;
        let digest = audit::sha256_hex(to_json(output).as_bytes());
        self.refuse(live, i, denied, "output")?;
        self.record(
            live,
            i,
            "stage-output-withheld",
            "pbc",
            json!({"output_sha256": digest, "policy": denied.name}),
        )?;
        Ok(false)
    }
}
