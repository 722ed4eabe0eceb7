//! Durable operations: `codex_submit_task` and `codex_get_operation_status`.

use serde_json::{json, Value};

use crate::app::App;
use crate::appserver::protocol::TurnInterrupt;
use crate::domain::operation::{OperationKind, OperationStatus};
use crate::domain::rules::output_schema::{output_schema_hash, validate_output_schema};
use crate::domain::rules::status::is_terminal;
use crate::engine::request::{RawArgs, RequestError, SubmitRequest};
use crate::mcp::args::Args;
use crate::mcp::error::{ErrorCode, ToolError};
use crate::projects::ProjectError;
use crate::store::operations::{
    InsertOutcome, NewOperation, Operation, OperationFilter, OperationSnapshot,
};
use crate::store::{InteractionFilter, PendingInteraction, ProgressEvent, Turn, TurnMessage};
use crate::time::iso8601_from_ms;

/// Arguments whose default comes from the server's config, not from the schema: a caller that omits them
/// gets `default_sandbox` / `default_approval_policy`.
const CONFIG_DEFAULTED: [&str; 2] = ["sandbox", "approval_policy"];

impl RawArgs for Args {
    fn str(&self, key: &str) -> Option<&str> {
        if CONFIG_DEFAULTED.contains(&key) && !self.was_provided(key) {
            return None;
        }
        Args::str(self, key)
    }
    fn bool(&self, key: &str) -> bool {
        Args::bool(self, key)
    }
    fn int(&self, key: &str) -> Option<i64> {
        Args::int(self, key)
    }
    fn value(&self, key: &str) -> Option<&Value> {
        Args::value(self, key)
    }
}

impl From<RequestError> for ToolError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Invalid { field, message } => {
                ToolError::invalid_argument(&field, message)
            }
            RequestError::Project(ProjectError::NotFound { reference }) => ToolError::new(
                ErrorCode::ProjectNotFound,
                format!("project not found: {reference}"),
            )
            .with_detail("projectId", json!(reference)),
            RequestError::Project(ProjectError::OutsideAllowedRoots { path }) => {
                ToolError::invalid_argument(
                    "project_id",
                    format!("{} is outside the allowed roots", path.display()),
                )
            }
            RequestError::Project(err @ ProjectError::BadRegistry { .. }) => {
                ToolError::new(ErrorCode::InternalStateReadError, err.to_string())
            }
        }
    }
}

/// Handler of `codex_submit_task`: validates, commits the operation row, wakes the dispatcher, returns at once.
pub async fn submit(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let request = SubmitRequest::from_args(args, &app.config, &app.projects)?;
    let schema_hash = match &request.output_schema {
        Some(schema) => {
            validate_output_schema(schema)
                .map_err(|err| ToolError::invalid_argument("output_schema", err.to_string()))?;
            Some(output_schema_hash(schema))
        }
        None => None,
    };
    let canonical = request.canonical_request();
    let mut new = NewOperation::new(request.operation_type.as_str(), canonical);
    new.client_request_id = request.client_request_id.clone();
    new.project_id = request.project.as_ref().map(|p| p.project_id.clone());
    new.project_path_key = request.cwd.to_string_lossy().into_owned();
    new.cwd = Some(request.cwd.to_string_lossy().into_owned());
    new.thread_id = request.thread_id.clone();
    new.source_thread_id = request.source_thread_id.clone();
    new.expected_turn_id = request.expected_turn_id.clone();
    new.workflow_id = request.workflow_id.clone();
    new.agent_id = request.agent_id.clone();
    new.priority = request.priority.clone();
    new.estimated_cost_class = request.estimated_cost_class.clone();
    new.resource_keys = request.resource_keys.clone();
    new.dedup_policy = request.dedup_policy.clone();
    new.force = request.force;
    new.message = request.message.clone();
    new.output_schema_hash = schema_hash.clone();
    // Only workers with the same codex home, database and roots may run it (seed §f).
    new.config_fingerprint = engine.worker.config_fingerprint.clone();
    if !request.input_items.is_empty() {
        let items: Vec<Value> = request
            .input_items
            .iter()
            .map(|i| i.safe_metadata())
            .collect();
        new.input_items_hash = Some(crate::mcp::catalog::sha256_hex(
            Value::Array(items).to_string().as_bytes(),
        ));
    }
    let outcome = engine
        .store
        .insert_operation(new)
        .await
        .map_err(ToolError::from)?;
    let (operation, idempotent, continued_from) = match &outcome {
        InsertOutcome::Created {
            operation,
            continued_from,
            ..
        } => (operation, false, continued_from.clone()),
        InsertOutcome::Existing { operation, .. } => (operation, true, None),
    };
    if idempotent {
        engine.wake();
    } else {
        engine.wake_for_queued(operation);
    }
    // A row just created has no turn, messages or interactions yet: render it without reading it back.
    let mut payload = if idempotent {
        operation_payload(app, operation, &PayloadOptions::default()).await?
    } else {
        render_operation(
            &app.engine().worker.owner_id,
            OperationSnapshot::of(operation.clone()),
            &PayloadOptions::default(),
        )?
    };
    payload["idempotent"] = json!(idempotent);
    payload["idempotencyScope"] = json!(if idempotent { Some("operation") } else { None });
    payload["deduplicated"] = json!(continued_from.is_some());
    payload["dedupAction"] = json!(continued_from.as_ref().map(|_| "continued_existing_chat"));
    payload["continuedFromOperationId"] = json!(continued_from);
    payload["runtimePolicy"] = serde_json::to_value(&request.runtime_policy).unwrap_or(Value::Null);
    payload["inputItemState"] = json!({
        "count": request.input_items.len(),
        "items": request.input_items.iter().map(|i| i.safe_metadata()).collect::<Vec<_>>(),
    });
    payload["outputSchemaState"] =
        json!({"present": schema_hash.is_some(), "schemaHash": schema_hash});
    Ok(payload)
}

