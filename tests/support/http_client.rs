//! A small HTTP/1.1 client over `std::net::TcpStream` for the streamable HTTP transport, and a handle on a server
//! started with `serve --http 127.0.0.1:0`.
//!
//! Hand-written on purpose: it compiles in a moment, and like the stdio client it shares nothing with the
//! server's own HTTP stack, so a bug there cannot hide itself here. It speaks just enough HTTP for the tests:
//! one request per connection (`Connection: close`), `Content-Length` or chunked bodies, and SSE bodies read
//! until the JSON-RPC response arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::mcp_client::{server_binary, wait_or_kill};

/// How long a server may take to start listening (the first start compiles the default plugins).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one HTTP exchange may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process serving MCP over HTTP, killed on drop if still running.
pub struct HttpServer {
    child: Child,
    /// The address it listens on, read from its start-up line.
    pub addr: SocketAddr,
    /// The start-up line, which also says where the token is.
    pub banner: String,
    /// Stderr lines after the banner.
    stderr: Receiver<String>,
}

impl HttpServer {
    /// Starts `serve --http 127.0.0.1:0` with exactly `env` (plus PATH) and waits for its start-up line.
    pub fn start(env: &[(String, String)]) -> anyhow::Result<HttpServer> {
        HttpServer::start_with_args(env, &["serve", "--http", "127.0.0.1:0"])
    }

    /// Starts the server with `args` and waits for its start-up line.
    pub fn start_with_args(env: &[(String, String)], args: &[&str]) -> anyhow::Result<HttpServer> {
        let mut child = spawn(env, args)?;
        let stderr = child.stderr.take().context("no stderr")?;
        let lines = crate::mcp_client::line_channel(stderr);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(remaining) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    bail!("server did not start listening (exit {status:?}); stderr: {seen:?}");
                }
            };
            if let Some(addr) = listening_addr(&line) {
                return Ok(HttpServer {
                    child,
                    addr,
                    banner: line,
                    stderr: lines,
                });
            }
            seen.push(line);
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        match wait_or_kill(&mut self.child, timeout)? {
            Some(status) => Ok(status),
            None => {
                let late: Vec<String> = self.stderr.try_iter().collect();
                bail!("server did not exit within {timeout:?} of SIGTERM; stderr: {late:?}");
            }
        }
    }

    /// A client of this server presenting `token`.
    pub fn client(&self, token: &str) -> McpHttpClient {
        McpHttpClient::new(self.addr, token)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the server with `args` to its exit (for start-up refusals); returns the status and stderr.
pub fn run_to_exit(
    env: &[(String, String)],
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<(ExitStatus, String)> {
    let mut child = spawn(env, args)?;
    let Some(status) = wait_or_kill(&mut child, timeout)? else {
        bail!("server still running after {timeout:?}");
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr)?;
    }
    Ok((status, stderr))
}

fn spawn(env: &[(String, String)], args: &[&str]) -> anyhow::Result<Child> {
    let binary = server_binary()?;
    Command::new(&binary)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to spawn {}", binary.display()))
}

/// The address in the start-up line `... serving MCP on http://ADDR/mcp; ...`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("serving MCP on http://").nth(1)?;
    rest.split("/mcp").next()?.parse().ok()
}

/// One HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The JSON-RPC messages in the body: the body itself for JSON, every `data:` event for SSE.
    pub fn messages(&self) -> Vec<Value> {
        let text = String::from_utf8_lossy(&self.body);
        if self
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("application/json"))
        {
            return serde_json::from_str(&text).into_iter().collect();
        }
        sse_messages(&text)
    }
}

/// The JSON payloads of the SSE events in `text` (events without JSON data, like priming events, are skipped).
fn sse_messages(text: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    for event in text.replace("\r\n", "\n").split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.strip_prefix(' ').unwrap_or(data))
            .collect();
        if let Ok(value) = serde_json::from_str::<Value>(&data.join("\n")) {
            messages.push(value);
        }
    }
    messages
}

