//! Thread lifecycle: `codex_archive_thread`, `codex_unarchive_thread`, `codex_start_thread_compaction`,
//! `codex_get_thread_compaction_status`. Each call is an audited `tla_<id>` row (`engine::lifecycle`); a
//! compaction is driven by the `compaction-workflow` plugin; `thread/delete` is never exposed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::app::App;
use crate::engine::lifecycle::LifecycleKind;
use crate::engine::workflows::WorkflowStart;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::tools::workflows::engine_error;
use crate::store::lifecycle::LifecycleAction;

/// The plugin that implements `thread_compaction`.
const COMPACTION_PLUGIN: &str = "compaction-workflow";

fn payload(action: &LifecycleAction) -> Value {
    let terminal = !matches!(action.status.as_str(), "starting" | "running");
    let thread_state = match (action.action_type.as_str(), action.status.as_str()) {
        ("archive", "completed") => Some("archived"),
        ("unarchive", "completed") => Some("active"),
        _ => None,
    };
    let next = match action.status.as_str() {
        "starting" | "running" => "poll_thread_compaction",
        "completed" => "read_thread_status",
        _ => "inspect_diagnostics",
    };
    json!({
        "actionId": action.action_id,
        "actionType": action.action_type,
        "status": action.status,
        "terminal": terminal,
        "threadId": action.thread_id,
        "threadState": thread_state,
        "appServerResult": action.result,
        "observedEventId": null,
        "targetTurnId": action.target_turn_id,
        "processGeneration": action.process_generation,
        "error": action.error,
        "createdAt": action.created_at.iso(),
        "updatedAt": action.updated_at.iso(),
        "completedAt": action.completed_at.map(|t| t.iso()),
        "nextRecommendedAction": next,
        "recommendedPollAfterSeconds": if terminal { 0 } else { 5 },
    })
}

/// `CODEX_BUSY` while the thread has an active turn or a pending interaction (seed rule).
async fn refuse_if_busy(app: &App, thread_id: &str) -> Result<(), ToolError> {
    let Some(busy) = app
        .engine()
        .thread_busy(thread_id)
        .await
        .map_err(engine_error)?
    else {
        return Ok(());
    };
    let mut error =
        ToolError::new(ErrorCode::Busy, busy.message).with_detail("status", json!(busy.reason));
    if let Some(details) = busy.details.as_object() {
        for (key, value) in details {
            error = error.with_detail(key, value.clone());
        }
    }
    Err(error)
}

fn timeout(args: &Args) -> Duration {
    Duration::from_secs(u64::try_from(args.int_or("timeout_seconds", 30)).unwrap_or(30))
}

/// Runs a lifecycle action on the tool's `thread_id`: refused while the thread is busy, then audited.
async fn audited(app: &App, args: &Args, kind: LifecycleKind) -> Result<Value, ToolError> {
    let thread_id = args.required_str("thread_id")?;
    refuse_if_busy(app, thread_id).await?;
    let action = app
        .engine()
        .run_lifecycle_action(kind, thread_id, timeout(args))
        .await
        .map_err(engine_error)?;
    Ok(payload(&action))
}

/// Handler of `codex_archive_thread`.
pub async fn archive(app: &App, args: &Args) -> Result<Value, ToolError> {
    audited(app, args, LifecycleKind::Archive).await
}

/// Handler of `codex_unarchive_thread`.
pub async fn unarchive(app: &App, args: &Args) -> Result<Value, ToolError> {
    audited(app, args, LifecycleKind::Unarchive).await
}

/// Handler of `codex_start_thread_compaction`. The procedure is the `compaction-workflow` plugin: the
/// workflow's `compact-thread` action becomes the audited `tla_` action (`thread/resume`, then
/// `thread/compact/start`), which stays `running` until the compaction turn ends; the workflow completes
/// with it.
pub async fn start_compaction(app: &App, args: &Args) -> Result<Value, ToolError> {
    let thread_id = args.required_str("thread_id")?;
    refuse_if_busy(app, thread_id).await?;
    let engine = app.engine();
    let input = json!({"threadId": thread_id, "timeoutSeconds": timeout(args).as_secs()});
    let (workflow, _) = engine
        .start_workflow(WorkflowStart {
            kind: "thread_compaction".into(),
            plugin_id: COMPACTION_PLUGIN.into(),
            input: input.clone(),
            // Every call is a new compaction (the seed's tool has no idempotency key).
            client_request_id: format!("auto:compaction:{}", uuid::Uuid::new_v4().simple()),
            request_fingerprint: crate::mcp::catalog::sha256_hex(input.to_string().as_bytes()),
            runtime_policy: json!({}),
            goal: None,
        })
        .await
        .map_err(engine_error)?;
    let actions = engine.store.workflow_actions(&workflow.workflow_id).await?;
    let lifecycle_id = actions
        .iter()
        .find(|a| a.kind == "compact-thread")
        .and_then(|a| a.output.as_ref())
        .and_then(|o| o.get("lifecycleActionId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(lifecycle_id) = lifecycle_id else {
        // The plugin refused or failed before compacting: its error is the answer.
        let error = workflow.error.unwrap_or_else(|| json!({}));
        return Err(ToolError::new(
            ErrorCode::PluginFailed,
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the compaction workflow did not start a compaction")
                .to_string(),
        )
        .with_detail("workflowId", json!(workflow.workflow_id))
        .with_detail("workflowError", error));
    };
    let action = engine
        .store
        .get_lifecycle_action(&lifecycle_id)
        .await?
        .ok_or_else(|| {
            ToolError::new(
                ErrorCode::Internal,
                format!("lifecycle action {lifecycle_id} vanished"),
            )
        })?;
    let mut out = payload(&action);
    out["workflowId"] = json!(workflow.workflow_id);
    Ok(out)
}

/// Handler of `codex_get_thread_compaction_status`: a pure read of SQLite.
pub async fn compaction_status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let action_id = args.required_str("action_id")?;
    let action = engine
        .store
        .get_lifecycle_action(action_id)
        .await?
        .ok_or_else(|| {
            ToolError::invalid_argument("action_id", format!("unknown action {action_id}"))
                .with_detail("actionId", json!(action_id))
        })?;
    let mut out = payload(&action);
    if args.bool("include_events") {
        let events = match &action.target_turn_id {
            Some(turn) => engine.store.list_progress_events(turn, 20).await?,
            None => Vec::new(),
        };
        out["events"] = json!(events
            .iter()
            .map(|e| json!({"kind": e.kind, "text": e.summary, "at": e.created_at.iso()}))
            .collect::<Vec<_>>());
    }
    Ok(out)
}
