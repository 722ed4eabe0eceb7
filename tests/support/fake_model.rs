//! A scriptable fake of the Responses API on 127.0.0.1: what `codex app-server` talks to instead of a model.
//!
//! Each `POST /v1/responses` takes the next [`Reply`] from the script (or [`Reply::default_text`] when the
//! script is empty) and answers with the server-sent events Codex expects. Every request is recorded so tests
//! can count model calls: the basis of every "no duplicate turn" assertion.

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::http_request::{read_request, HttpRequest};

/// One scripted answer to a model request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An assistant message streamed as deltas, then completed.
    Text {
        /// Delta chunks; the message text is their concatenation.
        chunks: Vec<String>,
        /// Pause before each event.
        delay: Duration,
    },
    /// A function call (e.g. `exec_command`) the model wants run.
    FunctionCall {
        /// Tool name.
        name: String,
        /// JSON arguments.
        arguments: Value,
        /// Call id.
        call_id: String,
    },
    /// A call of an MCP tool, which Codex offers inside the namespace tool `mcp__<server>`.
    McpToolCall {
        /// `mcp__<server name>`.
        namespace: String,
        /// The MCP tool's name.
        name: String,
        /// JSON arguments.
        arguments: Value,
        /// Call id.
        call_id: String,
    },
    /// An HTTP error status with a small JSON body.
    HttpError {
        /// Status code.
        status: u16,
    },
    /// Deltas, then the connection closes before `response.completed`.
    Cut {
        /// Text streamed before the cut.
        text: String,
    },
    /// Another reply, sent once the test opens the gate (a turn held running until then).
    Held {
        /// Opened by the test.
        gate: Gate,
        /// The answer.
        reply: Box<Reply>,
    },
    /// Another reply, sent after a pause (the model "thinks" first; a turn stays running meanwhile).
    After {
        /// The pause before the first byte of the answer.
        delay: Duration,
        /// The answer.
        reply: Box<Reply>,
    },
}

impl Reply {
    /// A text reply in one chunk.
    pub fn text(text: &str) -> Reply {
        Reply::Text {
            chunks: vec![text.to_string()],
            delay: Duration::ZERO,
        }
    }

    /// A text reply streamed in `n_chunks` pieces with `delay` before each event.
    pub fn slow_text(text: &str, n_chunks: usize, delay: Duration) -> Reply {
        let chars: Vec<char> = text.chars().collect();
        let size = chars.len().div_ceil(n_chunks.max(1)).max(1);
        Reply::Text {
            chunks: chars.chunks(size).map(|c| c.iter().collect()).collect(),
            delay,
        }
    }

    /// An `exec_command` call running `cmd`.
    pub fn exec(cmd: &str, call_id: &str) -> Reply {
        Reply::FunctionCall {
            name: "exec_command".into(),
            arguments: json!({"cmd": cmd, "yield_time_ms": 2000}),
            call_id: call_id.into(),
        }
    }

    /// A call of the MCP tool `name` of the server configured as `[mcp_servers.<server>]`.
    pub fn mcp_tool(server: &str, name: &str, arguments: Value, call_id: &str) -> Reply {
        Reply::McpToolCall {
            namespace: format!("mcp__{server}"),
            name: name.into(),
            arguments,
            call_id: call_id.into(),
        }
    }

    /// `reply`, sent after `delay`.
    pub fn after(delay: Duration, reply: Reply) -> Reply {
        Reply::After {
            delay,
            reply: Box::new(reply),
        }
    }

    /// `reply`, sent when `gate` opens.
    pub fn held(gate: &Gate, reply: Reply) -> Reply {
        Reply::Held {
            gate: gate.clone(),
            reply: Box::new(reply),
        }
    }

    /// The reply used when the script is empty.
    pub fn default_text() -> Reply {
        Reply::text("Done.")
    }
}

