//! The workflow's Prometheus metrics: runs, their duration, and each declared metric target
//! and alert threshold as a gauge.

use super::Emitter;
use serde_json::{Value, json};

impl Emitter<'_> {
    pub(super) fn metrics(&self) -> Value {
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
