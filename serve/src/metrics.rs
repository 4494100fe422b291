//! `GET /metrics`, Prometheus text format. Counters of this process are kept in memory
//! (`*_total`: runs started, runs finished by status, failed authentications; they restart at
//! zero with the server); gauges are read from the state store at each scrape (runs by
//! status, approvals pending, SLA expiries, escalation levels opened, notifications failed
//! and pending; stage durations and approval latencies as histograms; guardrail triggers by
//! name; policy evaluations, compliance rate, violations and evaluation latency), so they survive restarts and include what the CLI did.

use crate::App;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use pbc_runtime::{HISTOGRAM_BOUNDS_SECS as BOUNDS_SECS, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What this process counts.
#[derive(Default)]
pub struct Metrics {
    pub runs_started: Counter,
    pub auth_failures: Counter,
    pub runs_finished: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn finished(&self, status: &str) {
        if let Ok(mut m) = self.runs_finished.lock() {
            *m.entry(status.to_string()).or_insert(0) += 1;
        }
    }
}

fn series(out: &mut String, name: &str, kind: &str, help: &str, values: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in values {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

struct Aggregates {
    stages: Vec<Histogram>,
    approvals: Vec<Histogram>,
    guardrails: Vec<(String, u64)>,
    policies: pbc_runtime::PolicyStats,
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn histogram(out: &mut String, name: &str, help: &str, hs: &[Histogram]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for h in hs {
        for (bound, n) in BOUNDS_SECS.iter().zip(&h.buckets) {
            let le = format!("{bound}");
            let _ = writeln!(
                out,
                "{name}_bucket{} {n}",
                labels(&h.labels, Some(("le", &le)))
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            labels(&h.labels, Some(("le", "+Inf"))),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", labels(&h.labels, None), h.sum_secs);
        let _ = writeln!(out, "{name}_count{} {}", labels(&h.labels, None), h.count);
    }
}

/// Policy decisions over every run in the store: evaluations by decision, the compliance
/// rate, violations by policy and by the denied stage's risk, and evaluation latency as a
/// summary (p50, p95, p99).
fn policy_series(out: &mut String, p: &pbc_runtime::PolicyStats) {
    let decisions = [
        ("allow", p.allowed),
        ("deny", p.denied),
        ("require-approval", p.approvals_required),
    ];
    let by_decision: Vec<(String, u64)> = decisions
        .iter()
        .map(|(d, n)| (format!("{{decision=\"{d}\"}}"), *n))
        .collect();
    series(
        out,
        "pbc_policy_evaluations_total",
        "counter",
        "Policy evaluations over every stage of every run, by decision (state store).",
        &by_decision,
    );
    let _ = writeln!(
        out,
        "# HELP pbc_policy_compliance_ratio Allowed policy evaluations / all (1 when there were none)."
    );
    let _ = writeln!(out, "# TYPE pbc_policy_compliance_ratio gauge");
    let _ = writeln!(out, "pbc_policy_compliance_ratio {}", p.compliance_rate);
    let by_policy: Vec<(String, u64)> = p
        .violations_by_policy
        .iter()
        .map(|(k, n)| (format!("{{policy=\"{}\"}}", escape(k)), *n))
        .collect();
    series(
        out,
        "pbc_policy_violations_total",
        "counter",
        "Policy denials, by policy (state store).",
        &by_policy,
    );
    let by_risk: Vec<(String, u64)> = p
        .violations_by_risk
        .iter()
        .map(|(k, n)| (format!("{{risk=\"{}\"}}", escape(k)), *n))
        .collect();
    series(
        out,
        "pbc_policy_violations_by_risk_total",
        "counter",
        "Policy denials, by the risk of the stage denied: the violations' severity (state store).",
        &by_risk,
    );
    let name = "pbc_policy_evaluation_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} How long policy evaluations took: p50, p95, p99 (state store)."
    );
    let _ = writeln!(out, "# TYPE {name} summary");
    for (q, ms) in [
        ("0.5", p.latency_ms.p50),
        ("0.95", p.latency_ms.p95),
        ("0.99", p.latency_ms.p99),
    ] {
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", ms / 1000.0);
    }
    let _ = writeln!(out, "{name}_sum {}", p.latency_total_ms / 1000.0);
    let _ = writeln!(out, "{name}_count {}", p.evaluations);
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics (text exposition format)",
    responses(
        (status = 200, description = "the metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "the state store could not be read", content_type = "text/plain", body = String)
    )
)]
pub async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let (dir, backend) = (app.state_dir.clone(), app.state_backend.clone());
    let stored = tokio::task::spawn_blocking(move || {
        let mut rt = pbc_runtime::Runtime::open_with(&dir, &backend)?;
        let runs = rt.runs()?;
        let counts = rt.approval_counts()?;
        let outbox = rt.notifications_status()?;
        let aggregates = Aggregates {
            stages: rt.stage_durations()?,
            approvals: rt.approval_latencies()?,
            guardrails: rt.guardrail_triggers()?,
            policies: rt.policy_stats()?,
        };
        Ok::<_, pbc_runtime::Error>((runs, counts, outbox, aggregates))
    })
    .await;
    let (runs, counts, outbox, aggregates) = match stored {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "metrics");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "state store error\n".to_string(),
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error\n".to_string(),
            )
                .into_response();
        }
    };
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &runs {
        *by_status.entry(r.status.as_str()).or_insert(0) += 1;
    }
    let mut out = String::new();
    let m = &app.metrics;
    series(
        &mut out,
        "pbc_runs_started_total",
        "counter",
        "Runs this server started (since it started).",
        &[(String::new(), m.runs_started.get())],
    );
    let finished: Vec<(String, u64)> = m
        .runs_finished
        .lock()
        .map(|f| {
            f.iter()
                .map(|(s, n)| (format!("{{status=\"{s}\"}}"), *n))
                .collect()
        })
        .unwrap_or_default();
    series(
        &mut out,
        "pbc_runs_finished_total",
        "counter",
        "Runs this server drove to an end, by status (since it started).",
        &finished,
    );
    let stored: Vec<(String, u64)> = by_status
        .iter()
        .map(|(s, n)| (format!("{{status=\"{s}\"}}"), *n))
        .collect();
    series(
        &mut out,
        "pbc_runs",
        "gauge",
        "Runs in the state store, by status.",
        &stored,
    );
    series(
        &mut out,
        "pbc_approvals_pending",
        "gauge",
        "Approvals waiting for a person.",
        &[(String::new(), counts.pending)],
    );
    series(
        &mut out,
        "pbc_sla_expired",
        "gauge",
        "Approvals that expired after their SLA and every escalation level (state store).",
        &[(String::new(), counts.expired)],
    );
    series(
        &mut out,
        "pbc_sla_escalations",
        "gauge",
        "Escalation levels opened because an SLA passed (state store).",
        &[(String::new(), counts.escalations)],
    );
    series(
        &mut out,
        "pbc_notifications_failed",
        "gauge",
        "Notifications given up after their last attempt (state store outbox).",
        &[(String::new(), outbox.failed)],
    );
    series(
        &mut out,
        "pbc_notifications_pending",
        "gauge",
        "Notifications waiting to be sent (state store outbox).",
        &[(String::new(), outbox.pending)],
    );
    histogram(
        &mut out,
        "pbc_stage_duration_seconds",
        "How long stages took from start to end, by playbook and stage (state store).",
        &aggregates.stages,
    );
    histogram(
        &mut out,
        "pbc_approval_latency_seconds",
        "How long decided approvals waited for their decision, by decision (state store).",
        &aggregates.approvals,
    );
    let guardrails: Vec<(String, u64)> = aggregates
        .guardrails
        .iter()
        .map(|(g, n)| (format!("{{guardrail=\"{}\"}}", escape(g)), *n))
        .collect();
    series(
        &mut out,
        "pbc_guardrail_triggers_total",
        "counter",
        "Guardrail triggers over every stage of every run, by guardrail (state store).",
        &guardrails,
    );
    policy_series(&mut out, &aggregates.policies);
    series(
        &mut out,
        "pbc_auth_failures_total",
        "counter",
        "Failed authentications (since the server started).",
        &[(String::new(), m.auth_failures.get())],
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
