//! The background worker (`codex-control-plane-mcp worker`): the one process per database that owns
//! `codex app-server` and runs the engine (dispatcher, tracker, courier, workflow pump, goal sync, recovery) and
//! the worker commands clients queue. MCP servers in `auto` or `client` mode only write and read rows, so work
//! outlives the client session that submitted it.
//!
//! # Lifetime
//!
//! - **Start**: takes `<db>.worker.lock` (an OS lock: exactly one dispatching worker per database, and its proof
//!   of life), registers, recovers what a dead worker left, then writes `state=running` into the lock note, which
//!   is what a client that started it waits for.
//! - **Wake-ups**: the doorbell (`<db>.worker.sock`) rings on every row a client commits; the engine's own
//!   polls are the fallback.
//! - **Stop** (SIGTERM, SIGINT, `worker stop`): stop claiming, let running turns and commands finish for the
//!   grace period, then exit and leave the rest to the next worker's recovery.
//! - **Idle exit** (auto-started workers only): after `worker_idle_exit_seconds` with no unfinished work the
//!   worker marks its note `exiting`, checks once more, and exits; a client that committed work before that
//!   check is served, one that commits after it sees `exiting` and starts the next worker.

pub mod logfile;
mod observe;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::app::App;
use crate::config::Config;
use crate::engine::doorbell::Doorbell;
use crate::engine::worker_link::lock_note;
use crate::engine::EngineRole;
use crate::mcp::args::Args;
use crate::shutdown;
use crate::store::liveness::{self, HeldLock};

pub use observe::{observe, status_report, stop};

/// How often the command lane looks for commands when the doorbell stays silent (a fallback: clients ring).
const COMMAND_POLL: Duration = Duration::from_secs(1);
/// How often a draining worker checks whether its turns ended.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// How the worker was started.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Started by a client in `auto` mode: exits by itself once idle, and waits a little longer for the worker
    /// lock (the previous worker may be on its way out).
    pub auto_started: bool,
}

/// Why the worker did not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Another worker holds the worker lock of this database.
    #[error("another worker (pid {pid}) already serves {db}; stop it with `codex-control-plane-mcp worker stop`")]
    AlreadyRunning {
        /// Its pid, from its lock note (`?` when unknown).
        pid: String,
        /// The database.
        db: String,
    },
}

/// Why the worker stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Signal,
    Command,
    Idle,
}

/// Runs the worker until a signal, a `stop_worker` command or (auto-started) idle exit.
pub async fn run(
    config: Config,
    options: RunOptions,
    signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let db = config.state_db_path.clone();
    let patience = if options.auto_started {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(1)
    };
    let lock_path = liveness::worker_lock_path(&db);
    let lock_file = lock_path.clone();
    let mut lock =
        tokio::task::spawn_blocking(move || HeldLock::acquire_within(&lock_file, patience))
            .await
            .context("worker lock task failed")?
            .with_context(|| format!("cannot open the worker lock {}", lock_path.display()))?
            .ok_or_else(|| WorkerError::AlreadyRunning {
                pid: crate::engine::worker_link::presence(&db)
                    .pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into()),
                db: db.display().to_string(),
            })?;
    lock.write_note(&format!("pid={} state=starting\n", std::process::id()))?;
    let grace = config.worker.shutdown_grace;
    let idle_exit = options.auto_started.then_some(config.worker.idle_exit);
    let app =
        Arc::new(App::new(config, EngineRole::Worker).context("failed to initialise the worker")?);
    let engine = app.engine.clone();
    let pid = std::process::id();
    lock.write_note(&lock_note(pid, &engine.worker.owner_id, "starting"))?;

    let (trigger, listener) = shutdown::channel();
    let recorder = tokio::spawn(app.clone().record_app_server_events(listener.clone()));
    let engine_tasks = engine
        .start(listener.clone())
        .await
        .map_err(|err| anyhow::anyhow!("engine start failed: {err}"))?;
    let commands_wake = Arc::new(Notify::new());
    let stop_requested = Arc::new(Notify::new());
    let doorbell = match Doorbell::bind(&db) {
        Ok(bell) => bell,
        Err(error) => {
            tracing::warn!(%error, "no doorbell; relying on polling");
            None
        }
    };
    let mut tasks = vec![tokio::spawn(command_lane(
        app.clone(),
        commands_wake.clone(),
        stop_requested.clone(),
        listener.clone(),
    ))];
    if let Some(bell) = doorbell {
        tasks.push(tokio::spawn(ring_loop(
            bell,
            app.clone(),
            commands_wake.clone(),
            listener.clone(),
        )));
    }
    lock.write_note(&lock_note(pid, &engine.worker.owner_id, "running"))?;
    tracing::info!(
        pid,
        owner = %engine.worker.owner_id,
        auto_started = options.auto_started,
        "worker running"
    );

    let reason = tokio::select! {
        _ = signal => StopReason::Signal,
        _ = stop_requested.notified() => StopReason::Command,
        _ = idle_watch(app.clone(), idle_exit, &mut lock) => StopReason::Idle,
    };
    tracing::info!(?reason, "worker stopping");
    engine.drain();
    if reason != StopReason::Idle {
        let deadline = Instant::now() + grace;
        while engine.running_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        if engine.running_count() > 0 {
            tracing::warn!(
                running = engine.running_count(),
                "grace period over; the next worker's recovery settles the rest"
            );
        }
    }
    trigger.fire();
    for task in engine_tasks.into_iter().chain(tasks) {
        let _ = task.await;
    }
    engine.stop().await;
    app.appserver.shutdown().await;
    let _ = recorder.await;
    tracing::info!("worker stopped");
    drop(lock);
    Ok(())
}

