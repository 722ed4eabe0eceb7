//! The stdio transport: newline-delimited JSON-RPC like rmcp's own, but every line that carries an `id` gets a
//! reply.
//!
//! rmcp drops a line it cannot parse without a word (its choice, to avoid error storms with misbehaving peers),
//! which leaves a client waiting forever for a request whose JSON is valid text but not valid Unicode: a lone
//! surrogate escape (`"\ud800"`) is legal JSON syntax that serde rejects. This transport decodes leniently
//! instead: lone surrogate escapes become U+FFFD and invalid UTF-8 bytes become U+FFFD, and the line is then
//! handled normally. What still does not decode is answered: a line that is not JSON gets the JSON-RPC parse
//! error (-32700, `id: null`); JSON that is not a valid message gets invalid request (-32600), with the line's
//! `id` when it has one (rmcp itself answers a well-formed request for a method it does not know).

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::sync::Arc;

use futures::StreamExt;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio_util::bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, Decoder, FramedRead};

use super::stdio::Output;
use super::tools_list_reply::{FilledReply, ToolsListReply};

/// JSON-RPC: the line is not JSON.
const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the JSON is not a valid request object.
const INVALID_REQUEST: i64 = -32600;

/// The server side of MCP over this process's stdin and stdout (on the reactor when they are pipes or sockets,
/// see [`super::stdio`]).
pub fn stdio() -> LenientTransport<super::stdio::Input> {
    let (input, output) = super::stdio::streams();
    LenientTransport::new(input, output)
}

/// One incoming line, or the note that one was too long to keep.
enum Line {
    /// The bytes of a line, without its `\n`.
    Text(Bytes),
    /// A line longer than the limit, dropped.
    Oversized,
}

/// Splits the input on `\n` with a length limit. Unlike the plain delimiter codec it reports an oversized line
/// as an item rather than an error, because `FramedRead` ends the stream after the first decoder error.
struct LineCodec(AnyDelimiterCodec);

impl Decoder for LineCodec {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, io::Error> {
        lift(self.0.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, io::Error> {
        lift(self.0.decode_eof(buf))
    }
}

/// Maps the delimiter codec's result to a [`Line`], keeping only real I/O errors as errors.
fn lift(result: Result<Option<Bytes>, AnyDelimiterCodecError>) -> Result<Option<Line>, io::Error> {
    match result {
        Ok(line) => Ok(line.map(Line::Text)),
        Err(AnyDelimiterCodecError::MaxChunkLengthExceeded) => Ok(Some(Line::Oversized)),
        Err(AnyDelimiterCodecError::Io(err)) => Err(err),
    }
}

/// rmcp's [`Transport`] over any reader and stdout, decoding leniently (see the module docs).
pub struct LenientTransport<R> {
    lines: FramedRead<R, LineCodec>,
    /// Replies and error answers share one writer; a whole line is written under the lock so lines never interleave.
    writer: Arc<Mutex<Option<Output>>>,
    /// The catalog's tools array and the `tools/list` requests to answer with it.
    tools_list: Option<ToolsListReply>,
}

impl<R: AsyncRead> LenientTransport<R> {
    /// A transport reading lines from `read` and writing them to `write`.
    pub fn new(read: R, write: Output) -> Self {
        let codec = AnyDelimiterCodec::new_with_max_length(
            b"\n".to_vec(),
            b"\n".to_vec(),
            DEFAULT_MAX_LINE_LENGTH,
        );
        LenientTransport {
            lines: FramedRead::new(read, LineCodec(codec)),
            writer: Arc::new(Mutex::new(Some(write))),
            tools_list: None,
        }
    }

    /// Answers `tools/list` with the catalog `reply` serialised at start-up (see [`ToolsListReply`]).
    pub fn with_tools_list(mut self, reply: ToolsListReply) -> Self {
        self.tools_list = Some(reply);
        self
    }
}

/// Writes one line (a `\n` is appended) to the shared writer.
async fn write_line(writer: &Mutex<Option<Output>>, line: Vec<u8>) -> io::Result<()> {
    let mut guard = writer.lock().await;
    let out = open(&mut guard)?;
    out.write_all_buf(&mut Bytes::from(line).chain(&b"\n"[..]))
        .await?;
    out.flush().await
}

/// Writes a `tools/list` reply line: its constant part by reference where the writer takes it so, else the whole
/// line in one vectored write.
async fn write_filled(writer: &Mutex<Option<Output>>, reply: FilledReply) -> io::Result<()> {
    let mut guard = writer.lock().await;
    let out = open(&mut guard)?;
    if !out.by_reference() {
        out.write_all_buf(&mut reply.into_buf()).await?;
        return out.flush().await;
    }
    let FilledReply { mut head, mut rest } = reply;
    out.write_all_buf(&mut head).await?;
    while rest.has_remaining() {
        let parts = [*rest.first_ref(), *rest.last_ref()];
        let written = std::future::poll_fn(|cx| out.poll_write_static(cx, &parts)).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        rest.advance(written);
    }
    out.flush().await
}

/// The writer, unless the transport was closed.
fn open(writer: &mut Option<Output>) -> io::Result<&mut Output> {
    writer
        .as_mut()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "transport closed"))
}

