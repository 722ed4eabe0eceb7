//! A workflow's own `set-goal` and `clear-goal` actions, on the goal machinery of [`crate::engine::goals`].
//!
//! The workflow has one goal row. `set-goal` writes the plugin's objective and thread into it (creating it
//! with completion action `clear` when the client gave no goal; a client's budget and completion action are
//! kept) and journals the action `performed` in the same transaction. The goal reaches app-server by the same
//! rule as a client's goal: at once when a default-mode turn of the workflow runs on the thread (or the
//! thread's goal is this workflow's and active already, so only the objective changes), else when the
//! workflow's next default-mode turn starts there. It is settled with the completion action when the workflow
//! ends. `clear-goal` marks the row `cleared`, journals the action, then sends `thread/goal/clear`. Both go
//! through the policy chain as kind `set-goal` first, and both are replayed from `performed` after a crash:
//! setting the same goal again and clearing twice are harmless.

use serde_json::{json, Value};

use super::*;
use crate::plugins::types::{ActionKind, ActionRequest, InputSummary};
use crate::store::goals::GoalAction;

impl Engine {
    /// Performs a pending `set-goal` / `clear-goal`: policy, the row change journaled with the action, then
    /// [`Engine::finish_goal_action`].
    pub(super) async fn perform_goal_action(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
    ) -> Result<(), EngineError> {
        let Some(thread) = self.thread_or_refuse(workflow, action, all).await? else {
            return Ok(());
        };
        let objective = action.action["goal"].as_str().unwrap_or_default().trim();
        let change = if action.kind == "set-goal" {
            if objective.is_empty() {
                let message = "set-goal needs a non-empty goal".to_string();
                return self
                    .refuse_action(workflow, action, "invalid_goal", message)
                    .await;
            }
            GoalAction::Set {
                thread_id: thread.clone(),
                objective: objective.to_string(),
            }
        } else {
            GoalAction::Clear {
                thread_id: thread.clone(),
            }
        };
        let previous = self.store.workflow_goal(&workflow.workflow_id).await?;
        if let (GoalAction::Set { .. }, Some(goal)) = (&change, &previous) {
            // The workflow has one goal: moving it would leave the first thread's goal running unattended.
            let elsewhere = goal.thread_id.as_deref().filter(|t| *t != thread);
            if let (true, Some(other)) = (goal.is_active(), elsewhere) {
                let message =
                    format!("the workflow's goal is active on thread {other}; clear it first");
                return self
                    .refuse_action(workflow, action, "goal_on_another_thread", message)
                    .await;
            }
        }
        let request = ActionRequest {
            action_id: action.action_id.clone(),
            kind: ActionKind::SetGoal,
            operation_id: None,
            thread_id: Some(thread.clone()),
            settings: TurnSettings {
                cwd: workflow
                    .input
                    .get("cwd")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                sandbox: None,
                approval_policy: None,
                model: None,
                effort: None,
                collaboration_mode: None,
            },
            input: InputSummary {
                text_bytes: objective.len() as u64,
                image_count: 0,
            },
            context: self.plugins.policy_context(),
        };
        if let Err(err) = self.policy_verdict(request).await {
            let code = crate::engine::failure_code(&err).as_str();
            return self
                .refuse_action(workflow, action, code, err.to_string())
                .await;
        }
        self.store
            .apply_goal_action(&workflow.workflow_id, &action.action_id, change)
            .await?;
        let replaces_active = previous
            .as_ref()
            .is_some_and(|g| g.is_active() && g.thread_id.as_deref() == Some(thread.as_str()));
        let workflow = self.reload(&workflow.workflow_id).await?;
        let mut action = action.clone();
        action.state = "performed".to_string();
        self.finish_goal_action(&workflow, &action, all, replaces_active)
            .await?;
        Ok(())
    }

    /// Finishes a `performed` goal action (at once, or replayed after a crash) and tells the plugin:
    /// `action-completed {threadId, objective, syncState, goal}` for `set-goal` (`syncState` `active` when it
    /// is on the thread now, `pending_thread` until the workflow's next default-mode turn there),
    /// `action-completed {threadId, cleared: true}` for `clear-goal`, or `action-failed` with app-server's
    /// error code.
    pub(super) async fn finish_goal_action(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        all: &[WorkflowAction],
        replaces_active: bool,
    ) -> Result<Workflow, EngineError> {
        let Some(thread) = Self::resolve_thread(&action.action["thread"], all) else {
            let message = "the action's thread is no longer known".to_string();
            return self.refused(workflow, action, "no_thread", message).await;
        };
        let output = if action.kind == "clear-goal" {
            if let Some(err) = self.clear_goal_on_thread(workflow, &thread).await? {
                let code = err.failure_code().as_str();
                return self.refused(workflow, action, code, err.to_string()).await;
            }
            json!({"threadId": thread, "cleared": true})
        } else {
            let Some(mut goal) = self.store.workflow_goal(&workflow.workflow_id).await? else {
                return Err(EngineError::Invalid(format!(
                    "workflow {} lost its goal row",
                    workflow.workflow_id
                )));
            };
            let waiting = goal.sync_state == "pending_thread"
                && goal.thread_id.as_deref() == Some(thread.as_str());
            if waiting && (replaces_active || self.default_turn_runs(all, &thread).await?) {
                let (row, failure) = self.set_goal_on_thread(workflow, &thread, &goal).await?;
                if let Some(err) = failure {
                    let code = err.failure_code().as_str();
                    return self.refused(workflow, action, code, err.to_string()).await;
                }
                goal = row;
            }
            json!({"threadId": thread, "objective": goal.objective, "syncState": goal.sync_state,
                   "goal": goal.observed})
        };
        let reported = Some((action.action_id.clone(), "reported".to_string()));
        self.report_output(workflow, &action.action_id, "performed", output, reported)
            .await
    }

    /// Refuses a goal action ([`Engine::refuse_action`]) and returns the workflow as it is now.
    async fn refused(
        &self,
        workflow: &Workflow,
        action: &WorkflowAction,
        code: &str,
        message: String,
    ) -> Result<Workflow, EngineError> {
        self.refuse_action(workflow, action, code, message).await?;
        self.reload(&workflow.workflow_id).await
    }

    /// True while a default-mode (non-plan) turn the workflow started runs on `thread`: the only time the
    /// host puts an active goal on a thread (see [`crate::engine::goals`]).
    async fn default_turn_runs(
        &self,
        all: &[WorkflowAction],
        thread: &str,
    ) -> Result<bool, EngineError> {
        let turns = all.iter().filter(|a| {
            a.kind == "start-turn"
                && a.action["settings"]["collaborationMode"].as_str() != Some("plan")
        });
        for op_id in turns.filter_map(|a| a.operation_id.as_deref()) {
            let Some(op) = self.store.get_operation(op_id).await? else {
                continue;
            };
            if !op.is_terminal() && op.turn_id.is_some() && op.thread_id.as_deref() == Some(thread)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
