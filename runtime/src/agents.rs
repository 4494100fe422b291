//! The agents file: executors for agents and actions, and the role map.
//!
//! ```yaml
//! agents:
//!   glm-5: {command: [python3, agents/review.py], timeout: 60s}
//!   gpt-x: {http: {url: "http://127.0.0.1:8080/v1/chat/completions", model: gpt-x}, system-prompt: "..."}
//!   replay: {fixture: recorded/}
//! actions:
//!   "db:apply_migration": {command: [./bin/migrate]}
//!   "k8s:*": {mcp: {command: [python3, k8s_server.py]}}
//! roles:
//!   security-team: [ann@example.com]
//! ```
//!
//! Relative paths (a command's program when it contains `/`, a fixture directory) are taken
//! relative to the agents file, and commands run there. A run freezes the parsed file.
//! An action key `LAYER:*` covers every function of the layer; an exact key beats it.

use pbc_compiler::model::values::parse_duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How an agent or action runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExecutorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixture: Option<PathBuf>,
    /// A tool of a Model Context Protocol server (actions only): [`crate::mcp`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpSpec>,
    /// `30s`, `10m`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// The working directory of a command (the agents file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
}

/// An OpenAI-compatible chat-completions endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpSpec {
    pub url: String,
    pub model: String,
    /// The environment variable holding a bearer token (never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

/// An MCP server: a program spoken to over stdio, or a streamable-HTTP endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct McpSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Request headers whose values are read from environment variables (never stored):
    /// header name → variable name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_env: BTreeMap<String, String>,
    /// The tool's name: `{function}` and `{layer}` are the action's parts (default
    /// `{function}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

impl McpSpec {
    /// The tool that action `LAYER:FUNCTION` calls.
    pub fn tool_for(&self, action: &str) -> String {
        let (layer, function) = action.split_once(':').unwrap_or(("", action));
        self.tool
            .as_deref()
            .unwrap_or("{function}")
            .replace("{layer}", layer)
            .replace("{function}", function)
    }

    /// The server as the audit log names it: its command line or its URL.
    pub fn server(&self) -> String {
        match (&self.command, &self.url) {
            (Some(c), _) => c.join(" "),
            (None, Some(u)) => u.clone(),
            (None, None) => String::new(),
        }
    }
}

impl ExecutorSpec {
    /// The configured timeout.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .map(|d| d.as_std())
    }

    /// `command`, `http`, `mcp` or `fixture`.
    pub fn kind(&self) -> &'static str {
        if self.command.is_some() {
            "command"
        } else if self.http.is_some() {
            "http"
        } else if self.mcp.is_some() {
            "mcp"
        } else {
            "fixture"
        }
    }
}

/// A parsed agents file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    #[serde(default)]
    pub agents: BTreeMap<String, ExecutorSpec>,
    #[serde(default)]
    pub actions: BTreeMap<String, ExecutorSpec>,
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Where it was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
}

impl Agents {
    /// The executor of action `key` (`LAYER:FUNCTION`): its own entry, else its layer's
    /// `LAYER:*`.
    pub fn action(&self, key: &str) -> Option<&ExecutorSpec> {
        self.actions.get(key).or_else(|| {
            let (layer, _) = key.split_once(':')?;
            self.actions.get(&format!("{layer}:*"))
        })
    }

