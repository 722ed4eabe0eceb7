//! Reading the TOML file and the environment into a [`Config`]: the file's shape (unknown keys refused), the
//! environment layer over it, and `resolve`, where every value is checked and a bad one names its key.

use super::*;

/// The file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
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
    #[serde(default)]
    summarizer: summarizer::FileSummarizer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    max_active_turns_global: Option<i64>,
    max_active_turns_per_project: Option<i64>,
    max_active_turns_per_agent: Option<i64>,
    max_active_turns_per_thread: Option<i64>,
    max_active_write_turns_per_project: Option<i64>,
    max_app_server_pending_requests: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAppServer {
    request_timeout_ms: Option<i64>,
    initialize_timeout_ms: Option<i64>,
    extra_args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    self_mcp_server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePlugins {
    dirs: Option<Vec<PathBuf>>,
    allow_native: Option<bool>,
    cache_dir: Option<PathBuf>,
    default_fuel: Option<i64>,
    default_timeout_ms: Option<i64>,
    default_memory_bytes: Option<i64>,
    disabled: Option<Vec<String>>,
    grants: Option<BTreeMap<String, Vec<PluginCapability>>>,
    required: Option<Vec<String>>,
    settings: Option<BTreeMap<String, toml::Table>>,
}

pub(super) fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|err| err.to_string().trim_end().to_string())
}

/// The environment, read through the seed's variable names.
pub(super) struct Layer<'a> {
    pub(super) env: &'a BTreeMap<String, String>,
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
pub(super) fn expand_home(path: &Path, env: &BTreeMap<String, String>) -> PathBuf {
    match (path.strip_prefix("~"), env.get("HOME")) {
        (Ok(rest), Some(home)) => Path::new(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// A positive integer from env (preferred) or file, else `default`; zero or negative values are errors.
pub(super) fn positive(
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

pub(super) fn resolve(
    raw: FileConfig,
    file: Option<&Path>,
    layer: &Layer<'_>,
) -> Result<Config, ConfigError> {
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
        grants: raw.plugins.grants.unwrap_or_default(),
        required: raw.plugins.required.unwrap_or_default(),
        settings: plugin_settings(raw.plugins.settings.unwrap_or_default())?,
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
        layer
            .bool(&[http::CONFORMANCE_FIXTURES_ENV])?
            .unwrap_or(false),
    )?;

    let summarizer = summarizer::resolve(
        raw.summarizer,
        |name| {
            layer
                .get(&[name])
                .map(|(name, value)| (name, value.to_string()))
        },
        env,
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
        summarizer,
    })
}

pub(super) fn parse_sandbox(key: &str, value: &str) -> Result<SandboxMode, ConfigError> {
    SandboxMode::parse(value).ok_or_else(|| {
        ConfigError::value(
            key,
            format!(
                "expected one of read-only, workspace-write, danger-full-access; got {value:?}"
            ),
        )
    })
}

pub(super) fn parse_approval(key: &str, value: &str) -> Result<ApprovalPolicy, ConfigError> {
    ApprovalPolicy::parse(value).ok_or_else(|| {
        ConfigError::value(
            key,
            format!("expected one of never, on-request, on-failure, untrusted; got {value:?}"),
        )
    })
}

pub(super) fn parse_effort(key: &str, value: &str) -> Result<String, ConfigError> {
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

/// `[plugins.settings.<id>]` tables as the JSON objects plugins read with `get-config`; the plugin's
/// `config_schema` checks them when it loads, since only the plugin knows its keys.
fn plugin_settings(
    tables: BTreeMap<String, toml::Table>,
) -> Result<BTreeMap<String, serde_json::Map<String, serde_json::Value>>, ConfigError> {
    tables
        .into_iter()
        .map(|(id, table)| match serde_json::to_value(&table) {
            Ok(serde_json::Value::Object(map)) => Ok((id, map)),
            Ok(_) => Ok((id, serde_json::Map::new())),
            Err(err) => Err(ConfigError::value(
                &format!("plugins.settings.{id}"),
                format!("not representable as JSON: {err}"),
            )),
        })
        .collect()
}
