//! How the `mcp` executor reaches a server: a process of its own over stdio (in its own
//! process group, killed with pbc, its stderr kept for a failure's message) or a
//! streamable-HTTP endpoint (headers from the environment).

use crate::agents::McpSpec;
use crate::exec::ExecError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout};

/// How much of a failing server's stderr is kept (characters).
const STDERR_TAIL: usize = 2000;
/// How much stderr is read at most (bytes); the tail of what was read is kept.
const STDERR_MAX: usize = 1024 * 1024;

/// A transport, not yet handed to the client.
pub(super) enum Transport {
    Stdio((ChildStdout, ChildStdin)),
    Http(StreamableHttpClientTransport<reqwest::Client>),
}

/// A server connection: the transport and, over stdio, the server's process.
pub(super) struct Connection {
    transport: Option<Transport>,
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
}

impl Connection {
    /// Starts the server (stdio) or prepares the HTTP transport.
    pub(super) async fn open(
        spec: &McpSpec,
        cwd: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> Result<Connection, ExecError> {
        if let Some(url) = &spec.url {
            return Ok(Connection {
                transport: Some(Transport::Http(http(url, &spec.headers_from_env, ca_file)?)),
                child: None,
                stderr: Default::default(),
                stderr_reader: None,
            });
        }
        let Some((program, args)) = spec.command.as_deref().and_then(<[String]>::split_first)
        else {
            return Err(ExecError::Other("the `mcp` executor has no server".into()));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        #[cfg(unix)]
        cmd.process_group(0);
        // As a `command` executor: if pbc dies, the server dies with it.
        #[cfg(target_os = "linux")]
        // SAFETY: see `die_with_parent`.
        unsafe {
            cmd.pre_exec(crate::exec::die_with_parent());
        }
        let mut child = cmd.spawn().map_err(|e| ExecError::Spawn {
            program: program.clone(),
            reason: e.to_string(),
        })?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            kill_group(&mut child);
            return Err(ExecError::Other(
                "the MCP server's pipes are missing".into(),
            ));
        };
        let stderr: Arc<Mutex<Vec<u8>>> = Default::default();
        let stderr_reader = child.stderr.take().map(|mut pipe| {
            let buf = stderr.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut b) = buf.lock() {
                        b.extend_from_slice(&chunk[..n]);
                        if b.len() > STDERR_MAX {
                            let cut = b.len() - STDERR_MAX;
                            b.drain(..cut);
                        }
                    }
                }
            })
        });
        Ok(Connection {
            transport: Some(Transport::Stdio((stdout, stdin))),
            child: Some(child),
            stderr,
            stderr_reader,
        })
    }

    /// The transport, once.
    pub(super) fn take_transport(&mut self) -> Result<Transport, ExecError> {
        self.transport
            .take()
            .ok_or_else(|| ExecError::Other("the MCP transport was already used".into()))
    }

    /// Ends the server process (if any). A broken connection to a server that has exited
    /// fails with its exit status and the tail of its stderr.
    pub(super) async fn finish(
        mut self,
        outcome: Result<serde_json::Value, super::Failure>,
    ) -> Result<serde_json::Value, ExecError> {
        let Some(mut child) = self.child.take() else {
            return outcome.map_err(super::Failure::into_error);
        };
        let exited = match &outcome {
            Err(super::Failure::Broken(_)) => {
                tokio::time::timeout(Duration::from_secs(2), child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            _ => None,
        };
        kill_group(&mut child);
        let _ = child.wait().await;
        if let Some(h) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
        }
        match (exited, outcome) {
            (Some(status), Err(super::Failure::Broken(e))) => {
                let bytes = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
                Err(ExecError::Exit {
                    status: format!("{status} ({e})"),
                    stderr: tail(&bytes, STDERR_TAIL),
                })
            }
            (_, o) => o.map_err(super::Failure::into_error),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            kill_group(c);
        }
    }
}

/// Kills the server and everything it started (its process group).
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
}

/// The last `n` characters of `bytes`, as text.
fn tail(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    format!("…{}", s.chars().skip(count - n).collect::<String>())
}

/// The streamable-HTTP transport with its headers read from the environment, over pbc's
/// TLS (rustls with ring; the platform's roots plus `tls.ca-file`).
fn http(
    url: &str,
    headers_from_env: &std::collections::BTreeMap<String, String>,
    ca_file: Option<&Path>,
) -> Result<StreamableHttpClientTransport<reqwest::Client>, ExecError> {
    let mut tls = (*crate::tls::rustls_client(ca_file).map_err(ExecError::Other)?).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        // As the `http` executor: proxy variables are ignored, pbc talks only to the URL.
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| ExecError::Other(format!("the MCP HTTP client: {e}")))?;
    let mut headers = HashMap::new();
    for (name, var) in headers_from_env {
        let value = std::env::var(var).map_err(|_| {
            ExecError::Other(format!(
                "header `{name}`: the environment variable `{var}` is not set"
            ))
        })?;
        let name = http::HeaderName::try_from(name.as_str())
            .map_err(|e| ExecError::Other(format!("header `{name}`: {e}")))?;
        let value = http::HeaderValue::try_from(value).map_err(|_| {
            ExecError::Other(format!(
                "header `{name}`: the value of `{var}` is not a header value"
            ))
        })?;
        headers.insert(name, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers);
    Ok(StreamableHttpClientTransport::with_client(client, config))
}
