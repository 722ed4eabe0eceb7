//! Reporting an operation's progress back to its workflow's plugin: started, output, finished, and the
//! workflow's final report.

use serde_json::{json, Value};

use super::*;

impl Engine {
    /// Tells the plugin a turn exists (and, for a turn that created the workflow's thread, that the thread does).
    pub(super) async fn report_started(
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
    pub(super) async fn report_output(
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
    pub(super) async fn report_finished(
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
            status: op.status.to_string(),
            final_message,
            plan_items,
        });
        self.feed_workflow(workflow, event, Some(details), source)
            .await
    }

    /// The workflow's final report: the plugin's text, with the structured result of the last turn that
    /// asked for one.
    pub(super) async fn workflow_report(
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
}
