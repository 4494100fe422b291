//! `pbc audit export`: the audit log (or one run's entries, or those since a time) in the
//! formats other tools take: `jsonl` (the log's own lines), `csv`, `otlp-json` (OTLP's JSON
//! encoding, one `ExportTraceServiceRequest` line then one `ExportLogsServiceRequest` line,
//! as the OpenTelemetry file exporter writes) and `cloudtrail` (one CloudTrail Lake
//! `eventData` object a line, as the `cloudtrail` sink sends them).

use crate::audit::AuditEntry;

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    OtlpJson,
    Cloudtrail,
}

/// A `--since` time.
pub type Since = chrono::DateTime<chrono::Utc>;

/// An RFC 3339 time, or a date (its midnight, UTC).
pub fn parse_since(s: &str) -> Option<Since> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Whether an entry's `time` (RFC 3339) is at or after `since`; an unreadable time is not.
pub fn at_or_after(time: &str, since: &Since) -> bool {
    chrono::DateTime::parse_from_rfc3339(time).is_ok_and(|t| t >= *since)
}

/// The time as the coverage report shows it (RFC 3339, UTC, seconds).
pub fn show_since(since: &Since) -> String {
    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Which entries.
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    pub run: Option<String>,
    /// RFC 3339; entries at or after it.
    pub since: Option<Since>,
}

impl ExportFilter {
    fn keeps(&self, e: &AuditEntry) -> bool {
        if let Some(r) = &self.run
            && e.run.as_deref() != Some(r.as_str())
        {
            return false;
        }
        if let Some(s) = &self.since {
            let t = chrono::DateTime::parse_from_rfc3339(&e.time).ok();
            return t.is_some_and(|t| t >= *s);
        }
        true
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The export of a log's text.
pub fn export(log: &str, filter: &ExportFilter, format: ExportFormat, account: &str) -> String {
    let lines: Vec<(&str, AuditEntry)> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<AuditEntry>(l).ok().map(|e| (l, e)))
        .filter(|(_, e)| filter.keeps(e))
        .collect();
    let mut out = String::new();
    match format {
        ExportFormat::Jsonl => {
            for (l, _) in &lines {
                out.push_str(l);
                out.push('\n');
            }
        }
        ExportFormat::Csv => {
            out.push_str("seq,time,run,stage,event,actor,compliance,details,prev,hash\n");
            for (_, e) in &lines {
                let row = [
                    e.seq.to_string(),
                    e.time.clone(),
                    e.run.clone().unwrap_or_default(),
                    e.stage.clone().unwrap_or_default(),
                    e.event.clone(),
                    e.actor.clone(),
                    e.compliance.join(";"),
                    e.details.to_string(),
                    e.prev.clone(),
                    e.hash.clone(),
                ];
                let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
        }
        ExportFormat::OtlpJson => {
            let entries: Vec<&AuditEntry> = lines.iter().map(|(_, e)| e).collect();
            let head = entries.last().map(|e| e.hash.as_str()).unwrap_or("");
            let (traces, logs) =
                crate::delivery::otlp::messages(&entries, "pbc", "", head, "export", 0);
            out.push_str(&serde_json::to_string(&traces).unwrap_or_default());
            out.push('\n');
            out.push_str(&serde_json::to_string(&logs).unwrap_or_default());
            out.push('\n');
        }
        ExportFormat::Cloudtrail => {
            for (l, e) in &lines {
                let data = crate::delivery::cloudtrail::event_data(e, l, account, None);
                out.push_str(&serde_json::to_string(&data).unwrap_or_default());
                out.push('\n');
            }
        }
    }
    out
}
