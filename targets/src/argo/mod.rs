//! The `argo` target: a `WorkflowTemplate` per playbook, and a `CronWorkflow` that starts it
//! for a schedule trigger.
//!
//! The entrypoint `pbc-main` is a DAG with one task per stage (the stage's name), ordered by
//! `depends` from the stage graph with bare task names, so that a skipped stage counts as
//! done. A stage runs `pbc runner run` in the configured runner image (`tasks`), which reads
//! the playbook from the workflow's ConfigMap, is given the trigger payload and the upstream
//! outputs, and writes the stage's output (parameter
//! `output`) and each field that a condition reads (one parameter per field, each with a
//! `default`, so that a skipped or silent producer reads as absent).
//!
//! Gates: an `agent:` stage's gate follows its task, an `action:` stage's gate
//! precedes it. A gate is a suspend task (`<stage>-approval`, `duration` = the SLA, with the
//! supplied parameter `decision`: `approve` or `reject`) followed by `<stage>-approval-check`,
//! which runs `pbc runner gate` and passes on exactly `approve`: a rejected
//! gate and an expired suspend (which Argo resumes as Succeeded with no value) fail the
//! check, the DAG fails fast, and the exit handler notifies (`gates`, `exit`). Escalation levels
//! are further suspends (`<stage>-escalation-N`), each opened only when the level before
//! ended without a decision, with its notification; the final check reads the first decided
//! level. A conditional gate's tasks carry the lowered condition as `when` (fail safe: an
//! absent value gates), and so does a gated stage's own `when` (a skipped stage is not
//! gated). A `risk: medium` stage is approved before it runs, a `risk: medium` playbook
//! before its first stage, and a `risk: high` stage gets a step that prints its runbook and
//! fails instead of anything that executes it. Metrics: `metrics`.

use crate::cond::{self, ApproverCase, Src};
use crate::{Settings, Unit, obj};
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::model::{Duration, Playbook, Trigger};
use pbc_compiler::sema::Analysis;
use pbc_compiler::sema::lower::{Cond, Valid, simplify};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub mod carried;
pub mod configmap;
mod exit;
mod gates;
mod metrics;
mod tasks;

pub use configmap::{CODES, Mounted, file_outputs, mount, secret_name};

use gates::GateSpec;

/// The volume the workflow's ConfigMap (the playbook, its files, the agents file, the
/// configuration) is mounted from, at [`CONFIG_MOUNT`] in every container.
pub const CONFIG_VOLUME: &str = "pbc-config";
/// Where the ConfigMap is mounted (`pbc runner --dir`).
pub const CONFIG_MOUNT: &str = "/etc/pbc";
/// The writable `emptyDir` every container writes to (`pbc runner --out`); the root
/// filesystem is read-only.
pub const OUT_VOLUME: &str = "pbc-out";
/// Where it is mounted.
pub const OUT_MOUNT: &str = "/tmp/pbc";

/// The name of a playbook's ConfigMap.
pub fn config_map_name(playbook: &str) -> String {
    format!("{playbook}-pbc")
}

/// The label every artifact of a playbook carries.
pub const PLAYBOOK_LABEL: &str = "agenticops.io/playbook";
/// The annotation of a gate's suspend template naming who approves (comma-separated).
pub const APPROVERS_ANNOTATION: &str = "agenticops.io/approvers";
/// The annotation of a conditional gate's suspend template whose branches have different
/// approvers: each branch (in the order tried) with its approvers, as JSON.
pub const APPROVERS_BY_BRANCH_ANNOTATION: &str = "agenticops.io/approvers-by-branch";
/// The annotation holding the playbook's compliance tags (comma-separated).
pub const COMPLIANCE_ANNOTATION: &str = "agenticops.io/compliance";

const API_VERSION: &str = "argoproj.io/v1alpha1";
const MAIN: &str = "pbc-main";
const INPUT_TASK: &str = "pbc-input";
const CHECK_TEMPLATE: &str = "pbc-gate-check";
const NOTIFY_TEMPLATE: &str = "pbc-notify";
const EXIT_TEMPLATE: &str = "pbc-exit";
const PLAYBOOK_GATE: &str = "pbc-playbook-approval";

