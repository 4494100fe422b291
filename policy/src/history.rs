//! History aggregates: what executed stages of the same action (across runs, from the
//! state store) add up to over the last hour, day and 30 days.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// One executed stage of an action: when it started and its interpolated params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub params: Value,
}

/// The windows of `history` in the input document, with their length in milliseconds.
pub const WINDOWS: &[(&str, i64)] = &[
    ("1h", 3_600_000),
    ("24h", 86_400_000),
    ("30d", 30 * 86_400_000),
];

/// A param's value as a number: a JSON number, or a string that reads as one.
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// `history` of the input document: per window, the number of executed stages in `rows`
/// and, for each numeric param of this stage (`params`), its total over them.
pub fn aggregates(rows: &[HistoryRow], params: &Value, now_ms: i64) -> Value {
    let numeric: Vec<&String> = params
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| as_number(v).is_some())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    let mut out = Map::new();
    for (name, len) in WINDOWS {
        let since = now_ms - len;
        let inside: Vec<&HistoryRow> = rows
            .iter()
            .filter(|r| r.at > since && r.at <= now_ms)
            .collect();
        let mut sums = Map::new();
        for p in &numeric {
            let total: f64 = inside
                .iter()
                .filter_map(|r| r.params.get(p.as_str()).and_then(as_number))
                .sum();
            sums.insert((*p).clone(), number(total));
        }
        out.insert(
            (*name).to_string(),
            json!({"count": inside.len(), "sum": Value::Object(sums)}),
        );
    }
    Value::Object(out)
}

/// A total as JSON: an integer when it is one.
pub(crate) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_and_sum_the_numeric_params() {
        let now = 100 * 86_400_000;
        let rows = vec![
            HistoryRow {
                at: now - 1000,
                params: json!({"amount": 10, "customer": "c1"}),
            },
            HistoryRow {
                at: now - 2 * 3_600_000,
                params: json!({"amount": "5.5"}),
            },
            HistoryRow {
                at: now - 2 * 86_400_000,
                params: json!({"amount": 100}),
            },
            HistoryRow {
                at: now - 40 * 86_400_000,
                params: json!({"amount": 1000}),
            },
        ];
        let h = aggregates(&rows, &json!({"amount": 1, "customer": "c1"}), now);
        assert_eq!(h["1h"], json!({"count": 1, "sum": {"amount": 10}}));
        assert_eq!(h["24h"], json!({"count": 2, "sum": {"amount": 15.5}}));
        assert_eq!(h["30d"], json!({"count": 3, "sum": {"amount": 115.5}}));
    }
}
