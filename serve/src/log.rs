//! The server's log on stderr: JSON (one object a line: `timestamp`, `level`, `target`,
//! `message` and the event's fields, such as `run`, `stage`, `approval`, `user`, `peer`) or
//! text. Secrets never reach it: tokens, signatures, event bodies, inputs and outputs are not
//! logged, only ids, statuses and names. The engine logs each committed audit entry (target
//! `pbc::audit`: `seq`, `run`, `stage`, `event`, `actor`).

use tracing_subscriber::filter::LevelFilter;

/// How the log is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

/// Installs the process's subscriber (once; a second call changes nothing).
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(LevelFilter::INFO);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
