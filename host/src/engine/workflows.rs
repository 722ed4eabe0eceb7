//! Workflows: plugin state machines (the WIT `workflow` world) executed durably by the host.
//!
//! The plugin decides, the host performs. For each event the host calls the plugin with the stored state,
//! stores the returned step (new state, phase, actions) in one transaction ([`crate::store::workflows`]), then
//! performs the journaled actions. Performing is idempotent: a turn is started through an ordinary operation
//! whose `client_request_id` is `workflow:<wf>:<action id>`, so replaying an action after a crash finds the
//! same operation instead of starting a second turn. The pump ([`Engine::workflow_loop`]) then reports the
//! operation's progress back to the plugin (`action-completed` with the thread/turn ids, `turn-completed` with
//! the final message and plan items, `app-server-exited`), each report stored in the same transaction as the
//! step it caused.
//!
//! A plugin that traps, runs out of fuel or returns garbage fails its own workflow (`CODEX_PLUGIN_FAILED`);
//! other workflows and the server carry on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::lifecycle::LifecycleKind;
use super::{Engine, EngineError};
use crate::domain::failure::FailureCode;
use crate::plugins::types::{
    Action, ActionFailure, ActionOutput, Adoption, AppServerExit, Approval, CollaborationMode,
    Event, PlanItem, Step, ThreadRef, TurnCompleted, TurnSettings,
};
use crate::shutdown::Shutdown;
use crate::store::operations::{InsertOutcome, NewOperation, Operation};
use crate::store::workflows::{NewWorkflow, StepRecord, Workflow, WorkflowAction};

/// How often the pump looks at active workflows when nothing wakes it.
const PUMP_INTERVAL: Duration = Duration::from_millis(200);
/// How often it looks when the last pass found nothing to drive: only a dead process's workflow to take
/// over can appear without a wake-up, and that is not urgent.
const PUMP_IDLE_INTERVAL: Duration = Duration::from_secs(2);

/// A workflow to start.
#[derive(Debug, Clone)]
pub struct WorkflowStart {
    /// `plan_then_execute`, ...
    pub kind: String,
    /// The plugin implementing it.
    pub plugin_id: String,
    /// The plugin's input.
    pub input: Value,
    /// Idempotency key.
    pub client_request_id: String,
    /// Canonical request, compared on retries with the same key.
    pub request_fingerprint: String,
    /// Requested and effective runtime policy.
    pub runtime_policy: Value,
    /// A thread goal to mirror while the workflow executes (see [`super::goals`]).
    pub goal: Option<crate::store::goals::NewGoal>,
}

fn settings_json(settings: &TurnSettings) -> Value {
    json!({
        "cwd": settings.cwd,
        "sandbox": settings.sandbox.map(super::execute::sandbox_mode_name),
        "approvalPolicy": settings.approval_policy.map(super::execute::approval_policy_name),
        "model": settings.model,
        "effort": settings.effort,
        "collaborationMode": settings.collaboration_mode.map(|m| match m {
            CollaborationMode::Plan => "plan",
            CollaborationMode::Default => "default",
        }),
    })
}

fn thread_json(thread: &ThreadRef) -> Value {
    match thread {
        ThreadRef::Action(id) => json!({"action": id}),
        ThreadRef::Thread(id) => json!({"thread": id}),
    }
}

