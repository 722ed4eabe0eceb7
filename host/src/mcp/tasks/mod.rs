//! The MCP Tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) as a view of durable work.
//!
//! `codex_submit_task`, `codex_start_plan_workflow` and `codex_start_review_workflow` answer a client that
//! declared the extension with a task handle instead of their usual result. The task id *is* the id of the
//! durable row the call created: `op_…` (an operation), `wf_…` (a workflow), or `cmd_…` when a background
//! worker had not yet run the workflow start within its wait (the command's result then names the workflow).
//! So a task keeps no state of its own: `tasks/get` renders the status tool's snapshot, from any server
//! process on the database and after any restart; `tasks/cancel` is `codex_interrupt_turn`; `tasks/update`
//! answers pending interactions (`codex_answer_pending_interaction`) and plan approvals
//! (`codex_approve_plan`); everything runs through the tool dispatch, so client and worker mode behave as
//! for the tools themselves.
//!
//! **Architecture Invariant:** a task is a view of a durable operation, workflow or worker command, never state
//! of its own.

mod input;

use rmcp::model::{
    CallToolResponse, CancelTaskParams, CreateTaskResult, CustomResult, DetailedTask,
    GetTaskParams, GetTaskResult, JsonObject, Task, TaskPayload, TaskStatus, UpdateTaskParams,
};
use rmcp::ErrorData;
use serde_json::{json, Map, Value};

use super::call::CallContext;
use super::server::{tool_result, McpServer};
use input::Needed;

/// Tools whose call becomes a task for a client that declared the extension.
pub const TASK_TOOLS: [&str; 3] = [
    "codex_submit_task",
    "codex_start_plan_workflow",
    "codex_start_review_workflow",
];

/// Final statuses of work that was stopped rather than finished: the task ends `cancelled`.
const STOPPED: [&str; 4] = ["interrupted", "cancelled", "canceled", "aborted"];

/// The shortest poll interval a task suggests.
const MIN_POLL_MS: u64 = 1000;

/// True when a call of `tool` may become a task.
pub fn is_task_tool(tool: &str) -> bool {
    TASK_TOOLS.contains(&tool)
}

/// The durable row a task id names.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Operation(String),
    Workflow(String),
    Command(String),
}

impl Target {
    /// The row a task id names; ids are the store's (`<prefix>_<hex>`), anything else names nothing.
    fn parse(task_id: &str) -> Option<Target> {
        let (prefix, rest) = task_id.split_once('_')?;
        if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let id = task_id.to_string();
        match prefix {
            "op" => Some(Target::Operation(id)),
            "wf" => Some(Target::Workflow(id)),
            "cmd" => Some(Target::Command(id)),
            _ => None,
        }
    }

    /// The row a task tool's successful result created or returned.
    fn from_result(tool: &str, payload: &Value) -> Option<Target> {
        let id = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_string);
        let target = if tool == "codex_submit_task" {
            id("operationId").map(Target::Operation)
        } else {
            id("workflowId").map(Target::Workflow).or_else(|| {
                // The worker did not run the start within its wait: follow its command.
                payload
                    .get("queuedForWorker")
                    .and_then(Value::as_bool)
                    .filter(|queued| *queued)
                    .and_then(|_| id("commandId"))
                    .map(Target::Command)
            })
        }?;
        // Only an id `tasks/get` can read back becomes a task.
        Target::parse(target.id()).map(|_| target)
    }

    fn id(&self) -> &str {
        match self {
            Target::Operation(id) | Target::Workflow(id) | Target::Command(id) => id,
        }
    }

    /// The status tool and arguments that read the row.
    fn status_call(&self) -> (&'static str, Map<String, Value>) {
        let (tool, key) = match self {
            Target::Operation(_) => ("codex_get_operation_status", "operation_id"),
            Target::Workflow(_) => ("codex_get_workflow_status", "workflow_id"),
            Target::Command(_) => ("codex_get_worker_command_status", "command_id"),
        };
        let mut args = Map::new();
        args.insert(key.into(), json!(self.id()));
        (tool, args)
    }
}

/// A task as read now.
struct View {
    /// What `tasks/get` answers.
    detailed: DetailedTask,
    /// The row the task follows after a command was resolved to its workflow.
    resolved: Target,
    /// The status payload the view was rendered from.
    payload: Value,
    /// True once the work ended.
    terminal: bool,
    /// The outstanding inputs (`input_required`).
    needed: Vec<Needed>,
}

