//! Typed helpers for the app-server methods the engine uses.
//!
//! Params are built as JSON with the field names of the pinned protocol (checked against its generated JSON
//! schema by the conformance test); replies are read leniently: unknown fields are ignored, and only the ids
//! we need are required.

use serde_json::{json, Value};

use super::AppServerError;

/// Text input item.
pub fn text_input(text: &str) -> Value {
    json!({"type": "text", "text": text, "text_elements": []})
}

/// `sandbox` mode name to the `sandboxPolicy` object `turn/start` takes.
pub fn sandbox_policy(mode: &str) -> Option<Value> {
    match mode {
        "read-only" => Some(json!({"type": "readOnly"})),
        "workspace-write" => Some(json!({"type": "workspaceWrite"})),
        "danger-full-access" => Some(json!({"type": "dangerFullAccess"})),
        _ => None,
    }
}

/// The thread id in a `thread/start`, `thread/fork` or `thread/resume` reply.
pub fn thread_id_of(method: &str, reply: &Value) -> Result<String, AppServerError> {
    reply
        .pointer("/thread/id")
        .or_else(|| reply.get("threadId"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AppServerError::BadReply {
            method: method.to_string(),
            message: "no thread id".into(),
        })
}

/// The turn id in a `turn/start`, `turn/steer` or `review/start` reply.
pub fn turn_id_of(method: &str, reply: &Value) -> Result<String, AppServerError> {
    reply
        .pointer("/turn/id")
        .or_else(|| reply.get("turnId"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AppServerError::BadReply {
            method: method.to_string(),
            message: "no turn id".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_either_shape() {
        assert_eq!(
            thread_id_of("thread/start", &json!({"thread": {"id": "t1"}})).ok(),
            Some("t1".to_string())
        );
        assert_eq!(
            turn_id_of("turn/steer", &json!({"turnId": "u1"})).ok(),
            Some("u1".to_string())
        );
        assert!(turn_id_of("turn/start", &json!({})).is_err());
    }
}
