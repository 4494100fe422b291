//! The templates tasks share (`pbc-gate-check`, `pbc-notify`), the exit handler
//! (`pbc-exit`: undo steps and notifications on a run that did not succeed) and the runner's
//! container.

use super::{
    CHECK_TEMPLATE, CONFIG_MOUNT, CONFIG_VOLUME, EXIT_TEMPLATE, Emitter, NOTIFY_TEMPLATE,
    OUT_MOUNT, OUT_VOLUME, channels,
};
use crate::cond;
use crate::obj;
use crate::out::compact_json_for_argo;
use pbc_compiler::model::OnFailure;
use serde_json::{Value, json};

impl Emitter<'_> {
    pub(super) fn shared_template(&self, name: &str) -> Value {
        match name {
            CHECK_TEMPLATE => json!({
                "name": CHECK_TEMPLATE,
                "inputs": {"parameters": [
                    {"name": "gate"},
                    {"name": "mode"},
                    {"name": "decision", "default": ""},
                    {"name": "runbook", "default": ""},
                    {"name": "stage", "default": ""},
                    {"name": "approval", "default": ""},
                    {"name": "approvers", "default": "[]"},
                ]},
                "outputs": {"parameters": [
                    {"name": "outcome", "valueFrom": {"path": format!("{OUT_MOUNT}/outcome"), "default": ""}},
                ]},
                "container": self.container(vec![
                    json!("runner"), json!("gate"),
                    json!("--gate"), json!("{{inputs.parameters.gate}}"),
                    json!("--mode"), json!("{{inputs.parameters.mode}}"),
                    json!("--decision"), json!("{{inputs.parameters.decision}}"),
                    json!("--runbook"), json!("{{inputs.parameters.runbook}}"),
                    // A signed approval (docs/approvals.md) names the run, stage and playbook.
                    json!("--playbook"), json!(self.pb.name()),
                    json!("--workflow"), json!("{{workflow.name}}"),
                    json!("--stage"), json!("{{inputs.parameters.stage}}"),
                    json!("--approval"), json!("{{inputs.parameters.approval}}"),
                    json!("--approvers"), json!("{{inputs.parameters.approvers}}"),
                ]),
            }),
            _ => json!({
                "name": NOTIFY_TEMPLATE,
                "inputs": {"parameters": [
                    {"name": "stage"},
                    {"name": "event"},
                    {"name": "channels"},
                    {"name": "approvers", "default": "[]"},
                ]},
                "container": self.container(
                    [
                        "runner", "notify", "--playbook", self.pb.name(), "--workflow", "{{workflow.name}}",
                        "--stage", "{{inputs.parameters.stage}}", "--event", "{{inputs.parameters.event}}",
                        "--channels", "{{inputs.parameters.channels}}", "--approvers", "{{inputs.parameters.approvers}}",
                    ].map(Value::from).to_vec(),
                ),
            }),
        }
    }

    /// `pbc-exit`: on a run that did not succeed, the rollback steps (`revert-to-previous`),
    /// then the notifications (rollback channels, rejected and expired gates, failed stages).
    pub(super) fn exit_handler(&mut self) -> Option<Value> {
        let pb = self.pb;
        let mut tasks = Vec::new();
        let failed = "{{workflow.status}} != Succeeded";
        let revert = pb
            .spec
            .rollback
            .as_ref()
            .is_some_and(|r| r.on_failure.value == OnFailure::RevertToPrevious);
        let mut steps = Vec::new();
        if revert {
            for &i in self.an.graph.order.iter().rev() {
                let s = &pb.spec.stages[i];
                if cond::refused(pb, s) {
                    continue;
                }
                let Some(rb) = &s.rollback else { continue };
                steps.push(obj! {
                    "stage" => s.name.value.clone(),
                    "action" => rb.action.value.to_string(),
                    "params" => rb.params.as_ref().map(|p| p.to_json()),
                });
            }
        }
        if !steps.is_empty() {
            self.templates.push(json!({
                "name": "pbc-rollback",
                "container": self.container(vec![
                    json!("runner"), json!("rollback"), json!("--playbook"), json!(pb.name()),
                    json!("--workflow"), json!("{{workflow.name}}"),
                    json!("--workflow-uid"), json!("{{workflow.uid}}"),
                    json!("--status"), json!("{{workflow.status}}"),
                    json!("--failures"), json!("{{workflow.failures}}"),
                    json!("--steps"), json!(compact_json_for_argo(&Value::Array(steps))),
                ]),
            }));
            tasks.push(json!({"name": "rollback", "template": "pbc-rollback", "when": failed}));
        }
        // Who is told what.
        let mut gates = serde_json::Map::new();
        let mut stages = serde_json::Map::new();
        for s in &pb.spec.stages {
            let Some(n) = &s.notification else { continue };
            let (rej, exp, fail) = (
                channels(&n.on_rejected),
                channels(&n.on_expired),
                channels(&n.on_failure),
            );
            if !rej.is_empty() || !exp.is_empty() {
                gates.insert(
                    s.name.value.clone(),
                    json!({"on-rejected": rej, "on-expired": exp}),
                );
            }
            if !fail.is_empty() {
                stages.insert(s.name.value.clone(), json!({"on-failure": fail}));
            }
        }
        let rollback_channels = pb
            .spec
            .rollback
            .as_ref()
            .filter(|r| r.on_failure.value != OnFailure::DoNothing)
            .map(|r| channels(&r.notification))
            .unwrap_or_default();
        if !gates.is_empty() || !stages.is_empty() || !rollback_channels.is_empty() {
            let table = json!({"rollback": rollback_channels, "gates": gates, "stages": stages});
            self.templates.push(json!({
                "name": "pbc-exit-notify",
                "container": self.container(vec![
                    json!("runner"), json!("exit-notify"), json!("--playbook"), json!(pb.name()),
                    json!("--workflow"), json!("{{workflow.name}}"),
                    json!("--status"), json!("{{workflow.status}}"),
                    json!("--failures"), json!("{{workflow.failures}}"),
                    json!("--channels"), json!(compact_json_for_argo(&table)),
                ]),
            }));
            let mut t = json!({"name": "notify", "template": "pbc-exit-notify", "when": failed});
            if !tasks.is_empty()
                && let Value::Object(m) = &mut t
            {
                m.insert("depends".into(), json!("rollback"));
            }
            tasks.push(t);
        }
        (!tasks.is_empty()).then(|| json!({"name": EXIT_TEMPLATE, "dag": {"tasks": tasks}}))
    }
}

/// A container of `image` running `pbc runner …`: as a non-root user, on a read-only root
/// filesystem, the ConfigMap at [`CONFIG_MOUNT`] and the output volume at [`OUT_MOUNT`].
pub(super) fn runner_container(image: &str, args: Vec<Value>, env: &[Value]) -> Value {
    let mut c = json!({
        "image": image,
        "args": args,
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT, "readOnly": true},
            {"name": OUT_VOLUME, "mountPath": OUT_MOUNT},
        ],
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if !env.is_empty()
        && let Value::Object(m) = &mut c
    {
        m.insert("env".into(), Value::Array(env.to_vec()));
    }
    c
}