/// Limits for the message and progress parts of an operation payload.
#[derive(Debug, Clone)]
pub struct PayloadOptions {
    /// How many recent messages.
    pub last_messages: usize,
    /// Longest message text.
    pub message_max_chars: usize,
    /// How many progress events.
    pub progress_events: usize,
    /// Longest progress text.
    pub progress_max_chars: usize,
}

impl Default for PayloadOptions {
    fn default() -> Self {
        PayloadOptions {
            last_messages: 10,
            message_max_chars: 8000,
            progress_events: 10,
            progress_max_chars: 2000,
        }
    }
}

/// Handler of `codex_get_operation_status`: a pure read of one SQLite snapshot (the operation, its turn, messages,
/// events and interactions in one read transaction; no separate lookup of the operation first).
pub async fn status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let operation_id = args.required_str("operation_id")?;
    let options = options_from(args);
    let snapshot = app
        .engine()
        .store
        .operation_snapshot(operation_id, options.last_messages, options.progress_events)
        .await?
        .ok_or_else(|| unknown_operation(operation_id))?;
    render_operation(&app.engine().worker.owner_id, snapshot, &options)
}

fn unknown_operation(operation_id: &str) -> ToolError {
    ToolError::invalid_argument("operation_id", format!("unknown operation {operation_id}"))
        .with_detail("operationId", json!(operation_id))
}

fn options_from(args: &Args) -> PayloadOptions {
    let count = |key: &str, fallback: i64| usize::try_from(args.int_or(key, fallback)).unwrap_or(0);
    PayloadOptions {
        last_messages: count("last_messages", 10),
        message_max_chars: count("message_max_chars", 8000),
        progress_events: count("progress_events", 10),
        progress_max_chars: count("progress_max_chars", 2000),
    }
}

/// A final report with its `text` cut to `max_chars` characters (and `truncated` saying so).
pub(super) fn truncated_report(report: Option<Value>, max_chars: usize) -> Value {
    let mut report = report.unwrap_or(Value::Null);
    if let Some(text) = report.get("text").and_then(Value::as_str) {
        let (text, truncated) = truncate(text, max_chars);
        report["text"] = json!(text);
        report["truncated"] = json!(truncated);
    }
    report
}

/// `text` cut to `max_chars` characters, and whether it was cut.
pub(super) fn truncate(text: &str, max_chars: usize) -> (String, bool) {
    match text.char_indices().nth(max_chars) {
        Some((idx, _)) => (text[..idx].to_string(), true),
        None => (text.to_string(), false),
    }
}

fn messages_json(messages: &[TurnMessage], max_chars: usize) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let (text, truncated) = truncate(&m.text, max_chars);
            json!({"role": m.role, "phase": m.kind, "text": text, "truncated": truncated,
                   "itemId": m.item_id, "createdAt": m.created_at.iso()})
        })
        .collect()
}

