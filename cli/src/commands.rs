//! Command implementations: each wires the library crates together and renders.

use crate::cli::{CheckFormat, Color, Global};
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
    v.extend(pbc_runtime::mcp::lock::CODES);
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
pub(crate) fn extra_checks(
    comp: pbc_lints::Compliance,
) -> impl Fn(&PlaybookCtx<'_>, &mut Vec<Diagnostic>) + Sync {
    move |cx, diags| {
        comp.check_playbook_with(
            cx.playbook,
            cx.env.as_deref(),
            Some(&cx.loader.sources),
            diags,
        )
    }
}

/// `pbc check`.
pub fn check(
    g: &Global,
    mut paths: Vec<PathBuf>,
    format: CheckFormat,
    policy_dirs: Vec<PathBuf>,
    lock: Option<PathBuf>,
    agents: Option<PathBuf>,
) -> ExitCode {
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    // `--lock`: actions on `mcp` executors checked against the recorded tools, offline.
    let mcp = match lock {
        Some(l) => {
            let lock = match pbc_runtime::mcp::lock::AgentsLock::read(&l) {
                Ok(x) => x,
                Err(e) => return usage_error(e),
            };
            match crate::agents::read_agents(agents.as_deref()) {
                Ok(a) => Some((lock, a)),
                Err(e) => return usage_error(e),
            }
        }
        None => None,
    };
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
        if let Some((lock, agents)) = &mcp {
            lock.check_playbook(agents, cx.playbook, diags);
        }
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
        CheckFormat::Json => render::json_with_suppressed(
            &loader.sources,
            &report.diags,
            &summary,
            &report.suppressed,
        ),
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

pub use crate::build::{build, bundle};
pub use crate::reports::{coverage, diff};

/// `pbc explain [CODE | CONTROL]`.
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
            // A control tag: its evidence rule (`pbc explain SOC2-CC6.1`).
            if let Some(done) = crate::explain::control(&code) {
                return done;
            }
            let ids: Vec<&str> = codes.iter().map(|c| c.id).collect();
            let hint = pbc_compiler::diag::did_you_mean(&code, ids.iter().copied())
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            usage_error(format!(
                "unknown code or control `{code}`{hint} (`pbc explain` lists the codes; a control is written as a playbook tag names it, e.g. `SOC2-CC6.1` or `ISO27001-5.26`)"
            ))
        }
    }
}

#[cfg(test)]
mod code_registry_tests {
    /// One code, one meaning, across every crate that declares codes (each crate checks
    /// only its own).
    #[test]
    fn every_code_id_is_declared_once_across_the_crates() {
        let all = super::all_codes();
        let mut dup: Vec<&str> = all
            .windows(2)
            .filter(|w| w[0].id == w[1].id)
            .map(|w| w[0].id)
            .collect();
        dup.dedup();
        assert!(dup.is_empty(), "codes declared twice: {dup:?}");
    }
}
