//! The tracker: app-server events become durable state.
//!
//! It is the only consumer that writes what app-server reports. Notifications are reduced first by a pure
//! function ([`reduce`]) to [`TurnUpdate`]s, then applied to the store, so the mapping from Codex's protocol
//! to our statuses is testable without a process. Every stored message and progress event carries an event
//! hash of its natural key, so a replayed notification is stored once.
//!
//! The progress journal keeps what helps an orchestrator judge progress and nothing it must not see: completed
//! assistant text, plan updates, reasoning *summaries*, counts of file changes and diffs, command starts and
//! exit codes, token usage, reroutes and warnings. Raw tool payloads and command output are never stored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::{Engine, EngineError};
use crate::appserver::{AppServerEvent, EventReceiver};
use crate::domain::failure::FailureCode;
use crate::domain::rules::status::is_terminal;
use crate::domain::server_requests::ServerRequestKind;
use crate::shutdown::Shutdown;
use crate::store::operations::{Operation, OperationFilter};
use crate::store::turns::event_hash;
use crate::store::{
    NewInteraction, NewProgressEvent, NewTurnMessage, TurnUpdate as StoreTurnUpdate,
};

mod reduce;

pub use reduce::{normalize_turn_status, reduce, TurnUpdate};

/// Time a finished turn may spend mirroring new history entries (the rest waits for the next refresh).
const HISTORY_MIRROR_BUDGET: Duration = Duration::from_millis(200);

impl Engine {
    /// Called once a creating call returned a turn id: marks the operation running, and finishes it at once
    /// when the turn already ended (its `turn/completed` can arrive before the `turn/start` reply is handled).
    pub(super) async fn turn_attached(
        &self,
        op: &Operation,
        thread_id: &str,
        turn_id: &str,
    ) -> Result<(), EngineError> {
        let generation = self
            .appserver
            .generation()
            .and_then(|g| i64::try_from(g).ok());
        let existing = self.store.get_turn(turn_id).await?;
        if existing.is_none() {
            self.store
                .upsert_turn(StoreTurnUpdate {
                    turn_id: turn_id.to_string(),
                    thread_id: thread_id.to_string(),
                    operation_id: Some(op.operation_id.clone()),
                    status: "running".to_string(),
                    terminal_source: None,
                    owner_id: Some(self.worker.owner_id.clone()),
                    process_generation: generation,
                })
                .await?;
        }
        let current = self.store.mark_turn_live(&op.operation_id, turn_id).await?;
        if let Some(turn) = self.store.get_turn(turn_id).await? {
            if turn.is_trusted_terminal() {
                self.finish_from_turn(&current, &turn).await?;
            }
        }
        Ok(())
    }

    /// Stores the final report of an operation whose turn ended (first finisher wins).
    pub(super) async fn finish_from_turn(
        &self,
        op: &Operation,
        turn: &crate::store::Turn,
    ) -> Result<(), EngineError> {
        let text = turn
            .final_message
            .as_deref()
            .or(turn.last_assistant_message.as_deref());
        let report = final_report(op, &turn.thread_id, &turn.turn_id, text, None);
        self.store
            .finish_operation(&op.operation_id, report, &turn.status)
            .await?;
        Ok(())
    }

