//! Start-up and shutdown: builds [`App`], serves MCP on stdio until the client closes it, then stops the
//! background tasks in order.

use std::sync::Arc;

use anyhow::Context;
use rmcp::service::ServerInitializeError;
use rmcp::ServiceExt;

use crate::app::App;
use crate::config::{Config, ExecutionMode};
use crate::engine::EngineRole;
use crate::mcp::McpServer;
use crate::shutdown;

/// Serves MCP over this process's stdin/stdout until the client disconnects or `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown_signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let role = match config.execution_mode {
        ExecutionMode::Inline => EngineRole::Inline,
        // An MCP server never dispatches in the other modes: the worker is its own process.
        ExecutionMode::Auto | ExecutionMode::Client | ExecutionMode::Worker => EngineRole::Client,
    };
    tracing::info!(mode = %config.execution_mode, role = role.as_str(), "starting");
    let app = Arc::new(App::new(config, role).context("failed to initialise the server")?);
    let (trigger, listener) = shutdown::channel();
    // Work left unfinished when the last worker went away (a crash, a reboot) needs a worker before anyone
    // submits again; started in the background so the first `tools/list` does not wait for it.
    if let Some(link) = app.delegates_to_worker().cloned() {
        let store = app.engine.store.clone();
        tokio::spawn(async move {
            if !link.presence().is_running() && store.has_unfinished_work().await.unwrap_or(false) {
                link.ensure_worker().await;
            }
        });
    }
    let recorder = tokio::spawn(app.clone().record_app_server_events(listener.clone()));
    // Recovery runs before the first request is served, so a poll never sees a dead process's lease as live.
    let engine_tasks = app
        .engine
        .start(listener.clone())
        .await
        .map_err(|err| anyhow::anyhow!("engine start failed: {err}"))?;
    let server = McpServer::new(app.clone());
    // Our own line decoding: rmcp's drops undecodable lines unanswered (see `mcp::transport`).
    let transport = crate::mcp::transport::stdio();
    let running = match server.serve(transport).await {
        Ok(running) => running,
        // A client that goes away before `initialize` is not an error of ours.
        Err(ServerInitializeError::ConnectionClosed(_))
        | Err(ServerInitializeError::ExpectedInitializeRequest(None)) => {
            tracing::info!("client closed the connection before initialize");
            trigger.fire();
            return Ok(());
        }
        Err(err) => return Err(anyhow::anyhow!("MCP initialisation failed: {err}")),
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
    trigger.fire();
    for task in engine_tasks {
        let _ = task.await;
    }
    app.engine.stop().await;
    // The child must not outlive us: close its stdin, wait, then kill it by pid.
    app.appserver.shutdown().await;
    let _ = recorder.await;
    tracing::info!("stopped");
    Ok(())
}
