//! One typed [`Config`], read from a TOML file and the environment.
//!
//! Precedence is environment > file > built-in default, as in the server we replace, so an existing MCP client
//! config that only sets environment variables keeps working. Unlike it, a bad value is never replaced by a
//! default: start-up fails with an error that names the key (`ConfigError`), because a silently ignored
//! `CODEX_ALLOWED_ROOTS` typo is a security problem, not a convenience.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod execution;
mod http;

pub use execution::{ExecutionMode, WorkerConfig};
pub use http::{
    HostPattern, HttpConfig, OriginPattern, Secret, HTTP_ALLOW_NON_LOOPBACK_ENV, HTTP_TOKEN_ENV,
    MIN_TOKEN_CHARS as MIN_HTTP_TOKEN_CHARS,
};

/// Default log filter: our own info lines, only warnings from the MCP library (it logs every message at info).
pub const DEFAULT_LOG_LEVEL: &str = "info,rmcp=warn";

/// Environment variable naming the TOML config file (the `--config` flag wins over it).
pub const CONFIG_PATH_ENV: &str = "CODEX_CONTROL_PLANE_MCP_CONFIG";

/// Errors found while building the [`Config`]; each names the key or variable at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file at fault.
        path: PathBuf,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A key (file key or environment variable) holds a value outside its allowed set or range.
    #[error("invalid value for {key}: {message}")]
    Value {
        /// The TOML key or environment variable at fault.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ConfigError {
    fn value(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Value {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Sandbox mode passed to Codex for new threads and turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// The model may read but not write the workspace.
    ReadOnly,
    /// The model may write inside the workspace.
    WorkspaceWrite,
    /// No sandbox at all.
    DangerFullAccess,
}

impl SandboxMode {
    /// All modes, in order of increasing privilege.
    pub const ALL: [SandboxMode; 3] = [
        SandboxMode::ReadOnly,
        SandboxMode::WorkspaceWrite,
        SandboxMode::DangerFullAccess,
    ];

    /// The wire name (`read-only`, `workspace-write`, `danger-full-access`).
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::DangerFullAccess => "danger-full-access",
        }
    }

    /// Parses the wire name; the seed's `{type: readOnly}` spellings are accepted too.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "read-only" | "readOnly" | "read_only" => Some(SandboxMode::ReadOnly),
            "workspace-write" | "workspaceWrite" | "workspace_write" => {
                Some(SandboxMode::WorkspaceWrite)
            }
            "danger-full-access" | "dangerFullAccess" | "danger_full_access" => {
                Some(SandboxMode::DangerFullAccess)
            }
            _ => None,
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Approval policy passed to Codex for new threads and turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalPolicy {
    /// Never ask; failures go back to the model.
    Never,
    /// The model decides when to ask.
    OnRequest,
    /// Ask only when a sandboxed command fails.
    OnFailure,
    /// Ask for everything that is not known to be safe.
    Untrusted,
}

impl ApprovalPolicy {
    /// All policies.
    pub const ALL: [ApprovalPolicy; 4] = [
        ApprovalPolicy::Never,
        ApprovalPolicy::OnRequest,
        ApprovalPolicy::OnFailure,
        ApprovalPolicy::Untrusted,
    ];

    /// The wire name (`never`, `on-request`, `on-failure`, `untrusted`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalPolicy::Never => "never",
            ApprovalPolicy::OnRequest => "on-request",
            ApprovalPolicy::OnFailure => "on-failure",
            ApprovalPolicy::Untrusted => "untrusted",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        ApprovalPolicy::ALL
            .into_iter()
            .find(|policy| policy.as_str() == text.trim())
    }
}

impl fmt::Display for ApprovalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the stall supervisor does with a turn that made no progress for too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StalledTurnAction {
    /// Report the stall in diagnostics only.
    DiagnoseOnly,
    /// Interrupt the stalled turn.
    Interrupt,
}

impl StalledTurnAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StalledTurnAction::DiagnoseOnly => "diagnose_only",
            StalledTurnAction::Interrupt => "interrupt",
        }
    }
}

/// Reasoning effort levels Codex accepts.
pub const EFFORT_LEVELS: [&str; 6] = ["none", "minimal", "low", "medium", "high", "xhigh"];