    /// Reads an agents file (YAML or JSON).
    pub fn from_file(path: &Path) -> Result<Agents, String> {
        let text = crate::files::read_text(path, "the agents file", crate::files::MAX_AGENTS_BYTES)
            .map_err(|e| e.to_string())?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            std::fs::canonicalize(&dir).unwrap_or(dir)
        };
        let mut a =
            Agents::from_str(&text, &dir).map_err(|e| format!("{}: {e}", path.display()))?;
        a.source = Some(path.to_path_buf());
        Ok(a)
    }

    /// Parses agents-file text; relative paths are taken relative to `dir`.
    pub fn from_str(text: &str, dir: &Path) -> Result<Agents, String> {
        let loader = pbc_compiler::load::Loader::new(
            std::sync::Arc::new(pbc_compiler::fs::MemFs::new()),
            "",
            Default::default(),
        );
        let loaded = loader.load_text("agents.yaml", text.to_string());
        if let Some(d) = loaded.diags.iter().find(|d| d.is_error()) {
            return Err(format!("not valid YAML: {}", d.message));
        }
        let json = loaded
            .docs
            .first()
            .map(|d| d.root.to_json())
            .unwrap_or(serde_json::Value::Null);
        if json.is_null() {
            return Ok(Agents::default());
        }
        let mut a: Agents = serde_json::from_value(json).map_err(|e| e.to_string())?;
        for (kind, map) in [("agent", &mut a.agents), ("action", &mut a.actions)] {
            for (name, spec) in map.iter_mut() {
                let n = [
                    spec.command.is_some(),
                    spec.http.is_some(),
                    spec.fixture.is_some(),
                    spec.mcp.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                if n != 1 {
                    return Err(format!(
                        "{kind} `{name}` needs exactly one of `command`, `http`, `mcp` and `fixture`"
                    ));
                }
                if let Some(m) = &mut spec.mcp {
                    if kind == "agent" {
                        return Err(format!(
                            "agent `{name}`: `mcp` is an executor for actions (`LAYER:FUNCTION`)"
                        ));
                    }
                    check_mcp(kind, name, m, dir)?;
                    spec.cwd = Some(dir.to_path_buf());
                }
                if kind == "action" && name.ends_with('*') && !name.ends_with(":*") {
                    return Err(format!("action `{name}`: a wildcard key is `LAYER:*`"));
                }
                if let Some(t) = &spec.timeout
                    && let Err(e) = parse_duration(t)
                {
                    return Err(format!("{kind} `{name}`: {}", e.message));
                }
                if let Some(cmd) = &mut spec.command {
                    let Some(prog) = cmd.first_mut() else {
                        return Err(format!("{kind} `{name}`: `command` is empty"));
                    };
                    if prog.contains('/') && Path::new(prog.as_str()).is_relative() {
                        *prog = dir.join(prog.as_str()).to_string_lossy().into_owned();
                    }
                    spec.cwd = Some(dir.to_path_buf());
                }
                if let Some(f) = &mut spec.fixture
                    && f.is_relative()
                {
                    *f = dir.join(&*f);
                }
                if let Some(h) = &spec.http
                    && !(h.url.starts_with("http://") || h.url.starts_with("https://"))
                {
                    return Err(format!(
                        "{kind} `{name}`: `http.url` must be an http:// or https:// URL"
                    ));
                }
            }
        }
        for (role, members) in &mut a.roles {
            for m in members.iter_mut() {
                *m = m.trim().to_string();
                if m.is_empty() {
                    return Err(format!("role `{role}` has an empty member"));
                }
            }
        }
        Ok(a)
    }

    /// The deprecation warning for a `roles:` map in the agents file (`None` without one).
    /// `config` is the configuration's `roles:`, which wins where both define a role.
    pub fn roles_warning(&self, config: &BTreeMap<String, Vec<String>>) -> Option<String> {
        if self.roles.is_empty() {
            return None;
        }
        let file = self
            .source
            .as_ref()
            .map(|p| format!(" {}", p.display()))
            .unwrap_or_default();
        let both: Vec<&str> = self
            .roles
            .keys()
            .filter(|r| config.contains_key(*r))
            .map(String::as_str)
            .collect();
        let mut w = format!(
            "`roles:` in the agents file{file} is deprecated: define roles in .pbc.yaml `roles:`"
        );
        if !both.is_empty() {
            w.push_str(&format!(
                "; both define {}, and .pbc.yaml wins",
                both.join(", ")
            ));
        }
        Some(w)
    }

    /// The role map a run freezes: the agents file's (deprecated), overridden role by role
    /// by the configuration's.
    pub fn with_config_roles(&self, config: &BTreeMap<String, Vec<String>>) -> Agents {
        let mut a = self.clone();
        for (r, m) in config {
            a.roles.insert(r.clone(), m.clone());
        }
        a
    }

    /// The roles `who` belongs to.
    pub fn roles_of(&self, who: &str) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, m)| m.iter().any(|x| same_person(x, who)))
            .map(|(r, _)| r.clone())
            .collect()
    }
}

/// Checks an `mcp` executor and makes its program's relative path absolute.
fn check_mcp(kind: &str, name: &str, m: &mut McpSpec, dir: &Path) -> Result<(), String> {
    match (&mut m.command, &m.url) {
        (Some(cmd), None) => {
            let Some(prog) = cmd.first_mut() else {
                return Err(format!("{kind} `{name}`: `mcp.command` is empty"));
            };
            if prog.contains('/') && Path::new(prog.as_str()).is_relative() {
                *prog = dir.join(prog.as_str()).to_string_lossy().into_owned();
            }
        }
        (None, Some(u)) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "{kind} `{name}`: `mcp.url` must be an http:// or https:// URL"
                ));
            }
        }
        _ => {
            return Err(format!(
                "{kind} `{name}`: `mcp` needs exactly one of `command` and `url`"
            ));
        }
    }
    if m.command.is_some() && !m.headers_from_env.is_empty() {
        return Err(format!("{kind} `{name}`: `headers-from-env` needs `url`"));
    }
    if let Some(t) = &m.tool {
        let rest = t.replace("{layer}", "").replace("{function}", "");
        if t.is_empty() || rest.contains('{') || rest.contains('}') {
            return Err(format!(
                "{kind} `{name}`: `mcp.tool` may use only `{{layer}}` and `{{function}}`"
            ));
        }
    }
    Ok(())
}

/// People are compared case-insensitively (e-mail addresses, user names).
pub fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}
