//! `pbc enforcement`: for every control each playbook declares, the construct that enforces
//! it in each target, or "not enforced" (the enforcement table of the compiler, read with
//! the configuration: a shared PostgreSQL `state:` and signed approvals change Argo's
//! cells).

use crate::cli::Global;
use crate::commands::{report_stderr, setup, usage_error};
use crate::reports::playbook_inputs;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::enforcement::{Deployment, TARGETS, Target, declared, mechanism_in};
use pbc_compiler::load::Loader;
use pbc_compiler::render::path_str;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `--format` of `pbc enforcement`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFormat {
    Markdown,
    Json,
}

/// One declared control and its cells, one per reported target.
struct Line {
    construct: &'static str,
    stage: Option<String>,
    what: String,
    file: String,
    line: u32,
    cells: Vec<Option<&'static str>>,
}

struct Book {
    name: String,
    environment: Option<String>,
    lines: Vec<Line>,
}

/// `pbc enforcement PATH… [--target T] [--format markdown|json]`.
pub fn main(
    g: &Global,
    mut paths: Vec<PathBuf>,
    target: Option<String>,
    format: MapFormat,
) -> ExitCode {
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let targets: Vec<Target> = match target.as_deref() {
        None => TARGETS.to_vec(),
        Some(t) => match Target::parse(t) {
            Some(t) => vec![t],
            None => {
                let names: Vec<&str> = TARGETS.iter().map(|t| t.name()).collect();
                return usage_error(format!(
                    "unknown target `{t}` (targets: {})",
                    names.join(", ")
                ));
            }
        },
    };
    let mut diags = Vec::new();
    let (loader, cfg) = match setup(g, &paths[0], &mut diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let inputs = match playbook_inputs(&loader, &paths, None, &mut diags) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let d = Deployment::from_config(&cfg);
    let opts = pbc_compiler::model::ModelOptions::from_config(&cfg);
    let mut books = Vec::new();
    for (env, docs) in &inputs {
        for doc in docs.iter().filter(|d| pbc_compiler::check::is_playbook(d)) {
            let Some(pb) =
                pbc_compiler::model::from_document(doc, &loader.sources, &opts, &mut diags)
            else {
                continue;
            };
            let lines = declared(&pb)
                .into_iter()
                .map(|c| {
                    let (file, line) = place(&loader, c.span);
                    Line {
                        construct: c.construct.name(),
                        stage: c.stage,
                        what: c.what,
                        file,
                        line,
                        cells: targets
                            .iter()
                            .map(|t| mechanism_in(c.construct, *t, d))
                            .collect(),
                    }
                })
                .collect();
            books.push(Book {
                name: pb.name().to_string(),
                environment: env.clone(),
                lines,
            });
        }
    }
    pbc_compiler::config::apply_suppressions(&loader.sources, &mut diags);
    cfg.apply_levels(&mut diags);
    report_stderr(g, &loader, &diags);
    if diags.iter().any(Diagnostic::is_error) {
        return ExitCode::from(1);
    }
    books.sort_by(|a, b| (&a.environment, &a.name).cmp(&(&b.environment, &b.name)));
    let text = match format {
        MapFormat::Markdown => markdown(&books, &targets, d),
        MapFormat::Json => json_text(&books, &targets, d, &cfg.targets.emit),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// The display path and 1-based line of a span.
fn place(loader: &Loader, span: pbc_compiler::span::Span) -> (String, u32) {
    match loader.sources.get(span.file) {
        Some(f) => (path_str(&f.path), f.line_col(span.start).line),
        None => (String::new(), 0),
    }
}

/// What a cell says: the mechanism, or why there is none.
fn cell(t: Target, m: Option<&str>) -> String {
    match m {
        Some(m) => m.to_string(),
        None if !t.executes() => "declared only (nothing runs it)".to_string(),
        None => "**not enforced**".to_string(),
    }
}

fn markdown(books: &[Book], targets: &[Target], d: Deployment) -> String {
    let mut out = String::from("## Enforcement map\n\n");
    out.push_str(&format!(
        "Configuration: shared PostgreSQL `state:` {}; signed approvals {}.\n",
        if d.shared_state { "yes" } else { "no" },
        if d.signed_approvals { "yes" } else { "no" },
    ));
    if books.is_empty() {
        out.push_str("\nNo playbooks.\n");
    }
    for b in books {
        out.push_str(&format!("\n### `{}`", b.name));
        if let Some(e) = &b.environment {
            out.push_str(&format!(" ({e})"));
        }
        out.push_str("\n\n");
        if b.lines.is_empty() {
            out.push_str("No controls declared.\n");
            continue;
        }
        out.push_str("| Control | Declared | Where |");
        for t in targets {
            out.push_str(&format!(" {} |", t.name()));
        }
        out.push_str("\n|---|---|---|");
        for _ in targets {
            out.push_str("---|");
        }
        out.push('\n');
        for l in &b.lines {
            let at = match &l.stage {
                Some(s) => format!("stage `{s}`, {}:{}", l.file, l.line),
                None => format!("{}:{}", l.file, l.line),
            };
            out.push_str(&format!(
                "| {} | {} | {} |",
                l.construct,
                escape(&l.what),
                escape(&at)
            ));
            for (t, m) in targets.iter().zip(&l.cells) {
                out.push_str(&format!(" {} |", escape(&cell(*t, *m))));
            }
            out.push('\n');
        }
    }
    out
}

/// A table cell's text: no pipe or newline breaks the row.
fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn json_text(books: &[Book], targets: &[Target], d: Deployment, emit: &[Target]) -> String {
    let v = json!({
        "targets": targets.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "emit": emit.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "deployment": {"shared-state": d.shared_state, "signed-approvals": d.signed_approvals},
        "playbooks": books.iter().map(|b| json!({
            "name": b.name,
            "environment": b.environment,
            "controls": b.lines.iter().map(|l| json!({
                "construct": l.construct,
                "stage": l.stage,
                "declared": l.what,
                "file": l.file,
                "line": l.line,
                "enforced": targets.iter().zip(&l.cells).map(|(t, m)| {
                    (t.name().to_string(), m.map_or(Value::Null, |m| Value::String(m.into())))
                }).collect::<serde_json::Map<String, Value>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
