//! The JSON-RPC connection to one app-server generation: requests and their replies, the reader that routes
//! what the child says (replies, notifications, server requests), and the end of the generation at EOF.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{broadcast, oneshot};

use super::{AppServerError, AppServerEvent, MAX_LINE_BYTES};

pub(super) type Reply = Result<Value, AppServerError>;

/// One live child process and its connection state.
pub(super) struct Connection {
    pub(super) generation: u64,
    pub(super) pid: u32,
    pub(super) started_at: Instant,
    pub(super) stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    pub(super) pending: Mutex<HashMap<i64, (String, oneshot::Sender<Reply>)>>,
    pub(super) next_id: AtomicI64,
    pub(super) alive: AtomicBool,
    /// turn id -> thread id, from turn/started and turn/completed.
    pub(super) active_turns: Mutex<HashMap<String, String>>,
    /// Server request ids not yet answered.
    pub(super) open_server_requests: Mutex<HashSet<String>>,
    pub(super) child: Mutex<Option<Child>>,
}

impl Connection {
    /// A connection to a child that was just spawned.
    pub(super) fn new(
        generation: u64,
        pid: u32,
        stdin: Option<ChildStdin>,
        child: Child,
    ) -> Connection {
        Connection {
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
        }
    }

    /// Writes one JSON-RPC line to the child's stdin.
    pub(super) async fn write_line(&self, line: &str) -> Result<(), AppServerError> {
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

    /// Fails every request still waiting for a reply (the generation ended).
    pub(super) fn fail_pending(&self) {
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

    /// How many turns the child reports as started and not completed.
    pub(super) fn active_turn_count(&self) -> usize {
        self.active_turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Sends a request on `process` and waits up to `timeout` for its reply.
pub(super) async fn call(
    process: &Arc<Connection>,
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

/// How a generation ended.
pub(super) struct Exit {
    /// Exit code, when it exited normally.
    pub(super) code: Option<i32>,
    /// `(thread_id, turn_id)` of the turns active when it died.
    pub(super) active_turns: Vec<(String, String)>,
}

/// Reads the child's stdout until EOF, routing replies, notifications and server requests; then fails every
/// waiter and reaps the child.
pub(super) async fn read_loop(
    events: broadcast::Sender<Arc<AppServerEvent>>,
    process: Arc<Connection>,
    stdout: ChildStdout,
) -> Exit {
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
        route(&events, &process, message).await;
    }

    // EOF: the process is gone or has abandoned us. Fail every waiter first so nobody hangs.
    process.alive.store(false, Ordering::Release);
    process.fail_pending();
    let code = super::process::reap(&process).await;
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
    Exit { code, active_turns }
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

async fn route(
    events: &broadcast::Sender<Arc<AppServerEvent>>,
    process: &Arc<Connection>,
    message: Value,
) {
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
                let _ = events.send(Arc::new(AppServerEvent::ServerRequest {
                    generation: process.generation,
                    id,
                    method,
                    params,
                }));
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
            let _ = events.send(Arc::new(AppServerEvent::Notification {
                generation: process.generation,
                method,
                params,
            }));
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

fn track_turns(process: &Connection, method: &str, params: &Value) {
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
