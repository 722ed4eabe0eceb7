//! Live views and entry points from outside the pump: refreshing a workflow against app-server,
//! approving a plan, adopting an existing thread.

use serde_json::{json, Value};

use super::*;

impl Engine {
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
    pub(super) async fn live_turn(
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
            crate::domain::rules::status::is_terminal(
                crate::engine::tracker::normalize_turn_status(status),
            )
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

impl Engine {
    /// How app-server says a turn ended (`completed`, `interrupted`, ...), or `None` while it still runs: what a
    /// reconcile repair predicts before it settles anything (`thread/read`, nothing stored).
    pub async fn ended_turn_status(
        &self,
        thread_id: &str,
        turn_id: &str,
    ) -> Result<Option<&'static str>, EngineError> {
        Ok(self.live_turn(thread_id, turn_id).await?.map(|turn| {
            crate::engine::tracker::normalize_turn_status(
                turn.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
        }))
    }
}
