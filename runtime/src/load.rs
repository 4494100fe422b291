//! Loading a playbook for a run: a file, or a kustomization directory resolved with its
//! overlays; checked like `pbc check` (errors refuse the run); then *frozen*: the resolved
//! document (with its schema references rewritten to frozen copies) and every schema file
//! it names are kept in the run, and the run always executes the frozen copy, re-checked.
//! So `resume` runs exactly what `run` started, whatever happens to the files meanwhile.

use crate::{Error, Result};
use pbc_compiler::check::{PlaybookCtx, PlaybookDoc};
use pbc_compiler::config::{
    ApprovalSettings, ChannelDef, Config, GuardrailDef, RateLimitMode, SinkDef,
};
use pbc_compiler::diag::Diagnostic;
use pbc_compiler::fs::{FileSystem, MemFs, OsFs};
use pbc_compiler::load::Loader;
use pbc_compiler::model::Playbook;
use pbc_compiler::sema::Analysis;
use pbc_compiler::types::SchemaStore;
use pbc_compiler::yaml::Node;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The runtime's part of the configuration, frozen with a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// Every guardrail name the configuration declares (for the checker).
    pub known_guardrails: Vec<String>,
    pub guardrail_defs: BTreeMap<String, GuardrailDef>,
    pub always_on: Vec<String>,
    pub notifications: BTreeMap<String, ChannelDef>,
    pub default_sla_secs: Option<u64>,
    pub on_rate_limit: RateLimitMode,
    /// `tls.ca-file`: certificates trusted for https besides the system's (runs stored
    /// before it existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// `roles:` (approver roles to people).
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// `serve.public-url`: notifications link to approval pages there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `audit-sinks:` (runs stored before it existed have none).
    #[serde(default)]
    pub audit_sinks: BTreeMap<String, SinkDef>,
    /// `policies:` with their files' contents, `always-on-policies:` and the run's
    /// environment (runs stored before policies were enforced have none).
    #[serde(default, skip_serializing_if = "pbc_policy::PolicySet::is_empty")]
    pub policies: pbc_policy::PolicySet,
    /// `approvals:` (signed approvals and their keys; runs stored before it existed have
    /// none).
    #[serde(default, skip_serializing_if = "ApprovalSettings::is_empty")]
    pub approvals: ApprovalSettings,
}

impl RuntimeConfig {
    pub fn from_config(c: &Config) -> Self {
        RuntimeConfig {
            known_guardrails: c.guardrails.clone(),
            guardrail_defs: c.guardrail_defs.clone(),
            always_on: c.always_on_guardrails.clone(),
            notifications: c.notifications.clone(),
            default_sla_secs: c.default_sla.map(|d| d.seconds),
            on_rate_limit: c.on_rate_limit,
            tls_ca_file: c.tls_ca_file.clone(),
            roles: c.roles.clone(),
            public_url: c.serve.public_url.clone(),
            audit_sinks: c.audit_sinks.clone(),
            policies: pbc_policy::PolicySet::default(),
            approvals: c.approvals.clone(),
        }
    }
}

/// A playbook as a run keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frozen {
    /// Where it came from (for people).
    pub source: String,
    /// The resolved document, schema references pointing into `files`.
    pub playbook: String,
    /// Frozen schema files by virtual path (`schemas/<stage index>/<file name>`).
    pub files: BTreeMap<String, String>,
    pub config: RuntimeConfig,
    /// The SHA-256 (hex) of the resolved playbook as `pbc build` writes it
    /// (`resolved/<name>.yaml`): what a signed approval names (runs stored before it existed
    /// have none, and no signed approval passes them).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resolved_sha256: String,
}

/// A checked playbook, ready to run.
#[derive(Debug)]
pub struct Compiled {
    pub playbook: Playbook,
    pub analysis: Analysis,
    pub frozen: Frozen,
    /// Per stage: the compiled output schema and its file name.
    pub validators: Vec<Option<(String, Arc<jsonschema::Validator>)>>,
    /// Warnings found while checking (rendered).
    pub warnings: Vec<String>,
    /// Infos found while checking (rendered).
    pub infos: Vec<String>,
}

impl Compiled {
    pub fn name(&self) -> &str {
        self.playbook.name()
    }
}

/// Options for [`load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--config`; else `.pbc.yaml` is searched upward from the path.
    pub config: Option<PathBuf>,
    /// `--playbook NAME`, when the path holds several.
    pub playbook: Option<String>,
}

