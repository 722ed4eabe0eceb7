//! The `codex-control-plane-mcp` binary: parses the command line, sets up logging and runs the server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use codex_control_plane::config::Config;

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
    /// Serve MCP on stdin/stdout (the default).
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("codex-control-plane-mcp: {err}");
            return ExitCode::from(2);
        }
    };
    let _log_guard = match init_logging(&config) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("codex-control-plane-mcp: {err:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
    }
}

fn serve(config: Config) -> ExitCode {
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
    let result = runtime.block_on(codex_control_plane::server::run(config, shutdown_signal()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "server failed");
            eprintln!("codex-control-plane-mcp: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs go to the configured file, else stderr; stdout belongs to MCP.
fn init_logging(config: &Config) -> anyhow::Result<Option<std::fs::File>> {
    use anyhow::Context;
    let filter =
        tracing_subscriber::EnvFilter::try_new(&config.log_level).context("invalid log level")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
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
            builder.with_writer(std::sync::Mutex::new(writer)).init();
            Ok(Some(file))
        }
        None => {
            builder.with_writer(std::io::stderr).init();
            Ok(None)
        }
    }
}
