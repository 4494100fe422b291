//! Semantic checks of a typed playbook: the stage graph, outputs as types, and every read
//! (`conditions`, `when`, `context`, `${…}`, alert conditions) checked for type and for
//! *time*: an output may only be read after the stage that produces it is done.

mod checks;
mod env;
pub mod graph;
mod interpolate;
pub mod lower;

use crate::declare_codes;
use crate::diag::Diagnostic;
use crate::load::Loader;
use crate::model::{Approval, Playbook, Risk, Spanned, Stage};
use crate::span::Span;
use crate::types::check::Purpose;
use crate::types::{Lookup, SchemaStore, Ty};
use checks::{check_context, check_monitoring, unreachable_branches};
use env::{StageEnv, check_expr};
use graph::StageGraph;
use interpolate::{interpolate_spanned, interpolations_in};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

declare_codes! {
    /// `needs` names a stage that does not exist.
    ///
    /// `needs` lists stage names of the same playbook. The help lists them and the closest
    /// match.
    PB4001 UNKNOWN_STAGE "unknown-stage" Error "`needs` names an unknown stage";
    /// Stages wait for each other in a cycle, so none of them can start.
    ///
    /// The message shows the cycle; a label marks each `needs` entry (or implicit "the stage
    /// before") that closes it. Remove one of them.
    PB4002 CYCLE "cycle" Error "the stages wait for each other in a cycle";
    /// A read of an output that is not produced yet at that point.
    ///
    /// A condition, `when`, `context` entry or `${…}` may read only outputs of stages that are
    /// done before it is evaluated: the stages the reader waits for (through `needs`, or the
    /// stage before it), transitively. A gate of an `agent:` stage may also read the stage's
    /// own output (the gate sits after the agent); a gate of an `action:` stage may not (it
    /// sits before the action). Stages that the graph does not order may run in parallel, so
    /// reading one from the other is a race. Add the producer to the reader's `needs`.
    PB4003 READ_BEFORE_PRODUCED "read-before-produced" Error "an output is read before it is produced";
    /// Two stages declare output schemas with the same stem.
    ///
    /// A ref's first name is the stem of an `output-schema` file (`security-report` for
    /// `schemas/security-report.json`), so the stem must name one stage's output. Rename one
    /// of the files.
    PB4004 DUPLICATE_OUTPUT "duplicate-output" Error "two stages declare the same output stem";
    /// A stage can never run.
    ///
    /// It waits (transitively) for a stage on a dependency cycle, or for a `risk: high` stage,
    /// which pbc refuses to execute (it prints its runbook instead): the stages that need it
    /// are blocked.
    PB4005 UNREACHABLE "unreachable-stage" Warning "a stage can never run";
    /// An output that nothing reads.
    ///
    /// The stage declares an `output-schema`, but no condition, `when`, `context` or `${…}`
    /// reads it. That is fine for a final report; it is reported as information so that a
    /// misspelled reader is noticed.
    PB4006 UNREAD_OUTPUT "unread-output" Info "an output nothing reads";
    /// A `context` entry names no output file and no stage.
    ///
    /// `context` lists output files (`security-report.json`) or stage names whose outputs the
    /// stage's agent is given. The help lists what is available.
    PB4007 UNKNOWN_CONTEXT "unknown-context" Error "a `context` entry names nothing";
    /// A branch of `conditions` can never be taken.
    ///
    /// Branches are tried in order and the first that holds wins. A branch whose condition
    /// implies an earlier one (`rows > 10000` after `rows > 1000`) is never reached. Put the
    /// stricter condition first.
    PB3020 UNREACHABLE_BRANCH "unreachable-branch" Warning "a `conditions` branch can never be taken";
    /// An alert condition names a metric that `monitoring.metrics` does not declare, or a
    /// metric target or alert condition does not parse.
    ///
    /// A metric `target` is `[pNN] OP VALUE` (`p95 < 4h`, `< 5%`); an alert `condition` is
    /// `METRIC OP VALUE` (`approval-latency > 6h`) with METRIC a declared metric name.
    PB3021 BAD_MONITORING "bad-monitoring" Error "a monitoring target or alert condition is invalid";
    /// `${…}` names something that is not available there.
    ///
    /// Interpolations may use output refs (as in conditions), `input.…`, `playbook.name`,
    /// `stage.name`, `execution.id`, `execution.start-time`, and, inside a stage that has a
    /// gate, `approver.email` and `approver.role`.
    PB3022 BAD_INTERPOLATION "bad-interpolation" Error "an interpolation names something unavailable";
}

