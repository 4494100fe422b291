//! `pbc policy test [DIR]` and `pbc policy eval NAME --input FILE`.

use crate::cli::Global;
use crate::commands::{report_stderr, setup, usage_error};
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::load::Loader;
use pbc_policy::testing::{self, TestResult};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `pbc check` adds for policies: every configured policy's files must read and
/// compile (errors at the policy file's line), and the static policies (`--policy DIR`,
/// `check-policies:`) are loaded to run over each resolved playbook.
pub(crate) fn for_check(
    cfg: &pbc_compiler::config::Config,
    loader: &Loader,
    dirs: Vec<PathBuf>,
    diags: &mut Vec<Diagnostic>,
) -> Result<Option<pbc_policy::static_check::StaticPolicies>, ExitCode> {
    let set = pbc_policy::freeze(cfg, loader, diags);
    pbc_policy::check(cfg, &set, loader, diags);
    for d in &dirs {
        if !d.is_dir() {
            return Err(usage_error(format!(
                "{}: --policy needs a directory",
                d.display()
            )));
        }
    }
    let mut all: Vec<(PathBuf, Option<pbc_compiler::span::Span>)> = cfg
        .check_policies
        .iter()
        .map(|p| (p.path.clone(), Some(p.span)))
        .collect();
    all.extend(dirs.into_iter().map(|d| (d, None)));
    Ok(pbc_policy::static_check::StaticPolicies::load(
        &all, loader, diags,
    ))
}

/// The configuration and its frozen policies; errors are printed (exit 1).
fn policies(g: &Global, start: &Path) -> Result<(Loader, pbc_policy::PolicySet), ExitCode> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let (loader, cfg) = setup(g, start, &mut diags)?;
    let set = pbc_policy::freeze(&cfg, &loader, &mut diags);
    pbc_policy::check(&cfg, &set, &loader, &mut diags);
    report_stderr(g, &loader, &diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(ExitCode::from(1));
    }
    Ok((loader, set))
}

/// A JSON or YAML document (the first of a YAML file).
fn document(loader: &Loader, path: &Path) -> Result<Value, String> {
    let l = loader.load(path).map_err(|e| e.to_string())?;
    if let Some(d) = l.diags.iter().find(|d| d.is_error()) {
        return Err(format!("{}: {}", path.display(), d.message));
    }
    Ok(l.docs
        .first()
        .map(|d| d.root.to_json())
        .unwrap_or(Value::Null))
}

/// `pbc policy test [DIR]`.
pub fn test(g: &Global, dir: Option<PathBuf>) -> ExitCode {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    if !dir.is_dir() {
        return usage_error(format!("{}: not a directory", dir.display()));
    }
    let (loader, set) = match policies(g, &dir) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut modules = Vec::new();
    let mut case_files = Vec::new();
    for entry in ignore::WalkBuilder::new(&dir)
        .hidden(true)
        .build()
        .flatten()
    {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let p = entry.path().to_path_buf();
        match p.extension().and_then(|e| e.to_str()) {
            Some("rego") => match std::fs::read_to_string(&p) {
                Ok(text) => modules.push(pbc_policy::FileText {
                    path: loader.display_path(&p).to_string_lossy().into_owned(),
                    text,
                }),
                Err(e) => return usage_error(format!("{}: {e}", p.display())),
            },
            Some("yaml" | "yml") => case_files.push(p),
            _ => {}
        }
    }
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    case_files.sort();
    let mut results: Vec<TestResult> = Vec::new();
    if modules.iter().any(|m| m.text.contains("test_")) {
        // The data documents of the configured Rego policies, as `opa test` loads data
        // beside the modules.
        let mut data = Vec::new();
        for p in set.policies.values() {
            if let pbc_policy::FrozenKind::Rego { data: d, .. } = &p.kind {
                for f in d {
                    if !data.contains(f) {
                        data.push(f.clone());
                    }
                }
            }
        }
        results.extend(testing::rego_tests(&modules, &data));
    }
    for p in case_files {
        let doc = match document(&loader, &p) {
            Ok(d) => d,
            Err(e) => return usage_error(e),
        };
        if doc.get("cases").is_none() {
            continue;
        }
        let shown = loader.display_path(&p).to_string_lossy().into_owned();
        results.extend(testing::case_file(&shown, &doc, &set));
    }
    let mut out = String::new();
    let failed = results.iter().filter(|r| !r.ok).count();
    for r in &results {
        if r.ok {
            if !g.quiet {
                out.push_str(&format!("PASS  {}: {}\n", r.file, r.name));
            }
        } else {
            out.push_str(&format!("FAIL  {}: {}\n", r.file, r.name));
            if let Some(m) = &r.message {
                out.push_str(&format!("      {m}\n"));
            }
        }
    }
    if results.is_empty() {
        out.push_str(
            "no tests found (Rego `test_` rules, or YAML files with `policy:` and `cases:`)\n",
        );
    } else {
        out.push_str(&format!(
            "{}: {}/{}\n",
            if failed == 0 { "PASS" } else { "FAIL" },
            results.len() - failed,
            results.len()
        ));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    if failed > 0 || results.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `pbc policy eval NAME --input FILE`.
pub fn eval(g: &Global, name: &str, input: &Path) -> ExitCode {
    let start = PathBuf::from(".");
    let (loader, set) = match policies(g, &start) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let Some(policy) = set.policies.get(name) else {
        let known: Vec<&str> = set.policies.keys().map(String::as_str).collect();
        return usage_error(format!(
            "no configured policy is named `{name}` (configured: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    if !input.is_file() {
        return usage_error(format!("{}: no such input file", input.display()));
    }
    let doc = match document(&loader, input) {
        Ok(d) => d,
        Err(e) => return usage_error(e),
    };
    let (input_doc, rows) = match testing::case_input(&serde_json::json!({"input": doc})) {
        Ok(x) => x,
        Err(e) => return usage_error(e),
    };
    let compiled = match policy.compile() {
        Ok(c) => c,
        Err(errs) => {
            eprintln!(
                "error: policy `{name}` does not compile: {}",
                errs.first().map(|e| e.message.as_str()).unwrap_or("")
            );
            return ExitCode::from(1);
        }
    };
    let started = std::time::Instant::now();
    let d = compiled.evaluate(&input_doc, &rows, testing::TEST_NOW_MS);
    let elapsed = started.elapsed();
    let mut v = d.to_json();
    v["policy"] = Value::String(name.to_string());
    v["evaluation_ms"] = serde_json::json!(elapsed.as_secs_f64() * 1000.0);
    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
    println!("{text}");
    ExitCode::SUCCESS
}
