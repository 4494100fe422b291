//! The names an expression of a stage may read (outputs produced before it, `input`, and
//! in interpolations `playbook`, `stage`, `execution`, `approver`), and checking one
//! expression against them with every finding at its exact place.

use super::{Analysis, READ_BEFORE_PRODUCED, lower};
use crate::diag::Diagnostic;
use crate::expr::{self, ExprKind, Span as ESpan};
use crate::model::scalar::text_span;
use crate::model::{ExprText, Playbook};
use crate::span::SourceMap;
use crate::types::check::{self as tc, Env, Purpose, Root};
use crate::types::{Field, ObjTy, Ty};
use crate::yaml::Node;
use std::cell::RefCell;
use std::sync::Arc;

/// Resolves ref roots for one reader inside one stage.
pub(super) struct StageEnv<'a> {
    pb: &'a Playbook,
    an: &'a Analysis,
    reader: usize,
    sees_self: bool,
    read: &'a RefCell<Vec<bool>>,
    interpolation: bool,
    pub(super) has_gate: bool,
    /// Reads rejected for timing: (expression span, producer stage).
    rejected: RefCell<Vec<(ESpan, usize, String)>>,
}

impl<'a> StageEnv<'a> {
    pub(super) fn new(
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

    pub(super) fn with_gate(mut self, g: bool) -> Self {
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
pub(super) fn check_expr(
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

pub(super) fn report(
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
pub(super) fn expr_error(
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
