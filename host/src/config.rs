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

mod dotenv;
mod execution;
mod file;
mod http;
mod plugins;
mod summarizer;

pub use execution::{ExecutionMode, WorkerConfig};
use file::{parse_file, resolve, FileConfig, Layer};
pub use http::{
    HostPattern, HttpConfig, OriginPattern, Secret, CONFORMANCE_FIXTURES_ENV,
    HTTP_ALLOW_NON_LOOPBACK_ENV, HTTP_TOKEN_ENV, MIN_TOKEN_CHARS as MIN_HTTP_TOKEN_CHARS,
};
pub use plugins::{PluginCapability, PluginsConfig, BASIC_CAPABILITIES};
pub use summarizer::{is_loopback_host, SummarizerConfig};

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

/// The server's whole configuration, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
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
    /// The optional remote chat summarizer (`[summarizer]`, the seed's `DEEPSEEK_*`).
    pub summarizer: SummarizerConfig,
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
            summarizer: SummarizerConfig::default(),
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
