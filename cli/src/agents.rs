//! `pbc agents tools`: the tools of the agents file's `mcp` executors, and with `--lock FILE`
//! the lock file that `pbc check --lock` reads offline (docs/mcp.md).

use clap::Subcommand;
use pbc_runtime::Agents;
use pbc_runtime::mcp::lock::AgentsLock;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum AgentsAction {
    /// Ask each `mcp` executor's server for its tools (tools/list) and print them; with
    /// `--lock FILE`, write them with their input schemas for `pbc check --lock`.
    Tools {
        /// The agents file (default `agents.yaml`).
        #[arg(long, value_name = "FILE")]
        agents: Option<PathBuf>,
        /// Write the lock file here.
        #[arg(long, value_name = "FILE")]
        lock: Option<PathBuf>,
        /// How long each server may take.
        #[arg(long, default_value = "60s")]
        timeout: String,
    },
}

/// Reads the agents file: `--agents`, else `agents.yaml` here.
pub(crate) fn read_agents(path: Option<&Path>) -> Result<Agents, String> {
    let p = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("agents.yaml"));
    Agents::from_file(&p)
}

/// `pbc agents tools [--agents FILE] [--lock FILE] [--timeout D]`.
pub fn tools(agents: Option<PathBuf>, lock: Option<PathBuf>, timeout: &str) -> ExitCode {
    let agents = match read_agents(agents.as_deref()) {
        Ok(a) => a,
        Err(e) => return crate::commands::usage_error(e),
    };
    let timeout = match pbc_compiler::model::values::parse_duration(timeout) {
        Ok(d) => d.as_std(),
        Err(e) => return crate::commands::usage_error(format!("--timeout: {}", e.message)),
    };
    let collected = match AgentsLock::collect(&agents, None, timeout) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for (key, server) in &collected.actions {
        let names: Vec<&str> = server.tools.keys().map(String::as_str).collect();
        println!("{key} ({}): {}", server.server, names.join(", "));
    }
    if collected.actions.is_empty() {
        println!("the agents file has no `mcp` executor");
    }
    if let Some(path) = lock {
        if let Err(e) = std::fs::write(&path, collected.to_text()) {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(1);
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
