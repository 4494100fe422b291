//! The `otlp` audit sink: OpenTelemetry over HTTP, protobuf (`ENDPOINT/v1/traces` and
//! `ENDPOINT/v1/logs`, `Content-Type: application/x-protobuf`).
//!
//! A run is a trace (its id derived from the run id), the run is its root span and each
//! stage a child span (ids derived from the run and stage names); approval decisions,
//! guardrail triggers and policy decisions are span events; every audit entry is a log
//! record in the trace, its body the log's line byte for byte and its attributes `pbc.seq`,
//! `pbc.hash`, `pbc.prev`, `pbc.event`. The resource carries the batch's chain heads.
//! A run or stage whose entries span several batches is sent once per batch with the same
//! ids and the times of that batch's entries; backends that upsert by span id (Langfuse)
//! merge them. `headers-env` names a variable holding `key=value,...` headers (as
//! `OTEL_EXPORTER_OTLP_HEADERS`), e.g. Langfuse's `Authorization=Basic …`.

use super::batch::Batch;
use super::http::request;
use super::{SendError, Settings};
use crate::audit::AuditEntry;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use pbc_compiler::config::OtlpSink;
use prost::Message;
use sha2::Digest;
use std::collections::BTreeMap;

/// The events that are span events (besides being log records).
fn is_span_event(event: &str) -> bool {
    event.starts_with("approval-")
        || event.starts_with("guardrail-")
        || event.starts_with("policy-")
        || event == "stage-approved"
}

fn id(parts: &[&str], len: usize) -> Vec<u8> {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..len].to_vec()
}

/// The trace id of a run.
pub(crate) fn trace_id(run: &str) -> Vec<u8> {
    id(&["pbc-trace", run], 16)
}

/// The span id of a run (`stage: None`) or one of its stages.
pub(crate) fn span_id(run: &str, stage: Option<&str>) -> Vec<u8> {
    match stage {
        None => id(&["pbc-run", run], 8),
        Some(s) => id(&["pbc-stage", run, s], 8),
    }
}

fn nanos(time: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map(|n| n.max(0) as u64)
        .unwrap_or(0)
}