impl<R> Transport<RoleServer> for LenientTransport<R>
where
    R: AsyncRead + Send + Unpin,
{
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), io::Error>> + Send + 'static {
        let writer = self.writer.clone();
        let filled = self
            .tools_list
            .as_mut()
            .and_then(|reply| reply.line_for(&item));
        async move {
            match filled {
                Some(reply) => write_filled(&writer, reply).await,
                None => {
                    write_line(
                        &writer,
                        serde_json::to_vec(&item).map_err(io::Error::other)?,
                    )
                    .await
                }
            }
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        // `receive` is polled inside a `select!`; `FramedRead` keeps a partial line across cancellations.
        loop {
            let line = match self.lines.next().await? {
                Ok(Line::Text(line)) => line,
                Ok(Line::Oversized) => {
                    tracing::error!(
                        max = DEFAULT_MAX_LINE_LENGTH,
                        "incoming line exceeded the maximum length, discarding it"
                    );
                    continue;
                }
                Err(err) => {
                    tracing::error!(error = %err, "reading stdin failed");
                    return None;
                }
            };
            match decode_line(&line) {
                Decoded::Message(mut message) => {
                    if let Some(reply) = self.tools_list.as_mut() {
                        reply.mark(&mut message);
                    }
                    return Some(*message);
                }
                Decoded::Skip => {}
                Decoded::Answer(reply) => {
                    // Spawned, not awaited: a cancelled `receive` must not lose the answer halfway.
                    let writer = self.writer.clone();
                    tokio::spawn(async move {
                        if let Err(err) = write_line(&writer, reply.to_string().into_bytes()).await
                        {
                            tracing::warn!(error = %err, "could not answer an undecodable line");
                        }
                    });
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), io::Error> {
        let taken = self.writer.lock().await.take();
        if let Some(mut out) = taken {
            out.shutdown().await?;
        }
        Ok(())
    }
}

/// What one line turned into.
enum Decoded {
    /// A message for rmcp.
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Nothing to do (blank line, or a notification nobody answers).
    Skip,
    /// A JSON-RPC error to write back.
    Answer(Value),
}

/// Decodes one line leniently (see the module docs).
fn decode_line(raw: &[u8]) -> Decoded {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Skip;
    }
    let text = String::from_utf8_lossy(raw);
    let text = replace_lone_surrogates(&text);
    let error = match serde_json::from_str::<RxJsonRpcMessage<RoleServer>>(&text) {
        Ok(message) => return Decoded::Message(Box::new(message)),
        Err(error) => error,
    };
    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        tracing::debug!(%error, "answering a line that is not JSON with a parse error");
        return Decoded::Answer(error_reply(Value::Null, PARSE_ERROR, "Parse error"));
    };
    let method = value.get("method").and_then(Value::as_str);
    let id = value
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64());
    match (id, method) {
        // A notification is never answered, even a malformed one (JSON-RPC 2.0 §4.1).
        (None, Some(method)) => {
            tracing::debug!(method, %error, "dropping an undecodable notification");
            Decoded::Skip
        }
        (id, _) => Decoded::Answer(error_reply(
            id.cloned().unwrap_or(Value::Null),
            INVALID_REQUEST,
            &format!("Invalid Request: {error}"),
        )),
    }
}

