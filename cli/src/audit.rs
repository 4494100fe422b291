//! `pbc audit`: `verify --against SINK` (the log compared with a sink's copy), `sinks` (each
//! audit sink's delivery: cursor, lag, last error) and `export` (the log in other formats).
//! `pbc audit verify` alone is in [`crate::run`].

use crate::cli::{RunFormat, StateArgs};
use crate::run::{fail, open};
use clap::Subcommand;
use pbc_runtime::Error;
use pbc_runtime::audit_export::{ExportFilter, ExportFormat, export as render};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Verify the audit log's hash chain.
    Verify {
        /// The audit log (default: STATE/audit.jsonl).
        file: Option<PathBuf>,
        /// Also read this audit sink back (`file` or `s3`) and compare it with the local
        /// log: catches a log that was edited and re-chained.
        #[arg(long, value_name = "SINK")]
        against: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
    /// The audit sinks runs write to: how far each is delivered, its lag and last error.
    Sinks {
        /// Output format.
        #[arg(long, value_enum, default_value_t = RunFormat::Human)]
        format: RunFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Write the audit log (or part of it) in another format on standard output.
    Export {
        /// Only this run's entries.
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Only entries at or after this time (RFC 3339, or a date YYYY-MM-DD).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormatArg,
        /// The account CloudTrail events name (`recipientAccountId`, with `--format cloudtrail`).
        #[arg(long, value_name = "ID", default_value = "000000000000")]
        account: String,
        #[command(flatten)]
        state: StateArgs,
    },
}

/// `--format` of `pbc audit export`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormatArg {
    /// The log's own lines (hash-chained JSON Lines).
    Jsonl,
    /// One row per entry, with a header row.
    Csv,
    /// OTLP JSON: a traces request line, then a logs request line.
    OtlpJson,
    /// One CloudTrail Lake `eventData` object per line.
    Cloudtrail,
}

fn state_store(state: &Option<PathBuf>) -> Result<(), Error> {
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    if pbc_runtime::state_store_exists(&dir) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{}: no state store here (no state.db); give the state with --state DIR or PBC_STATE_DIR",
            dir.display()
        )))
    }
}

/// `pbc audit verify [FILE] --against SINK`: the usual verification, then the sink's copy.
pub fn verify_against(state: Option<PathBuf>, file: Option<PathBuf>, sink: &str) -> ExitCode {
    if let Err(e) = state_store(&state) {
        return fail(&e);
    }
    let local = crate::run::verify(state.clone(), file);
    let result = open(state).and_then(|rt| rt.verify_against(sink));
    match result {
        Ok(c) if c.ok() => {
            println!(
                "ok: the {} entries in audit sink `{}` ({}) match the local log{}",
                c.entries,
                c.sink,
                c.kind,
                if c.batches > 0 {
                    format!(
                        ", and the chain heads of its {} batches are in it",
                        c.batches
                    )
                } else {
                    String::new()
                }
            );
            local
        }
        Ok(c) => {
            match c.first_difference {
                Some(seq) => println!(
                    "error: entry #{seq} of the local log is not what audit sink `{}` received:",
                    c.sink
                ),
                None => println!(
                    "error: the local log does not match audit sink `{}`:",
                    c.sink
                ),
            }
            for p in &c.problems {
                println!("  - {p}");
            }
            ExitCode::from(1)
        }
        Err(e) => fail(&e),
    }
}

/// `pbc audit sinks`.
pub fn sinks(state: Option<PathBuf>, json: bool) -> ExitCode {
    if let Err(e) = state_store(&state) {
        return fail(&e);
    }
    match open(state).and_then(|rt| rt.audit_sinks()) {
        Ok(list) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"sinks": list}))
                    .unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(list) => {
            if list.is_empty() {
                println!("no run has written to an audit sink");
            }
            for s in &list {
                println!(
                    "{} ({}): delivered up to entry #{}, {} behind{}",
                    s.name,
                    s.kind,
                    s.delivered_seq,
                    s.lag,
                    match &s.last_error {
                        Some(e) => format!("; last error: {e}"),
                        None => String::new(),
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// The most of the log `pbc audit export` reads from the state store (1 GiB).
const MAX_EXPORT: u64 = 1 << 30;

fn parse_since(s: &str) -> Result<pbc_runtime::audit_export::Since, Error> {
    pbc_runtime::audit_export::parse_since(s).ok_or_else(|| {
        Error::Usage(format!(
            "--since `{s}`: expected an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)"
        ))
    })
}

/// `pbc audit export`.
pub fn export(
    state: Option<PathBuf>,
    run: Option<String>,
    since: Option<String>,
    format: ExportFormatArg,
    account: &str,
) -> ExitCode {
    let since = match since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let in_store = matches!(
        pbc_runtime::StateBackend::from_env(),
        Ok(Some(pbc_runtime::StateBackend::Postgres(_)))
    );
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    let log = dir.join("audit.jsonl");
    let text = if in_store {
        // The log is the shared store's table (no file in any one pod's directory).
        open(state).and_then(|rt| rt.audit_text(MAX_EXPORT))
    } else {
        pbc_runtime::files::open_regular(&log, "the audit log").and_then(|mut f| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s)
                .map_err(|e| Error::Usage(format!("{}: {e}", log.display())))?;
            Ok(s)
        })
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let format = match format {
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::OtlpJson => ExportFormat::OtlpJson,
        ExportFormatArg::Cloudtrail => ExportFormat::Cloudtrail,
    };
    let filter = ExportFilter { run, since };
    print!("{}", render(&text, &filter, format, account));
    ExitCode::SUCCESS
}
