//! Semantic checks of a typed playbook: the stage graph, outputs as types, and every read
//! (`conditions`, `when`, `context`, `${…}`, alert conditions) checked for type and for
//! *time*: an output may only be read after the stage that produces it is done.

pub mod graph;
pub mod lower;

use crate::declare_codes;
use crate::diag::{Diagnostic, did_you_mean, one_of};
use crate::expr::{self, Expr, ExprKind, Span as ESpan};
use crate::load::Loader;
use crate::model::scalar::text_span;
use crate::model::{Approval, ExprText, Playbook, Risk, Spanned, Stage};
use crate::span::{SourceMap, Span};
use crate::types::check::{self as tc, Env, Purpose, Root};
use crate::types::{Field, Lookup, ObjTy, SchemaStore, Ty};
use crate::yaml::{Node, ScalarKind, Value};
use graph::StageGraph;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Resolves ref roots for one reader inside one stage.
struct StageEnv<'a> {
    pb: &'a Playbook,
    an: &'a Analysis,
    reader: usize,
    sees_self: bool,
    read: &'a RefCell<Vec<bool>>,
    interpolation: bool,
    has_gate: bool,
    /// Reads rejected for timing: (expression span, producer stage).
    rejected: RefCell<Vec<(ESpan, usize, String)>>,
}

impl<'a> StageEnv<'a> {
    fn new(
        pb: &'a Playbook,
        an: &'a Analysis,
        reader: usize,
        sees_self: bool,
        read: &'a RefCell<Vec<bool>>,
        interpolation: bool,
    ) -> Self {
        StageEnv {
            pb,
            an,
            reader,
            sees_self,
            read,
            interpolation,
            has_gate: false,
            rejected: RefCell::new(Vec::new()),
        }
    }

    fn with_gate(mut self, g: bool) -> Self {
        self.has_gate = g;
        self
    }

    fn producer(&self, name: &str) -> Option<usize> {
        self.an.producer(name)
    }

    fn builtin(&self, name: &str) -> Option<Ty> {
        if !self.interpolation {
            return None;
        }
        let fields: &[&str] = match name {
            "playbook" => &["name"],
            "stage" => &["name"],
            "execution" => &["id", "start-time"],
            "approver" if self.has_gate => &["email", "role"],
            _ => return None,
        };
        let sp = self
            .pb
            .spec
            .stages
            .get(self.reader)
            .map(|s| s.name.span)
            .unwrap_or_default();
        Some(Ty::Object(Arc::new(ObjTy {
            fields: fields
                .iter()
                .map(|f| Field {
                    name: (*f).to_string(),
                    ty: Ty::String,
                    required: true,
                    span: sp,
                })
                .collect(),
            open: false,
            span: sp,
        })))
    }
}

impl Env for StageEnv<'_> {
    fn root(&self, name: &str, at: ESpan) -> Root {
        if let Some(j) = self.producer(name) {
            if let Some(r) = self.read.borrow_mut().get_mut(j) {
                *r = true;
            }
            let visible =
                self.an.graph.before(j, self.reader) || (self.sees_self && j == self.reader);
            if !visible {
                self.rejected.borrow_mut().push((at, j, name.to_string()));
                return Root::Rejected;
            }
            let ty = self
                .an
                .outputs
                .get(j)
                .map(|o| o.ty.clone())
                .unwrap_or(Ty::Any);
            return Root::Type(
                ty,
                Some((self.pb.spec.stages[j].name.span, name.to_string())),
            );
        }
        if name == "input" {
            return Root::Type(self.an.input.clone(), None);
        }
        if let Some(t) = self.builtin(name) {
            return Root::Type(t, None);
        }
        Root::Unknown
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for o in &self.an.outputs {
            if self.an.graph.before(o.stage, self.reader)
                || (self.sees_self && o.stage == self.reader)
            {
                if let Some(s) = &o.stem {
                    v.push(s.clone());
                }
                v.push(self.pb.spec.stages[o.stage].name.value.clone());
            }
        }
        v.push("input".into());
        if self.interpolation {
            v.extend(["playbook", "stage", "execution"].map(String::from));
            if self.has_gate {
                v.push("approver".into());
            }
        }
        v.dedup();
        v
    }
}

