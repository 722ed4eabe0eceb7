//! The engine: turns validated requests into durable operations and drives them through app-server.
//!
//! # Tasks
//!
//! [`Engine::start`] spawns the engine's long-lived tasks; each owns a [`Shutdown`] listener and stops on it:
//!
//! - the **dispatcher** ([`dispatcher`]): claims startable operations under the concurrency limits (a lease row
//!   in SQLite, so several server processes can share one database) and runs each on its own task;
//! - the **tracker** ([`tracker`]): the only consumer of app-server events; notifications become turn rows,
//!   messages, progress and final reports, server requests become pending-interaction rows, an exit ends the
//!   generation's turns as `unknown_after_app_server_exit`;
//! - the **interaction courier** ([`interactions`]): delivers answers stored by any process to the app-server
//!   this process owns, and auto-declines expired interactions;
//! - the **heartbeat**: extends this process's leases and its worker row;
//! - the **workflow pump** ([`workflows`]): performs the actions workflow plugins return and reports the
//!   progress of their operations back to them.
//!
//! Tool handlers never wait on Codex: they write a row and [`Engine::wake`] the dispatcher, or read SQLite.

pub mod analyzers;
pub mod capabilities;
pub mod dispatcher;
pub mod doorbell;
pub mod execute;
pub mod goals;
pub mod interactions;
pub mod lifecycle;
mod loaded_threads;
pub mod plugin_state;
pub mod queue_gate;
pub mod repairs;
pub mod request;
pub mod summaries;
pub mod tracker;
pub mod worker_link;
pub mod workflows;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::appserver::{AppServer, AppServerError};
use crate::config::Config;
use crate::domain::failure::FailureCode;
use crate::plugins::PluginHost;
use crate::shutdown::Shutdown;
use crate::store::leases::{DEFAULT_LEASE_TTL, HEARTBEAT_INTERVAL};
use crate::store::liveness::{owner_lock_path, HeldLock};
use crate::store::{ClaimLimits, RecoveryReport, Store, StoreError, WorkerInfo};
use loaded_threads::LoadedThreads;

/// What this process does with work: dispatch it (owning app-server), or leave it to the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineRole {
    /// An MCP server that dispatches its own work (`execution_mode = "inline"`).
    Inline,
    /// The background worker: dispatches everyone's work.
    Worker,
    /// An MCP server that writes rows and leaves dispatching to the worker (`auto`, `client`).
    Client,
}

impl EngineRole {
    /// True when this process owns app-server and runs the engine's tasks.
    pub fn dispatches(self) -> bool {
        !matches!(self, EngineRole::Client)
    }

    /// The role as worker rows and status tools name it.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineRole::Inline => "inline",
            EngineRole::Worker => "worker",
            EngineRole::Client => "client",
        }
    }
}
/// Why the engine could not do something.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The app-server failed.
    #[error(transparent)]
    AppServer(#[from] AppServerError),
    /// The operation cannot run as stored (a defect or a hand-edited row).
    #[error("{0}")]
    Invalid(String),
    /// A policy plugin refused the action.
    #[error("denied by policy: {0}")]
    PolicyDenied(String),
}

/// Tunables of the engine, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Concurrency limits for claims.
    pub limits: ClaimLimits,
    /// Lease lifetime; heartbeats extend it.
    pub lease_ttl: Duration,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// How often the dispatcher looks for work when nobody wakes it (other processes' submits, backoffs).
    pub poll_interval: Duration,
    /// How long an interaction waits for an answer before it is auto-declined.
    pub interaction_timeout: Duration,
    /// How often the courier looks for answers stored by other processes.
    pub courier_interval: Duration,
    /// Who dispatches.
    pub role: EngineRole,
    /// Outstanding app-server requests at which the dispatcher stops claiming (backpressure).
    pub app_server_pending_limit: usize,
}

impl EngineSettings {
    /// Settings from the server's config.
    pub fn from_config(config: &Config) -> EngineSettings {
        let limit = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        EngineSettings {
            limits: ClaimLimits {
                global: limit(config.limits.global),
                per_project: limit(config.limits.per_project),
                per_agent: limit(config.limits.per_agent),
                per_thread: limit(config.limits.per_thread),
                write_per_project: limit(config.limits.write_per_project),
                allow_cross_config: std::env::var("CODEX_MCP_ALLOW_CROSS_CONFIG_RECOVERY")
                    .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            },
            lease_ttl: DEFAULT_LEASE_TTL,
            heartbeat_interval: HEARTBEAT_INTERVAL,
            poll_interval: Duration::from_millis(500),
            interaction_timeout: Duration::from_secs(config.approval_response_timeout_seconds),
            courier_interval: Duration::from_millis(200),
            role: EngineRole::Inline,
            app_server_pending_limit: limit(config.limits.app_server_pending_requests),
        }
    }

