//! Whether the state directory can be written, asked before SQLite is: SQLite's own answer
//! for a read-only directory or file is "unable to open database file" or "attempt to write
//! a readonly database", which names neither the directory nor the reason.

use crate::{Error, Result};
use std::path::Path;

/// Refuses a state directory pbc cannot write (or whose `state.db` it cannot write), naming
/// the directory or file and the system's reason.
pub(crate) fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".pbc-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Usage(format!(
                "{}: the state directory is not writable ({e}); pbc keeps state.db, its -wal and -shm files, audit.jsonl and locks/ there: make it writable, or choose another with --state DIR or PBC_STATE_DIR",
                dir.display()
            )));
        }
    }
    let db = dir.join("state.db");
    if db.exists() {
        if !db.is_file() {
            return Err(Error::Usage(format!(
                "{}: not a regular file (the state store must be a SQLite file)",
                db.display()
            )));
        }
        if let Err(e) = std::fs::OpenOptions::new().write(true).open(&db) {
            return Err(Error::Usage(format!(
                "{}: the state store is not writable ({e}): make it writable, or choose another state directory with --state DIR",
                db.display()
            )));
        }
    }
    Ok(())
}
