//! What `pbc serve` loads before it listens: the playbooks of ROOT (one environment), the
//! configuration's `serve:` settings and roles, the bearer tokens (inline and from
//! `tokens-file`), the event secret, the agents file and the TLS files. Any problem refuses
//! to start. [`playbooks`] is what SIGHUP loads again.

use crate::tls::TlsFiles;
use pbc_compiler::config::{Config, MissedSchedules, TokenHash, read_tokens};
use pbc_runtime::{Agents, Compiled, Error, LoadOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How `pbc serve` was started.
#[derive(Clone, Debug)]
pub struct Options {
    /// A playbook file, a kustomization directory, or a root holding `overlays/ENV`.
    pub root: PathBuf,
    pub env: Option<String>,
    /// `127.0.0.1:8080` by default.
    pub listen: String,
    pub state: Option<PathBuf>,
    pub agents: Option<PathBuf>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: crate::log::LogFormat,
    /// `--tls-cert` and `--tls-key` (together), over `serve.tls`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// Everything loaded for serving.
pub struct Loaded {
    pub playbooks: Vec<Arc<Compiled>>,
    pub agents: Agents,
    pub tokens: Vec<TokenHash>,
    /// `serve.oidc`, its key set read.
    pub oidc: Option<crate::oidc::Oidc>,
    /// `serve.slack`, its secret read.
    pub slack: Option<crate::slack::Slack>,
    pub event_secret: Option<Vec<u8>>,
    pub max_body_bytes: usize,
    pub workers: Option<usize>,
    pub state_dir: PathBuf,
    /// Where the state store's tables are: `PBC_STATE_URL`, else `serve.state`, else SQLite.
    pub state_backend: pbc_runtime::StateBackend,
    /// `serve.missed-schedules`.
    pub missed_schedules: MissedSchedules,
    /// Serve HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Said once at start (an unset secret variable, a deprecated roles place).
    pub warnings: Vec<String>,
    /// `serve.signing-key`: approvals are signed with it (as a delegate).
    pub signing_key: Option<Arc<pbc_runtime::approval_sig::SigningKey>>,
}

/// The tree to serve: ROOT/overlays/ENV with `--env`; ROOT's only overlay; ROOT itself.
pub fn tree(root: &Path, env: Option<&str>) -> Result<PathBuf, Error> {
    if !root.exists() {
        return Err(Error::Usage(format!(
            "{}: no such file or directory",
            root.display()
        )));
    }
    let overlays = root.join("overlays");
    if let Some(env) = env {
        let d = overlays.join(env);
        if d.is_dir() {
            return Ok(d);
        }
        // ROOT may be the overlay itself.
        if root.file_name().is_some_and(|n| n == env) && root.is_dir() {
            return Ok(root.to_path_buf());
        }
        return Err(Error::Usage(format!(
            "{}: no environment `{env}` (no directory {})",
            root.display(),
            d.display()
        )));
    }
    if overlays.is_dir() {
        let mut envs: Vec<String> = std::fs::read_dir(&overlays)
            .map_err(|e| Error::Usage(format!("{}: {e}", overlays.display())))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        envs.sort();
        return match envs.as_slice() {
            [one] => Ok(overlays.join(one)),
            [] => Ok(root.to_path_buf()),
            many => Err(Error::Usage(format!(
                "{}: {} environments ({}); choose one with --env ENV",
                root.display(),
                many.len(),
                many.join(", ")
            ))),
        };
    }
    Ok(root.to_path_buf())
}

fn read_tokens_file(path: &Path) -> Result<Vec<TokenHash>, Error> {
    let text = pbc_runtime::files::read_text(path, "the tokens file", 1 << 20)?;
    let loader = pbc_compiler::load::Loader::new(
        Arc::new(pbc_compiler::fs::MemFs::new()),
        "",
        Default::default(),
    );
    let l = loader.load_text(path.to_path_buf(), text);
    let mut diags: Vec<_> = l.diags.iter().filter(|d| d.is_error()).cloned().collect();
    let tokens = match l.docs.first() {
        Some(d) => read_tokens(&d.root, &mut diags),
        None => Vec::new(),
    };
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(Error::Usage(format!(
            "{}: {}{}",
            path.display(),
            d.message,
            d.help
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        )));
    }
    Ok(tokens)
}

fn is_kustomization_dir(dir: &Path) -> bool {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// The playbooks of `tree`: a file's, a kustomization's (resolved), or, for a plain
/// directory, those of each `*.yaml`/`*.yml` file directly in it that holds `kind: Playbook`
/// documents. Two playbooks with one name refuse to start.
fn playbooks_of(tree: &Path, config: Option<&Path>) -> Result<Vec<Compiled>, Error> {
    let opts = LoadOptions {
        config: config.map(Path::to_path_buf),
        playbook: None,
    };
    if !tree.is_dir() || is_kustomization_dir(tree) {
        return pbc_runtime::load_all(tree, &opts);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(tree)
        .map_err(|e| Error::Usage(format!("{}: {e}", tree.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let mut out: Vec<Compiled> = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        // Only files with a `kind: Playbook` document (agents files and others are skipped).
        let text = pbc_runtime::files::read_text(&f, "a playbook file", 16 << 20)?;
        if !text.lines().any(|l| {
            let l = l.trim();
            l.starts_with("kind:")
                && l.trim_start_matches("kind:")
                    .trim()
                    .trim_matches(['"', '\''])
                    == "Playbook"
        }) {
            continue;
        }
        match pbc_runtime::load_all(&f, &opts) {
            Ok(list) => out.extend(list),
            Err(Error::Invalid(lines)) => errors.extend(lines),
            Err(e) => return Err(e),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no playbook to serve (no kustomization, no file with `kind: Playbook`)",
            tree.display()
        )));
    }
    let mut names: Vec<&str> = out.iter().map(|c| c.name()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Usage(format!(
            "{}: two playbooks are named `{}`; serve one environment (--env) or one file",
            tree.display(),
            w[0]
        )));
    }
    Ok(out)
}

/// The playbooks served: those of ROOT's tree (with `--env`), checked.
pub fn playbooks(o: &Options) -> Result<Vec<Arc<Compiled>>, Error> {
    let tree = tree(&o.root, o.env.as_deref())?;
    Ok(playbooks_of(&tree, o.config.as_deref())?
        .into_iter()
        .map(Arc::new)
        .collect())
}

/// Loads everything `pbc serve` needs; an error refuses to start.
pub fn load(o: &Options) -> Result<Loaded, Error> {
    let tree = tree(&o.root, o.env.as_deref())?;
    let cfg: Config = pbc_runtime::load::load_config(&tree, o.config.as_deref())?;
    let playbooks = playbooks(o)?;
    let serve = &cfg.serve;
    let mut warnings = Vec::new();
    let mut tokens = serve.tokens.clone();
    if let Some(f) = &serve.tokens_file {
        tokens.extend(read_tokens_file(f)?);
    }
    let event_secret = match &serve.event_secret_env {
        Some(var) => match std::env::var(var) {
            Ok(s) if !s.is_empty() => Some(s.into_bytes()),
            _ => {
                warnings.push(format!(
                    "serve.event-secret-env names `{var}`, which is not set: signed events are refused (events need a bearer token)"
                ));
                None
            }
        },
        None => None,
    };
    let oidc = serve
        .oidc
        .as_ref()
        .map(crate::oidc::Oidc::load)
        .transpose()?;
    let slack = serve
        .slack
        .as_ref()
        .and_then(|s| crate::slack::Slack::load(s, &mut warnings));
    if tokens.is_empty() && event_secret.is_none() && oidc.is_none() {
        warnings.push(
            "no serve.tokens and no event secret: every request but /healthz and /metrics is refused (401)".into(),
        );
    }
    let tls = match (&o.tls_cert, &o.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => serve.tls.as_ref().map(|t| TlsFiles {
            cert: t.cert.clone(),
            key: t.key.clone(),
        }),
        _ => {
            return Err(Error::Usage(
                "--tls-cert and --tls-key go together (the certificate chain and its key)".into(),
            ));
        }
    };
    let agents_path = o.agents.clone().or_else(|| serve.agents.clone());
    let agents = match &agents_path {
        Some(p) => Agents::from_file(p).map_err(Error::Usage)?,
        None => Agents::default(),
    };
    if let Some(w) = agents.roles_warning(&cfg.roles) {
        warnings.push(w);
    }
    Ok(Loaded {
        playbooks,
        agents,
        tokens,
        oidc,
        slack,
        event_secret,
        max_body_bytes: serve
            .max_body_bytes
            .unwrap_or(pbc_compiler::config::DEFAULT_MAX_BODY_BYTES)
            .try_into()
            .unwrap_or(usize::MAX),
        workers: serve.workers.map(|w| w as usize),
        state_dir: pbc_runtime::default_state_dir(o.state.as_deref()),
        state_backend: match pbc_runtime::StateBackend::from_env()? {
            Some(b) => b,
            None => pbc_runtime::StateBackend::parse(
                serve
                    .state
                    .as_deref()
                    .or(cfg.state.as_deref())
                    .unwrap_or_default(),
            )?,
        },
        missed_schedules: serve.missed_schedules.unwrap_or_default(),
        tls,
        warnings,
        signing_key: match &serve.signing_key {
            Some(p) => Some(Arc::new(pbc_runtime::approval_sig::read_signing_key(p)?)),
            None => None,
        },
    })
}
