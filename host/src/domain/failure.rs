//! Why something failed, as stored in a row (`lastError`, a workflow's or action's `error`) and shown to clients:
//! the seed's `CODEX_*` codes that the engine and the store write. `mcp::error` maps each to its wire code, so a
//! stored code and a tool error code can never disagree.

use serde_json::{json, Map, Value};

/// The failure codes stored in rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// No app-server process can be had, or its answer never came (the call may have been sent).
    AppServerUnavailable,
    /// An app-server request timed out.
    Timeout,
    /// A call to app-server failed, or a turn it ran ended badly.
    SendFailed,
    /// The thread has an active turn or a pending interaction.
    Busy,
    /// The state database stayed locked.
    StateBusy,
    /// The state database could not be read.
    InternalStateReadError,
    /// The request was malformed.
    InvalidArgument,
    /// A policy plugin denied the action.
    PolicyDenied,
    /// A plugin failed (trap, budget, limit, bad output).
    PluginFailed,
}

impl FailureCode {
    /// The seed's code.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::AppServerUnavailable => "CODEX_APP_SERVER_UNAVAILABLE",
            FailureCode::Timeout => "CODEX_TIMEOUT",
            FailureCode::SendFailed => "CODEX_SEND_FAILED",
            FailureCode::Busy => "CODEX_BUSY",
            FailureCode::StateBusy => "CODEX_STATE_BUSY",
            FailureCode::InternalStateReadError => "CODEX_INTERNAL_STATE_READ_ERROR",
            FailureCode::InvalidArgument => "INVALID_ARGUMENT",
            FailureCode::PolicyDenied => "CODEX_POLICY_DENIED",
            FailureCode::PluginFailed => "CODEX_PLUGIN_FAILED",
        }
    }

    /// Whether the same request may succeed later unchanged, unless the failure says otherwise.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            FailureCode::AppServerUnavailable
                | FailureCode::Timeout
                | FailureCode::Busy
                | FailureCode::StateBusy
                | FailureCode::InternalStateReadError
        )
    }

    /// `{code, message, retryable}` with the code's own retryability.
    pub fn failure(self, message: impl Into<String>) -> Value {
        self.failure_with(message, self.retryable(), Map::new())
    }

    /// `{code, message, retryable}` plus `extra` fields (evidence such as an intent id).
    pub fn failure_with(
        self,
        message: impl Into<String>,
        retryable: bool,
        extra: Map<String, Value>,
    ) -> Value {
        let mut fields = Map::with_capacity(extra.len() + 3);
        fields.insert("code".into(), json!(self.as_str()));
        fields.insert("message".into(), json!(message.into()));
        fields.insert("retryable".into(), json!(retryable));
        fields.extend(extra);
        Value::Object(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_carries_its_code_and_extra_evidence() {
        let mut extra = Map::new();
        extra.insert("intentId".into(), json!("int_1"));
        let failure = FailureCode::AppServerUnavailable.failure_with("lost", false, extra);
        assert_eq!(
            failure,
            json!({"code": "CODEX_APP_SERVER_UNAVAILABLE", "message": "lost", "retryable": false, "intentId": "int_1"})
        );
        assert_eq!(
            FailureCode::Timeout.failure("slow")["retryable"],
            json!(true)
        );
    }
}