/// Concurrency limits of the dispatcher (the seed's defaults: 4 / 3 / 3 / 1 / 1 / 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyLimits {
    /// Active turns across the whole database.
    pub global: u32,
    /// Active turns per project.
    pub per_project: u32,
    /// Active turns per submitting agent.
    pub per_agent: u32,
    /// Active turns per thread (Codex itself allows one).
    pub per_thread: u32,
    /// Active write turns (sandbox above read-only) per project.
    pub write_per_project: u32,
    /// Outstanding app-server requests above which the dispatcher backs off.
    pub app_server_pending_requests: u32,
}

impl Default for ConcurrencyLimits {
    fn default() -> Self {
        ConcurrencyLimits {
            global: 4,
            per_project: 3,
            per_agent: 3,
            per_thread: 1,
            write_per_project: 1,
            app_server_pending_requests: 8,
        }
    }
}

/// How the `codex app-server` child is started and talked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppServerConfig {
    /// Default timeout of one JSON-RPC request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Timeout of the `initialize` handshake, in milliseconds.
    pub initialize_timeout_ms: u64,
    /// Extra arguments appended after `app-server` (for example `-c key=value` overrides).
    pub extra_args: Vec<String>,
    /// Extra environment variables for the child.
    pub env: BTreeMap<String, String>,
    /// Name of this server's own entry in Codex's `[mcp_servers]`, disabled in the child (recursion guard).
    pub self_mcp_server_name: String,
}

impl Default for AppServerConfig {
    fn default() -> Self {
        AppServerConfig {
            request_timeout_ms: 60_000,
            initialize_timeout_ms: 30_000,
            extra_args: Vec::new(),
            env: BTreeMap::new(),
            self_mcp_server_name: "codex-control-plane-mcp".to_string(),
        }
    }
}

/// Where plugins come from and the budget each call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// Directories holding third-party plugins (each plugin is a folder with `plugin.toml` and `plugin.wasm`).
    pub dirs: Vec<PathBuf>,
    /// Whether trusted native (shared library) plugins may be loaded at all.
    pub allow_native: bool,
    /// Where compiled components are cached; `None` means next to the state database.
    pub cache_dir: Option<PathBuf>,
    /// Fuel per plugin call unless the manifest asks for less.
    pub default_fuel: u64,
    /// Wall-clock deadline per plugin call, in milliseconds.
    pub default_timeout_ms: u64,
    /// Linear memory cap per plugin instance, in bytes.
    pub default_memory_bytes: u64,
    /// Plugin names not to load, default plugins included.
    pub disabled: Vec<String>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dirs: Vec::new(),
            allow_native: false,
            cache_dir: None,
            default_fuel: 50_000_000,
            default_timeout_ms: 1_000,
            default_memory_bytes: 64 * 1024 * 1024,
            disabled: Vec::new(),
        }
    }
}

/// The server's whole configuration, resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file the configuration was read from, if any.
    pub source_file: Option<PathBuf>,
    /// `CODEX_HOME` handed to the app-server child.
    pub codex_home: PathBuf,
    /// Root under which projects live; the default allowed root.
    pub projects_root: PathBuf,
    /// The projects registry (`[{root_path, name, project_id?}]`).
    pub projects_registry_path: PathBuf,
    /// Only working directories inside these roots are accepted.
    pub allowed_roots: Vec<PathBuf>,
    /// The SQLite state database.
    pub state_db_path: PathBuf,
    /// Log file; `None` logs to stderr.
    pub log_path: Option<PathBuf>,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax.
    pub log_level: String,
    /// Explicit path of the `codex` binary; `None` searches `PATH`.
    pub codex_binary_path: Option<PathBuf>,
    /// Sandbox for new work when the caller gives none.
    pub default_sandbox: SandboxMode,
    /// Approval policy for new work when the caller gives none.
    pub default_approval_policy: ApprovalPolicy,
    /// Model for new work; `None` leaves the choice to Codex's own config.
    pub default_model: Option<String>,
    /// Reasoning effort for new work; `None` leaves the choice to Codex's own config.
    pub default_effort: Option<String>,
    /// Seconds before an unanswered pending interaction is declined automatically.
    pub approval_response_timeout_seconds: u64,
    /// Most image items one request may carry.
    pub max_image_input_items: usize,
    /// Largest local image accepted, in bytes.
    pub max_image_input_bytes: u64,
    /// Seconds without progress after which an active turn counts as stalled.
    pub turn_stall_timeout_seconds: u64,
    /// What to do with a stalled turn.
    pub stalled_turn_action: StalledTurnAction,
    /// Dispatcher concurrency limits.
    pub limits: ConcurrencyLimits,
    /// The app-server child.
    pub app_server: AppServerConfig,
    /// Plugin loading and budgets.
    pub plugins: PluginsConfig,
    /// Who dispatches work and owns app-server.
    pub execution_mode: ExecutionMode,
    /// The background worker's timings.
    pub worker: WorkerConfig,
    /// Access rules of the HTTP transport (`serve --http`).
    pub http: HttpConfig,
}