fn parse_json(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// An action as the journal stores it: `(id, kind, json)`.
fn action_record(action: &Action) -> (String, String, Value) {
    let (id, kind, body) = match action {
        Action::StartThread(a) => (
            &a.id,
            "start-thread",
            json!({"settings": settings_json(&a.settings)}),
        ),
        Action::StartTurn(a) => (
            &a.id,
            "start-turn",
            json!({"thread": thread_json(&a.thread), "message": a.message,
                   "settings": settings_json(&a.settings), "outputSchema": parse_json(&a.output_schema)}),
        ),
        Action::SteerTurn(a) => (
            &a.id,
            "steer-turn",
            json!({"thread": thread_json(&a.thread), "message": a.message}),
        ),
        Action::InterruptTurn(a) => (
            &a.id,
            "interrupt-turn",
            json!({"thread": thread_json(&a.thread)}),
        ),
        Action::SetGoal(a) => (
            &a.id,
            "set-goal",
            json!({"thread": thread_json(&a.thread), "goal": a.goal}),
        ),
        Action::ClearGoal(a) => (
            &a.id,
            "clear-goal",
            json!({"thread": thread_json(&a.thread)}),
        ),
        Action::StartReview(a) => (
            &a.id,
            "start-review",
            json!({"thread": thread_json(&a.thread), "instructions": a.instructions,
                   "settings": settings_json(&a.settings)}),
        ),
        Action::CompactThread(a) => (
            &a.id,
            "compact-thread",
            json!({"thread": thread_json(&a.thread)}),
        ),
        Action::ArchiveThread(a) => (
            &a.id,
            "archive-thread",
            json!({"thread": thread_json(&a.thread)}),
        ),
        Action::WaitForApproval(a) => (
            &a.id,
            "wait-for-approval",
            json!({"summary": a.summary, "details": parse_json(&a.details)}),
        ),
        Action::Complete(a) => (
            &a.id,
            "complete",
            json!({"report": a.report, "structured": parse_json(&a.structured)}),
        ),
        Action::Fail(a) => (&a.id, "fail", json!({"code": a.code, "message": a.message})),
    };
    let mut body = body;
    body["type"] = json!(kind);
    body["id"] = json!(id);
    (id.clone(), kind.to_string(), body)
}

/// The workflow error a `fail` action sets.
fn fail_error(body: &Value) -> Value {
    json!({"code": body.get("code"), "message": body.get("message"), "retryable": false})
}

/// The name of an event in the history.
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Started(_) => "started",
        Event::OperationStatusChanged(_) => "operation-status-changed",
        Event::TurnCompleted(_) => "turn-completed",
        Event::InteractionPending(_) => "interaction-pending",
        Event::InteractionAnswered(_) => "interaction-answered",
        Event::AppServerExited(_) => "app-server-exited",
        Event::Approved(_) => "approved",
        Event::Adopted(_) => "adopted",
        Event::ActionCompleted(_) => "action-completed",
        Event::ActionFailed(_) => "action-failed",
    }
}

impl Engine {
    /// The version of a loaded plugin.
    fn plugin_version(&self, plugin_id: &str) -> Result<String, EngineError> {
        self.plugins
            .infos()
            .iter()
            .find(|info| {
                info.id == plugin_id && info.status == crate::plugins::PluginStatus::Loaded
            })
            .map(|info| info.version.clone())
            .ok_or_else(|| {
                EngineError::Invalid(format!("workflow plugin {plugin_id} is not loaded"))
            })
    }

    /// Creates (or, for the same key and request, finds) a workflow and runs the plugin's `start`.
    /// Returns the workflow and whether it was created now.
    pub async fn start_workflow(
        &self,
        start: WorkflowStart,
    ) -> Result<(Workflow, bool), EngineError> {
        let version = self.plugin_version(&start.plugin_id)?;
        let (workflow, created) = self
            .store
            .insert_workflow(NewWorkflow {
                client_request_id: start.client_request_id,
                kind: start.kind,
                plugin_id: start.plugin_id.clone(),
                plugin_version: version,
                input: start.input.clone(),
                request_fingerprint: start.request_fingerprint,
                runtime_policy: Some(start.runtime_policy),
                owner_id: self.worker.owner_id.clone(),
                goal: start.goal,
            })
            .await?;
        if !created {
            return Ok((workflow, false));
        }
        let (plugin, input) = (start.plugin_id.clone(), start.input.to_string());
        let step = self
            .with_plugins(move |plugins| plugins.workflow_start(&plugin, &input))
            .await?;
        let workflow = self
            .record_step(&workflow, "started", None, step, None)
            .await?;
        let workflow = self.advance(&workflow).await?;
        self.wake_workflows();
        Ok((workflow, true))
    }

    /// Wakes the workflow pump.
    pub fn wake_workflows(&self) {
        self.workflow_wake.notify_one();
    }

