//! Everything a workflow's status shows, read in one snapshot.

use rusqlite::Connection;
use serde_json::Value;

use super::{actions, events, get, Workflow, WorkflowAction};
use crate::store::StoreError;

/// Everything a workflow status shows, read in one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowSnapshot {
    /// The workflow.
    pub workflow: Workflow,
    /// Its action journal, in order.
    pub actions: Vec<WorkflowAction>,
    /// The operations its actions created, in action order.
    pub operations: Vec<crate::store::operations::Operation>,
    /// Its pending interactions.
    pub pending: Vec<crate::store::interactions::PendingInteraction>,
    /// The latest history lines (empty when not asked for).
    pub events: Vec<Value>,
    /// Its thread goal, if it has one.
    pub goal: Option<crate::store::goals::WorkflowGoal>,
}

/// Reads a [`WorkflowSnapshot`]; `n_events` history lines (0: none).
pub fn snapshot(
    conn: &Connection,
    workflow_id: &str,
    n_events: usize,
) -> Result<Option<WorkflowSnapshot>, StoreError> {
    let Some(workflow) = get(conn, workflow_id)? else {
        return Ok(None);
    };
    let actions = actions(conn, workflow_id)?;
    let mut operations = Vec::new();
    for id in actions.iter().filter_map(|a| a.operation_id.as_deref()) {
        if let Some(op) = crate::store::operations::get(conn, id)? {
            operations.push(op);
        }
    }
    let pending = crate::store::interactions::list(
        conn,
        &crate::store::InteractionFilter {
            workflow_id: Some(workflow_id.to_string()),
            status: Some("pending".into()),
            ..Default::default()
        },
        50,
    )?;
    let events = if n_events > 0 {
        events(conn, workflow_id, n_events)?
    } else {
        Vec::new()
    };
    let goal = crate::store::goals::get(conn, workflow_id)?;
    Ok(Some(WorkflowSnapshot {
        workflow,
        actions,
        operations,
        pending,
        events,
        goal,
    }))
}
