//! Goal sync: the thread goal a workflow mirrors into app-server (`goal`, `goal_token_budget`,
//! `goal_completion_action` of `codex_start_plan_workflow`).
//!
//! An active goal makes app-server start turns by itself: as soon as the thread is idle it runs a
//! "continue working" turn, again and again, until the model calls `update_goal {"status":"complete"}` or the
//! goal is cleared, paused or out of budget. Mirroring it carelessly would loop a workflow's thread forever
//! (or run those turns inside Plan Mode). So the host:
//!
//! 1. sets the goal (`thread/goal/set`, status `active`) only once a default-mode turn of the workflow is
//!    running, never during planning and never on an idle thread;
//! 2. records what app-server says about it (`thread/goal/updated`, `thread/goal/cleared`);
//! 3. performs the completion action as soon as the workflow ends: `clear`, `set_complete` (a `complete` goal
//!    does not continue), or `leave` (an `active` goal is paused, so nothing keeps running unattended);
//! 4. then accounts for the continuation turns app-server started in between: each is recorded on the goal,
//!    and one still running is interrupted, so no work goes on after the workflow ended.
//!
//! Every step is idempotent and driven from the goal row, so a crash at any point is finished by the next pump
//! pass of whichever process drives the workflow.
//!
//! A workflow plugin's own `set-goal` / `clear-goal` actions (`workflows/goal_actions.rs`) write the same row:
//! `set-goal` gives it the plugin's objective and thread (creating it with completion action `clear` when the
//! client gave no goal), and step 1 sets it under the same rule; `clear-goal` clears it in app-server and
//! marks the row `cleared`. Steps 3 and 4 settle it alike when the workflow ends.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Engine, EngineError};
use crate::appserver::protocol::{
    ClientRequest, GoalStatus, ThreadGoalClear, ThreadGoalGet, ThreadGoalSet, TurnInterrupt,
};
use crate::appserver::AppServerError;
use crate::domain::failure::FailureCode;
use crate::domain::rules::status::is_terminal;
use crate::store::goals::{CompletionAction, GoalUpdate, WorkflowGoal};
use crate::store::operations::Operation;
use crate::store::workflows::{Workflow, WorkflowAction};
use crate::time::now_ms;

/// How long after its goal call a settling goal waits for continuation turns app-server may have started just
/// before the call (their `turn/started` can reach the tracker after the call's reply).
const CONTINUATION_GRACE: Duration = Duration::from_millis(500);

/// How long a completion action is retried while app-server cannot be reached.
const SETTLE_RETRY_WINDOW: Duration = Duration::from_secs(60);

/// The `syncState` a failed goal call leaves: app-server without the goal methods says so.
fn failure_state(err: &AppServerError) -> &'static str {
    match err {
        AppServerError::Rpc { code: -32601, .. } => "unsupported",
        _ => "error",
    }
}

/// True for failures that may pass (app-server restarting, slow).
fn is_transient(err: &AppServerError) -> bool {
    matches!(
        err,
        AppServerError::Unavailable { .. }
            | AppServerError::Timeout { .. }
            | AppServerError::ProcessExited { .. }
            | AppServerError::StaleGeneration { .. }
    )
}

fn error_value(err: &AppServerError) -> Value {
    FailureCode::SendFailed.failure_with(err.to_string(), is_transient(err), Default::default())
}

/// The `threadGoal` part of a workflow payload.
pub fn goal_view(goal: Option<&WorkflowGoal>) -> Value {
    let Some(goal) = goal else {
        return json!({"syncState": "not_configured"});
    };
    let continuation = goal
        .continuation_turns
        .as_ref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    json!({
        "syncState": goal.sync_state,
        "objective": goal.objective,
        "tokenBudget": goal.token_budget,
        "completionAction": goal.completion_action.as_str(),
        "completionObjective": goal.completion_objective,
        "threadId": goal.thread_id,
        "currentGoal": goal.observed,
        "appServerStatus": goal.app_server_status,
        "continuationTurns": continuation.len(),
        "continuationTurnIds": continuation.iter().filter_map(|t| t.get("turnId")).collect::<Vec<_>>(),
        "settled": goal.settled_at.is_some(),
        "reason": goal.reason,
        "error": goal.error,
        "setAt": goal.set_at.map(|t| t.iso()),
        "settledAt": goal.settled_at.map(|t| t.iso()),
    })
}