    /// Stores what the plugin returned (or, when the plugin failed, fails the workflow).
    async fn record_step(
        &self,
        workflow: &Workflow,
        event: &str,
        details: Option<Value>,
        step: Result<Step, crate::plugins::PluginError>,
        source: Option<(String, String)>,
    ) -> Result<Workflow, EngineError> {
        let record = match step {
            Ok(step) => match serde_json::from_str::<Value>(&step.state) {
                Ok(state) => {
                    let actions: Vec<_> = step.actions.iter().map(action_record).collect();
                    let (report, error) = self.step_outcome(workflow, &actions).await?;
                    StepRecord {
                        event: event.to_string(),
                        details,
                        state,
                        actions,
                        source_action: source,
                        report,
                        error,
                    }
                }
                Err(err) => self.plugin_failure(
                    workflow,
                    event,
                    &format!("state is not JSON: {err}"),
                    source,
                ),
            },
            Err(err) => {
                tracing::warn!(workflow = %workflow.workflow_id, plugin = %workflow.plugin_id, error = %err, "workflow plugin failed");
                self.plugin_failure(workflow, event, &err.to_string(), source)
            }
        };
        Ok(self
            .store
            .apply_workflow_step(&workflow.workflow_id, record)
            .await?)
    }

    /// The final report or error a step's `complete` / `fail` action sets, computed before the step is stored
    /// so that both land in its transaction (performing the action later only marks it reported).
    async fn step_outcome(
        &self,
        workflow: &Workflow,
        actions: &[(String, String, Value)],
    ) -> Result<(Option<Value>, Option<Value>), EngineError> {
        match actions
            .iter()
            .find(|(_, kind, _)| matches!(kind.as_str(), "complete" | "fail"))
        {
            Some((_, kind, body)) => self.outcome(workflow, kind, body).await,
            None => Ok((None, None)),
        }
    }

    /// The `(final report, error)` a `complete` or `fail` action sets.
    async fn outcome(
        &self,
        workflow: &Workflow,
        kind: &str,
        body: &Value,
    ) -> Result<(Option<Value>, Option<Value>), EngineError> {
        if kind == "fail" {
            return Ok((None, Some(fail_error(body))));
        }
        let all = self.store.workflow_actions(&workflow.workflow_id).await?;
        Ok((
            Some(self.workflow_report(workflow, &all, body).await?),
            None,
        ))
    }

    fn plugin_failure(
        &self,
        workflow: &Workflow,
        event: &str,
        message: &str,
        source: Option<(String, String)>,
    ) -> StepRecord {
        let mut plugin = serde_json::Map::new();
        plugin.insert("plugin".into(), json!(workflow.plugin_id));
        let error = FailureCode::PluginFailed.failure_with(message, false, plugin);
        let mut state = workflow.state.clone();
        if !state.is_object() {
            state = json!({});
        }
        state["phase"] = json!("failed");
        state["status"] = json!("failed");
        state["pluginError"] = error.clone();
        StepRecord {
            event: event.to_string(),
            details: Some(error.clone()),
            state,
            actions: Vec::new(),
            source_action: source,
            report: None,
            error: Some(error),
        }
    }

    /// Feeds one event to a workflow's plugin and stores the step. A terminal workflow ignores events but
    /// the source action is still marked, so it is not reported again.
    pub async fn feed_workflow(
        &self,
        workflow: &Workflow,
        event: Event,
        details: Option<Value>,
        source: Option<(String, String)>,
    ) -> Result<Workflow, EngineError> {
        let name = event_name(&event);
        if workflow.is_terminal() {
            if let Some((action, state)) = source {
                self.store
                    .set_workflow_action_state(&workflow.workflow_id, &action, &state, None, None)
                    .await?;
            }
            return Ok(workflow.clone());
        }
        let step = self.plugins.workflow_on_event(
            &workflow.plugin_id,
            &workflow.state.to_string(),
            &event,
        );
        self.record_step(workflow, name, details, step, source)
            .await
    }

