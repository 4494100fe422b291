//! `pbc diff` and `pbc coverage`: reports over a tree (what changed between two
//! revisions; which controls the playbooks cover and with what evidence).

use crate::cli::{DiffFormat, Global, ReportFormat};
use crate::commands::{report_stderr, setup, usage_error};
use pbc_compiler::check;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::load::Loader;
use pbc_compiler::render;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `pbc diff --base REV [PATH...]`.
pub fn diff(g: &Global, base: String, mut paths: Vec<PathBuf>, format: DiffFormat) -> ExitCode {
    use pbc_compiler::diff;
    use pbc_compiler::gitfs::GitFs;
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut config_diags = Vec::new();
    let (loader, cfg) = match setup(g, &paths[0], &mut config_diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let cwd = match std::env::current_dir() {
        Ok(c) => c,
        Err(e) => return usage_error(format!("cannot read the current directory: {e}")),
    };
    // The repository is the one holding the first path (pbc may be started outside it).
    let first = std::fs::canonicalize(cwd.join(&paths[0])).unwrap_or_else(|_| cwd.clone());
    let inside = if first.is_file() {
        first.parent().map(Path::to_path_buf).unwrap_or(first)
    } else {
        first
    };
    let git = match GitFs::open_in(&inside, &cwd, &base) {
        Ok(g) => g,
        Err(e) => return usage_error(e),
    };
    let info = diff::Base {
        rev: base.clone(),
        commit: git.commit(),
    };
    let git_cwd = git.cwd().to_path_buf();
    let base_loader = Loader::new(Arc::new(git), git_cwd, cfg.limits);
    let opts = pbc_compiler::model::ModelOptions::from_config(&cfg);
    let outcome = match diff::run(&base_loader, info, &loader, &paths, &opts) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let mut head_diags = config_diags;
    head_diags.extend(outcome.head_diags);
    report_stderr(g, &loader, &head_diags);
    if !outcome.base_diags.is_empty() {
        eprintln!("at `{base}`:");
        report_stderr(g, &base_loader, &outcome.base_diags);
    }
    let out = match format {
        DiffFormat::Markdown => diff::markdown(&outcome.report),
        DiffFormat::Json => diff::json(&outcome.report),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    let failed = head_diags
        .iter()
        .chain(&outcome.base_diags)
        .any(Diagnostic::is_error);
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `pbc coverage`.
pub fn coverage(
    g: &Global,
    mut paths: Vec<PathBuf>,
    env: Option<String>,
    catalogs: Vec<String>,
    format: ReportFormat,
    extras: CoverageExtras,
) -> ExitCode {
    let matrix = extras.matrix;
    if matrix && !matches!(format, ReportFormat::Markdown | ReportFormat::Html) {
        return usage_error("--matrix writes markdown or html (--format markdown|html)");
    }
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut diags = Vec::new();
    let (loader, cfg) = match setup(g, &paths[0], &mut diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let inputs = match playbook_inputs(&loader, &paths, env.as_deref(), &mut diags) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let comp = pbc_lints::Compliance::load(&cfg, &loader, &mut diags);
    // What the report reads must be sound: the playbooks' model, and every compliance tag
    // (an unknown or ambiguous one would silently claim nothing).
    let opts = pbc_compiler::model::ModelOptions::from_config(&cfg);
    for (env, docs) in &inputs {
        for doc in docs.iter().filter(|d| check::is_playbook(d)) {
            if let Some(pb) =
                pbc_compiler::model::from_document(doc, &loader.sources, &opts, &mut diags)
            {
                comp.check_tags(&pb, env.as_deref(), &mut diags);
            }
        }
    }
    pbc_compiler::config::apply_suppressions(&loader.sources, &mut diags);
    cfg.apply_levels(&mut diags);
    let sources = &loader.sources;
    pbc_compiler::diag::sort_and_dedup(&mut diags, |s| match sources.get(s.file) {
        Some(f) => (render::path_str(&f.path), s.start),
        None => (String::new(), s.start),
    });
    report_stderr(g, &loader, &diags);
    if diags.iter().any(Diagnostic::is_error) {
        return ExitCode::from(1);
    }
    let mut report = match pbc_lints::coverage::coverage(&comp, &loader.sources, &inputs, &catalogs)
    {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    // Provenance: the commit the input comes from (and whether it differs from it), and the
    // time only from SOURCE_DATE_EPOCH, never the clock.
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    report.provenance.generated_at = match pbc_lints::coverage::source_date(epoch.as_deref()) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let source = source_of_paths(&loader, &paths);
    report.provenance.source = Some(pbc_lints::coverage::Source {
        commit: source.commit,
        dirty: source.dirty,
    });
    if let Some(log) = &extras.audit {
        let since = match extras
            .since
            .as_deref()
            .map(|s| (s, pbc_runtime::audit_export::parse_since(s)))
        {
            None => None,
            Some((_, Some(t))) => Some(t),
            Some((s, None)) => {
                return usage_error(format!(
                    "--since {s}: not an RFC 3339 time or a date (2026-11-01T00:00:00Z, 2026-11-01)"
                ));
            }
        };
        let events = match operating_events(log, since) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        pbc_lints::coverage::operating::attach(
            &mut report,
            &comp,
            &events,
            log.display().to_string(),
            since.as_ref().map(pbc_runtime::audit_export::show_since),
        );
    }
    let text = match format {
        ReportFormat::Markdown if matrix => pbc_lints::coverage::matrix::markdown(&report),
        ReportFormat::Html if matrix => pbc_lints::coverage::matrix::html(&report),
        ReportFormat::Markdown => pbc_lints::coverage::markdown(&report),
        ReportFormat::Json => pbc_lints::coverage::json(&report),
        ReportFormat::Csv => pbc_lints::coverage::csv(&report),
        ReportFormat::Html => pbc_lints::coverage::html(&report),
        ReportFormat::Oscal => {
            pbc_lints::coverage::oscal::assessment_results(&report, &oscal_time(&report))
        }
        ReportFormat::OscalComponent => {
            pbc_lints::coverage::oscal::component_definition(&report, &oscal_time(&report))
        }
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// An environment (none: loose files) and its resolved documents.
pub(crate) type EnvDocs = (Option<String>, Vec<pbc_compiler::yaml::Node>);

/// The documents under `paths`, resolved (overlays applied), grouped by environment (loose
/// files last, with none); only environment `env` when given (an unknown one is a usage
/// error). Loading and overlay problems go to `diags`.
pub(crate) fn playbook_inputs(
    loader: &Loader,
    paths: &[PathBuf],
    env: Option<&str>,
    diags: &mut Vec<Diagnostic>,
) -> Result<Vec<EnvDocs>, ExitCode> {
    let units = match check::discover(paths) {
        Ok(u) => u,
        Err(e) => return Err(usage_error(e)),
    };
    let opts = pbc_compiler::resolve::ResolveOptions::default();
    let mut inputs: Vec<EnvDocs> = Vec::new();
    for tree in &units.trees {
        match pbc_compiler::resolve::resolve(loader, tree, &opts) {
            Ok(res) => {
                diags.extend(res.diags);
                inputs.push((check::environment(tree), res.docs));
            }
            Err(e) => return Err(usage_error(e)),
        }
    }
    let mut loose = Vec::new();
    for (f, _) in &units.files {
        match loader.load(f) {
            Ok(l) => {
                diags.extend(l.diags.iter().cloned());
                loose.extend(l.docs.iter().map(|d| d.root.clone()));
            }
            Err(e) => diags.push(check::load_error_diag(loader, &e)),
        }
    }
    if !loose.is_empty() {
        inputs.push((None, loose));
    }
    if let Some(e) = env {
        let known: Vec<String> = inputs.iter().filter_map(|(x, _)| x.clone()).collect();
        if !known.iter().any(|k| k == e) {
            return Err(usage_error(format!(
                "no environment `{e}` under the given paths (found: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        inputs.retain(|(x, _)| x.as_deref() == Some(e));
    }
    Ok(inputs)
}

/// The git state of the reported paths: `HEAD`'s commit, and whether any reported path or
/// any file read differs from it.
fn source_of_paths(loader: &Loader, paths: &[PathBuf]) -> pbc_targets::bundle::Source {
    let inputs = pbc_targets::bundle::inputs_read(loader);
    let mut out = pbc_targets::bundle::Source::default();
    for (i, p) in paths.iter().enumerate() {
        let abs = loader.resolve(p);
        let dir = if abs.is_file() {
            abs.parent().map(Path::to_path_buf).unwrap_or(abs)
        } else {
            abs
        };
        let s = pbc_targets::bundle::source_of(&dir, if i == 0 { &inputs } else { &[] });
        if i == 0 {
            out.commit = s.commit;
        } else if s.commit != out.commit {
            // Paths from different repositories (or in none): no one commit holds them.
            out.dirty = true;
        }
        out.dirty |= s.dirty;
    }
    out
}

/// `pbc coverage` options beside the format.
pub struct CoverageExtras {
    pub matrix: bool,
    pub audit: Option<PathBuf>,
    pub since: Option<String>,
}

/// The largest audit log `--audit` reads.
const MAX_AUDIT_LOG_BYTES: u64 = 512 * 1024 * 1024;

/// The entries of the audit log at `path` (a state directory or a log file) at or after
/// `since`, once its hash chain verifies. Err: why it cannot be used (fail closed: a log
/// that does not verify is no evidence).
fn operating_events(
    path: &Path,
    since: Option<pbc_runtime::audit_export::Since>,
) -> Result<Vec<pbc_lints::coverage::operating::LogEvent>, String> {
    let file = if path.is_dir() {
        path.join("audit.jsonl")
    } else {
        path.to_path_buf()
    };
    if path.is_dir() && !file.is_file() {
        return Err(format!(
            "{}: no audit.jsonl in this directory (a state store on PostgreSQL: write its log to a file with `pbc audit export --format jsonl`)",
            path.display()
        ));
    }
    let text = pbc_runtime::files::read_text(&file, "the audit log", MAX_AUDIT_LOG_BYTES)
        .map_err(|e| e.to_string())?;
    let v = pbc_runtime::audit::verify(&text, None);
    if let Some(p) = &v.problem {
        return Err(format!(
            "{}: the audit log does not verify at line {} (entry {}): {}; it is no evidence (see `pbc audit verify`)",
            file.display(),
            p.line,
            p.seq,
            p.message
        ));
    }
    Ok(pbc_runtime::audit::parse_entries(&text)
        .into_iter()
        .filter(|e| since.is_none_or(|s| pbc_runtime::audit_export::at_or_after(&e.time, &s)))
        .map(|e| pbc_lints::coverage::operating::LogEvent {
            approval: e
                .details
                .get("approval")
                .and_then(serde_json::Value::as_str)
                .map(String::from),
            time: e.time,
            event: e.event,
            actor: e.actor,
            run: e.run,
            tags: e.compliance,
        })
        .collect())
}

/// The time an OSCAL document states: `SOURCE_DATE_EPOCH`'s (reproducible), else now.
fn oscal_time(report: &pbc_lints::coverage::CoverageReport) -> String {
    report.provenance.generated_at.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        pbc_runtime::clock::rfc3339(ms)
    })
}
