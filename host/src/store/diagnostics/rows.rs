//! The rows `codex_collect_diagnostics` shows, one type per table it reads.

use serde_json::Value;

use crate::store::Timestamp;

/// An operation as diagnostics shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRow {
    /// `op_<hex>`.
    pub operation_id: String,
    /// start_chat, send_message, ...
    pub operation_type: String,
    /// Its status.
    pub status: String,
    /// Thread, turn and workflow it is tied to.
    pub thread_id: Option<String>,
    /// Its turn.
    pub turn_id: Option<String>,
    /// Its workflow.
    pub workflow_id: Option<String>,
    /// Attempts made.
    pub attempt_count: i64,
    /// The stored `lastError`.
    pub last_error: Option<Value>,
    /// Row times.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
    /// The error app-server reported for its failed turn (the final report's `error`).
    pub turn_error: Option<Value>,
}

/// A tracked turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRow {
    /// Turn id.
    pub turn_id: String,
    /// Its thread.
    pub thread_id: String,
    /// Its operation.
    pub operation_id: Option<String>,
    /// Its status.
    pub status: String,
    /// What said it ended (a notification, recovery, an exit).
    pub terminal_source: Option<String>,
    /// App-server generation that ran it.
    pub process_generation: Option<i64>,
    /// Row times.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// A workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRow {
    /// `wf_<hex>`.
    pub workflow_id: String,
    /// plan_then_execute, code_review, ...
    pub kind: String,
    /// Plugin phase.
    pub phase: String,
    /// Status.
    pub status: String,
    /// Its thread.
    pub thread_id: Option<String>,
    /// The stored error.
    pub error: Option<Value>,
    /// Row times.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// A pending (or settled) interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRow {
    /// `int_<hex>`.
    pub interaction_id: String,
    /// Its operation.
    pub operation_id: Option<String>,
    /// Its turn.
    pub turn_id: Option<String>,
    /// approval, user_input, ...
    pub kind: String,
    /// The app-server request method.
    pub method: String,
    /// pending, answered, expired, ...
    pub status: String,
    /// Generation that asked.
    pub process_generation: i64,
    /// When it expires.
    pub expires_at: Timestamp,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When it was answered.
    pub answered_at: Option<Timestamp>,
}

/// A creating call (`thread/start`, `turn/start`, ...) recorded before it was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentRow {
    /// `itn_<hex>`.
    pub intent_id: String,
    /// Its operation.
    pub operation_id: String,
    /// The method.
    pub method: String,
    /// pending, confirmed, failed, not_found.
    pub state: String,
    /// Generation it was sent to.
    pub process_generation: Option<i64>,
    /// Error text, when it failed.
    pub error: Option<String>,
    /// When recorded.
    pub created_at: Timestamp,
    /// When resolved.
    pub resolved_at: Option<Timestamp>,
}

/// A worker command whose payload names an id of the scope.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRow {
    /// `cmd_<hex>`.
    pub command_id: String,
    /// interrupt_turn, ...
    pub command_type: String,
    /// queued, running, completed, failed, timed_out.
    pub status: String,
    /// The stored error object.
    pub error: Option<Value>,
    /// When queued.
    pub created_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// A thread lifecycle action (archive, unarchive, compact).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleRow {
    /// `tla_<hex>`.
    pub action_id: String,
    /// archive, unarchive, compact.
    pub action_type: String,
    /// Its thread.
    pub thread_id: String,
    /// Status.
    pub status: String,
    /// When recorded.
    pub created_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// One line of a workflow's history.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowEventRow {
    /// Its workflow.
    pub workflow_id: String,
    /// What happened.
    pub event: String,
    /// Phase at the time.
    pub phase: String,
    /// When.
    pub created_at: Timestamp,
}

/// A journaled app-server frame, without its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRow {
    /// Row id.
    pub event_id: i64,
    /// Generation.
    pub process_generation: Option<i64>,
    /// in or out.
    pub direction: String,
    /// Method, for requests and notifications.
    pub method: Option<String>,
    /// Its thread.
    pub thread_id: Option<String>,
    /// Its turn.
    pub turn_id: Option<String>,
    /// When stored.
    pub created_at: Timestamp,
}

/// One line of a turn's progress journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressRow {
    /// Its turn.
    pub turn_id: String,
    /// The notification it came from.
    pub method: String,
    /// Kind of progress.
    pub kind: String,
    /// Short summary (redacted when stored).
    pub summary: Option<String>,
    /// When.
    pub created_at: Timestamp,
}