/// `tools/call` of a task tool by a client that declared the extension: runs the tool (any `wait_seconds` is
/// dropped: a task is the wait) and answers with the task when it created durable work, else with the tool's
/// result as usual (an error, for instance).
pub async fn call(
    server: &McpServer,
    tool: &str,
    arguments: Option<JsonObject>,
    ctx: &CallContext,
) -> CallToolResponse {
    let mut arguments = arguments.unwrap_or_default();
    arguments.remove("wait_seconds");
    let payload = server.call(tool, Some(arguments), ctx).await;
    let target = is_ok(&payload)
        .then(|| Target::from_result(tool, &payload))
        .flatten();
    let Some(target) = target else {
        return tool_result(payload).into();
    };
    // The row is committed, so `tasks/get` resolves before the client sees the id (the extension's rule).
    match view(server, target.id(), ctx).await {
        Ok(view) => CallToolResponse::Task(CreateTaskResult::new(view.detailed.task)),
        Err(error) => {
            tracing::warn!(tool, task = target.id(), error = %error.message, "task not readable; answering inline");
            tool_result(payload).into()
        }
    }
}

/// `tasks/get`.
pub async fn get(
    server: &McpServer,
    params: GetTaskParams,
    ctx: &CallContext,
) -> Result<GetTaskResult, ErrorData> {
    Ok(GetTaskResult::new(
        view(server, &params.task_id, ctx).await?.detailed,
    ))
}

/// `tasks/cancel`: interrupts the turn of the operation (or the workflow's running operation). Cooperative, as
/// the extension allows: work without a running turn (still queued, or a workflow between turns) is not
/// stopped, and the acknowledgement does not wait for the turn to end.
pub async fn cancel(
    server: &McpServer,
    params: CancelTaskParams,
    ctx: &CallContext,
) -> Result<(), ErrorData> {
    let view = view(server, &params.task_id, ctx).await?;
    if view.terminal {
        return Ok(());
    }
    let key = match &view.resolved {
        Target::Operation(id) => {
            // Work no dispatcher has claimed yet is cancelled outright; running work gets its turn interrupted.
            let cancelled = server
                .app()
                .engine()
                .store
                .cancel_queued_operation(id)
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            if cancelled {
                return Ok(());
            }
            "operation_id"
        }
        Target::Workflow(_) => "workflow_id",
        Target::Command(_) => {
            tracing::info!(task = %params.task_id, "tasks/cancel before the worker started the workflow; nothing to interrupt yet");
            return Ok(());
        }
    };
    let mut args = Map::new();
    args.insert(key.into(), json!(view.resolved.id()));
    let payload = server.call("codex_interrupt_turn", Some(args), ctx).await;
    if !is_ok(&payload) {
        tracing::info!(task = %params.task_id, error = %payload["error"], "tasks/cancel: nothing interrupted");
    }
    Ok(())
}

/// `tasks/update`: applies answers to the outstanding input requests. Keys that are not outstanding (never
/// issued, already answered) are ignored, as the extension asks; an answer the tool refuses is an error.
pub async fn update(
    server: &McpServer,
    params: UpdateTaskParams,
    ctx: &CallContext,
) -> Result<(), ErrorData> {
    let view = view(server, &params.task_id, ctx).await?;
    let mut refused = Vec::new();
    for (key, response) in &params.input_responses {
        let Some(needed) = view.needed.iter().find(|n| &n.key == key) else {
            tracing::debug!(task = %params.task_id, key, "input response for no outstanding request; ignored");
            continue;
        };
        let Some((tool, args)) = input::answer_call(needed, response) else {
            continue;
        };
        let payload = server.call(tool, Some(args), ctx).await;
        if !is_ok(&payload) {
            refused.push(format!("{key}: {}", payload["error"]["message"]));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ErrorData::invalid_params(
            format!("input responses refused: {}", refused.join("; ")),
            None,
        ))
    }
}

/// `tasks/result` (the 2025-11-25 shape, served next to the extension): blocks until the task's work ended,
/// then answers with its final result, the status tool's payload as a `CallToolResult`. Wakes on commits of
/// any process; the client ends the wait with `notifications/cancelled`.
pub async fn result(
    server: &McpServer,
    params: Option<Value>,
    ctx: &CallContext,
) -> Result<CustomResult, ErrorData> {
    let task_id = params
        .as_ref()
        .and_then(|p| p.get("taskId"))
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorData::invalid_params("tasks/result needs params.taskId", None))?
        .to_string();
    // Watch before the first read, so a commit between the read and the wait is not missed.
    let mut watcher = server
        .app()
        .engine()
        .store
        .watch_changes()
        .map_err(|err| ErrorData::internal_error(err.to_string(), None))?;
    loop {
        let view = view(server, &task_id, ctx).await?;
        if view.terminal {
            let mut result = serde_json::to_value(tool_result(view.payload))
                .map_err(|err| ErrorData::internal_error(err.to_string(), None))?;
            result["_meta"] = json!({"io.modelcontextprotocol/related-task": {"taskId": task_id}});
            return Ok(CustomResult::new(result));
        }
        tokio::select! {
            _ = watcher.changed() => {}
            _ = ctx.cancelled() => {
                return Err(ErrorData::internal_error("tasks/result cancelled by the client", None));
            }
        }
    }
}

