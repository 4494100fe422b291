//! Renderers: diagnostics are data until here. `human` (miette), `json` (contract §2),
//! `github` (workflow commands) and `sarif` (2.1.0).

use crate::diag::{Diagnostic, Severity, Summary};
use crate::span::{SourceMap, Span};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A resolved position for output: display path, 1-based line/column, exclusive end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

/// Resolves a span to a [`Position`] (`None` for a span of an unknown file).
pub fn position(sources: &SourceMap, span: Span) -> Option<Position> {
    let (path, s, e) = sources.resolve(span)?;
    Some(Position {
        file: path_str(&path),
        line: s.line,
        column: s.column,
        end_line: e.line,
        end_column: e.column,
    })
}

/// A path as shown in output: forward slashes on every platform.
pub fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

fn pos_json(p: &Position) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("file".into(), json!(p.file));
    m.insert("line".into(), json!(p.line));
    m.insert("column".into(), json!(p.column));
    m.insert("end_line".into(), json!(p.end_line));
    m.insert("end_column".into(), json!(p.end_column));
    m
}

/// One diagnostic as the contract's JSON object.
pub fn diagnostic_json(sources: &SourceMap, d: &Diagnostic) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("code".into(), json!(d.code.id));
    m.insert("severity".into(), json!(d.severity.as_str()));
    m.insert("message".into(), json!(d.message));
    if let Some(p) = position(sources, d.span) {
        m.extend(pos_json(&p));
    }
    if let Some(h) = &d.help {
        m.insert("help".into(), json!(h));
    }
    let labels: Vec<Value> = d
        .labels
        .iter()
        .filter_map(|l| {
            let p = position(sources, l.span)?;
            let mut o = pos_json(&p);
            o.insert("message".into(), json!(l.message));
            Some(Value::Object(o))
        })
        .collect();
    m.insert("labels".into(), Value::Array(labels));
    if let Some(fix) = &d.fix {
        let edits: Vec<Value> = fix
            .edits
            .iter()
            .filter_map(|e| {
                let p = position(sources, e.span)?;
                let mut o = pos_json(&p);
                o.insert("text".into(), json!(e.text));
                Some(Value::Object(o))
            })
            .collect();
        m.insert("fix".into(), json!({"title": fix.title, "edits": edits}));
    }
    Value::Object(m)
}