impl Engine {
    /// Sets a workflow's goal on its thread once one of its default-mode turns is running (step 1).
    pub(super) async fn mirror_goal(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        op: &Operation,
    ) -> Result<(), EngineError> {
        let plan_mode = action.action["settings"]["collaborationMode"].as_str() == Some("plan");
        if action.kind != "start-turn" || plan_mode {
            return Ok(());
        }
        let Some(goal) = self.store.workflow_goal(&workflow.workflow_id).await? else {
            return Ok(());
        };
        let Some(thread_id) = op.thread_id.as_deref() else {
            return Ok(());
        };
        // A goal a workflow's `set-goal` named for another thread waits for a turn there.
        let other_thread = goal.thread_id.as_deref().is_some_and(|t| t != thread_id);
        if goal.sync_state != "pending_thread" || other_thread {
            return Ok(());
        }
        // On an idle thread an active goal starts a turn at once; the workflow's own turn must still run.
        let current = self.store.require_operation(&op.operation_id).await?;
        if current.is_terminal() {
            return Ok(());
        }
        self.set_goal_on_thread(workflow, thread_id, &goal).await?;
        Ok(())
    }

    /// Sets the workflow's goal row on `thread_id` now (`thread/goal/set`, status `active`) and records the
    /// outcome on the row; returns the row and app-server's refusal, if any. The caller checked that a
    /// default-mode turn of the workflow runs there (or that the thread's goal is active already).
    pub(super) async fn set_goal_on_thread(
        &self,
        workflow: &Workflow,
        thread_id: &str,
        goal: &WorkflowGoal,
    ) -> Result<(WorkflowGoal, Option<AppServerError>), EngineError> {
        let set = ThreadGoalSet {
            thread_id: thread_id.to_string(),
            objective: Some(goal.objective.clone()),
            status: Some(GoalStatus::Active),
            token_budget: goal.token_budget,
        };
        let (change, failure) = match self.appserver.send(&set).await {
            Ok(reply) => (
                GoalUpdate {
                    sync_state: Some("active".into()),
                    thread_id: Some(thread_id.to_string()),
                    observed: Some(reply.goal.unwrap_or(Value::Null)),
                    set: true,
                    ..GoalUpdate::default()
                },
                None,
            ),
            Err(err) => {
                tracing::warn!(workflow = %workflow.workflow_id, error = %err, "thread/goal/set failed");
                (
                    GoalUpdate {
                        sync_state: Some(failure_state(&err).into()),
                        thread_id: Some(thread_id.to_string()),
                        error: Some(error_value(&err)),
                        reason: Some("app-server did not accept the goal".into()),
                        ..GoalUpdate::default()
                    },
                    Some(err),
                )
            }
        };
        let row = self
            .store
            .update_workflow_goal(&workflow.workflow_id, change)
            .await?;
        Ok((row, failure))
    }

    /// Clears the goal of `thread_id` in app-server for a workflow's `clear-goal` action and records it on the
    /// workflow's goal row when the row follows that thread. A failure leaves a goal this server had set
    /// `active`, so the completion action still settles it when the workflow ends.
    pub(super) async fn clear_goal_on_thread(
        &self,
        workflow: &Workflow,
        thread_id: &str,
    ) -> Result<Option<AppServerError>, EngineError> {
        let row = self.store.workflow_goal(&workflow.workflow_id).await?;
        let ours = row
            .as_ref()
            .filter(|g| g.settled_at.is_none() && g.thread_id.as_deref() == Some(thread_id));
        let outcome = self
            .goal_request(&ThreadGoalClear {
                thread_id: thread_id.to_string(),
            })
            .await;
        let Some(goal) = ours else {
            return Ok(outcome.err());
        };
        let change = match &outcome {
            Ok(_) => GoalUpdate {
                sync_state: Some("cleared".into()),
                observed: Some(Value::Null),
                ..GoalUpdate::default()
            },
            Err(err) => GoalUpdate {
                sync_state: goal.set_at.map(|_| "active".to_string()),
                error: Some(error_value(err)),
                reason: Some("the workflow's clear-goal failed".into()),
                ..GoalUpdate::default()
            },
        };
        self.store
            .update_workflow_goal(&workflow.workflow_id, change)
            .await?;
        Ok(outcome.err())
    }

    /// Records a `thread/goal/updated` or `thread/goal/cleared` notification (step 2).
    pub(super) async fn observe_goal(
        &self,
        method: &str,
        params: &Value,
    ) -> Result<(), EngineError> {
        let Some(thread_id) = params.get("threadId").and_then(Value::as_str) else {
            return Ok(());
        };
        let goal = match method {
            "thread/goal/updated" => params.get("goal").cloned(),
            _ => None,
        };
        self.store.observe_thread_goal(thread_id, goal).await?;
        Ok(())
    }