    /// The same settings for a process in `role`. Clients ring the worker's doorbell on every row they commit,
    /// so the worker's polls are only a fallback for lost rings and can be slow (an idle worker costs ~nothing).
    pub fn with_role(mut self, role: EngineRole) -> EngineSettings {
        self.role = role;
        if role == EngineRole::Worker {
            self.poll_interval = Duration::from_secs(2);
            self.courier_interval = Duration::from_secs(1);
        }
        self
    }
}

/// The configuration fingerprint the seed uses to keep workers of different setups apart: a hash of the codex
/// home, the database and the allowed roots.
pub fn config_fingerprint(config: &Config) -> String {
    let material = serde_json::json!({
        "codexHome": config.codex_home,
        "stateDb": config.state_db_path,
        "allowedRoots": config.allowed_roots,
    });
    crate::domain::rules::canonical::sha256_hex(material.to_string().as_bytes())[..32].to_string()
}

/// The durable dispatcher and its state; shared by `Arc` between tool handlers and the engine's tasks.
pub struct Engine {
    /// The database.
    pub store: Store,
    /// The app-server this process owns.
    pub appserver: AppServer,
    /// This process as a worker (owner id of its leases and interactions).
    pub worker: WorkerInfo,
    /// Policy plugins see every write action before it reaches app-server.
    pub plugins: Arc<PluginHost>,
    settings: EngineSettings,
    wake: Notify,
    /// The dispatcher's last finding about the queue (see [`queue_gate`]).
    queue_gate: queue_gate::QueueGate,
    courier_wake: Notify,
    workflow_wake: Notify,
    /// Threads loaded in the live app-server (started, forked or resumed there), with their models.
    loaded_threads: LoadedThreads,
    /// Operations this process is driving right now (so a claim never runs twice here).
    running: Mutex<HashSet<String>>,
    startup_recovery: Mutex<Option<RecoveryReport>>,
    /// Set when the process drains before exit: no new claims, running turns go on.
    draining: AtomicBool,
    /// This process's proof of life while it holds leases (see [`crate::store::liveness`]).
    owner_lock: Mutex<Option<HeldLock>>,
}

impl Engine {
    /// An engine over `store` and `appserver`; nothing runs until [`Engine::start`].
    pub fn new(
        store: Store,
        appserver: AppServer,
        plugins: Arc<PluginHost>,
        settings: EngineSettings,
        config_fingerprint: String,
    ) -> Arc<Engine> {
        let mut worker = WorkerInfo::current(Some(config_fingerprint));
        worker.role = settings.role.as_str().to_string();
        Arc::new(Engine {
            store,
            appserver,
            plugins,
            worker,
            settings,
            wake: Notify::new(),
            queue_gate: queue_gate::QueueGate::default(),
            courier_wake: Notify::new(),
            workflow_wake: Notify::new(),
            loaded_threads: LoadedThreads::default(),
            running: Mutex::new(HashSet::new()),
            startup_recovery: Mutex::new(None),
            draining: AtomicBool::new(false),
            owner_lock: Mutex::new(None),
        })
    }

    /// Who dispatches in this process.
    pub fn role(&self) -> EngineRole {
        self.settings.role
    }

    /// Stops claiming new work (operations and worker commands); what runs goes on. Used before exit.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// True once [`Engine::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// How many operations this process is driving now.
    pub fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// In a client process, tells the worker that a row waits for it.
    fn ring_worker(&self) {
        if !self.settings.role.dispatches() {
            doorbell::ring(self.store.path());
        }
    }

    /// The engine's settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Tells the dispatcher (here, or the worker's) that new work may be startable.
    pub fn wake(&self) {
        self.queue_gate.forget();
        self.wake.notify_one();
        self.ring_worker();
    }

    /// Tells the dispatcher about an operation just queued, unless it would find nothing new: every slot is taken
    /// and the operation lands behind the queue's head (see [`queue_gate`]). A worker in another process is always
    /// told; its dispatcher keeps its own findings.
    pub fn wake_for_queued(&self, operation: &crate::store::operations::Operation) {
        let behind_a_full_queue = crate::store::operations::priority_rank(&operation.priority)
            .is_some_and(|rank| self.queue_gate.holds(operation.takes_slot, rank));
        if behind_a_full_queue {
            return;
        }
        self.wake.notify_one();
        self.ring_worker();
    }

    /// Tells the courier (here, or the worker's) that an answer is waiting for delivery.
    pub fn wake_courier(&self) {
        self.courier_wake.notify_one();
        self.ring_worker();
    }

    /// Wakes every task of this engine at once (the worker's doorbell rang).
    pub fn wake_all(&self) {
        self.queue_gate.forget();
        self.wake.notify_one();
        self.courier_wake.notify_one();
        self.workflow_wake.notify_one();
    }