/// The whole `--format json` document.
pub fn json(sources: &SourceMap, diags: &[Diagnostic], summary: &Summary) -> String {
    let v = json!({
        "diagnostics": diags.iter().map(|d| diagnostic_json(sources, d)).collect::<Vec<_>>(),
        "summary": {
            "errors": summary.errors,
            "warnings": summary.warnings,
            "infos": summary.infos,
            "files": summary.files,
        }
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

fn gh_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_escape_prop(s: &str) -> String {
    gh_escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands, one line per diagnostic.
pub fn github(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut msg = d.message.clone();
        if let Some(h) = &d.help {
            msg.push_str("\nhelp: ");
            msg.push_str(h);
        }
        match position(sources, d.span) {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "::{kind} file={},line={},col={},endLine={},endColumn={},title={}::{}",
                    gh_escape_prop(&p.file),
                    p.line,
                    p.column,
                    p.end_line,
                    p.end_column,
                    gh_escape_prop(d.code.id),
                    gh_escape_data(&msg)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "::{kind} title={}::{}",
                    gh_escape_prop(d.code.id),
                    gh_escape_data(&msg)
                );
            }
        }
    }
    out
}

/// SARIF 2.1.0 with one rule per code that occurs.
pub fn sarif(sources: &SourceMap, diags: &[Diagnostic], version: &str) -> String {
    let mut rules: BTreeMap<&str, &crate::diag::Code> = BTreeMap::new();
    for d in diags {
        rules.insert(d.code.id, d.code);
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    };
    let loc = |span: Span, msg: Option<&str>| -> Option<Value> {
        let p = position(sources, span)?;
        let mut v = json!({
            "physicalLocation": {
                "artifactLocation": {"uri": p.file},
                "region": {
                    "startLine": p.line, "startColumn": p.column,
                    "endLine": p.end_line, "endColumn": p.end_column
                }
            }
        });
        if let Some(m) = msg {
            v["message"] = json!({"text": m});
        }
        Some(v)
    };
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(h);
            }
            let mut r = json!({
                "ruleId": d.code.id,
                "ruleIndex": index.get(d.code.id).copied().unwrap_or(0),
                "level": level(d.severity),
                "message": {"text": text},
                "locations": loc(d.span, None).into_iter().collect::<Vec<_>>(),
            });
            let related: Vec<Value> = d
                .labels
                .iter()
                .enumerate()
                .filter_map(|(i, l)| {
                    let mut v = loc(l.span, Some(&l.message))?;
                    v["id"] = json!(i);
                    Some(v)
                })
                .collect();
            if !related.is_empty() {
                r["relatedLocations"] = Value::Array(related);
            }
            if let Some(fix) = &d.fix {
                let changes: Vec<Value> = fix
                    .edits
                    .iter()
                    .filter_map(|e| {
                        let p = position(sources, e.span)?;
                        Some(json!({
                            "artifactLocation": {"uri": p.file},
                            "replacements": [{
                                "deletedRegion": {
                                    "startLine": p.line, "startColumn": p.column,
                                    "endLine": p.end_line, "endColumn": p.end_column
                                },
                                "insertedContent": {"text": e.text}
                            }]
                        }))
                    })
                    .collect();
                r["fixes"] =
                    json!([{"description": {"text": fix.title}, "artifactChanges": changes}]);
            }
            r
        })
        .collect();
    let rules: Vec<Value> = rules
        .values()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "shortDescription": {"text": c.summary},
                "fullDescription": {"text": c.doc.lines().map(str::trim).collect::<Vec<_>>().join("\n").trim()},
                "defaultConfiguration": {"level": level(c.severity)},
            })
        })
        .collect();
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pbc",
                "version": version,
                "informationUri": "https://example.invalid/pbc",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// Options for the human renderer.
#[derive(Clone, Copy, Debug)]
pub struct HumanOptions {
    pub color: bool,
    /// Terminal width for wrapping.
    pub width: usize,
}

impl Default for HumanOptions {
    fn default() -> Self {
        HumanOptions {
            color: false,
            width: 100,
        }
    }
}

mod human_impl {
    use super::*;
    use miette::{
        Diagnostic as MDiag, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource,
        SourceSpan,
    };
    use std::fmt;

    #[derive(Debug)]
    pub(super) struct Report {
        pub message: String,
        pub code: String,
        pub severity: miette::Severity,
        pub help: Option<String>,
        pub source: Option<NamedSource<String>>,
        pub labels: Vec<LabeledSpan>,
        pub related: Vec<Report>,
    }

    impl fmt::Display for Report {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }
    impl std::error::Error for Report {}

