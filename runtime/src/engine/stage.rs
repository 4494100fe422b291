//! Executing one stage: its guardrails on the input, its executor (agent or action, with
//! timeout and retries), the output validated against its schema and checked by the
//! guardrails, then the agent's gate; a failed or blocked stage ends the run.

use super::{Live, Runtime, interpolate};
use crate::agents::ExecutorSpec;
use crate::audit;
use crate::db::params;
use crate::exec::{self, ChatCall, ExecError};
use crate::guardrails::{Finding, Guard, Redactor, redact_value};
use crate::load::Compiled;
use crate::report::{ApprovalKind, RunStatus, StageStatus};
use crate::store::to_json;
use crate::{Error, Result};
use pbc_compiler::model::Stage;
use serde_json::{Value, json};
use std::time::Duration;

/// An executor's timeout when neither the stage nor the agents file sets one.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Guardrails for the run's redactor: every enforceable guardrail the playbook names, and the
/// always-on ones.
pub(super) fn run_guards(c: &Compiled) -> Vec<Guard> {
    let defs = &c.frozen.config.guardrail_defs;
    let mut names: Vec<String> = c.frozen.config.always_on.clone();
    for s in &c.playbook.spec.stages {
        for g in &s.guardrails {
            if !names.contains(&g.value) {
                names.push(g.value.clone());
            }
        }
    }
    names
        .iter()
        .filter_map(|n| Guard::resolve(n, defs))
        .collect()
}

/// A stage's guardrails (its own, then the always-on ones) and those it cannot enforce.
pub(super) fn stage_guards(c: &Compiled, s: &Stage) -> (Vec<Guard>, Vec<String>) {
    let defs = &c.frozen.config.guardrail_defs;
    let mut names: Vec<String> = s.guardrails.iter().map(|g| g.value.clone()).collect();
    for a in &c.frozen.config.always_on {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    let mut guards = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        match Guard::resolve(&n, defs) {
            Some(g) => guards.push(g),
            None => missing.push(n),
        }
    }
    (guards, missing)
}

