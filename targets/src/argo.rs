//! The `argo` target: a `WorkflowTemplate` per playbook, and a `CronWorkflow` that starts it
//! for a schedule trigger.
//!
//! The entrypoint `pbc-main` is a DAG with one task per stage (the stage's name), ordered by
//! `depends` from the stage graph with bare task names, so that a skipped stage counts as
//! done. A stage runs in the configured runner image, which is given the stage definition,
//! the trigger payload and the upstream outputs, and writes the stage's output (parameter
//! `output`) and each field that a condition reads (one parameter per field, each with a
//! `default`, so that a skipped or silent producer reads as absent).
//!
//! Gates: an `agent:` stage's gate follows its task, an `action:` stage's gate
//! precedes it. A gate is a suspend task (`<stage>-approval`, `duration` = the SLA, with the
//! supplied parameter `decision`: `approve` or `reject`) followed by `<stage>-approval-check`,
//! which runs `targets/scripts/pbc-gate-check.sh` and passes on exactly `approve`: a rejected
//! gate and an expired suspend (which Argo resumes as Succeeded with no value) fail the
//! check, the DAG fails fast, and the exit handler rolls back and notifies. Escalation levels
//! are further suspends (`<stage>-escalation-N`), each opened only when the level before
//! ended without a decision, with its notification; the final check reads the first decided
//! level. A conditional gate's tasks carry the lowered condition as `when` (fail safe: an
//! absent value gates), and so does a gated stage's own `when` (a skipped stage is not
//! gated). A `risk: medium` stage is approved before it runs, a `risk: medium` playbook
//! before its first stage, and a `risk: high` stage gets a step that prints its runbook and
//! fails instead of anything that executes it.

use crate::cond::{self, ApproverCase, Src};
use crate::out::compact_json_for_argo;
use crate::{Settings, Unit, obj};
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::model::{Approver, Duration, Escalation, Executor, OnFailure, Playbook, Trigger};
use pbc_compiler::sema::Analysis;
use pbc_compiler::sema::lower::{Cond, Valid, simplify};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The gate check script (`targets/scripts/pbc-gate-check.sh`).
pub const GATE_CHECK_SCRIPT: &str = include_str!("../scripts/pbc-gate-check.sh");

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