    impl MDiag for Report {
        fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
            if self.code.is_empty() {
                None
            } else {
                Some(Box::new(&self.code))
            }
        }
        fn severity(&self) -> Option<miette::Severity> {
            Some(self.severity)
        }
        fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
            self.help
                .as_ref()
                .map(|h| Box::new(h) as Box<dyn fmt::Display>)
        }
        fn source_code(&self) -> Option<&dyn miette::SourceCode> {
            self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
        }
        fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
            self.source.as_ref()?;
            Some(Box::new(self.labels.iter().cloned()))
        }
        fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn MDiag> + 'a>> {
            if self.related.is_empty() {
                None
            } else {
                Some(Box::new(self.related.iter().map(|r| r as &dyn MDiag)))
            }
        }
    }

    fn sev(s: Severity) -> miette::Severity {
        match s {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        }
    }

    fn span_of(span: Span, len: usize) -> SourceSpan {
        let s = (span.start as usize).min(len);
        let e = (span.end as usize).min(len).max(s);
        SourceSpan::new(s.into(), e - s)
    }

    pub(super) fn build(sources: &SourceMap, d: &Diagnostic) -> Report {
        let file = sources.get(d.span.file);
        // The header shows `path:line:column` with the column in Unicode scalar values
        // (contract §2); miette's own suffix would count bytes, so it is turned off below.
        let source = file.as_ref().map(|f| {
            let lc = f.line_col(d.span.start);
            NamedSource::new(
                format!("{}:{}:{}", path_str(&f.path), lc.line, lc.column),
                f.text.to_string(),
            )
            .with_language("yaml")
        });
        let len = file.as_ref().map(|f| f.text.len()).unwrap_or(0);
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            d.label.clone(),
            span_of(d.span, len),
        )];
        let mut related = Vec::new();
        for l in &d.labels {
            if l.span.file == d.span.file {
                labels.push(LabeledSpan::new_with_span(
                    Some(l.message.clone()),
                    span_of(l.span, len),
                ));
            } else if let Some(f) = sources.get(l.span.file) {
                related.push(Report {
                    message: l.message.clone(),
                    code: String::new(),
                    severity: miette::Severity::Advice,
                    help: None,
                    source: Some({
                        let lc = f.line_col(l.span.start);
                        NamedSource::new(
                            format!("{}:{}:{}", path_str(&f.path), lc.line, lc.column),
                            f.text.to_string(),
                        )
                        .with_language("yaml")
                    }),
                    labels: vec![LabeledSpan::new_primary_with_span(
                        Some(l.message.clone()),
                        span_of(l.span, f.text.len()),
                    )],
                    related: Vec::new(),
                });
            }
        }
        let mut help = d.help.clone();
        if let Some(fix) = &d.fix {
            let t = format!("fix: {}", fix.title);
            help = Some(match help {
                Some(h) => format!("{h}\n{t}"),
                None => t,
            });
        }
        Report {
            message: d.message.clone(),
            code: d.code.id.to_string(),
            severity: sev(d.severity),
            help,
            source,
            labels,
            related,
        }
    }

    pub(super) fn render(report: &Report, opts: &HumanOptions) -> String {
        let theme = if opts.color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_links(false)
            .with_width(opts.width)
            .with_context_lines(1)
            // The source name already carries `path:line:column` (columns in Unicode scalar
            // values); miette would append its own, counted in bytes.
            .without_primary_span_start();
        let mut out = String::new();
        if handler.render_report(&mut out, report).is_err() {
            out = format!("{}: {}\n", report.code, report.message);
        }
        out
    }
}

/// Human-readable rendering of all diagnostics followed by the one-line summary.
pub fn human(
    sources: &SourceMap,
    diags: &[Diagnostic],
    summary: &Summary,
    opts: &HumanOptions,
) -> String {
    let mut out = String::new();
    for d in diags {
        let r = human_impl::build(sources, d);
        out.push_str(&human_impl::render(&r, opts));
        out.push('\n');
    }
    out.push_str(&summary_line(summary));
    out.push('\n');
    out
}

/// One diagnostic, human-readable.
pub fn human_one(sources: &SourceMap, d: &Diagnostic, opts: &HumanOptions) -> String {
    human_impl::render(&human_impl::build(sources, d), opts)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `2 errors, 1 warning, 0 infos in 3 files`.
pub fn summary_line(s: &Summary) -> String {
    let verdict = if s.errors > 0 { "failed" } else { "ok" };
    format!(
        "{verdict}: {}, {}, {} in {}",
        plural(s.errors, "error", "errors"),
        plural(s.warnings, "warning", "warnings"),
        plural(s.infos, "info", "infos"),
        plural(s.files, "file", "files"),
    )
}
