//! The `mcp` executor: an action `LAYER:FUNCTION` calls a tool of a Model Context Protocol
//! server, spoken to over stdio (`mcp: {command: [...]}`, a process started for the call) or
//! streamable HTTP (`mcp: {url: ...}`), through the official Rust SDK (`rmcp`).
//!
//! The tool is named by the executor's template (`{function}` by default). Before the call,
//! the tool's `inputSchema` (from `tools/list`, remembered for the run) validates the
//! arguments: a mismatch refuses the call. The result's structured content, else its text
//! parsed as JSON, is the output; a result marked `isError` fails the stage. A timeout or
//! the kill switch ends the call (and a stdio server's process group); a server that dies
//! mid-call fails with the tail of its stderr.

pub mod lock;
mod transport;

use crate::agents::McpSpec;
use crate::exec::ExecError;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// One tool call.
#[derive(Clone, Debug)]
pub struct McpCall<'a> {
    pub spec: &'a McpSpec,
    /// The working directory of a stdio server (the agents file's directory).
    pub cwd: Option<&'a Path>,
    /// `LAYER:FUNCTION`.
    pub action: &'a str,
    /// The stage's interpolated params: the tool's arguments.
    pub params: &'a Value,
    pub timeout: Duration,
    /// The run: its tool lists are remembered for it.
    pub run: &'a str,
    /// `tls.ca-file`: certificates trusted for https besides the system's.
    pub ca_file: Option<&'a Path>,
}

/// A tool as `tools/list` describes it: its name and input schema.
#[derive(Clone, Debug)]
struct ToolInfo {
    name: String,
    input_schema: Value,
}

/// The tool lists of the runs in flight, by run and server (bounded: cleared when full).
fn tool_cache() -> &'static Mutex<HashMap<String, Vec<ToolInfo>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<ToolInfo>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}
const CACHE_ENTRIES: usize = 256;

/// Calls the tool; `stop` (the kill switch) is polled while it runs.
pub fn call(c: &McpCall<'_>, stop: &dyn Fn() -> bool) -> Result<Value, ExecError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExecError::Other(format!("could not start the MCP client: {e}")))?;
    rt.block_on(async {
        let mut conn = transport::Connection::open(c.spec, c.cwd, c.ca_file).await?;
        let outcome = {
            let work = session(c, &mut conn);
            tokio::pin!(work);
            let deadline = tokio::time::sleep(c.timeout);
            tokio::pin!(deadline);
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = &mut deadline => break Err(Failure::Ended(ExecError::Timeout(c.timeout))),
                    _ = tick.tick() => if stop() { break Err(Failure::Ended(ExecError::Stopped)) },
                }
            }
        };
        conn.finish(outcome).await
    })
}

/// The tools of the server of `spec` (`tools/list`): name → `inputSchema`.
pub fn list_tools(
    spec: &McpSpec,
    cwd: Option<&Path>,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<std::collections::BTreeMap<String, Value>, ExecError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExecError::Other(format!("could not start the MCP client: {e}")))?;
    rt.block_on(async {
        let mut conn = transport::Connection::open(spec, cwd, ca_file).await?;
        let work = async {
            let client = match conn.take_transport()? {
                transport::Transport::Stdio(t) => ().serve(t).await,
                transport::Transport::Http(t) => ().serve(t).await,
            }
            .map_err(|e| Failure::broken(format!("the MCP handshake failed: {e}")))?;
            let tools = client
                .list_all_tools()
                .await
                .map_err(|e| Failure::broken(format!("tools/list failed: {e}")))?;
            let _ = client.cancel().await;
            Ok(tools
                .into_iter()
                .map(|t| (t.name.to_string(), Value::Object((*t.input_schema).clone())))
                .collect::<std::collections::BTreeMap<_, _>>())
        };
        let outcome = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Ended(ExecError::Timeout(timeout))),
        };
        let listed = conn
            .finish(outcome.map(|t| serde_json::to_value(t).unwrap_or_default()))
            .await?;
        Ok(serde_json::from_value(listed).unwrap_or_default())
    })
}

/// Why a call failed: the connection broke (the handshake, `tools/list` or `tools/call`
/// got no answer: over stdio, the server's exit and stderr say more), or anything else.
enum Failure {
    Broken(ExecError),
    Ended(ExecError),
}

impl Failure {
    fn broken(what: impl std::fmt::Display) -> Failure {
        Failure::Broken(ExecError::Other(plain(&what.to_string())))
    }
}