fn kv(key: &str, v: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn resource(service: &str, before: &str, after: &str, batch: &str) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", service),
            kv("pbc.chain.before", before),
            kv("pbc.chain.after", after),
            kv("pbc.batch", batch),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "pbc.audit".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// A span under construction: its entries' times and what they say.
#[derive(Default)]
struct Building {
    start: u64,
    end: u64,
    events: Vec<span::Event>,
    failed: Option<String>,
    playbook: Option<String>,
}

/// The traces and logs of some entries.
pub(crate) fn messages(
    entries: &[&AuditEntry],
    service: &str,
    before: &str,
    after: &str,
    batch: &str,
    observed: u64,
) -> (ExportTraceServiceRequest, ExportLogsServiceRequest) {
    let mut spans: BTreeMap<(String, Option<String>), Building> = BTreeMap::new();
    let mut logs = Vec::new();
    for e in entries {
        let Some(run) = e.run.as_deref() else {
            continue;
        };
        let t = nanos(&e.time);
        let mut keys = vec![(run.to_string(), None)];
        if let Some(s) = &e.stage {
            keys.push((run.to_string(), Some(s.clone())));
        }
        for k in keys {
            let b = spans.entry(k).or_insert_with(|| Building {
                start: t,
                end: t,
                ..Default::default()
            });
            b.start = b.start.min(t);
            b.end = b.end.max(t);
        }
        let own = (run.to_string(), e.stage.clone());
        if let Some(b) = spans.get_mut(&own) {
            if is_span_event(&e.event) {
                let mut attributes = vec![
                    kv("pbc.actor", e.actor.clone()),
                    kv_int("pbc.seq", e.seq as i64),
                ];
                if let Some(d) = e.details.as_object() {
                    for (k, v) in d {
                        let text = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        attributes.push(kv(&format!("pbc.{k}"), text));
                    }
                }
                b.events.push(span::Event {
                    time_unix_nano: t,
                    name: e.event.clone(),
                    attributes,
                    ..Default::default()
                });
            }
            if matches!(
                e.event.as_str(),
                "stage-failed" | "stage-refused" | "stage-blocked" | "approval-rejected"
            ) || (e.event == "run-ended"
                && e.details.get("status").and_then(|s| s.as_str()) != Some("succeeded"))
            {
                b.failed = Some(e.event.clone());
            }
            if e.event == "run-started" {
                b.playbook = e
                    .details
                    .get("playbook")
                    .and_then(|p| p.as_str())
                    .map(String::from);
            }
        }
        let warn = e.event.contains("failed")
            || e.event.contains("rejected")
            || e.event.contains("refused")
            || e.event.contains("violation")
            || e.event.starts_with("guardrail-");
        logs.push(LogRecord {
            time_unix_nano: t,
            observed_time_unix_nano: observed,
            severity_number: if warn { 13 } else { 9 },
            severity_text: if warn { "WARN" } else { "INFO" }.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(crate::audit::seal(e).0)),
            }),
            attributes: vec![
                kv_int("pbc.seq", e.seq as i64),
                kv("pbc.hash", e.hash.clone()),
                kv("pbc.prev", e.prev.clone()),
                kv("pbc.event", e.event.clone()),
                kv("pbc.actor", e.actor.clone()),
                kv("pbc.run", run),
            ]
            .into_iter()
            .chain(e.stage.clone().map(|s| kv("pbc.stage", s)))
            .collect(),
            trace_id: trace_id(run),
            span_id: span_id(run, e.stage.as_deref()),
            event_name: format!("pbc.{}", e.event),
            ..Default::default()
        });
    }
    let spans: Vec<Span> = spans
        .into_iter()
        .map(|((run, stage), b)| Span {
            trace_id: trace_id(&run),
            span_id: span_id(&run, stage.as_deref()),
            parent_span_id: if stage.is_some() {
                span_id(&run, None)
            } else {
                Vec::new()
            },
            name: match &stage {
                Some(s) => format!("stage {s}"),
                None => format!("run {}", b.playbook.as_deref().unwrap_or(&run)),
            },
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: b.start,
            end_time_unix_nano: b.end,
            attributes: vec![kv("pbc.run", run.clone())]
                .into_iter()
                .chain(stage.clone().map(|s| kv("pbc.stage", s)))
                .collect(),
            events: b.events,
            status: b.failed.map(|why| Status {
                message: why,
                code: 2,
            }),
            ..Default::default()
        })
        .collect();
    let res = resource(service, before, after, batch);
    (
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(res.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(res),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records: logs,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    )
}

/// `key=value,key2=value2`, values percent-decoded.
fn parse_headers(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), percent_decode(v.trim())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn send(s: &OtlpSink, b: &Batch<'_>, settings: &Settings) -> Result<(), SendError> {
    let entries: Vec<&AuditEntry> = b.lines.iter().map(|(_, e)| e).collect();
    let observed = (b.now.max(0) as u64).saturating_mul(1_000_000);
    let (traces, logs) = messages(
        &entries,
        &s.service_name,
        b.chain_before,
        b.chain_after,
        &b.id(),
        observed,
    );
    let mut headers = vec![(
        "content-type".to_string(),
        "application/x-protobuf".to_string(),
    )];
    if let Some(var) = &s.headers_env {
        headers.extend(parse_headers(&super::secret(var, "the OTLP headers")?));
    }
    for (path, body) in [
        ("/v1/traces", traces.encode_to_vec()),
        ("/v1/logs", logs.encode_to_vec()),
    ] {
        if path == "/v1/logs" && !s.logs {
            continue;
        }
        let url = format!("{}{path}", s.endpoint);
        let r = request(
            "POST",
            &url,
            &headers,
            Some(&body),
            s.timeout,
            settings,
            64 * 1024,
        )?;
        super::http::outcome(
            &url,
            &super::http::Response {
                status: r.status,
                body: String::from_utf8_lossy(&r.body).into_owned(),
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_like_the_otel_variable() {
        assert_eq!(
            parse_headers("Authorization=Basic%20abc, x-a = b"),
            vec![
                ("Authorization".to_string(), "Basic abc".to_string()),
                ("x-a".to_string(), "b".to_string())
            ]
        );
    }
}