impl Runtime {
    /// Runs the stage's executor and guardrails, validates the output, then its gate.
    pub(super) fn execute(&mut self, live: &mut Live, i: usize, guards: &[Guard]) -> Result<()> {
        let stage = live.c.playbook.spec.stages[i].clone();
        let name = stage.name.value.clone();
        // A gate or risk the store says was approved must have its decision in the chain.
        for (flag, what, kinds) in [
            (live.stages[i].gate_approved, "gate", &["gate"][..]),
            (
                live.stages[i].risk_approved,
                "risk",
                &["gate", "stage-risk"][..],
            ),
        ] {
            if flag
                && let Err(m) =
                    crate::chain::confirm_stage(&self.store, &live.run.id, &name, what, kinds)?
            {
                return self.stage_failed(live, i, &m);
            }
        }
        let scope = self.scope(live, i, false);
        let params = stage
            .params
            .as_ref()
            .map(|p| interpolate(&p.to_json(), &scope))
            .unwrap_or_else(|| json!({}));
        let prompt = stage
            .prompt
            .as_ref()
            .map(|p| match interpolate(&json!(p.value), &scope) {
                Value::String(s) => s,
                v => v.to_string(),
            });
        let context = self.context(live, i);
        // input guardrails
        let mut findings = Vec::new();
        for g in guards {
            let input = live.run.input.clone();
            for (root, data) in [
                ("input", &input),
                ("context", &context),
                ("params", &params),
            ] {
                match g.check(&name, root, data) {
                    Ok(f) => findings.extend(f),
                    Err(e) => {
                        let msg = live.redactor.text(&e);
                        return self.stage_failed(live, i, &msg);
                    }
                }
            }
        }
        if !findings.is_empty() {
            return self.block(live, i, findings, None, "input");
        }
        let request = json!({
            "playbook": live.c.playbook.name(),
            "stage": name,
            "input": live.run.input,
            "context": context,
            "params": params,
            "prompt": prompt,
        });
        let spec = match (stage.agent(), stage.action()) {
            (Some(a), _) => live.agents.agents.get(&a.value).cloned(),
            (_, Some(a)) => live.agents.action(&a.value.to_string()).cloned(),
            _ => None,
        };
        let Some(spec) = spec else {
            let msg = format!(
                "no executor for `{}` in the agents file",
                stage
                    .agent()
                    .map(|a| a.value.clone())
                    .or(stage.action().map(|a| a.value.to_string()))
                    .unwrap_or_default()
            );
            return self.stage_failed(live, i, &msg);
        };
        let timeout = match (
            stage.timeout.as_ref().map(|t| t.value.as_std()),
            spec.timeout(),
        ) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => DEFAULT_TIMEOUT,
        };
        let tries = stage.retries.as_ref().map(|r| r.value).unwrap_or(0) + 1;
        let mut last_err = String::new();
        for attempt in 0..tries {
            if self.stop_requested(&live.run.id) {
                let who = self
                    .load_run(&live.run.id)?
                    .stop_requested
                    .unwrap_or_default();
                if attempt > 0 {
                    // Between two attempts: the stage failed and is not tried again.
                    live.stages[i].status = StageStatus::Failed;
                    live.stages[i].error = Some(format!(
                        "stopped by {who} (kill switch) after attempt {attempt}: {last_err}"
                    ));
                    live.stages[i].finished_at = Some(self.now());
                    self.record(live, i, "stage-stopped", &who, json!({"attempts": attempt}))?;
                }
                return self.end_run(
                    live,
                    RunStatus::Stopped,
                    &format!("stopped by {who} (kill switch)"),
                );
            }
            let before = live.stages[i].clone();
            live.stages[i].status = StageStatus::Running;
            live.stages[i].attempts += 1;
            live.stages[i].started_at = Some(self.now());
            // The start, and for an action its rate-limit event, in one transaction.
            let action = stage.action().map(|a| a.value.to_string());
            let mut started_details = json!({"executor": spec.kind(), "attempt": attempt + 1, "params": live.redactor.value(&params)});
            if let (Some(m), Some(a)) = (&spec.mcp, &action) {
                // Which tool of which server (a command line or URL, redacted like the rest).
                started_details["tool"] = json!(m.tool_for(a));
                started_details["server"] = json!(live.redactor.text(&m.server()));
            }
            let e = self.entry(live, Some(&name), "stage-started", "pbc", started_details);
            // Redacted as the audit log is: the state keeps no secret but the run's input.
            let history_params = to_json(&live.redactor.value(&params));
            let (row, rid, sname, now) = (
                live.stages[i].clone(),
                live.run.id.clone(),
                name.clone(),
                self.now(),
            );
            // The rate limit is counted again in the transaction that records the event:
            // another process may have used the last slot since the check before the gate.
            let limit = match attempt {
                0 => self.rate_limit(live, i),
                _ => None,
            };
            let started = self.commit(|tx| {
                if let (Some(action), Some((count, window_ms))) = (&action, limit) {
                    let n: i64 = tx
                        .conn()
                        .query_row(
                            "SELECT COUNT(*) FROM rate_events WHERE action = ?1 AND at > ?2",
                            params![action, now - window_ms],
                            |r| r.get(0),
                        )
                        .map_err(|e| Error::Store(e.to_string()))?;
                    if u64::try_from(n).unwrap_or(0) >= count {
                        return Ok(false);
                    }
                }
                Self::save_stage(tx, &rid, &row)?;
                if let Some(action) = &action {
                    tx.conn()
                        .execute("INSERT INTO rate_events(action, run, stage, at) VALUES (?1, ?2, ?3, ?4)", params![action, rid, sname, now])
                        .map_err(|e| Error::Store(e.to_string()))?;
                    // What policies' history aggregates count: once per stage of a run.
                    tx.conn()
                        .execute("INSERT INTO action_history(run, stage, action, at, params) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING", params![rid, sname, action, now, history_params])
                        .map_err(|e| Error::Store(e.to_string()))?;
                }
                tx.audit(e)?;
                Ok(true)
            })?;
            if !started {
                // Lost the last slot to another process: nothing was recorded; the next step
                // finds the limit reached and fails or waits as configured.
                live.stages[i] = before;
                return Ok(());
            }
            let result = self.invoke(
                &spec,
                &request,
                prompt.as_deref().unwrap_or(""),
                action.as_deref(),
                &name,
                timeout,
                live,
            );
            let out = match result {
                Err(ExecError::Stopped) => {
                    let who = self
                        .load_run(&live.run.id)?
                        .stop_requested
                        .unwrap_or_default();
                    live.stages[i].status = StageStatus::Failed;
                    live.stages[i].error = Some(format!(
                        "stopped by {who} (kill switch) while running; its executor was killed"
                    ));
                    self.record(live, i, "stage-stopped", &who, json!({}))?;
                    return self.end_run(
                        live,
                        RunStatus::Stopped,
                        &format!("stopped by {who} (kill switch)"),
                    );
                }
                Err(e) => {
                    last_err = live.redactor.text(&e.to_string());
                    self.record(
                        live,
                        i,
                        "stage-attempt-failed",
                        "pbc",
                        json!({"attempt": attempt + 1, "error": last_err}),
                    )?;
                    if matches!(e, ExecError::Refused(_)) {
                        // Refused before the call: another attempt would be refused alike.
                        break;
                    }
                    continue;
                }
                Ok(v) => v,
            };
            // The output is validated before anything reads it (guardrails included).
            if let Some((file, v)) = live.c.validators.get(i).and_then(Option::as_ref) {
                let errors: Vec<String> = v
                    .iter_errors(&out)
                    .take(20)
                    .map(|e| {
                        let at = e.instance_path().to_string();
                        format!("{}: {e}", if at.is_empty() { "/".to_string() } else { at })
                    })
                    .collect();
                if !errors.is_empty() {
                    last_err = live.redactor.text(&format!(
                        "the output does not match {file}:\n{}",
                        errors.join("\n")
                    ));
                    self.record(
                        live,
                        i,
                        "stage-attempt-failed",
                        "pbc",
                        json!({"attempt": attempt + 1, "error": last_err}),
                    )?;
                    continue;
                }
            }
            let mut findings = Vec::new();
            for g in guards {
                match g.check(&name, "output", &out) {
                    Ok(f) => findings.extend(f),
                    Err(e) => {
                        let msg = live.redactor.text(&e);
                        return self.stage_failed(live, i, &msg);
                    }
                }
            }
            // What is stored, logged and printed: secrets redacted whatever guardrails the
            // stage lists (the executor's own output goes nowhere else).
            let secrets = Redactor::secrets();
            if !findings.is_empty() {
                let redacted = secrets.value(&redact_value(&out, "output", &findings));
                return self.block(live, i, findings, Some(redacted), "output");
            }
            // Policies that check the output decide before it is kept.
            if !self.check_output_policies(live, i, &out)? {
                return Ok(());
            }
            let out = secrets.value(&out);
            live.stages[i].output = Some(out.clone());
            live.stages[i].error = None;
            let mut details = json!({"attempt": attempt + 1});
            if stage.audit_log.as_ref().map(|a| a.value)
                == Some(pbc_compiler::model::AuditLog::Required)
            {
                details["input"] = live.redactor.value(&request);
                details["output"] = live.redactor.value(&out);
            } else {
                details["output_sha256"] = json!(audit::sha256_hex(to_json(&out).as_bytes()));
            }
            // An agent's gate sits after its output (in a workflow: the suspend after the
            // stage's task).
            if stage.agent().is_some()
                && !live.stages[i].gate_approved
                && !live.run.frozen.workflow
                && let Some(need) = self.gate_need(live, i)
            {
                live.stages[i].status = StageStatus::WaitingApproval;
                let e = self.entry(live, Some(&name), "stage-output", "pbc", details);
                let o = live.redactor.value(&out);
                return self.open_approval_after(
                    live,
                    Some(i),
                    ApprovalKind::Gate,
                    need,
                    Some(&o),
                    Some(e),
                );
            }
            live.stages[i].status = StageStatus::Passed;
            live.stages[i].finished_at = Some(self.now());
            return self.record(live, i, "stage-passed", "pbc", details);
        }
        live.stages[i].status = StageStatus::Failed;
        live.stages[i].error = Some(last_err.clone());
        live.stages[i].finished_at = Some(self.now());
        self.record(
            live,
            i,
            "stage-failed",
            "pbc",
            json!({"error": last_err, "attempts": tries}),
        )?;
        let chans: Vec<String> = stage
            .notification
            .as_ref()
            .map(|n| n.on_failure.iter().map(|c| c.value.clone()).collect())
            .unwrap_or_default();
        self.queue_notice(
            live,
            Some(&name),
            "on-failure",
            chans,
            &format!("stage {name} failed: {last_err}"),
            json!({}),
        );
        self.fail(
            live,
            i,
            RunStatus::Failed,
            &format!("stage `{name}` failed"),
        )
    }

    /// Runs an executor once; `action` is the stage's `LAYER:FUNCTION` (an `mcp` executor's
    /// tool), `None` for an agent.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn invoke(
        &self,
        spec: &ExecutorSpec,
        request: &Value,
        prompt: &str,
        action: Option<&str>,
        stage: &str,
        timeout: Duration,
        live: &Live,
    ) -> std::result::Result<Value, ExecError> {
        let run = live.run.id.as_str();
        if let Some(m) = &spec.mcp {
            let Some(action) = action else {
                return Err(ExecError::Other(
                    "an `mcp` executor runs actions (`LAYER:FUNCTION`), not agents".into(),
                ));
            };
            let stop = || self.stop_requested(run);
            let call = crate::mcp::McpCall {
                spec: m,
                cwd: spec.cwd.as_deref(),
                action,
                params: request.get("params").unwrap_or(&Value::Null),
                timeout,
                run,
                ca_file: live.c.frozen.config.tls_ca_file.as_deref(),
            };
            return crate::mcp::call(&call, &stop);
        }
        if let Some(cmd) = &spec.command {
            let stop = || self.stop_requested(run);
            return exec::run_json_command(cmd, spec.cwd.as_deref(), request, timeout, &stop);
        }
        if let Some(dir) = &spec.fixture {
            return exec::fixture(dir, stage);
        }
        if let Some(h) = &spec.http {
            let call = ChatCall {
                url: &h.url,
                model: &h.model,
                system_prompt: spec.system_prompt.as_deref(),
                prompt,
                request,
                timeout,
                api_key: h.api_key_env.as_ref().and_then(|v| std::env::var(v).ok()),
                ca_file: live.c.frozen.config.tls_ca_file.as_deref(),
            };
            return exec::http_chat(&call);
        }
        Err(ExecError::Other("the executor has no kind".into()))
    }

    fn block(
        &mut self,
        live: &mut Live,
        i: usize,
        findings: Vec<Finding>,
        redacted: Option<Value>,
        where_: &str,
    ) -> Result<()> {
        let mut names: Vec<String> = Vec::new();
        for f in &findings {
            if !names.contains(&f.guardrail) {
                names.push(f.guardrail.clone());
            }
        }
        let desc: Vec<String> = findings.iter().map(Finding::describe).collect();
        live.stages[i].status = StageStatus::Blocked;
        live.stages[i].guardrails = names.clone();
        live.stages[i].findings = findings.clone();
        live.stages[i].output = redacted;
        live.stages[i].error = Some(format!(
            "blocked by guardrail(s) on its {where_}: {}",
            desc.join("; ")
        ));
        live.stages[i].finished_at = Some(self.now());
        self.record(
            live,
            i,
            "guardrail-triggered",
            "pbc",
            json!({"guardrails": names, "where": where_, "findings": findings}),
        )?;
        let name = live.stages[i].name.clone();
        let chans: Vec<String> = live.c.playbook.spec.stages[i]
            .notification
            .as_ref()
            .map(|n| n.on_failure.iter().map(|c| c.value.clone()).collect())
            .unwrap_or_default();
        self.queue_notice(
            live,
            Some(&name),
            "on-failure",
            chans,
            &format!("stage {name} blocked by {}", names.join(", ")),
            json!({"findings": desc}),
        );
        self.fail(
            live,
            i,
            RunStatus::Blocked,
            &format!("stage `{name}` was blocked by {}", names.join(", ")),
        )
    }

    /// A stage ended the run unsuccessfully.
    /// Fails stage `i` with `msg` (already redacted), records it, and ends the run as failed.
    pub(super) fn stage_failed(&mut self, live: &mut Live, i: usize, msg: &str) -> Result<()> {
        live.stages[i].status = StageStatus::Failed;
        live.stages[i].error = Some(msg.to_string());
        self.record(live, i, "stage-failed", "pbc", json!({"error": msg}))?;
        self.fail(live, i, RunStatus::Failed, msg)
    }

    pub(super) fn fail(
        &mut self,
        live: &mut Live,
        _i: usize,
        status: RunStatus,
        message: &str,
    ) -> Result<()> {
        self.end_run(live, status, message)
    }
}
