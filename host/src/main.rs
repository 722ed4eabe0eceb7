//! The `codex-control-plane-mcp` binary: parses the command line, sets up logging and runs the server or the
//! background worker.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use codex_control_plane::config::Config;
use codex_control_plane::worker::{self, RunOptions, WorkerError};

/// Durable, retry-safe MCP server for `codex app-server`.
#[derive(Debug, Parser)]
#[command(name = "codex-control-plane-mcp", version, about, long_about = None)]
struct Cli {
    /// TOML config file (default: $CODEX_CONTROL_PLANE_MCP_CONFIG); environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP on stdin/stdout (the default), or over streamable HTTP with --http.
    Serve(ServeCli),
    /// The background worker that owns codex app-server and dispatches work for every MCP server on the
    /// database (started automatically in `auto` mode; run it yourself with `execution_mode = "client"`).
    Worker(WorkerCli),
    /// Codex hooks that record sessions run outside this server into its chat history.
    Hooks(HooksCli),
    /// Set-up and checks: create the state, print client configurations, smoke-test the server.
    Admin(AdminCli),
    /// Inspect plugins without starting the server: what the configuration loads, whether one plugin would load.
    Plugins(PluginsCli),
}

#[derive(Debug, Args)]
struct PluginsCli {
    #[command(subcommand)]
    action: PluginsAction,
    /// Print JSON instead of a table or report.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum PluginsAction {
    /// Every plugin the configured server would load (default plugins and plugins.dirs), each linked now, with
    /// its status, capabilities and limits. Exit 1 if a plugin of plugins.required is not loaded.
    List,
    /// Load one plugin as the server would (manifest, WIT version, exports, capabilities granted, settings)
    /// and say whether it would load. Exit 0 if it would, 1 with the reason if not.
    Check {
        /// A plugin folder holding plugin.toml, that plugin.toml, or a component (.wasm) beside one.
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
    /// Create a plugin crate on the guest SDK from the built-in template: Cargo.toml, src/lib.rs with one
    /// example rule, plugin.toml (with [config] and config_schema) and a README with the build command. Never
    /// overwrites a folder; exit 2 when nothing was written.
    New {
        /// The plugin's id and crate name: 1-64 characters of a-z, 0-9, '-', '_', starting with a letter.
        #[arg(value_name = "NAME")]
        name: String,
        /// The world the plugin implements.
        #[arg(long, value_enum)]
        world: codex_control_plane::plugin_cli::scaffold::ScaffoldWorld,
        /// The folder to create (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Depend on the SDK at this path (a checkout's plugins/sdk; default: the checkout above DIR, if any).
        #[arg(long, value_name = "PATH", conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Depend on the SDK by this git URL (a repository holding plugins/sdk).
        #[arg(long, value_name = "URL")]
        sdk_git: Option<String>,
    },
}

#[derive(Debug, Args)]
struct AdminCli {
    #[command(subcommand)]
    action: AdminAction,
    /// CODEX_HOME for this set-up (default: $CODEX_HOME, else ~/.codex).
    #[arg(long, global = true, value_name = "PATH")]
    codex_home: Option<PathBuf>,
    /// The state database (default: $CODEX_MCP_STATE_DB, else under $XDG_STATE_HOME).
    #[arg(long, global = true, value_name = "PATH")]
    state_db: Option<PathBuf>,
    /// Where projects live (default: $CODEX_PROJECTS_ROOT, else the current directory).
    #[arg(long, global = true, value_name = "PATH")]
    projects_root: Option<PathBuf>,
    /// A directory work may run in; repeat for several (default: the projects root).
    #[arg(long = "allowed-root", global = true, value_name = "PATH")]
    allowed_roots: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Create the state database, install the hooks, smoke-test the server, print client configurations.
    Init {
        /// Do not install the Codex hooks.
        #[arg(long)]
        skip_hooks: bool,
        /// Do not start the server to check it.
        #[arg(long)]
        skip_smoke: bool,
    },
    /// Check paths, the database, the codex binary and the hooks.
    Doctor,
    /// Print the client configurations (JSON mcpServers, Codex TOML, `claude mcp add`).
    PrintConfig,
    /// Start the server as a client would and check it.
    Smoke {
        /// `protocol` (handshake and tools) or `safe-operation` (also one real read-only Codex turn).
        #[arg(long, default_value = "protocol", value_parser = ["protocol", "safe-operation"])]
        scenario: String,
    },
}

/// The seed's separate entry points, as names of this binary (`ln -s codex-control-plane-mcp
/// codex-control-plane-mcp-admin`): the name selects the subcommand.
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    for (suffix, command) in [("-admin", "admin"), ("-hooks", "hooks")] {
        if name.ends_with(suffix) {
            args.insert(1, command.into());
        }
    }
    args
}