/// The documents of the `argo` target for one playbook: the `WorkflowTemplate`, then the
/// `CronWorkflow` for a schedule trigger.
pub fn emit(u: Unit<'_>, settings: &Settings) -> Vec<Value> {
    let mut e = Emitter::new(u, settings);
    let wt = e.workflow_template();
    let mut docs = vec![wt];
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
pub fn emit_yaml(u: Unit<'_>, settings: &Settings) -> String {
    crate::out::yaml_docs(&emit(u, settings))
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

/// The approvers in words: one list, or one per branch (`… if `x > 1`; … otherwise`).
fn approver_text(cases: &[ApproverCase]) -> String {
    if cond::same_approvers(cases) {
        return approver_list(cases.first().map(|c| c.approvers.as_slice()).unwrap_or(&[]));
    }
    cases
        .iter()
        .map(|c| format!("{} {}", approver_list(&c.approvers), c.branch))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `[{"branch": "if `x > 1`", "approvers": [...]}, …]`, in the order they are tried.
fn approvers_by_branch(cases: &[ApproverCase]) -> Value {
    Value::Array(
        cases
            .iter()
            .map(|c| json!({"branch": c.branch, "approvers": cond::approvers_json(&c.approvers)}))
            .collect(),
    )
}

fn approver_list(list: &[Approver]) -> String {
    if list.is_empty() {
        return "anyone with access to the Argo namespace".into();
    }
    list.iter()
        .map(cond::approver_str)
        .collect::<Vec<_>>()
        .join(", ")
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

/// One level of a gate: its suspend task, duration, approvers (per branch), channels notified.
type Level = (String, Option<Duration>, Vec<ApproverCase>, Vec<String>);

/// A gate to emit.
struct GateSpec<'g> {
    /// The first suspend's task name (`<stage>-approval`).
    name: String,
    /// The stage it belongs to (empty for the playbook's gate).
    stage: String,
    what: String,
    depends: Vec<String>,
    /// When the gate asks (the stage's `when` included); `Const(true)` always.
    when: Cond,
    /// Who approves, per branch of a conditional gate (one case otherwise).
    approvers: Vec<ApproverCase>,
    sla: Option<Duration>,
    escalation: &'g [Escalation],
    on_pending: Vec<String>,
    on_approved: Vec<String>,
}

impl<'a> Emitter<'a> {
    fn new(u: Unit<'a>, s: &'a Settings) -> Self {
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

    fn export_args(&self, src: Src, args: &mut Vec<Value>) {
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

    fn export_outputs(&self, src: Src) -> Vec<Value> {
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

    fn input_task(&mut self) {
        let mut args = vec![
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
            "container" => json!({"image": self.s.runner_image, "args": args}),
        });
        self.tasks
            .push(json!({"name": INPUT_TASK, "template": INPUT_TASK}));
    }

    fn stage(&mut self, i: usize, deps: Vec<String>) {
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

    fn stage_gate(
        &mut self,
        i: usize,
        suffix: &str,
        depends: Vec<String>,
        when: Cond,
        verb: &str,
    ) -> String {
        let s = &self.pb.spec.stages[i];
        // The risk approval asks the stage's approvers; the approval gate, those of the
        // branch that fires (a `risk: medium` action's gate asks even when none does).
        let approvers = if suffix == "approval" {
            cond::approver_cases(self.an, i, s, s.action().is_some() && cond::medium(s))
        } else {
            cond::approver_cases(self.an, i, s, true)
                .pop()
                .into_iter()
                .collect()
        };
        let n = s.notification.as_ref();
        self.gate(GateSpec {
            name: format!("{}-{suffix}", s.name.value),
            stage: s.name.value.clone(),
            what: format!(
                "{verb} stage `{}` of playbook `{}`",
                s.name.value,
                self.pb.name()
            ),
            depends,
            when,
            approvers,
            sla: s.sla.as_ref().map(|d| d.value),
            escalation: &s.escalation,
            on_pending: n.map(|n| channels(&n.on_pending)).unwrap_or_default(),
            on_approved: n.map(|n| channels(&n.on_approved)).unwrap_or_default(),
        })
    }

    fn stage_definition(&self, i: usize) -> String {
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

    fn stage_task(&mut self, i: usize, deps: Vec<String>, when: &Cond) {
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
            json!("run"),
            json!("--playbook"),
            json!(pb.name()),
            json!("--stage"),
            json!(name),
            json!("--workflow"),
            json!("{{workflow.name}}"),
            json!("--definition"),
            json!(self.stage_definition(i)),
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
            "container" => json!({"image": self.s.runner_image, "args": args}),
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

    fn refused(&mut self, i: usize, deps: Vec<String>) {
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

    #[allow(clippy::too_many_arguments)]
    fn notify_task(
        &mut self,
        name: String,
        depends: Option<String>,
        when: Option<String>,
        stage: &str,
        event: &str,
        chans: &[String],
        approvers: &[ApproverCase],
    ) {
        if chans.is_empty() {
            return;
        }
        self.use_shared(NOTIFY_TEMPLATE);
        self.tasks.push(obj! {
            "name" => name,
            "template" => NOTIFY_TEMPLATE,
            "depends" => depends,
            "when" => when,
            "arguments" => json!({"parameters": [
                param("stage", stage),
                param("event", event),
                param("channels", serde_json::to_string(chans).unwrap_or_default()),
                param("approvers", self.approvers_value(approvers)),
            ]}),
        });
    }

    /// The approvers as a parameter value: their JSON, or, when they depend on the branch
    /// that fires, an expression choosing the first case that holds.
    fn approvers_value(&self, cases: &[ApproverCase]) -> String {
        let json_of = |c: &ApproverCase| {
            serde_json::to_string(&cond::approvers_json(&c.approvers)).unwrap_or_default()
        };
        if cond::same_approvers(cases) {
            return cases
                .first()
                .map(|c| compact_json_for_argo(&cond::approvers_json(&c.approvers)))
                .unwrap_or_else(|| "[]".into());
        }
        let mut rest = cases.iter().rev();
        let mut e = rest
            .next()
            .map(|c| cond::expr_str(&json_of(c)))
            .unwrap_or_else(|| "'[]'".into());
        for c in rest {
            e = match &c.when {
                Cond::Const(true) => cond::expr_str(&json_of(c)),
                Cond::Const(false) => e,
                w => format!(
                    "({}) ? {} : ({e})",
                    self.expr(w),
                    cond::expr_str(&json_of(c))
                ),
            };
        }
        tag(&e)
    }

    /// Emits a gate; returns the name of its final check task.
    fn gate(&mut self, g: GateSpec<'_>) -> String {
        self.use_shared(CHECK_TEMPLATE);
        let depends = self.depends(g.depends.clone(), &g.when);
        let when0 = self.when(&g.when);
        let g_expr = match &g.when {
            Cond::Const(true) => None,
            c => Some(self.expr(c)),
        };
        // Levels: the SLA, then each escalation level.
        let mut levels: Vec<Level> = vec![(
            g.name.clone(),
            g.sla,
            g.approvers.clone(),
            g.on_pending.clone(),
        )];
        for (k, esc) in g.escalation.iter().enumerate() {
            let extra = esc
                .approvers
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_default();
            let approvers = cond::with_approvers(&g.approvers, &extra);
            let base = g.name.strip_suffix("-approval").unwrap_or(&g.name);
            levels.push((
                format!("{base}-escalation-{}", k + 1),
                Some(esc.after.value),
                approvers,
                channels(&esc.notify),
            ));
        }
        let multi = levels.len() > 1;
        let mut decisions: Vec<String> = Vec::new();
        for (k, (task, duration, approvers, notify)) in levels.iter().enumerate() {
            let (dep, when) = if k == 0 {
                (depends.clone(), when0.clone())
            } else {
                let prev = &decisions[k - 1];
                let opened = format!(
                    "tasks[{}].outputs.parameters['outcome'] == 'expired'",
                    cond::expr_str(prev)
                );
                let w = match &g_expr {
                    Some(e) => format!("({e}) && {opened}"),
                    None => opened,
                };
                (Some(prev.clone()), Some(tag(&w)))
            };
            let level = if k == 0 {
                "sla".to_string()
            } else {
                format!("escalation {k}")
            };
            let by_branch = !cond::same_approvers(approvers);
            let desc = format!(
                "Approve (`approve`) or reject (`reject`) to {}. Approvers: {}.{}",
                g.what,
                approver_text(approvers),
                match duration {
                    Some(d) if k == 0 =>
                        format!(" Expires after {} without a decision.", go_duration(*d)),
                    Some(d) => format!(
                        " Escalation level {k}; expires after {} without a decision.",
                        go_duration(*d)
                    ),
                    None => String::new(),
                }
            );
            let mut inputs = vec![json!({
                "name": "decision",
                "default": "reject",
                "enum": ["approve", "reject"],
                "description": desc,
            })];
            let annotations = if by_branch {
                // The branch that fires is known only at run time: the task supplies its
                // approvers as the input `approvers` (recorded in the node's inputs).
                inputs.push(json!({
                    "name": "approvers",
                    "description": "who may approve: the approvers of the branch of the gate's conditions that fired (JSON)",
                }));
                json!({APPROVERS_BY_BRANCH_ANNOTATION: compact_json_for_argo(&approvers_by_branch(approvers))})
            } else {
                let first = approvers
                    .first()
                    .map(|c| c.approvers.as_slice())
                    .unwrap_or(&[]);
                json!({APPROVERS_ANNOTATION: first.iter().map(cond::approver_str).collect::<Vec<_>>().join(",")})
            };
            self.templates.push(obj! {
                "name" => task.clone(),
                "metadata" => json!({"annotations": annotations}),
                "inputs" => json!({"parameters": inputs}),
                "outputs" => json!({"parameters": [{"name": "decision", "valueFrom": {"supplied": {}}}]}),
                "suspend" => match duration {
                    Some(d) => json!({"duration": go_duration(*d)}),
                    None => json!({}),
                },
                "metrics" => json!({"prometheus": [{
                    "name": "pbc_approval_wait_seconds",
                    "help": "How long a pbc approval gate waited for a decision",
                    "labels": [self.pb_label(), {"key": "gate", "value": task}, {"key": "level", "value": level}],
                    "gauge": {"value": "{{duration}}", "realtime": false},
                }]}),
            });
            self.tasks.push(obj! {
                "name" => task.clone(),
                "template" => task.clone(),
                "depends" => dep.clone(),
                "when" => when.clone(),
                "arguments" => by_branch.then(|| json!({"parameters": [param("approvers", self.approvers_value(approvers))]})),
            });
            let event = if k == 0 { "pending" } else { "escalated" };
            self.notify_task(
                format!("{task}-notify"),
                dep.clone(),
                when.clone(),
                &g.stage,
                event,
                notify,
                approvers,
            );
            if multi {
                let d = format!("{task}-decision");
                self.tasks.push(obj! {
                    "name" => d.clone(),
                    "template" => CHECK_TEMPLATE,
                    "depends" => task.clone(),
                    "when" => when.clone(),
                    "arguments" => json!({"parameters": [
                        param("gate", task.clone()),
                        param("mode", "level"),
                        param("decision", format!("{{{{tasks.{task}.outputs.parameters.decision}}}}")),
                    ]}),
                });
                decisions.push(d);
            }
        }
        let check = format!("{}-check", g.name);
        let decision = if multi {
            let outcome =
                |d: &str| format!("tasks[{}].outputs.parameters['outcome']", cond::expr_str(d));
            let mut e = outcome(decisions.last().map(String::as_str).unwrap_or_default());
            for d in decisions.iter().rev().skip(1) {
                e = format!("({} == 'expired' ? {e} : {})", outcome(d), outcome(d));
            }
            tag(&e)
        } else {
            format!("{{{{tasks.{}.outputs.parameters.decision}}}}", g.name)
        };
        let check_dep = if multi {
            decisions.join(" && ")
        } else {
            g.name.clone()
        };
        self.tasks.push(obj! {
            "name" => check.clone(),
            "template" => CHECK_TEMPLATE,
            "depends" => check_dep,
            "when" => when0.clone(),
            "arguments" => json!({"parameters": [
                param("gate", g.name.clone()),
                param("mode", "final"),
                param("decision", decision),
            ]}),
        });
        self.notify_task(
            format!("{}-approved-notify", g.name),
            Some(check.clone()),
            when0,
            &g.stage,
            "approved",
            &g.on_approved,
            &g.approvers,
        );
        check
    }

    fn shared_template(&self, name: &str) -> Value {
        match name {
            CHECK_TEMPLATE => json!({
                "name": CHECK_TEMPLATE,
                "inputs": {"parameters": [
                    {"name": "gate"},
                    {"name": "mode"},
                    {"name": "decision", "default": ""},
                    {"name": "runbook", "default": ""},
                ]},
                "outputs": {"parameters": [
                    {"name": "outcome", "valueFrom": {"path": "/tmp/pbc-outcome", "default": ""}},
                ]},
                "script": {
                    "image": self.s.check_image,
                    "command": ["sh"],
                    "source": GATE_CHECK_SCRIPT,
                    "env": [
                        {"name": "PBC_GATE", "value": "{{inputs.parameters.gate}}"},
                        {"name": "PBC_MODE", "value": "{{inputs.parameters.mode}}"},
                        {"name": "PBC_DECISION", "value": "{{inputs.parameters.decision}}"},
                        {"name": "PBC_RUNBOOK", "value": "{{inputs.parameters.runbook}}"},
                        {"name": "PBC_OUTCOME_FILE", "value": "/tmp/pbc-outcome"},
                    ],
                },
            }),
            _ => json!({
                "name": NOTIFY_TEMPLATE,
                "inputs": {"parameters": [
                    {"name": "stage"},
                    {"name": "event"},
                    {"name": "channels"},
                    {"name": "approvers", "default": "[]"},
                ]},
                "container": {
                    "image": self.s.runner_image,
                    "args": [
                        "notify", "--playbook", self.pb.name(), "--workflow", "{{workflow.name}}",
                        "--stage", "{{inputs.parameters.stage}}", "--event", "{{inputs.parameters.event}}",
                        "--channels", "{{inputs.parameters.channels}}", "--approvers", "{{inputs.parameters.approvers}}",
                    ],
                },
            }),
        }
    }

    /// `pbc-exit`: on a run that did not succeed, the rollback steps (`revert-to-previous`),
    /// then the notifications (rollback channels, rejected and expired gates, failed stages).
    fn exit_handler(&mut self) -> Option<Value> {
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
                "container": {"image": self.s.runner_image, "args": [
                    "rollback", "--playbook", pb.name(), "--workflow", "{{workflow.name}}",
                    "--status", "{{workflow.status}}",
                    "--steps", compact_json_for_argo(&Value::Array(steps)),
                ]},
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
                "container": {"image": self.s.runner_image, "args": [
                    "exit-notify", "--playbook", pb.name(), "--workflow", "{{workflow.name}}",
                    "--status", "{{workflow.status}}", "--failures", "{{workflow.failures}}",
                    "--channels", compact_json_for_argo(&table),
                ]},
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

    fn metrics(&self) -> Value {
        let pb = self.pb;
        let status = json!({"key": "status", "value": "{{workflow.status}}"});
        let mut prom = vec![
            json!({
                "name": "pbc_runs_total",
                "help": "Finished runs of a pbc playbook",
                "labels": [self.pb_label(), status],
                "counter": {"value": "1"},
            }),
            json!({
                "name": "pbc_run_duration_seconds",
                "help": "How long a run of a pbc playbook took",
                "labels": [self.pb_label(), status],
                "gauge": {"value": "{{workflow.duration}}", "realtime": false},
            }),
        ];
        if let Some(m) = &pb.spec.monitoring {
            for metric in &m.metrics {
                let (t, _) = pbc_compiler::expr::parse_metric_target(&metric.target.text.value);
                let Some(t) = t else { continue };
                let Some(v) = threshold(&t.value) else {
                    continue;
                };
                let mut labels = vec![
                    self.pb_label(),
                    json!({"key": "metric", "value": metric.name.value}),
                    json!({"key": "op", "value": compare_word(t.op)}),
                ];
                let q = t
                    .percentile
                    .as_ref()
                    .map(|p| format!("p{}", fmt_num(p.value)));
                labels
                    .push(json!({"key": "quantile", "value": q.unwrap_or_else(|| "none".into())}));
                prom.push(json!({
                    "name": "pbc_metric_target",
                    "help": "The target a pbc playbook declares for a metric (durations in seconds, percentages as fractions)",
                    "labels": labels,
                    "gauge": {"value": fmt_num(v), "realtime": false},
                }));
            }
            for alert in &m.alerts {
                let (c, _) = pbc_compiler::expr::parse_alert_condition(&alert.condition.text.value);
                let Some(c) = c else { continue };
                let Some(v) = threshold(&c.value) else {
                    continue;
                };
                let notify: Vec<&str> = alert.notify.iter().map(|n| n.value.as_str()).collect();
                prom.push(json!({
                    "name": "pbc_alert_threshold",
                    "help": "The threshold of an alert a pbc playbook declares on a metric",
                    "labels": [
                        self.pb_label(),
                        {"key": "metric", "value": c.metric},
                        {"key": "op", "value": compare_word(c.op)},
                        {"key": "notify", "value": notify.join(",")},
                    ],
                    "gauge": {"value": fmt_num(v), "realtime": false},
                }));
            }
        }
        json!({"prometheus": prom})
    }
}

fn threshold(e: &pbc_compiler::expr::Expr) -> Option<f64> {
    use pbc_compiler::expr::ExprKind;
    match &e.unparen().kind {
        ExprKind::Number(n) => Some(*n),
        ExprKind::Percent { value, .. } => Some(*value),
        ExprKind::Duration { seconds, .. } => Some(*seconds),
        _ => None,
    }
}

fn compare_word(op: pbc_compiler::expr::CompareOp) -> &'static str {
    use pbc_compiler::expr::CompareOp as C;
    match op {
        C::Eq | C::In => "eq",
        C::Ne | C::NotIn => "ne",
        C::Lt => "lt",
        C::Le => "le",
        C::Gt => "gt",
        C::Ge => "ge",
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
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
