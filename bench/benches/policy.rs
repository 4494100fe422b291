//! Criterion benchmarks of policy evaluation (`docs/performance.md`, `docs/policies.md`):
//! the three examples of `testdata/policy/` (Rego data protection, Cedar write approval,
//! declarative refund limits with a day of history), each compiled once and evaluated on
//! the input document of a stage. Before criterion's figures, it prints p50/p95/p99 of
//! 10,000 single evaluations of each. No timing is asserted anywhere: these only measure.

use criterion::{Criterion, criterion_group, criterion_main};
use pbc_compiler::config::Config;
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_policy::{Compiled, HistoryRow, aggregates};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW: i64 = 1_800_000_000_000;

/// The three example policies, compiled, with an input each (and the refund's history).
fn examples() -> Vec<(&'static str, Compiled, Value, Vec<HistoryRow>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/policy");
    let loader = Loader::new(Arc::new(OsFs), root.clone(), Default::default());
    let mut diags = Vec::new();
    let cfg = Config::load(&loader, &root.join(".pbc.yaml"), &mut diags).expect("config");
    let set = pbc_policy::freeze(&cfg, &loader, &mut diags);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let compiled = |n: &str| set.policies[n].compile().expect("compiles");
    let base = |action: &str, params: Value, history: Value| {
        json!({"playbook": "bench", "environment": "production", "stage": "s", "kind": "action",
               "action": action, "agent": null, "params": params, "requester": "r@example.com",
               "approvals": [], "risk": "low", "compliance": ["SOC2-CC6.1"], "history": history,
               "time": "2027-01-15T08:00:00Z"})
    };
    let rows: Vec<HistoryRow> = (0..5)
        .map(|i| HistoryRow {
            at: NOW - 3_600_000 * (i + 1),
            params: json!({"amount": 900, "customer_id": "c-42"}),
        })
        .collect();
    let refund = json!({"amount": 500, "customer_id": "c-42"});
    vec![
        (
            "rego_data_protection",
            compiled("data-protection"),
            base(
                "http:api_call",
                json!({"endpoint": "https://untrusted-api.com", "payload": {"ssn": "123-45-6789"}}),
                json!({}),
            ),
            Vec::new(),
        ),
        (
            "cedar_write_approval",
            compiled("write-approval"),
            base(
                "db:writeData",
                json!({"table": "customers", "classification": "internal"}),
                json!({}),
            ),
            Vec::new(),
        ),
        (
            "rules_refund_limits",
            compiled("financial-transaction-limit"),
            base(
                "payments:refund",
                refund.clone(),
                aggregates(&rows, &refund, NOW),
            ),
            rows,
        ),
    ]
}

fn percentiles(name: &str, c: &Compiled, input: &Value, rows: &[HistoryRow]) {
    let n = 10_000;
    let mut t: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        black_box(c.evaluate(input, rows, NOW));
        t.push(s.elapsed());
    }
    t.sort();
    let at = |p: f64| t[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e6;
    eprintln!(
        "{name:<22} p50 {:>8.1} µs  p95 {:>8.1} µs  p99 {:>8.1} µs",
        at(0.50),
        at(0.95),
        at(0.99)
    );
}

fn policy(c: &mut Criterion) {
    let ex = examples();
    for (name, compiled, input, rows) in &ex {
        percentiles(name, compiled, input, rows);
    }
    let mut g = c.benchmark_group("policy");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, compiled, input, rows) in &ex {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(compiled.evaluate(input, rows, NOW)))
        });
    }
    g.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