    pub(super) async fn workflow_loop(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            let pause = match self.pump_workflows().await {
                Ok(0) => PUMP_IDLE_INTERVAL,
                Ok(_) => PUMP_INTERVAL,
                Err(error) => {
                    tracing::warn!(%error, "workflow pump failed");
                    PUMP_INTERVAL
                }
            };
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = self.workflow_wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over the active workflows this process drives (taking over those of dead processes); returns
    /// how many workflows and unsettled goals it saw.
    async fn pump_workflows(&self) -> Result<usize, EngineError> {
        let active = self.store.active_workflows(200).await?;
        let seen = active.len();
        for mut workflow in active {
            if workflow.owner_id.as_deref() != Some(self.worker.owner_id.as_str()) {
                // One compare-and-set decides who drives an orphaned workflow: another process may be taking
                // it at the same moment, and only the winner may advance it.
                let won = self
                    .store
                    .take_over_workflow(
                        &workflow.workflow_id,
                        &self.worker.owner_id,
                        workflow.owner_id.as_deref(),
                    )
                    .await?;
                if !won {
                    continue;
                }
                workflow.owner_id = Some(self.worker.owner_id.clone());
            }
            if let Err(error) = self.advance(&workflow).await {
                tracing::warn!(workflow = %workflow.workflow_id, %error, "advancing a workflow failed");
            }
        }
        Ok(seen + self.settle_goals().await?)
    }

    /// Performs pending actions and reports operation progress until nothing changes.
    pub async fn advance(&self, workflow: &Workflow) -> Result<Workflow, EngineError> {
        let mut workflow = workflow.clone();
        for _ in 0..16 {
            let actions = self.store.workflow_actions(&workflow.workflow_id).await?;
            let mut progressed = false;
            for action in &actions {
                if let Some(next) = self.step_action(&workflow, action, &actions).await? {
                    workflow = next;
                    progressed = true;
                    break;
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(workflow)
    }

    /// Moves one action forward; returns the workflow when something changed.
    async fn step_action(
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
            _ => Ok(None),
        }
    }

    /// Performs a `compact-thread` / `archive-thread` action as an audited lifecycle action. The `tla_` id is
    /// journaled on the workflow action before app-server is called, so a replay after a crash waits for
    /// that row (which recovery ends `unknown_after_app_server_exit`) instead of compacting twice.
    async fn perform_lifecycle(
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
            None => Err((
                "no_thread".to_string(),
                "the action names a thread that does not exist yet".to_string(),
            )),
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
    async fn perform_interrupt(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<(), EngineError> {
        let Some(thread) = Self::resolve_thread(&action.action["thread"], all) else {
            let message = "the action names a thread that does not exist yet".to_string();
            return self
                .refuse_action(workflow, action, "no_thread", message)
                .await;
        };
        let turn_id = self
            .thread_busy(&thread)
            .await?
            .filter(|busy| busy.reason == "active_turn")
            .and_then(|busy| busy.details["turnId"].as_str().map(str::to_string));
        if let Some(turn_id) = &turn_id {
            let params = json!({"threadId": thread, "turnId": turn_id});
            if let Err(err) = self.appserver.request("turn/interrupt", params).await {
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

    /// Reports a lifecycle action's end to the plugin once its `tla_` row is terminal.
    async fn report_lifecycle(
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

    async fn reload(&self, workflow_id: &str) -> Result<Workflow, EngineError> {
        self.store
            .get_workflow(workflow_id)
            .await?
            .ok_or_else(|| EngineError::Invalid(format!("workflow {workflow_id} vanished")))
    }

    /// The thread a `thread` reference names, when known.
    fn resolve_thread(reference: &Value, all: &[WorkflowAction]) -> Option<String> {
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

    async fn perform(
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
    async fn refuse_action(
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
    async fn start_turn_operation(
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
            // The review target is the host's (from the tool call), not the plugin's: WIT 0.1 actions carry
            // only instructions.
            "target": if review { workflow.input.get("target").cloned() } else { None },
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

    /// Tells the plugin a turn exists (and, for a turn that created the workflow's thread, that the thread does).
    async fn report_started(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
        op: &Operation,
    ) -> Result<Workflow, EngineError> {
        let mut workflow = workflow.clone();
        if let (Some(thread_action), Some(thread_id)) = (
            action.action["thread"]
                .get("action")
                .and_then(Value::as_str),
            &op.thread_id,
        ) {
            let pending = all
                .iter()
                .find(|a| a.action_id == thread_action)
                .is_some_and(|a| a.output.is_none());
            if pending {
                let output = json!({"threadId": thread_id});
                workflow = self
                    .report_output(&workflow, thread_action, "reported", output, None)
                    .await?;
            }
        }
        self.mirror_goal(&workflow, action, op).await?;
        let output =
            json!({"threadId": op.thread_id, "turnId": op.turn_id, "operationId": op.operation_id});
        let started = Some((action.action_id.clone(), "started".to_string()));
        self.report_output(&workflow, &action.action_id, "performed", output, started)
            .await
    }

    /// Stores an action's output (moving it to `state`) and tells the plugin (`action-completed`); `source`
    /// moves the action on again in the step's own transaction.
    async fn report_output(
        &self,
        workflow: &Workflow,
        action_id: &str,
        state: &str,
        output: Value,
        source: Option<(String, String)>,
    ) -> Result<Workflow, EngineError> {
        self.store
            .set_workflow_action_state(
                &workflow.workflow_id,
                action_id,
                state,
                None,
                Some(output.clone()),
            )
            .await?;
        let event = Event::ActionCompleted(ActionOutput {
            action_id: action_id.to_string(),
            output: output.to_string(),
        });
        self.feed_workflow(workflow, event, Some(output), source)
            .await
    }

    /// Tells the plugin how a turn (or the operation that should have started it) ended.
    async fn report_finished(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        op: &Operation,
    ) -> Result<Workflow, EngineError> {
        let source = Some((action.action_id.clone(), "reported".to_string()));
        let details = json!({"actionId": action.action_id, "operationId": op.operation_id, "status": op.status});
        if op.status == "unknown_after_app_server_exit" {
            let event = Event::AppServerExited(AppServerExit {
                generation: 0,
                code: None,
            });
            return self
                .feed_workflow(workflow, event, Some(details), source)
                .await;
        }
        let Some(turn_id) = &op.turn_id else {
            let code = op
                .last_error
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("operation_failed")
                .to_string();
            let event = Event::ActionFailed(ActionFailure {
                action_id: action.action_id.clone(),
                code,
                message: op
                    .last_error
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_else(|| {
                        format!("operation {} ended {}", op.operation_id, op.status)
                    }),
            });
            return self
                .feed_workflow(workflow, event, Some(details), source)
                .await;
        };
        let final_message = op
            .final_report
            .as_ref()
            .and_then(|r| r.get("text"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let plan_items = self
            .store
            .list_progress_events(turn_id, 50)
            .await?
            .into_iter()
            .filter(|e| e.kind == "plan" && e.item_id.is_some())
            .filter_map(|e| e.summary)
            .map(|step| PlanItem {
                step,
                status: "completed".into(),
            })
            .collect();
        let event = Event::TurnCompleted(TurnCompleted {
            action_id: Some(action.action_id.clone()),
            thread_id: op.thread_id.clone().unwrap_or_default(),
            turn_id: turn_id.clone(),
            status: op.status.clone(),
            final_message,
            plan_items,
        });
        self.feed_workflow(workflow, event, Some(details), source)
            .await
    }

    /// The workflow's final report: the plugin's text, with the structured result of the last turn that
    /// asked for one.
    async fn workflow_report(
        &self,
        workflow: &Workflow,
        all: &[WorkflowAction],
        body: &Value,
    ) -> Result<Value, EngineError> {
        let mut last_turn: Option<Operation> = None;
        for action in all.iter().rev() {
            if let Some(op_id) = action
                .operation_id
                .as_ref()
                .filter(|_| action.kind == "start-turn")
            {
                last_turn = self.store.get_operation(op_id).await?;
                break;
            }
        }
        let mut report = last_turn
            .as_ref()
            .and_then(|op| op.final_report.clone())
            .unwrap_or_else(|| json!({}));
        report["text"] = body.get("report").cloned().unwrap_or(Value::Null);
        if !body["structured"].is_null() {
            report["structured"] = body["structured"].clone();
        }
        report["workflowId"] = json!(workflow.workflow_id);
        Ok(report)
    }

    /// `refresh_live`: asks app-server (`thread/read`) about every running turn of the workflow, settles those
    /// that ended without this server seeing it (as if their `turn/completed` had arrived), then advances the
    /// workflow when this process may drive it. Best effort: failures are listed in the report.
    pub async fn refresh_workflow_live(&self, workflow: &Workflow) -> Value {
        let mut errors: Vec<String> = Vec::new();
        let (mut checked, mut reconciled) = (0usize, 0usize);
        let actions = match self.store.workflow_actions(&workflow.workflow_id).await {
            Ok(actions) => actions,
            Err(err) => {
                return json!({"checkedTurns": 0, "reconciledTurns": 0, "errors": [err.to_string()]})
            }
        };
        for op_id in actions.iter().filter_map(|a| a.operation_id.as_deref()) {
            let op = match self.store.get_operation(op_id).await {
                Ok(Some(op)) => op,
                Ok(None) => continue,
                Err(err) => {
                    errors.push(err.to_string());
                    continue;
                }
            };
            let (Some(thread_id), Some(turn_id)) = (&op.thread_id, &op.turn_id) else {
                continue;
            };
            if op.is_terminal() {
                continue;
            }
            checked += 1;
            match self.live_turn(thread_id, turn_id).await {
                Ok(Some(turn)) => {
                    let generation = self.appserver.generation().unwrap_or(0);
                    let params = json!({"threadId": thread_id, "turn": turn});
                    match self
                        .apply_notification(generation, "turn/completed", &params)
                        .await
                    {
                        Ok(()) => reconciled += 1,
                        Err(err) => errors.push(err.to_string()),
                    }
                }
                Ok(None) => {}
                Err(err) => errors.push(err.to_string()),
            }
        }
        // A workflow of a dead process is taken over by the same compare-and-set as the pump's, so a refresh
        // never drives a workflow another process has just taken.
        let drivable = match &workflow.owner_id {
            Some(owner) if owner == &self.worker.owner_id => true,
            expected => self
                .store
                .take_over_workflow(
                    &workflow.workflow_id,
                    &self.worker.owner_id,
                    expected.as_deref(),
                )
                .await
                .unwrap_or(false),
        };
        if drivable && !workflow.is_terminal() {
            if let Err(err) = self.advance(workflow).await {
                errors.push(err.to_string());
            }
            self.wake_workflows();
        }
        json!({"checkedTurns": checked, "reconciledTurns": reconciled, "errors": errors})
    }

    /// The turn as app-server has it, when app-server says it ended.
    async fn live_turn(
        &self,
        thread_id: &str,
        turn_id: &str,
    ) -> Result<Option<Value>, EngineError> {
        let turn = self
            .thread_turns(thread_id)
            .await?
            .into_iter()
            .find(|t| t.get("id").and_then(Value::as_str) == Some(turn_id));
        Ok(turn.filter(|t| {
            let status = t.get("status").and_then(Value::as_str).unwrap_or_default();
            crate::domain::rules::status::is_terminal(super::tracker::normalize_turn_status(status))
        }))
    }

    /// Answers a `wait-for-approval` action (the plan approval gate). `comment` is passed to the plugin as is.
    /// Returns the workflow after the plugin's step and the actions it performed.
    pub async fn approve_workflow(
        &self,
        workflow: &Workflow,
        approval_action: &str,
        approved: bool,
        comment: Option<String>,
    ) -> Result<Workflow, EngineError> {
        let event = Event::Approved(Approval {
            action_id: approval_action.to_string(),
            approved,
            comment,
        });
        let workflow = self
            .feed_workflow(
                workflow,
                event,
                Some(json!({"actionId": approval_action, "approved": approved})),
                Some((approval_action.to_string(), "reported".to_string())),
            )
            .await?;
        let workflow = self.advance(&workflow).await?;
        self.wake_workflows();
        Ok(workflow)
    }

    /// Adopts a plan into a workflow (`adopted` event), then advances it.
    pub async fn adopt_into_workflow(
        &self,
        workflow: &Workflow,
        thread_id: &str,
        details: Value,
    ) -> Result<Workflow, EngineError> {
        let event = Event::Adopted(Adoption {
            thread_id: thread_id.to_string(),
            details: Some(details.to_string()),
        });
        let workflow = self
            .feed_workflow(workflow, event, Some(details), None)
            .await?;
        self.advance(&workflow).await
    }
}
