//! Policies before a stage executes: after its gate is decided and just before the
//! executor runs, the stage's own policy and (for an action) the always-on ones decide.
//! A deny refuses the stage; `require-approval` makes it a manual gate for this run
//! (approvers from the decision); every decision is audited (`policy-decision`, and
//! `policy-violation` for a deny) and kept in the store (`policy_decisions`).

use super::{GateNeed, Live, Runtime, approvers_of, interpolate};
use crate::clock::rfc3339;
use crate::db::params;
use crate::report::{ApprovalKind, ApproverRef, StageStatus};
use crate::store::to_json;
use crate::{Error, Result};
use pbc_policy::{Decision, HistoryRow, Verdict};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// The longest window of `history` (30 days).
const HISTORY_MS: i64 = 30 * 86_400_000;

/// One policy's decision for a stage, as evaluated.
pub(super) struct Evaluated {
    pub(super) name: String,
    kind: &'static str,
    sha256: String,
    pub(super) decision: Decision,
    elapsed_us: u64,
}

impl Runtime {
    /// The executed stages of `action` over the last 30 days, across runs.
    pub(super) fn action_history(&self, action: &str) -> Result<Vec<HistoryRow>> {
        let since = self.now() - HISTORY_MS;
        self.store.read(|c| {
            let mut st = c
                .prepare("SELECT at, params FROM action_history WHERE action = ?1 AND at > ?2")
                .map_err(|e| Error::Store(e.to_string()))?;
            let rows = st
                .query_map(params![action, since], |r| {
                    Ok((r.get::<i64>(0)?, r.get::<String>(1)?))
                })
                .map_err(|e| Error::Store(e.to_string()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Store(e.to_string()))?;
            Ok(rows
                .into_iter()
                .map(|(at, p)| HistoryRow {
                    at,
                    params: serde_json::from_str(&p).unwrap_or(Value::Null),
                })
                .collect())
        })
    }

    /// The input document of stage `i` (`schemas/policy-input.schema.json`).
    pub(super) fn policy_input(
        &self,
        live: &Live,
        i: usize,
        history: &[HistoryRow],
    ) -> Result<Value> {
        let pb = &live.c.playbook;
        let stage = &pb.spec.stages[i];
        let scope = self.scope(live, i, false);
        let params = stage
            .params
            .as_ref()
            .map(|p| interpolate(&p.to_json(), &scope))
            .unwrap_or_else(|| json!({}));
        let name = stage.name.value.as_str();
        let approvals: Vec<Value> = self
            .load_approvals("run = ?1 AND status = 'approved'", &live.run.id)?
            .into_iter()
            .filter(|a| a.stage.as_deref().is_none_or(|s| s == name))
            .map(|a| {
                json!({"stage": a.stage, "kind": a.kind.as_str(),
                       "by": a.decided_by.unwrap_or_default(), "role": a.decided_role})
            })
            .collect();
        let mut compliance: Vec<String> = pb
            .metadata
            .compliance
            .iter()
            .map(|t| t.value.clone())
            .collect();
        for t in &stage.compliance {
            if !compliance.contains(&t.value) {
                compliance.push(t.value.clone());
            }
        }
        let now = self.now();
        Ok(json!({
            "playbook": pb.name(),
            "environment": live.c.frozen.config.policies.environment,
            "stage": name,
            "kind": if stage.action().is_some() { "action" } else { "agent" },
            "action": stage.action().map(|a| a.value.to_string()),
            "agent": stage.agent().map(|a| a.value.clone()),
            "history": pbc_policy::aggregates(history, &params, now),
            "params": params,
            "requester": live.run.requester,
            "approvals": approvals,
            "risk": stage.risk(&pb.spec).as_str(),
            "compliance": compliance,
            "time": rfc3339(now),
        }))
    }

    /// Evaluates the stage's policies. Returns true when the stage may execute now.
    pub(super) fn enforce_policies(&mut self, live: &mut Live, i: usize) -> Result<bool> {
        let stage = live.c.playbook.spec.stages[i].clone();
        let is_action = stage.action().is_some();
        let set = live.c.frozen.config.policies.clone();
        let names = set.for_stage(stage.policy.as_ref().map(|p| p.value.as_str()), is_action);
        if names.is_empty() {
            return Ok(true);
        }
        let action = stage.action().map(|a| a.value.to_string());
        let history = match &action {
            Some(a) => self.action_history(a)?,
            None => Vec::new(),
        };
        let mut input = self.policy_input(live, i, &history)?;
        input["phase"] = json!("before");
        let results = self.evaluate_policies(live, &set, names, &input, &history);
        self.store_decisions(live, i, &results, "before")?;
        let sname = stage.name.value.clone();
        let rid = live.run.id.clone();
        if let Some(denied) = results
            .iter()
            .find(|r| r.decision.decision == Verdict::Deny)
        {
            self.refuse(live, i, denied, "before")?;
            return Ok(false);
        }
        let asking: Vec<&Evaluated> = results
            .iter()
            .filter(|r| r.decision.decision == Verdict::RequireApproval)
            .collect();
        if asking.is_empty() {
            return Ok(true);
        }
        // An approval this run already granted for the stage's policies settles it.
        let granted = self
            .load_approvals("run = ?1 AND kind = 'policy' AND status = 'approved'", &rid)?
            .into_iter()
            .find(|a| a.stage.as_deref() == Some(sname.as_str()));
        if let Some(a) = granted {
            let signed = match crate::chain::confirm_granted(&self.store, &a)? {
                Ok(s) => s,
                Err(m) => {
                    self.stage_failed(live, i, &m)?;
                    return Ok(false);
                }
            };
            if let Err(m) = self.confirm_signature(live, &a, &signed) {
                self.stage_failed(live, i, &m)?;
                return Ok(false);
            }
            return Ok(true);
        }
        let mut approvers: Vec<ApproverRef> = Vec::new();
        for r in &asking {
            for a in &r.decision.approvers {
                let a = if a.contains('@') {
                    ApproverRef::User(a.clone())
                } else {
                    ApproverRef::Role(a.clone())
                };
                if !approvers.contains(&a) {
                    approvers.push(a);
                }
            }
        }
        if approvers.is_empty() {
            approvers = approvers_of(stage.approvers.as_ref());
        }
        if approvers.is_empty() {
            approvers = approvers_of(live.c.playbook.spec.approvers.as_ref());
        }
        let why = asking
            .iter()
            .map(|r| {
                format!(
                    "policy `{}` requires an approval: {}",
                    r.name,
                    if r.decision.reasons.is_empty() {
                        "(no reason given)".to_string()
                    } else {
                        r.decision.reasons.join("; ")
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.open_approval(
            live,
            Some(i),
            ApprovalKind::Policy,
            GateNeed {
                approvers,
                why,
                min: 1,
            },
            None,
        )?;
        Ok(false)
    }

    /// Evaluates each named policy on `input`; an undefined name, a policy that does not
    /// compile, an error or a timeout denies (fail closed). Reasons are redacted.
    pub(super) fn evaluate_policies(
        &self,
        live: &Live,
        set: &pbc_policy::PolicySet,
        names: Vec<String>,
        input: &Value,
        history: &[HistoryRow],
    ) -> Vec<Evaluated> {
        let now = self.now();
        let mut results = Vec::new();
        for name in names {
            let started = Instant::now();
            let (kind, sha256, decision) = match set.policies.get(&name) {
                None => (
                    "undefined",
                    String::new(),
                    Decision::deny(format!(
                        "policy `{name}` is not defined in the configuration this run started with (fail closed)"
                    )),
                ),
                Some(p) => match p.compile() {
                    Ok(c) => (c.kind(), c.sha256.clone(), c.evaluate(input, history, now)),
                    Err(errs) => (
                        p.kind_name(),
                        p.sha256.clone(),
                        Decision::deny(format!(
                            "policy `{name}` does not compile: {} (an error denies)",
                            errs.first().map(|e| e.message.as_str()).unwrap_or("")
                        )),
                    ),
                },
            };
            let elapsed_us = started.elapsed().as_micros() as u64;
            let mut decision = decision;
            decision.reasons = decision
                .reasons
                .iter()
                .map(|r| live.redactor.text(r))
                .collect();
            results.push(Evaluated {
                name,
                kind,
                sha256,
                decision,
                elapsed_us,
            });
        }
        results
    }

    /// Every decision, audited (`policy-decision`, and `policy-violation` for a deny) and
    /// stored (`policy_decisions`) in one transaction. `phase`: `before` the executor runs,
    /// or on its `output`.
    pub(super) fn store_decisions(
        &mut self,
        live: &Live,
        i: usize,
        results: &[Evaluated],
        phase: &str,
    ) -> Result<()> {
        let stage = &live.c.playbook.spec.stages[i];
        let sname = stage.name.value.clone();
        let now = self.now();
        let mut entries = Vec::new();
        for r in results {
            let details = json!({
                "policy": r.name,
                "kind": r.kind,
                "sha256": r.sha256,
                "phase": phase,
                "decision": r.decision.decision.as_str(),
                "reasons": r.decision.reasons,
                "approvers": r.decision.approvers,
                "evaluation_ms": r.elapsed_us as f64 / 1000.0,
            });
            entries.push(self.entry(
                live,
                Some(&sname),
                "policy-decision",
                "pbc",
                details.clone(),
            ));
            if r.decision.decision == Verdict::Deny {
                entries.push(self.entry(live, Some(&sname), "policy-violation", "pbc", details));
            }
        }
        let rid = live.run.id.clone();
        let rows: Vec<(String, &'static str, String, String, u64)> = results
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.kind,
                    r.decision.decision.as_str().to_string(),
                    to_json(&r.decision.reasons),
                    r.elapsed_us,
                )
            })
            .collect();
        let risk = stage.risk(&live.c.playbook.spec).as_str();
        self.commit(|tx| {
            for (policy, kind, decision, reasons, us) in &rows {
                tx.conn()
                    .execute(
                        "INSERT INTO policy_decisions(run, stage, policy, kind, decision, reasons, elapsed_us, risk, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![rid, sname, policy, kind, decision, reasons, *us as i64, risk, now],
                    )
                    .map_err(|e| Error::Store(e.to_string()))?;
            }
            for e in entries {
                tx.audit(e)?;
            }
            Ok(())
        })
    }

    /// Stage `i` refused by `denied`'s decision.
    pub(super) fn refuse(
        &mut self,
        live: &mut Live,
        i: usize,
        denied: &Evaluated,
        phase: &str,
    ) -> Result<()> {
        live.stages[i].status = StageStatus::Refused;
        live.stages[i].error = Some(format!(
            "refused by policy `{}`{}: {}",
            denied.name,
            if phase == "output" {
                " on its output"
            } else {
                ""
            },
            denied.decision.reasons.join("; ")
        ));
        live.stages[i].finished_at = Some(self.now());
        self.record(
            live,
            i,
            "stage-refused",
            "pbc",
            json!({"policy": denied.name, "phase": phase, "reasons": denied.decision.reasons}),
        )
    }

    /// Per stage of a run: the policy decision that settled it (a deny if one denied, else
    /// the latest), as `{"name", "decision", "reasons"}`.
    pub(super) fn stage_policies(&self, run: &str) -> Result<BTreeMap<String, Value>> {
        let rows: Vec<(String, String, String, String)> = self.store.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT stage, policy, decision, reasons FROM policy_decisions WHERE run = ?1 ORDER BY seq",
                )
                .map_err(|e| Error::Store(e.to_string()))?;
            st.query_map(params![run], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(|e| Error::Store(e.to_string()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Store(e.to_string()))
        })?;
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for (stage, policy, decision, reasons) in rows {
            let keep = out
                .get(&stage)
                .is_some_and(|v| v["decision"] == "deny" && decision != "deny");
            if keep {
                continue;
            }
            let reasons: Value = serde_json::from_str(&reasons).unwrap_or(json!([]));
            out.insert(
                stage,
                json!({"name": policy, "decision": decision, "reasons": reasons}),
            );
        }
        Ok(out)
    }
}
