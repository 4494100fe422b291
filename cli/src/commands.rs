//! Command implementations: each wires the library crates together and renders.

use crate::cli::{CheckFormat, Color, DiffFormat, Global, LoadRestrictor, ReportFormat, Target};
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
    v.extend(pbc_lints::codes());
    v.extend(pbc_targets::codes());
    v.extend(pbc_policy::codes());
    v.sort_by_key(|c| c.id);
    v
}

pub(crate) fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
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
pub(crate) fn setup(
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
                return Err(usage_error(match pbc_compiler::fs::not_regular(p) {
                    Some(kind) => format!(
                        "{}: the configuration is {kind}, not a regular file; pbc reads its configuration only from a regular file",
                        p.display()
                    ),
                    None => format!("{}: no such configuration file", p.display()),
                }));
            }
            Some(p.clone())
        }
        None => Config::discover(fs.as_ref(), first_path),
    };
    let mut loader = Loader::new(fs, cwd, Default::default());
    let Some(p) = cfg_path else {
        return Ok((loader, Config::default()));
    };
    // The configuration is read once, with the default limits; its own limits then apply to
    // every file read after it.
    let cfg = Config::load(&loader, &p, diags).map_err(usage_error)?;
    cfg.validate_codes(&all_codes(), diags);
    loader.limits = cfg.limits;
    Ok((loader, cfg))
}

/// The passes that run after the model and semantic checks: the compliance lints, with the
/// organisation's catalogs and evidence rules loaded once.
fn extra_checks(
    comp: pbc_lints::Compliance,
) -> impl Fn(&PlaybookCtx<'_>, &mut Vec<Diagnostic>) + Sync {
    move |cx, diags| comp.check_playbook(cx.playbook, cx.env.as_deref(), diags)
}

