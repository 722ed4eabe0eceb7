//! The repair actions the frozen v0.1 `repair-action` variants have no name for, mapped onto the two that fit
//! (see the table in `docs/arch/plugins.md`, "The repair contract"):
//!
//! - `interrupt_turn`: `cancel-operation(operation)` interrupts the operation's running turn through the path
//!   of `codex_interrupt_turn` (`turn/interrupt`; the tracker records the `interrupted` end).
//! - `cleanup_prompt_submissions`: `release-lease(submission)` deletes a prompt submission whose operation has
//!   ended: the hold the duplicate-prompt guard keeps on a prompt, no longer needed.
//! - `reconcile_workflow_from_thread`: `release-lease(workflow)` lets this process take the workflow over (the
//!   pump's compare-and-set) and settles its turns from `thread/read` (the engine's `refresh_live`).
//! - `retry_workflow_with_runtime_policy`: `release-lease(workflow)` starts a new workflow linked to the ended
//!   one (`client_request_id` `repair:retry:<workflow>:<n>`, `runtimePolicy.retryOf`) with the given sandbox and
//!   approval policy (resolved as `codex_start_plan_workflow` resolves them).
//! - `refresh_catalog_and_history`: `release-lease("chat_history")` mirrors what the chat history lacks and
//!   rebuilds its full-text index (the catalog is derived from the rows at read time: nothing to refresh).
//! - `validate_paths_and_config`: `release-lease("paths_and_config")` re-runs the readiness checks; it changes
//!   nothing, so its `after` is its `before` and the checks are the step's output.

use std::time::Duration;

use serde_json::{json, Value};

use crate::app::App;
use crate::domain::rules::agent_safe::agent_safe_value;
use crate::domain::rules::canonical::{canonical_json, sha256_hex};
use crate::engine::workflows::WorkflowStart;
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::mcp::tools::{checks, workflows};
use crate::store::repair_targets::RETRY_KEY_PREFIX;
use crate::store::OperationFilter;

/// The procedure target of `refresh_catalog_and_history`.
pub const CHAT_HISTORY: &str = "chat_history";
/// The procedure target of `validate_paths_and_config`.
pub const PATHS_AND_CONFIG: &str = "paths_and_config";

/// Most operations of one workflow a reconcile looks at.
const WORKFLOW_OPERATIONS: usize = 50;

/// Whether `action` is one of the actions this module performs.
pub fn handles(action: &str) -> bool {
    matches!(
        action,
        "interrupt_turn"
            | "cleanup_prompt_submissions"
            | "reconcile_workflow_from_thread"
            | "retry_workflow_with_runtime_policy"
            | "refresh_catalog_and_history"
            | "validate_paths_and_config"
    )
}

/// The state of `target` for `action` now. `listed` (the state before, for a reconcile) keeps the same
/// operations in view after the workflow advanced and started new ones.
pub async fn state(
    app: &App,
    action: &str,
    target: &str,
    listed: Option<&Value>,
) -> Result<Value, ToolError> {
    let store = &app.engine.store;
    Ok(match action {
        "interrupt_turn" => {
            let op = store.get_operation(target).await?;
            let turn = match op.as_ref().and_then(|o| o.turn_id.clone()) {
                Some(turn_id) => store.get_turn(&turn_id).await?,
                None => None,
            };
            json!({"kind": "operation", "id": target,
                   "status": op.map(|o| o.status.as_str().to_string()),
                   "turnStatus": turn.map(|t| t.status)})
        }
        "cleanup_prompt_submissions" => json!({"kind": "submission", "id": target,
            "present": store.prompt_submission_exists(target).await?}),
        "reconcile_workflow_from_thread" => {
            let keep: Option<Vec<&str>> = listed.and_then(|l| l["turns"].as_array()).map(|turns| {
                turns
                    .iter()
                    .filter_map(|t| t["operationId"].as_str())
                    .collect()
            });
            let ops = store
                .list_operations(
                    OperationFilter {
                        workflow_id: Some(target.to_string()),
                        ..Default::default()
                    },
                    WORKFLOW_OPERATIONS,
                )
                .await?;
            let mut turns = Vec::new();
            for op in ops {
                let Some(turn_id) = op.turn_id.clone() else {
                    continue;
                };
                if keep
                    .as_ref()
                    .is_some_and(|k| !k.contains(&op.operation_id.as_str()))
                {
                    continue;
                }
                let status = store.get_turn(&turn_id).await?.map(|t| t.status);
                turns.push(
                    json!({"operationId": op.operation_id, "threadId": op.thread_id,
                                  "turnId": turn_id, "turnStatus": status}),
                );
            }
            // Oldest first whatever order the listing had, so before and after compare row by row.
            turns.sort_by(|a, b| a["operationId"].as_str().cmp(&b["operationId"].as_str()));
            json!({"kind": "workflow", "id": target, "turns": turns})
        }
        "retry_workflow_with_runtime_policy" => {
            let workflow = store.get_workflow(target).await?;
            json!({"kind": "workflow", "id": target,
                   "status": workflow.map(|w| w.status),
                   "retries": store.workflow_retries(target).await?})
        }
        "refresh_catalog_and_history" => {
            let backlog = store.history_backlog().await?;
            json!({"kind": "chatHistory", "id": CHAT_HISTORY,
                   "unmirroredPrompts": backlog.unmirrored_prompts,
                   "unmirroredMessages": backlog.unmirrored_messages,
                   "unindexedEntries": backlog.unindexed_entries})
        }
        _ => {
            let summary: serde_json::Map<String, Value> = readiness(app)
                .await
                .iter()
                .map(|c| (c.name.to_string(), json!(c.status)))
                .collect();
            json!({"kind": "config", "id": PATHS_AND_CONFIG, "checks": summary})
        }
    })
}