fn progress_json(events: &[ProgressEvent], max_chars: usize) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let (text, truncated) = truncate(e.summary.as_deref().unwrap_or_default(), max_chars);
            json!({"kind": e.kind, "method": e.method, "text": text, "truncated": truncated,
                   "itemId": e.item_id, "createdAt": e.created_at.iso()})
        })
        .collect()
}

fn token_usage_json(turn: Option<&Turn>) -> Value {
    match turn {
        Some(turn) => json!({"band": turn.token_band, "usage": turn.token_usage}),
        None => Value::Null,
    }
}

/// An interaction as list and status tools show it (params already redacted by the store).
pub fn interaction_json(interaction: &PendingInteraction) -> Value {
    json!({
        "interactionId": interaction.interaction_id,
        "method": interaction.method,
        "kind": interaction.kind,
        "status": interaction.status,
        "terminal": interaction.terminal,
        "availableDecisions": interaction.available_decisions,
        "questions": interaction.questions.clone().unwrap_or(json!([])),
        "answerSchema": interaction.answer_schema,
        "riskSummary": interaction.risk_summary,
        "expiresAt": interaction.expires_at.iso(),
        "processGeneration": interaction.process_generation,
        "threadId": interaction.thread_id,
        "turnId": interaction.turn_id,
        "operationId": interaction.operation_id,
        "workflowId": interaction.workflow_id,
        "answeredBy": interaction.answered_by,
        "answeredRule": interaction.answered_rule,
        "deliveryState": interaction.delivery_state,
        "createdAt": interaction.created_at.iso(),
        "params": interaction.params,
    })
}

/// The seed's operation payload (O) for one row, with its turn, messages, progress and interactions read from
/// one snapshot.
pub async fn operation_payload(
    app: &App,
    op: &Operation,
    options: &PayloadOptions,
) -> Result<Value, ToolError> {
    let snapshot = app
        .engine()
        .store
        .operation_snapshot(
            &op.operation_id,
            options.last_messages,
            options.progress_events,
        )
        .await?
        .unwrap_or_else(|| OperationSnapshot::of(op.clone()));
    render_operation(&app.engine().worker.owner_id, snapshot, options)
}

/// Renders a snapshot as the operation payload (O), as seen by the process whose worker id is `owner_id`
/// (its `leaseState`); no I/O.
pub(crate) fn render_operation(
    owner_id: &str,
    snapshot: OperationSnapshot,
    options: &PayloadOptions,
) -> Result<Value, ToolError> {
    let OperationSnapshot {
        operation: op,
        turn,
        latest_messages: messages,
        progress_events: progress,
        pending_interactions: interactions,
    } = snapshot;
    let now = crate::time::now_ms();
    let final_report = truncated_report(op.final_report.clone(), options.message_max_chars);
    let lease_state = op.lease_state(owner_id, now);
    let mut next_action = op.next_recommended_action().to_string();
    if op.operation_type == OperationKind::ForkThread
        && op.turn_id.is_none()
        && op.status == OperationStatus::Completed
    {
        next_action = "read_forked_thread".to_string();
    }
    let request = &op.request;
    let runtime_policy = request.get("runtimePolicy").cloned().unwrap_or(Value::Null);
    let schema_hash = final_report
        .get("schemaHash")
        .cloned()
        .filter(|h| !h.is_null())
        .or_else(|| {
            request
                .get("outputSchema")
                .filter(|s| !s.is_null())
                .map(|s| json!(output_schema_hash(s)))
        });
    let items = request
        .get("inputItems")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(json!({
        "operationId": op.operation_id,
        "clientRequestId": op.client_request_id,
        "operationType": op.operation_type,
        "projectId": op.project_id,
        "chatId": op.thread_id,
        "threadId": op.thread_id,
        "turnId": op.turn_id,
        "workflowId": op.workflow_id,
        "status": op.status,
        "phase": op.phase,
        "terminal": op.is_terminal(),
        "attemptCount": op.attempt_count,
        "maxAttempts": op.max_attempts,
        "nextAttemptAt": iso8601_from_ms(op.next_attempt_at.ms()),
        "lastError": op.last_error,
        "requestSummary": op.request_summary(),
        "leaseState": {
            "state": lease_state,
            "owner": op.lease_owner,
            "expiresAt": op.lease_expires_at.map(|t| iso8601_from_ms(t.ms())),
        },
        "queueState": {
            "queueStatus": op.queue_status,
            "queuedReason": op.queued_reason,
            "priority": op.priority,
            "estimatedCostClass": op.estimated_cost_class,
            "agentId": op.agent_id,
            "resourceKeys": op.resource_keys,
            "workerId": op.worker_id,
        },
        "turnStatus": turn.as_ref().map(|t| t.status.clone()),
        "latestMessages": messages_json(&messages, options.message_max_chars),
        "progressEvents": progress_json(&progress, options.progress_max_chars),
        "tokenUsage": token_usage_json(turn.as_ref()),
        "pendingInteractions": interactions.iter().map(interaction_json).collect::<Vec<_>>(),
        "finalReport": final_report,
        "outputSchemaState": {"present": schema_hash.is_some(), "schemaHash": schema_hash},
        "inputItemState": {"count": items},
        "runtimePolicy": runtime_policy,
        "steerState": (op.operation_type == OperationKind::SteerTurn).then(|| json!({
            "expectedTurnId": op.expected_turn_id, "joinedTurnId": op.turn_id})),
        "forkState": (op.operation_type == OperationKind::ForkThread).then(|| json!({
            "sourceThreadId": op.source_thread_id, "forkedThreadId": op.thread_id})),
        "createdAt": iso8601_from_ms(op.created_at.ms()),
        "updatedAt": iso8601_from_ms(op.updated_at.ms()),
        "operationRowAgeSeconds": ((now - op.created_at.ms()).max(0) as f64) / 1000.0,
        "nextRecommendedAction": next_action,
        "recommendedPollAfterSeconds": op.recommended_poll_after_seconds(),
        "pollRecommended": !op.is_terminal(),
    }))
}

