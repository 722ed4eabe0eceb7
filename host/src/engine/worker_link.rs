//! The client side of the background worker: is a worker alive, start one when none is, and hand it a
//! command and wait (bounded) for the result.
//!
//! The worker's proof of life is its lock on `<db>.worker.lock` ([`crate::store::liveness`]); the note inside
//! says which process holds it and whether it is `running` or `exiting` (an idle worker on its way out). Auto-start
//! takes `<db>.worker.spawn.lock` first, so clients racing to start a worker start one; a second worker that
//! loses the race for the worker lock exits by itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{doorbell, Engine, EngineError};
use crate::store::commands::WorkerCommand;
use crate::store::liveness::{self, HeldLock, LockState};

/// How often a waiting client looks at a command's row at first: most commands end within a few milliseconds,
/// so the wait starts fine and backs off to [`COMMAND_POLL_MAX`] (a read is ~0.1 ms).
const COMMAND_POLL_MIN: Duration = Duration::from_millis(1);
/// The slowest a waiting client looks at a command's row.
const COMMAND_POLL_MAX: Duration = Duration::from_millis(20);
/// A queued command that no worker took within this long is `timed_out` and never runs.
pub const COMMAND_TTL: Duration = Duration::from_secs(600);

/// What the worker lock says about the worker of a database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerPresence {
    /// `starting`, `running`, `exiting` (an idle worker on its way out) or `absent`.
    pub state: String,
    /// The worker's pid, from its note.
    pub pid: Option<u32>,
    /// The worker's owner id, from its note.
    pub owner_id: Option<String>,
    /// The worker's version, from its note.
    pub version: Option<String>,
}

