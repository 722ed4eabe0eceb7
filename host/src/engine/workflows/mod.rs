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
    Event, PlanItem, ReviewTarget, Step, ThreadRef, TurnCompleted, TurnSettings,
};
use crate::shutdown::Shutdown;
use crate::store::operations::{InsertOutcome, NewOperation, Operation};
use crate::store::workflows::{NewWorkflow, StepRecord, Workflow, WorkflowAction};

mod actions;
mod goal_actions;
mod live;
mod reports;

/// The shortest time between two passes of the pump over active workflows.
const PUMP_INTERVAL: Duration = Duration::from_millis(200);
/// How long the pump waits for a wake-up or a change to the database before it looks anyway: a workflow
/// moves only when something is written (an operation settles, an answer or an approval is recorded), and
/// only a dead process's workflow to take over or a deadline can come due without a write; neither is urgent.
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

/// A review target as app-server's `review/start` takes it (`ReviewTarget`): a plugin's, or the review tool's.
pub fn review_target_json(target: &ReviewTarget) -> Value {
    match target {
        ReviewTarget::UncommittedChanges => json!({"type": "uncommittedChanges"}),
        ReviewTarget::BaseBranch(branch) => json!({"type": "baseBranch", "branch": branch}),
        ReviewTarget::Commit(commit) => {
            json!({"type": "commit", "sha": commit.sha, "title": commit.title})
        }
        ReviewTarget::Custom(instructions) => {
            json!({"type": "custom", "instructions": instructions})
        }
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
            // `target` null: the plugin left it to the workflow's input (WIT 0.1, or 0.2 with `none`).
            json!({"thread": thread_json(&a.thread), "instructions": a.instructions,
                   "settings": settings_json(&a.settings),
                   "target": a.target.as_ref().map(review_target_json)}),
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
        // Passes over workflows waiting on long turns used to run every PUMP_INTERVAL whether or not anything had
        // changed: with 120 such workflows, a tenth of a core in a process nobody called.
        // Without a watcher (it needs a connection of its own) the pump falls back to that timer.
        let mut changes = match self.store.watch_changes() {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "the workflow pump polls instead of watching for changes");
                None
            }
        };
        loop {
            let outcome = self.pump_workflows().await;
            if let Err(error) = &outcome {
                tracing::warn!(%error, "workflow pump failed");
            }
            let driving = !matches!(outcome, Ok(0));
            // Never sooner than PUMP_INTERVAL after the last pass, unless woken.
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = self.workflow_wake.notified() => continue,
                _ = tokio::time::sleep(PUMP_INTERVAL) => {}
            }
            if driving && changes.is_none() {
                continue;
            }
            let changed = async {
                match changes.as_mut() {
                    Some(watcher) if driving => watcher.changed().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = self.workflow_wake.notified() => {}
                _ = changed => {}
                _ = tokio::time::sleep(PUMP_IDLE_INTERVAL.saturating_sub(PUMP_INTERVAL)) => {}
            }
        }
    }

    /// One pass over the active workflows this process drives (taking over those of dead processes); returns
    /// how many workflows and unsettled goals it saw.
    async fn pump_workflows(&self) -> Result<usize, EngineError> {
        let active = self.store.active_workflows(200).await?;
        let seen = active.len();
        // Other owners' liveness, asked once per owner on a read: a live owner's workflows are its own to drive,
        // and asking first keeps every serving process of a fleet from taking the write lock for each of
        // another's workflows on every pass (the take-over below would refuse them anyway).
        let me = self.worker.owner_id.as_str();
        let others: Vec<String> = active
            .iter()
            .filter_map(|workflow| workflow.owner_id.as_deref())
            .filter(|owner| *owner != me)
            .map(str::to_string)
            .collect();
        let dead = self.store.dead_owners(others).await?;
        for mut workflow in active {
            if workflow.owner_id.as_deref() != Some(me) {
                if let Some(owner) = workflow.owner_id.as_deref() {
                    if !dead.contains(owner) {
                        continue;
                    }
                }
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
}
