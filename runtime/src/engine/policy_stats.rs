//! Policy figures over every run in the state store (`pbc runs --stats`, the server's
//! metrics): how many decisions, the compliance rate (allowed / all), violations by policy
//! and by the stage's risk, and evaluation latency percentiles.

use super::Runtime;
use crate::db::params;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the state store's policy decisions add up to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PolicyStats {
    pub evaluations: u64,
    pub allowed: u64,
    pub denied: u64,
    pub approvals_required: u64,
    /// allowed / evaluations (1 when there were none).
    pub compliance_rate: f64,
    /// Denies per policy.
    pub violations_by_policy: BTreeMap<String, u64>,
    /// Denies per risk of the stage denied (`low`, `medium`, `high`).
    pub violations_by_risk: BTreeMap<String, u64>,
    /// Evaluation time percentiles, milliseconds.
    pub latency_ms: Latency,
    /// The sum of every evaluation's time, milliseconds.
    pub latency_total_ms: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The `p`th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

impl Runtime {
    /// Figures of every policy decision in the store.
    pub fn policy_stats(&self) -> Result<PolicyStats> {
        let rows: Vec<(String, String, i64, String)> = self.store.read(|c| {
            let mut st = c
                .prepare("SELECT policy, decision, elapsed_us, risk FROM policy_decisions")
                .map_err(|e| Error::Store(e.to_string()))?;
            st.query_map(params![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(|e| Error::Store(e.to_string()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Store(e.to_string()))
        })?;
        let mut s = PolicyStats::default();
        let mut times: Vec<u64> = Vec::with_capacity(rows.len());
        for (policy, decision, us, risk) in rows {
            s.evaluations += 1;
            times.push(us.max(0) as u64);
            match decision.as_str() {
                "allow" => s.allowed += 1,
                "require-approval" => s.approvals_required += 1,
                _ => {
                    s.denied += 1;
                    *s.violations_by_policy.entry(policy).or_default() += 1;
                    *s.violations_by_risk.entry(risk).or_default() += 1;
                }
            }
        }
        times.sort_unstable();
        s.latency_total_ms = times.iter().map(|t| *t as f64).sum::<f64>() / 1000.0;
        s.compliance_rate = if s.evaluations == 0 {
            1.0
        } else {
            s.allowed as f64 / s.evaluations as f64
        };
        s.latency_ms = Latency {
            p50: percentile(&times, 0.50),
            p95: percentile(&times, 0.95),
            p99: percentile(&times, 0.99),
            max: times.last().map(|t| *t as f64 / 1000.0).unwrap_or(0.0),
        };
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
