//! Aggregates over the state store for `pbc serve`'s metrics: stage durations and approval
//! latencies as histograms, guardrail triggers by name. Computed by SQL at each scrape (one
//! row per group, whatever the number of runs), so they include what the CLI did and survive
//! restarts.

use super::Runtime;
use crate::db::{Conn, params};
use crate::{Error, Result};

/// Upper bounds of the histogram buckets, in seconds (a gate waits minutes to hours, an
/// action milliseconds to minutes).
pub const BOUNDS_SECS: &[f64] = &[
    0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
];

/// One labelled histogram: cumulative counts per bound of [`BOUNDS_SECS`], then `+Inf`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Label name and value pairs.
    pub labels: Vec<(&'static str, String)>,
    /// Cumulative counts, one per bound.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_secs: f64,
}

/// `SELECT labels..., COUNT(*), SUM(d), SUM(d <= b1), ...` over `(labels, d)` rows in
/// milliseconds.
fn histograms(
    c: &Conn,
    names: &[&'static str],
    from: &str,
    label_cols: &str,
    ms: &str,
) -> Result<Vec<Histogram>> {
    let buckets: Vec<String> = BOUNDS_SECS
        .iter()
        .map(|b| {
            format!(
                "COUNT(CASE WHEN ({ms}) <= {} THEN 1 END)",
                (b * 1000.0) as i64
            )
        })
        .collect();
    let sql = format!(
        "SELECT {label_cols}, COUNT(*), CAST(COALESCE(SUM({ms}), 0) AS BIGINT), {} FROM {from} GROUP BY {label_cols} ORDER BY {label_cols}",
        buckets.join(", ")
    );
    let store = |e: crate::db::DbError| Error::Store(e.to_string());
    let mut st = c.prepare(&sql).map_err(store)?;
    let n = names.len();
    let rows = st
        .query_map(params![], |r| {
            let mut labels = Vec::with_capacity(n);
            for (i, name) in names.iter().enumerate() {
                labels.push((*name, r.get::<String>(i)?));
            }
            let count = r.get::<i64>(n)?.max(0) as u64;
            let sum_ms = r.get::<i64>(n + 1)?.max(0);
            let mut buckets = Vec::with_capacity(BOUNDS_SECS.len());
            for i in 0..BOUNDS_SECS.len() {
                buckets.push(r.get::<i64>(n + 2 + i)?.max(0) as u64);
            }
            Ok(Histogram {
                labels,
                buckets,
                count,
                sum_secs: sum_ms as f64 / 1000.0,
            })
        })
        .map_err(store)?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map_err(store)
}

impl Runtime {
    /// How long stages took (started to finished), by playbook and stage.
    pub fn stage_durations(&self) -> Result<Vec<Histogram>> {
        self.store.read(|c| {
            histograms(
                c,
                &["playbook", "stage"],
                "stages s JOIN runs r ON r.id = s.run WHERE s.started_at IS NOT NULL AND s.finished_at IS NOT NULL AND s.finished_at >= s.started_at",
                "r.playbook, s.name",
                "s.finished_at - s.started_at",
            )
        })
    }

    /// How long decided approvals waited for their decision, by outcome.
    pub fn approval_latencies(&self) -> Result<Vec<Histogram>> {
        self.store.read(|c| {
            histograms(
                c,
                &["decision"],
                "approvals WHERE decided_at IS NOT NULL AND status IN ('approved', 'rejected') AND decided_at >= opened_at",
                "status",
                "decided_at - opened_at",
            )
        })
    }

    /// How many times each guardrail triggered, over every stage of every run.
    pub fn guardrail_triggers(&self) -> Result<Vec<(String, u64)>> {
        self.store.read(|c| {
            let store = |e: crate::db::DbError| Error::Store(e.to_string());
            // JSON arrays are read with each backend's own functions.
            let sql = match c.dialect() {
                crate::db::Dialect::Sqlite => {
                    "SELECT j.value, COUNT(*) FROM stages s, json_each(s.guardrails) j WHERE json_valid(s.guardrails) AND j.type = 'text' GROUP BY j.value ORDER BY j.value"
                }
                crate::db::Dialect::Postgres => {
                    "SELECT e.j #>> '{}', COUNT(*) FROM stages s CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.guardrails::jsonb) = 'array' THEN s.guardrails::jsonb ELSE '[]'::jsonb END) AS e(j) WHERE jsonb_typeof(e.j) = 'string' GROUP BY 1 ORDER BY 1"
                }
            };
            let mut st = c.prepare(sql).map_err(store)?;
            let rows = st
                .query_map(params![], |r| {
                    Ok((r.get::<String>(0)?, r.get::<i64>(1)?.max(0) as u64))
                })
                .map_err(store)?;
            rows.collect::<std::result::Result<Vec<_>, _>>()
                .map_err(store)
        })
    }
}
