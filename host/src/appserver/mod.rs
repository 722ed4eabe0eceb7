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
//! **Architecture Invariant:** `appserver` is the only module that spawns processes or speaks app-server
//! JSON-RPC; it knows nothing about MCP or SQLite.

mod binary;
mod error;
pub mod protocol;
pub mod sandbox;
pub mod schema;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{broadcast, oneshot};

pub use binary::{find_codex_binary, self_disable_overrides};
pub use error::AppServerError;

use crate::config::Config;

/// Environment variable set in every child we spawn; a `codex-control-plane-mcp` started inside it (through a
/// nested Codex's MCP config) refuses write tools.
pub const RECURSION_MARKER_ENV: &str = "CODEX_CONTROL_PLANE_MCP_PARENT";

/// Largest line accepted from the child. `thread/read` of a long thread can be several MiB; anything beyond
/// this is a protocol fault, logged and skipped rather than buffered without bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// How many undelivered events a subscriber may fall behind before it sees `Lagged`.
pub const EVENT_CAPACITY: usize = 16 * 1024;

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

type Reply = Result<Value, AppServerError>;

/// One live child process and its connection state.
struct Process {
    generation: u64,
    pid: u32,
    started_at: Instant,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    pending: Mutex<HashMap<i64, (String, oneshot::Sender<Reply>)>>,
    next_id: AtomicI64,
    alive: AtomicBool,
    /// turn id -> thread id, from turn/started and turn/completed.
    active_turns: Mutex<HashMap<String, String>>,
    /// Server request ids not yet answered.
    open_server_requests: Mutex<HashSet<String>>,
    child: Mutex<Option<Child>>,
}

impl Process {
    async fn write_line(&self, line: &str) -> Result<(), AppServerError> {
        let mut guard = self.stdin.lock().await;
        let stdin = guard
            .as_mut()
            .ok_or_else(|| AppServerError::Io("stdin closed".into()))?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        stdin
            .write_all(&bytes)
            .await
            .map_err(|e| AppServerError::Io(e.to_string()))?;
        stdin
            .flush()
            .await
            .map_err(|e| AppServerError::Io(e.to_string()))
    }

    fn fail_pending(&self) {
        let drained: Vec<(String, oneshot::Sender<Reply>)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().map(|(_, v)| v).collect()
        };
        for (method, sender) in drained {
            // The requester may have timed out already; nothing to tell it then.
            let _ = sender.send(Err(AppServerError::ProcessExited {
                generation: self.generation,
                method,
            }));
        }
    }
}

struct Inner {
    settings: AppServerSettings,
    /// Serialises start, restart and shutdown.
    lifecycle: tokio::sync::Mutex<()>,
    current: Mutex<Option<Arc<Process>>>,
    last_generation: AtomicU64,
    last_exit: Mutex<Option<Value>>,
    events: broadcast::Sender<AppServerEvent>,
    shutting_down: AtomicBool,
}

/// Cheap, cloneable handle to the supervisor.
#[derive(Clone)]
pub struct AppServer {
    inner: Arc<Inner>,
}

