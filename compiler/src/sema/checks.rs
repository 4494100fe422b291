//! The checks of a stage's other declarations: `context` entries, monitoring targets and
//! alerts, and `conditions` branches that can never be taken.

use super::env::expr_error;
use super::{
    Analysis, BAD_MONITORING, READ_BEFORE_PRODUCED, UNKNOWN_CONTEXT, UNREACHABLE_BRANCH, lower,
    stem,
};
use crate::diag::{Diagnostic, did_you_mean, one_of};
use crate::expr::{self, Expr};
use crate::model::scalar::text_span;
use crate::model::{Playbook, Stage};
use crate::span::{SourceMap, Span};
use std::cell::RefCell;

/// `context`: output files or stage names, produced before the stage.
pub(super) fn check_context(
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
pub(super) fn check_monitoring(pb: &Playbook, sources: &SourceMap, diags: &mut Vec<Diagnostic>) {
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
pub(super) fn unreachable_branches(s: &Stage, diags: &mut Vec<Diagnostic>) {
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
