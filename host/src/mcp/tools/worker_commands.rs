//! Control actions in a process that does not own app-server: each becomes a worker command (`cmd_<hex>`) that
//! the background worker runs through the same handler, and the tool waits (bounded) for its result so the
//! caller gets the shape inline mode returns. Only a worker slower than the wait turns the answer into
//! `{commandId, status, nextRecommendedAction: "poll_worker_command"}`. Also `codex_get_worker_command_status`.

use serde_json::{json, Value};

use crate::app::App;
use crate::engine::worker_link::{CommandOutcome, WorkerLink};
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::store::commands::WorkerCommand;

/// The command type a tool call becomes in a client process, or `None` when the tool runs in the client (reads
/// of SQLite, submits that only write a row).
pub fn command_type(tool: &str, args: &Args, link: &WorkerLink) -> Option<&'static str> {
    Some(match tool {
        "codex_answer_pending_interaction" => "answer_pending_interaction",
        "codex_interrupt_turn" => "interrupt_turn",
        "codex_archive_thread" => "archive_thread",
        "codex_unarchive_thread" => "unarchive_thread",
        "codex_start_thread_compaction" => "start_thread_compaction",
        "codex_restart_app_server" => "restart_app_server",
        // A real restart repair needs the app-server's owner; every other repair only reads and writes SQLite.
        "codex_repair_issue" if crate::mcp::tools::repair::needs_app_server_owner(args) => {
            "repair_issue"
        }
        // Only a snapshot older than the cache (or `refresh`) gets here: asking needs the worker's app-server.
        "codex_get_runtime_capabilities" => "runtime_capabilities",
        // Workflows are driven by the process that owns them: the worker.
        "codex_start_plan_workflow" => "start_plan_workflow",
        "codex_start_review_workflow" => "start_review_workflow",
        "codex_approve_plan" => "approve_plan",
        "codex_execute_plan" => "execute_plan",
        "codex_adopt_workflow_plan" => "adopt_workflow_plan",
        "codex_get_workflow_status"
            if args.bool("refresh_live") || args.bool("refresh_live_goal") =>
        {
            "refresh_live"
        }
        // The app-server is the worker's: ask it while it runs; without one the local snapshot (not running)
        // is the truth, and asking must not start a worker.
        "codex_get_app_server_status" if link.presence().is_running() => "app_server_status",
        _ => return None,
    })
}

/// True for tools that only write a row a worker must pick up: after one, a client makes sure a worker runs.
pub fn needs_worker(tool: &str) -> bool {
    matches!(tool, "codex_submit_task")
}

/// Queues the call as a worker command and answers with the tool's own result when the worker finishes within
/// the wait.
pub async fn forward(
    app: &App,
    link: &WorkerLink,
    command_type: &str,
    tool: &str,
    args: &Args,
) -> Result<Value, ToolError> {
    let mut payload = args.to_json();
    payload["tool"] = json!(tool);
    let outcome = link
        .run_command(app.engine(), command_type, payload)
        .await
        .map_err(crate::mcp::tools::workflows::engine_error)?;
    match outcome {
        CommandOutcome::Finished(command) => finished(command),
        CommandOutcome::Pending(command) => Ok(pending(&command, link)),
    }
}

/// The tool's result (or error) as the worker stored it.
fn finished(command: WorkerCommand) -> Result<Value, ToolError> {
    match (command.status.as_str(), command.result, command.error) {
        ("completed", Some(Value::Object(mut result)), _) => {
            result.remove("ok");
            result.insert("workerCommandId".into(), json!(command.command_id));
            Ok(Value::Object(result))
        }
        (_, _, Some(error)) => Err(ToolError::from_error_object(&error)
            .with_detail("commandId", json!(command.command_id))),
        (status, _, None) => Err(ToolError::new(
            ErrorCode::Internal,
            format!(
                "worker command {} ended {status} without a result",
                command.command_id
            ),
        )
        .with_detail("commandId", json!(command.command_id))),
    }
}

/// The handle a caller polls when the worker did not finish within the wait.
fn pending(command: &WorkerCommand, link: &WorkerLink) -> Value {
    let worker = link.presence();
    json!({
        "commandId": command.command_id,
        "commandType": command.command_type,
        "status": command.status,
        "queuedForWorker": true,
        "worker": worker,
        "nextRecommendedAction": "poll_worker_command",
        "recommendedPollAfterSeconds": 2,
    })
}

/// One command as `codex_get_worker_command_status` shows it.
pub fn command_json(command: &WorkerCommand, include_result: bool, max_chars: usize) -> Value {
    let mut out = json!({
        "commandId": command.command_id,
        "commandType": command.command_type,
        "status": command.status,
        "terminal": command.is_terminal(),
        "tool": command.payload.get("tool"),
        "requestedBy": command.requested_by,
        "workerOwner": command.claimed_by,
        "createdAt": command.created_at.iso(),
        "updatedAt": command.updated_at.iso(),
        "startedAt": command.started_at.map(|t| t.iso()),
        "completedAt": command.completed_at.map(|t| t.iso()),
        "expiresAt": command.expires_at.iso(),
        "commandError": command.error,
        "nextRecommendedAction": if command.is_terminal() {
            if command.status == "completed" { "read_command_result" } else { "inspect_worker_health" }
        } else {
            "poll_worker_command"
        },
        "recommendedPollAfterSeconds": if command.is_terminal() { 0 } else { 2 },
    });
    if include_result {
        if let Some(result) = &command.result {
            let text = result.to_string();
            if text.chars().count() > max_chars {
                out["result"] = Value::Null;
                out["resultTruncated"] = json!(true);
                out["resultPreview"] = json!(text.chars().take(max_chars).collect::<String>());
            } else {
                out["result"] = result.clone();
                out["resultTruncated"] = json!(false);
            }
        }
    }
    out
}

/// Handler of `codex_get_worker_command_status`: a read of SQLite.
pub async fn status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let command_id = args.required_str("command_id")?;
    let command = app
        .engine()
        .store
        .get_worker_command(command_id)
        .await?
        .ok_or_else(|| {
            ToolError::invalid_argument("command_id", format!("unknown command {command_id}"))
                .with_detail("commandId", json!(command_id))
        })?;
    let max_chars = usize::try_from(args.int_or("max_result_chars", 12_000)).unwrap_or(0);
    Ok(command_json(
        &command,
        args.value("include_result")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        max_chars,
    ))
}