impl Config {
    /// Loads the configuration: the file given (or named by `CODEX_CONTROL_PLANE_MCP_CONFIG`), then the process
    /// environment on top.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.get(CONFIG_PATH_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Config::from_sources(file.as_deref(), &env)
    }

    /// Builds the configuration from an optional file and an explicit environment map (testable without
    /// touching the process environment).
    pub fn from_sources(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                parse_file(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message,
                })?
            }
            None => FileConfig::default(),
        };
        resolve(raw, file, &Layer { env })
    }

    /// A configuration with every path under `root`, for tests and benchmarks.
    pub fn for_tests(root: &Path) -> Config {
        let projects_root = root.join("projects");
        Config {
            source_file: None,
            codex_home: root.join("codex-home"),
            projects_registry_path: projects_root.join("projects.json"),
            allowed_roots: vec![projects_root.clone()],
            projects_root,
            state_db_path: root.join("state").join("state.sqlite3"),
            log_path: None,
            log_level: "info".to_string(),
            codex_binary_path: None,
            default_sandbox: SandboxMode::ReadOnly,
            default_approval_policy: ApprovalPolicy::OnRequest,
            default_model: None,
            default_effort: None,
            approval_response_timeout_seconds: 900,
            max_image_input_items: 10,
            max_image_input_bytes: 20_000_000,
            turn_stall_timeout_seconds: 900,
            stalled_turn_action: StalledTurnAction::DiagnoseOnly,
            limits: ConcurrencyLimits::default(),
            app_server: AppServerConfig::default(),
            plugins: PluginsConfig::default(),
            execution_mode: ExecutionMode::Inline,
            worker: WorkerConfig::default(),
            http: HttpConfig::default(),
        }
    }

    /// Directory for compiled plugin artifacts.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        match &self.plugins.cache_dir {
            Some(dir) => dir.clone(),
            None => self
                .state_db_path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("plugin-cache"),
        }
    }

    /// True when `path` lies inside one of the allowed roots (both sides are compared after normalisation).
    pub fn is_allowed_path(&self, path: &Path) -> bool {
        let candidate = normalize_path(path);
        self.allowed_roots
            .iter()
            .any(|root| candidate.starts_with(normalize_path(root)))
    }
}

/// Makes a path absolute and resolves `.`/`..` and symlinks where the path exists (lexically where it does not),
/// so `root/../etc` never passes a prefix check.
pub fn normalize_path(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    codex_home: Option<PathBuf>,
    projects_root: Option<PathBuf>,
    projects_registry_path: Option<PathBuf>,
    allowed_roots: Option<Vec<PathBuf>>,
    state_db_path: Option<PathBuf>,
    log_path: Option<PathBuf>,
    log_level: Option<String>,
    codex_binary_path: Option<PathBuf>,
    default_sandbox: Option<String>,
    default_approval_policy: Option<String>,
    default_model: Option<String>,
    default_effort: Option<String>,
    approval_response_timeout_seconds: Option<i64>,
    max_image_input_items: Option<i64>,
    max_image_input_bytes: Option<i64>,
    turn_stall_timeout_seconds: Option<i64>,
    stalled_turn_action: Option<String>,
    execution_mode: Option<String>,
    worker_idle_exit_seconds: Option<i64>,
    worker_command_wait_seconds: Option<i64>,
    worker_shutdown_grace_seconds: Option<i64>,
    worker_start_timeout_seconds: Option<i64>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    app_server: FileAppServer,
    #[serde(default)]
    plugins: FilePlugins,
    #[serde(default)]
    http: http::FileHttp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_active_turns_global: Option<i64>,
    max_active_turns_per_project: Option<i64>,
    max_active_turns_per_agent: Option<i64>,
    max_active_turns_per_thread: Option<i64>,
    max_active_write_turns_per_project: Option<i64>,
    max_app_server_pending_requests: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAppServer {
    request_timeout_ms: Option<i64>,
    initialize_timeout_ms: Option<i64>,
    extra_args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    self_mcp_server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePlugins {
    dirs: Option<Vec<PathBuf>>,
    allow_native: Option<bool>,
    cache_dir: Option<PathBuf>,
    default_fuel: Option<i64>,
    default_timeout_ms: Option<i64>,
    default_memory_bytes: Option<i64>,
    disabled: Option<Vec<String>>,
}

fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|err| err.to_string().trim_end().to_string())
}