fn noop(_: &PlaybookCtx<'_>, _: &mut Vec<Diagnostic>) {}

fn render(loader: &Loader, diags: &[Diagnostic]) -> Vec<String> {
    let opts = pbc_compiler::render::HumanOptions {
        color: false,
        width: 100,
    };
    diags
        .iter()
        .map(|d| pbc_compiler::render::human_one(&loader.sources, d, &opts))
        .collect()
}

/// The configuration for `start` (a file or directory): `config` when given, else
/// `.pbc.yaml` found upward from `start`, else the defaults. Errors in it are `Invalid`.
pub fn load_config(start: &Path, config: Option<&Path>) -> Result<Config> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Usage(format!("cannot read the current directory: {e}")))?;
    let fs: Arc<dyn FileSystem> = Arc::new(OsFs);
    let cfg_path = match config {
        Some(p) if !p.is_file() => {
            return Err(Error::Usage(match pbc_compiler::fs::not_regular(p) {
                Some(kind) => format!(
                    "{}: the configuration is {kind}, not a regular file; pbc reads its configuration only from a regular file",
                    p.display()
                ),
                None => format!("{}: no such configuration file", p.display()),
            }));
        }
        Some(p) => Some(p.to_path_buf()),
        None => Config::discover(fs.as_ref(), start),
    };
    let mut diags = Vec::new();
    let boot = Loader::new(fs, cwd, Default::default());
    let cfg = match &cfg_path {
        Some(p) => Config::load(&boot, p, &mut diags).map_err(Error::Usage)?,
        None => Config::default(),
    };
    if diags.iter().any(Diagnostic::is_error) {
        return Err(Error::Invalid(render(&boot, &diags)));
    }
    Ok(cfg)
}

/// Loads, checks and freezes the playbook at `path` (a file or a kustomization directory).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Compiled> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Usage(format!("cannot read the current directory: {e}")))?;
    let fs: Arc<dyn FileSystem> = Arc::new(OsFs);
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let cfg = load_config(path, opts.config.as_deref())?;
    let loader = Loader::new(fs, cwd, cfg.limits);
    let mut diags = Vec::new();
    let (docs, tree) = if path.is_dir() {
        let res = pbc_compiler::resolve::resolve(&loader, path, &Default::default())
            .map_err(|e| Error::Usage(e.to_string()))?;
        diags.extend(res.diags);
        (res.docs, Some(path.to_path_buf()))
    } else {
        let l = loader.load(path).map_err(|e| Error::Usage(e.to_string()))?;
        diags.extend(l.diags.iter().cloned());
        (l.docs.iter().map(|d| d.root.clone()).collect(), None)
    };
    let mut playbooks: Vec<Node> = docs
        .into_iter()
        .filter(pbc_compiler::check::is_playbook)
        .collect();
    if let Some(name) = &opts.playbook {
        playbooks
            .retain(|d| d.get_path(&["metadata", "name"]).and_then(Node::as_str) == Some(name));
    }
    let root = match playbooks.len() {
        1 => playbooks.remove(0),
        0 if diags.iter().any(Diagnostic::is_error) => {
            return Err(Error::Invalid(render(&loader, &diags)));
        }
        0 => {
            return Err(Error::Usage(match &opts.playbook {
                Some(n) => format!("{}: no playbook named `{n}`", path.display()),
                None => format!("{}: no `kind: Playbook` document", path.display()),
            }));
        }
        n => {
            let names: Vec<String> = playbooks
                .iter()
                .filter_map(|d| d.get_path(&["metadata", "name"]).and_then(Node::as_str))
                .map(String::from)
                .collect();
            return Err(Error::Usage(format!(
                "{}: {n} playbooks ({}); choose one with --playbook NAME",
                path.display(),
                names.join(", ")
            )));
        }
    };
    let schemas = SchemaStore::new();
    let environment = tree.as_deref().and_then(pbc_compiler::check::environment);
    let doc = PlaybookDoc::new(root.clone(), tree);
    let checked =
        pbc_compiler::check::check_document(&loader, &schemas, &doc, &cfg, &noop, &mut diags);
    // The policies' files are read now and kept with the run; one that does not compile
    // refuses the run.
    let mut policies = pbc_policy::freeze(&cfg, &loader, &mut diags);
    pbc_policy::check(&cfg, &policies, &loader, &mut diags);
    policies.environment = environment;
    pbc_compiler::config::apply_suppressions(&loader.sources, &mut diags);
    cfg.apply_levels(&mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        let errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
        return Err(Error::Invalid(render(&loader, &errors)));
    }
    let Some((pb, _)) = checked else {
        return Err(Error::Usage(format!("{}: not a playbook", path.display())));
    };
    let (infos, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) = diags
        .into_iter()
        .partition(|d| d.severity == pbc_compiler::diag::Severity::Info);
    let (warnings, infos) = (render(&loader, &warnings), render(&loader, &infos));
    // Freeze: copy each schema file and point the document at the copy.
    let mut files = BTreeMap::new();
    let resolved_sha256 = crate::approval_sig::sha256_hex(
        pbc_compiler::resolve::emit_yaml(std::slice::from_ref(&root)).as_bytes(),
    );
    let mut frozen_root = root;
    let refs = pb.schema_refs();
    for r in refs {
        let (at, reference) = (&r.at, r.reference);
        let dir = match r.stage {
            Some(i) => format!("schemas/{i}"),
            None => "schemas/input".to_string(),
        };
        let from = loader
            .sources
            .get(reference.span.file)
            .map(|f| f.path.clone())
            .unwrap_or_default();
        let found = SchemaStore::find(&loader, &reference.value, &from, &cfg.schema_paths)
            .ok_or_else(|| Error::Usage(format!("schema file `{}` not found", reference.value)))?;
        let bytes = loader
            .fs
            .read(&loader.resolve(&found), cfg.limits.max_file_bytes)
            .map_err(|_| Error::Usage(format!("{}: cannot read", found.display())))?;
        let base = reference
            .value
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&reference.value)
            .to_string();
        let virt = format!("{dir}/{base}");
        files.insert(virt.clone(), String::from_utf8_lossy(&bytes).into_owned());
        frozen_root.set_scalar_at(at, &virt);
    }
    let frozen = Frozen {
        source: path.display().to_string(),
        playbook: pbc_compiler::resolve::emit_yaml(std::slice::from_ref(&frozen_root)),
        files,
        config: RuntimeConfig {
            policies,
            ..RuntimeConfig::from_config(&cfg)
        },
        resolved_sha256,
    };
    let mut c = thaw(&frozen)?;
    c.warnings = warnings;
    c.infos = infos;
    Ok(c)
}