impl Failure {
    fn into_error(self) -> ExecError {
        match self {
            Failure::Broken(e) | Failure::Ended(e) => e,
        }
    }
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Failure {
        Failure::Ended(e)
    }
}

/// Connects, finds the tool, checks the arguments, calls it and reads the result.
async fn session(c: &McpCall<'_>, conn: &mut transport::Connection) -> Result<Value, Failure> {
    let transport = conn.take_transport()?;
    let client = match transport {
        transport::Transport::Stdio(t) => ().serve(t).await,
        transport::Transport::Http(t) => ().serve(t).await,
    }
    .map_err(|e| Failure::broken(format!("the MCP handshake failed: {e}")))?;
    let name = c.spec.tool_for(c.action);
    let key = format!("{}\u{0}{}", c.run, c.spec.server());
    let cached = tool_cache().lock().ok().and_then(|m| m.get(&key).cloned());
    let tools = match cached {
        Some(t) => t,
        None => {
            let listed = client
                .list_all_tools()
                .await
                .map_err(|e| Failure::broken(format!("tools/list failed: {e}")))?;
            let tools: Vec<ToolInfo> = listed
                .into_iter()
                .map(|t| ToolInfo {
                    name: t.name.to_string(),
                    input_schema: Value::Object((*t.input_schema).clone()),
                })
                .collect();
            if let Ok(mut m) = tool_cache().lock() {
                if m.len() >= CACHE_ENTRIES {
                    m.clear();
                }
                m.insert(key, tools.clone());
            }
            tools
        }
    };
    let Some(tool) = tools.iter().find(|t| t.name == name) else {
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        return Err(ExecError::Refused(format!(
            "the MCP server has no tool `{name}` (it has: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
        .into());
    };
    let args = match c.params {
        Value::Object(m) => m.clone(),
        Value::Null => Default::default(),
        other => {
            return Err(ExecError::Refused(format!(
                "the params of `{}` are the tool's arguments and must be a map, not {other}",
                c.action
            ))
            .into());
        }
    };
    check_arguments(&name, &tool.input_schema, &Value::Object(args.clone()))?;
    let result = client
        .call_tool(CallToolRequestParams::new(name.clone()).with_arguments(args))
        .await
        .map_err(|e| Failure::broken(format!("the call of tool `{name}` failed: {e}")))?;
    let _ = client.cancel().await;
    Ok(output(&name, result)?)
}

/// An SDK error without the transport's Rust type name (`Transport [rmcp::…] error: `).
fn plain(msg: &str) -> String {
    let Some(start) = msg.find("Transport [") else {
        return msg.to_string();
    };
    let rest = &msg[start..];
    match rest.find("] error: ") {
        Some(end) => format!("{}{}", &msg[..start], &rest[end + "] error: ".len()..]),
        None => msg.to_string(),
    }
}

/// The arguments checked against the tool's `inputSchema`.
pub(crate) fn check_arguments(tool: &str, schema: &Value, args: &Value) -> Result<(), ExecError> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        ExecError::Refused(format!(
            "the inputSchema of tool `{tool}` is not valid: {e}"
        ))
    })?;
    let errors: Vec<String> = validator
        .iter_errors(args)
        .take(20)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { at.as_str() })
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(ExecError::Refused(format!(
        "the params do not match the inputSchema of tool `{tool}` (not called):\n{}",
        errors.join("\n")
    )))
}

/// The text of a result's text blocks.
fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The stage output of a tool result: its structured content, else its text as JSON.
fn output(tool: &str, r: CallToolResult) -> Result<Value, ExecError> {
    if r.is_error == Some(true) {
        let text = text_of(&r);
        let excerpt: String = text.trim().chars().take(2000).collect();
        return Err(ExecError::Other(format!(
            "tool `{tool}` reported an error{}",
            if excerpt.is_empty() {
                String::new()
            } else {
                format!(": {excerpt}")
            }
        )));
    }
    if let Some(v) = r.structured_content {
        return Ok(v);
    }
    let text = text_of(&r);
    if text.trim().is_empty() {
        return Err(ExecError::BadOutput(format!(
            "tool `{tool}` returned neither structured content nor text"
        )));
    }
    serde_json::from_str(text.trim()).map_err(|e| {
        ExecError::BadOutput(format!(
            "the text of tool `{tool}` is not one JSON value ({e})"
        ))
    })
}

#[cfg(test)]
mod tests;
