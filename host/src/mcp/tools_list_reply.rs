//! `tools/list` answered with the catalog's tools array as the build wrote it, written by the transport.
//!
//! The catalog is fixed for the life of a process, but it is 180 KB of JSON (every tool's input and output
//! schema). Serialising it per call cost more than the rest of the call, and so did handing rmcp an owned copy of
//! the tools (their `_meta` maps, annotations and strings) only to compare and drop it. So the stdio transport
//! and the handler split the work:
//!
//! - the transport marks each incoming `tools/list` request with [`CatalogByTransport`] and remembers its id;
//! - the handler, seeing the mark, returns the result's envelope with no tools (rmcp still fills in what the
//!   negotiated protocol version asks for: `resultType`, `ttlMs`, ...);
//! - the transport writes that envelope around the tools array serialised at start-up: into a pipe, the envelope's
//!   head copied and the constant rest (tools array, closing braces) by reference (`stdio::Output`); elsewhere as
//!   one vectored write.
//!
//! The handler never sees the mark on other transports (streamable HTTP), and the transport stops marking when it
//! holds [`MAX_MARKED`] unanswered requests, so a result without tools is only ever sent where the transport fills
//! it in.

use bytes::buf::Chain;
use bytes::{Buf, Bytes};
use rmcp::model::{ClientRequest, JsonRpcMessage, RequestId, ServerResult, Tool};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::RoleServer;
use serde_json::Value;

/// Marks a `tools/list` request whose tools the transport writes itself (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct CatalogByTransport;

/// How many marked requests may wait for their answer. A request rmcp never answers (a cancelled one) keeps its
/// id here; past this many the transport stops marking and the handler returns the tools itself.
const MAX_MARKED: usize = 64;

/// What closes a filled reply line after the tools array.
const TAIL: &[u8] = b"}}\n";

/// The catalog's tools array as JSON, and the requests marked for it.
#[derive(Debug)]
pub struct ToolsListReply {
    /// Constant for the life of the process, so a pipe may be handed its pages (see `stdio::Output`).
    tools_json: &'static [u8],
    marked: Vec<RequestId>,
}

/// One `tools/list` reply line: the envelope's head, then the tools array and [`TAIL`], both constant.
pub struct FilledReply {
    /// `{"jsonrpc":"2.0","id":..,"result":{..,"tools":`
    pub head: Bytes,
    /// The tools array, then the closing braces and newline; advancing it keeps both parts `'static`.
    pub rest: Chain<&'static [u8], &'static [u8]>,
}

impl FilledReply {
    /// The whole line as one buffer chain, for a writer that copies.
    pub fn into_buf(self) -> impl Buf {
        self.head.chain(self.rest)
    }
}

impl ToolsListReply {
    /// Answers with `tools_json`, a tools array as [`ToolsListReply::serialise`] writes it.
    pub fn new(tools_json: &'static [u8]) -> ToolsListReply {
        ToolsListReply {
            tools_json,
            marked: Vec::new(),
        }
    }