/// The environment, read through the seed's variable names.
struct Layer<'a> {
    env: &'a BTreeMap<String, String>,
}

impl Layer<'_> {
    /// The first non-empty value among `names`, with the name it came from.
    fn get(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names.iter().find_map(|name| {
            self.env
                .get(*name)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
                .map(|value| (*name, value))
        })
    }

    fn path(&self, names: &[&'static str]) -> Option<PathBuf> {
        self.get(names)
            .map(|(_, value)| expand_home(Path::new(value), self.env))
    }

    fn int(&self, names: &[&'static str]) -> Result<Option<(&'static str, i64)>, ConfigError> {
        match self.get(names) {
            None => Ok(None),
            Some((name, value)) => value.parse::<i64>().map(|n| Some((name, n))).map_err(|_| {
                ConfigError::value(name, format!("expected an integer, got {value:?}"))
            }),
        }
    }

    fn bool(&self, names: &[&'static str]) -> Result<Option<bool>, ConfigError> {
        match self.get(names) {
            None => Ok(None),
            Some((name, value)) => match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(Some(true)),
                "0" | "false" | "no" | "off" => Ok(Some(false)),
                _ => Err(ConfigError::value(
                    name,
                    format!("expected true or false, got {value:?}"),
                )),
            },
        }
    }
}

/// Replaces a leading `~` with `$HOME`, as shells do, since MCP client configs often carry such paths verbatim.
fn expand_home(path: &Path, env: &BTreeMap<String, String>) -> PathBuf {
    match (path.strip_prefix("~"), env.get("HOME")) {
        (Ok(rest), Some(home)) => Path::new(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// A positive integer from env (preferred) or file, else `default`; zero or negative values are errors.
fn positive(
    layer: &Layer<'_>,
    env_names: &[&'static str],
    file_key: &str,
    file_value: Option<i64>,
    default: u64,
) -> Result<u64, ConfigError> {
    let (key, value) = match layer.int(env_names)? {
        Some((name, value)) => (name.to_string(), value),
        None => match file_value {
            Some(value) => (file_key.to_string(), value),
            None => return Ok(default),
        },
    };
    if value <= 0 {
        return Err(ConfigError::value(
            &key,
            format!("must be a positive integer, got {value}"),
        ));
    }
    Ok(value as u64)
}

fn resolve(raw: FileConfig, file: Option<&Path>, layer: &Layer<'_>) -> Result<Config, ConfigError> {
    let env = layer.env;
    let home = env
        .get("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    let file_path = |p: Option<PathBuf>| p.map(|p| expand_home(&p, env));

    let codex_home = layer
        .path(&["CODEX_HOME"])
        .or_else(|| file_path(raw.codex_home))
        .unwrap_or_else(|| home.join(".codex"));
    let projects_root = layer
        .path(&["CODEX_PROJECTS_ROOT"])
        .or_else(|| file_path(raw.projects_root))
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| home.clone()));
    let projects_registry_path = layer
        .path(&["CODEX_PROJECTS_REGISTRY"])
        .or_else(|| file_path(raw.projects_registry_path))
        .unwrap_or_else(|| projects_root.join("projects.json"));
    let allowed_roots = match layer.get(&["CODEX_ALLOWED_ROOTS"]) {
        // `;` is the seed's separator; `:` is accepted too because it is what Linux users type for path lists.
        Some((_, value)) => value
            .split([';', ':'])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| expand_home(Path::new(part), env))
            .collect(),
        None => raw
            .allowed_roots
            .map(|roots| roots.into_iter().map(|p| expand_home(&p, env)).collect())
            .unwrap_or_else(|| vec![projects_root.clone()]),
    };
    if allowed_roots.is_empty() {
        return Err(ConfigError::value(
            "allowed_roots",
            "at least one allowed root is required",
        ));
    }
    for root in &allowed_roots {
        if !root.is_absolute() {
            return Err(ConfigError::value(
                "allowed_roots",
                format!("{} is not an absolute path", root.display()),
            ));
        }
    }
    let state_db_path = layer
        .path(&["CODEX_MCP_STATE_DB"])
        .or_else(|| file_path(raw.state_db_path))
        .unwrap_or_else(|| {
            let state_home = env
                .get("XDG_STATE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".local").join("state"));
            state_home
                .join("codex-control-plane-mcp")
                .join("state.sqlite3")
        });
    let log_path = layer
        .path(&["CODEX_CONTROL_PLANE_MCP_LOG"])
        .or_else(|| file_path(raw.log_path));
    let log_level = layer
        .get(&["CODEX_CONTROL_PLANE_MCP_LOG_LEVEL"])
        .map(|(_, v)| v.to_string())
        .or(raw.log_level)
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        return Err(ConfigError::value(
            "log_level",
            format!("not a valid log filter: {log_level:?}"),
        ));
    }
    let codex_binary_path = layer
        .path(&["CODEX_BINARY_PATH"])
        .or_else(|| file_path(raw.codex_binary_path));

    let default_sandbox = match layer.get(&[
        "CODEX_MCP_DEFAULT_SANDBOX",
        "CODEX_MCP_DEFAULT_SANDBOX_POLICY",
    ]) {
        Some((name, value)) => parse_sandbox(name, value)?,
        None => match raw.default_sandbox.as_deref() {
            Some(value) => parse_sandbox("default_sandbox", value)?,
            None => SandboxMode::ReadOnly,
        },
    };
    let default_approval_policy = match layer.get(&["CODEX_MCP_DEFAULT_APPROVAL_POLICY"]) {
        Some((name, value)) => parse_approval(name, value)?,
        None => match raw.default_approval_policy.as_deref() {
            Some(value) => parse_approval("default_approval_policy", value)?,
            None => ApprovalPolicy::OnRequest,
        },
    };
    let default_model = layer
        .get(&["CODEX_MCP_DEFAULT_MODEL"])
        .map(|(_, v)| v.to_string())
        .or(raw.default_model)
        .filter(|m| !m.trim().is_empty());
    let default_effort = match layer.get(&["CODEX_MCP_DEFAULT_EFFORT"]) {
        Some((name, value)) => Some(parse_effort(name, value)?),
        None => match raw.default_effort.as_deref() {
            Some(value) => Some(parse_effort("default_effort", value)?),
            None => None,
        },
    };
    let stalled_turn_action = match layer.get(&["CODEX_MCP_STALLED_TURN_ACTION"]).or(raw
        .stalled_turn_action
        .as_deref()
        .map(|v| ("stalled_turn_action", v)))
    {
        None => StalledTurnAction::DiagnoseOnly,
        Some((_, "diagnose_only")) => StalledTurnAction::DiagnoseOnly,
        Some((_, "interrupt")) => StalledTurnAction::Interrupt,
        Some((key, other)) => {
            return Err(ConfigError::value(
                key,
                format!("expected diagnose_only or interrupt, got {other:?}"),
            ))
        }
    };

    let u32_limit = |names: &[&'static str], key: &str, value: Option<i64>, default: u32| {
        positive(layer, names, key, value, u64::from(default)).and_then(|v| {
            u32::try_from(v).map_err(|_| ConfigError::value(key, format!("{v} is too large")))
        })
    };
    let defaults = ConcurrencyLimits::default();
    let limits = ConcurrencyLimits {
        global: u32_limit(
            &["CODEX_MCP_MAX_ACTIVE_TURNS_GLOBAL"],
            "limits.max_active_turns_global",
            raw.limits.max_active_turns_global,
            defaults.global,
        )?,
        per_project: u32_limit(
            &["CODEX_MCP_MAX_ACTIVE_TURNS_PER_PROJECT"],
            "limits.max_active_turns_per_project",
            raw.limits.max_active_turns_per_project,
            defaults.per_project,
        )?,
        per_agent: u32_limit(
            &["CODEX_MCP_MAX_ACTIVE_TURNS_PER_AGENT"],
            "limits.max_active_turns_per_agent",
            raw.limits.max_active_turns_per_agent,
            defaults.per_agent,
        )?,
        per_thread: u32_limit(
            &["CODEX_MCP_MAX_ACTIVE_TURNS_PER_THREAD"],
            "limits.max_active_turns_per_thread",
            raw.limits.max_active_turns_per_thread,
            defaults.per_thread,
        )?,
        write_per_project: u32_limit(
            &["CODEX_MCP_MAX_ACTIVE_WRITE_TURNS_PER_PROJECT"],
            "limits.max_active_write_turns_per_project",
            raw.limits.max_active_write_turns_per_project,
            defaults.write_per_project,
        )?,
        app_server_pending_requests: u32_limit(
            &["CODEX_MCP_MAX_APP_SERVER_PENDING_REQUESTS"],
            "limits.max_app_server_pending_requests",
            raw.limits.max_app_server_pending_requests,
            defaults.app_server_pending_requests,
        )?,
    };

    let app_defaults = AppServerConfig::default();
    let app_server = AppServerConfig {
        request_timeout_ms: positive(
            layer,
            &["CODEX_MCP_APP_SERVER_REQUEST_TIMEOUT_MS"],
            "app_server.request_timeout_ms",
            raw.app_server.request_timeout_ms,
            app_defaults.request_timeout_ms,
        )?,
        initialize_timeout_ms: positive(
            layer,
            &["CODEX_MCP_APP_SERVER_INITIALIZE_TIMEOUT_MS"],
            "app_server.initialize_timeout_ms",
            raw.app_server.initialize_timeout_ms,
            app_defaults.initialize_timeout_ms,
        )?,
        extra_args: raw.app_server.extra_args.unwrap_or_default(),
        env: raw.app_server.env.unwrap_or_default(),
        self_mcp_server_name: raw
            .app_server
            .self_mcp_server_name
            .unwrap_or(app_defaults.self_mcp_server_name),
    };
    if app_server.self_mcp_server_name.trim().is_empty() {
        return Err(ConfigError::value(
            "app_server.self_mcp_server_name",
            "must not be empty",
        ));
    }

    let plugin_defaults = PluginsConfig::default();
    let mut plugin_dirs: Vec<PathBuf> = raw
        .plugins
        .dirs
        .unwrap_or_default()
        .into_iter()
        .map(|p| expand_home(&p, env))
        .collect();
    if let Some((_, value)) = layer.get(&["CODEX_CONTROL_PLANE_MCP_PLUGIN_DIRS"]) {
        plugin_dirs = value
            .split([';', ':'])
            .filter(|p| !p.trim().is_empty())
            .map(|p| expand_home(Path::new(p.trim()), env))
            .collect();
    }
    let plugins = PluginsConfig {
        dirs: plugin_dirs,
        allow_native: layer
            .bool(&["CODEX_CONTROL_PLANE_MCP_ALLOW_NATIVE_PLUGINS"])?
            .or(raw.plugins.allow_native)
            .unwrap_or(plugin_defaults.allow_native),
        cache_dir: layer
            .path(&["CODEX_CONTROL_PLANE_MCP_PLUGIN_CACHE"])
            .or_else(|| file_path(raw.plugins.cache_dir)),
        default_fuel: positive(
            layer,
            &[],
            "plugins.default_fuel",
            raw.plugins.default_fuel,
            plugin_defaults.default_fuel,
        )?,
        default_timeout_ms: positive(
            layer,
            &[],
            "plugins.default_timeout_ms",
            raw.plugins.default_timeout_ms,
            plugin_defaults.default_timeout_ms,
        )?,
        default_memory_bytes: positive(
            layer,
            &[],
            "plugins.default_memory_bytes",
            raw.plugins.default_memory_bytes,
            plugin_defaults.default_memory_bytes,
        )?,
        disabled: raw.plugins.disabled.unwrap_or_default(),
    };

    let execution_mode = match layer
        .get(&["CODEX_MCP_EXECUTION_MODE"])
        .or(raw.execution_mode.as_deref().map(|v| ("execution_mode", v)))
    {
        None => ExecutionMode::Auto,
        Some((key, value)) => ExecutionMode::parse(value).ok_or_else(|| {
            ConfigError::value(
                key,
                format!("expected auto, inline, client or worker, got {value:?}"),
            )
        })?,
    };
    let worker_defaults = WorkerConfig::default();
    let seconds = |env: &[&'static str], key: &str, value: Option<i64>, default: Duration| {
        positive(layer, env, key, value, default.as_secs()).map(Duration::from_secs)
    };
    let worker = WorkerConfig {
        idle_exit: seconds(
            &["CODEX_MCP_WORKER_IDLE_EXIT_SECONDS"],
            "worker_idle_exit_seconds",
            raw.worker_idle_exit_seconds,
            worker_defaults.idle_exit,
        )?,
        command_wait: seconds(
            &["CODEX_MCP_WORKER_COMMAND_WAIT_SECONDS"],
            "worker_command_wait_seconds",
            raw.worker_command_wait_seconds,
            worker_defaults.command_wait,
        )?,
        shutdown_grace: seconds(
            &["CODEX_MCP_WORKER_SHUTDOWN_GRACE_SECONDS"],
            "worker_shutdown_grace_seconds",
            raw.worker_shutdown_grace_seconds,
            worker_defaults.shutdown_grace,
        )?,
        start_timeout: seconds(
            &["CODEX_MCP_WORKER_START_TIMEOUT_SECONDS"],
            "worker_start_timeout_seconds",
            raw.worker_start_timeout_seconds,
            worker_defaults.start_timeout,
        )?,
    };

    let http = http::resolve(
        raw.http,
        |name| {
            layer
                .get(&[name])
                .map(|(name, value)| (name, value.to_string()))
        },
        layer.bool(&[http::HTTP_ALLOW_NON_LOOPBACK_ENV])?,
    )?;

    let usize_of = |v: u64, key: &str| {
        usize::try_from(v).map_err(|_| ConfigError::value(key, format!("{v} is too large")))
    };
    Ok(Config {
        source_file: file.map(Path::to_path_buf),
        codex_home,
        projects_root,
        projects_registry_path,
        allowed_roots,
        state_db_path,
        log_path,
        log_level,
        codex_binary_path,
        default_sandbox,
        default_approval_policy,
        default_model,
        default_effort,
        approval_response_timeout_seconds: positive(
            layer,
            &["CODEX_MCP_APPROVAL_RESPONSE_TIMEOUT_SECONDS"],
            "approval_response_timeout_seconds",
            raw.approval_response_timeout_seconds,
            900,
        )?,
        max_image_input_items: usize_of(
            positive(
                layer,
                &["CODEX_MCP_MAX_IMAGE_INPUT_ITEMS"],
                "max_image_input_items",
                raw.max_image_input_items,
                10,
            )?,
            "max_image_input_items",
        )?,
        max_image_input_bytes: positive(
            layer,
            &["CODEX_MCP_MAX_IMAGE_INPUT_BYTES"],
            "max_image_input_bytes",
            raw.max_image_input_bytes,
            20_000_000,
        )?,
        turn_stall_timeout_seconds: positive(
            layer,
            &["CODEX_MCP_TURN_STALL_TIMEOUT_SECONDS"],
            "turn_stall_timeout_seconds",
            raw.turn_stall_timeout_seconds,
            900,
        )?,
        stalled_turn_action,
        limits,
        app_server,
        plugins,
        execution_mode,
        worker,
        http,
    })
}

fn parse_sandbox(key: &str, value: &str) -> Result<SandboxMode, ConfigError> {
    SandboxMode::parse(value).ok_or_else(|| {
        ConfigError::value(
            key,
            format!(
                "expected one of read-only, workspace-write, danger-full-access; got {value:?}"
            ),
        )
    })
}

fn parse_approval(key: &str, value: &str) -> Result<ApprovalPolicy, ConfigError> {
    ApprovalPolicy::parse(value).ok_or_else(|| {
        ConfigError::value(
            key,
            format!("expected one of never, on-request, on-failure, untrusted; got {value:?}"),
        )
    })
}

fn parse_effort(key: &str, value: &str) -> Result<String, ConfigError> {
    if EFFORT_LEVELS.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(ConfigError::value(
            key,
            format!(
                "expected one of {}; got {value:?}",
                EFFORT_LEVELS.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("HOME".into()).or_insert_with(|| "/home/u".into());
        map
    }

    fn from_text(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("ccp-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("config.toml");
        std::fs::write(&path, text).expect("write config");
        let result = Config::from_sources(Some(&path), &env(vars));
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn defaults_follow_the_seed() {
        let config = Config::from_sources(None, &env(&[("CODEX_PROJECTS_ROOT", "/srv/p")]))
            .expect("defaults are valid");
        assert_eq!(config.default_sandbox, SandboxMode::ReadOnly);
        assert_eq!(config.default_approval_policy, ApprovalPolicy::OnRequest);
        assert_eq!(config.codex_home, PathBuf::from("/home/u/.codex"));
        assert_eq!(config.allowed_roots, vec![PathBuf::from("/srv/p")]);
        assert_eq!(
            config.projects_registry_path,
            PathBuf::from("/srv/p/projects.json")
        );
        assert_eq!(config.approval_response_timeout_seconds, 900);
        assert_eq!(config.limits, ConcurrencyLimits::default());
    }

    #[test]
    fn environment_overrides_file() {
        let config = from_text(
            "default_sandbox = \"workspace-write\"\ncodex_home = \"/a\"\n",
            &[
                ("CODEX_HOME", "/b"),
                ("CODEX_MCP_DEFAULT_SANDBOX", "danger-full-access"),
            ],
        )
        .expect("valid");
        assert_eq!(config.codex_home, PathBuf::from("/b"));
        assert_eq!(config.default_sandbox, SandboxMode::DangerFullAccess);
    }

    #[test]
    fn allowed_roots_accept_both_separators() {
        let config = Config::from_sources(None, &env(&[("CODEX_ALLOWED_ROOTS", "/a;/b:/c")]))
            .expect("valid");
        assert_eq!(
            config.allowed_roots,
            vec![
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/c")
            ]
        );
    }

    #[test]
    fn bad_toml_is_a_parse_error() {
        let err = from_text("codex_home = ", &[]).expect_err("bad toml");
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = from_text("codex_hme = \"/x\"\n", &[]).expect_err("unknown key");
        assert!(err.to_string().contains("codex_hme"), "{err}");
    }

    #[test]
    fn bad_enum_value_is_named() {
        let err = from_text("default_sandbox = \"wide-open\"\n", &[]).expect_err("bad enum");
        let text = err.to_string();
        assert!(
            text.contains("default_sandbox") && text.contains("wide-open"),
            "{text}"
        );
        let err = Config::from_sources(
            None,
            &env(&[("CODEX_MCP_DEFAULT_APPROVAL_POLICY", "always")]),
        )
        .expect_err("bad env enum");
        assert!(
            err.to_string()
                .contains("CODEX_MCP_DEFAULT_APPROVAL_POLICY"),
            "{err}"
        );
    }

    #[test]
    fn non_positive_ints_are_refused_not_defaulted() {
        let err = Config::from_sources(None, &env(&[("CODEX_MCP_MAX_ACTIVE_TURNS_GLOBAL", "0")]))
            .expect_err("zero refused");
        assert!(
            err.to_string()
                .contains("CODEX_MCP_MAX_ACTIVE_TURNS_GLOBAL"),
            "{err}"
        );
        let err =
            from_text("[limits]\nmax_active_turns_per_thread = -1\n", &[]).expect_err("negative");
        assert!(
            err.to_string()
                .contains("limits.max_active_turns_per_thread"),
            "{err}"
        );
    }

    #[test]
    fn relative_allowed_root_is_refused() {
        let err = Config::from_sources(None, &env(&[("CODEX_ALLOWED_ROOTS", "relative/dir")]))
            .expect_err("relative root");
        assert!(err.to_string().contains("allowed_roots"), "{err}");
    }

    #[test]
    fn dotdot_does_not_escape_an_allowed_root() {
        let mut config = Config::for_tests(Path::new("/nonexistent-root"));
        config.allowed_roots = vec![PathBuf::from("/nonexistent-root/projects")];
        assert!(config.is_allowed_path(Path::new("/nonexistent-root/projects/a")));
        assert!(!config.is_allowed_path(Path::new("/nonexistent-root/projects/../secrets")));
    }
}
