//! pbc-lsp: `pbc lsp`, a language server over stdio. Every change to an open buffer is
//! checked, after a short pause in typing, the way `pbc check` checks the workspace (the
//! buffers laid over the disk, overlays and their bases included); the findings come back as
//! diagnostics with their fixes and suppressions as code actions, and hover, go to
//! definition, references and completion read the checked files.

mod actions;
mod analysis;
pub mod convert;
mod features;
mod hover_refs;
mod incremental;
mod navigate;
mod server;

pub use analysis::{Finding, Workspace};
pub use server::capabilities;

/// Serves one client over stdin and stdout until it shuts down.
pub fn run_stdio() -> Result<(), String> {
    let (conn, io) = lsp_server::Connection::stdio();
    server::serve(&conn)?;
    drop(conn);
    io.join().map_err(|e| e.to_string())
}