/// Loads, checks and freezes every playbook at `path` (a file or a kustomization directory),
/// in the order they appear. Any playbook with errors refuses them all (`Invalid`).
pub fn load_all(path: &Path, opts: &LoadOptions) -> Result<Vec<Compiled>> {
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Usage(format!("cannot read the current directory: {e}")))?;
    let cfg = load_config(path, opts.config.as_deref())?;
    let loader = Loader::new(Arc::new(OsFs), cwd, cfg.limits);
    let mut diags = Vec::new();
    let docs: Vec<Node> = if path.is_dir() {
        let res = pbc_compiler::resolve::resolve(&loader, path, &Default::default())
            .map_err(|e| Error::Usage(e.to_string()))?;
        diags.extend(res.diags);
        res.docs
    } else {
        let l = loader.load(path).map_err(|e| Error::Usage(e.to_string()))?;
        diags.extend(l.diags.iter().cloned());
        l.docs.iter().map(|d| d.root.clone()).collect()
    };
    if diags.iter().any(Diagnostic::is_error) {
        let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.is_error()).collect();
        return Err(Error::Invalid(render(&loader, &errors)));
    }
    let names: Vec<String> = docs
        .iter()
        .filter(|d| pbc_compiler::check::is_playbook(d))
        .filter_map(|d| d.get_path(&["metadata", "name"]).and_then(Node::as_str))
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no `kind: Playbook` document",
            path.display()
        )));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let one = LoadOptions {
            config: opts.config.clone(),
            playbook: Some(name),
        };
        match load(path, &one) {
            Ok(c) => out.push(c),
            Err(Error::Invalid(lines)) => errors.extend(lines),
            Err(e) => return Err(e),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(out)
}

const FROZEN_ROOT: &str = "/frozen";