    pub(super) async fn tracker_loop(
        self: Arc<Self>,
        mut events: EventReceiver,
        mut shutdown: Shutdown,
    ) {
        loop {
            let event = tokio::select! {
                _ = shutdown.recv() => return,
                event = events.recv() => event,
            };
            let result = match event {
                Ok(AppServerEvent::Notification {
                    generation,
                    method,
                    params,
                }) => self.apply_notification(generation, &method, &params).await,
                Ok(AppServerEvent::ServerRequest {
                    generation,
                    id,
                    method,
                    params,
                }) => {
                    self.record_server_request(generation, &id, &method, params)
                        .await
                }
                Ok(AppServerEvent::Exited { generation, .. }) => {
                    self.app_server_exited(generation).await
                }
                Ok(AppServerEvent::Started { .. }) => Ok(()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "tracker lagged behind app-server events");
                    Ok(())
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if let Err(err) = result {
                tracing::warn!(error = %err, "tracking an app-server event failed");
            }
        }
    }

    async fn operations_for_turn(&self, turn_id: &str) -> Result<Vec<Operation>, EngineError> {
        Ok(self
            .store
            .list_operations(
                OperationFilter {
                    turn_id: Some(turn_id.to_string()),
                    ..OperationFilter::default()
                },
                20,
            )
            .await?)
    }

    fn turn_update(
        &self,
        generation: u64,
        turn_id: &str,
        thread_id: &str,
        status: &str,
    ) -> StoreTurnUpdate {
        let terminal = is_terminal(status);
        StoreTurnUpdate {
            turn_id: turn_id.to_string(),
            thread_id: thread_id.to_string(),
            operation_id: None,
            status: status.to_string(),
            terminal_source: terminal.then(|| "app_server_event".to_string()),
            owner_id: Some(self.worker.owner_id.clone()),
            process_generation: i64::try_from(generation).ok(),
        }
    }

    pub(super) async fn apply_notification(
        &self,
        generation: u64,
        method: &str,
        params: &Value,
    ) -> Result<(), EngineError> {
        if matches!(method, "thread/goal/updated" | "thread/goal/cleared") {
            return self.observe_goal(method, params).await;
        }
        for update in reduce(method, params) {
            match update {
                TurnUpdate::Started { thread_id, turn_id } => {
                    let known = self.store.get_turn(&turn_id).await?;
                    if known.is_none_or(|t| !is_terminal(&t.status)) {
                        self.store
                            .upsert_turn(
                                self.turn_update(generation, &turn_id, &thread_id, "running"),
                            )
                            .await?;
                    }
                }
                TurnUpdate::AgentMessage {
                    turn_id,
                    item_id,
                    text,
                    phase,
                } => {
                    let kind = if phase.as_deref() == Some("commentary") {
                        "commentary"
                    } else {
                        "final_answer"
                    };
                    self.store
                        .append_turn_message(NewTurnMessage {
                            turn_id: turn_id.clone(),
                            thread_id: params
                                .get("threadId")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            item_id: Some(item_id.clone()),
                            role: "assistant".into(),
                            kind: kind.into(),
                            text,
                            event_hash: event_hash(&[&turn_id, "agentMessage", &item_id]),
                        })
                        .await?;
                }
                TurnUpdate::Progress {
                    turn_id,
                    kind,
                    item_id,
                    summary,
                    key,
                } => {
                    self.store
                        .append_progress_event(NewProgressEvent {
                            turn_id: turn_id.clone(),
                            thread_id: params
                                .get("threadId")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            method: method.to_string(),
                            kind,
                            item_id,
                            summary: Some(summary),
                            payload: None,
                            event_hash: event_hash(&[&turn_id, method, &key]),
                        })
                        .await?;
                }
                TurnUpdate::TokenUsage { turn_id, usage } => {
                    self.store.record_token_usage(&turn_id, usage).await?;
                }
                TurnUpdate::Completed {
                    thread_id,
                    turn_id,
                    status,
                    final_message,
                    error,
                } => {
                    if let Some(text) = &final_message {
                        self.store
                            .append_turn_message(NewTurnMessage {
                                turn_id: turn_id.clone(),
                                thread_id: Some(thread_id.clone()),
                                item_id: None,
                                role: "assistant".into(),
                                kind: "final_answer".into(),
                                text: text.clone(),
                                event_hash: event_hash(&[&turn_id, "turn/completed", "final"]),
                            })
                            .await?;
                    }
                    self.store
                        .upsert_turn(self.turn_update(generation, &turn_id, &thread_id, &status))
                        .await?;
                    let operations = self.operations_for_turn(&turn_id).await?;
                    if operations.is_empty() {
                        // A turn nobody submitted: app-server runs a compaction as such a turn.
                        self.settle_compaction(&thread_id, &turn_id, &status)
                            .await?;
                    }
                    for op in operations {
                        if op.is_terminal() {
                            continue;
                        }
                        let report = final_report(
                            &op,
                            &thread_id,
                            &turn_id,
                            final_message.as_deref(),
                            error.as_ref(),
                        );
                        self.store
                            .finish_operation(&op.operation_id, report, &status)
                            .await?;
                    }
                    // Mirror the finished turn into the chat history now, so a search finds it without waiting
                    // for the next search's refresh; a failure only delays it until then.
                    if let Err(err) = self.store.refresh_chat_history(HISTORY_MIRROR_BUDGET).await {
                        tracing::warn!(error = %err, "mirroring the chat history failed");
                    }
                    self.wake();
                }
            }
        }
        Ok(())
    }

    /// A server-to-client request: an interaction row (answerable from any process), the operation waits.
    /// Policy plugins may answer it at once by rule; otherwise a person or orchestrator does.
    async fn record_server_request(
        &self,
        generation: u64,
        id: &Value,
        method: &str,
        params: Value,
    ) -> Result<(), EngineError> {
        let Some(request) = ServerRequestKind::parse(method) else {
            // The supervisor answered it already: the same table decides what it routes here.
            return Ok(());
        };
        let kind = request.seed_kind();
        let thread_id = request.thread_id(&params);
        let mut turn_id = params
            .get("turnId")
            .and_then(Value::as_str)
            .map(str::to_string);
        if turn_id.is_none() {
            // A legacy approval names only its thread: it belongs to the thread's running turn.
            if let Some(thread) = &thread_id {
                turn_id = self.store.active_turn_of_thread(thread).await?;
            }
        }
        let available_decisions: Vec<String> = params
            .get("availableDecisions")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|d| match d {
                        Value::String(s) => Some(s.clone()),
                        Value::Object(map) => map.keys().next().cloned(),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_else(|| request.default_decisions());
        let timeout =
            i64::try_from(self.settings.interaction_timeout.as_millis()).unwrap_or(i64::MAX / 4);
        let waiting = crate::domain::rules::interactions::waiting_status(kind);
        let turn = match (&turn_id, &thread_id) {
            (Some(turn), Some(thread)) => Some(self.turn_update(generation, turn, thread, waiting)),
            _ => None,
        };
        let interaction = self
            .store
            .insert_interaction(NewInteraction {
                // The store finds the turn's live operation in the same transaction (see `mark_turn_live`).
                operation_id: None,
                workflow_id: None,
                thread_id: thread_id.clone(),
                turn_id: turn_id.clone(),
                method: method.to_string(),
                jsonrpc_id: id.to_string(),
                questions: params.get("questions").cloned(),
                answer_schema: params.get("requestedSchema").cloned(),
                risk_summary: risk_summary(method, &params),
                params,
                available_decisions,
                owner_id: self.worker.owner_id.clone(),
                process_generation: i64::try_from(generation).unwrap_or(i64::MAX),
                expires_at: crate::time::now_ms().saturating_add(timeout),
                turn,
            })
            .await?;
        self.offer_to_policies(&interaction).await;
        Ok(())
    }

    /// The app-server generation died: its turns and their operations end `unknown_after_app_server_exit`
    /// (never success), its interactions are orphaned.
    async fn app_server_exited(&self, exited: u64) -> Result<(), EngineError> {
        let generation = i64::try_from(exited).unwrap_or(i64::MAX);
        let turns = self
            .store
            .mark_generation_lost(&self.worker.owner_id, generation)
            .await?;
        let orphaned = self
            .store
            .orphan_interactions(&self.worker.owner_id, generation)
            .await?;
        self.store
            .lose_lifecycle_generation(&self.worker.owner_id, generation)
            .await?;
        self.loaded_threads.forget_generation(exited);
        tracing::warn!(
            generation,
            turns = turns.len(),
            orphaned,
            "app-server exited; its turns end unknown"
        );
        self.wake();
        Ok(())
    }
}

impl Engine {
    /// Ends the oldest running compaction of a thread with the turn that carried it.
    async fn settle_compaction(
        &self,
        thread_id: &str,
        turn_id: &str,
        status: &str,
    ) -> Result<(), EngineError> {
        if let Some(action) = self
            .store
            .running_compactions(thread_id)
            .await?
            .into_iter()
            .next()
        {
            let outcome = if status == "completed" {
                "completed"
            } else {
                "failed"
            };
            let error = (outcome == "failed").then(|| {
                FailureCode::SendFailed.failure(format!("compaction turn ended {status}"))
            });
            self.store
                .update_lifecycle_action(&action.action_id, outcome, None, error, Some(turn_id))
                .await?;
        }
        Ok(())
    }
}

/// One line saying what an interaction asks for, without secrets or full paths.
fn risk_summary(method: &str, params: &Value) -> Option<String> {
    match method {
        "item/commandExecution/requestApproval" | "execCommandApproval" => {
            // The reason is free text from the model and may quote the command's secrets.
            let reason = params
                .get("reason")
                .and_then(Value::as_str)
                .map(crate::domain::rules::redact::redact_text);
            Some(match reason {
                Some(reason) => format!("run a shell command ({reason})"),
                None => "run a shell command".to_string(),
            })
        }
        "item/fileChange/requestApproval" | "applyPatchApproval" => {
            Some("change files".to_string())
        }
        "item/permissions/requestApproval" => Some("grant extra permissions".to_string()),
        "item/tool/requestUserInput" => Some("answer questions".to_string()),
        "mcpServer/elicitation/request" => Some("provide input to an MCP server".to_string()),
        _ => None,
    }
}

/// The seed's `finalReport`: text plus, with an output schema, the parsed structured result.
pub fn final_report(
    op: &Operation,
    thread_id: &str,
    turn_id: &str,
    text: Option<&str>,
    error: Option<&Value>,
) -> Value {
    let schema = op.request.get("outputSchema").filter(|s| !s.is_null());
    let (structured, parse_status) = match text {
        None | Some("") => (Value::Null, "empty"),
        Some(text) => match parse_structured(text) {
            Some(value) => (value, "valid_json"),
            None => (Value::Null, "plain_text"),
        },
    };
    let schema_hash = schema.map(|s| {
        crate::domain::rules::canonical::sha256_hex(
            crate::domain::rules::canonical::canonical_json(s).as_bytes(),
        )[..32]
            .to_string()
    });
    json!({
        "text": text,
        "summary": text.map(|t| t.chars().take(500).collect::<String>()),
        "structured": if schema.is_some() { structured } else { Value::Null },
        "structuredStatus": if schema.is_none() { "not_requested" } else if parse_status == "valid_json" { "valid" } else { "invalid" },
        "structuredParseStatus": parse_status,
        "schemaHash": schema_hash,
        "threadId": thread_id,
        "turnId": turn_id,
        "error": error,
    })
}

/// JSON from the whole text or from a fenced ```json block.
pub fn parse_structured(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text.trim()) {
        return Some(value);
    }
    let start = text.find("```json")? + "```json".len();
    let rest = &text[start..];
    let end = rest.find("```")?;
    serde_json::from_str(rest[..end].trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_turn_carries_the_last_agent_message() {
        let params = json!({"threadId": "t", "turn": {"id": "u", "status": "completed", "items": [
            {"type": "userMessage"}, {"type": "agentMessage", "text": "first"}, {"type": "agentMessage", "text": "last"}]}});
        assert_eq!(
            reduce("turn/completed", &params),
            vec![TurnUpdate::Completed {
                thread_id: "t".into(),
                turn_id: "u".into(),
                status: "completed".into(),
                final_message: Some("last".into()),
                error: None
            }]
        );
    }

    #[test]
    fn statuses_follow_the_seed_table() {
        assert_eq!(normalize_turn_status("idle"), "completed");
        assert_eq!(normalize_turn_status("interrupted"), "interrupted");
        assert_eq!(normalize_turn_status("cancelled"), "aborted");
        assert_eq!(normalize_turn_status("failed"), "failed");
    }

    #[test]
    fn structured_results_come_from_json_or_a_json_block() {
        assert_eq!(parse_structured("{\"a\": 1}"), Some(json!({"a": 1})));
        assert_eq!(
            parse_structured("Here:\n```json\n{\"b\": [1]}\n```\nDone."),
            Some(json!({"b": [1]}))
        );
        assert_eq!(parse_structured("no json here"), None);
    }
}