    /// Settles the goals of ended workflows this process drives or inherits from a dead one (steps 3 and 4).
    /// Settles the goals of ended workflows; returns how many were still unsettled.
    pub(super) async fn settle_goals(&self) -> Result<usize, EngineError> {
        let unsettled = self.store.unsettled_goals().await?;
        let count = unsettled.len();
        for (goal, owner) in unsettled {
            if let Some(owner) = &owner {
                if owner != &self.worker.owner_id && !self.store.is_owner_dead(owner).await? {
                    continue;
                }
            }
            let Some(workflow) = self.store.get_workflow(&goal.workflow_id).await? else {
                continue;
            };
            if let Err(error) = self.settle_goal(&workflow, goal).await {
                tracing::warn!(workflow = %workflow.workflow_id, %error, "settling a workflow goal failed");
            }
        }
        Ok(count)
    }

    async fn settle_goal(
        &self,
        workflow: &Workflow,
        goal: WorkflowGoal,
    ) -> Result<(), EngineError> {
        let id = &workflow.workflow_id;
        let mut goal = goal;
        if goal.settling_at.is_none() {
            // Marked before the call: the `thread/goal/cleared` it causes is ours, not an override.
            goal = self
                .store
                .update_workflow_goal(
                    id,
                    GoalUpdate {
                        settling: true,
                        ..GoalUpdate::default()
                    },
                )
                .await?;
        }
        let started = goal.settling_at.map_or(now_ms(), |t| t.0);
        let elapsed = Duration::from_millis(u64::try_from(now_ms() - started).unwrap_or(0));
        if matches!(goal.sync_state.as_str(), "active" | "pending_thread") {
            match self.goal_completion_call(workflow, &goal).await {
                Ok(change) => goal = self.store.update_workflow_goal(id, change).await?,
                Err(err) if is_transient(&err) && elapsed < SETTLE_RETRY_WINDOW => {
                    // app-server is restarting: try again on a later pass.
                    self.store
                        .update_workflow_goal(
                            id,
                            GoalUpdate {
                                error: Some(error_value(&err)),
                                ..GoalUpdate::default()
                            },
                        )
                        .await?;
                    return Ok(());
                }
                Err(err) => {
                    goal = self
                        .store
                        .update_workflow_goal(
                            id,
                            GoalUpdate {
                                sync_state: Some(failure_state(&err).into()),
                                error: Some(error_value(&err)),
                                reason: Some(format!(
                                    "the completion action {} failed",
                                    goal.completion_action.as_str()
                                )),
                                ..GoalUpdate::default()
                            },
                        )
                        .await?;
                }
            }
        }
        let mut change = GoalUpdate {
            settled: true,
            ..GoalUpdate::default()
        };
        if let (Some(thread_id), Some(set_at)) = (goal.thread_id.as_deref(), goal.set_at) {
            let turns = self
                .store
                .goal_continuation_turns(thread_id, set_at)
                .await?;
            let mut running = false;
            for (turn_id, status) in &turns {
                if is_terminal(status) {
                    continue;
                }
                running = true;
                let interrupt = TurnInterrupt {
                    thread_id: thread_id.to_string(),
                    turn_id: turn_id.clone(),
                };
                if let Err(err) = self.appserver.send(&interrupt).await {
                    tracing::info!(turn = %turn_id, error = %err, "interrupting a goal continuation turn failed");
                }
            }
            change.continuation_turns = Some(json!(turns
                .iter()
                .map(|(turn, status)| json!({"turnId": turn, "status": status}))
                .collect::<Vec<_>>()));
            if running || elapsed < CONTINUATION_GRACE {
                // Settled on a later pass, once every continuation turn ended.
                change.settled = false;
            }
        }
        self.store.update_workflow_goal(id, change).await?;
        Ok(())
    }