/// `CODEX_TURN_NOT_FOUND` for a turn the store does not track.
pub(super) fn turn_not_found(turn_id: &str) -> ToolError {
    ToolError::new(
        ErrorCode::TurnNotFound,
        format!("turn {turn_id} is not tracked"),
    )
    .with_detail("turnId", json!(turn_id))
}

/// Handler of `codex_get_turn_status`: one tracked turn, read from SQLite.
pub async fn turn_status(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let turn_id = args.required_str("turn_id")?;
    let turn = engine
        .store
        .get_turn(turn_id)
        .await?
        .ok_or_else(|| turn_not_found(turn_id))?;
    if let Some(thread_id) = args.str("thread_id") {
        if thread_id != turn.thread_id {
            return Err(ToolError::invalid_argument(
                "thread_id",
                format!("turn {turn_id} belongs to another thread"),
            ));
        }
    }
    let options = options_from(args);
    let messages = engine
        .store
        .list_turn_messages(turn_id, options.last_messages)
        .await?;
    let progress = engine
        .store
        .list_progress_events(turn_id, options.progress_events)
        .await?;
    let interactions = engine
        .store
        .list_interactions(
            InteractionFilter {
                turn_id: Some(turn_id.to_string()),
                status: Some("pending".into()),
                ..Default::default()
            },
            50,
        )
        .await?;
    let operations = engine
        .store
        .list_operations(
            OperationFilter {
                turn_id: Some(turn_id.to_string()),
                ..Default::default()
            },
            20,
        )
        .await?;
    let terminal = is_terminal(&turn.status);
    let final_message = turn
        .final_message
        .as_deref()
        .map(|t| truncate(t, options.message_max_chars).0);
    Ok(json!({
        "turnId": turn.turn_id,
        "threadId": turn.thread_id,
        "status": turn.status,
        "terminal": terminal,
        "finalMessage": final_message,
        "terminalEvidence": {
            "trusted": turn.is_trusted_terminal(),
            "source": turn.terminal_source,
            "observedAt": turn.completed_at.map(|t| t.iso()),
        },
        "latestMessages": messages_json(&messages, options.message_max_chars),
        "progressEvents": progress_json(&progress, options.progress_max_chars),
        "pendingInteractions": interactions.iter().map(interaction_json).collect::<Vec<_>>(),
        "tokenUsage": token_usage_json(Some(&turn)),
        "processGeneration": turn.process_generation,
        "startedAt": turn.started_at.map(|t| t.iso()),
        "completedAt": turn.completed_at.map(|t| t.iso()),
        "error": Value::Null,
        "operationIds": operations.iter().map(|o| o.operation_id.clone()).collect::<Vec<_>>(),
        "nextRecommendedAction": if !interactions.is_empty() { "answer_pending_interaction" }
            else if terminal { "read_final_report" } else { "poll_turn_status" },
        "recommendedPollAfterSeconds": if terminal { 0 } else if interactions.is_empty() { 15 } else { 10 },
    }))
}