/// What the semantic pass needs from its caller.
pub struct Ctx<'a> {
    pub loader: &'a Loader,
    pub schemas: &'a SchemaStore,
    /// Extra directories for schema files (`schema-paths`).
    pub schema_paths: &'a [PathBuf],
}

/// A stage's output: its stem and type.
#[derive(Clone, Debug)]
pub struct Output {
    pub stage: usize,
    /// The stem of the schema file (`security-report`), if the stage declares one.
    pub stem: Option<String>,
    pub ty: Ty,
    /// The `output-schema` value.
    pub decl: Option<Span>,
}

/// The result of the semantic pass, reused by the targets.
#[derive(Debug)]
pub struct Analysis {
    pub graph: StageGraph,
    pub outputs: Vec<Output>,
    pub input: Ty,
    /// Per stage, per `conditions` entry: the lowered `if` (`None` for `else`, or when the
    /// condition has errors). Targets lower gates from these, never from the text.
    pub conditions: Vec<Vec<Option<lower::Lowered>>>,
    /// Per stage: the lowered `when` (`None` without `when` or with errors).
    pub whens: Vec<Option<lower::Lowered>>,
    /// A ref's first name to the stage it reads: output stems first, then stage names (the
    /// first of each), so that a lookup costs no scan of the stages.
    producers: HashMap<String, usize>,
}

impl Analysis {
    /// The stage whose output a ref's first name reads: the stage with that output stem,
    /// else the stage of that name.
    pub fn producer(&self, name: &str) -> Option<usize> {
        self.producers.get(name).copied()
    }
}

fn producers(pb: &Playbook, outputs: &[Output]) -> HashMap<String, usize> {
    let mut m: HashMap<String, usize> = HashMap::with_capacity(outputs.len() * 2);
    for o in outputs {
        if let Some(stem) = &o.stem {
            m.entry(stem.clone()).or_insert(o.stage);
        }
    }
    for (i, s) in pb.spec.stages.iter().enumerate() {
        m.entry(s.name.value.clone()).or_insert(i);
    }
    m
}

/// The stem of a schema file name: drops the directories, `.json` and a trailing `.schema`.
pub fn stem(file: &str) -> &str {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let name = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".yaml"))
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name);
    name.strip_suffix(".schema").unwrap_or(name)
}

/// Runs every semantic check on one playbook.
pub fn analyze(pb: &Playbook, cx: &Ctx<'_>, diags: &mut Vec<Diagnostic>) -> Analysis {
    let graph = StageGraph::build(pb, diags);
    let outputs = outputs(pb, cx, diags);
    let input = match pb.spec.input_schema() {
        Some(s) => load_ty(cx, s, diags),
        None => Ty::Any,
    };
    let producers = producers(pb, &outputs);
    let mut an = Analysis {
        graph,
        producers,
        outputs,
        input,
        conditions: Vec::new(),
        whens: Vec::new(),
    };
    let mut conditions = Vec::new();
    let mut whens = Vec::new();
    let sources = &cx.loader.sources;
    let read = RefCell::new(vec![false; pb.spec.stages.len()]);
    for (i, s) in pb.spec.stages.iter().enumerate() {
        let gate_sees_self = s.agent().is_some();
        let mut lowered = Vec::new();
        for c in &s.conditions {
            lowered.push(match &c.test {
                Some(t) => {
                    let env = StageEnv::new(pb, &an, i, gate_sees_self, &read, false);
                    check_expr(sources, t, &env, Purpose::Gate, diags)
                }
                None => None,
            });
        }
        conditions.push(lowered);
        unreachable_branches(s, diags);
        whens.push(match &s.when {
            Some(w) => {
                let env = StageEnv::new(pb, &an, i, false, &read, false);
                check_expr(sources, w, &env, Purpose::When, diags)
            }
            None => None,
        });
        check_context(pb, &an, i, s, &read, diags);
        let has_gate = stage_has_gate(pb, s);
        let env = StageEnv::new(pb, &an, i, false, &read, true).with_gate(has_gate);
        if let Some(p) = &s.params {
            interpolations_in(sources, p, &env, diags);
        }
        if let Some(p) = &s.prompt {
            interpolate_spanned(sources, p, &env, diags);
        }
        if let Some(l) = &s.langfuse
            && let Some(m) = &l.metadata
        {
            interpolations_in(sources, m, &env, diags);
        }
        if let Some(rb) = &s.rollback
            && let Some(p) = &rb.params
        {
            // The undo step runs after the stage: it may read the stage's own output.
            let env = StageEnv::new(pb, &an, i, true, &read, true).with_gate(has_gate);
            interpolations_in(sources, p, &env, diags);
        }
    }
    check_monitoring(pb, sources, diags);
    an.conditions = conditions;
    an.whens = whens;
    // Outputs nobody reads.
    let read = read.into_inner();
    for o in &an.outputs {
        if let (Some(decl), Some(stem)) = (o.decl, &o.stem)
            && !read.get(o.stage).copied().unwrap_or(true)
        {
            diags.push(
                Diagnostic::new(&UNREAD_OUTPUT, decl, format!("nothing reads the output `{stem}` of stage `{}`", pb.spec.stages[o.stage].name.value))
                    .with_help("read it in a condition, `when`, `context` or `${…}`, or remove `output-schema` if it is only a final report"),
            );
        }
    }
    an
}