#[derive(Debug, Args)]
struct HooksCli {
    #[command(subcommand)]
    action: HooksAction,
}

#[derive(Debug, Subcommand)]
enum HooksAction {
    /// Add our hooks to `<CODEX_HOME>/hooks.json` (backed up, merged with yours) and record them as trusted.
    Install {
        /// Longest message text recorded.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_text_chars: Option<u64>,
        /// Do not record trust through codex app-server (Codex will not run the hooks until trusted).
        #[arg(long)]
        skip_trust: bool,
    },
    /// Remove our hooks, keeping everyone else's.
    Uninstall,
    /// Which events have our hook and whether Codex trusts them (JSON; exit 1 if not all in order).
    Status,
    /// `status` plus whether the state database takes a write.
    Doctor,
    /// The hook handler Codex runs: reads the event JSON on stdin and records it. Always exits 0.
    Record {
        /// The side config `install` wrote (state DB, text limit).
        #[arg(long, value_name = "PATH")]
        hook_config: PathBuf,
    },
}

#[derive(Debug, Args, Default)]
struct ServeCli {
    /// Serve MCP over streamable HTTP at http://ADDR/mcp instead of stdio (for example 127.0.0.1:8765; port 0
    /// picks a free one). Every request needs the bearer token; see http.* in the config file.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct WorkerCli {
    #[command(subcommand)]
    action: Option<WorkerAction>,
    /// Report the worker's state every --interval-seconds (JSON lines on stdout); never dispatch.
    #[arg(long)]
    observe: bool,
    /// Seconds between --observe reports.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval_seconds: u64,
}

#[derive(Debug, Subcommand)]
enum WorkerAction {
    /// Run the worker in the foreground (the default). Refuses when another worker serves the database.
    Run {
        /// Started by an MCP server in `auto` mode: exit after `worker_idle_exit_seconds` without work.
        #[arg(long)]
        auto_started: bool,
    },
    /// Print the worker's state as JSON.
    Status,
    /// Ask the running worker to drain and exit (its running turns get the grace period).
    Stop,
}

