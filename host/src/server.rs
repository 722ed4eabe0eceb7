//! Start-up and shutdown of the MCP server process: builds [`App`], serves MCP on stdio ([`run`]) or streamable
//! HTTP ([`run_http`]) until the client closes it or a signal arrives, then stops the background tasks in order.
//! Both transports share one start-up ([`Started::start`]) and one shutdown ([`Started::stop`]).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use rmcp::service::ServerInitializeError;
use rmcp::ServiceExt;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::{Config, ExecutionMode};
use crate::engine::EngineRole;
use crate::mcp::http::token::TokenSource;
use crate::mcp::http::HttpEndpoint;
use crate::mcp::McpServer;
use crate::shutdown::{self, ShutdownTrigger};

/// Serves MCP over this process's stdin/stdout until the client disconnects or `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown_signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let started = Started::start(config).await?;
    let server = McpServer::new(started.app.clone());
    // Our own line decoding: rmcp's drops undecodable lines unanswered (see `mcp::transport`).
    let mut transport = crate::mcp::transport::stdio();
    match server.tools_list_reply() {
        Ok(reply) => transport = transport.with_tools_list(reply),
        Err(err) => tracing::warn!(error = %err, "tools/list is serialised per call"),
    }
    let running = match server.serve(transport).await {
        Ok(running) => running,
        // A client that goes away before `initialize` is not an error of ours.
        Err(ServerInitializeError::ConnectionClosed(_))
        | Err(ServerInitializeError::ExpectedInitializeRequest(None)) => {
            tracing::info!("client closed the connection before initialize");
            started.stop().await;
            return Ok(());
        }
        Err(err) => {
            started.stop().await;
            return Err(anyhow::anyhow!("MCP initialisation failed: {err}"));
        }
    };
    let cancel = running.cancellation_token();
    tokio::select! {
        result = running.waiting() => {
            if let Err(err) = result {
                tracing::warn!(error = %err, "MCP service ended with an error");
            }
        }
        _ = shutdown_signal => {
            tracing::info!("shutdown requested");
            cancel.cancel();
        }
    }
    started.stop().await;
    Ok(())
}

/// Serves MCP over streamable HTTP at `http://<addr>/mcp` until `shutdown` resolves.
///
/// The bind policy and the token are settled before anything starts, so a refused address leaves no worker,
/// app-server or database behind. One line on stderr says where the server listens and where the token is, since
/// the log may be a file the user has not found yet.
pub async fn run_http(
    config: Config,
    addr: SocketAddr,
    shutdown_signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let endpoint = HttpEndpoint::bind(&config, addr).await?;
    let started = Started::start(config).await?;
    let url = endpoint.url();
    let token_hint = match endpoint.token_source() {
        TokenSource::Config => "the bearer token is http.token".to_string(),
        TokenSource::File { path, created } => {
            tracing::info!(path = %path.display(), created, "HTTP bearer token file");
            format!("the bearer token is in {}", path.display())
        }
    };
    tracing::info!(%url, local_addr = %endpoint.local_addr(), "serving MCP over HTTP");
    eprintln!("codex-control-plane-mcp: serving MCP on {url}; {token_hint}");
    endpoint
        .serve(McpServer::new(started.app.clone()), async {
            shutdown_signal.await;
            tracing::info!("shutdown requested");
        })
        .await;
    started.stop().await;
    Ok(())
}

/// The state and tasks a serving process runs next to its transport.
struct Started {
    /// The shared state the MCP handler serves from.
    app: Arc<App>,
    /// Tells the engine's tasks and the event recorder to stop.
    trigger: ShutdownTrigger,
    /// The engine's long-lived tasks (none in a client process).
    engine_tasks: Vec<JoinHandle<()>>,
    /// The task journaling app-server events.
    recorder: JoinHandle<()>,
}

impl Started {
    /// Builds [`App`] (client role in `auto`/`client`, inline role in `inline`), starts the engine (recovery runs
    /// before the first request is served) and, in a client process, the background worker when work waits.
    async fn start(config: Config) -> anyhow::Result<Started> {
        let role = match config.execution_mode {
            ExecutionMode::Inline => EngineRole::Inline,
            // An MCP server never dispatches in the other modes: the worker is its own process.
            ExecutionMode::Auto | ExecutionMode::Client | ExecutionMode::Worker => {
                EngineRole::Client
            }
        };
        tracing::info!(mode = %config.execution_mode, role = role.as_str(), "starting");
        McpServer::prepare_in_background();
        let app = Arc::new(App::new(config, role).context("failed to initialise the server")?);
        let (trigger, listener) = shutdown::channel();
        // Work left unfinished when the last worker went away (a crash, a reboot) needs a worker before anyone
        // submits again; started in the background so the first `tools/list` does not wait for it.
        if let Some(link) = app.delegates_to_worker().cloned() {
            let store = app.engine.store.clone();
            tokio::spawn(async move {
                if !link.presence().is_running()
                    && store.has_unfinished_work().await.unwrap_or(false)
                {
                    link.ensure_worker().await;
                }
            });
        }
        let recorder = tokio::spawn(app.clone().record_app_server_events(listener.clone()));
        // Recovery runs before the first request is served, so a poll never sees a dead process's lease as live.
        let engine_tasks = match app.engine.start(listener.clone()).await {
            Ok(tasks) => tasks,
            Err(err) => {
                trigger.fire();
                let _ = recorder.await;
                return Err(anyhow::anyhow!("engine start failed: {err}"));
            }
        };
        Ok(Started {
            app,
            trigger,
            engine_tasks,
            recorder,
        })
    }

    /// Stops the engine's tasks, then the app-server child, then the recorder.
    async fn stop(self) {
        self.trigger.fire();
        for task in self.engine_tasks {
            let _ = task.await;
        }
        self.app.engine.stop().await;
        // The child must not outlive us: close its stdin, wait, then kill it by pid.
        self.app.appserver.shutdown().await;
        let _ = self.recorder.await;
        tracing::info!("stopped");
    }
}