/// Parses and type-checks one expression held in a scalar node; reports at exact sub-spans.
fn check_expr(
    sources: &SourceMap,
    e: &ExprText,
    env: &StageEnv<'_>,
    purpose: Purpose,
    diags: &mut Vec<Diagnostic>,
) -> Option<lower::Lowered> {
    let node = &e.node;
    let text = &e.text.value;
    let memo = expr::parse_memo(text);
    let (parsed, errors) = &*memo;
    for err in errors {
        diags.push(expr_error(sources, node, &tc::EXPR_SYNTAX, err));
    }
    let parsed = parsed.as_ref()?;
    if !errors.is_empty() {
        // Still note which outputs the expression reads, so they are not reported unread.
        for r in parsed.refs() {
            if let ExprKind::Ref { segments } = &r.kind
                && let Some((root, sp)) = segments.first()
            {
                let _ = env.root(root, sp.clone());
            }
        }
        env.rejected.borrow_mut().clear();
        return None;
    }
    let checked = tc::check(parsed, env, purpose);
    let has_errors = checked
        .findings
        .iter()
        .any(|f| f.code.severity == crate::diag::Severity::Error);
    let lowered = lower::lower(parsed, &checked.refs);
    let rejected = !env.rejected.borrow().is_empty();
    report(sources, node, env, checked, diags);
    if has_errors || rejected {
        return None;
    }
    Some(lowered)
}

fn report(
    sources: &SourceMap,
    node: &Node,
    env: &StageEnv<'_>,
    checked: tc::Checked,
    diags: &mut Vec<Diagnostic>,
) {
    for f in checked.findings {
        let mut d = Diagnostic::new(
            f.code,
            text_span(sources, node, f.span.start as usize, f.span.end as usize),
            f.message,
        );
        if let Some(h) = f.help {
            d = d.with_help(h);
        }
        for (s, m) in f.labels {
            d = d.with_label(s, m);
        }
        diags.push(d);
    }
    for (at, j, name) in env.rejected.borrow_mut().drain(..) {
        let reader = &env.pb.spec.stages[env.reader];
        let producer = &env.pb.spec.stages[j];
        let why = if j == env.reader {
            "an `action:` stage's gate sits before the action runs, so it cannot read the stage's own output".to_string()
        } else if env.an.graph.before(env.reader, j) {
            format!(
                "`{}` runs after `{}`",
                producer.name.value, reader.name.value
            )
        } else {
            format!(
                "`{}` and `{}` are not ordered by `needs` and may run in parallel",
                producer.name.value, reader.name.value
            )
        };
        let help = if j == env.reader {
            "read an earlier stage's output, or make the gate a separate stage after the action"
                .to_string()
        } else {
            format!(
                "add `{}` to the `needs` of `{}`",
                producer.name.value, reader.name.value
            )
        };
        diags.push(
            Diagnostic::new(
                &READ_BEFORE_PRODUCED,
                text_span(sources, node, at.start as usize, at.end as usize),
                format!("`{name}` is not produced yet here: {why}"),
            )
            .with_label(producer.name.span, "produced by this stage")
            .with_help(help),
        );
    }
}

/// An expression error as a diagnostic at its exact place inside the scalar `node`.
fn expr_error(
    sources: &SourceMap,
    node: &Node,
    code: &'static crate::diag::Code,
    err: &expr::ExprError,
) -> Diagnostic {
    let span = text_span(
        sources,
        node,
        err.span.start as usize,
        err.span.end as usize,
    );
    let d = Diagnostic::new(code, span, err.message.clone());
    match &err.help {
        Some(h) => d.with_help(h.clone()),
        None => d,
    }
}

/// Checks every `${…}` in the string scalars of an open map.
fn interpolations_in(
    sources: &SourceMap,
    n: &Node,
    env: &StageEnv<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut stack = vec![n];
    while let Some(x) = stack.pop() {
        match &x.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => {
                interpolate(sources, x, &s.text, env, diags)
            }
            Value::Scalar(_) => {}
            Value::Seq(items) => stack.extend(items.iter().rev()),
            Value::Map(entries) => stack.extend(entries.iter().rev().map(|e| &e.value)),
        }
    }
}