/// Sends one request on a fresh connection and reads the response. An SSE body is read until it carries a
/// JSON-RPC response (a message with an `id` and a `result` or `error`) or the stream ends.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut response_headers = Vec::new();
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| anyhow!("bad header line {line:?}"))?;
        response_headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut response = HttpResponse {
        status,
        headers: response_headers,
        body: Vec::new(),
    };
    if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().context("bad content-length")?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        response.body = body;
    } else if response
        .header("transfer-encoding")
        .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"))
    {
        let is_sse = response
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/event-stream"));
        loop {
            let size_line = read_line(&mut reader)?;
            let size_text = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .with_context(|| format!("bad chunk size {size_line:?}"))?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            read_line(&mut reader)?;
            response.body.extend_from_slice(&chunk);
            // An SSE stream may stay open after the answer (keep-alive pings); the answer is all we wait for.
            if is_sse && has_rpc_response(&response.body) {
                break;
            }
        }
    } else {
        reader.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

fn has_rpc_response(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    // Only complete events count: the last one may still be arriving.
    let complete = match text.rfind("\n\n") {
        Some(end) => &text[..end],
        None => return false,
    };
    sse_messages(complete).iter().any(|message| {
        message.get("id").is_some()
            && (message.get("result").is_some() || message.get("error").is_some())
    })
}

fn read_line(reader: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    let n_bytes = reader.read_line(&mut line)?;
    if n_bytes == 0 {
        bail!("connection closed mid-response");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// An MCP client over the streamable HTTP transport: a session id after `initialize`, one POST per message.
pub struct McpHttpClient {
    addr: SocketAddr,
    authorization: String,
    session_id: Option<String>,
    protocol_version: Option<String>,
    next_id: u64,
}

impl McpHttpClient {
    /// A client presenting `token` as its bearer token.
    pub fn new(addr: SocketAddr, token: &str) -> McpHttpClient {
        McpHttpClient {
            addr,
            authorization: format!("Bearer {token}"),
            session_id: None,
            protocol_version: None,
            next_id: 1,
        }
    }

    /// POSTs one JSON-RPC message to `/mcp` with the MCP headers and `extra` headers.
    pub fn post(&self, message: &Value, extra: &[(&str, &str)]) -> anyhow::Result<HttpResponse> {
        let mut headers: Vec<(&str, &str)> = vec![
            ("Authorization", &self.authorization),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if let Some(session) = &self.session_id {
            headers.push(("Mcp-Session-Id", session));
        }
        if let Some(version) = &self.protocol_version {
            headers.push(("MCP-Protocol-Version", version));
        }
        headers.extend_from_slice(extra);
        send(self.addr, "POST", "/mcp", &headers, &message.to_string())
    }

    /// Sends a request and returns its `result`, failing on an HTTP or JSON-RPC error.
    pub fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(&message, &[])?;
        if response.status != 200 {
            bail!(
                "{method}: HTTP {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        if let Some(session) = response.header("mcp-session-id") {
            self.session_id = Some(session.to_string());
        }
        let reply = response
            .messages()
            .into_iter()
            .find(|m| m.get("id") == Some(&json!(id)))
            .with_context(|| format!("{method}: no JSON-RPC response in the body"))?;
        if let Some(error) = reply.get("error") {
            bail!("{method} failed: {error}");
        }
        reply.get("result").cloned().context("reply without result")
    }

    /// `initialize` with `protocol_version`, then `notifications/initialized`; returns the result.
    pub fn initialize(&mut self, protocol_version: &str) -> anyhow::Result<Value> {
        let result = self.request(
            "initialize",
            json!({
                "protocolVersion": protocol_version,
                "capabilities": {},
                "clientInfo": {"name": "e2e-http-client", "version": "1.0.0"}
            }),
        )?;
        self.protocol_version = Some(protocol_version.to_string());
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.post(&notification, &[])?;
        if response.status != 202 {
            bail!("notifications/initialized: HTTP {}", response.status);
        }
        Ok(result)
    }

    /// Calls a tool and returns its `structuredContent`.
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> anyhow::Result<Value> {
        let result = self.request("tools/call", json!({"name": name, "arguments": arguments}))?;
        result
            .get("structuredContent")
            .cloned()
            .context("tool result without structuredContent")
    }
}

/// The token file of the database in `isolated_env(root)`.
pub fn token_file(root: &Path) -> std::path::PathBuf {
    root.join("state").join("state.sqlite3.http-token")
}

/// The token the server generated into [`token_file`] for `isolated_env(root)`.
pub fn read_token(root: &Path) -> anyhow::Result<String> {
    let path = token_file(root);
    let token = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(token.trim().to_string())
}
