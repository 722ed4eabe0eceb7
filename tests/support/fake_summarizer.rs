//! A fake OpenAI-compatible chat-completions endpoint on 127.0.0.1 for the chat summarizer: every
//! `POST …/chat/completions` is recorded and answered as the test set it ([`SummaryReply`]). Stops when dropped.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::http_request::{read_request, HttpRequest};

/// How the fake answers.
#[derive(Debug, Clone)]
pub enum SummaryReply {
    /// A chat completion whose message is this text.
    Text(String),
    /// This HTTP status with a small JSON error body.
    Status(u16),
    /// Nothing for this long, then a completion (a slow endpoint).
    Slow(Duration),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct SummaryRequest {
    /// Request path.
    pub path: String,
    /// Lower-cased header names and values.
    pub headers: Vec<(String, String)>,
    /// The raw body as text (what left the server, for leak checks).
    pub raw_body: String,
    /// The parsed body (`Null` if not JSON).
    pub body: Value,
}

impl SummaryRequest {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    reply: Mutex<SummaryReply>,
    requests: Mutex<Vec<SummaryRequest>>,
    stop: AtomicBool,
}

/// The running fake.
pub struct FakeSummarizer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeSummarizer {
    /// Starts on a random 127.0.0.1 port, answering `reply`.
    pub fn start(reply: SummaryReply) -> FakeSummarizer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake summarizer on 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            reply: Mutex::new(reply),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        FakeSummarizer { addr, shared }
    }

    /// `http://127.0.0.1:PORT/v1`, the summarizer's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Changes the answer to the next requests.
    pub fn set_reply(&self, reply: SummaryReply) {
        *self.shared.reply.lock().unwrap_or_else(|p| p.into_inner()) = reply;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<SummaryRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FakeSummarizer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let Some(HttpRequest {
        path,
        headers,
        body,
    }) = read_request(&mut reader)?
    else {
        return Ok(());
    };
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(SummaryRequest {
            path,
            headers,
            body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
            raw_body,
        });
    let reply = shared
        .reply
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (status, body) = match reply {
        SummaryReply::Text(text) => (200, completion(&text)),
        SummaryReply::Status(status) => (
            status,
            json!({"error": {"message": "fake failure", "type": "server_error"}}),
        ),
        SummaryReply::Slow(delay) => {
            std::thread::sleep(delay);
            (200, completion("late summary"))
        }
    };
    let body = body.to_string();
    write!(
        writer,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    writer.flush()
}

fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake-summary-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })
}