fn interpolate_spanned(
    sources: &SourceMap,
    s: &Spanned<String>,
    env: &StageEnv<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    // A prompt is a plain string in the model; re-find its node through the source span.
    let node = Node::scalar(
        s.span,
        s.value.clone(),
        ScalarKind::Str,
        style_at(sources, s.span),
    );
    interpolate(sources, &node, &s.value, env, diags);
}

fn style_at(sources: &SourceMap, span: Span) -> crate::yaml::Style {
    use crate::yaml::Style;
    let first = sources
        .get(span.file)
        .and_then(|f| f.text.as_bytes().get(span.start as usize).copied());
    match first {
        Some(b'"') => Style::DoubleQuoted,
        Some(b'\'') => Style::SingleQuoted,
        _ => {
            // A block scalar's span starts at its content; a plain one at its text. Both map
            // the same way.
            Style::Plain
        }
    }
}

fn interpolate(
    sources: &SourceMap,
    node: &Node,
    text: &str,
    env: &StageEnv<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    if !text.contains("${") {
        return;
    }
    let (items, errors) = expr::scan_interpolations(text);
    for err in errors {
        diags.push(Diagnostic::new(
            &BAD_INTERPOLATION,
            text_span(
                sources,
                node,
                err.span.start as usize,
                err.span.end as usize,
            ),
            err.message,
        ));
    }
    for it in items {
        let (parsed, errs) = it.parse();
        for err in &errs {
            diags.push(expr_error(sources, node, &tc::EXPR_SYNTAX, err));
        }
        let Some(p) = parsed else { continue };
        if !errs.is_empty() {
            continue;
        }
        match &p.kind {
            ExprKind::Ref { segments } => {
                if segments.first().is_some_and(|(r, _)| r == "approver") && !env.has_gate {
                    let sp = segments.first().map(|(_, s)| s.clone()).unwrap_or(p.span.clone());
                    diags.push(
                        Diagnostic::new(&BAD_INTERPOLATION, text_span(sources, node, sp.start as usize, p.span.end as usize), "`approver.*` is only defined in a stage that has an approval gate")
                            .with_help("give the stage `approval: manual` or `conditional`, or remove the interpolation"),
                    );
                    continue;
                }
                let checked = tc::check(&p, env, Purpose::Value);
                report(sources, node, env, checked, diags);
            }
            _ => diags.push(
                Diagnostic::new(&BAD_INTERPOLATION, text_span(sources, node, p.span.start as usize, p.span.end as usize), "`${…}` holds a ref such as `input.repository` or `playbook.name`, not an expression")
                    .with_help("compute the value in a stage and read its output"),
            ),
        }
    }
}

