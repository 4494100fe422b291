//! The agents lock file (`pbc agents tools --lock agents.lock.json`): the tools of every
//! `mcp` executor's server and their input schemas, recorded so that `pbc check` can check
//! actions and their params without starting or reaching a server.

use super::McpSpec;
use crate::agents::Agents;
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::model::Playbook;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

declare_codes! {
    /// An action's MCP tool is not in the agents lock file.
    ///
    /// `pbc check --agents FILE --lock agents.lock.json` maps each `action: LAYER:FUNCTION`
    /// (and each rollback step's action) to its `mcp` executor in the agents file (an exact
    /// key, else `LAYER:*`) and its tool name (the executor's `tool` template), and looks the
    /// tool up among the tools the server had when the lock file was written (`pbc agents
    /// tools --lock`). A missing tool fails at run time before anything is called; rename the
    /// action, fix the template, or refresh the lock file if the server gained the tool.
    PB8001 MCP_UNKNOWN_TOOL "mcp-unknown-tool" Error "an action's MCP tool is not in the lock file";
    /// An action's params do not match its MCP tool's input schema in the lock file.
    ///
    /// The params are the tool's arguments, and the runtime refuses to call a tool whose
    /// `inputSchema` they do not match. `pbc check` finds the same mismatch offline, from the
    /// schema the lock file recorded: a missing required argument, an argument the schema does
    /// not allow, a literal of the wrong type. A value that holds `${…}` is known only at run
    /// time and is checked then.
    PB8002 MCP_PARAMS "mcp-params-mismatch" Error "params do not match the MCP tool's input schema";
}

/// The lock file's format version.
pub const VERSION: u32 = 1;

/// The lock file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsLock {
    pub version: u32,
    /// By action key of the agents file (`k8s:*`, `k8s:drain_node`).
    pub actions: BTreeMap<String, LockedServer>,
}

/// One `mcp` executor's server and its tools.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedServer {
    /// The command line or URL (as the audit log names it).
    pub server: String,
    /// Tool name → `inputSchema`.
    pub tools: BTreeMap<String, Value>,
}

impl AgentsLock {
    /// Asks every `mcp` executor of `agents` for its tools (`timeout` each).
    pub fn collect(
        agents: &Agents,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<AgentsLock, String> {
        let mut lock = AgentsLock {
            version: VERSION,
            actions: BTreeMap::new(),
        };
        for (key, spec) in &agents.actions {
            let Some(m) = &spec.mcp else { continue };
            let tools = super::list_tools(m, spec.cwd.as_deref(), ca_file, timeout)
                .map_err(|e| format!("action `{key}` ({}): {e}", m.server()))?;
            lock.actions.insert(
                key.clone(),
                LockedServer {
                    server: m.server(),
                    tools,
                },
            );
        }
        Ok(lock)
    }

    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<AgentsLock, String> {
        let text = crate::files::read_text(path, "the agents lock file", 16 * 1024 * 1024)
            .map_err(|e| e.to_string())?;
        let lock: AgentsLock =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if lock.version != VERSION {
            return Err(format!(
                "{}: version {} (this pbc reads version {VERSION})",
                path.display(),
                lock.version
            ));
        }
        Ok(lock)
    }

    /// The lock file's text (stable: sorted keys, one trailing newline).
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The problems of a playbook's actions and params against the lock file, as
    /// diagnostics (`pbc check --lock`).
    pub fn check_playbook(&self, agents: &Agents, pb: &Playbook, diags: &mut Vec<Diagnostic>) {
        for stage in &pb.spec.stages {
            let mut steps = Vec::new();
            if let Some(a) = stage.action() {
                steps.push((a, stage.params.as_ref()));
            }
            if let Some(r) = &stage.rollback {
                steps.push((&r.action, r.params.as_ref()));
            }
            for (a, params) in steps {
                let action = a.value.to_string();
                let args = params.map(|p| p.to_json()).unwrap_or(Value::Null);
                for (unknown_tool, msg) in self.problems(agents, &action, &args) {
                    let code = if unknown_tool {
                        &MCP_UNKNOWN_TOOL
                    } else {
                        &MCP_PARAMS
                    };
                    // A params problem points at the params, a tool problem at the action.
                    let span = match (unknown_tool, params) {
                        (false, Some(p)) => p.span,
                        _ => a.span,
                    };
                    diags.push(Diagnostic::new(code, span, msg));
                }
            }
        }
    }

    /// What is wrong with action `action` and its `params` (as written: a string holding a
    /// `${…}` is a value known only at run time and is not checked), offline. Empty when
    /// the action is not an `mcp` executor's, or all is well.
    pub fn check(&self, agents: &Agents, action: &str, params: &Value) -> Vec<String> {
        self.problems(agents, action, params)
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    /// [`AgentsLock::check`], each problem marked whether it is a missing tool.
    fn problems(&self, agents: &Agents, action: &str, params: &Value) -> Vec<(bool, String)> {
        let key = if agents.actions.contains_key(action) {
            action.to_string()
        } else {
            match action.split_once(':') {
                Some((layer, _)) => format!("{layer}:*"),
                None => return Vec::new(),
            }
        };
        let Some(m) = agents.actions.get(&key).and_then(|s| s.mcp.as_ref()) else {
            return Vec::new();
        };
        let Some(locked) = self.actions.get(&key) else {
            return vec![(
                true,
                format!(
                    "the lock file has no tools for action key `{key}`: run `pbc agents tools --lock`"
                ),
            )];
        };
        let tool = tool_name(m, action);
        let Some(schema) = locked.tools.get(&tool) else {
            let names: Vec<&str> = locked.tools.keys().map(String::as_str).collect();
            return vec![(
                true,
                format!(
                    "`{action}` is tool `{tool}`, which the server ({}) does not have (it has: {})",
                    locked.server,
                    names.join(", ")
                ),
            )];
        };
        let mut unknown = Vec::new();
        let known = known_part(params, "", &mut unknown);
        let Err(super::ExecError::Refused(msg)) = super::check_arguments(&tool, schema, &known)
        else {
            return Vec::new();
        };
        if !msg.contains('\n') {
            // The schema itself is not valid.
            return vec![(false, msg)];
        }
        msg.lines()
            .skip(1)
            .filter(|l| {
                let at = l.split(": ").next().unwrap_or("");
                !unknown
                    .iter()
                    .any(|u: &String| at == u || at.starts_with(&format!("{u}/")))
            })
            .map(|l| (false, format!("params of `{action}` (tool `{tool}`): {l}")))
            .collect()
    }
}

fn tool_name(m: &McpSpec, action: &str) -> String {
    m.tool_for(action)
}

/// `v` with every string holding `${…}` replaced by null; `unknown` gets their JSON
/// pointers (errors at or below them are not reported).
fn known_part(v: &Value, at: &str, unknown: &mut Vec<String>) -> Value {
    match v {
        Value::String(s) if s.contains("${") => {
            unknown.push(at.to_string());
            Value::Null
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    (k.clone(), known_part(x, &p, unknown))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| known_part(x, &format!("{at}/{i}"), unknown))
                .collect(),
        ),
        other => other.clone(),
    }
}
