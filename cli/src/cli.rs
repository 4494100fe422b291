//! Command-line definitions (clap derive); `crate::dispatch` runs them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// pbc, the playbook compiler: resolves, type-checks, lints and compiles declarative
/// AI-agent playbooks (`apiVersion: agenticops/v1`, `kind: Playbook`).
#[derive(Parser, Debug)]
#[command(name = "pbc", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 done, no errors; 1 errors found (or drift, or the run did not succeed); 2 could not do the job (usage, unreadable path, internal error).\nDocs for a diagnostic code: pbc explain PB0001"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// When to use colours in human output.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Print less: findings only, no summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Use this configuration file instead of searching for `.pbc.yaml`.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Human,
    Json,
    Github,
    Sarif,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Resolved,
    Argo,
    Crd,
    Langgraph,
    All,
}

/// `pbc serve --log-format`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormatArg {
    /// One JSON object a line (for a log collector).
    Json,
    /// Plain text (for a terminal).
    Text,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadRestrictor {
    /// Files must lie inside the kustomization root (kustomize's default).
    Rootonly,
    /// Allow files anywhere.
    None,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Json,
    Csv,
    Html,
    /// OSCAL 1.1 `assessment-results` (JSON).
    Oscal,
    /// OSCAL 1.1 `component-definition` (JSON): a component per playbook.
    OscalComponent,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    Markdown,
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load, resolve and check playbooks; report every problem.
    ///
    /// A PATH is a playbook file, a kustomization directory (checked as one resolved tree),
    /// or a directory searched recursively (honouring .gitignore). Without PATH: `.`.
    Check {
        /// Files or directories to check.
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
        format: CheckFormat,
        /// A directory of Rego `deny`/`warn` rules to run over each resolved playbook (as
        /// conftest does), besides `check-policies:` in .pbc.yaml. Repeatable.
        #[arg(long = "policy", value_name = "DIR")]
        policy: Vec<PathBuf>,
        /// Check actions that run on `mcp` executors, and their params, against the tools
        /// recorded in this lock file (`pbc agents tools --lock`), offline.
        #[arg(long, value_name = "FILE")]
        lock: Option<PathBuf>,
        /// The agents file that `--lock` maps actions with (default `agents.yaml`).
        #[arg(long, value_name = "FILE", requires = "lock")]
        agents: Option<PathBuf>,
    },
    /// Resolve the kustomization at DIR and emit a target.
    ///
    /// `resolved` reports only loading and overlay problems (like kustomize); `argo`, `crd`,
    /// `langgraph` and `all` need every check to pass. DIR may also be a playbook file.
    Build {
        /// The kustomization directory (or a playbook file).
        dir: PathBuf,
        /// What to emit.
        #[arg(long, value_enum, default_value_t = Target::Resolved)]
        target: Target,
        /// Write files under OUT instead of printing to stdout.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// Where resources and patches may be loaded from.
        #[arg(long, value_enum, default_value_t = LoadRestrictor::Rootonly)]
        load_restrictor: LoadRestrictor,
    },
    /// Build the release bundle of one environment.
    Bundle {
        /// The playbook root (holding overlays/ENV), or the overlay itself.
        root: PathBuf,
        /// The environment (overlay name).
        #[arg(long)]
        env: String,
        /// The bundle directory.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// Rebuild in memory and report files that differ from OUT (exit 1 on drift).
        #[arg(long)]
        check: bool,
    },
    /// Control-coverage report (SOC2, ISO 27001).
    Coverage {
        /// Files or directories to report on (as for `pbc check`). Without PATH: `.`.
        paths: Vec<PathBuf>,
        /// Report only this environment.
        #[arg(long)]
        env: Option<String>,
        /// Catalogs to report (default: soc2 and iso27001-2022); naming only catalogs
        /// outside the defaults, such as iso27001-2013, adds them to the defaults.
        #[arg(long = "catalog", value_name = "C")]
        catalogs: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
        /// Control × environment, per framework (markdown or html): where an overlay loses
        /// evidence another environment has.
        #[arg(long)]
        matrix: bool,
        /// Operating evidence: whether each claimed control operated, from this audit log
        /// (a state directory's `audit.jsonl`, or a file sink's file), verified first.
        #[arg(long, value_name = "STATE|FILE")]
        audit: Option<PathBuf>,
        /// With --audit: only entries at or after this time (RFC 3339, or a date).
        #[arg(long, value_name = "T", requires = "audit")]
        since: Option<String>,
    },
    /// The enforcement map: for every control each playbook declares (gate, approvers, SLA,
    /// escalation, guardrail, policy, rate limit, audit sink, rollback, risk), what enforces
    /// it in each target, or "not enforced".
    ///
    /// Read with the configuration: a shared PostgreSQL `state:` and
    /// `approvals.require-signature` change what the Argo runner enforces. With
    /// `targets.emit` in `.pbc.yaml`, `pbc check` reports a control a listed target does not
    /// enforce (PB6005).
    Enforcement {
        /// Files or directories (as for `pbc check`). Without PATH: `.`.
        paths: Vec<PathBuf>,
        /// Only this target's column (local, serve, argo, langgraph, crd).
        #[arg(long, value_name = "T")]
        target: Option<String>,
        /// Output format: markdown (a job summary) or json.
        #[arg(long, value_enum, default_value_t = crate::enforcement::MapFormat::Markdown)]
        format: crate::enforcement::MapFormat,
    },
    /// Semantic diff, per environment and playbook, between a git revision and the working
    /// tree.
    ///
    /// The revision is read from the repository (no checkout), so a pull request's base can be
    /// compared without switching branches. Reports stages added, removed or reordered;
    /// approval, approvers, SLA, escalation, conditions, risk and compliance tags changed; and
    /// the names of any other fields that changed. A shallow clone may lack the base: fetch it.
    Diff {
        /// The git revision to compare against (`origin/main`, a sha, `HEAD~1`).
        #[arg(long, value_name = "REV")]
        base: String,
        /// Files or directories to compare (as for `pbc check`). Without PATH: `.`.
        paths: Vec<PathBuf>,
        /// Output format: markdown (for a pull-request comment) or json.
        #[arg(long, value_enum, default_value_t = DiffFormat::Markdown)]
        format: DiffFormat,
    },
    /// Execute a playbook locally.
    Run {
        /// A playbook file, or a kustomization directory with one playbook.
        path: PathBuf,
        /// The trigger payload (JSON or YAML).
        #[arg(long)]
        input: PathBuf,
        /// The agents file (executors and roles).
        #[arg(long)]
        agents: Option<PathBuf>,
        /// Which playbook, when PATH holds several.
        #[arg(long)]
        playbook: Option<String>,
        #[command(flatten)]
        state: StateArgs,
        /// Who triggered the run (default: the OS user).
        #[arg(long = "as", value_name = "WHO")]
        as_who: Option<String>,
        /// Output format of the run's events and result.
        #[arg(long, value_enum, default_value_t = RunFormat::Human)]
        format: RunFormat,
        /// Run stages whose guardrails the runtime cannot enforce.
        #[arg(long)]
        allow_unenforced_guardrails: bool,
    },
    /// Run one task of an emitted Argo workflow, inside its pod (docs/argo.md).
    #[command(subcommand)]
    Runner(crate::runner::RunnerCommand),
    /// Approve a pending gate.
    Approve {
        /// The approval id.
        id: String,
        /// Who approves; must be one of the gate's approvers.
        #[arg(long = "as", value_name = "WHO")]
        as_who: String,
        /// Sign the approval statement with this Ed25519 private key (PKCS#8 PEM, from
        /// `pbc keygen` or `openssl genpkey -algorithm ed25519`); its public key must be
        /// WHO's in `approvals.keys`.
        #[arg(long, value_name = "KEYFILE", conflicts_with = "statement")]
        sign: Option<PathBuf>,
        /// A signed approval statement made elsewhere (`base64url(payload).base64url(sig)`).
        #[arg(long, value_name = "STATEMENT")]
        statement: Option<String>,
        /// How long the signed statement stays valid (`30s`, `10m`, `4h`, `2d`).
        #[arg(long, value_name = "DURATION", default_value = "1d", requires = "sign")]
        valid_for: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Make an Ed25519 key pair for signed approvals: the private key is written to FILE
    /// (PKCS#8 PEM, readable by its owner only); the public key is printed in base64, the
    /// form `approvals.keys` takes.
    Keygen {
        /// Where to write the private key (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Reject a pending gate.
    Reject {
        /// The approval id.
        id: String,
        /// Who rejects; must be one of the gate's approvers.
        #[arg(long = "as", value_name = "WHO")]
        as_who: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Continue a run after approvals or a crash.
    Resume {
        /// The run id.
        run: String,
        /// The agents file (executors and roles).
        #[arg(long)]
        agents: Option<PathBuf>,
        /// Output format of the run's events and result.
        #[arg(long, value_enum, default_value_t = RunFormat::Human)]
        format: RunFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// List runs, or stop them.
    Runs {
        #[command(subcommand)]
        action: Option<RunsAction>,
        /// Output format of the list.
        #[arg(long, value_enum, default_value_t = RunFormat::Human)]
        format: RunFormat,
        /// Print policy figures instead of the list: decisions, compliance rate, violations
        /// by policy and by stage risk, evaluation latency p50/p95/p99.
        #[arg(long)]
        stats: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Serve the runtime over HTTP: events, runs, approvals, the kill switch, metrics.
    ///
    /// Loads the playbooks of ROOT (a playbook file, a kustomization directory, or a root
    /// holding overlays/ENV), refuses to start on check errors, resumes unfinished runs, and
    /// prints `listening on http://ADDR` (`https://` with TLS) on stderr. Starts the runs of
    /// schedule triggers when they are due. SIGHUP reloads the playbooks; stops on SIGTERM or
    /// SIGINT.
    Serve {
        /// A playbook file, a kustomization directory, or a root holding overlays/ENV.
        #[arg(default_value = ".")]
        root: PathBuf,
        /// The environment (overlay name), when ROOT holds several.
        #[arg(long)]
        env: Option<String>,
        /// The address to listen on (`127.0.0.1:0` picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        /// The agents file (executors and roles); else `serve.agents` in `.pbc.yaml`.
        #[arg(long, value_name = "FILE")]
        agents: Option<PathBuf>,
        /// The log on stderr: one JSON object a line, or text.
        #[arg(long, value_enum, default_value_t = LogFormatArg::Json, value_name = "FORMAT")]
        log_format: LogFormatArg,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key); else `serve.tls`.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        #[command(flatten)]
        state: StateArgs,
    },
    /// The notification outbox: what is pending or failed, retries, a test message.
    Notifications {
        #[command(subcommand)]
        action: NotificationsAction,
    },
    /// The state store: `migrate` brings it to the newest schema.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// The agents file's executors: `tools` lists the tools of its MCP servers.
    Agents {
        #[command(subcommand)]
        action: crate::agents::AgentsAction,
    },
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Policies as code (`policies:` in .pbc.yaml): run their tests, or evaluate one.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Print the documentation of a diagnostic code (all codes without CODE), or the
    /// evidence rule of a compliance control.
    Explain {
        /// A code such as PB2001, or a control as a playbook tag names it (SOC2-CC6.1,
        /// ISO27001-5.26, ISO27001:2022-5.26): its evidence rule and crosswalk links.
        code: Option<String>,
    },
    /// A language server over stdin and stdout, for editors (docs/editors.md).
    ///
    /// Checks the open buffers as you type, with the workspace the client names (its trees,
    /// overlays and bases, and .pbc.yaml), and answers hover, definition, references,
    /// completion and code actions.
    Lsp,
    /// Panics on purpose (tests the internal-error path).
    #[command(hide = true)]
    DebugPanic,
}

#[derive(Args, Debug, Clone)]
pub struct StateArgs {
    /// The state directory (default: $PBC_STATE_DIR, else .pbc/state).
    #[arg(long, env = "PBC_STATE_DIR", value_name = "DIR")]
    pub state: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum RunsAction {
    /// The kill switch: stop runs before their next step; `--all` also latches it (no run
    /// starts or resumes) until `--release`.
    Stop {
        /// Stop every unfinished run and engage the latch.
        #[arg(long, conflicts_with = "run")]
        all: bool,
        /// Release the latch `--all` engaged.
        #[arg(long, conflicts_with_all = ["run", "all"])]
        release: bool,
        /// Stop this run only.
        run: Option<String>,
        /// Who pulls the brake (default: the OS user); recorded in the audit log.
        #[arg(long = "as", value_name = "WHO")]
        as_who: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
}

pub use crate::audit::AuditAction;

#[derive(Subcommand, Debug)]
pub enum StateAction {
    /// Create or upgrade the state store's tables (SQLite in the state directory, or the
    /// PostgreSQL database of --url / $PBC_STATE_URL; password from $PBC_STATE_PASSWORD).
    Migrate {
        /// A `postgres://user@host:port/db` URL (default: $PBC_STATE_URL; else SQLite).
        #[arg(long, env = "PBC_STATE_URL", value_name = "URL")]
        url: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum NotificationsAction {
    /// Pending and failed deliveries, with why they failed.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = RunFormat::Human)]
        format: RunFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Make failed deliveries pending again, and deliver them now.
    Retry {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Send a sample notification to a configured channel now (not through the outbox).
    Test {
        /// The channel's name under `notifications:` in .pbc.yaml.
        channel: String,
        /// Where to look for .pbc.yaml (default: the current directory, then upward).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyAction {
    /// Run the Rego `test_` rules (as `opa test` does) and the YAML case files (`policy:`
    /// and `cases:` of input and expected decision) under DIR; exit 1 on a failing test.
    Test {
        /// Where the tests are (default: the current directory); `.pbc.yaml` is found
        /// upward from it.
        dir: Option<PathBuf>,
    },
    /// Evaluate a configured policy on an input document and print its decision (as
    /// `opa eval` does).
    Eval {
        /// The policy's name under `policies:` in .pbc.yaml.
        name: String,
        /// The input document (JSON or YAML); fields it leaves out take test defaults.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
    },
}