/// Handler of `codex_interrupt_turn`: `turn/interrupt` on the turn named directly or through an operation
/// (or a workflow's current operation). The tracker records the `interrupted` end from app-server's event.
pub async fn interrupt(app: &App, args: &Args) -> Result<Value, ToolError> {
    let engine = app.engine();
    let (target, mut thread_id, mut turn_id, mut operation_id) =
        if let Some(op_id) = args.str("operation_id") {
            let op = engine
                .store
                .get_operation(op_id)
                .await?
                .ok_or_else(|| unknown_operation(op_id))?;
            ("operation", op.thread_id, op.turn_id, Some(op.operation_id))
        } else if let Some(workflow_id) = args.str("workflow_id") {
            let ops = engine
                .store
                .list_operations(
                    OperationFilter {
                        workflow_id: Some(workflow_id.to_string()),
                        ..Default::default()
                    },
                    20,
                )
                .await?;
            let op = ops.into_iter().find(|o| !o.is_terminal()).ok_or_else(|| {
                ToolError::invalid_argument(
                    "workflow_id",
                    format!("workflow {workflow_id} has no active operation"),
                )
            })?;
            ("workflow", op.thread_id, op.turn_id, Some(op.operation_id))
        } else {
            (
                "turn",
                args.string("thread_id"),
                args.string("turn_id"),
                None,
            )
        };
    if turn_id.is_none() {
        if let Some(op_id) = &operation_id {
            return Err(ToolError::new(
                ErrorCode::TurnNotFound,
                format!("operation {op_id} has no turn yet"),
            )
            .with_detail("operationId", json!(op_id)));
        }
        return Err(ToolError::invalid_argument(
            "turn_id",
            "give turn_id (with thread_id), operation_id or workflow_id",
        ));
    }
    let turn_key = turn_id.clone().unwrap_or_default();
    if let Some(turn) = engine.store.get_turn(&turn_key).await? {
        thread_id = thread_id.or(Some(turn.thread_id.clone()));
        if is_terminal(&turn.status) {
            return Ok(json!({
                "interrupted": false, "threadId": thread_id, "turnId": turn_id, "operationId": operation_id,
                "interruptedTarget": target, "turnStatus": turn.status, "loopGuard": null,
                "postRepairGuidance": "the turn already ended; read its final report",
            }));
        }
    }
    let thread = thread_id.clone().ok_or_else(|| {
        ToolError::invalid_argument("thread_id", "thread_id is required for an untracked turn")
    })?;
    let timeout = std::time::Duration::from_secs(
        u64::try_from(args.int_or("timeout_seconds", 30)).unwrap_or(30),
    );
    // Right after `turn/start` answers, app-server may not list the turn as active yet ("no active turn");
    // a short retry covers that window, and a turn that ended meanwhile is reported as such.
    let mut attempts = 0;
    loop {
        let sent = engine
            .appserver
            .send_with_timeout(
                &TurnInterrupt {
                    thread_id: thread.clone(),
                    turn_id: turn_key.clone(),
                },
                timeout,
            )
            .await;
        match sent {
            Ok(_) => break,
            Err(crate::appserver::AppServerError::Rpc { code: -32600, .. }) if attempts < 20 => {
                attempts += 1;
                if let Some(turn) = engine.store.get_turn(&turn_key).await? {
                    if is_terminal(&turn.status) {
                        break;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
    // The `turn/completed(interrupted)` notification usually follows within milliseconds.
    let mut status = None;
    for _ in 0..50 {
        if let Some(turn) = engine.store.get_turn(&turn_key).await? {
            if is_terminal(&turn.status) {
                status = Some(turn.status);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if operation_id.is_none() {
        operation_id = engine
            .store
            .list_operations(
                OperationFilter {
                    turn_id: Some(turn_key.clone()),
                    ..Default::default()
                },
                1,
            )
            .await?
            .first()
            .map(|o| o.operation_id.clone());
    }
    turn_id = Some(turn_key);
    Ok(json!({
        "interrupted": true,
        "threadId": thread_id,
        "turnId": turn_id,
        "operationId": operation_id,
        "interruptedTarget": target,
        "turnStatus": status.unwrap_or_else(|| "interrupting".to_string()),
        "loopGuard": null,
        "postRepairGuidance": null,
    }))
}
