//! The server's own log lines, readable by a tool: `codex_get_diagnostic_logs` and `codex_collect_diagnostics`
//! show them (redacted by the caller).
//!
//! Logs go through `tracing` to a file or stderr (stdout is MCP's), and stderr is not something a tool can read
//! back. So two sources exist:
//! - [`ring`]: a `tracing` layer that keeps the newest WARN and ERROR lines of this process in memory (bounded,
//!   lost on exit); installed by `main` next to the usual formatter.
//! - [`tail`]: the end of a log file this server writes (`CODEX_CONTROL_PLANE_MCP_LOG`, the background worker's
//!   `<db>.worker.log`), parsed back into lines; bounded by the bytes read.
//!
//! This module knows nothing about MCP or the store.

pub mod ring;
pub mod tail;

/// Severity of a line, in the seed's names (`warning` for tracing's WARN; `critical` is never produced by
/// `tracing` but is accepted as a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// TRACE and DEBUG.
    Debug,
    /// INFO.
    Info,
    /// WARN.
    Warning,
    /// ERROR.
    Error,
    /// Above ERROR (filter only).
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// Parses a wire name (`debug` ... `critical`).
    pub fn parse(name: &str) -> Option<Severity> {
        Some(match name {
            "debug" => Severity::Debug,
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "error" => Severity::Error,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// The severity of a `tracing` level name as the formatter writes it (`WARN`, `ERROR`, ...).
    pub fn from_level_name(name: &str) -> Option<Severity> {
        Some(match name {
            "TRACE" | "DEBUG" => Severity::Debug,
            "INFO" => Severity::Info,
            "WARN" => Severity::Warning,
            "ERROR" => Severity::Error,
            _ => return None,
        })
    }
}

/// Where a line was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This process's in-memory ring.
    ThisProcess,
    /// The configured server log file.
    ServerLogFile,
    /// The background worker's log file.
    WorkerLogFile,
}

impl Origin {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::ThisProcess => "this_process",
            Origin::ServerLogFile => "server_log_file",
            Origin::WorkerLogFile => "worker_log_file",
        }
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was written (unix ms).
    pub at_ms: i64,
    /// Its severity.
    pub severity: Severity,
    /// The module that wrote it (`codex_control_plane::engine::tracker`, `codex_app_server`).
    pub target: String,
    /// The message and its fields (`message key=value ...`), not redacted.
    pub text: String,
    /// Where it was read.
    pub origin: Origin,
}