    /// Performs the goal's completion action on app-server; returns the goal row's new state.
    async fn goal_completion_call(
        &self,
        workflow: &Workflow,
        goal: &WorkflowGoal,
    ) -> Result<GoalUpdate, AppServerError> {
        let completed = workflow.phase == "completed";
        let thread_id = goal
            .thread_id
            .clone()
            .or_else(|| workflow.thread_id.clone());
        let never_set = goal.sync_state == "pending_thread";
        let Some(thread_id) = thread_id else {
            return Ok(GoalUpdate {
                sync_state: Some("cleared".into()),
                reason: Some(
                    "the workflow ended before it had a thread; the goal was never set".into(),
                ),
                ..GoalUpdate::default()
            });
        };
        let action = match goal.completion_action {
            // A failed workflow's goal is not complete.
            CompletionAction::SetComplete if !completed => CompletionAction::Clear,
            action => action,
        };
        match action {
            CompletionAction::Clear => {
                // Cleared even when the row says it was never set: a crash between `thread/goal/set` and
                // recording it leaves exactly that, and clearing an absent goal is harmless.
                self.goal_request(&ThreadGoalClear { thread_id }).await?;
                let reason = if never_set {
                    Some(
                        "the workflow ended before its execution turn; the goal was never set"
                            .to_string(),
                    )
                } else if goal.completion_action == CompletionAction::SetComplete {
                    Some(
                        "the workflow did not complete, so its goal was cleared instead of completed"
                            .to_string(),
                    )
                } else {
                    None
                };
                Ok(GoalUpdate {
                    sync_state: Some("cleared".into()),
                    observed: Some(Value::Null),
                    reason,
                    ..GoalUpdate::default()
                })
            }
            CompletionAction::SetComplete => {
                let objective = goal
                    .completion_objective
                    .clone()
                    .unwrap_or_else(|| goal.objective.clone());
                let set = ThreadGoalSet {
                    thread_id: thread_id.clone(),
                    objective: Some(objective),
                    status: Some(GoalStatus::Complete),
                    token_budget: goal.token_budget,
                };
                let reply = self.goal_request(&set).await?;
                Ok(GoalUpdate {
                    sync_state: Some("complete".into()),
                    thread_id: Some(thread_id),
                    observed: Some(reply.goal.unwrap_or(Value::Null)),
                    ..GoalUpdate::default()
                })
            }
            CompletionAction::Leave if never_set => Ok(GoalUpdate {
                sync_state: Some("left".into()),
                reason: Some(
                    "the workflow ended before its execution turn; the goal was never set".into(),
                ),
                ..GoalUpdate::default()
            }),
            CompletionAction::Leave => {
                let still_active = goal
                    .app_server_status
                    .as_deref()
                    .is_none_or(|s| s == "active");
                if !still_active {
                    return Ok(GoalUpdate {
                        sync_state: Some("left".into()),
                        ..GoalUpdate::default()
                    });
                }
                let pause = ThreadGoalSet {
                    thread_id,
                    objective: None,
                    status: Some(GoalStatus::Paused),
                    token_budget: None,
                };
                let reply = self.goal_request(&pause).await?;
                Ok(GoalUpdate {
                    sync_state: Some("left".into()),
                    observed: Some(reply.goal.unwrap_or(Value::Null)),
                    reason: Some(
                        "left on the thread, paused so app-server does not keep working on it unattended"
                            .into(),
                    ),
                    ..GoalUpdate::default()
                })
            }
        }
    }

    /// A goal call. The thread need not be loaded in the live app-server: goals live in codex's own store, and
    /// `thread/goal/*` answer for unloaded threads. Resuming first would be harmful: resuming a thread whose
    /// goal is active starts continuation turns at once (measured: ~40 model requests in 2 s).
    async fn goal_request<R: ClientRequest>(
        &self,
        request: &R,
    ) -> Result<R::Reply, AppServerError> {
        self.appserver.ensure_started().await?;
        self.appserver.send(request).await
    }

    /// The goal as app-server has it now (`thread/goal/get`), recorded on the workflow's goal row; for
    /// `refresh_live_goal`.
    pub async fn refresh_goal(&self, workflow: &Workflow) -> Result<Option<Value>, EngineError> {
        let goal = self.store.workflow_goal(&workflow.workflow_id).await?;
        let thread_id = goal
            .as_ref()
            .and_then(|g| g.thread_id.clone())
            .or_else(|| workflow.thread_id.clone());
        let Some(thread_id) = thread_id else {
            return Ok(None);
        };
        let reply = self
            .goal_request(&ThreadGoalGet {
                thread_id: thread_id.clone(),
            })
            .await?;
        let live = reply.goal.unwrap_or(Value::Null);
        if goal.is_some_and(|g| g.settled_at.is_none() && g.thread_id.is_some()) {
            self.store
                .observe_thread_goal(&thread_id, (!live.is_null()).then(|| live.clone()))
                .await?;
        }
        Ok(Some(live))
    }
}