/// A JSON-RPC error response.
fn error_reply(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The 16-bit code unit of a `\uXXXX` escape starting at `at`, if there is one.
fn escape_unit(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

/// `text` with every `\uD800`-`\uDFFF` escape that is not half of a valid pair replaced by `\uFFFD`.
///
/// Escapes are only meaningful inside JSON strings, and a backslash outside one is a syntax error anyway, so the
/// scan needs no string state: it walks escape by escape so `\\ud800` (an escaped backslash) is left alone.
pub fn replace_lone_surrogates(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        if bytes[at] != b'\\' {
            at += 1;
            continue;
        }
        let lone = match escape_unit(bytes, at) {
            Some(0xD800..=0xDBFF) => {
                if matches!(escape_unit(bytes, at + 6), Some(0xDC00..=0xDFFF)) {
                    at += 12;
                    continue;
                }
                true
            }
            Some(0xDC00..=0xDFFF) => true,
            Some(_) => {
                at += 6;
                continue;
            }
            None => false,
        };
        if !lone {
            // Any other escape is two bytes; serde reports the malformed ones.
            at += 2;
            continue;
        }
        let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buffer.push_str(&text[copied..at]);
        buffer.push_str("\\ufffd");
        at += 6;
        copied = at;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buffer) => {
            buffer.push_str(&text[copied..]);
            Cow::Owned(buffer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        let cases: &[(&str, &str)] = &[
            (r#"{"a":"\ud800"}"#, r#"{"a":"\ufffd"}"#),
            (r#"{"a":"x\uDC00y"}"#, r#"{"a":"x\ufffdy"}"#),
            // A high surrogate followed by something other than a low one.
            (r#"["\ud800\u0041"]"#, r#"["\ufffd\u0041"]"#),
            (r#"["\udbff\ud800\udc00"]"#, r#"["\ufffd\ud800\udc00"]"#),
            (r#"["\ud800"#, r#"["\ufffd"#),
            // Valid pairs, escaped backslashes and other escapes are untouched.
            (r#"["\ud83d\ude00"]"#, r#"["\ud83d\ude00"]"#),
            (r#"["\\ud800"]"#, r#"["\\ud800"]"#),
            (r#"["\n\"\u00e9ü"]"#, r#"["\n\"\u00e9ü"]"#),
        ];
        for (input, expected) in cases {
            assert_eq!(replace_lone_surrogates(input), *expected, "{input}");
        }
    }

    fn answer(line: &str) -> Value {
        match decode_line(line.as_bytes()) {
            Decoded::Answer(reply) => reply,
            Decoded::Message(message) => panic!("{line} decoded to {message:?}"),
            Decoded::Skip => panic!("{line} was skipped"),
        }
    }

    #[test]
    fn every_line_with_an_id_is_decoded_or_answered() {
        let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"codex_health_summary","arguments":{"x":"\ud800"}}}"#;
        assert!(matches!(decode_line(call.as_bytes()), Decoded::Message(_)));
        let old_version = answer(r#"{"jsonrpc":"1.0","id":"a","method":"tools/call","params":{}}"#);
        assert_eq!(old_version["id"], "a");
        assert_eq!(old_version["error"]["code"], INVALID_REQUEST);
        let no_method = answer(r#"{"jsonrpc":"2.0","id":3}"#);
        assert_eq!(no_method["error"]["code"], INVALID_REQUEST);
        assert_eq!(no_method["id"], 3);
        let garbage = answer("{this is not json");
        assert_eq!(garbage["error"]["code"], PARSE_ERROR);
        assert!(garbage.get("id").is_some_and(Value::is_null));
        assert!(matches!(decode_line(b"  \r"), Decoded::Skip));
        assert!(matches!(
            decode_line(br#"{"jsonrpc":"2.0","method":"notifications/x","params":5}"#),
            Decoded::Skip
        ));
    }

    /// A reply line through a real pipe, read back by another thread, for each way `write_filled` writes.
    fn through_a_pipe(splice: bool, tools: &'static [u8]) -> Vec<u8> {
        use std::io::Read;
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let read = std::thread::spawn(move || {
            let mut line = Vec::new();
            reader.read_to_end(&mut line).map(|_| line)
        });
        runtime.block_on(async {
            let pipe = tokio::net::unix::pipe::Sender::from_owned_fd(writer.into())
                .expect("pipe on the reactor");
            let writer = Mutex::new(Some(Output::Pipe { pipe, splice }));
            assert_eq!(
                writer.lock().await.as_ref().map(Output::by_reference),
                Some(splice)
            );
            let reply = FilledReply {
                head: Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":"#),
                rest: Buf::chain(tools, &b"}}\n"[..]),
            };
            write_filled(&writer, reply).await.expect("written");
            // Still by reference: the kernel took the pages rather than refusing `vmsplice`.
            assert_eq!(
                writer.lock().await.as_ref().map(Output::by_reference),
                Some(splice)
            );
            // Dropping the writer closes the pipe, which ends the reader.
        });
        read.join().expect("reader").expect("read")
    }

    #[test]
    fn a_tools_list_line_through_a_pipe_arrives_whole_by_reference_or_copied() {
        // Larger than a default pipe (64 KiB), so the write waits for the reader at least once; no two
        // neighbouring 4 KiB pages alike, so a page out of place would show.
        let tools: Vec<u8> = (0..300_000u32)
            .map(|at| b'a' + ((at / 4096 + at) % 26) as u8)
            .collect();
        let tools: &'static [u8] = Box::leak(tools.into_boxed_slice());
        let mut expected = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":"#.to_vec();
        expected.extend_from_slice(tools);
        expected.extend_from_slice(b"}}\n");
        for splice in [true, false] {
            assert!(
                through_a_pipe(splice, tools) == expected,
                "splice {splice}: the line read back differs"
            );
        }
    }
}
