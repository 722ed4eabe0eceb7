//! `admin smoke`: starts this binary as a stdio MCP server with the client environment `admin print-config`
//! prints, and talks to it as a client would. `protocol` checks the handshake and the tool list;
//! `safe-operation` also runs one real, read-only Codex turn (the preflight's live probe, whose prompt carries
//! `MCP LIVE TEST / DO NOT MODIFY FILES`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::Config;
use crate::mcp::server::SERVER_NAME;

/// What the smoke test exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmokeScenario {
    /// initialize and tools/list.
    Protocol,
    /// Also one real read-only turn.
    SafeOperation,
}

/// How long the server may take to answer one request (the live probe waits for a model turn).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT_SECONDS: u64 = 120;

struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    next_id: u64,
}

impl Session {
    fn start(binary: &Path, env: &serde_json::Map<String, Value>) -> Result<Session, String> {
        let mut child = Command::new(binary)
            .envs(
                env.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (sender, lines) = mpsc::channel();
        // A reader thread, so a silent server cannot block the smoke test past its deadline.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Session {
            child,
            stdin,
            lines,
            next_id: 1,
        })
    }

    fn send(&mut self, message: &Value) -> Result<(), String> {
        writeln!(self.stdin, "{message}").map_err(|e| format!("the server closed its input: {e}"))
    }

    fn request(&mut self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("no reply to {method} within {} s", timeout.as_secs()))?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method} failed: {error}"));
                }
                return Ok(message["result"].clone());
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the smoke test; the report says what passed.
pub async fn smoke(config: &Config, binary: &Path, scenario: SmokeScenario) -> Value {
    let config = config.clone();
    let binary = binary.to_path_buf();
    // The session blocks on pipes: it runs on a blocking thread, not on the async runtime.
    tokio::task::spawn_blocking(move || run(&config, &binary, scenario))
        .await
        .unwrap_or_else(|e| json!({"ok": false, "error": format!("smoke test aborted: {e}")}))
}

fn run(config: &Config, binary: &Path, scenario: SmokeScenario) -> Value {
    let started = Instant::now();
    let mut checks = Vec::new();
    let outcome = (|| -> Result<(), String> {
        let mut env = super::client_env(config);
        for key in ["PATH", "HOME"] {
            if let Ok(value) = std::env::var(key) {
                env.insert(key.into(), json!(value));
            }
        }
        if let Some(path) = &config.codex_binary_path {
            env.insert(
                "CODEX_BINARY_PATH".into(),
                json!(path.display().to_string()),
            );
        }
        let mut session = Session::start(binary, &env)?;
        let init = session.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "codex-control-plane-mcp-smoke", "version": env!("CARGO_PKG_VERSION")}}),
            REPLY_TIMEOUT,
        )?;
        let name = init["serverInfo"]["name"].as_str().unwrap_or_default();
        if name != SERVER_NAME {
            return Err(format!("the server calls itself {name:?}"));
        }
        checks.push(
            json!({"check": "initialize", "ok": true, "protocolVersion": init["protocolVersion"]}),
        );
        session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        let tools = session.request("tools/list", json!({}), REPLY_TIMEOUT)?;
        let count = tools["tools"].as_array().map_or(0, Vec::len);
        if count == 0 {
            return Err("tools/list is empty".into());
        }
        checks.push(json!({"check": "tools/list", "ok": true, "tools": count}));
        if scenario == SmokeScenario::SafeOperation {
            let result = session.request(
                "tools/call",
                json!({"name": "codex_preflight_project_run", "arguments": {
                    "cwd": config.projects_root.display().to_string(), "live_probe": true,
                    "timeout_seconds": PROBE_TIMEOUT_SECONDS}}),
                Duration::from_secs(PROBE_TIMEOUT_SECONDS + 30),
            )?;
            let report = &result["structuredContent"];
            let probe = &report["probeOperation"];
            let completed = probe["status"] == json!("completed");
            checks.push(json!({"check": "live probe", "ok": completed, "probe": probe}));
            if !completed {
                return Err(format!("the live probe did not complete: {report}"));
            }
        }
        Ok(())
    })();
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            json!({"ok": true, "scenario": label(scenario), "checks": checks, "seconds": seconds})
        }
        Err(error) => json!({"ok": false, "scenario": label(scenario), "checks": checks,
                             "error": error, "seconds": seconds}),
    }
}

fn label(scenario: SmokeScenario) -> &'static str {
    match scenario {
        SmokeScenario::Protocol => "protocol",
        SmokeScenario::SafeOperation => "safe-operation",
    }
}