    /// What startup recovery did in this process, once it ran.
    pub fn startup_recovery(&self) -> Option<RecoveryReport> {
        self.startup_recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Registers this worker, runs startup recovery, then spawns the engine's tasks. Returns their handles so
    /// the caller can wait for them after firing shutdown.
    pub async fn start(
        self: &Arc<Self>,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, EngineError> {
        if !self.settings.role.dispatches() {
            // A client runs no engine task: the worker recovers, dispatches and tracks.
            return Ok(Vec::new());
        }
        // The lock is taken before the worker row exists, so nobody can see the row and find the owner dead.
        let lock_path = owner_lock_path(self.store.path(), &self.worker.owner_id);
        match HeldLock::try_acquire(&lock_path) {
            Ok(Some(lock)) => {
                *self.owner_lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(lock);
            }
            Ok(None) => {
                return Err(EngineError::Invalid(format!(
                    "owner lock {} is held by another process",
                    lock_path.display()
                )))
            }
            Err(err) => {
                // Without the lock file, liveness falls back to the host check: degraded, not fatal.
                tracing::warn!(path = %lock_path.display(), error = %err, "cannot take the owner lock");
            }
        }
        self.store.register_worker(self.worker.clone()).await?;
        // Subscribe before anything can start a process, so the tracker misses no event.
        let events = self.appserver.subscribe();
        let report = self
            .store
            .recover_operations(&self.worker.owner_id, self.settings.lease_ttl)
            .await?;
        tracing::info!(
            running = report.running.len(),
            requeued = report.requeued.len(),
            unknown = report.unknown.len(),
            reconcile = report.needs_reconcile.len(),
            "startup recovery"
        );
        *self
            .startup_recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        match self
            .store
            .fail_abandoned_worker_commands(&self.worker.owner_id)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                commands = n,
                "failed the commands a dead worker left running"
            ),
            Err(error) => tracing::warn!(%error, "could not settle abandoned worker commands"),
        }
        let mut tasks = vec![
            tokio::spawn(self.clone().tracker_loop(events, shutdown.clone())),
            tokio::spawn(self.clone().dispatcher_loop(shutdown.clone())),
            tokio::spawn(self.clone().courier_loop(shutdown.clone())),
            tokio::spawn(self.clone().heartbeat_loop(shutdown.clone())),
            tokio::spawn(self.clone().workflow_loop(shutdown.clone())),
        ];
        if !report.running.is_empty() || !report.needs_reconcile.is_empty() {
            tasks.push(tokio::spawn(self.clone().follow_recovered(report)));
        }
        Ok(tasks)
    }

    /// Marks this worker stopped and releases its queued leases (clean shutdown).
    pub async fn stop(&self) {
        if !self.settings.role.dispatches() {
            return;
        }
        if let Err(error) = self.store.stop_worker(&self.worker.owner_id).await {
            tracing::warn!(%error, "could not mark the worker stopped");
        }
        if let Some(lock) = self
            .owner_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let path = lock.path().to_path_buf();
            drop(lock);
            let _ = std::fs::remove_file(path);
        }
    }

    async fn heartbeat_loop(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = tokio::time::sleep(self.settings.heartbeat_interval) => {}
            }
            if let Err(error) = self
                .store
                .heartbeat(&self.worker.owner_id, self.settings.lease_ttl)
                .await
            {
                tracing::warn!(%error, "heartbeat failed");
            }
        }
    }

    /// Runs a plugin call on the blocking pool. Plugin calls are synchronous, and WASI's sync bindings
    /// block on the ambient tokio runtime when a guest touches WASI (a panic message written to stderr, for
    /// one), which is forbidden on a reactor thread; a blocking-pool thread may do it. A host-side panic in
    /// the call comes back as an error instead of killing the calling task.
    pub async fn with_plugins<R, F>(&self, call: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&PluginHost) -> R + Send + 'static,
    {
        let plugins = self.plugins.clone();
        tokio::task::spawn_blocking(move || call(&plugins))
            .await
            .map_err(|err| EngineError::Invalid(format!("plugin call failed: {err}")))
    }

    fn mark_running(&self, operation_id: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(operation_id.to_string())
    }

    fn unmark_running(&self, operation_id: &str) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(operation_id);
    }
}

/// The failure code a row records for `error`.
pub fn failure_code(error: &EngineError) -> FailureCode {
    match error {
        EngineError::AppServer(err) => err.failure_code(),
        EngineError::Store(err) if err.is_busy() => FailureCode::StateBusy,
        EngineError::Store(_) => FailureCode::InternalStateReadError,
        EngineError::Invalid(_) => FailureCode::InvalidArgument,
        EngineError::PolicyDenied(_) => FailureCode::PolicyDenied,
    }
}

/// The error as stored in `last_error` / `result.error`: its failure code plus the message.
pub fn error_json(error: &EngineError) -> Value {
    failure_code(error).failure(error.to_string())
}
