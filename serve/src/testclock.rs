//! The clock tests set: with `PBC_TEST_CLOCK_FILE=PATH`, `pbc serve` reads the time from
//! PATH (unix milliseconds, re-read every time it is asked) instead of the system clock, for
//! schedules, deadlines and every time the engine records. For tests only: a test moves the
//! server's time by writing the file, without waiting minutes. Unset, the system clock is
//! used; nothing else reads the variable.

use pbc_runtime::{Clock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The variable naming the clock file.
pub const TEST_CLOCK_VAR: &str = "PBC_TEST_CLOCK_FILE";

/// A clock read from a file.
#[derive(Debug)]
pub struct FileClock {
    path: PathBuf,
    /// The last time read (`i64::MIN` before the first).
    last: AtomicI64,
    warned: AtomicBool,
}

impl FileClock {
    pub fn new(path: PathBuf) -> FileClock {
        FileClock {
            path,
            last: AtomicI64::new(i64::MIN),
            warned: AtomicBool::new(false),
        }
    }

    fn read(&self) -> Result<i64, String> {
        let text = pbc_runtime::files::read_text(&self.path, "the test clock file", 256)
            .map_err(|e| e.to_string())?;
        text.trim().parse::<i64>().map_err(|_| {
            format!(
                "{}: `{}` is not unix milliseconds",
                self.path.display(),
                text.trim()
            )
        })
    }
}

impl Clock for FileClock {
    fn now_ms(&self) -> i64 {
        match self.read() {
            Ok(ms) => {
                self.last.store(ms, Ordering::SeqCst);
                ms
            }
            Err(e) => {
                if !self.warned.swap(true, Ordering::SeqCst) {
                    tracing::warn!("{TEST_CLOCK_VAR}: {e}; keeping the last time read");
                }
                match self.last.load(Ordering::SeqCst) {
                    i64::MIN => SystemClock.now_ms(),
                    ms => ms,
                }
            }
        }
    }
}

/// The server's clock: the test clock when [`TEST_CLOCK_VAR`] is set, else the system's.
pub fn from_env() -> Arc<dyn Clock> {
    match std::env::var_os(TEST_CLOCK_VAR) {
        Some(p) if !p.is_empty() => {
            let path = PathBuf::from(p);
            tracing::info!(
                "the time is read from {} ({TEST_CLOCK_VAR}, for tests)",
                path.display()
            );
            Arc::new(FileClock::new(path))
        }
        _ => Arc::new(SystemClock),
    }
}
