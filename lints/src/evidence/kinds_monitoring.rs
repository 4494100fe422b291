//! The monitoring evidence kinds: `monitoring-alerts` (at least one alert, each notifying a
//! channel) and `security-alerts` (an alert on a security-relevant signal: guardrail
//! triggers, failure, error or violation rates, changes; a cost or latency KPI is not one).

use super::EvidenceKind;
use super::eval::Ctx;
use crate::facts::PlaybookFacts;
use pbc_compiler::span::Span;

/// Evaluates one of this file's kinds (the caller dispatches only these); `spec` is where
/// a missing `spec.monitoring` is reported.
pub(super) fn eval(c: &mut Ctx<'_>, kind: EvidenceKind, pb: &PlaybookFacts, spec: Span) {
    match kind {
        EvidenceKind::MonitoringAlerts => {
            if pb.alerts.is_empty() {
                c.missing(
                "a monitoring alert (`spec.monitoring.alerts`)",
                pb.monitoring_key.unwrap_or(spec),
                "add `monitoring: {alerts: [{condition: METRIC > VALUE, notify: [CHANNEL]}]}` under `spec`",
            );
            }
            for a in &pb.alerts {
                let cond = &a.condition.value;
                match a.notify.first() {
                    Some(n) => c.found(
                        || format!("alert `{cond}` notifies `{}`", n.value),
                        Some(a.condition.span),
                    ),
                    None => c.missing(
                        format!("a `notify` channel on alert `{cond}`"),
                        a.span,
                        "add `notify: [CHANNEL]` to the alert",
                    ),
                }
            }
        }
        EvidenceKind::SecurityAlerts => {
            let (security, kpis): (Vec<_>, Vec<_>) = pb
                .alerts
                .iter()
                .partition(|a| super::security_signal(&a.condition.value));
            if security.is_empty() {
                let what = if kpis.is_empty() {
                    "an alert on a security-relevant signal (`spec.monitoring.alerts`)".to_string()
                } else {
                    let list: Vec<String> = kpis
                        .iter()
                        .map(|a| format!("`{}`", a.condition.value))
                        .collect();
                    format!(
                        "an alert on a security-relevant signal ({} watch no security signal)",
                        list.join(", ")
                    )
                };
                c.missing(
                what,
                kpis.first()
                    .map(|a| a.span)
                    .or(pb.monitoring_key)
                    .unwrap_or(spec),
                "alert on guardrail triggers, failure, error or violation rates, or changes, e.g. `{condition: guardrail-triggers > 0, notify: [CHANNEL]}` (declare the metric under `monitoring.metrics`)",
            );
            }
            for a in security {
                let cond = &a.condition.value;
                match a.notify.first() {
                    Some(n) => c.found(
                        || format!("security alert `{cond}` notifies `{}`", n.value),
                        Some(a.condition.span),
                    ),
                    None => c.missing(
                        format!("a `notify` channel on alert `{cond}`"),
                        a.span,
                        "add `notify: [CHANNEL]` to the alert",
                    ),
                }
            }
        }
        _ => {}
    }
}
