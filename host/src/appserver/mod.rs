//! The `codex app-server` supervisor: one child process at a time, JSON-RPC over its stdio, generations,
//! restart and shutdown.
//!
//! # Task ownership
//!
//! Each process generation owns two tasks: the *reader* (stdout: replies, notifications, server requests) and
//! the *stderr drain* (into our log at debug level). Requests are written by the caller's task under a
//! per-process stdin lock. The reader is the only task that learns of the process's death (EOF); it then fails
//! every pending request of that generation, reaps the child (killing it if it closed stdout but lingers), and
//! publishes [`AppServerEvent::Exited`]. Nobody else ever waits on the child, so there is exactly one place
//! where exit is detected, within [`EXIT_DETECTION`] of it.
//!
//! # Events and backpressure
//!
//! Notifications and server requests fan out on a bounded broadcast channel ([`EVENT_CAPACITY`]). A subscriber
//! that falls that far behind gets `Lagged` and must reconcile from `thread/read`; the reader never blocks on a
//! slow subscriber, because blocking it would stall every reply.
//!
//! # Layout
//!
//! `process.rs` starts and stops the OS process; `connection.rs` is the JSON-RPC connection over its stdio (one
//! [`connection::Connection`] per generation: requests, replies, the reader); `supervisor.rs` is the
//! [`AppServer`] handle that owns generations, restart and shutdown.
//!
//! **Architecture Invariant:** `appserver` is the only module that spawns processes or speaks app-server
//! JSON-RPC; it knows nothing about MCP or SQLite.

mod binary;
mod connection;
mod error;
mod process;
pub mod protocol;
pub mod sandbox;
pub mod schema;
mod supervisor;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub use binary::{find_codex_binary, self_disable_overrides};
pub use error::AppServerError;
pub use supervisor::{AppServer, EventReceiver};

use crate::config::Config;

/// Environment variable set in every child we spawn; a `codex-control-plane-mcp` started inside it (through a
/// nested Codex's MCP config) refuses write tools.
pub const RECURSION_MARKER_ENV: &str = "CODEX_CONTROL_PLANE_MCP_PARENT";

/// Largest line accepted from the child. `thread/read` of a long thread can be several MiB; anything beyond
/// this is a protocol fault, logged and skipped rather than buffered without bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// How many undelivered events a subscriber may fall behind before it sees `Lagged`. The channel allocates
/// and writes every slot up front, so this is resident memory from the first moment, whether or not
/// app-server ever starts: a slot holds an `Arc` ([`EventReceiver`]), so 4096 cost about 160 KB (an event in
/// the slot itself cost 0.8 MB). Subscribers are in-process tasks that drain continuously; one 4096 frames
/// behind is stalled, and reconciles anyway.
pub const EVENT_CAPACITY: usize = 4 * 1024;

/// Upper bound between the child's death and [`AppServerEvent::Exited`].
pub const EXIT_DETECTION: Duration = Duration::from_secs(1);

/// How long a clean shutdown waits for the child after closing its stdin before killing it.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Something the app-server said or did.
#[derive(Debug, Clone, PartialEq)]
pub enum AppServerEvent {
    /// A process finished its handshake.
    Started {
        /// Its generation.
        generation: u64,
        /// Its pid.
        pid: u32,
    },
    /// A notification.
    Notification {
        /// Generation of the process that sent it.
        generation: u64,
        /// JSON-RPC method.
        method: String,
        /// Its params (`Null` when absent).
        params: Value,
    },
    /// A server-to-client request waiting for [`AppServer::respond`].
    ServerRequest {
        /// Generation of the process that sent it; answers must name it.
        generation: u64,
        /// The request id as sent (integer ids start at 0).
        id: Value,
        /// JSON-RPC method.
        method: String,
        /// Its params.
        params: Value,
    },
    /// A process is gone.
    Exited {
        /// Its generation.
        generation: u64,
        /// Exit code, when it exited normally.
        code: Option<i32>,
        /// `(thread_id, turn_id)` of the turns that were active when it died.
        active_turns: Vec<(String, String)>,
    },
}

/// What `restart` may do with active turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    /// Refuse while turns are active.
    Idle,
    /// Restart anyway; active turns end as unknown.
    Force,
}

/// A point-in-time view of the supervisor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppServerStatus {
    /// A process is alive.
    pub running: bool,
    /// Its pid.
    pub pid: Option<u32>,
    /// Its generation (or the last one, when stopped).
    pub process_generation: Option<u64>,
    /// Requests waiting for a reply.
    pub pending_requests: usize,
    /// Turns started and not completed.
    pub active_turns: usize,
    /// The binary in use or that would be used.
    pub codex_binary_path: Option<PathBuf>,
    /// Whether that binary exists.
    pub codex_binary_exists: bool,
    /// Seconds since the process started.
    pub uptime_seconds: Option<f64>,
    /// How the previous process ended, if one did.
    pub last_exit: Option<Value>,
}

/// Settings the supervisor needs, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct AppServerSettings {
    /// Explicit binary; `None` searches PATH.
    pub binary: Option<PathBuf>,
    /// `CODEX_HOME` for the child.
    pub codex_home: PathBuf,
    /// Working directory of the child.
    pub cwd: PathBuf,
    /// Extra arguments after `app-server`.
    pub extra_args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Default request timeout.
    pub request_timeout: Duration,
    /// Handshake timeout.
    pub initialize_timeout: Duration,
    /// Our own `[mcp_servers]` entry name, disabled in the child.
    pub self_mcp_server_name: String,
    /// Send `experimentalApi: true` (plan mode's `collaborationMode` needs it).
    pub experimental_api: bool,
}

impl AppServerSettings {
    /// Settings from the server's config.
    pub fn from_config(config: &Config) -> AppServerSettings {
        AppServerSettings {
            binary: config.codex_binary_path.clone(),
            codex_home: config.codex_home.clone(),
            cwd: config.projects_root.clone(),
            extra_args: config.app_server.extra_args.clone(),
            env: config
                .app_server
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            request_timeout: Duration::from_millis(config.app_server.request_timeout_ms),
            initialize_timeout: Duration::from_millis(config.app_server.initialize_timeout_ms),
            self_mcp_server_name: config.app_server.self_mcp_server_name.clone(),
            // Plan mode (`collaborationMode`) and `request_user_input` are experimental in the pinned
            // version; without the flag a plan workflow cannot run at all.
            experimental_api: true,
        }
    }
}