/// Reads the row a task id names (following a finished command to its workflow) and renders it.
async fn view(server: &McpServer, task_id: &str, ctx: &CallContext) -> Result<View, ErrorData> {
    let target = Target::parse(task_id).ok_or_else(|| not_found(task_id, "no such task"))?;
    let payload = read(server, task_id, &target, ctx).await?;
    let Target::Command(_) = target else {
        return Ok(render(task_id, target, payload));
    };
    let result = payload.get("result").filter(|r| r.is_object());
    let next = result.and_then(|r| {
        r.get("workflowId")
            .and_then(Value::as_str)
            .map(|id| Target::Workflow(id.to_string()))
            .or_else(|| {
                r.get("operationId")
                    .and_then(Value::as_str)
                    .map(|id| Target::Operation(id.to_string()))
            })
    });
    if let Some(next) = next {
        let payload = read(server, task_id, &next, ctx).await?;
        return Ok(render(task_id, next, payload));
    }
    if payload.get("terminal").and_then(Value::as_bool) != Some(true) {
        return Ok(render(task_id, target, payload));
    }
    // The command ended without naming a workflow: the start failed, and its error is the tool's result.
    let outcome = match payload.get("commandError").filter(|e| e.is_object()) {
        Some(error) => super::ToolError::from_error_object(error).to_payload(),
        None => result.cloned().unwrap_or_else(|| payload.clone()),
    };
    let task = base_task(task_id, &payload).with_status_message("the workflow start ended");
    Ok(View {
        detailed: DetailedTask::new(
            task,
            TaskPayload::Completed {
                result: result_object(outcome.clone()),
            },
        ),
        resolved: target,
        payload: outcome,
        terminal: true,
        needed: Vec::new(),
    })
}

/// The status payload of `target`; an unknown row is the extension's "task not found" (`-32602`).
async fn read(
    server: &McpServer,
    task_id: &str,
    target: &Target,
    ctx: &CallContext,
) -> Result<Value, ErrorData> {
    let (tool, args) = target.status_call();
    let payload = server.call(tool, Some(args), ctx).await;
    if is_ok(&payload) {
        return Ok(payload);
    }
    let message = payload["error"]["message"].as_str().unwrap_or("unreadable");
    if payload["error"]["code"] == "CODEX_INTERNAL_ERROR" {
        return Err(ErrorData::internal_error(
            format!("failed to read task {task_id}: {message}"),
            None,
        ));
    }
    Err(not_found(task_id, message))
}

/// The task a status payload shows. Pure: the whole mapping of states lives here.
fn render(task_id: &str, resolved: Target, payload: Value) -> View {
    let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or_default();
    let status = text("status").to_string();
    let terminal = payload.get("terminal").and_then(Value::as_bool) == Some(true);
    let task = base_task(task_id, &payload);
    let mut needed = Vec::new();
    let (task, task_payload) = if terminal && STOPPED.contains(&status.as_str()) {
        (
            task.with_status_message(format!("the work ended {status}")),
            TaskPayload::Cancelled,
        )
    } else if terminal {
        let summary = match text("phase") {
            "" => format!("the work ended {status}"),
            phase => format!("the work ended {status} ({phase})"),
        };
        (
            task.with_status_message(summary),
            TaskPayload::Completed {
                result: result_object(payload.clone()),
            },
        )
    } else {
        needed = input::needed(&payload);
        let input_requests = input::input_requests(&needed);
        if input_requests.is_empty() {
            needed.clear();
            (
                task.with_status_message(working_message(&payload)),
                TaskPayload::Working,
            )
        } else {
            (
                task.with_status_message(format!(
                    "waiting for input: {}",
                    text("nextRecommendedAction")
                )),
                TaskPayload::InputRequired { input_requests },
            )
        }
    };
    View {
        detailed: DetailedTask::new(task, task_payload),
        resolved,
        payload,
        terminal,
        needed,
    }
}

/// The fields every state shares. `ttlMs` is null: the rows are kept, so the task does not expire.
fn base_task(task_id: &str, payload: &Value) -> Task {
    let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or_default();
    let poll_seconds = payload
        .get("recommendedPollAfterSeconds")
        .and_then(Value::as_f64)
        .unwrap_or(2.0);
    // Seconds from the payload's hint; whole milliseconds cannot overflow for any sane hint.
    let poll_ms = ((poll_seconds * 1000.0) as u64).max(MIN_POLL_MS);
    Task::new(
        task_id,
        TaskStatus::Working,
        text("createdAt"),
        text("updatedAt"),
    )
    .with_poll_interval_ms(poll_ms)
}

