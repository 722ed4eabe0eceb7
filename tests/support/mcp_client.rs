//! A small, real MCP client over stdio: spawns the built server binary and speaks JSON-RPC lines to it.
//!
//! It is deliberately independent of the server's own MCP library, so a bug there cannot hide itself in
//! the tests.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

/// Name of the server binary.
pub const SERVER_BIN: &str = "codex-control-plane-mcp";

/// Default time to wait for one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits up to `timeout` for `child` to exit; a child still running then is killed and reaped (`None`).
pub fn wait_or_kill(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The cargo profile directory the running test binary lives in (`target/debug`, `target/release`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target/debug"))
}

/// Builds (once per test process) and returns the path of a workspace binary.
///
/// Tests in this crate drive binaries of other packages, which `cargo test` does not build for us, so we ask
/// cargo for them; when they are up to date this costs a fraction of a second.
pub fn workspace_binary(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| std::sync::Mutex::new(Vec::new()));
    let profile = profile_dir();
    let path = profile.join(bin);
    let mut done = built.lock().map_err(|_| anyhow!("build lock poisoned"))?;
    if !done.iter().any(|b| b == bin || b == "*") {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut command = Command::new(cargo);
        // Every binary of the workspace at once. Under `cargo test` the test targets are included, so the
        // features unify exactly as in the `cargo test --workspace` that runs us and nothing is compiled
        // twice (building one package alone unifies differently and rebuilds the world).
        command
            .args(["build", "--quiet", "--workspace", "--bins"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if profile.file_name().and_then(|n| n.to_str()) == Some("release") {
            command.arg("--release");
        } else {
            command.arg("--tests");
        }
        let status = command
            .status()
            .with_context(|| format!("failed to run cargo build for {bin}"))?;
        if !status.success() {
            bail!("cargo build of {bin} ({package}) failed: {status}");
        }
        done.push(bin.to_string());
        done.push("*".to_string());
    }
    if !path.exists() {
        bail!("{} was not produced by cargo build", path.display());
    }
    Ok(path)
}

/// Path of the built server binary (`CODEX_CONTROL_PLANE_MCP_BIN` overrides).
pub fn server_binary() -> anyhow::Result<PathBuf> {
    match std::env::var_os("CODEX_CONTROL_PLANE_MCP_BIN") {
        Some(path) => Ok(PathBuf::from(path)),
        None => workspace_binary("codex-control-plane-mcp", SERVER_BIN),
    }
}

/// The lines of `reader`, read on a thread of their own, as they arrive.
pub fn line_channel(reader: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A running server and the client end of its stdio.
pub struct McpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
    /// Replies that arrived while we waited for another id.
    early_replies: std::collections::HashMap<u64, Value>,
    /// Notifications and server requests received while waiting for replies.
    pub notifications: Vec<Value>,
}

impl McpClient {
    /// Spawns the server with exactly `env` (plus PATH) and the given extra arguments.
    pub fn spawn(env: &[(String, String)], args: &[&str]) -> anyhow::Result<McpClient> {
        McpClient::spawn_program(&server_binary()?, env, args)
    }

    /// Spawns any MCP stdio server program (used by benchmarks to run the server we replace side by side).
    pub fn spawn_program(
        binary: &Path,
        env: &[(String, String)],
        args: &[&str],
    ) -> anyhow::Result<McpClient> {
        let mut command = Command::new(binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to spawn {}", binary.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let lines = line_channel(stdout);
        Ok(McpClient {
            child,
            stdin: Some(stdin),
            lines,
            next_id: 1,
            early_replies: std::collections::HashMap::new(),
            notifications: Vec::new(),
        })
    }

    /// Spawns and completes the `initialize` handshake.
    pub fn start(env: &[(String, String)]) -> anyhow::Result<McpClient> {
        let mut client = McpClient::spawn(env, &[])?;
        client.initialize("2025-06-18")?;
        Ok(client)
    }

    /// Sends `initialize` with `protocol_version` and the `initialized` notification; returns the result.
    pub fn initialize(&mut self, protocol_version: &str) -> anyhow::Result<Value> {
        let result = self.request(
            "initialize",
            json!({
                "protocolVersion": protocol_version,
                "capabilities": {},
                "clientInfo": {"name": "e2e-test-client", "version": "1.0.0"}
            }),
        )?;
        self.notify("notifications/initialized", json!({}))?;
        Ok(result)
    }

    /// Writes one raw line.
    pub fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Value) -> anyhow::Result<()> {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_line(&message.to_string())
    }

    /// Sends a request without waiting; returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> anyhow::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&message.to_string())?;
        Ok(id)
    }

    /// Waits for the reply with `id` (the whole JSON-RPC message).
    pub fn wait_reply(&mut self, id: u64, timeout: Duration) -> anyhow::Result<Value> {
        if let Some(reply) = self.early_replies.remove(&id) {
            return Ok(reply);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(remaining) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    bail!("no reply to request {id} within {timeout:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("server closed stdout before replying to {id}")
                }
            };
            let message: Value = serde_json::from_str(&line)
                .with_context(|| format!("server wrote a non-JSON line to stdout: {line:?}"))?;
            if message.get("method").is_none() {
                match message.get("id").and_then(Value::as_u64) {
                    Some(reply_id) if reply_id == id => return Ok(message),
                    Some(reply_id) => {
                        self.early_replies.insert(reply_id, message);
                        continue;
                    }
                    None => {}
                }
            }
            self.notifications.push(message);
        }
    }

    /// Sends a raw request line (for JSON a `Value` cannot hold, such as lone surrogate escapes) with the next
    /// id put in place of `"id":"@ID"`; returns that id.
    pub fn send_raw_request(&mut self, line_with_id_placeholder: &str) -> anyhow::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_line(&line_with_id_placeholder.replace("\"@ID\"", &id.to_string()))?;
        Ok(id)
    }

    /// Waits for a message that is not a reply to one of our ids (a notification, a server request, or an error
    /// with `id: null`) matching `predicate`, including ones already received.
    pub fn wait_message(
        &mut self,
        timeout: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        if let Some(found) = self.notifications.iter().find(|m| predicate(m)) {
            return Ok(found.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(remaining) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => bail!("no matching message within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => bail!("server closed stdout"),
            };
            let message: Value = serde_json::from_str(&line)
                .with_context(|| format!("server wrote a non-JSON line to stdout: {line:?}"))?;
            if message.get("method").is_none() {
                if let Some(reply_id) = message.get("id").and_then(Value::as_u64) {
                    self.early_replies.insert(reply_id, message);
                    continue;
                }
            }
            self.notifications.push(message.clone());
            if predicate(&message) {
                return Ok(message);
            }
        }
    }

    /// Sends a request and returns its `result`, failing on a JSON-RPC error.
    pub fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.send_request(method, params)?;
        let reply = self.wait_reply(id, REPLY_TIMEOUT)?;
        if let Some(error) = reply.get("error") {
            bail!("{method} failed: {error}");
        }
        reply.get("result").cloned().context("reply without result")
    }

    /// Calls a tool and returns the whole `CallToolResult`.
    pub fn call_tool_raw(&mut self, name: &str, arguments: Value) -> anyhow::Result<Value> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }

    /// Calls a tool and returns its `structuredContent`, checking that the text block carries the same JSON.
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> anyhow::Result<Value> {
        let result = self.call_tool_raw(name, arguments)?;
        let structured = result
            .get("structuredContent")
            .cloned()
            .context("tool result without structuredContent")?;
        let text = result
            .pointer("/content/0/text")
            .and_then(Value::as_str)
            .context("tool result without a text block")?;
        let from_text: Value = serde_json::from_str(text).context("text block is not JSON")?;
        if from_text != structured {
            bail!("text block and structuredContent differ");
        }
        let is_error = result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ok = structured
            .get("ok")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if is_error == ok {
            bail!("isError={is_error} disagrees with ok={ok}");
        }
        Ok(structured)
    }

    /// Kills the server with SIGKILL (a crash: no shutdown code runs) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin and waits for the server to exit.
    pub fn close(mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        // Dropping stdin is the MCP stdio way of saying goodbye.
        drop(self.stdin.take());
        match wait_or_kill(&mut self.child, timeout)? {
            Some(status) => Ok(status),
            None => bail!("server did not exit within {timeout:?} after stdin closed"),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Say goodbye first: on stdin EOF the server stops its app-server child and waits for it, so nothing
            // the test started outlives it (a SIGKILL would orphan app-server until it reads EOF itself, and it
            // would still write into the test's temp dir after the test removed it).
            drop(self.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal environment for the server under test with every path inside `root`.
pub fn isolated_env(root: &Path) -> Vec<(String, String)> {
    let projects = root.join("projects");
    let _ = std::fs::create_dir_all(&projects);
    let vars = [
        ("HOME", root.to_path_buf()),
        ("CODEX_HOME", root.join("codex-home")),
        ("CODEX_PROJECTS_ROOT", projects.clone()),
        ("CODEX_ALLOWED_ROOTS", projects),
        (
            "CODEX_MCP_STATE_DB",
            root.join("state").join("state.sqlite3"),
        ),
        ("CODEX_CONTROL_PLANE_MCP_LOG", root.join("server.log")),
        // One artifact cache for every test: compiling the default plugins costs seconds in a debug build and
        // artifacts are keyed by host version, engine settings and component bytes, so sharing is safe.
        (
            "CODEX_CONTROL_PLANE_MCP_PLUGIN_CACHE",
            shared_plugin_cache(),
        ),
        // The suite's default; tests of the background worker set `auto` or `client`.
        ("CODEX_MCP_EXECUTION_MODE", PathBuf::from("inline")),
    ];
    vars.into_iter()
        .map(|(k, v)| (k.to_string(), v.display().to_string()))
        .collect()
}

/// [`isolated_env`] for a server in `execution_mode` whose app-server is the scripted `fake-app-server` in
/// `fake_mode` (see `tests/fake-app-server/main.rs`).
pub fn scripted_env(
    root: &Path,
    execution_mode: &str,
    fake_mode: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = isolated_env(root);
    env.retain(|(k, _)| k != "CODEX_MCP_EXECUTION_MODE");
    let fake = workspace_binary("codex-control-plane-tests", "fake-app-server")?;
    env.push(("CODEX_MCP_EXECUTION_MODE".into(), execution_mode.into()));
    env.push(("CODEX_BINARY_PATH".into(), fake.display().to_string()));
    env.push(("FAKE_APP_SERVER_MODE".into(), fake_mode.into()));
    Ok(env)
}

/// The plugin artifact cache the test processes share (under the target directory, kept between runs).
pub fn shared_plugin_cache() -> PathBuf {
    profile_dir().join("test-plugin-cache")
}

/// A fresh temporary directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a unique directory under the system temp dir.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "ccp-{label}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let _ = std::fs::create_dir_all(&path);
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A background worker a test started on this directory's database must not outlive the test.
        stop_worker_of(&self.path.join("state").join("state.sqlite3"));
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The pid the background worker of `db` wrote into its lock note, while it holds the lock.
pub fn worker_pid(db: &Path) -> Option<u32> {
    let path = codex_control_plane::store::liveness::worker_lock_path(db);
    if codex_control_plane::store::liveness::probe(&path)
        != codex_control_plane::store::liveness::LockState::Held
    {
        return None;
    }
    codex_control_plane::engine::worker_link::presence(db).pid
}

/// Stops the background worker of `db` (by the pid in its lock note) and waits for its lock to be released:
/// SIGTERM first, so the worker stops its app-server child as it does for an operator, then SIGKILL if it is
/// still there after a short grace (a test's worker has nothing left worth draining).
pub fn stop_worker_of(db: &Path) {
    let Some(pid) = worker_pid(db) else {
        return;
    };
    for (signal, grace) in [
        (libc::SIGTERM, Duration::from_secs(3)),
        (libc::SIGKILL, Duration::from_secs(5)),
    ] {
        // SAFETY: kill(2) with a pid the worker itself recorded while holding its lock; no memory is shared.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
        let deadline = Instant::now() + grace;
        while worker_pid(db).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if worker_pid(db).is_none() {
            return;
        }
    }
}