impl WorkerPresence {
    /// True when a worker holds the lock and is not on its way out.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// The note a worker writes into its lock file.
pub fn lock_note(pid: u32, owner_id: &str, state: &str) -> String {
    format!(
        "pid={pid} owner={owner_id} state={state} version={}\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Reads the worker lock of `db`.
pub fn presence(db: &Path) -> WorkerPresence {
    let path = liveness::worker_lock_path(db);
    if liveness::probe(&path) != LockState::Held {
        return WorkerPresence {
            state: "absent".into(),
            pid: None,
            owner_id: None,
            version: None,
        };
    }
    let note = liveness::read_note(&path);
    let field = |key: &str| {
        note.split_whitespace()
            .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    WorkerPresence {
        // A holder that has not written its note yet is still starting.
        state: field("state").unwrap_or_else(|| "starting".into()),
        pid: field("pid").and_then(|p| p.parse().ok()),
        owner_id: field("owner"),
        version: field("version"),
    }
}

/// How a client reaches the worker.
#[derive(Debug, Clone)]
pub struct WorkerLink {
    db: PathBuf,
    /// Start a worker when none runs (`auto`); `client` mode only reports its absence.
    pub auto_start: bool,
    /// The config file to hand to a started worker.
    pub config_file: Option<PathBuf>,
    /// How long to wait for a started worker's first heartbeat.
    pub start_timeout: Duration,
    /// How long a tool waits for a command's result before answering with the command id.
    pub command_wait: Duration,
}

/// What a client got from the worker for a command.
#[derive(Debug, Clone)]
pub enum CommandOutcome {
    /// The command ended within the wait: its row, terminal.
    Finished(WorkerCommand),
    /// The worker has not finished it yet: its row, `queued` or `running`.
    Pending(WorkerCommand),
}

impl WorkerLink {
    /// A link to the worker of `db`.
    pub fn new(db: &Path, config: &crate::config::Config) -> WorkerLink {
        WorkerLink {
            db: db.to_path_buf(),
            auto_start: config.execution_mode == crate::config::ExecutionMode::Auto,
            config_file: config.source_file.clone(),
            start_timeout: config.worker.start_timeout,
            command_wait: config.worker.command_wait,
        }
    }

    /// The database this link serves.
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The worker as its lock shows it now.
    pub fn presence(&self) -> WorkerPresence {
        presence(&self.db)
    }

    /// Makes sure a worker runs (starting one in `auto` mode). Never fails the caller's write: a worker that
    /// cannot be started is logged and reported by health, and the row waits for the next worker. Ringing is the
    /// caller's (the engine's `wake` rings after a submit); a worker started here scans the queue when it starts.
    pub async fn ensure_worker(&self) -> WorkerPresence {
        let now = self.presence();
        if now.is_running() || now.state == "starting" || !self.auto_start {
            return now;
        }
        let link = self.clone();
        let started = tokio::task::spawn_blocking(move || link.start_worker_blocking()).await;
        match started {
            Ok(Ok(presence)) => presence,
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not start the background worker");
                self.presence()
            }
            Err(error) => {
                tracing::warn!(%error, "worker start task failed");
                self.presence()
            }
        }
    }

    /// Starts a detached worker unless another client is doing it or one runs, then waits for its first
    /// heartbeat (bounded).
    fn start_worker_blocking(&self) -> std::io::Result<WorkerPresence> {
        let spawn_lock =
            HeldLock::acquire_within(&liveness::spawn_lock_path(&self.db), self.start_timeout)?;
        // Whoever held the spawn lock before us may have started one meanwhile.
        let now = self.presence();
        if spawn_lock.is_none() || now.is_running() {
            return Ok(now);
        }
        if now.state != "starting" {
            self.spawn_detached()?;
        }
        let deadline = Instant::now() + self.start_timeout;
        loop {
            let now = self.presence();
            if now.is_running() && now.owner_id.is_some() {
                return Ok(now);
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    timeout_ms = self.start_timeout.as_millis() as u64,
                    "the background worker did not report within its start timeout"
                );
                return Ok(now);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Spawns `<this binary> worker run --auto-started` in its own session, with no stdio tie to this process,
    /// so it outlives this process and the client session that started it.
    fn spawn_detached(&self) -> std::io::Result<()> {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe()?;
        let mut command = std::process::Command::new(exe);
        command.args(["worker", "run", "--auto-started"]);
        if let Some(file) = &self.config_file {
            command.arg("--config").arg(file);
        }
        command
            .env("CODEX_MCP_STATE_DB", &self.db)
            .env("CODEX_MCP_EXECUTION_MODE", "worker")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: `setsid` is async-signal-safe and touches no memory of the parent; between fork and exec
        // nothing else runs in the child.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        tracing::info!(pid = child.id(), "started the background worker");
        // Reap it if it exits while we live (a lost lock race, an idle exit); once we exit, init does.
        std::thread::Builder::new()
            .name("worker-reaper".into())
            .spawn(move || {
                let _ = child.wait();
            })?;
        Ok(())
    }

    /// Queues `command_type` with `payload` for the worker, makes sure one runs, and waits up to
    /// [`WorkerLink::command_wait`] for the result.
    pub async fn run_command(
        &self,
        engine: &Engine,
        command_type: &str,
        payload: Value,
    ) -> Result<CommandOutcome, EngineError> {
        let command = engine
            .store
            .insert_worker_command(command_type, payload, &engine.worker.owner_id, COMMAND_TTL)
            .await?;
        self.ensure_worker().await;
        doorbell::ring(&self.db);
        self.wait_command(engine, command, self.command_wait).await
    }

    /// Waits up to `wait` for a command to end.
    pub async fn wait_command(
        &self,
        engine: &Engine,
        command: WorkerCommand,
        wait: Duration,
    ) -> Result<CommandOutcome, EngineError> {
        let deadline = Instant::now() + wait;
        let mut last = command;
        let mut pause = COMMAND_POLL_MIN;
        loop {
            if last.is_terminal() {
                return Ok(CommandOutcome::Finished(last));
            }
            if Instant::now() >= deadline {
                return Ok(CommandOutcome::Pending(last));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(COMMAND_POLL_MAX);
            if let Some(row) = engine.store.get_worker_command(&last.command_id).await? {
                last = row;
            }
        }
    }
}
