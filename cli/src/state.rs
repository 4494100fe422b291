//! `pbc state migrate`: brings the state store to the newest schema, the embedded SQLite
//! store of the state directory or the PostgreSQL database `--url` / `PBC_STATE_URL` names
//! (the password from `PBC_STATE_PASSWORD`). Opening a store also migrates it; this is the
//! explicit step a cluster runs once before its processes start (docs/state.md).

use crate::run::fail;
use pbc_runtime::StateBackend;
use std::path::PathBuf;
use std::process::ExitCode;

/// `pbc state migrate`.
pub fn migrate(state: Option<PathBuf>, url: Option<String>) -> ExitCode {
    let backend = match url {
        Some(u) => StateBackend::parse(&u),
        None => Ok(StateBackend::Sqlite),
    };
    let backend = match backend {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let dir = pbc_runtime::default_state_dir(state.as_deref());
    match pbc_runtime::migrate_state(&dir, &backend) {
        Ok(m) => {
            let store = match backend {
                StateBackend::Sqlite => format!("{}", dir.join("state.db").display()),
                StateBackend::Postgres(_) => "the PostgreSQL state store".to_string(),
            };
            if m.from == m.to {
                println!("{store}: schema {} (up to date)", m.to);
            } else {
                println!("{store}: migrated schema {} -> {}", m.from, m.to);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
