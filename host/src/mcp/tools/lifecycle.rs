//! Thread lifecycle: `codex_archive_thread`, `codex_unarchive_thread`, `codex_start_thread_compaction`,
//! `codex_get_thread_compaction_status`. Each call is an audited `tla_<id>` row; `thread/delete` is never
//! exposed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::app::App;
use crate::engine::rules::status::is_terminal;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::store::lifecycle::LifecycleAction;
use crate::store::operations::OperationFilter;
use crate::store::InteractionFilter;

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
    let store = &app.engine()?.store;
    let active = store
        .list_operations(
            OperationFilter {
                thread_id: Some(thread_id.to_string()),
                ..Default::default()
            },
            50,
        )
        .await?
        .into_iter()
        .find(|op| !is_terminal(&op.status) && op.turn_id.is_some());
    if let Some(op) = active {
        return Err(ToolError::new(
            ErrorCode::Busy,
            format!("thread {thread_id} has an active turn"),
        )
        .with_detail("status", json!("active_turn"))
        .with_detail("operationId", json!(op.operation_id))
        .with_detail("turnId", json!(op.turn_id)));
    }
    let pending = store
        .list_interactions(
            InteractionFilter {
                thread_id: Some(thread_id.to_string()),
                status: Some("pending".into()),
                ..Default::default()
            },
            1,
        )
        .await?;
    if let Some(interaction) = pending.first() {
        return Err(ToolError::new(
            ErrorCode::Busy,
            format!("thread {thread_id} has a pending interaction"),
        )
        .with_detail("status", json!("pending_interaction"))
        .with_detail("interactionId", json!(interaction.interaction_id)));
    }
    Ok(())
}

fn timeout(args: &Args) -> Duration {
    Duration::from_secs(u64::try_from(args.int_or("timeout_seconds", 30)).unwrap_or(30))
}

/// Runs `call` as an audited action on `thread_id`: refused while the thread is busy, recorded as `starting`,
/// then `on_success` (or `failed` with the error) when app-server answers.
async fn audited(
    app: &App,
    thread_id: &str,
    action_type: &str,
    on_success: &str,
    call: impl std::future::Future<Output = Result<Value, crate::appserver::AppServerError>>,
) -> Result<Value, ToolError> {
    let engine = app.engine()?;
    refuse_if_busy(app, thread_id).await?;
    let generation = engine.appserver.ensure_started().await?;
    let action = engine
        .store
        .insert_lifecycle_action(
            action_type,
            thread_id,
            &engine.worker.owner_id,
            i64::try_from(generation).ok(),
        )
        .await?;
    let (status, result, error) = match call.await {
        Ok(result) => (on_success, Some(result), None),
        Err(err) => {
            let code = ToolError::from(err.clone()).code.as_str();
            (
                "failed",
                None,
                Some(json!({"code": code, "message": err.to_string()})),
            )
        }
    };
    let action = engine
        .store
        .update_lifecycle_action(&action.action_id, status, result, error, None)
        .await?;
    Ok(payload(&action))
}

/// Handler of `codex_archive_thread`.
pub async fn archive(app: &App, args: &Args) -> Result<Value, ToolError> {
    let thread_id = args.required_str("thread_id")?;
    let call = app.appserver.request_with_timeout(
        "thread/archive",
        json!({"threadId": thread_id}),
        timeout(args),
    );
    audited(app, thread_id, "archive", "completed", call).await
}

/// Handler of `codex_unarchive_thread`.
pub async fn unarchive(app: &App, args: &Args) -> Result<Value, ToolError> {
    let thread_id = args.required_str("thread_id")?;
    let call = app.appserver.request_with_timeout(
        "thread/unarchive",
        json!({"threadId": thread_id}),
        timeout(args),
    );
    audited(app, thread_id, "unarchive", "completed", call).await
}

/// Handler of `codex_start_thread_compaction`: `thread/resume` (so the thread is loaded) then
/// `thread/compact/start`; the action stays `running` until the compaction turn ends.
pub async fn start_compaction(app: &App, args: &Args) -> Result<Value, ToolError> {
    let thread_id = args.required_str("thread_id")?;
    let limit = timeout(args);
    let call = async {
        app.appserver
            .request_with_timeout("thread/resume", json!({"threadId": thread_id}), limit)
            .await?;
        app.appserver
            .request_with_timeout(
                "thread/compact/start",
                json!({"threadId": thread_id}),
                limit,
            )
            .await
    };
    audited(app, thread_id, "compact", "running", call).await
}

/// Handler of `codex_get_thread_compaction_status`: a pure read of SQLite.
pub async fn compaction_status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine()?;
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