/// Wakes the engine and the command lane whenever a client rings.
async fn ring_loop(
    bell: Doorbell,
    app: Arc<App>,
    commands_wake: Arc<Notify>,
    mut shutdown: shutdown::Shutdown,
) {
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = bell.rung() => {
                app.engine.wake_all();
                commands_wake.notify_one();
            }
        }
    }
}

/// Resolves once an auto-started worker has been idle for `idle_exit` and confirmed it after marking itself
/// `exiting`; never resolves for a worker started by an operator.
async fn idle_watch(app: Arc<App>, idle_exit: Option<Duration>, lock: &mut HeldLock) {
    let Some(idle_exit) = idle_exit else {
        return std::future::pending().await;
    };
    let engine = &app.engine;
    let tick = (idle_exit / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut idle_since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if is_busy(engine).await {
            idle_since = Instant::now();
            continue;
        }
        if idle_since.elapsed() < idle_exit {
            continue;
        }
        // From here a client that finds no running worker starts a new one; work committed before this point
        // is seen by the check below.
        let owner = &engine.worker.owner_id;
        if lock
            .write_note(&lock_note(std::process::id(), owner, "exiting"))
            .is_err()
        {
            continue;
        }
        if is_busy(engine).await {
            let _ = lock.write_note(&lock_note(std::process::id(), owner, "running"));
            idle_since = Instant::now();
            continue;
        }
        tracing::info!(idle_seconds = idle_exit.as_secs(), "idle; exiting");
        return;
    }
}

/// True while the worker drives something or the database holds unfinished work (a failed read counts as
/// busy: exiting on an error could strand work).
async fn is_busy(engine: &crate::engine::Engine) -> bool {
    engine.running_count() > 0 || engine.store.has_unfinished_work().await.unwrap_or(true)
}

/// Claims worker commands and runs each on its own task through the same handler the tool runs inline.
async fn command_lane(
    app: Arc<App>,
    wake: Arc<Notify>,
    stop_requested: Arc<Notify>,
    mut shutdown: shutdown::Shutdown,
) {
    let engine = app.engine.clone();
    loop {
        while !engine.is_draining() {
            // Look before taking the write lock: an idle lane must not contend with submits.
            match engine.store.has_queued_worker_commands().await {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(%error, "reading worker commands failed");
                    break;
                }
            }
            let command = match engine
                .store
                .claim_worker_command(&engine.worker.owner_id)
                .await
            {
                Ok(Some(command)) => command,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "claiming a worker command failed");
                    break;
                }
            };
            tracing::info!(command = %command.command_id, kind = %command.command_type, "running worker command");
            if command.command_type == "stop_worker" {
                let _ = engine
                    .store
                    .finish_worker_command(&command.command_id, Ok(json!({"stopping": true})))
                    .await;
                stop_requested.notify_one();
                continue;
            }
            let app = app.clone();
            tokio::spawn(async move {
                let outcome = execute(&app, &command.payload).await;
                if let Err(error) = app
                    .engine
                    .store
                    .finish_worker_command(&command.command_id, outcome)
                    .await
                {
                    tracing::warn!(command = %command.command_id, %error, "recording a command's result failed");
                }
            });
        }
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(COMMAND_POLL) => {}
        }
    }
}

/// Runs one command's tool here; the tool's payload or its error object.
async fn execute(app: &App, payload: &Value) -> Result<Value, Value> {
    let Some(tool) = payload.get("tool").and_then(Value::as_str) else {
        return Err(
            json!({"code": "INVALID_ARGUMENT", "message": "the command names no tool",
                          "details": {}, "retryable": false}),
        );
    };
    match crate::mcp::tools::run_here(app, tool, Args::from_json(payload)).await {
        Ok(result) => Ok(result),
        Err(error) => Err(error.to_payload()["error"].clone()),
    }
}
