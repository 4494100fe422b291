//! `${…}` interpolations in params, prompts and metadata: each a ref, checked as a value.

use super::BAD_INTERPOLATION;
use super::env::{StageEnv, expr_error, report};
use crate::diag::Diagnostic;
use crate::expr::{self, ExprKind};
use crate::model::Spanned;
use crate::model::scalar::text_span;
use crate::span::{SourceMap, Span};
use crate::types::check::{self as tc, Purpose};
use crate::yaml::{Node, ScalarKind, Value};

/// Checks every `${…}` in the string scalars of an open map.
pub(super) fn interpolations_in(
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

pub(super) fn interpolate_spanned(
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