/// The status and phase, and the latest progress line when there is one.
fn working_message(payload: &Value) -> String {
    let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or_default();
    let mut message = text("status").to_string();
    let phase = text("phase");
    if !phase.is_empty() && phase != message {
        message = format!("{message} ({phase})");
    }
    let line = payload
        .get("progressEvents")
        .and_then(Value::as_array)
        .and_then(|events| events.last())
        .and_then(|event| event.get("text"))
        .and_then(Value::as_str);
    if let Some(line) = line {
        message = format!("{message}: {line}");
    }
    message
}

/// A tool payload as the JSON object of its `CallToolResult`.
fn result_object(payload: Value) -> JsonObject {
    match serde_json::to_value(tool_result(payload)) {
        Ok(Value::Object(object)) => object,
        _ => JsonObject::new(),
    }
}

fn is_ok(payload: &Value) -> bool {
    payload.get("ok").and_then(Value::as_bool) == Some(true)
}

fn not_found(task_id: &str, why: &str) -> ErrorData {
    ErrorData::invalid_params(format!("unknown task {task_id}: {why}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP: &str = "op_0123456789abcdef0123456789abcdef";

    fn operation(status: &str, terminal: bool) -> Value {
        json!({"ok": true, "operationId": OP, "status": status, "phase": status, "terminal": terminal,
               "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:01.000Z",
               "recommendedPollAfterSeconds": 2, "pendingInteractions": []})
    }

    fn status_of(payload: Value) -> TaskStatus {
        render(OP, Target::Operation(OP.into()), payload)
            .detailed
            .status()
    }

    // Task ids are the store's ids; anything else names no task.
    #[test]
    fn task_ids_are_row_ids() {
        assert_eq!(Target::parse(OP), Some(Target::Operation(OP.into())));
        assert_eq!(
            Target::parse("wf_00ff"),
            Some(Target::Workflow("wf_00ff".into()))
        );
        assert_eq!(
            Target::parse("cmd_00ff"),
            Some(Target::Command("cmd_00ff".into()))
        );
        for bad in ["op_", "op_xyz", "int_00ff", "op", "", "op_00ff/../x"] {
            assert_eq!(Target::parse(bad), None, "{bad}");
        }
    }

    // Queued and running work is `working`; finished work is `completed` with the status payload as the tool's
    // result (a failed operation too: the tool call itself succeeded); stopped work is `cancelled`.
    #[test]
    fn operation_states_map_to_task_states() {
        assert_eq!(status_of(operation("queued", false)), TaskStatus::Working);
        assert_eq!(status_of(operation("running", false)), TaskStatus::Working);
        assert_eq!(
            status_of(operation("completed", true)),
            TaskStatus::Completed
        );
        assert_eq!(status_of(operation("failed", true)), TaskStatus::Completed);
        assert_eq!(
            status_of(operation("interrupted", true)),
            TaskStatus::Cancelled
        );
        let view = render(
            OP,
            Target::Operation(OP.into()),
            operation("completed", true),
        );
        let wire = serde_json::to_value(GetTaskResult::new(view.detailed)).expect("serialise");
        assert_eq!(wire["result"]["structuredContent"]["status"], "completed");
        assert_eq!(wire["result"]["isError"], false);
        assert_eq!(wire["ttlMs"], Value::Null);
        assert_eq!(wire["pollIntervalMs"], 2000);
    }

    // A pending approval makes the task `input_required` with one request per interaction.
    #[test]
    fn a_pending_approval_requires_input() {
        let mut payload = operation("waiting_for_approval", false);
        payload["pendingInteractions"] = json!([{"interactionId": "int_1", "kind": "approval",
            "status": "pending", "availableDecisions": ["accept", "cancel"], "params": {}}]);
        let view = render(OP, Target::Operation(OP.into()), payload);
        assert_eq!(view.detailed.status(), TaskStatus::InputRequired);
        let wire = serde_json::to_value(&view.detailed).expect("serialise");
        assert!(wire["inputRequests"]["int_1"].is_object(), "{wire}");
    }

    // Only the tool's own id becomes a task, and a queued workflow start follows its worker command.
    #[test]
    fn results_name_their_rows() {
        let submitted = json!({"operationId": OP, "workflowId": null});
        assert_eq!(
            Target::from_result("codex_submit_task", &submitted),
            Some(Target::Operation(OP.into()))
        );
        let queued = json!({"commandId": "cmd_00ff", "queuedForWorker": true});
        assert_eq!(
            Target::from_result("codex_start_plan_workflow", &queued),
            Some(Target::Command("cmd_00ff".into()))
        );
        assert_eq!(
            Target::from_result("codex_start_review_workflow", &json!({"ok": true})),
            None
        );
    }
}