/// Re-checks a frozen playbook and compiles its output schemas.
pub fn thaw(f: &Frozen) -> Result<Compiled> {
    let mut mem = MemFs::new();
    mem.insert(
        format!("{FROZEN_ROOT}/playbook.yaml"),
        f.playbook.as_bytes().to_vec(),
    );
    for (p, text) in &f.files {
        mem.insert(format!("{FROZEN_ROOT}/{p}"), text.as_bytes().to_vec());
    }
    let loader = Loader::new(Arc::new(mem), FROZEN_ROOT, Default::default());
    let loaded = loader
        .load(Path::new("playbook.yaml"))
        .map_err(|e| Error::Store(format!("frozen playbook: {e}")))?;
    let root = loaded
        .docs
        .first()
        .map(|d| d.root.clone())
        .ok_or_else(|| Error::Store("frozen playbook is empty".into()))?;
    let cfg = Config {
        guardrails: f.config.known_guardrails.clone(),
        policies: f.config.policies.policies.keys().cloned().collect(),
        notifications: f.config.notifications.clone(),
        audit_sinks: f.config.audit_sinks.clone(),
        ..Config::default()
    };
    let mut diags = Vec::new();
    let schemas = SchemaStore::new();
    let doc = PlaybookDoc::new(root, None);
    let checked =
        pbc_compiler::check::check_document(&loader, &schemas, &doc, &cfg, &noop, &mut diags);
    // The channel and sink names were checked when the run started, under the
    // configuration's severities (which are not frozen), and the frozen configuration is the
    // one the run delivers to: they are not checked again. (So a run stored before names had
    // to be defined also resumes.)
    // Policy names too: a stage bound to a policy the run did not freeze is refused when it
    // comes to run (fail closed), and runs stored before policies were enforced resume.
    let settled = [
        pbc_compiler::model::names::UNKNOWN_AUDIT_SINK.id,
        pbc_compiler::model::names::UNKNOWN_CHANNEL.id,
        pbc_compiler::model::UNKNOWN_POLICY.id,
    ];
    diags.retain(|d| !settled.contains(&d.code.id));
    let errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    let Some((playbook, analysis)) = checked.filter(|_| errors.is_empty()) else {
        return Err(Error::Invalid(
            std::iter::once(format!(
                "the playbook frozen with this run ({}) no longer checks with this pbc:",
                f.source
            ))
            .chain(render(&loader, &errors))
            .collect(),
        ));
    };
    let mut validators = Vec::new();
    for s in &playbook.spec.stages {
        let Some(os) = &s.output_schema else {
            validators.push(None);
            continue;
        };
        let l = loader
            .load(Path::new(&os.value))
            .map_err(|e| Error::Store(format!("frozen schema: {e}")))?;
        let json: Value = l
            .docs
            .first()
            .map(|d| d.root.to_json())
            .unwrap_or(Value::Bool(true));
        let draft7 = json
            .get("$schema")
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("draft-07"));
        let mut o = jsonschema::options();
        if draft7 {
            o = o.with_draft(jsonschema::Draft::Draft7);
        }
        let v = o.build(&json).map_err(|e| {
            Error::Usage(format!(
                "output schema `{}` of stage `{}` cannot be used to validate outputs: {e}",
                os.value, s.name.value
            ))
        })?;
        let file = os.value.rsplit('/').next().unwrap_or(&os.value).to_string();
        validators.push(Some((file, Arc::new(v))));
    }
    Ok(Compiled {
        playbook,
        analysis,
        frozen: f.clone(),
        validators,
        warnings: Vec::new(),
        infos: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYBOOK: &str = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages:\n    - {name: s, agent: m}\n  rollback: {on-failure: notify-only, notification: [ops]}\n  audit: {log-to: [trail]}\n";

    fn frozen(config: RuntimeConfig) -> Frozen {
        Frozen {
            source: "x.yaml".into(),
            playbook: PLAYBOOK.into(),
            files: BTreeMap::new(),
            config,
            resolved_sha256: String::new(),
        }
    }

    #[test]
    fn the_frozen_configuration_keeps_the_names_and_a_thaw_does_not_check_them_again() {
        let mut cfg = Config::default();
        cfg.notifications.insert("ops".into(), ChannelDef::Stdout);
        cfg.audit_sinks
            .insert("trail".into(), SinkDef::File("/var/log/trail.jsonl".into()));
        let rc = RuntimeConfig::from_config(&cfg);
        // Through the state store's JSON and back.
        let json = serde_json::to_string(&rc).expect("serializes");
        let back: RuntimeConfig = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, rc);
        assert_eq!(back.audit_sinks, cfg.audit_sinks);
        assert!(thaw(&frozen(back)).is_ok());
        // Started with the names allowed undefined (`severity:`), or stored before they had to
        // be defined (no `audit_sinks`): the run still resumes.
        assert!(thaw(&frozen(RuntimeConfig::from_config(&Config::default()))).is_ok());
        let legacy: RuntimeConfig = serde_json::from_str(
            r#"{"known_guardrails":[],"guardrail_defs":{},"always_on":[],"notifications":{},"default_sla_secs":null,"on_rate_limit":"fail"}"#,
        )
        .expect("an old run's configuration");
        assert!(legacy.audit_sinks.is_empty());
        assert!(thaw(&frozen(legacy)).is_ok());
    }
}
