//! Bounded reads: every file the runtime reads (the trigger input, the agents file, the audit
//! log, the state directory's files) is checked to be a regular file *before* it is opened
//! (opening a FIFO blocks until a writer comes; `/dev/zero` never ends), and read with a size
//! limit, or, for the audit log, line by line with a limit per line. Whole files go through
//! the compiler's bounded reader ([`pbc_compiler::fs::OsFs`]), as the playbook and
//! `.pbc.yaml` do.

use crate::{Error, Result};
use pbc_compiler::fs::{FileSystem, OsFs, ReadError, file_type_name};
use std::path::Path;

/// The largest trigger input `pbc run --input` reads.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;
/// The largest agents file read.
pub const MAX_AGENTS_BYTES: u64 = 16 * 1024 * 1024;
/// The longest audit-log line read (the log itself may be any length: it is streamed).
pub const MAX_AUDIT_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Checks that `path` is a regular file without opening it. `what` names it in errors
/// (`the input`, `the agents file`).
pub fn check_regular(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(Error::Usage(format!(
            "{}: cannot read {what}: it is {}, not a regular file",
            path.display(),
            file_type_name(m.file_type())
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Usage(format!(
            "{}: {what} does not exist",
            path.display()
        ))),
        Err(e) => Err(Error::Usage(format!(
            "{}: cannot read {what}: {e}",
            path.display()
        ))),
    }
}

/// Reads a whole regular file of at most `limit` bytes as UTF-8 text.
pub fn read_text(path: &Path, what: &str, limit: u64) -> Result<String> {
    let bytes = read_bytes(path, what, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::Usage(format!(
            "{}: {what} is not valid UTF-8 (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    check_regular(path, what)?;
    OsFs.read(path, limit).map_err(|e| match e {
        ReadError::TooLarge { len, limit } => Error::Usage(format!(
            "{}: {what} is {len} bytes or more, over the limit of {limit} bytes; it was not read",
            path.display()
        )),
        ReadError::NotAFile(kind) => Error::Usage(format!(
            "{}: cannot read {what}: it is {kind}, not a regular file",
            path.display()
        )),
        ReadError::Io(e) => Error::Usage(format!("{}: cannot read {what}: {e}", path.display())),
    })
}

/// Opens a regular file for reading: refused by type before it is opened, opened without
/// blocking (a FIFO swapped in meanwhile does not hang), and checked again once open.
pub fn open_regular(path: &Path, what: &str) -> Result<std::fs::File> {
    check_regular(path, what)?;
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK);
    }
    let f = o
        .open(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read {what}: {e}", path.display())))?;
    let m = f
        .metadata()
        .map_err(|e| Error::Usage(format!("{}: cannot read {what}: {e}", path.display())))?;
    if !m.is_file() {
        return Err(Error::Usage(format!(
            "{}: cannot read {what}: it is {}, not a regular file",
            path.display(),
            file_type_name(m.file_type())
        )));
    }
    Ok(f)
}

/// Refuses a path that exists and is not of the expected kind (`dir`: a directory, else a
/// regular file). A path that does not exist is fine (it is created).
pub fn check_kind_if_present(path: &Path, dir: bool, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if (dir && m.is_dir()) || (!dir && m.is_file()) => Ok(()),
        Ok(m) => Err(Error::Usage(format!(
            "{}: {what} is {}, not a {}",
            path.display(),
            file_type_name(m.file_type()),
            if dir { "directory" } else { "regular file" }
        ))),
        Err(_) => Ok(()),
    }
}

/// Reads one line of at most `max` bytes (without its newline) from `r` into `buf`.
/// Returns `Ok(None)` at the end; never reads more than `max + 1` bytes.
pub fn read_line_bounded(
    r: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<LineRead>> {
    use std::io::{BufRead, Read};
    buf.clear();
    let n = r.by_ref().take(max as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(LineRead::Complete));
    }
    if buf.len() > max {
        return Ok(Some(LineRead::TooLong));
    }
    Ok(Some(LineRead::Unterminated))
}

/// How [`read_line_bounded`] found a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRead {
    /// Ended by a newline (not in the buffer).
    Complete,
    /// The last line, without a newline.
    Unterminated,
    /// Longer than the limit (the buffer holds its first bytes).
    TooLong,
}