/// The readiness checks `validate_paths_and_config` runs (those of `tools/checks.rs`).
async fn readiness(app: &App) -> Vec<checks::Check> {
    vec![
        checks::codex_binary(app),
        checks::codex_home(app),
        checks::codex_auth(app),
        checks::allowed_roots(app),
        checks::state_db(app).await,
        checks::app_server(app),
    ]
}

/// The state a step of `action` leaves `before` in, as a dry run predicts it. A reconcile asks app-server
/// (`thread/read`) which running turns have ended, and stores nothing.
pub async fn predict(app: &App, action: &str, before: &Value) -> Result<Value, ToolError> {
    let mut after = before.clone();
    match action {
        "interrupt_turn" => {
            after["status"] = json!("interrupted");
            after["turnStatus"] = json!("interrupted");
        }
        "cleanup_prompt_submissions" => after["present"] = json!(false),
        "reconcile_workflow_from_thread" => {
            if let Some(turns) = after["turns"].as_array_mut() {
                for turn in turns {
                    let status = turn["turnStatus"].as_str().unwrap_or_default();
                    let (Some(thread), Some(turn_id)) =
                        (turn["threadId"].as_str(), turn["turnId"].as_str())
                    else {
                        continue;
                    };
                    if crate::domain::rules::status::is_terminal(status) {
                        continue;
                    }
                    let ended = app
                        .engine
                        .ended_turn_status(thread, turn_id)
                        .await
                        .map_err(workflows::engine_error)?;
                    if let Some(ended) = ended {
                        turn["turnStatus"] = json!(ended);
                    }
                }
            }
        }
        "retry_workflow_with_runtime_policy" => {
            let id = before["id"].as_str().unwrap_or_default();
            let mut retries = before["retries"].as_array().cloned().unwrap_or_default();
            retries.push(json!(retry_key(id, retries.len())));
            after["retries"] = json!(retries);
        }
        "refresh_catalog_and_history" => {
            for key in [
                "unmirroredPrompts",
                "unmirroredMessages",
                "unindexedEntries",
            ] {
                after[key] = json!(0);
            }
        }
        // Validation changes nothing.
        _ => {}
    }
    Ok(after)
}

/// The `client_request_id` of the retry after `existing` earlier ones.
fn retry_key(workflow_id: &str, existing: usize) -> String {
    format!("{RETRY_KEY_PREFIX}{workflow_id}:{}", existing + 1)
}