/// A Go duration string (`4h`, `90m`, `30s`; days as hours).
pub fn go_duration(d: Duration) -> String {
    let s = d.seconds;
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The documents of the `argo` target for one playbook: its ConfigMaps (`mounted`, from
/// [`mount`]), the `WorkflowTemplate`, then the `CronWorkflow` for a schedule trigger.
pub fn emit(u: Unit<'_>, settings: &Settings, mounted: &Mounted) -> Vec<Value> {
    let mut e = Emitter::new(u, settings, mounted);
    let wt = e.workflow_template();
    let mut docs = mounted.config_maps.clone();
    docs.push(wt);
    if let Some(cw) = cron_workflow(u) {
        docs.push(cw);
    }
    docs
}

/// The least bytes one upstream entry of a stage template costs (the `--upstream`
/// argument, the input parameter, the task's argument).
const UPSTREAM_ENTRY_BYTES: u64 = 128;

/// PB1021 if the workflow would pass the output limit: every stage template is handed the
/// output of every stage done before it, so a long chain of stages is quadratic in size.
/// The count stops at the limit (it is not quadratic itself).
pub fn too_large(u: Unit<'_>, settings: &Settings) -> Option<Diagnostic> {
    let limit = (settings.max_output_bytes / UPSTREAM_ENTRY_BYTES) as usize;
    let mut entries = 0usize;
    for i in 0..u.playbook.spec.stages.len() {
        match u
            .analysis
            .graph
            .ancestors_within(i, limit - entries.min(limit))
        {
            Some(a) => entries += a.len(),
            None => {
                let at = u
                    .root
                    .get_path(&["metadata", "name"])
                    .map(|n| n.span)
                    .unwrap_or(u.root.span);
                return Some(
                    Diagnostic::new(
                        &pbc_compiler::resolve::budget::OUTPUT_TOO_LARGE,
                        at,
                        format!(
                            "the Argo workflow of `{}` would pass the output limit of {} bytes (`limits.max-output-bytes`): each of its {} stages is handed the output of every stage before it, and the first {} stages already make more than {limit} such hand-overs",
                            u.playbook.name(),
                            settings.max_output_bytes,
                            u.playbook.spec.stages.len(),
                            i + 1
                        ),
                    )
                    .with_help("split the playbook, give stages `needs` that name only what they wait for, or raise `limits.max-output-bytes` in `.pbc.yaml`"),
                );
            }
        }
    }
    None
}

/// The `argo` target as YAML.
pub fn emit_yaml(u: Unit<'_>, settings: &Settings, mounted: &Mounted) -> String {
    crate::out::yaml_docs(&emit(u, settings, mounted))
}

fn labels(u: Unit<'_>) -> Value {
    let mut m = match u
        .root
        .get_path(&["metadata", "labels"])
        .map(|n| n.to_json())
    {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    m.insert(
        PLAYBOOK_LABEL.into(),
        Value::String(u.playbook.name().into()),
    );
    m.insert(
        "app.kubernetes.io/managed-by".into(),
        Value::String("pbc".into()),
    );
    Value::Object(m)
}

fn annotations(u: Unit<'_>) -> Value {
    let pb = u.playbook;
    let mut m = match u
        .root
        .get_path(&["metadata", "annotations"])
        .map(|n| n.to_json())
    {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if !pb.metadata.compliance.is_empty() {
        let tags: Vec<&str> = pb
            .metadata
            .compliance
            .iter()
            .map(|t| t.value.as_str())
            .collect();
        m.insert(COMPLIANCE_ANNOTATION.into(), Value::String(tags.join(",")));
    }
    if !pb.metadata.tags.is_empty() {
        let tags: Vec<&str> = pb.metadata.tags.iter().map(|t| t.value.as_str()).collect();
        m.insert("agenticops.io/tags".into(), Value::String(tags.join(",")));
    }
    if let Some(Trigger::Event { event } | Trigger::EventWithSchema { event, .. }) =
        pb.spec.trigger.as_ref().map(|t| &t.value)
    {
        m.insert(
            "agenticops.io/trigger-event".into(),
            Value::String(event.value.clone()),
        );
    }
    for key in ["rollout", "promotion", "rate-limits", "audit"] {
        if let Some(n) = u.root.get_path(&["spec", key]) {
            m.insert(
                format!("agenticops.io/{key}"),
                Value::String(serde_json::to_string(&n.to_json()).unwrap_or_default()),
            );
        }
    }
    if let Some(d) = &pb.metadata.description {
        m.insert(
            "workflows.argoproj.io/description".into(),
            Value::String(d.value.clone()),
        );
    }
    Value::Object(m)
}

fn metadata(u: Unit<'_>) -> Value {
    obj! {
        "name" => u.playbook.name(),
        "namespace" => u.playbook.metadata.namespace.as_ref().map(|n| n.value.clone()),
        "labels" => labels(u),
        "annotations" => annotations(u),
    }
}

fn cron_workflow(u: Unit<'_>) -> Option<Value> {
    let Some(Trigger::Schedule { cron, timezone }) =
        u.playbook.spec.trigger.as_ref().map(|t| &t.value)
    else {
        return None;
    };
    Some(obj! {
        "apiVersion" => API_VERSION,
        "kind" => "CronWorkflow",
        "metadata" => metadata(u),
        "spec" => obj! {
            "schedules" => json!([cron.value.text.trim()]),
            "timezone" => timezone.as_ref().map(|t| t.value.name().to_string()),
            "concurrencyPolicy" => "Forbid",
            "workflowMetadata" => json!({"labels": {PLAYBOOK_LABEL: u.playbook.name()}}),
            "workflowSpec" => json!({"workflowTemplateRef": {"name": u.playbook.name()}}),
        },
    })
}

/// An exported field: the parameter that holds it and where it is in the JSON.
#[derive(Clone, Debug)]
struct Export {
    param: String,
    pointer: String,
    seconds: bool,
}

struct Emitter<'a> {
    u: Unit<'a>,
    pb: &'a Playbook,
    an: &'a Analysis,
    s: &'a Settings,
    mounted: &'a Mounted,
    kinds: BTreeMap<Vec<String>, Valid>,
    /// Per source: path → export.
    exports: BTreeMap<Src, Vec<(Vec<String>, Export)>>,
    tasks: Vec<Value>,
    templates: Vec<Value>,
    shared: Vec<&'static str>,
}

fn json_pointer(segs: &[String]) -> String {
    segs.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn param_name(segs: &[String]) -> String {
    let s: String = segs
        .join("__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "value".into() } else { s }
}

fn param(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn tag(expr: &str) -> String {
    format!("{{{{={expr}}}}}")
}

fn channels(list: &[pbc_compiler::model::Spanned<String>]) -> Vec<String> {
    list.iter().map(|c| c.value.clone()).collect()
}

impl<'a> Emitter<'a> {
    fn new(u: Unit<'a>, s: &'a Settings, mounted: &'a Mounted) -> Self {
        let kinds = cond::read_kinds(u.analysis);
        let mut exports: BTreeMap<Src, Vec<(Vec<String>, Export)>> = BTreeMap::new();
        for (path, valid) in &kinds {
            let Some(root) = path.first() else { continue };
            let Some(src) = cond::source(u.playbook, u.analysis, root) else {
                continue;
            };
            let list = exports.entry(src).or_default();
            let base = param_name(&path[1..]);
            let mut name = base.clone();
            let mut n = 2;
            while name == "output" || list.iter().any(|(_, e)| e.param == name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            list.push((
                path.clone(),
                Export {
                    param: name,
                    pointer: json_pointer(&path[1..]),
                    seconds: *valid == Valid::Duration,
                },
            ));
        }
        Emitter {
            u,
            pb: u.playbook,
            an: u.analysis,
            s,
            mounted,
            kinds,
            exports,
            tasks: Vec::new(),
            templates: Vec::new(),
            shared: Vec::new(),
        }
    }

    fn task_of(&self, src: Src) -> String {
        match src {
            Src::Input => INPUT_TASK.into(),
            Src::Stage(i) => self.pb.spec.stages[i].name.value.clone(),
        }
    }

    /// The expression reading a path's exported parameter.
    fn value_of(&self, path: &[String]) -> String {
        let Some(src) = path.first().and_then(|r| cond::source(self.pb, self.an, r)) else {
            return "''".into();
        };
        let p = self
            .exports
            .get(&src)
            .and_then(|l| l.iter().find(|(pp, _)| pp == path))
            .map(|(_, e)| e.param.clone())
            .unwrap_or_else(|| "output".into());
        format!(
            "tasks[{}].outputs.parameters[{}]",
            cond::expr_str(&self.task_of(src)),
            cond::expr_str(&p)
        )
    }

    fn expr(&self, c: &Cond) -> String {
        cond::argo_expr(c, &self.kinds, &|p| self.value_of(p))
    }

    /// `when:` for a condition (`None` when always true).
    fn when(&self, c: &Cond) -> Option<String> {
        match c {
            Cond::Const(true) => None,
            Cond::Const(false) => Some("false".into()),
            c => Some(tag(&self.expr(c))),
        }
    }

    fn reads_input(&self, c: &Cond) -> bool {
        let mut ps = Vec::new();
        cond::reads(c, &mut ps);
        ps.iter().any(|p| {
            p.first()
                .and_then(|r| cond::source(self.pb, self.an, r))
                .is_some_and(|s| s == Src::Input)
        })
    }

    fn depends(&self, mut deps: Vec<String>, c: &Cond) -> Option<String> {
        if self.reads_input(c) && !deps.iter().any(|d| d == INPUT_TASK) {
            deps.push(INPUT_TASK.into());
        }
        let mut seen = Vec::new();
        for d in deps {
            if !seen.contains(&d) {
                seen.push(d);
            }
        }
        (!seen.is_empty()).then(|| seen.join(" && "))
    }

    fn use_shared(&mut self, name: &'static str) {
        if !self.shared.contains(&name) {
            self.shared.push(name);
        }
    }

    fn pb_label(&self) -> Value {
        json!({"key": "playbook", "value": self.pb.name()})
    }

    /// What a dependent of stage `i` waits for.
    fn done(&self, i: usize) -> String {
        let s = &self.pb.spec.stages[i];
        if !cond::refused(self.pb, s) && s.agent().is_some() && self.approval_gate(i).is_some() {
            format!("{}-approval-check", s.name.value)
        } else {
            s.name.value.clone()
        }
    }

    /// The approval gate after an agent or before an action (the stage's `when` included),
    /// or `None`.
    fn approval_gate(&self, i: usize) -> Option<Cond> {
        let s = &self.pb.spec.stages[i];
        let approval = cond::approval_condition(self.an, i, s);
        let gate = if s.action().is_some() && cond::medium(s) {
            Some(Cond::Const(true))
        } else {
            approval
        }?;
        Some(simplify(Cond::And(vec![
            cond::when_condition(self.an, i, s),
            gate,
        ])))
    }

    fn workflow_template(&mut self) -> Value {
        let pb = self.pb;
        let medium_pb = pb.spec.risk() == pbc_compiler::model::Risk::Medium;
        if self.exports.contains_key(&Src::Input) {
            self.input_task();
        }
        if medium_pb {
            let approvers = pb
                .spec
                .approvers
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_default();
            self.gate(GateSpec {
                name: PLAYBOOK_GATE.into(),
                stage: String::new(),
                what: format!("start playbook `{}` (risk: medium)", pb.name()),
                depends: Vec::new(),
                when: Cond::Const(true),
                approvers: vec![ApproverCase {
                    when: Cond::Const(true),
                    approvers,
                    branch: "otherwise".into(),
                }],
                sla: None,
                escalation: &[],
                on_pending: Vec::new(),
                on_approved: Vec::new(),
            });
        }
        for &i in &self.an.graph.order.clone() {
            let mut deps: Vec<String> = self
                .an
                .graph
                .deps(i)
                .into_iter()
                .map(|j| self.done(j))
                .collect();
            if deps.is_empty() && medium_pb {
                deps.push(format!("{PLAYBOOK_GATE}-check"));
            }
            self.stage(i, deps);
        }
        let exit = self.exit_handler();
        let mut templates = vec![obj! {
            "name" => MAIN,
            "dag" => json!({"tasks": std::mem::take(&mut self.tasks)}),
        }];
        templates.append(&mut self.templates);
        if let Some(t) = exit {
            templates.push(t);
        }
        for name in self.shared.clone() {
            templates.push(self.shared_template(name));
        }
        let spec = obj! {
            "entrypoint" => MAIN,
            "onExit" => templates.iter().any(|t| t["name"] == EXIT_TEMPLATE).then(|| Value::String(EXIT_TEMPLATE.into())),
            "arguments" => json!({"parameters": [{
                "name": "input",
                "value": "{}",
                "description": "the trigger payload, as JSON",
            }]}),
            "workflowMetadata" => json!({"labels": {PLAYBOOK_LABEL: pb.name()}}),
            "volumes" => json!([
                self.mounted.volume.clone(),
                {"name": OUT_VOLUME, "emptyDir": {}},
            ]),
            "metrics" => self.metrics(),
            "templates" => Value::Array(templates),
        };
        obj! {
            "apiVersion" => API_VERSION,
            "kind" => "WorkflowTemplate",
            "metadata" => metadata(self.u),
            "spec" => spec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(2 * 86400)), "48h");
        assert_eq!(go_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
    }
}
