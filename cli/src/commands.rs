//! Command implementations: each wires the library crates together and renders.

use crate::cli::{CheckFormat, Color, Global, LoadRestrictor, Target};
use pbc_compiler::check::{self, PlaybookCtx};
use pbc_compiler::config::Config;
use pbc_compiler::diag::{Code, Diagnostic, Summary};
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::render::{self, HumanOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Every diagnostic code pbc knows, sorted.
pub fn all_codes() -> Vec<&'static Code> {
    let mut v = pbc_compiler::codes::all();
    v.extend(pbc_targets::codes());
    v.sort_by_key(|c| c.id);
    v
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn color_enabled(c: Color, stream_is_tty: bool) -> bool {
    match c {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => stream_is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w: &usize| *w >= 40)
        .unwrap_or(100)
}

/// Builds the loader and the configuration for a command.
fn setup(
    g: &Global,
    first_path: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Result<(Loader, Config), ExitCode> {
    let cwd = std::env::current_dir()
        .map_err(|e| usage_error(format!("cannot read the current directory: {e}")))?;
    let fs = Arc::new(OsFs);
    let cfg_path = match &g.config {
        Some(p) => {
            if !p.is_file() {
                return Err(usage_error(format!(
                    "{}: no such configuration file",
                    p.display()
                )));
            }
            Some(p.clone())
        }
        None => Config::discover(fs.as_ref(), first_path),
    };
    // Limits come from the configuration, so read it with a default loader first.
    let cfg = match &cfg_path {
        Some(p) => {
            let boot = Loader::new(fs.clone(), cwd.clone(), Default::default());
            let mut cdiags = Vec::new();
            let cfg = Config::load(&boot, p, &mut cdiags).map_err(usage_error)?;
            cfg.validate_codes(&all_codes(), &mut cdiags);
            // Re-load into the main loader's source map so spans resolve there.
            let loader = Loader::new(fs.clone(), cwd.clone(), cfg.limits);
            let mut again = Vec::new();
            let cfg = Config::load(&loader, p, &mut again).map_err(usage_error)?;
            cfg.validate_codes(&all_codes(), &mut again);
            diags.extend(again);
            return Ok((loader, cfg));
        }
        None => Config::default(),
    };
    Ok((Loader::new(fs, cwd, cfg.limits), cfg))
}

/// The passes that run after the model and semantic checks (compliance lints plug in here).
fn extra_checks(_cx: &PlaybookCtx<'_>, _diags: &mut Vec<Diagnostic>) {}

/// `pbc check`.
pub fn check(g: &Global, mut paths: Vec<PathBuf>, format: CheckFormat) -> ExitCode {
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut config_diags = Vec::new();
    let (loader, cfg) = match setup(g, &paths[0], &mut config_diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let units = match check::discover(&paths) {
        Ok(u) => u,
        Err(e) => return usage_error(e),
    };
    let mut report = check::check(&loader, &units, &cfg, &extra_checks);
    report.diags.splice(0..0, config_diags);
    let summary = Summary::of(&report.diags, report.files);
    let out = match format {
        CheckFormat::Human => {
            let stdout_tty = std::io::stdout().is_terminal();
            let opts = HumanOptions {
                color: color_enabled(g.color, stdout_tty),
                width: width(),
            };
            if g.quiet {
                let shown: Vec<Diagnostic> = report
                    .diags
                    .iter()
                    .filter(|d| d.is_error())
                    .cloned()
                    .collect();
                let mut s = String::new();
                for d in &shown {
                    s.push_str(&render::human_one(&loader.sources, d, &opts));
                    s.push('\n');
                }
                s
            } else {
                render::human(&loader.sources, &report.diags, &summary, &opts)
            }
        }
        CheckFormat::Json => render::json(&loader.sources, &report.diags, &summary),
        CheckFormat::Github => render::github(&loader.sources, &report.diags),
        CheckFormat::Sarif => {
            render::sarif(&loader.sources, &report.diags, env!("CARGO_PKG_VERSION"))
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    if summary.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints diagnostics on stderr in human form (for commands whose stdout is an artifact).
fn report_stderr(g: &Global, loader: &Loader, diags: &[Diagnostic]) {
    if diags.is_empty() {
        return;
    }
    let opts = HumanOptions {
        color: color_enabled(g.color, std::io::stderr().is_terminal()),
        width: width(),
    };
    let mut out = String::new();
    for d in diags {
        if g.quiet && !d.is_error() {
            continue;
        }
        out.push_str(&render::human_one(&loader.sources, d, &opts));
        out.push('\n');
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
}

/// `pbc build`.
pub fn build(
    g: &Global,
    dir: PathBuf,
    target: Target,
    output: Option<PathBuf>,
    restrictor: LoadRestrictor,
) -> ExitCode {
    if target != Target::Resolved {
        return build_target(g, dir, target, output, restrictor);
    }
    let mut config_diags = Vec::new();
    let (loader, cfg) = match setup(g, &dir, &mut config_diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = pbc_compiler::resolve::ResolveOptions {
        load_restrictor: match restrictor {
            LoadRestrictor::Rootonly => pbc_compiler::resolve::LoadRestrictor::RootOnly,
            LoadRestrictor::None => pbc_compiler::resolve::LoadRestrictor::None,
        },
        ..Default::default()
    };
    let res = match pbc_compiler::resolve::resolve(&loader, &dir, &opts) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let mut diags = config_diags;
    diags.extend(res.diags);
    pbc_compiler::config::apply_suppressions(&loader.sources, &mut diags);
    cfg.apply_levels(&mut diags);
    report_stderr(g, &loader, &diags);
    if diags.iter().any(Diagnostic::is_error) {
        return ExitCode::from(1);
    }
    match output {
        None => {
            let text = pbc_compiler::resolve::emit_yaml(&res.docs);
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        Some(out) => {
            let dir = out.join("resolved");
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return usage_error(format!("{}: {e}", dir.display()));
            }
            for doc in &res.docs {
                let name = doc
                    .get_path(&["metadata", "name"])
                    .and_then(|n| n.as_str())
                    .unwrap_or("unnamed");
                let kind = doc.get("kind").and_then(|n| n.as_str()).unwrap_or("");
                let file = if kind == "Playbook" {
                    format!("{name}.yaml")
                } else {
                    format!("{}-{name}.yaml", kind.to_lowercase())
                };
                let text = pbc_compiler::resolve::emit_yaml(std::slice::from_ref(doc));
                if let Err(e) = std::fs::write(dir.join(&file), text) {
                    return usage_error(format!("{}: {e}", dir.join(file).display()));
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn resolve_options(restrictor: LoadRestrictor) -> pbc_compiler::resolve::ResolveOptions {
    pbc_compiler::resolve::ResolveOptions {
        load_restrictor: match restrictor {
            LoadRestrictor::Rootonly => pbc_compiler::resolve::LoadRestrictor::RootOnly,
            LoadRestrictor::None => pbc_compiler::resolve::LoadRestrictor::None,
        },
        ..Default::default()
    }
}

/// `pbc build --target argo|crd|langgraph|all`: the checks must pass first.
fn build_target(
    g: &Global,
    dir: PathBuf,
    target: Target,
    output: Option<PathBuf>,
    restrictor: LoadRestrictor,
) -> ExitCode {
    use pbc_targets::bundle::{self, Target as T};
    let targets: Vec<T> = match target {
        Target::Argo => vec![T::Argo],
        Target::Crd => vec![T::Crd],
        Target::Langgraph => vec![T::Langgraph],
        _ => T::ALL.to_vec(),
    };
    if target == Target::All && output.is_none() {
        return usage_error("--target all writes several files: give an output directory with -o");
    }
    let mut diags = Vec::new();
    let (loader, cfg) = match setup(g, &dir, &mut diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let c = match bundle::compile(
        &loader,
        &cfg,
        &dir,
        &resolve_options(restrictor),
        &extra_checks,
    ) {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    diags.extend(c.diags.iter().cloned());
    if diags.iter().any(Diagnostic::is_error) {
        report_stderr(g, &loader, &diags);
        return ExitCode::from(1);
    }
    let settings = pbc_targets::Settings::from_config(&cfg);
    let mut emit_diags = Vec::new();
    let files = bundle::artifacts(&c, &targets, &settings, &mut emit_diags);
    cfg.apply_levels(&mut emit_diags);
    diags.extend(emit_diags);
    report_stderr(g, &loader, &diags);
    match output {
        None => {
            let docs: Vec<&String> = files.values().collect();
            let text = if target == Target::Langgraph {
                match docs.as_slice() {
                    [one] => (*one).clone(),
                    [] => String::new(),
                    _ => {
                        return usage_error(format!(
                            "{} playbooks: JSON documents cannot be concatenated; give an output directory with -o",
                            docs.len()
                        ));
                    }
                }
            } else {
                // crd/crd.yaml sorts first: the definition, then the resources.
                docs.iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join("---\n")
            };
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        Some(out) => {
            for (p, text) in &files {
                let path = out.join(p);
                if let Some(parent) = path.parent()
                    && let Err(e) = std::fs::create_dir_all(parent)
                {
                    return usage_error(format!("{}: {e}", parent.display()));
                }
                if let Err(e) = std::fs::write(&path, text) {
                    return usage_error(format!("{}: {e}", path.display()));
                }
            }
        }
    }
    if diags.iter().any(Diagnostic::is_error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The bundle's `coverage.json`.
///
/// HOOK(compliance): the control-coverage report (contract §6) lands with the compliance
/// work; until then the bundle carries this placeholder. Replace the body with the real
/// report for `input.environment` (`input.compilation.playbooks` are the checked playbooks
/// of the bundled overlay).
fn bundle_coverage(input: &pbc_targets::bundle::CoverageInput<'_>) -> Result<String, String> {
    let v = serde_json::json!({
        "environment": input.environment,
        "status": "pending",
        "note": "the control-coverage report is not wired into pbc bundle yet",
    });
    let mut s = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
    s.push('\n');
    Ok(s)
}

/// `pbc bundle ROOT --env ENV -o OUT [--check]`.
pub fn bundle(g: &Global, root: PathBuf, env: String, out: PathBuf, check: bool) -> ExitCode {
    use pbc_targets::bundle;
    let mut diags = Vec::new();
    let (loader, cfg) = match setup(g, &root, &mut diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if !root.is_dir() {
        return usage_error(format!("{}: not a directory", root.display()));
    }
    let b = match bundle::build(
        &loader,
        &cfg,
        &root,
        &env,
        &extra_checks,
        &bundle_coverage,
        env!("CARGO_PKG_VERSION"),
    ) {
        Ok(b) => b,
        Err(e) => return usage_error(e),
    };
    diags.extend(b.diags.iter().cloned());
    report_stderr(g, &loader, &diags);
    if diags.iter().any(Diagnostic::is_error) {
        return ExitCode::from(1);
    }
    if check {
        let drifted = bundle::drift(&out, &b);
        if drifted.is_empty() {
            if !g.quiet {
                eprintln!(
                    "{}: up to date ({} files)",
                    out.display(),
                    b.files.len() + 1
                );
            }
            return ExitCode::SUCCESS;
        }
        for p in &drifted {
            eprintln!(
                "error: {} differs from the bundle built from {}",
                out.join(p).display(),
                root.display()
            );
        }
        eprintln!(
            "{} file(s) drifted; run `pbc bundle {} --env {env} -o {}` and commit the result",
            drifted.len(),
            root.display(),
            out.display()
        );
        return ExitCode::from(1);
    }
    if let Err(e) = bundle::write(&out, &b) {
        return usage_error(format!("{}: {e}", out.display()));
    }
    ExitCode::SUCCESS
}

/// `pbc explain [CODE]`.
pub fn explain(code: Option<String>) -> ExitCode {
    let codes = all_codes();
    let Some(code) = code else {
        let mut out = String::new();
        for c in &codes {
            out.push_str(&format!(
                "{}  {:<8} {:<28} {}\n",
                c.id,
                c.severity.as_str(),
                c.name,
                c.summary
            ));
        }
        print!("{out}");
        return ExitCode::SUCCESS;
    };
    let found = codes
        .iter()
        .find(|c| c.id.eq_ignore_ascii_case(&code) || c.name == code);
    match found {
        Some(c) => {
            let doc: Vec<&str> = c
                .doc
                .lines()
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
                .collect();
            println!(
                "{} ({}): {}\ndefault severity: {}\n\n{}",
                c.id,
                c.name,
                c.summary,
                c.severity,
                doc.join("\n").trim()
            );
            ExitCode::SUCCESS
        }
        None => {
            let ids: Vec<&str> = codes.iter().map(|c| c.id).collect();
            let hint = pbc_compiler::diag::did_you_mean(&code, ids.iter().copied())
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            usage_error(format!(
                "unknown code `{code}`{hint} (`pbc explain` lists them all)"
            ))
        }
    }
}