fn main() -> ExitCode {
    // Before any thread exists (logging may start one).
    codex_control_plane::memory::tune_allocator();
    let cli = Cli::parse_from(arguments());
    // Codex runs the recorder with its own environment: it reads only its side config, never ours.
    if let Some(Command::Hooks(HooksCli {
        action: HooksAction::Record { hook_config },
    })) = &cli.command
    {
        return record_hook(hook_config);
    }
    let loaded = match &cli.command {
        Some(Command::Admin(admin)) => admin_config(cli.config.as_deref(), admin),
        _ => Config::load(cli.config.as_deref()),
    };
    let config = match loaded {
        Ok(config) => config,
        Err(err) => {
            eprintln!("codex-control-plane-mcp: {err}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve(ServeCli::default()));
    let log_target = match &command {
        // The worker owns no terminal: it logs to a capped file next to the database.
        Command::Worker(WorkerCli {
            action: None | Some(WorkerAction::Run { .. }),
            observe: false,
            ..
        }) => LogTarget::WorkerFile,
        _ => LogTarget::Configured,
    };
    let _log_guard = match init_logging(&config, log_target) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("codex-control-plane-mcp: {err:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("codex-control-plane-mcp: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Signal handlers are installed outside `block_on` (see `shutdown_signal`), which needs the runtime entered.
    let _runtime_context = runtime.enter();
    if matches!(command, Command::Serve(_) | Command::Worker(_)) {
        // Long-running processes: give back what a burst of work freed once it is over.
        codex_control_plane::memory::spawn_trimmer(runtime.handle());
    }
    match command {
        Command::Serve(ServeCli { http: None }) => {
            finish(runtime.block_on(codex_control_plane::server::run(config, shutdown_signal())))
        }
        Command::Serve(ServeCli { http: Some(addr) }) => finish(runtime.block_on(
            codex_control_plane::server::run_http(config, addr, shutdown_signal()),
        )),
        Command::Worker(cli) => runtime.block_on(run_worker(config, cli)),
        Command::Hooks(cli) => runtime.block_on(run_hooks(config, cli)),
        Command::Admin(cli) => runtime.block_on(run_admin(config, cli)),
        Command::Plugins(cli) => run_plugins(&config, cli),
    }
}

/// `plugins list|check|new`: the report on stdout; exit 0 when its answer is good, 1 when not, 2 when it could
/// not be given.
fn run_plugins(config: &Config, cli: PluginsCli) -> ExitCode {
    use codex_control_plane::plugin_cli;
    let outcome = match &cli.action {
        PluginsAction::List => plugin_cli::list(config, cli.json),
        PluginsAction::Check { path } => plugin_cli::check(config, path, cli.json),
        PluginsAction::New {
            name,
            world,
            dir,
            sdk_path,
            sdk_git,
        } => return run_plugins_new(name, *world, dir, sdk_path, sdk_git, cli.json),
    };
    match outcome {
        Ok(outcome) => {
            print!("{}", outcome.output);
            if outcome.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("codex-control-plane-mcp: {err}");
            ExitCode::from(2)
        }
    }
}

/// `plugins new`: what was written on stdout, exit 0; nothing written, exit 2 with the reason (as JSON on stdout
/// with `--json`, always on stderr).
fn run_plugins_new(
    name: &str,
    world: codex_control_plane::plugin_cli::scaffold::ScaffoldWorld,
    dir: &Option<PathBuf>,
    sdk_path: &Option<PathBuf>,
    sdk_git: &Option<String>,
    as_json: bool,
) -> ExitCode {
    use codex_control_plane::plugin_cli::scaffold::{new_plugin, NewPlugin, SdkSource};
    let sdk = match (sdk_path, sdk_git) {
        (Some(path), _) => Some(SdkSource::Path(path.clone())),
        (None, Some(url)) => Some(SdkSource::Git(url.clone())),
        (None, None) => None,
    };
    let request = NewPlugin {
        name: name.to_string(),
        world,
        dir: dir.clone(),
        sdk,
    };
    match new_plugin(&request, as_json) {
        Ok(outcome) => {
            print!("{}", outcome.output);
            ExitCode::SUCCESS
        }
        Err(err) => {
            if as_json {
                print!("{}", err.to_json());
            }
            eprintln!("codex-control-plane-mcp: {err}");
            ExitCode::from(2)
        }
    }
}

/// The configuration with the admin flags in place of the environment variables they stand for.
fn admin_config(
    file: Option<&std::path::Path>,
    admin: &AdminCli,
) -> Result<Config, codex_control_plane::config::ConfigError> {
    let mut env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let mut set = |key: &str, value: &std::path::Path| {
        env.insert(key.to_string(), value.display().to_string());
    };
    if let Some(path) = &admin.codex_home {
        set("CODEX_HOME", path);
    }
    if let Some(path) = &admin.state_db {
        set("CODEX_MCP_STATE_DB", path);
    }
    if let Some(path) = &admin.projects_root {
        set("CODEX_PROJECTS_ROOT", path);
    }
    if !admin.allowed_roots.is_empty() {
        let roots: Vec<String> = admin
            .allowed_roots
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        env.insert("CODEX_ALLOWED_ROOTS".into(), roots.join(";"));
    }
    let file = file.map(std::path::Path::to_path_buf).or_else(|| {
        env.get(codex_control_plane::config::CONFIG_PATH_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    Config::from_sources(file.as_deref(), &env)
}

async fn run_admin(config: Config, cli: AdminCli) -> ExitCode {
    use codex_control_plane::admin;
    let binary = std::env::current_exe().unwrap_or_else(|_| "codex-control-plane-mcp".into());
    let (report, ok) = match cli.action {
        AdminAction::Init {
            skip_hooks,
            skip_smoke,
        } => admin::init(&config, &binary, skip_hooks, skip_smoke).await,
        AdminAction::Doctor => admin::doctor(&config).await,
        AdminAction::PrintConfig => (admin::print_config(&config, &binary), true),
        AdminAction::Smoke { scenario } => {
            let scenario = if scenario == "safe-operation" {
                admin::SmokeScenario::SafeOperation
            } else {
                admin::SmokeScenario::Protocol
            };
            let report = admin::smoke(&config, &binary, scenario).await;
            let ok = report["ok"] == serde_json::json!(true);
            (report, ok)
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_else(|_| report.to_string())
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run_hooks(config: Config, cli: HooksCli) -> ExitCode {
    use codex_control_plane::hooks;
    let report = match cli.action {
        HooksAction::Install {
            max_text_chars,
            skip_trust,
        } => {
            let max = max_text_chars.and_then(|m| usize::try_from(m).ok());
            hooks::install(&config, max, skip_trust).await
        }
        HooksAction::Uninstall => hooks::uninstall(&config).await,
        HooksAction::Status => hooks::status(&config, false).await,
        HooksAction::Doctor => hooks::status(&config, true).await,
        // Served before the configuration is loaded.
        HooksAction::Record { .. } => return ExitCode::SUCCESS,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report.json).unwrap_or_else(|_| report.json.to_string())
    );
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `hooks record`: whatever happens, exit 0; a failure becomes a short `systemMessage` for Codex to show.
fn record_hook(hook_config: &std::path::Path) -> ExitCode {
    use codex_control_plane::hooks::{record, RecordOutcome};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            println!(
                "{}",
                serde_json::json!({"systemMessage": format!("codex-control-plane-mcp history hook: {err}")})
            );
            return ExitCode::SUCCESS;
        }
    };
    let outcome = runtime.block_on(record(hook_config, std::io::stdin().lock()));
    if let RecordOutcome::Failed(message) = outcome {
        println!(
            "{}",
            serde_json::json!({"systemMessage": format!("codex-control-plane-mcp history hook: {message}")})
        );
    }
    ExitCode::SUCCESS
}

async fn run_worker(config: Config, cli: WorkerCli) -> ExitCode {
    if cli.observe {
        let interval = Duration::from_secs(cli.interval_seconds);
        return finish(worker::observe(&config, interval, shutdown_signal()).await);
    }
    match cli.action.unwrap_or(WorkerAction::Run {
        auto_started: false,
    }) {
        WorkerAction::Run { auto_started } => {
            let options = RunOptions { auto_started };
            match worker::run(config, options, shutdown_signal()).await {
                Err(err) if err.downcast_ref::<WorkerError>().is_some() => {
                    tracing::info!(error = %err, "not starting");
                    eprintln!("codex-control-plane-mcp: {err}");
                    ExitCode::from(3)
                }
                other => finish(other),
            }
        }
        WorkerAction::Status => print_json(worker::status_report(&config).await),
        WorkerAction::Stop => print_json(worker::stop(&config).await),
    }
}

fn print_json(result: anyhow::Result<serde_json::Value>) -> ExitCode {
    match result {
        Ok(value) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(err) => finish(Err(err)),
    }
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "failed");
            eprintln!("codex-control-plane-mcp: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the future is first
/// polled: a signal that arrives while the server is still starting (an HTTP client that saw the start-up line
/// and stops it at once) must start our shutdown, not the default action that kills the process outright.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                only.recv().await;
            }
            // Without handlers the default actions still stop the process; nothing to wait for here.
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}

/// Where a process logs.
enum LogTarget {
    /// The configured file, else stderr (the MCP server; stdout belongs to MCP).
    Configured,
    /// `<db>.worker.log`, capped.
    WorkerFile,
}

/// Logs go to the configured file, else stderr; the worker's to its capped file. Stdout belongs to MCP.
/// Every target also feeds the in-memory ring of WARN+ lines the diagnostics tools read
/// (`codex_control_plane::logs::ring`), since stderr cannot be read back.
fn init_logging(config: &Config, target: LogTarget) -> anyhow::Result<Option<std::fs::File>> {
    use anyhow::Context;
    use codex_control_plane::logs::ring::RingLayer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_new(&config.log_level).context("invalid log level")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    if let LogTarget::WorkerFile = target {
        let path =
            codex_control_plane::store::liveness::sibling(&config.state_db_path, "worker.log");
        let log = worker::logfile::CappedLog::open(&path, worker::logfile::DEFAULT_CAP_BYTES)
            .with_context(|| format!("cannot open log file {}", path.display()))?;
        builder.with_writer(log).finish().with(RingLayer).init();
        return Ok(None);
    }
    match &config.log_path {
        Some(path) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create log directory {}", parent.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            let writer = file
                .try_clone()
                .context("cannot share the log file handle")?;
            builder
                .with_writer(std::sync::Mutex::new(writer))
                .finish()
                .with(RingLayer)
                .init();
            Ok(Some(file))
        }
        None => {
            builder
                .with_writer(std::io::stderr)
                .finish()
                .with(RingLayer)
                .init();
            Ok(None)
        }
    }
}
