//! Renderers: diagnostics are data until here. `human` (miette), `json`,
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
    json_with_suppressed(sources, diags, summary, &[])
}

/// The `--format json` document of `pbc check`: with a top-level `suppressed` list (each
/// finding a suppression comment removed: `code`, `file`, `line` of the finding, `reason` or
/// null) when a comment suppressed anything.
pub fn json_with_suppressed(
    sources: &SourceMap,
    diags: &[Diagnostic],
    summary: &Summary,
    suppressed: &[crate::guard::Suppressed],
) -> String {
    let mut v = json!({
        "diagnostics": diags.iter().map(|d| diagnostic_json(sources, d)).collect::<Vec<_>>(),
        "summary": {
            "errors": summary.errors,
            "warnings": summary.warnings,
            "infos": summary.infos,
            "files": summary.files,
        }
    });
    if !suppressed.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        let list: Vec<Value> = suppressed
            .iter()
            .map(|x| {
                let p = position(sources, x.span);
                json!({
                    "code": x.code.id,
                    "file": p.as_ref().map(|p| p.file.clone()),
                    "line": p.as_ref().map(|p| p.line),
                    "reason": x.reason,
                })
            })
            .collect();
        o.insert("suppressed".into(), Value::Array(list));
    }
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

/// The SARIF 2.1.0 schema this renderer targets (OASIS, with Errata 01).
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// A path as a SARIF `uri`: relative paths stay relative (to `%SRCROOT%`, the directory pbc
/// ran in), absolute ones become `file:` URIs; every byte outside RFC 3986's unreserved
/// characters and `/` is percent-encoded.
pub fn sarif_uri(path: &str) -> (String, bool) {
    let p = path.as_bytes();
    // A Windows drive (`C:/…`).
    let drive = p.len() >= 3 && p[0].is_ascii_alphabetic() && p[1] == b':' && p[2] == b'/';
    let mut enc = String::with_capacity(path.len());
    for (i, &b) in p.iter().enumerate() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
            || (drive && i == 1)
        {
            enc.push(b as char);
        } else {
            let _ = write!(enc, "%{b:02X}");
        }
    }
    if path.starts_with('/') {
        (format!("file://{enc}"), true)
    } else if drive {
        (format!("file:///{enc}"), true)
    } else {
        (enc, false)
    }
}

/// The documentation of a code without the doc comments' leading space.
fn doc_text(doc: &str) -> String {
    doc.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// What a code's thousands digit says, as a SARIF rule tag.
fn code_category(id: &str) -> &'static str {
    match id.as_bytes().get(2) {
        Some(b'0') => "loading",
        Some(b'1') => "overlays",
        Some(b'2') => "shape",
        Some(b'3') => "types",
        Some(b'4') => "stage-graph",
        Some(b'5') => "compliance",
        Some(b'6') => "policy",
        Some(b'9') => "internal",
        _ => "other",
    }
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn sarif_region(p: &Position) -> Value {
    json!({
        "startLine": p.line, "startColumn": p.column,
        "endLine": p.end_line, "endColumn": p.end_column
    })
}

fn sarif_artifact(p: &Position) -> Value {
    let (uri, absolute) = sarif_uri(&p.file);
    if absolute {
        json!({"uri": uri})
    } else {
        json!({"uri": uri, "uriBaseId": "%SRCROOT%"})
    }
}

/// One SARIF rule (`reportingDescriptor`) for a code: its name, the summary as the short
/// description, the documentation's first paragraph as the full one, the whole
/// documentation as help, and the default level.
pub fn sarif_rule(c: &crate::diag::Code) -> Value {
    let doc = doc_text(c.doc);
    let first = doc
        .split("\n\n")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "id": c.id,
        "name": c.name,
        "shortDescription": {"text": c.summary},
        "fullDescription": {"text": if first.is_empty() { c.summary.to_string() } else { first }},
        "help": {"text": doc, "markdown": doc},
        "defaultConfiguration": {"level": sarif_level(c.severity)},
        "properties": {"tags": [code_category(c.id)]},
    })
}

