//! Executors: `command` (request JSON on stdin, output JSON on stdout, killed
//! when its timeout passes or the run is stopped), `fixture` (recorded outputs) and `http`
//! (OpenAI-compatible chat completions, over `http://` or `https://`: [`crate::tls`]); the
//! `mcp` executor is [`crate::mcp`].

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most output a command may print (bytes).
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// How much of a failing command's stderr is kept.
const STDERR_TAIL: usize = 2000;

/// Why an executor produced no output.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("could not start `{program}`: {reason}")]
    Spawn { program: String, reason: String },
    #[error("timed out after {0:?} and was killed")]
    Timeout(Duration),
    #[error("stopped by the kill switch")]
    Stopped,
    #[error("exited with {status}{}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Exit { status: String, stderr: String },
    #[error("printed no JSON output: {0}")]
    BadOutput(String),
    /// Refused before anything was called (an MCP tool's arguments do not match its
    /// `inputSchema`, or the server has no such tool): another attempt would fail alike.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

fn tail(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    let skip = count - n;
    format!("…{}", s.chars().skip(skip).collect::<String>())
}

#[cfg(unix)]
fn kill_tree(child: &mut std::process::Child) {
    // The child leads its own process group: kill it and everything it started.
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

#[cfg(not(unix))]
fn kill_tree(child: &mut std::process::Child) {
    let _ = child.kill();
}

/// Runs `argv` with `request` as JSON on stdin and reads one JSON value from stdout. `stop`
/// is polled while it runs; when it says so, the process is killed.
pub fn run_json_command(
    argv: &[String],
    cwd: Option<&Path>,
    request: &Value,
    timeout: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<Value, ExecError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ExecError::Other("empty command".into()));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    // If pbc dies (kill -9), the executor dies with it: an action must not go on running
    // unseen while `pbc resume` asks a person whether to run it again.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: see `die_with_parent`.
        unsafe {
            cmd.pre_exec(die_with_parent());
        }
    }
    let mut child = cmd.spawn().map_err(|e| ExecError::Spawn {
        program: program.clone(),
        reason: e.to_string(),
    })?;
    let body = serde_json::to_vec(request).unwrap_or_default();
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            let _ = s.write_all(&body);
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
        }
        buf
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(1024 * 1024).read_to_end(&mut buf);
        }
        buf
    });
    let start = Instant::now();
    let mut polls = 0u32;
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(ExecError::Other(e.to_string())),
        }
        if start.elapsed() >= timeout {
            kill_tree(&mut child);
            let _ = child.wait();
            break Err(ExecError::Timeout(timeout));
        }
        polls += 1;
        if polls.is_multiple_of(10) && stop() {
            kill_tree(&mut child);
            let _ = child.wait();
            break Err(ExecError::Stopped);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A finished leader may leave children holding the pipes: end the group.
    #[cfg(unix)]
    if outcome.is_ok()
        && let Ok(pid) = i32::try_from(child.id())
    {
        // SAFETY: as above; the group may already be gone (ESRCH is fine).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let status = outcome?;
    if !status.success() {
        return Err(ExecError::Exit {
            status: status.to_string(),
            stderr: tail(&err, STDERR_TAIL),
        });
    }
    if out.len() > MAX_OUTPUT {
        return Err(ExecError::BadOutput(format!(
            "more than {MAX_OUTPUT} bytes on stdout"
        )));
    }
    parse_output(&out)
}

fn parse_output(out: &[u8]) -> Result<Value, ExecError> {
    let text =
        std::str::from_utf8(out).map_err(|_| ExecError::BadOutput("stdout is not UTF-8".into()))?;
    if text.trim().is_empty() {
        return Err(ExecError::BadOutput("stdout is empty".into()));
    }
    serde_json::from_str(text.trim())
        .map_err(|e| ExecError::BadOutput(format!("stdout is not one JSON value ({e})")))
}

/// A recorded output: `DIR/<stage>.json`.
pub fn fixture(dir: &Path, stage: &str) -> Result<Value, ExecError> {
    let p: PathBuf = dir.join(format!("{stage}.json"));
    // Bounded like a command's stdout, and never a FIFO or a device.
    let bytes = crate::files::read_bytes(&p, "the recorded output", MAX_OUTPUT as u64)
        .map_err(|e| ExecError::Other(e.to_string()))?;
    parse_output(&bytes)
}

/// The parts of an OpenAI-compatible chat-completions call.
#[derive(Clone, Debug)]
pub struct ChatCall<'a> {
    pub url: &'a str,
    pub model: &'a str,
    pub system_prompt: Option<&'a str>,
    /// The stage's prompt (may be empty).
    pub prompt: &'a str,
    pub request: &'a Value,
    pub timeout: Duration,
    /// A bearer token, if the agent names an environment variable holding one.
    pub api_key: Option<String>,
    /// `tls.ca-file`: certificates trusted for https besides the system's.
    pub ca_file: Option<&'a Path>,
}

/// The request body of a chat-completions call.
pub fn chat_body(c: &ChatCall<'_>) -> Value {
    let req = serde_json::to_string(c.request).unwrap_or_default();
    let user = if c.prompt.is_empty() {
        req
    } else {
        format!("{}\n\n{req}", c.prompt)
    };
    let mut messages = Vec::new();
    if let Some(s) = c.system_prompt {
        messages.push(json!({"role": "system", "content": s}));
    }
    messages.push(json!({"role": "user", "content": user}));
    json!({
        "model": c.model,
        "messages": messages,
        "response_format": {"type": "json_object"},
    })
}

/// Posts the call; the first choice's message content, parsed as JSON, is the output.
pub fn http_chat(c: &ChatCall<'_>) -> Result<Value, ExecError> {
    let agent = crate::tls::agent(c.timeout, c.ca_file).map_err(ExecError::Other)?;
    let body = serde_json::to_string(&chat_body(c)).unwrap_or_default();
    let mut req = agent.post(c.url).header("Content-Type", "application/json");
    if let Some(k) = &c.api_key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let mut resp = req.send(body).map_err(|e| match e {
        ureq::Error::Timeout(_) => ExecError::Timeout(c.timeout),
        e => ExecError::Other(crate::tls::describe(c.url, &e)),
    })?;
    let status = resp.status();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| ExecError::Other(format!("{}: reading the response: {e}", c.url)))?;
    if !status.is_success() {
        let excerpt: String = text.chars().take(500).collect();
        return Err(ExecError::Other(format!(
            "{} answered {status}: {excerpt}",
            c.url
        )));
    }
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| ExecError::BadOutput(format!("the response is not JSON ({e})")))?;
    let content = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ExecError::BadOutput("the response has no choices[0].message.content".into())
        })?;
    parse_output(content.as_bytes())
}

/// The `pre_exec` hook of every child pbc starts (executors, MCP servers): the child gets
/// SIGKILL when pbc dies, and does not start at all when pbc died between fork and exec.
///
/// # Safety
/// It runs in the forked child before exec and calls only async-signal-safe functions
/// (prctl(2), getppid(2)); it allocates nothing.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent() -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    let parent = std::process::id() as libc::pid_t;
    move || {
        // SAFETY: prctl(2) and getppid(2) are async-signal-safe and take no pointers.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // pbc died between fork and prctl: do not start at all.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    }
}
