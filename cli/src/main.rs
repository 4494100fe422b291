//! `pbc`, the playbook compiler: a thin command line over the pbc crates.

mod agents;
mod audit;
mod build;
mod cli;
mod commands;
mod dispatch;
mod enforcement;
mod explain;
mod notifications;
mod policy;
mod reports;
mod run;
mod runner;
mod signed;
mod state;

use std::io::Write;
use std::process::ExitCode;

// pbc's trees hold one small allocation per scalar; mimalloc allocates and frees them at a
// fraction of the system allocator's cost. Built without transparent huge pages, which
// would add about half again to the peak memory (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Worker threads get a generous stack; input nesting is bounded anyway.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(16 * 1024 * 1024)
        .build_global();
    let panic_message = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    {
        let slot = panic_message.clone();
        std::panic::set_hook(Box::new(move |info| {
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "unknown panic".to_string()
            };
            let loc = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            if let Ok(mut g) = slot.lock() {
                *g = Some(format!("{msg}{loc}"));
            }
        }));
    }
    match std::panic::catch_unwind(dispatch::run) {
        Ok(code) => code,
        Err(_) => {
            let msg = panic_message
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .unwrap_or_else(|| "unknown panic".into());
            let _ = writeln!(
                std::io::stderr(),
                "error[PB9001]: internal error: {msg}\n  help: this is a bug in pbc; please report it with the input that caused it"
            );
            ExitCode::from(2)
        }
    }
}