/// SARIF 2.1.0: one run, one rule per code that occurs (sorted), a result per diagnostic with
/// its exact region (lines 1-based, columns in Unicode code points, end exclusive), the
/// secondary labels as related locations, and the fix, if any, as a SARIF fix.
pub fn sarif(sources: &SourceMap, diags: &[Diagnostic], version: &str) -> String {
    let mut rules: BTreeMap<&str, &crate::diag::Code> = BTreeMap::new();
    for d in diags {
        rules.insert(d.code.id, d.code);
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let loc = |span: Span, msg: Option<&str>, id: Option<usize>| -> Option<Value> {
        let p = position(sources, span)?;
        let mut v = json!({
            "physicalLocation": {
                "artifactLocation": sarif_artifact(&p),
                "region": sarif_region(&p),
            }
        });
        if let Some(i) = id {
            v["id"] = json!(i);
        }
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
                "level": sarif_level(d.severity),
                "message": {"text": text},
                "locations": loc(d.span, d.label.as_deref(), None).into_iter().collect::<Vec<_>>(),
            });
            let related: Vec<Value> = d
                .labels
                .iter()
                .enumerate()
                .filter_map(|(i, l)| loc(l.span, Some(&l.message), Some(i + 1)))
                .collect();
            if !related.is_empty() {
                r["relatedLocations"] = Value::Array(related);
            }
            if let Some(fix) = &d.fix {
                // One artifactChange per file, its replacements in edit order.
                let mut changes: Vec<(Value, Vec<Value>)> = Vec::new();
                for e in &fix.edits {
                    let Some(p) = position(sources, e.span) else {
                        continue;
                    };
                    let artifact = sarif_artifact(&p);
                    let rep = json!({
                        "deletedRegion": sarif_region(&p),
                        "insertedContent": {"text": e.text}
                    });
                    match changes.iter_mut().find(|(a, _)| *a == artifact) {
                        Some((_, reps)) => reps.push(rep),
                        None => changes.push((artifact, vec![rep])),
                    }
                }
                if !changes.is_empty() {
                    let changes: Vec<Value> = changes
                        .into_iter()
                        .map(|(a, reps)| json!({"artifactLocation": a, "replacements": reps}))
                        .collect();
                    r["fixes"] =
                        json!([{"description": {"text": fix.title}, "artifactChanges": changes}]);
                }
            }
            r
        })
        .collect();
    let rules: Vec<Value> = rules.values().map(|c| sarif_rule(c)).collect();
    let v = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pbc",
                "fullName": "pbc, the playbook compiler",
                "version": version,
                "semanticVersion": version,
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
        // The header shows `path:line:column` with the column in Unicode scalar values;
        // miette's own suffix would count bytes, so it is turned off below.
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
            message: glue_names(&d.message),
            code: d.code.id.to_string(),
            severity: sev(d.severity),
            help: help.map(|h| glue_names(&h)),
            source,
            labels,
            related,
        }
    }

    /// Holds a name's words together while lines are wrapped: the spaces inside a
    /// backticked name (`audit-log: required`) become [`GLUE`], put back after rendering.
    pub(super) const GLUE: char = '\u{2007}';

    fn glue_names(text: &str) -> String {
        let mut inside = false;
        text.chars()
            .map(|c| match c {
                '`' => {
                    inside = !inside;
                    c
                }
                ' ' if inside => GLUE,
                c => c,
            })
            .collect()
    }

    pub(super) fn render(mut report: Report, opts: &HumanOptions) -> String {
        let theme = if opts.color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_links(false)
            .with_width(opts.width)
            .with_context_lines(1)
            // Lines break at spaces only, never at a hyphen or slash nor inside a word: a
            // name (`agenticops/v1`, a stage, a file) is never split across lines.
            .with_word_separator(textwrap::WordSeparator::AsciiSpace)
            .with_word_splitter(textwrap::WordSplitter::NoHyphenation)
            .with_break_words(false)
            // The source name already carries `path:line:column` (columns in Unicode scalar
            // values); miette would append its own, counted in bytes.
            .without_primary_span_start();
        // Labels in other files are rendered as reports of their own after the main one:
        // miette heads each related report with a bare `Advice:` line otherwise.
        let related = std::mem::take(&mut report.related);
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            out = format!("{}: {}\n", report.code, report.message);
        }
        for r in &related {
            let mut one = String::new();
            if handler.render_report(&mut one, r).is_ok() {
                out.push('\n');
                out.push_str(one.trim_start_matches('\n'));
            }
        }
        out.replace(GLUE, " ")
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
        out.push_str(&human_impl::render(r, opts));
        out.push('\n');
    }
    out.push_str(&summary_line(summary));
    out.push('\n');
    out
}

/// One diagnostic, human-readable.
pub fn human_one(sources: &SourceMap, d: &Diagnostic, opts: &HumanOptions) -> String {
    human_impl::render(human_impl::build(sources, d), opts)
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
