//! The OS side of an app-server generation: spawning the child with our environment, draining its stderr into
//! the log, stopping it (EOF on stdin, then kill) and reaping it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::connection::Connection;
use super::{
    find_codex_binary, self_disable_overrides, AppServerError, AppServerSettings, EXIT_DETECTION,
    RECURSION_MARKER_ENV,
};

/// A child that was just spawned, with its pipes.
pub(super) struct Spawned {
    /// The child (reaped by [`reap`]).
    pub(super) child: Child,
    /// Its pid.
    pub(super) pid: u32,
    /// Its stdin.
    pub(super) stdin: Option<ChildStdin>,
    /// Its stdout, for the connection's reader.
    pub(super) stdout: ChildStdout,
    /// The binary it runs.
    pub(super) binary: PathBuf,
}

/// Spawns `codex app-server` for `generation` with our settings; its stderr goes to the log at debug level.
pub(super) fn spawn(
    settings: &AppServerSettings,
    generation: u64,
) -> Result<Spawned, AppServerError> {
    let binary = find_codex_binary(settings.binary.as_deref())
        .ok_or_else(|| AppServerError::binary_missing(settings.binary.as_ref()))?;
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
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout,
        binary,
    })
}

/// Kills the child (by the handle tokio holds, so never a reused pid).
pub(super) fn kill(process: &Connection) {
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
pub(super) async fn stop(process: &Arc<Connection>, grace: Duration) {
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

/// Reaps a child whose stdout reached EOF; returns its exit code when it exited normally.
pub(super) async fn reap(process: &Connection) -> Option<i32> {
    let child = process
        .child
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match child {
        Some(mut child) => match tokio::time::timeout(EXIT_DETECTION / 2, child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                // Closed stdout but still running: it can no longer serve us. Said at WARN so diagnostics can
                // tell this from a crash (`app_server_stdout_closed`).
                tracing::warn!(
                    generation = process.generation,
                    "app-server stdout closed while the process still runs; stopping it"
                );
                let _ = child.start_kill();
                let _ = tokio::time::timeout(EXIT_DETECTION / 2, child.wait()).await;
                None
            }
        },
        None => None,
    }
}
