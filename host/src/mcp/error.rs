//! The one error shape every tool returns: `{ok:false, error:{code, message, details, retryable}}`.
//!
//! Domain modules return their own `thiserror` enums; this module is the only place that maps them to the
//! seed's `CODEX_*` codes, so a code can't mean two things in two tools.

use serde_json::{json, Map, Value};

use crate::domain::failure::FailureCode;

/// The seed's error codes, kept verbatim so clients that branch on them keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Bad input: schema violation, unknown tool, unknown id, path outside the allowed roots.
    InvalidArgument,
    /// The project id, name or path is unknown.
    ProjectNotFound,
    /// The thread is unknown.
    ThreadNotFound,
    /// The turn is unknown.
    TurnNotFound,
    /// A chat was read that has no transcript yet.
    TranscriptNotFound,
    /// The same prompt is already active in the same scope.
    DuplicatePromptActive,
    /// A `client_request_id` was reused with a different payload.
    IdempotencyKeyReused,
    /// The thread has an active turn or a pending interaction.
    Busy,
    /// The state database stayed locked.
    StateBusy,
    /// An app-server request or a restart timed out.
    Timeout,
    /// No app-server process can be had.
    AppServerUnavailable,
    /// The interaction id is unknown.
    PendingInteractionNotFound,
    /// The interaction is no longer answerable.
    PendingInteractionUnavailable,
    /// A call to app-server failed.
    SendFailed,
    /// Codex's own state could not be read.
    InternalStateReadError,
    /// The chat summary failed while `summarizer.required` is set.
    SummaryFailed,
    /// A plugin failed (trap, budget, limit, bad output).
    PluginFailed,
    /// This process refuses writes because it runs inside a Codex session we started (recursion guard).
    RecursionGuard,
    /// A policy plugin denied the action.
    PolicyDenied,
    /// Anything unexpected inside this server.
    Internal,
}

impl ErrorCode {
    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::ProjectNotFound => "CODEX_PROJECT_NOT_FOUND",
            ErrorCode::ThreadNotFound => "CODEX_THREAD_NOT_FOUND",
            ErrorCode::TurnNotFound => "CODEX_TURN_NOT_FOUND",
            ErrorCode::TranscriptNotFound => "CODEX_TRANSCRIPT_NOT_FOUND",
            ErrorCode::DuplicatePromptActive => "CODEX_DUPLICATE_PROMPT_ACTIVE",
            ErrorCode::IdempotencyKeyReused => "CODEX_IDEMPOTENCY_KEY_REUSED",
            ErrorCode::Busy => "CODEX_BUSY",
            ErrorCode::StateBusy => "CODEX_STATE_BUSY",
            ErrorCode::Timeout => "CODEX_TIMEOUT",
            ErrorCode::AppServerUnavailable => "CODEX_APP_SERVER_UNAVAILABLE",
            ErrorCode::PendingInteractionNotFound => "CODEX_PENDING_INTERACTION_NOT_FOUND",
            ErrorCode::PendingInteractionUnavailable => "CODEX_PENDING_INTERACTION_UNAVAILABLE",
            ErrorCode::SendFailed => "CODEX_SEND_FAILED",
            ErrorCode::InternalStateReadError => "CODEX_INTERNAL_STATE_READ_ERROR",
            ErrorCode::SummaryFailed => "CODEX_SUMMARY_FAILED",
            ErrorCode::PluginFailed => "CODEX_PLUGIN_FAILED",
            ErrorCode::RecursionGuard => "CODEX_RECURSION_GUARD",
            ErrorCode::PolicyDenied => "CODEX_POLICY_DENIED",
            ErrorCode::Internal => "CODEX_INTERNAL_ERROR",
        }
    }

    /// The code with this wire name.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        const ALL: [ErrorCode; 20] = [
            ErrorCode::InvalidArgument,
            ErrorCode::ProjectNotFound,
            ErrorCode::ThreadNotFound,
            ErrorCode::TurnNotFound,
            ErrorCode::TranscriptNotFound,
            ErrorCode::DuplicatePromptActive,
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::Busy,
            ErrorCode::StateBusy,
            ErrorCode::Timeout,
            ErrorCode::AppServerUnavailable,
            ErrorCode::PendingInteractionNotFound,
            ErrorCode::PendingInteractionUnavailable,
            ErrorCode::SendFailed,
            ErrorCode::InternalStateReadError,
            ErrorCode::SummaryFailed,
            ErrorCode::PluginFailed,
            ErrorCode::RecursionGuard,
            ErrorCode::PolicyDenied,
            ErrorCode::Internal,
        ];
        ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// Whether the same call may succeed later unchanged (the seed's table).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::TranscriptNotFound
                | ErrorCode::Busy
                | ErrorCode::StateBusy
                | ErrorCode::Timeout
                | ErrorCode::AppServerUnavailable
                | ErrorCode::PendingInteractionUnavailable
                | ErrorCode::InternalStateReadError
                | ErrorCode::SummaryFailed
        )
    }
}

