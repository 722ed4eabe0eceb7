//! The `tools/list` reply with its tools serialised once.
//!
//! The catalog is fixed for the life of a process, but it is 180 KB of JSON (every tool's input and output
//! schema): serialising it again for every `tools/list` cost more than the rest of the call. The transport hands
//! each outgoing `tools/list` result here first; when its tools are the catalog's own (the same schema objects,
//! which is what `McpServer::list_tools` returns), the line is the result's envelope (whatever rmcp set for the
//! negotiated protocol version: `resultType`, `ttlMs`, ...) around the tools array serialised at start-up.
//! Anything else (another tool list, a changed tool) is serialised normally.

use std::sync::Arc;

use rmcp::model::{JsonRpcMessage, ListToolsResult, ServerResult, Tool};
use rmcp::service::TxJsonRpcMessage;
use rmcp::RoleServer;
use serde_json::Value;

/// The catalog and its tools array as JSON.
#[derive(Debug)]
pub struct ToolsListReply {
    tools: Arc<Vec<Tool>>,
    tools_json: String,
}

impl ToolsListReply {
    /// Serialises `tools` once.
    pub fn new(tools: Arc<Vec<Tool>>) -> Result<ToolsListReply, serde_json::Error> {
        let tools_json = serde_json::to_string(&*tools)?;
        Ok(ToolsListReply { tools, tools_json })
    }

    /// The JSON line (without `\n`) for `message` when it is a `tools/list` result carrying this catalog.
    pub fn line_for(&self, message: &TxJsonRpcMessage<RoleServer>) -> Option<Vec<u8>> {
        let JsonRpcMessage::Response(response) = message else {
            return None;
        };
        let ServerResult::ListToolsResult(list) = &response.result else {
            return None;
        };
        if !self.is_catalog(&list.tools) {
            return None;
        }
        let envelope = ListToolsResult {
            result_type: list.result_type.clone(),
            meta: list.meta.clone(),
            next_cursor: list.next_cursor.clone(),
            ttl_ms: list.ttl_ms,
            cache_scope: list.cache_scope,
            tools: Vec::new(),
        };
        let Ok(Value::Object(mut fields)) = serde_json::to_value(&envelope) else {
            return None;
        };
        fields.remove("tools");
        let id = serde_json::to_string(&response.id).ok()?;
        let mut line = String::with_capacity(self.tools_json.len() + 128);
        line.push_str(r#"{"jsonrpc":"2.0","id":"#);
        line.push_str(&id);
        line.push_str(r#","result":{"#);
        for (key, value) in &fields {
            line.push_str(&serde_json::to_string(key).ok()?);
            line.push(':');
            line.push_str(&serde_json::to_string(value).ok()?);
            line.push(',');
        }
        line.push_str(r#""tools":"#);
        line.push_str(&self.tools_json);
        line.push_str("}}");
        Some(line.into_bytes())
    }

    /// Whether `tools` are the catalog's: the same names and the very same schema objects, in order.
    fn is_catalog(&self, tools: &[Tool]) -> bool {
        tools.len() == self.tools.len()
            && tools.iter().zip(self.tools.iter()).all(|(sent, ours)| {
                sent.name == ours.name
                    && Arc::ptr_eq(&sent.input_schema, &ours.input_schema)
                    && match (&sent.output_schema, &ours.output_schema) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    }
                    && sent.description == ours.description
                    && sent.annotations == ours.annotations
                    && sent.meta == ours.meta
                    && sent.title == ours.title
                    && sent.icons == ours.icons
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{JsonRpcResponse, JsonRpcVersion2_0, NumberOrString};

    fn catalog() -> Arc<Vec<Tool>> {
        let schema = |title: &str| {
            Arc::new(
                serde_json::json!({"type": "object", "title": title})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
        };
        Arc::new(vec![
            Tool::new("codex_a", "first", schema("a")),
            Tool::new("codex_b", "second \"quoted\"", schema("b")),
        ])
    }

    fn reply(id: i64, result: ListToolsResult) -> TxJsonRpcMessage<RoleServer> {
        JsonRpcMessage::Response(JsonRpcResponse {
            jsonrpc: JsonRpcVersion2_0,
            id: NumberOrString::Number(id),
            result: ServerResult::ListToolsResult(result),
        })
    }

    #[test]
    fn the_cached_line_is_what_serde_would_write() {
        let tools = catalog();
        let cache = ToolsListReply::new(tools.clone()).expect("serialise");
        for result in [
            ListToolsResult::with_all_items((*tools).clone()),
            ListToolsResult::with_all_items((*tools).clone()).with_ttl_ms(5_000),
        ] {
            let message = reply(7, result);
            let line = cache
                .line_for(&message)
                .expect("a tools/list of the catalog");
            let cached: Value = serde_json::from_slice(&line).expect("JSON");
            let direct = serde_json::to_value(&message).expect("serialise");
            assert_eq!(cached, direct);
        }
    }

    #[test]
    fn another_list_is_left_to_serde() {
        let cache = ToolsListReply::new(catalog()).expect("serialise");
        // Equal content but other schema objects: not provably the catalog.
        assert!(cache
            .line_for(&reply(
                1,
                ListToolsResult::with_all_items((*catalog()).clone())
            ))
            .is_none());
        let mut changed = (*cache.tools).clone();
        changed[0].description = Some("changed".into());
        assert!(cache
            .line_for(&reply(1, ListToolsResult::with_all_items(changed)))
            .is_none());
        let mut shorter = (*cache.tools).clone();
        shorter.pop();
        assert!(cache
            .line_for(&reply(1, ListToolsResult::with_all_items(shorter)))
            .is_none());
    }
}