/// Performs one allowed step of `action` on `target`; returns what the step produced for the answer.
pub async fn perform(
    app: &App,
    action: &str,
    target: &str,
    timeout: Duration,
    args: &Args,
) -> Result<Option<Value>, ToolError> {
    let store = &app.engine.store;
    match action {
        "interrupt_turn" => {
            let call = Args::from_map(
                json!({"operation_id": target, "timeout_seconds": timeout.as_secs()})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            );
            let outcome = crate::mcp::tools::operations::interrupt(app, &call).await?;
            // The operation follows its turn's end in the tracker's transaction; wait for it briefly so the
            // state after is the settled one.
            for _ in 0..100 {
                let op = store.get_operation(target).await?;
                if op.is_none_or(|o| o.is_terminal()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Some(outcome))
        }
        "cleanup_prompt_submissions" => {
            let deleted = store.delete_ended_prompt_submission(target).await?;
            Ok(Some(json!({"deleted": deleted})))
        }
        "reconcile_workflow_from_thread" => {
            let workflow = store.get_workflow(target).await?.ok_or_else(|| {
                ToolError::invalid_argument("workflow_id", "is not a known workflow")
            })?;
            let report = app.engine.refresh_workflow_live(&workflow).await;
            let now = store.get_workflow(target).await?;
            Ok(Some(json!({
                "phaseBefore": workflow.phase,
                "phaseAfter": now.map(|w| w.phase),
                "refresh": agent_safe_value(&report),
            })))
        }
        "retry_workflow_with_runtime_policy" => retry(app, target, args).await.map(Some),
        "refresh_catalog_and_history" => {
            let refresh = store.refresh_chat_history(timeout).await?;
            if !refresh.complete {
                return Err(ToolError::new(
                    ErrorCode::Timeout,
                    format!(
                        "the chat history was not mirrored within {}s ({} entries added); run the repair again",
                        timeout.as_secs(),
                        refresh.added
                    ),
                ));
            }
            store.rebuild_history_index().await?;
            Ok(Some(
                json!({"mirroredEntries": refresh.added, "indexRebuilt": true}),
            ))
        }
        _ => {
            let checks: Vec<Value> = readiness(app).await.iter().map(|c| c.to_json()).collect();
            Ok(Some(json!({"checks": agent_safe_value(&json!(checks))})))
        }
    }
}

/// Starts the retry of an ended workflow: the same kind, plugin and input, the given sandbox and approval
/// policy where the input has them, linked by its `client_request_id` and `runtimePolicy.retryOf`.
async fn retry(app: &App, workflow_id: &str, args: &Args) -> Result<Value, ToolError> {
    let store = &app.engine.store;
    let old = store
        .get_workflow(workflow_id)
        .await?
        .ok_or_else(|| ToolError::invalid_argument("workflow_id", "is not a known workflow"))?;
    let existing = store.workflow_retries(workflow_id).await?.len();
    let key = retry_key(workflow_id, existing);
    let mut input = old.input.clone();
    let mut policy = old.runtime_policy.clone().unwrap_or_else(|| json!({}));
    if !policy.is_object() {
        policy = json!({});
    }
    if let Some(sandbox) = args.str("sandbox") {
        // The same Plan Mode floor as `codex_start_plan_workflow`: a plan workflow runs at least workspace-write.
        let floor = old.kind == "plan_then_execute" && workflows::sandbox_rank(sandbox) < 1;
        let effective = if floor { "workspace-write" } else { sandbox };
        if input.get("sandbox").is_some() {
            input["sandbox"] = json!(effective);
        }
        policy["requestedSandbox"] = json!(sandbox);
        policy["effectiveSandbox"] = json!(effective);
        policy["runtimePolicyAdjusted"] = json!(floor);
        policy["adjustmentReason"] = json!(floor.then_some("plan_mode_floor"));
    }
    if let Some(approval) = args.str("approval_policy") {
        let effective = workflows::effective_approval(approval);
        if input.get("approvalPolicy").is_some() {
            input["approvalPolicy"] = json!(effective);
        }
        policy["requestedApprovalPolicy"] = json!(approval);
        policy["effectiveApprovalPolicy"] = json!(effective);
    }
    policy["retryOf"] = json!(workflow_id);
    let fingerprint = sha256_hex(
        canonical_json(&json!({"input": input, "retryOf": workflow_id, "key": key})).as_bytes(),
    );
    let (workflow, created) = app
        .engine
        .start_workflow(WorkflowStart {
            kind: old.kind.clone(),
            plugin_id: old.plugin_id.clone(),
            input,
            client_request_id: key.clone(),
            request_fingerprint: fingerprint,
            runtime_policy: policy.clone(),
            goal: None,
        })
        .await
        .map_err(workflows::engine_error)?;
    tracing::info!(retry_of = %workflow_id, workflow = %workflow.workflow_id, created, "workflow retried by repair");
    Ok(json!({
        "workflowId": workflow.workflow_id,
        "clientRequestId": key,
        "retryOf": workflow_id,
        "created": created,
        "phase": workflow.phase,
        "runtimePolicy": policy,
    }))
}
