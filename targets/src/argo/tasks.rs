//! The tasks of the stages: the trigger payload's (`pbc-input`), each stage's (`pbc runner
//! run` with the upstream outputs and the exported fields), the gates around it, and the
//! refusal of a `risk: high` stage.

use super::exit::runner_container;
use super::{
    CHECK_TEMPLATE, COMPLIANCE_ANNOTATION, Emitter, INPUT_TASK, PLAYBOOK_LABEL, go_duration, param,
};
use crate::cond::{self, Src};
use crate::obj;
use crate::out::compact_json_for_argo;
use pbc_compiler::model::Executor;
use pbc_compiler::sema::lower::{Cond, simplify};
use serde_json::{Value, json};

impl Emitter<'_> {
    /// A container of the runner image running `pbc runner …` (non-root, read-only root
    /// filesystem, the ConfigMap and the output volume mounted).
    pub(super) fn container(&self, args: Vec<Value>) -> Value {
        runner_container(&self.s.runner_image, args, &self.mounted.env)
    }

    pub(super) fn export_args(&self, src: Src, args: &mut Vec<Value>) {
        for (_, e) in self.exports.get(&src).map(Vec::as_slice).unwrap_or(&[]) {
            args.push(Value::String(
                if e.seconds {
                    "--export-seconds"
                } else {
                    "--export"
                }
                .into(),
            ));
            args.push(Value::String(format!("{}={}", e.param, e.pointer)));
        }
    }

    pub(super) fn export_outputs(&self, src: Src) -> Vec<Value> {
        let mut v = Vec::new();
        if let Src::Stage(_) = src {
            v.push(json!({"name": "output", "valueFrom": {"path": "/tmp/pbc/output.json", "default": ""}}));
        }
        for (_, e) in self.exports.get(&src).map(Vec::as_slice).unwrap_or(&[]) {
            v.push(json!({
                "name": e.param,
                "valueFrom": {"path": format!("/tmp/pbc/fields/{}", e.param), "default": ""},
            }));
        }
        v
    }

    pub(super) fn input_task(&mut self) {
        let mut args = vec![
            json!("runner"),
            json!("input"),
            json!("--playbook"),
            json!(self.pb.name()),
            json!("--input"),
            json!("{{workflow.parameters.input}}"),
        ];
        self.export_args(Src::Input, &mut args);
        self.templates.push(obj! {
            "name" => INPUT_TASK,
            "outputs" => json!({"parameters": self.export_outputs(Src::Input)}),
            "container" => self.container(args),
        });
        self.tasks
            .push(json!({"name": INPUT_TASK, "template": INPUT_TASK}));
    }

    pub(super) fn stage(&mut self, i: usize, deps: Vec<String>) {
        let pb = self.pb;
        let s = &pb.spec.stages[i];
        let name = s.name.value.clone();
        if cond::refused(pb, s) {
            self.refused(i, deps);
            return;
        }
        let when = cond::when_condition(self.an, i, s);
        let gate = self.approval_gate(i);
        let mut entry_deps = deps;
        if s.agent().is_some() && cond::medium(s) {
            let check = self.stage_gate(
                i,
                "risk-approval",
                entry_deps.clone(),
                simplify(when.clone()),
                "run",
            );
            entry_deps = vec![check];
        }
        if s.action().is_some()
            && let Some(g) = &gate
        {
            let check = self.stage_gate(i, "approval", entry_deps.clone(), g.clone(), "run");
            entry_deps = vec![check];
        }
        self.stage_task(i, entry_deps, &when);
        if s.agent().is_some()
            && let Some(g) = &gate
        {
            self.stage_gate(
                i,
                "approval",
                vec![name.clone()],
                g.clone(),
                "accept the output of",
            );
        }
    }

    pub(super) fn stage_definition(&self, i: usize) -> String {
        let stage = self
            .u
            .root
            .get_path(&["spec", "stages"])
            .and_then(|n| n.as_seq())
            .and_then(|v| v.get(i))
            .map(|n| n.to_json())
            .unwrap_or(Value::Null);
        compact_json_for_argo(&stage)
    }

    pub(super) fn stage_task(&mut self, i: usize, deps: Vec<String>, when: &Cond) {
        let pb = self.pb;
        let s = &pb.spec.stages[i];
        let name = s.name.value.clone();
        // Every stage done before this one: its output is given to the runner.
        let upstream: Vec<usize> = self
            .an
            .graph
            .ancestors_within(i, usize::MAX)
            .unwrap_or_default()
            .into_iter()
            .filter(|&j| !cond::refused(pb, &pb.spec.stages[j]))
            .collect();
        let mut args = vec![
            json!("runner"),
            json!("run"),
            json!("--playbook"),
            json!(pb.name()),
            json!("--stage"),
            json!(name),
            json!("--workflow"),
            json!("{{workflow.name}}"),
            json!("--workflow-uid"),
            json!("{{workflow.uid}}"),
            json!("--input"),
            json!("{{workflow.parameters.input}}"),
        ];
        let mut inputs = Vec::new();
        let mut targs = Vec::new();
        for &j in &upstream {
            let up = &pb.spec.stages[j].name.value;
            let p = format!("upstream-{up}");
            args.push(json!("--upstream"));
            args.push(json!(format!("{up}={{{{inputs.parameters.{p}}}}}")));
            inputs.push(json!({"name": p}));
            targs.push(param(
                &p,
                format!("{{{{tasks.{up}.outputs.parameters.output}}}}"),
            ));
        }
        self.export_args(Src::Stage(i), &mut args);
        let kind = match &s.executor {
            Some(Executor::Action(_)) => "action",
            _ => "agent",
        };
        let mut tmeta = serde_json::Map::new();
        tmeta.insert(
            "labels".into(),
            json!({PLAYBOOK_LABEL: pb.name(), "agenticops.io/stage": name, "agenticops.io/kind": kind}),
        );
        if !s.compliance.is_empty() {
            let tags: Vec<&str> = s.compliance.iter().map(|t| t.value.as_str()).collect();
            tmeta.insert(
                "annotations".into(),
                json!({COMPLIANCE_ANNOTATION: tags.join(",")}),
            );
        }
        let retry = s.retries.as_ref().filter(|r| r.value > 0).map(|r| {
            json!({
                "limit": r.value.to_string(),
                "retryPolicy": "OnFailure",
                "backoff": {"duration": "10s", "factor": "2"},
            })
        });
        self.templates.push(obj! {
            "name" => name.clone(),
            "metadata" => Value::Object(tmeta),
            "inputs" => (!inputs.is_empty()).then(|| json!({"parameters": inputs})),
            "outputs" => json!({"parameters": self.export_outputs(Src::Stage(i))}),
            "container" => self.container(args),
            "timeout" => s.timeout.as_ref().map(|t| Value::String(go_duration(t.value))),
            "retryStrategy" => retry,
            "metrics" => json!({"prometheus": [{
                "name": "pbc_stage_failures_total",
                "help": "Failed stage runs of a pbc playbook",
                "labels": [self.pb_label(), {"key": "stage", "value": name}],
                "when": "{{status}} == Failed",
                "counter": {"value": "1"},
            }]}),
        });
        let mut task = obj! {
            "name" => name.clone(),
            "template" => name.clone(),
            "depends" => self.depends(deps, when),
            "when" => self.when(when),
        };
        if !targs.is_empty()
            && let Value::Object(m) = &mut task
        {
            m.insert("arguments".into(), json!({"parameters": targs}));
        }
        self.tasks.push(task);
    }

    pub(super) fn refused(&mut self, i: usize, deps: Vec<String>) {
        let s = &self.pb.spec.stages[i];
        let name = s.name.value.clone();
        self.use_shared(CHECK_TEMPLATE);
        let runbook = self.stage_definition(i);
        self.tasks.push(obj! {
            "name" => name.clone(),
            "template" => CHECK_TEMPLATE,
            "depends" => self.depends(deps, &Cond::Const(true)),
            "arguments" => json!({"parameters": [
                param("gate", name.clone()),
                param("mode", "refuse"),
                param("runbook", runbook),
            ]}),
        });
    }
}