impl From<FailureCode> for ErrorCode {
    fn from(code: FailureCode) -> ErrorCode {
        match code {
            FailureCode::AppServerUnavailable => ErrorCode::AppServerUnavailable,
            FailureCode::Timeout => ErrorCode::Timeout,
            FailureCode::SendFailed => ErrorCode::SendFailed,
            FailureCode::Busy => ErrorCode::Busy,
            FailureCode::StateBusy => ErrorCode::StateBusy,
            FailureCode::InternalStateReadError => ErrorCode::InternalStateReadError,
            FailureCode::InvalidArgument => ErrorCode::InvalidArgument,
            FailureCode::PolicyDenied => ErrorCode::PolicyDenied,
            FailureCode::PluginFailed => ErrorCode::PluginFailed,
        }
    }
}

/// A tool failure, rendered as the seed's error payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// A human-readable sentence.
    pub message: String,
    /// Structured context (ids, the offending field, ...).
    pub details: Map<String, Value>,
    /// Overrides the code's default retryability when set.
    pub retryable: Option<bool>,
}

impl ToolError {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ToolError {
            code,
            message: message.into(),
            details: Map::new(),
            retryable: None,
        }
    }

    /// `INVALID_ARGUMENT` naming the field at fault.
    pub fn invalid_argument(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let text = if field.is_empty() {
            message.clone()
        } else {
            format!("{field}: {message}")
        };
        ToolError::new(ErrorCode::InvalidArgument, text).with_detail("field", json!(field))
    }

    /// Adds one detail entry.
    pub fn with_detail(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }

    /// The error a `{code, message, details, retryable}` object describes (as stored by another process); an
    /// unknown code becomes `CODEX_INTERNAL_ERROR` with the original code in the details.
    pub fn from_error_object(error: &Value) -> ToolError {
        let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
        let mut out = match ErrorCode::parse(text("code")) {
            Some(code) => ToolError::new(code, text("message")),
            None => ToolError::new(ErrorCode::Internal, text("message"))
                .with_detail("originalCode", json!(text("code"))),
        };
        if let Some(details) = error.get("details").and_then(Value::as_object) {
            out.details.extend(details.clone());
        }
        out.retryable = error.get("retryable").and_then(Value::as_bool);
        out
    }

    /// The `{ok:false, error:{...}}` payload.
    pub fn to_payload(&self) -> Value {
        json!({
            "ok": false,
            "error": {
                "code": self.code.as_str(),
                "message": self.message,
                "details": Value::Object(self.details.clone()),
                "retryable": self.retryable.unwrap_or_else(|| self.code.retryable()),
            }
        })
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ToolError {}

impl From<crate::appserver::AppServerError> for ToolError {
    fn from(err: crate::appserver::AppServerError) -> Self {
        use crate::appserver::AppServerError as E;
        let code = match &err {
            // An answer addressed to a process that is gone: for a tool, the interaction is what is unavailable.
            E::StaleGeneration { .. } => ErrorCode::PendingInteractionUnavailable,
            // The rest as rows record them. (A process that died under the request is retryable below: it
            // may work on the next generation.)
            _ => err.failure_code().into(),
        };
        let mut tool_error = ToolError::new(code, err.to_string());
        match &err {
            E::Rpc {
                method, code, data, ..
            } => {
                tool_error = tool_error
                    .with_detail("method", json!(method))
                    .with_detail("rpcCode", json!(code))
                    .with_detail("rpcData", data.as_deref().cloned().unwrap_or(Value::Null));
            }
            E::Timeout { method, timeout_ms } => {
                tool_error = tool_error
                    .with_detail("method", json!(method))
                    .with_detail("timeoutMs", json!(timeout_ms));
            }
            E::Busy { active_turns } => {
                tool_error = tool_error
                    .with_detail("status", json!("active_turns"))
                    .with_detail("activeTurns", json!(active_turns));
            }
            E::ProcessExited { generation, .. } => {
                tool_error = tool_error.with_detail("processGeneration", json!(generation));
                tool_error.retryable = Some(true);
            }
            _ => {}
        }
        tool_error
    }
}

impl From<crate::store::StoreError> for ToolError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        if err.is_busy() {
            return ToolError::new(ErrorCode::StateBusy, err.to_string());
        }
        match &err {
            E::IdempotencyKeyReused {
                operation_id,
                differing_fields,
            } => ToolError::new(ErrorCode::IdempotencyKeyReused, err.to_string())
                .with_detail("existingOperationId", json!(operation_id))
                .with_detail("differingFields", json!(differing_fields)),
            E::DuplicatePromptActive(found) => {
                let mut tool_error =
                    ToolError::new(ErrorCode::DuplicatePromptActive, err.to_string());
                if let Ok(Value::Object(details)) = serde_json::to_value(found.as_ref()) {
                    for (key, value) in details {
                        tool_error = tool_error.with_detail(&key, value);
                    }
                }
                tool_error
            }
            E::NotFound { kind, id } => match *kind {
                "interaction" => {
                    ToolError::new(ErrorCode::PendingInteractionNotFound, err.to_string())
                        .with_detail("interactionId", json!(id))
                }
                "turn" => ToolError::new(ErrorCode::TurnNotFound, err.to_string())
                    .with_detail("turnId", json!(id)),
                _ => ToolError::invalid_argument(&format!("{kind}_id"), err.to_string()),
            },
            E::InteractionUnavailable {
                interaction_id,
                status,
            } => ToolError::new(ErrorCode::PendingInteractionUnavailable, err.to_string())
                .with_detail("interactionId", json!(interaction_id))
                .with_detail("status", json!(status)),
            E::InvalidArgument { field, message } => {
                ToolError::invalid_argument(field, message.clone())
            }
            E::InvalidTransition {
                operation_id, from, ..
            } => ToolError::new(ErrorCode::Busy, err.to_string())
                .with_detail("operationId", json!(operation_id))
                .with_detail("status", json!(from)),
            _ => ToolError::new(ErrorCode::InternalStateReadError, err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_seed_shape() {
        let payload = ToolError::invalid_argument("limit", "must be at most 50").to_payload();
        assert_eq!(payload["ok"], json!(false));
        assert_eq!(payload["error"]["code"], json!("INVALID_ARGUMENT"));
        assert_eq!(payload["error"]["retryable"], json!(false));
        assert_eq!(payload["error"]["details"]["field"], json!("limit"));
        assert_eq!(
            ToolError::new(ErrorCode::Busy, "busy").to_payload()["error"]["retryable"],
            json!(true)
        );
    }
}
