//! `pbc build` and `pbc bundle`: resolve, check, then write the resolved documents or a
//! target's artifacts (a bundle with its coverage report).

use crate::cli::{Global, LoadRestrictor, Target};
use crate::commands::{extra_checks, report_stderr, setup, usage_error};
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::render;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    let (loader, mut cfg) = match setup(g, &dir, &mut diags) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // A control another target of `targets.emit` cannot enforce is that target's problem:
    // building one target judges its artifacts by what it enforces.
    if cfg.targets.emit_set {
        use pbc_compiler::enforcement::Target as E;
        let building: &[E] = match target {
            Target::Argo => &[E::Argo],
            Target::Crd => &[E::Crd],
            Target::Langgraph => &[E::Langgraph],
            _ => &[],
        };
        if !building.is_empty() {
            cfg.targets.emit.retain(|t| building.contains(t));
        }
    }
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