/// `context`: output files or stage names, produced before the stage.
fn check_context(
    pb: &Playbook,
    an: &Analysis,
    i: usize,
    s: &Stage,
    read: &RefCell<Vec<bool>>,
    diags: &mut Vec<Diagnostic>,
) {
    if s.context.is_empty() {
        return;
    }
    // Each stage's output file: as written, its file name and its stem.
    let files: Vec<Option<(&str, &str, &str)>> = pb
        .spec
        .stages
        .iter()
        .map(|x| {
            x.output_schema.as_ref().map(|o| {
                let f = o.value.as_str();
                (f, f.rsplit('/').next().unwrap_or(f), stem(f))
            })
        })
        .collect();
    for c in &s.context {
        let v = c.value.as_str();
        let v_stem = stem(v);
        let by_file = files.iter().position(|f| {
            f.is_some_and(|(file, name, stem)| file == v || name == v || stem == v_stem)
        });
        let j = by_file.or_else(|| pb.spec.stages.iter().position(|x| x.name.value == v));
        let Some(j) = j else {
            let mut avail: Vec<String> = Vec::new();
            for (k, x) in pb.spec.stages.iter().enumerate() {
                if an.graph.before(k, i) {
                    avail.push(x.name.value.clone());
                    if let Some(o) = &x.output_schema {
                        avail.push(o.value.rsplit('/').next().unwrap_or(&o.value).to_string());
                    }
                }
            }
            let help = match did_you_mean(v, avail.iter().map(String::as_str)) {
                Some(m) => format!("did you mean `{m}`? available: {}", one_of(&avail)),
                None if avail.is_empty() => "no earlier stage produces an output".to_string(),
                None => format!("available: {}", one_of(&avail)),
            };
            diags.push(
                Diagnostic::new(
                    &UNKNOWN_CONTEXT,
                    c.span,
                    format!("`{v}` is neither an output file nor a stage of this playbook"),
                )
                .with_help(help),
            );
            continue;
        };
        if let Some(r) = read.borrow_mut().get_mut(j) {
            *r = true;
        }
        if !an.graph.before(j, i) {
            let producer = &pb.spec.stages[j];
            let why = if j == i {
                "a stage cannot be given its own output".to_string()
            } else {
                format!(
                    "`{}` is not done before `{}` starts",
                    producer.name.value, s.name.value
                )
            };
            diags.push(
                Diagnostic::new(
                    &READ_BEFORE_PRODUCED,
                    c.span,
                    format!(
                        "`{v}` is not produced yet when `{}` starts: {why}",
                        s.name.value
                    ),
                )
                .with_label(producer.name.span, "produced by this stage")
                .with_help(format!(
                    "add `{}` to the `needs` of `{}`",
                    producer.name.value, s.name.value
                )),
            );
        }
    }
}

/// Monitoring: targets parse; alert conditions name declared metrics.
fn check_monitoring(pb: &Playbook, sources: &SourceMap, diags: &mut Vec<Diagnostic>) {
    let Some(m) = &pb.spec.monitoring else { return };
    let names: Vec<&str> = m.metrics.iter().map(|x| x.name.value.as_str()).collect();
    for metric in &m.metrics {
        let (_, errs) = expr::parse_metric_target(&metric.target.text.value);
        for e in &errs {
            diags.push(expr_error(sources, &metric.target.node, &BAD_MONITORING, e));
        }
    }
    for alert in &m.alerts {
        let (parsed, errs) = expr::parse_alert_condition(&alert.condition.text.value);
        let node = &alert.condition.node;
        for e in &errs {
            diags.push(expr_error(sources, node, &BAD_MONITORING, e));
        }
        if let Some(c) = parsed
            && !names.contains(&c.metric.as_str())
        {
            let help = match did_you_mean(&c.metric, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? metrics: {}", one_of(&names)),
                None if names.is_empty() => "declare it under `monitoring.metrics`".to_string(),
                None => format!("metrics: {}", one_of(&names)),
            };
            diags.push(
                Diagnostic::new(
                    &BAD_MONITORING,
                    text_span(
                        sources,
                        node,
                        c.metric_span.start as usize,
                        c.metric_span.end as usize,
                    ),
                    format!("`{}` is not a declared metric", c.metric),
                )
                .with_help(help),
            );
        }
    }
}

/// A simple implication test between comparisons on the same ref, for unreachable branches.
fn unreachable_branches(s: &Stage, diags: &mut Vec<Diagnostic>) {
    let mut earlier: Vec<(Expr, Span)> = Vec::new();
    for c in &s.conditions {
        let Some(t) = &c.test else { continue };
        let memo = expr::parse_memo(&t.text.value);
        let (Some(e), errs) = &*memo else {
            continue;
        };
        if !errs.is_empty() {
            continue;
        }
        let e = e.without_spans();
        if let Some((_, prev_span)) = earlier.iter().find(|(p, _)| lower::implies(&e, p)) {
            diags.push(
                Diagnostic::new(&UNREACHABLE_BRANCH, t.text.span, "this branch is never taken: an earlier branch already holds whenever this one does")
                    .with_label(*prev_span, "this earlier branch is tried first")
                    .with_help("branches are tried in order; put the stricter condition first"),
            );
        }
        earlier.push((e, t.text.span));
    }
}