/// True if the stage has an approval gate (manual, conditional, or medium risk).
pub fn stage_has_gate(pb: &Playbook, s: &Stage) -> bool {
    s.approval() != Approval::Auto || s.risk(&pb.spec) == Risk::Medium
}

fn load_ty(cx: &Ctx<'_>, reference: &Spanned<String>, diags: &mut Vec<Diagnostic>) -> Ty {
    let file = cx.loader.sources.get(reference.span.file);
    let from = file
        .as_ref()
        .map(|f| f.path.as_path())
        .unwrap_or(Path::new(""));
    // The display path is relative to the loader's cwd; the loader resolves it the same way.
    let found = cx.schemas.lookup(
        cx.loader,
        &reference.value,
        reference.span.file,
        from,
        cx.schema_paths,
    );
    match found {
        Lookup::Loaded(s) => {
            diags.extend(s.diags.iter().cloned());
            s.ty.clone()
        }
        Lookup::Refused(e) => {
            diags.push(e.diagnostic(reference.span));
            Ty::Any
        }
        Lookup::NotFound => {
            let mut d = Diagnostic::new(
                &crate::types::schema::SCHEMA_NOT_FOUND,
                reference.span,
                format!("schema file `{}` not found", reference.value),
            );
            let dir = from.parent().map(Path::to_path_buf).unwrap_or_default();
            d = d.with_help(format!(
                "it is looked up relative to `{}`{}",
                if dir.as_os_str().is_empty() {
                    ".".to_string()
                } else {
                    dir.display().to_string()
                },
                if cx.schema_paths.is_empty() {
                    ", then along `schema-paths` in `.pbc.yaml` (none configured)".to_string()
                } else {
                    ", then along `schema-paths`".to_string()
                }
            ));
            diags.push(d);
            Ty::Any
        }
    }
}

fn outputs(pb: &Playbook, cx: &Ctx<'_>, diags: &mut Vec<Diagnostic>) -> Vec<Output> {
    let mut out: Vec<Output> = Vec::new();
    for (i, s) in pb.spec.stages.iter().enumerate() {
        let (stem, ty, decl) = match &s.output_schema {
            Some(os) => (
                Some(stem(&os.value).to_string()),
                load_ty(cx, os, diags),
                Some(os.span),
            ),
            None => (None, Ty::Any, None),
        };
        if let (Some(st), Some(d)) = (&stem, decl)
            && let Some(prev) = out.iter().find(|o| o.stem.as_deref() == Some(st.as_str()))
        {
            diags.push(
                Diagnostic::new(
                    &DUPLICATE_OUTPUT,
                    d,
                    format!(
                        "stages `{}` and `{}` both declare the output `{st}`",
                        pb.spec.stages[prev.stage].name.value, s.name.value
                    ),
                )
                .with_label(prev.decl.unwrap_or(d), "first declared here")
                .with_help("refs name outputs by file stem: rename one of the schema files"),
            );
        }
        out.push(Output {
            stage: i,
            stem,
            ty,
            decl,
        });
    }
    out
}