/// `pbc check`.
pub fn check(
    g: &Global,
    mut paths: Vec<PathBuf>,
    format: CheckFormat,
    policy_dirs: Vec<PathBuf>,
) -> ExitCode {
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut config_diags = Vec::new();
    let (loader, cfg) = match setup(g, &paths[0], &mut config_diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // The tree is walked while the compliance catalogs are read.
    let mut comp_diags = Vec::new();
    let (units, comp) = rayon::join(
        || check::discover(&paths),
        || pbc_lints::Compliance::load(&cfg, &loader, &mut comp_diags),
    );
    let units = match units {
        Ok(u) => u,
        Err(e) => return usage_error(e),
    };
    config_diags.extend(comp_diags);
    let statics = match crate::policy::for_check(&cfg, &loader, policy_dirs, &mut config_diags) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let lints = extra_checks(comp);
    // `pbc check` also reports emitted names that would be too long for their kind (the
    // targets do so when they build).
    let extra = move |cx: &PlaybookCtx<'_>, diags: &mut Vec<Diagnostic>| {
        lints(cx, diags);
        if let Some(s) = &statics {
            s.check(&cx.doc.root, diags);
        }
        pbc_targets::names::check_names(
            cx.playbook,
            &cx.doc.name_origin,
            &cx.loader.sources,
            diags,
        );
    };
    let mut report = check::check(&loader, &units, &cfg, &extra);
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
    // The process ends here: freeing every parsed file would only cost time.
    std::mem::forget(loader);
    if summary.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints diagnostics on stderr in human form (for commands whose stdout is an artifact).
pub(crate) fn report_stderr(g: &Global, loader: &Loader, diags: &[Diagnostic]) {
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
    let limit = loader.limits.max_output_bytes;
    let too_large = |d: Box<Diagnostic>| {
        report_stderr(g, &loader, std::slice::from_ref(&*d));
        ExitCode::from(1)
    };
    match output {
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(pbc_compiler::resolve::WriteError::TooLarge(d)) =
                pbc_compiler::resolve::write_yaml_limited(&res.docs, &mut stdout, limit)
            {
                return too_large(d);
            }
        }
        Some(out) => {
            let dir = out.join("resolved");
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return usage_error(format!("{}: {e}", dir.display()));
            }
            let mut written = 0u64;
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
                written += text.len() as u64;
                if written > limit {
                    return too_large(pbc_compiler::resolve::budget::output_too_large(doc, limit));
                }
                if let Err(e) = std::fs::write(dir.join(&file), text) {
                    return usage_error(format!("{}: {e}", dir.join(file).display()));
                }
            }
        }
    }
    // The process ends here: freeing the trees would only cost time.
    std::mem::forget(res.docs);
    std::mem::forget(loader);
    ExitCode::SUCCESS
}

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
) -> ExitCode {
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut diags = Vec::new();
    let (loader, cfg) = match setup(g, &paths[0], &mut diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let units = match check::discover(&paths) {
        Ok(u) => u,
        Err(e) => return usage_error(e),
    };
    let opts = pbc_compiler::resolve::ResolveOptions::default();
    let mut inputs: Vec<(Option<String>, Vec<pbc_compiler::yaml::Node>)> = Vec::new();
    for tree in &units.trees {
        match pbc_compiler::resolve::resolve(&loader, tree, &opts) {
            Ok(res) => {
                diags.extend(res.diags);
                inputs.push((check::environment(tree), res.docs));
            }
            Err(e) => return usage_error(e),
        }
    }
    let mut loose = Vec::new();
    for (f, _) in &units.files {
        match loader.load(f) {
            Ok(l) => {
                diags.extend(l.diags.iter().cloned());
                loose.extend(l.docs.iter().map(|d| d.root.clone()));
            }
            Err(e) => diags.push(check::load_error_diag(&loader, &e)),
        }
    }
    if !loose.is_empty() {
        inputs.push((None, loose));
    }
    if let Some(e) = &env {
        let known: Vec<String> = inputs.iter().filter_map(|(x, _)| x.clone()).collect();
        if !known.contains(e) {
            return usage_error(format!(
                "no environment `{e}` under the given paths (found: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        inputs.retain(|(x, _)| x.as_deref() == Some(e.as_str()));
    }
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
    let report = match pbc_lints::coverage::coverage(&comp, &loader.sources, &inputs, &catalogs) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let text = match format {
        ReportFormat::Markdown => pbc_lints::coverage::markdown(&report),
        ReportFormat::Json => pbc_lints::coverage::json(&report),
        ReportFormat::Csv => pbc_lints::coverage::csv(&report),
        ReportFormat::Html => pbc_lints::coverage::html(&report),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
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
    let extra = extra_checks(pbc_lints::Compliance::load(&cfg, &loader, &mut diags));
    let c = match bundle::compile(&loader, &cfg, &dir, &resolve_options(restrictor), &extra) {
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
                // The definition first, then the resources: applied in this order, the
                // resources' kind exists once the definition is Established.
                let mut ordered: Vec<&str> = Vec::with_capacity(files.len());
                ordered.extend(
                    files
                        .iter()
                        .filter(|(p, _)| p.starts_with("crd-definition/"))
                        .map(|(_, t)| t.as_str()),
                );
                ordered.extend(
                    files
                        .iter()
                        .filter(|(p, _)| !p.starts_with("crd-definition/"))
                        .map(|(_, t)| t.as_str()),
                );
                ordered.join("---\n")
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

/// The bundle's `coverage.json`: the control-coverage report of the bundled
/// environment, in its JSON form (`schemas/coverage.schema.json`).
fn bundle_coverage(input: &pbc_targets::bundle::CoverageInput<'_>) -> Result<String, String> {
    let mut diags = Vec::new();
    let comp = pbc_lints::Compliance::load(input.cfg, input.loader, &mut diags);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(d.message.clone());
    }
    let inputs = vec![(
        Some(input.environment.to_string()),
        input.compilation.resolved.clone(),
    )];
    let report = pbc_lints::coverage::coverage(&comp, &input.loader.sources, &inputs, &[])?;
    // Evidence locations name files relative to the playbook root (the directory holding
    // `overlays/`), not to where pbc was started: a bundle is the same from any path.
    let tree = input
        .loader
        .canonicalize(&input.loader.resolve(input.tree))
        .unwrap_or_else(|_| input.loader.resolve(input.tree));
    let root = match tree.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "overlays") => p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| tree.clone()),
        _ => tree.clone(),
    };
    let mut v: serde_json::Value =
        serde_json::from_str(&pbc_lints::coverage::json(&report)).map_err(|e| e.to_string())?;
    relativize_files(&mut v, |shown| {
        let abs = input.loader.resolve(Path::new(shown));
        abs.strip_prefix(&root).ok().map(render::path_str)
    });
    let mut text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// Rewrites every `"file"` string of a JSON report with `f` (kept when `f` gives `None`).
fn relativize_files(v: &mut serde_json::Value, f: impl Fn(&str) -> Option<String>) {
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        match x {
            serde_json::Value::Object(m) => {
                for (k, val) in m.iter_mut() {
                    if k == "file"
                        && let serde_json::Value::String(s) = val
                    {
                        if let Some(rel) = f(s) {
                            *s = rel;
                        }
                    } else {
                        stack.push(val);
                    }
                }
            }
            serde_json::Value::Array(a) => stack.extend(a.iter_mut()),
            _ => {}
        }
    }
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
    let extra = extra_checks(pbc_lints::Compliance::load(&cfg, &loader, &mut diags));
    let b = match bundle::build(
        &loader,
        &cfg,
        &root,
        &env,
        &extra,
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
    let matching: Vec<&&Code> = codes
        .iter()
        .filter(|c| c.id.eq_ignore_ascii_case(&code) || c.name.eq_ignore_ascii_case(&code))
        .collect();
    if matching.len() > 1 {
        // A name two codes share (`unknown-field`): say which codes, let the user choose.
        let mut msg = format!("`{code}` names {} codes:", matching.len());
        for c in &matching {
            msg.push_str(&format!("\n  {}  {}", c.id, c.summary));
        }
        msg.push_str(&format!(
            "\nexplain one of them: `pbc explain {}`",
            matching[0].id
        ));
        return usage_error(msg);
    }
    match matching.first() {
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