impl AppServer {
    /// A supervisor that starts nothing until the first request (lazy start).
    pub fn new(settings: AppServerSettings) -> AppServer {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        AppServer {
            inner: Arc::new(Inner {
                settings,
                lifecycle: tokio::sync::Mutex::new(()),
                current: Mutex::new(None),
                last_generation: AtomicU64::new(0),
                last_exit: Mutex::new(None),
                events,
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Subscribes to every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AppServerEvent> {
        self.inner.events.subscribe()
    }

    fn live(&self) -> Option<Arc<Process>> {
        let current = self.inner.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|p| p.alive.load(Ordering::Acquire))
            .cloned()
    }

    /// Generation of the live process, if any.
    pub fn generation(&self) -> Option<u64> {
        self.live().map(|p| p.generation)
    }

    /// Starts the process if none is alive; returns its generation.
    pub async fn ensure_started(&self) -> Result<u64, AppServerError> {
        if let Some(process) = self.live() {
            return Ok(process.generation);
        }
        let _guard = self.inner.lifecycle.lock().await;
        if let Some(process) = self.live() {
            return Ok(process.generation);
        }
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(AppServerError::Unavailable {
                reason: "server is shutting down".into(),
            });
        }
        self.spawn().await
    }

    async fn spawn(&self) -> Result<u64, AppServerError> {
        let settings = &self.inner.settings;
        let binary = find_codex_binary(settings.binary.as_deref())
            .ok_or_else(|| AppServerError::binary_missing(settings.binary.as_ref()))?;
        let generation = self.inner.last_generation.fetch_add(1, Ordering::AcqRel) + 1;
        let mut command = Command::new(&binary);
        command.arg("app-server");
        for (flag, value) in
            self_disable_overrides(&settings.codex_home, &settings.self_mcp_server_name)
        {
            command.arg(flag).arg(value);
        }
        command
            .args(&settings.extra_args)
            .env("CODEX_HOME", &settings.codex_home)
            .env(RECURSION_MARKER_ENV, std::process::id().to_string())
            .envs(settings.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if settings.cwd.is_dir() {
            command.current_dir(&settings.cwd);
        }
        let mut child = command.spawn().map_err(|err| AppServerError::Unavailable {
            reason: format!("failed to spawn {}: {err}", binary.display()),
        })?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| AppServerError::Unavailable {
                reason: "child has no stdout".into(),
            })?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(target: "codex_app_server", generation, "{line}");
                }
            });
        }
        let process = Arc::new(Process {
            generation,
            pid,
            started_at: Instant::now(),
            stdin: tokio::sync::Mutex::new(stdin),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
            alive: AtomicBool::new(true),
            active_turns: Mutex::new(HashMap::new()),
            open_server_requests: Mutex::new(HashSet::new()),
            child: Mutex::new(Some(child)),
        });
        tokio::spawn(read_loop(self.inner.clone(), process.clone(), stdout));

        let init = json!({
            "clientInfo": {
                "name": "codex-control-plane-mcp",
                "title": "codex-control-plane-mcp",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "capabilities": {"experimentalApi": settings.experimental_api},
        });
        if let Err(err) = call(&process, "initialize", init, settings.initialize_timeout).await {
            kill(&process);
            return Err(AppServerError::Unavailable {
                reason: format!("initialize failed: {err}"),
            });
        }
        process
            .write_line(&json!({"method": "initialized"}).to_string())
            .await?;
        *self.inner.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(process.clone());
        tracing::info!(generation, pid, binary = %binary.display(), "codex app-server started");
        let _ = self
            .inner
            .events
            .send(AppServerEvent::Started { generation, pid });
        Ok(generation)
    }

    /// Sends a request with the default timeout, starting the process if needed.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, AppServerError> {
        self.request_with_timeout(method, params, self.inner.settings.request_timeout)
            .await
    }

    /// Sends a request with an explicit timeout, starting the process if needed.
    pub async fn request_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, AppServerError> {
        self.ensure_started().await?;
        let process = self.live().ok_or_else(|| AppServerError::Unavailable {
            reason: "app-server exited during start".into(),
        })?;
        call(&process, method, params, timeout).await
    }

    /// Like [`AppServer::request`] but also returns the generation that served it.
    pub async fn request_on(
        &self,
        method: &str,
        params: Value,
    ) -> Result<(u64, Value), AppServerError> {
        self.ensure_started().await?;
        let process = self.live().ok_or_else(|| AppServerError::Unavailable {
            reason: "app-server exited during start".into(),
        })?;
        let reply = call(
            &process,
            method,
            params,
            self.inner.settings.request_timeout,
        )
        .await?;
        Ok((process.generation, reply))
    }

    /// Answers a server-to-client request of `generation`.
    pub async fn respond(
        &self,
        generation: u64,
        id: &Value,
        result: Result<Value, (i64, String)>,
    ) -> Result<(), AppServerError> {
        let process = self
            .live()
            .filter(|p| p.generation == generation)
            .ok_or_else(|| AppServerError::StaleGeneration {
                requested: generation,
                current: self.generation(),
            })?;
        let message = match result {
            Ok(result) => json!({"id": id, "result": result}),
            Err((code, message)) => json!({"id": id, "error": {"code": code, "message": message}}),
        };
        process.write_line(&message.to_string()).await?;
        process
            .open_server_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id.to_string());
        Ok(())
    }

    /// Restarts the process. `Idle` refuses while turns are active.
    pub async fn restart(&self, mode: RestartMode) -> Result<u64, AppServerError> {
        let _guard = self.inner.lifecycle.lock().await;
        if let Some(process) = self.live() {
            let active = process
                .active_turns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len();
            if mode == RestartMode::Idle && active > 0 {
                return Err(AppServerError::Busy {
                    active_turns: active,
                });
            }
            stop(&process, SHUTDOWN_GRACE).await;
        }
        self.spawn().await
    }

    /// Stops the live process, if any (close stdin, wait, then kill by pid); the next request starts a new one.
    /// Returns the stopped generation.
    pub async fn stop(&self, mode: RestartMode) -> Result<Option<u64>, AppServerError> {
        let _guard = self.inner.lifecycle.lock().await;
        let Some(process) = self.live() else {
            return Ok(None);
        };
        let active = process
            .active_turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        if mode == RestartMode::Idle && active > 0 {
            return Err(AppServerError::Busy {
                active_turns: active,
            });
        }
        stop(&process, SHUTDOWN_GRACE).await;
        Ok(Some(process.generation))
    }

    /// Stops the process (close stdin, wait, then kill by pid) and refuses further starts.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let _guard = self.inner.lifecycle.lock().await;
        if let Some(process) = self.live() {
            stop(&process, SHUTDOWN_GRACE).await;
        }
    }

    /// Turns the live process reports as active, as `(thread_id, turn_id)`.
    pub fn active_turns(&self) -> Vec<(String, String)> {
        self.live()
            .map(|p| {
                p.active_turns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(turn, thread)| (thread.clone(), turn.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `codex` binary a start would use, if one is found.
    pub fn binary(&self) -> Option<PathBuf> {
        find_codex_binary(self.inner.settings.binary.as_deref())
    }

    /// A snapshot for status tools; never starts anything.
    pub fn status(&self) -> AppServerStatus {
        let binary = self.binary();
        let live = self.live();
        let last_generation = self.inner.last_generation.load(Ordering::Acquire);
        AppServerStatus {
            running: live.is_some(),
            pid: live.as_ref().map(|p| p.pid),
            process_generation: live
                .as_ref()
                .map(|p| p.generation)
                .or((last_generation > 0).then_some(last_generation)),
            pending_requests: live
                .as_ref()
                .map(|p| p.pending.lock().unwrap_or_else(|e| e.into_inner()).len())
                .unwrap_or(0),
            active_turns: live
                .as_ref()
                .map(|p| {
                    p.active_turns
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .len()
                })
                .unwrap_or(0),
            codex_binary_exists: binary.is_some(),
            codex_binary_path: binary.or_else(|| self.inner.settings.binary.clone()),
            uptime_seconds: live.as_ref().map(|p| p.started_at.elapsed().as_secs_f64()),
            last_exit: self
                .inner
                .last_exit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

async fn call(
    process: &Arc<Process>,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, AppServerError> {
    if !process.alive.load(Ordering::Acquire) {
        return Err(AppServerError::ProcessExited {
            generation: process.generation,
            method: method.to_string(),
        });
    }
    let id = process.next_id.fetch_add(1, Ordering::Relaxed);
    let (sender, receiver) = oneshot::channel();
    process
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, (method.to_string(), sender));
    // The reader may have seen EOF between the alive check and the insert; re-check so the request can't hang.
    if !process.alive.load(Ordering::Acquire) {
        process.fail_pending();
    }
    let line = json!({"id": id, "method": method, "params": params}).to_string();
    if let Err(err) = process.write_line(&line).await {
        process
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        return Err(err);
    }
    match tokio::time::timeout(timeout, receiver).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => Err(AppServerError::ProcessExited {
            generation: process.generation,
            method: method.to_string(),
        }),
        Err(_) => {
            process
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            Err(AppServerError::Timeout {
                method: method.to_string(),
                timeout_ms: timeout.as_millis() as u64,
            })
        }
    }
}

fn kill(process: &Process) {
    if let Some(child) = process
        .child
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        let _ = child.start_kill();
    }
}

/// Closes stdin (the app-server's way of being asked to exit), waits up to `grace`, then kills by pid.
async fn stop(process: &Arc<Process>, grace: Duration) {
    // Dropping stdin sends EOF to the child.
    drop(process.stdin.lock().await.take());
    let deadline = Instant::now() + grace;
    while process.alive.load(Ordering::Acquire) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if process.alive.load(Ordering::Acquire) {
        tracing::warn!(
            generation = process.generation,
            pid = process.pid,
            "app-server did not exit; killing it"
        );
        kill(process);
        let deadline = Instant::now() + grace;
        while process.alive.load(Ordering::Acquire) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Reads the child's stdout until EOF, routing replies, notifications and server requests.
async fn read_loop(inner: Arc<Inner>, process: Arc<Process>, stdout: tokio::process::ChildStdout) {
    let mut reader = BufReader::with_capacity(256 * 1024, stdout);
    let mut buffer = Vec::with_capacity(64 * 1024);
    loop {
        buffer.clear();
        match read_line_bounded(&mut reader, &mut buffer).await {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                tracing::warn!(
                    generation = process.generation,
                    "app-server line over {MAX_LINE_BYTES} bytes skipped"
                );
                continue;
            }
            Ok(LineRead::Line) => {}
            Err(err) => {
                tracing::warn!(generation = process.generation, error = %err, "app-server stdout read failed");
                break;
            }
        }
        let text = String::from_utf8_lossy(&buffer);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(err) => {
                let excerpt: String = text.chars().take(200).collect();
                tracing::warn!(generation = process.generation, error = %err, line = %excerpt, "malformed line from app-server skipped");
                continue;
            }
        };
        route(&inner, &process, message).await;
    }

    // EOF: the process is gone or has abandoned us. Fail every waiter first so nobody hangs.
    process.alive.store(false, Ordering::Release);
    process.fail_pending();
    let child = process
        .child
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let code = match child {
        Some(mut child) => match tokio::time::timeout(EXIT_DETECTION / 2, child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                // Closed stdout but still running: it can no longer serve us.
                let _ = child.start_kill();
                let _ = tokio::time::timeout(EXIT_DETECTION / 2, child.wait()).await;
                None
            }
        },
        None => None,
    };
    let active_turns: Vec<(String, String)> = process
        .active_turns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .map(|(turn, thread)| (thread, turn))
        .collect();
    tracing::info!(
        generation = process.generation,
        ?code,
        n_active_turns = active_turns.len(),
        "codex app-server exited"
    );
    *inner.last_exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(json!({
        "generation": process.generation,
        "code": code,
        "activeTurns": active_turns.len(),
        "at": crate::time::iso8601_now(),
    }));
    let _ = inner.events.send(AppServerEvent::Exited {
        generation: process.generation,
        code,
        active_turns,
    });
}

enum LineRead {
    Line,
    Eof,
    TooLong,
}

async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
) -> std::io::Result<LineRead> {
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buffer.is_empty() && !too_long {
                LineRead::Eof
            } else if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(pos) => (&available[..pos], Some(pos + 1)),
            None => (available, None),
        };
        if !too_long {
            if buffer.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                buffer.clear();
            } else {
                buffer.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

async fn route(inner: &Arc<Inner>, process: &Arc<Process>, message: Value) {
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = message.get("id").cloned().filter(|id| !id.is_null());
    match (method, id) {
        (Some(method), Some(id)) => {
            // Interactions are surfaced (see `domain::server_requests`); anything else is answered at once.
            if crate::domain::server_requests::ServerRequestKind::parse(&method).is_some() {
                process
                    .open_server_requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.to_string());
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                let _ = inner.events.send(AppServerEvent::ServerRequest {
                    generation: process.generation,
                    id,
                    method,
                    params,
                });
            } else {
                tracing::warn!(generation = process.generation, %method, "unknown server request answered with an error");
                let reply = json!({
                    "id": id,
                    "error": {"code": -32601, "message": format!("codex-control-plane-mcp does not handle {method}")}
                });
                if let Err(err) = process.write_line(&reply.to_string()).await {
                    tracing::warn!(error = %err, "could not answer unknown server request");
                }
            }
        }
        (Some(method), None) => {
            let params = message.get("params").cloned().unwrap_or(Value::Null);
            track_turns(process, &method, &params);
            let _ = inner.events.send(AppServerEvent::Notification {
                generation: process.generation,
                method,
                params,
            });
        }
        (None, Some(id)) => {
            let Some(id) = id.as_i64() else {
                tracing::warn!(%id, "reply with a non-integer id ignored");
                return;
            };
            let waiter = process
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            let Some((method, sender)) = waiter else {
                tracing::debug!(id, "reply to a request nobody waits for (timed out)");
                return;
            };
            let reply = match message.get("error") {
                Some(error) => Err(AppServerError::Rpc {
                    method,
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    data: error.get("data").cloned().map(Box::new),
                }),
                None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = sender.send(reply);
        }
        (None, None) => {
            tracing::warn!("app-server message with neither method nor id skipped");
        }
    }
}

fn track_turns(process: &Process, method: &str, params: &Value) {
    let thread = params
        .get("threadId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let turn = params
        .pointer("/turn/id")
        .or_else(|| params.get("turnId"))
        .and_then(Value::as_str);
    let Some(turn) = turn else { return };
    let mut active = process
        .active_turns
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match method {
        "turn/started" => {
            active.insert(turn.to_string(), thread.to_string());
        }
        "turn/completed" => {
            active.remove(turn);
        }
        _ => {}
    }
}
