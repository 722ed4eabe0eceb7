//! The process model: which process owns `codex app-server` and dispatches work (`execution_mode`), and the
//! background worker's timings.

use std::fmt;
use std::time::Duration;

/// Who dispatches work and owns `codex app-server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionMode {
    /// The MCP server acts as a client and makes sure a background worker is alive, starting one (detached) when
    /// none holds the worker lock. Work outlives the client's session. The default.
    Auto,
    /// The MCP server owns app-server and dispatches work itself; work ends with the client's session (the
    /// seed's default).
    Inline,
    /// The MCP server never spawns app-server nor a worker: it writes and reads rows; control actions become
    /// worker commands for a worker an operator runs (systemd, launchd).
    Client,
    /// The background worker itself (`codex-control-plane-mcp worker`). An MCP server given this mode behaves
    /// as `client`: the worker is a separate process.
    Worker,
}

impl ExecutionMode {
    /// Every mode, for messages.
    pub const ALL: [ExecutionMode; 4] = [
        ExecutionMode::Auto,
        ExecutionMode::Inline,
        ExecutionMode::Client,
        ExecutionMode::Worker,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Auto => "auto",
            ExecutionMode::Inline => "inline",
            ExecutionMode::Client => "client",
            ExecutionMode::Worker => "worker",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<ExecutionMode> {
        ExecutionMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text.trim())
    }

    /// True when an MCP server in this mode leaves dispatching to a worker process.
    pub fn delegates_to_worker(self) -> bool {
        !matches!(self, ExecutionMode::Inline)
    }
}

impl fmt::Display for ExecutionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Timings of the background worker and of the clients that talk to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// An auto-started worker exits after this long with nothing to do (`worker_idle_exit_seconds`).
    pub idle_exit: Duration,
    /// How long a client waits for a worker command's result before answering with the command id
    /// (`worker_command_wait_seconds`).
    pub command_wait: Duration,
    /// On SIGTERM or `worker stop`, how long running turns may finish before the worker exits
    /// (`worker_shutdown_grace_seconds`).
    pub shutdown_grace: Duration,
    /// How long a client waits for an auto-started worker's first heartbeat (`worker_start_timeout_seconds`).
    pub start_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            idle_exit: Duration::from_secs(900),
            command_wait: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            start_timeout: Duration::from_secs(15),
        }
    }
}