/// A gate a held reply waits for; [`Gate::open`] releases it and records when.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<Option<std::time::Instant>>, std::sync::Condvar)>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Opens the gate; returns the instant it opened.
    pub fn open(&self) -> std::time::Instant {
        let (opened, ready) = &*self.0;
        let mut opened = opened.lock().unwrap_or_else(|p| p.into_inner());
        let now = *opened.get_or_insert_with(std::time::Instant::now);
        ready.notify_all();
        now
    }

    fn wait(&self) {
        let (opened, ready) = &*self.0;
        let mut opened = opened.lock().unwrap_or_else(|p| p.into_inner());
        while opened.is_none() {
            opened = ready.wait(opened).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// One recorded model request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request path.
    pub path: String,
    /// Lower-cased header names and values.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body (`Null` if it was not JSON).
    pub body: Value,
}

impl Recorded {
    /// Text of every `input_text` part of the user messages in the request, in order.
    pub fn user_texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(items) = self.body.get("input").and_then(Value::as_array) {
            for item in items {
                if item.get("role").and_then(Value::as_str) != Some("user") {
                    continue;
                }
                if let Some(parts) = item.get("content").and_then(Value::as_array) {
                    for part in parts {
                        if let Some(text) = part.get("text").and_then(Value::as_str) {
                            out.push(text.to_string());
                        }
                    }
                }
            }
        }
        out
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    stop: AtomicBool,
    served: AtomicU64,
}

/// The running fake; stops when dropped.
pub struct FakeModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeModel {
    /// Starts on a random 127.0.0.1 port.
    pub fn start() -> FakeModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake model on 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let accept_shared = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept_shared.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &shared);
                });
            }
        });
        FakeModel { addr, shared }
    }

    /// `http://127.0.0.1:PORT/v1`, the provider's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(replies);
    }

    /// Drops the replies nobody asked for (a flow that consumed fewer than it scripted).
    pub fn clear_script(&self) {
        self.shared
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Every model request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Number of `/responses` requests so far.
    pub fn n_model_calls(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.ends_with("/responses"))
            .count()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        let HttpRequest {
            path,
            headers,
            body,
        } = request;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Recorded {
                path: path.clone(),
                headers,
                body,
            });
        if !path.ends_with("/responses") {
            let body = b"{}";
            write!(
                writer,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            writer.write_all(body)?;
            continue;
        }
        let n = shared.served.fetch_add(1, Ordering::AcqRel) + 1;
        let reply = shared
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .unwrap_or_else(Reply::default_text);
        // Each response ends the connection: simpler framing and it is what a cut stream looks like anyway.
        return answer(&mut writer, reply, n);
    }
}

fn event(writer: &mut TcpStream, value: Value) -> std::io::Result<()> {
    let kind = value["type"].as_str().unwrap_or("message").to_string();
    write!(writer, "event: {kind}\ndata: {value}\n\n")?;
    writer.flush()
}

fn answer(writer: &mut TcpStream, reply: Reply, n: u64) -> std::io::Result<()> {
    let mut reply = reply;
    let reply = loop {
        reply = match reply {
            Reply::After {
                delay,
                reply: inner,
            } => {
                std::thread::sleep(delay);
                *inner
            }
            Reply::Held { gate, reply: inner } => {
                gate.wait();
                *inner
            }
            other => break other,
        };
    };
    if let Reply::HttpError { status } = reply {
        // A 404 is the API's answer to a model that does not exist, in its own words.
        let body = if status == 404 {
            json!({"error": {"message": "The model `fake-missing` does not exist or you do not have access to it.",
                             "type": "invalid_request_error", "param": null, "code": "model_not_found"}})
        } else {
            json!({"error": {"message": format!("fake status {status}"), "type": "server_error"}})
        }
        .to_string();
        write!(
            writer,
            "HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return writer.flush();
    }
    write!(
        writer,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )?;
    let response_id = format!("resp_{n}");
    event(
        writer,
        json!({"type": "response.created", "response": {"id": response_id}}),
    )?;
    let usage = json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 17});
    match reply {
        Reply::Text { chunks, delay } => {
            let item_id = format!("msg_{n}");
            event(
                writer,
                json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "role": "assistant", "id": item_id, "status": "in_progress", "content": []}}),
            )?;
            for chunk in &chunks {
                std::thread::sleep(delay);
                event(
                    writer,
                    json!({"type": "response.output_text.delta", "item_id": item_id,
                    "output_index": 0, "content_index": 0, "delta": chunk}),
                )?;
            }
            std::thread::sleep(delay);
            let text: String = chunks.concat();
            event(
                writer,
                json!({"type": "response.output_item.done", "output_index": 0,
                "item": {"type": "message", "role": "assistant", "id": item_id, "status": "completed",
                         "content": [{"type": "output_text", "text": text, "annotations": []}]}}),
            )?;
            event(
                writer,
                json!({"type": "response.completed", "response": {"id": response_id, "usage": usage}}),
            )?;
        }
        Reply::FunctionCall { .. } | Reply::McpToolCall { .. } => {
            let item = match reply {
                Reply::McpToolCall {
                    namespace,
                    name,
                    arguments,
                    call_id,
                } => json!({"type": "function_call", "id": format!("fc_{n}"), "call_id": call_id,
                            "namespace": namespace, "name": name, "arguments": arguments.to_string(),
                            "status": "completed"}),
                Reply::FunctionCall {
                    name,
                    arguments,
                    call_id,
                } => json!({"type": "function_call", "id": format!("fc_{n}"), "call_id": call_id,
                            "name": name, "arguments": arguments.to_string(), "status": "completed"}),
                _ => Value::Null,
            };
            event(
                writer,
                json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
            )?;
            event(
                writer,
                json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
            )?;
            event(
                writer,
                json!({"type": "response.completed", "response": {"id": response_id, "usage": usage}}),
            )?;
        }
        Reply::Cut { text } => {
            let item_id = format!("msg_{n}");
            event(
                writer,
                json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "role": "assistant", "id": item_id, "status": "in_progress", "content": []}}),
            )?;
            event(
                writer,
                json!({"type": "response.output_text.delta", "item_id": item_id,
                "output_index": 0, "content_index": 0, "delta": text}),
            )?;
        }
        Reply::HttpError { .. } | Reply::After { .. } | Reply::Held { .. } => {}
    }
    writer.flush()
}