    /// The JSON of a tools array, kept for the life of the process (a process serialises one catalog, once).
    pub fn serialise(tools: &[Tool]) -> Result<&'static [u8], serde_json::Error> {
        Ok(Box::leak(serde_json::to_vec(tools)?.into_boxed_slice()))
    }

    /// Marks `message` with [`CatalogByTransport`] when it is a `tools/list` request.
    pub fn mark(&mut self, message: &mut RxJsonRpcMessage<RoleServer>) {
        let JsonRpcMessage::Request(request) = message else {
            return;
        };
        let ClientRequest::ListToolsRequest(list) = &mut request.request else {
            return;
        };
        if self.marked.len() >= MAX_MARKED {
            return;
        }
        list.extensions.insert(CatalogByTransport);
        self.marked.push(request.id.clone());
    }

    /// The whole line (with its `\n`) for `message` when it answers a marked request with an envelope to fill;
    /// `None` leaves `message` to be serialised as it is. Any answer to a marked id ends that mark.
    pub fn line_for(&mut self, message: &TxJsonRpcMessage<RoleServer>) -> Option<FilledReply> {
        let (id, list) = match message {
            JsonRpcMessage::Response(response) => match &response.result {
                ServerResult::ListToolsResult(list) => (&response.id, Some(list)),
                _ => (&response.id, None),
            },
            JsonRpcMessage::Error(error) => (error.id.as_ref()?, None),
            _ => return None,
        };
        let at = self.marked.iter().position(|marked| marked == id)?;
        self.marked.swap_remove(at);
        let list = list.filter(|list| list.tools.is_empty())?;
        // The envelope as rmcp set it, with the tools array left for last.
        let Ok(Value::Object(mut fields)) = serde_json::to_value(list) else {
            return None;
        };
        fields.remove("tools");
        let mut head = String::with_capacity(128);
        head.push_str(r#"{"jsonrpc":"2.0","id":"#);
        head.push_str(&serde_json::to_string(id).ok()?);
        head.push_str(r#","result":{"#);
        for (key, value) in &fields {
            head.push_str(&serde_json::to_string(key).ok()?);
            head.push(':');
            head.push_str(&serde_json::to_string(value).ok()?);
            head.push(',');
        }
        head.push_str(r#""tools":"#);
        Some(FilledReply {
            head: Bytes::from(head),
            rest: self.tools_json.chain(TAIL),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use rmcp::model::{
        ErrorData, JsonRpcError, JsonRpcRequest, JsonRpcResponse, JsonRpcVersion2_0,
        ListToolsResult, NumberOrString, RequestOptionalParam,
    };

    fn catalog() -> Vec<Tool> {
        let schema = |title: &str| {
            Arc::new(
                serde_json::json!({"type": "object", "title": title})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
        };
        vec![
            Tool::new("codex_a", "first", schema("a")),
            Tool::new("codex_b", "second \"quoted\"", schema("b")),
        ]
    }

    fn list_request(id: i64) -> RxJsonRpcMessage<RoleServer> {
        JsonRpcMessage::Request(JsonRpcRequest {
            jsonrpc: JsonRpcVersion2_0,
            id: NumberOrString::Number(id),
            request: ClientRequest::ListToolsRequest(RequestOptionalParam::default()),
        })
    }

    fn is_marked(message: &RxJsonRpcMessage<RoleServer>) -> bool {
        match message {
            JsonRpcMessage::Request(request) => match &request.request {
                ClientRequest::ListToolsRequest(list) => {
                    list.extensions.get::<CatalogByTransport>().is_some()
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn reply(id: i64, result: ListToolsResult) -> TxJsonRpcMessage<RoleServer> {
        JsonRpcMessage::Response(JsonRpcResponse {
            jsonrpc: JsonRpcVersion2_0,
            id: NumberOrString::Number(id),
            result: ServerResult::ListToolsResult(result),
        })
    }

    fn written(buf: impl Buf) -> Vec<u8> {
        let mut buf = buf;
        let mut out = Vec::new();
        while buf.has_remaining() {
            let chunk = buf.chunk();
            out.extend_from_slice(chunk);
            let n = chunk.len();
            buf.advance(n);
        }
        out
    }

    #[test]
    fn a_filled_envelope_is_what_serde_would_write_for_the_whole_list() {
        let tools = catalog();
        let mut cache = ToolsListReply::new(ToolsListReply::serialise(&tools).expect("serialise"));
        for (id, envelope) in [
            (7, ListToolsResult::with_all_items(Vec::new())),
            (
                8,
                ListToolsResult::with_all_items(Vec::new()).with_ttl_ms(5_000),
            ),
        ] {
            let mut request = list_request(id);
            cache.mark(&mut request);
            assert!(is_marked(&request));
            let mut whole = envelope.clone();
            whole.tools = tools.clone();
            let line = written(
                cache
                    .line_for(&reply(id, envelope))
                    .expect("a marked tools/list")
                    .into_buf(),
            );
            assert_eq!(line.last(), Some(&b'\n'));
            let filled: Value = serde_json::from_slice(&line).expect("JSON");
            let direct = serde_json::to_value(reply(id, whole)).expect("serialise");
            assert_eq!(filled, direct);
        }
        assert!(cache.marked.is_empty());
    }

    #[test]
    fn only_a_marked_id_answered_with_an_empty_envelope_is_filled() {
        let tools = catalog();
        let mut cache = ToolsListReply::new(ToolsListReply::serialise(&tools).expect("serialise"));
        // Not marked: left to serde, even when empty.
        assert!(cache
            .line_for(&reply(1, ListToolsResult::with_all_items(Vec::new())))
            .is_none());
        // Marked, but the handler returned the tools itself: left to serde, and the mark ends.
        cache.mark(&mut list_request(2));
        assert!(cache
            .line_for(&reply(2, ListToolsResult::with_all_items(tools.clone())))
            .is_none());
        assert!(cache.marked.is_empty());
        // Marked and answered with an error: the mark ends, nothing to fill.
        cache.mark(&mut list_request(3));
        let error = JsonRpcMessage::Error(JsonRpcError {
            jsonrpc: JsonRpcVersion2_0,
            id: Some(NumberOrString::Number(3)),
            error: ErrorData::internal_error("no", None),
        });
        assert!(cache.line_for(&error).is_none());
        assert!(cache.marked.is_empty());
    }

    #[test]
    fn marking_stops_while_too_many_marks_wait() {
        let mut cache =
            ToolsListReply::new(ToolsListReply::serialise(&catalog()).expect("serialise"));
        for id in 0..MAX_MARKED as i64 {
            cache.mark(&mut list_request(id));
        }
        let mut one_more = list_request(-1);
        cache.mark(&mut one_more);
        assert!(
            !is_marked(&one_more),
            "the handler returns the tools itself"
        );
        // An answer frees a place.
        assert!(cache
            .line_for(&reply(0, ListToolsResult::with_all_items(Vec::new())))
            .is_some());
        let mut next = list_request(-2);
        cache.mark(&mut next);
        assert!(is_marked(&next));
    }
}
