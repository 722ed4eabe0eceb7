//! Performing a workflow's journaled actions: turns and steers through ordinary operations (idempotent by
//! `client_request_id`), lifecycle actions, interrupts, and refusing what policy or the host cannot do. Goal
//! actions are in `goal_actions.rs`.

use serde_json::{json, Value};

use super::*;
use crate::appserver::protocol::TurnInterrupt;

/// The `action-failed` code of a `steer-turn` on a thread where no turn runs.
const NO_ACTIVE_TURN: &str = "no_active_turn";

/// Why an action naming a thread no action has created yet is refused.
const NO_THREAD: &str = "the action names a thread that does not exist yet";

impl Engine {
    /// Moves one action forward; returns the workflow when something changed.
    pub(super) async fn step_action(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<Option<Workflow>, EngineError> {
        let id = &workflow.workflow_id;
        match (action.state.as_str(), action.kind.as_str()) {
            ("pending", _) => {
                self.perform(workflow, action, all).await?;
                Ok(Some(self.reload(id).await?))
            }
            ("performed" | "started", "start-turn" | "start-review") => {
                let Some(op_id) = &action.operation_id else {
                    return Ok(None);
                };
                let op = self.store.require_operation(op_id).await?;
                if action.state == "performed" && op.turn_id.is_some() {
                    return self
                        .report_started(workflow, action, all, &op)
                        .await
                        .map(Some);
                }
                if op.is_terminal() {
                    return self.report_finished(workflow, action, &op).await.map(Some);
                }
                Ok(None)
            }
            ("performed", "compact-thread" | "archive-thread") => {
                self.report_lifecycle(workflow, action).await
            }
            ("performed", "steer-turn") => self.report_steer(workflow, action).await,
            ("performed", "set-goal" | "clear-goal") => self
                .finish_goal_action(workflow, action, all, false)
                .await
                .map(Some),
            _ => Ok(None),
        }
    }

    /// Performs a `compact-thread` / `archive-thread` action as an audited lifecycle action. The `tla_` id is
    /// journaled on the workflow action before app-server is called, so a replay after a crash waits for
    /// that row (which recovery ends `unknown_after_app_server_exit`) instead of compacting twice.
    pub(super) async fn perform_lifecycle(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<(), EngineError> {
        let id = &workflow.workflow_id;
        let kind = if action.kind == "compact-thread" {
            LifecycleKind::Compact
        } else {
            LifecycleKind::Archive
        };
        let refusal = match Self::resolve_thread(&action.action["thread"], all) {
            None => Err(("no_thread".to_string(), NO_THREAD.to_string())),
            Some(thread) => match self.thread_busy(&thread).await? {
                Some(busy) => Err((FailureCode::Busy.as_str().to_string(), busy.message)),
                None => Ok(thread),
            },
        };
        let thread = match refusal {
            Ok(thread) => thread,
            Err((code, message)) => {
                return self.refuse_action(workflow, action, &code, message).await;
            }
        };
        let row = self.begin_lifecycle_action(kind, &thread).await?;
        let output = json!({"lifecycleActionId": row.action_id, "threadId": thread});
        self.store
            .set_workflow_action_state(id, &action.action_id, "performed", None, Some(output))
            .await?;
        let timeout = workflow
            .input
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .map_or(Duration::from_secs(30), Duration::from_secs);
        self.perform_lifecycle_action(kind, &row, timeout).await?;
        Ok(())
    }

    /// Performs an `interrupt-turn` action: `turn/interrupt` of the thread's active turn, if it has one. The
    /// plugin gets `action-completed {threadId, turnId, interrupted}` (`interrupted: false`, `turnId: null`
    /// when nothing was running), or `action-failed` when app-server refused. Interrupting twice is harmless,
    /// so a replay after a crash may repeat it.
    pub(super) async fn perform_interrupt(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<(), EngineError> {
        let Some(thread) = self.thread_or_refuse(workflow, action, all).await? else {
            return Ok(());
        };
        let turn_id = self
            .thread_busy(&thread)
            .await?
            .filter(|busy| busy.reason == "active_turn")
            .and_then(|busy| busy.details["turnId"].as_str().map(str::to_string));
        if let Some(turn_id) = &turn_id {
            let interrupt = TurnInterrupt {
                thread_id: thread.clone(),
                turn_id: turn_id.clone(),
            };
            if let Err(err) = self.appserver.send(&interrupt).await {
                let code = err.failure_code().as_str();
                return self
                    .refuse_action(workflow, action, code, err.to_string())
                    .await;
            }
        }
        let output =
            json!({"threadId": thread, "turnId": turn_id, "interrupted": turn_id.is_some()});
        self.report_output(workflow, &action.action_id, "reported", output, None)
            .await?;
        Ok(())
    }

    /// Performs a `steer-turn` action: a `steer_turn` operation (the same path as `codex_submit_task`'s steer,
    /// policy kind `steer-turn` included) on the thread's active turn, its `client_request_id`
    /// `workflow:<wf>:<action id>` journaled with the action (`performed`) in one transaction, so a replay finds
    /// it. A thread with no running turn gives `action-failed {code: "no_active_turn"}` at once.
    pub(super) async fn perform_steer(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<(), EngineError> {
        let Some(thread) = self.thread_or_refuse(workflow, action, all).await? else {
            return Ok(());
        };
        let Some(turn_id) = self.running_turn(&thread).await? else {
            let message = format!("thread {thread} has no running turn to steer");
            return self
                .refuse_action(workflow, action, NO_ACTIVE_TURN, message)
                .await;
        };
        // A workflow without a working directory (a compaction's) gives none: an empty one is no path.
        let cwd = workflow
            .input
            .get("cwd")
            .and_then(Value::as_str)
            .map(str::to_string);
        let message = action.action["message"].as_str().unwrap_or_default();
        let runtime_policy = workflow
            .runtime_policy
            .clone()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        let request = json!({
            "operationType": "steer_turn",
            "workflowId": workflow.workflow_id,
            "workflowActionId": action.action_id,
            "cwd": cwd,
            "threadId": thread,
            "expectedTurnId": turn_id,
            "message": message,
            // The steer joins a turn of this workflow: the policy sees the workflow's effective settings.
            "runtimePolicy": runtime_policy,
        });
        let mut new = NewOperation::new("steer_turn", request);
        new.client_request_id = Some(format!(
            "workflow:{}:{}",
            workflow.workflow_id, action.action_id
        ));
        new.project_path_key = cwd.clone().unwrap_or_default();
        new.cwd = cwd;
        new.thread_id = Some(thread);
        new.expected_turn_id = Some(turn_id);
        new.workflow_id = Some(workflow.workflow_id.clone());
        new.dedup_policy = "idempotency_only".to_string();
        new.message = Some(message.to_string());
        // A steer only means something while its turn runs: a refusal is final, not retried into a later turn.
        new.max_attempts = 1;
        new.config_fingerprint = self.worker.config_fingerprint.clone();
        self.store
            .insert_workflow_operation(&workflow.workflow_id, &action.action_id, new)
            .await?;
        self.wake();
        Ok(())
    }

    /// The turn running on `thread` as the host tracks it: the turn of a live operation there (as
    /// `interrupt-turn` finds it) whose tracked row has not ended. App-server's own goal continuation turns
    /// belong to no operation and are not steered.
    async fn running_turn(&self, thread: &str) -> Result<Option<String>, EngineError> {
        let turn_id = self
            .thread_busy(thread)
            .await?
            .filter(|busy| busy.reason == "active_turn")
            .and_then(|busy| busy.details["turnId"].as_str().map(str::to_string));
        let Some(turn_id) = turn_id else {
            return Ok(None);
        };
        // The tracked turn ends before the operations that follow it: a turn just completed is not running.
        let ended = self
            .store
            .get_turn(&turn_id)
            .await?
            .is_some_and(|turn| crate::domain::rules::status::is_terminal(&turn.status));
        Ok((!ended).then_some(turn_id))
    }

    /// Reports a performed `steer-turn`: `action-completed {threadId, turnId, operationId}` once app-server
    /// accepted the input into the turn, or the operation's failure (`action-failed` with its code, e.g.
    /// `CODEX_POLICY_DENIED`) when it ended without.
    async fn report_steer(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
    ) -> Result<Option<Workflow>, EngineError> {
        let Some(op_id) = &action.operation_id else {
            return Ok(None);
        };
        let op = self.store.require_operation(op_id).await?;
        if op.turn_id.is_some() {
            let output = json!({"threadId": op.thread_id, "turnId": op.turn_id, "operationId": op.operation_id});
            let reported = Some((action.action_id.clone(), "reported".to_string()));
            return self
                .report_output(workflow, &action.action_id, "performed", output, reported)
                .await
                .map(Some);
        }
        if op.is_terminal() {
            return self.report_finished(workflow, action, &op).await.map(Some);
        }
        Ok(None)
    }

    /// Reports a lifecycle action's end to the plugin once its `tla_` row is terminal.
    pub(super) async fn report_lifecycle(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
    ) -> Result<Option<Workflow>, EngineError> {
        let Some(lifecycle_id) = action
            .output
            .as_ref()
            .and_then(|o| o.get("lifecycleActionId"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let Some(row) = self.store.get_lifecycle_action(lifecycle_id).await? else {
            return Ok(None);
        };
        if matches!(row.status.as_str(), "starting" | "running") {
            return Ok(None);
        }
        let source = Some((action.action_id.clone(), "reported".to_string()));
        let output = json!({"lifecycleActionId": row.action_id, "threadId": row.thread_id,
                            "status": row.status, "turnId": row.target_turn_id});
        let event = if row.status == "completed" {
            Event::ActionCompleted(ActionOutput {
                action_id: action.action_id.clone(),
                output: output.to_string(),
            })
        } else {
            let code = row
                .error
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or(row.status.as_str())
                .to_string();
            Event::ActionFailed(ActionFailure {
                action_id: action.action_id.clone(),
                code,
                message: row
                    .error
                    .as_ref()
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .map_or_else(
                        || format!("lifecycle action {} ended {}", row.action_id, row.status),
                        str::to_string,
                    ),
            })
        };
        self.feed_workflow(workflow, event, Some(output), source)
            .await
            .map(Some)
    }

    pub(super) async fn reload(&self, workflow_id: &str) -> Result<Workflow, EngineError> {
        self.store
            .get_workflow(workflow_id)
            .await?
            .ok_or_else(|| EngineError::Invalid(format!("workflow {workflow_id} vanished")))
    }

    /// The thread an action names, or `None` once the action is refused with `no_thread` (the plugin gets
    /// `action-failed`).
    pub(super) async fn thread_or_refuse(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<Option<String>, EngineError> {
        if let Some(thread) = Self::resolve_thread(&action.action["thread"], all) {
            return Ok(Some(thread));
        }
        self.refuse_action(workflow, action, "no_thread", NO_THREAD.to_string())
            .await?;
        Ok(None)
    }

    /// The thread a `thread` reference names, when known.
    pub(super) fn resolve_thread(reference: &Value, all: &[WorkflowAction]) -> Option<String> {
        if let Some(thread) = reference.get("thread").and_then(Value::as_str) {
            return Some(thread.to_string());
        }
        let action_id = reference.get("action").and_then(Value::as_str)?;
        all.iter()
            .find(|a| a.action_id == action_id)
            .and_then(|a| a.output.as_ref())
            .and_then(|o| o.get("threadId"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub(super) async fn perform(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<(), EngineError> {
        let id = &workflow.workflow_id;
        let body = &action.action;
        match action.kind.as_str() {
            // The thread is created by the first turn that names it (a `start_chat` operation), so thread and
            // turn share one durable operation.
            "start-thread" | "wait-for-approval" => {
                self.store
                    .set_workflow_action_state(id, &action.action_id, "performed", None, None)
                    .await?;
            }
            "start-turn" | "start-review" => {
                self.start_turn_operation(workflow, action, all).await?;
                self.wake();
            }
            "complete" | "fail" => {
                // The outcome was stored with the step that returned this action; only a journal written
                // before that rule (an older binary) still lacks it.
                if workflow.final_report.is_none() && workflow.error.is_none() {
                    let (report, error) = self.outcome(workflow, &action.kind, body).await?;
                    self.store.set_workflow_outcome(id, report, error).await?;
                }
                self.store
                    .set_workflow_action_state(id, &action.action_id, "reported", None, None)
                    .await?;
            }
            "compact-thread" | "archive-thread" => {
                self.perform_lifecycle(workflow, action, all).await?;
            }
            "interrupt-turn" => {
                self.perform_interrupt(workflow, action, all).await?;
            }
            "steer-turn" => {
                self.perform_steer(workflow, action, all).await?;
            }
            "set-goal" | "clear-goal" => {
                self.perform_goal_action(workflow, action, all).await?;
            }
            other => {
                // Actions this host does not perform for workflows yet are reported back as failed, so the
                // plugin can decide; they are never silently dropped.
                let message =
                    format!("the host does not perform {other} actions for workflows yet");
                self.refuse_action(workflow, action, "unsupported_action", message)
                    .await?;
            }
        }
        Ok(())
    }

    /// Marks an action `failed` without performing it and tells the plugin why (`action-failed`).
    pub(super) async fn refuse_action(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        code: &str,
        message: String,
    ) -> Result<(), EngineError> {
        self.store
            .set_workflow_action_state(
                &workflow.workflow_id,
                &action.action_id,
                "failed",
                None,
                None,
            )
            .await?;
        let event = Event::ActionFailed(ActionFailure {
            action_id: action.action_id.clone(),
            code: code.to_string(),
            message,
        });
        self.feed_workflow(
            workflow,
            event,
            Some(json!({"actionId": action.action_id, "code": code})),
            None,
        )
        .await?;
        Ok(())
    }

    /// Creates the operation that runs a `start-turn` / `start-review` action (found again, never duplicated,
    /// on a replay) and journals it on the action (`performed`), in one transaction.
    pub(super) async fn start_turn_operation(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<Operation, EngineError> {
        let body = &action.action;
        let settings = &body["settings"];
        let thread = Self::resolve_thread(&body["thread"], all);
        let review = action.kind == "start-review";
        let operation_type = match (review, thread.is_some()) {
            (true, _) => "review_start",
            (false, true) => "send_message",
            (false, false) => "start_chat",
        };
        let cwd = settings
            .get("cwd")
            .and_then(Value::as_str)
            .or_else(|| workflow.input.get("cwd").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let message = body
            .get("message")
            .or_else(|| body.get("instructions"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let output_schema = body.get("outputSchema").filter(|s| !s.is_null()).cloned();
        let request = json!({
            "operationType": operation_type,
            "workflowId": workflow.workflow_id,
            "workflowActionId": action.action_id,
            "cwd": cwd,
            "threadId": thread,
            "message": message,
            "model": settings.get("model"),
            "outputSchema": output_schema,
            "collaborationMode": settings.get("collaborationMode"),
            // The review target is the action's (WIT 0.2), else the workflow input's (the review tool's
            // target): 0.1 actions, and 0.2 ones with `target: none`, carry only instructions.
            "target": if review {
                body.get("target")
                    .filter(|target| target.is_object())
                    .or_else(|| workflow.input.get("target"))
                    .cloned()
            } else {
                None
            },
            "runtimePolicy": {
                "effectiveSandbox": settings.get("sandbox"),
                "effectiveApprovalPolicy": settings.get("approvalPolicy"),
            },
        });
        let mut new = NewOperation::new(operation_type, request);
        new.client_request_id = Some(format!(
            "workflow:{}:{}",
            workflow.workflow_id, action.action_id
        ));
        new.project_path_key = cwd.clone();
        new.cwd = Some(cwd);
        new.thread_id = thread;
        new.workflow_id = Some(workflow.workflow_id.clone());
        // The workflow's own turns are not duplicates of each other (an execution turn repeats the plan).
        new.dedup_policy = "idempotency_only".to_string();
        new.message = Some(message.to_string());
        new.output_schema_hash = output_schema
            .as_ref()
            .map(crate::domain::rules::output_schema::output_schema_hash);
        new.config_fingerprint = self.worker.config_fingerprint.clone();
        let outcome = self
            .store
            .insert_workflow_operation(&workflow.workflow_id, &action.action_id, new)
            .await?;
        Ok(match outcome {
            InsertOutcome::Created { operation, .. }
            | InsertOutcome::Existing { operation, .. } => operation,
        })
    }
}
