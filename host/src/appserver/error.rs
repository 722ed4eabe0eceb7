//! [`AppServerError`]: everything that can go wrong talking to `codex app-server`.

use std::path::PathBuf;

use crate::domain::failure::FailureCode;

/// A failed app-server call or lifecycle step.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum AppServerError {
    /// No `codex` binary could be found or started.
    #[error("codex app-server is unavailable: {reason}")]
    Unavailable {
        /// Why (binary missing, spawn failed, handshake failed).
        reason: String,
    },
    /// The request got no reply in time.
    #[error("app-server request {method} timed out after {timeout_ms} ms")]
    Timeout {
        /// The JSON-RPC method.
        method: String,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The process serving the request exited before replying.
    #[error("app-server process (generation {generation}) exited before replying to {method}")]
    ProcessExited {
        /// Generation of the process that died.
        generation: u64,
        /// The JSON-RPC method.
        method: String,
    },
    /// The app-server answered with a JSON-RPC error.
    #[error("app-server rejected {method}: {message} (code {code})")]
    Rpc {
        /// The JSON-RPC method.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: String,
        /// Error data, if any (boxed: it is rare, and it keeps every `Result` small).
        data: Option<Box<serde_json::Value>>,
    },
    /// An answer was addressed to a process generation that is gone.
    #[error("app-server generation {requested} is gone (current: {current:?})")]
    StaleGeneration {
        /// The generation the caller addressed.
        requested: u64,
        /// The live generation, if any.
        current: Option<u64>,
    },
    /// A restart in `idle` mode was refused because turns are active.
    #[error("app-server has {active_turns} active turn(s); restart refused without force")]
    Busy {
        /// Number of active turns.
        active_turns: usize,
    },
    /// The reply did not have the expected shape.
    #[error("unexpected reply to {method}: {message}")]
    BadReply {
        /// The JSON-RPC method.
        method: String,
        /// What was wrong.
        message: String,
    },
    /// Writing to the child failed.
    #[error("cannot write to app-server: {0}")]
    Io(String),
    /// Our params could not be encoded (nothing was sent).
    #[error("cannot encode {method} params: {message}")]
    Encode {
        /// The JSON-RPC method.
        method: String,
        /// What serde said.
        message: String,
    },
}

impl AppServerError {
    /// The failure code a row records for this error (and the tool error code, see `mcp::error`).
    pub fn failure_code(&self) -> FailureCode {
        match self {
            AppServerError::Unavailable { .. } => FailureCode::AppServerUnavailable,
            AppServerError::Timeout { .. } => FailureCode::Timeout,
            AppServerError::Busy { .. } => FailureCode::Busy,
            AppServerError::ProcessExited { .. }
            | AppServerError::Rpc { .. }
            | AppServerError::StaleGeneration { .. }
            | AppServerError::BadReply { .. }
            | AppServerError::Io(_)
            | AppServerError::Encode { .. } => FailureCode::SendFailed,
        }
    }

    /// The binary was not found at `path` (or on PATH when `None`).
    pub fn binary_missing(path: Option<&PathBuf>) -> Self {
        AppServerError::Unavailable {
            reason: match path {
                Some(path) => format!("codex binary not found at {}", path.display()),
                None => "codex binary not found on PATH (set CODEX_BINARY_PATH)".to_string(),
            },
        }
    }
}
