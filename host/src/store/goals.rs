//! Workflow goals (`codex_workflow_goals`): a thread goal a workflow mirrors into app-server.
//!
//! A goal row is written in the same transaction as its workflow (`pending_thread`). The engine moves it to
//! `active` once it set the goal on the thread, records what app-server reports about it, and, after the
//! workflow ends, performs the completion action and marks the row settled. Continuation turns app-server
//! starts by itself for an active goal are found from `tracked_turns`: turns on the goal's thread, after the
//! goal was set, that no operation and no compaction owns.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, Timestamp};

/// What to do with the goal once the workflow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionAction {
    /// Clear the goal (the default).
    Clear,
    /// Mark the goal complete (it stays visible).
    SetComplete,
    /// Leave the goal on the thread.
    Leave,
}

impl CompletionAction {
    /// The tool parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            CompletionAction::Clear => "clear",
            CompletionAction::SetComplete => "set_complete",
            CompletionAction::Leave => "leave",
        }
    }

    /// Parses the tool parameter value.
    pub fn parse(text: &str) -> Option<CompletionAction> {
        match text {
            "clear" => Some(CompletionAction::Clear),
            "set_complete" => Some(CompletionAction::SetComplete),
            "leave" => Some(CompletionAction::Leave),
            _ => None,
        }
    }
}

/// A goal to mirror, as the client asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGoal {
    /// The goal's objective.
    pub objective: String,
    /// Token budget passed to app-server.
    pub token_budget: Option<i64>,
    /// What to do once the workflow ended.
    pub completion_action: CompletionAction,
    /// Objective used by `set_complete`, if different.
    pub completion_objective: Option<String>,
}

/// One goal row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowGoal {
    /// The workflow.
    pub workflow_id: String,
    /// Objective.
    pub objective: String,
    /// Token budget.
    pub token_budget: Option<i64>,
    /// Completion action.
    pub completion_action: CompletionAction,
    /// Objective for `set_complete`.
    pub completion_objective: Option<String>,
    /// The seed's `threadGoal.syncState`.
    pub sync_state: String,
    /// The thread the goal was set on.
    pub thread_id: Option<String>,
    /// The goal's status in app-server, as last reported.
    pub app_server_status: Option<String>,
    /// The goal as app-server last reported it (`ThreadGoal`), or `Null` once cleared.
    pub observed: Option<Value>,
    /// Continuation turns app-server started for the goal, `[{turnId, status}]`, once counted.
    pub continuation_turns: Option<Value>,
    /// Why the row is in its state, when that is not obvious (e.g. never mirrored).
    pub reason: Option<String>,
    /// The last failed app-server call.
    pub error: Option<Value>,
    /// When the goal was first set on the thread (a workflow's later `set-goal` keeps it, so continuation
    /// turns are counted from the first).
    pub set_at: Option<Timestamp>,
    /// When the completion action started.
    pub settling_at: Option<Timestamp>,
    /// When the completion action was done.
    pub settled_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl WorkflowGoal {
    /// True while the goal is on the thread as this server set it.
    pub fn is_active(&self) -> bool {
        self.sync_state == "active"
    }
}

const COLUMNS: &str = "workflow_id, objective, token_budget, completion_action, completion_objective, sync_state, \
    thread_id, app_server_status, observed_json, continuation_turns_json, reason, error_json, set_at, settling_at, \
    settled_at, created_at, updated_at";

fn from_row(row: &Row<'_>) -> Result<WorkflowGoal, rusqlite::Error> {
    let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    let action: String = row.get(3)?;
    Ok(WorkflowGoal {
        workflow_id: row.get(0)?,
        objective: row.get(1)?,
        token_budget: row.get(2)?,
        completion_action: CompletionAction::parse(&action).unwrap_or(CompletionAction::Clear),
        completion_objective: row.get(4)?,
        sync_state: row.get(5)?,
        thread_id: row.get(6)?,
        app_server_status: row.get(7)?,
        observed: json(row.get(8)?),
        continuation_turns: json(row.get(9)?),
        reason: row.get(10)?,
        error: json(row.get(11)?),
        set_at: row.get::<_, Option<i64>>(12)?.map(Timestamp),
        settling_at: row.get::<_, Option<i64>>(13)?.map(Timestamp),
        settled_at: row.get::<_, Option<i64>>(14)?.map(Timestamp),
        created_at: Timestamp(row.get(15)?),
        updated_at: Timestamp(row.get(16)?),
    })
}

/// Records the goal of a new workflow (`pending_thread`); called inside the workflow's insert transaction.
pub fn insert(
    conn: &Connection,
    workflow_id: &str,
    goal: &NewGoal,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO codex_workflow_goals (workflow_id, objective, token_budget, completion_action, \
         completion_objective, sync_state, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending_thread', ?6, ?6)",
    )?
    .execute(params![
        workflow_id,
        goal.objective,
        goal.token_budget,
        goal.completion_action.as_str(),
        goal.completion_objective,
        now
    ])?;
    Ok(())
}

/// The goal of a workflow, if it has one.
pub fn get(conn: &Connection, workflow_id: &str) -> Result<Option<WorkflowGoal>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM codex_workflow_goals WHERE workflow_id = ?1"
        ))?
        .query_row([workflow_id], from_row)
        .optional()?)
}

/// What a mirroring call changed on a goal row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalUpdate {
    /// New `syncState`.
    pub sync_state: Option<String>,
    /// The thread it was set on.
    pub thread_id: Option<String>,
    /// The goal as app-server returned it (`Some(Null)` once cleared).
    pub observed: Option<Value>,
    /// Why.
    pub reason: Option<String>,
    /// The failed call.
    pub error: Option<Value>,
    /// Continuation turns counted.
    pub continuation_turns: Option<Value>,
    /// The goal was set on the thread now (`set_at` keeps the first time).
    pub set: bool,
    /// The completion action starts now.
    pub settling: bool,
    /// The completion action is done.
    pub settled: bool,
}

/// Applies `update` to a goal row and returns it.
pub fn update(
    conn: &Connection,
    workflow_id: &str,
    update: &GoalUpdate,
    now: i64,
) -> Result<WorkflowGoal, StoreError> {
    let status = update.observed.as_ref().map(|goal| {
        goal.get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    conn.prepare_cached(
        "UPDATE codex_workflow_goals SET sync_state = COALESCE(?2, sync_state), \
         thread_id = COALESCE(?3, thread_id), observed_json = COALESCE(?4, observed_json), \
         app_server_status = CASE WHEN ?5 THEN ?6 ELSE app_server_status END, \
         reason = COALESCE(?7, reason), error_json = COALESCE(?8, error_json), \
         continuation_turns_json = COALESCE(?9, continuation_turns_json), \
         set_at = CASE WHEN ?10 THEN COALESCE(set_at, ?13) ELSE set_at END, \
         settling_at = CASE WHEN ?11 THEN COALESCE(settling_at, ?13) ELSE settling_at END, \
         settled_at = CASE WHEN ?12 THEN ?13 ELSE settled_at END, updated_at = ?13 WHERE workflow_id = ?1",
    )?
    .execute(params![
        workflow_id,
        update.sync_state,
        update.thread_id,
        update.observed.as_ref().map(Value::to_string),
        status.is_some(),
        status.flatten(),
        update.reason,
        update.error.as_ref().map(Value::to_string),
        update.continuation_turns.as_ref().map(Value::to_string),
        update.set,
        update.settling,
        update.settled,
        now
    ])?;
    get(conn, workflow_id)?.ok_or_else(|| StoreError::NotFound {
        kind: "workflow goal",
        id: workflow_id.to_string(),
    })
}

/// What a workflow's own `set-goal` / `clear-goal` action does to its goal row.
#[derive(Debug, Clone, PartialEq)]
pub enum GoalAction {
    /// `set-goal`: the row (created with completion action `clear` when the workflow has none) takes this
    /// objective and thread and waits to be set there (`pending_thread`); budget and completion action stay.
    Set {
        /// The thread the goal is for.
        thread_id: String,
        /// The plugin's goal text.
        objective: String,
    },
    /// `clear-goal`: a row on this thread (or on none yet) is `cleared` before app-server is asked, so the
    /// `thread/goal/cleared` that follows is not taken for someone else's override.
    Clear {
        /// The thread whose goal is cleared.
        thread_id: String,
    },
}

/// Applies a workflow action's [`GoalAction`] and marks the action `performed`, in one transaction (the
/// journal: a replay finishes the action from the row instead of applying it again). Returns the row.
pub fn apply_action(
    conn: &Connection,
    workflow_id: &str,
    action_id: &str,
    change: &GoalAction,
    now: i64,
) -> Result<Option<WorkflowGoal>, StoreError> {
    match change {
        GoalAction::Set {
            thread_id,
            objective,
        } => {
            conn.prepare_cached(
                "INSERT INTO codex_workflow_goals (workflow_id, objective, completion_action, sync_state, thread_id, \
                 reason, created_at, updated_at) VALUES (?1, ?2, 'clear', 'pending_thread', ?3, ?4, ?5, ?5) \
                 ON CONFLICT (workflow_id) DO UPDATE SET objective = excluded.objective, sync_state = 'pending_thread', \
                 thread_id = excluded.thread_id, reason = excluded.reason, error_json = NULL, \
                 updated_at = excluded.updated_at",
            )?
            .execute(params![
                workflow_id,
                objective,
                thread_id,
                "set by the workflow's set-goal action",
                now
            ])?;
        }
        GoalAction::Clear { thread_id } => {
            conn.prepare_cached(
                "UPDATE codex_workflow_goals SET sync_state = 'cleared', thread_id = COALESCE(thread_id, ?2), \
                 reason = ?3, updated_at = ?4 \
                 WHERE workflow_id = ?1 AND settled_at IS NULL AND (thread_id IS NULL OR thread_id = ?2)",
            )?
            .execute(params![
                workflow_id,
                thread_id,
                "cleared by the workflow's clear-goal action",
                now
            ])?;
        }
    }
    super::workflows::set_action_state(conn, workflow_id, action_id, "performed", None, None, now)?;
    get(conn, workflow_id)
}

/// Records what app-server reported about the goal of `thread_id` (`thread/goal/updated` carries the goal,
/// `thread/goal/cleared` none). A goal this server set that changes objective, or disappears while no
/// completion action is under way, was overridden by someone else. Returns the rows that changed.
pub fn observe(
    conn: &Connection,
    thread_id: &str,
    goal: Option<&Value>,
    now: i64,
) -> Result<usize, StoreError> {
    let objective = goal
        .and_then(|g| g.get("objective"))
        .and_then(Value::as_str);
    let status = goal.and_then(|g| g.get("status")).and_then(Value::as_str);
    Ok(conn
        .prepare_cached(
            "UPDATE codex_workflow_goals SET observed_json = ?2, app_server_status = ?3, \
             sync_state = CASE WHEN sync_state = 'active' AND settling_at IS NULL \
                 AND (?4 IS NULL OR ?4 <> objective) THEN 'external_override' ELSE sync_state END, \
             reason = CASE WHEN sync_state = 'active' AND settling_at IS NULL AND (?4 IS NULL OR ?4 <> objective) \
                 THEN CASE WHEN ?4 IS NULL THEN 'the goal was cleared outside this workflow' \
                 ELSE 'the goal was replaced outside this workflow' END ELSE reason END, \
             updated_at = ?5 WHERE thread_id = ?1 AND settled_at IS NULL",
        )?
        .execute(params![
            thread_id,
            goal.map_or_else(|| "null".to_string(), Value::to_string),
            status,
            objective,
            now
        ])?)
}

/// Goals whose workflow ended but whose completion action was not done yet, with the workflow's owner.
pub fn unsettled(conn: &Connection) -> Result<Vec<(WorkflowGoal, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, (SELECT w.owner_id FROM codex_workflows w WHERE w.workflow_id = g.workflow_id) \
         FROM codex_workflow_goals g WHERE settled_at IS NULL AND EXISTS (SELECT 1 FROM codex_workflows w \
         WHERE w.workflow_id = g.workflow_id AND w.completed_at IS NOT NULL) ORDER BY created_at LIMIT 100"
    ))?;
    let rows = stmt.query_map([], |row| Ok((from_row(row)?, row.get(17)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Turns app-server started by itself on `thread_id` since `since_ms`: no operation and no compaction owns
/// them. Returns `(turn id, status)`, oldest first.
pub fn continuation_turns(
    conn: &Connection,
    thread_id: &str,
    since_ms: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.turn_id, t.status FROM tracked_turns t WHERE t.thread_id = ?1 AND t.created_at >= ?2 \
         AND NOT EXISTS (SELECT 1 FROM codex_operations o WHERE o.turn_id = t.turn_id) \
         AND NOT EXISTS (SELECT 1 FROM codex_thread_lifecycle_actions a WHERE a.target_turn_id = t.turn_id) \
         ORDER BY t.created_at, t.turn_id",
    )?;
    let rows = stmt.query_map(params![thread_id, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// The goal of a workflow.
    pub async fn workflow_goal(
        &self,
        workflow_id: &str,
    ) -> Result<Option<WorkflowGoal>, StoreError> {
        let id = workflow_id.to_string();
        self.read(move |c| get(c, &id)).await
    }

    /// Applies an update to a workflow's goal.
    pub async fn update_workflow_goal(
        &self,
        workflow_id: &str,
        change: GoalUpdate,
    ) -> Result<WorkflowGoal, StoreError> {
        let id = workflow_id.to_string();
        self.write(move |tx| update(tx, &id, &change, crate::time::now_ms()))
            .await
    }

    /// Applies a workflow action's goal change and journals the action `performed` (see [`apply_action`]).
    pub async fn apply_goal_action(
        &self,
        workflow_id: &str,
        action_id: &str,
        change: GoalAction,
    ) -> Result<Option<WorkflowGoal>, StoreError> {
        let (workflow, action) = (workflow_id.to_string(), action_id.to_string());
        self.write(move |tx| apply_action(tx, &workflow, &action, &change, crate::time::now_ms()))
            .await
    }

    /// Records a goal notification for a thread; a no-op (read only) when no unsettled goal names the thread.
    pub async fn observe_thread_goal(
        &self,
        thread_id: &str,
        goal: Option<Value>,
    ) -> Result<usize, StoreError> {
        let id = thread_id.to_string();
        let watched = {
            let id = id.clone();
            self.read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT 1 FROM codex_workflow_goals WHERE thread_id = ?1 AND settled_at IS NULL LIMIT 1",
                )?
                .exists([id])?)
            })
            .await?
        };
        if !watched {
            return Ok(0);
        }
        self.write(move |tx| observe(tx, &id, goal.as_ref(), crate::time::now_ms()))
            .await
    }

    /// Goals to settle (see [`unsettled`]).
    pub async fn unsettled_goals(&self) -> Result<Vec<(WorkflowGoal, Option<String>)>, StoreError> {
        self.read(unsettled).await
    }

    /// Continuation turns on a thread (see [`continuation_turns`]).
    pub async fn goal_continuation_turns(
        &self,
        thread_id: &str,
        since: Timestamp,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let id = thread_id.to_string();
        self.read(move |c| continuation_turns(c, &id, since.0))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use crate::store::workflows::NewWorkflow;
    use serde_json::json;

    fn new_workflow(goal: Option<NewGoal>) -> NewWorkflow {
        NewWorkflow {
            client_request_id: "k".into(),
            kind: "plan_then_execute".into(),
            plugin_id: "plan-workflow".into(),
            plugin_version: "0.1.0".into(),
            input: json!({"message": "m"}),
            request_fingerprint: "f1".into(),
            runtime_policy: None,
            owner_id: "mcp:1:a".into(),
            goal,
        }
    }

    async fn goal_row(store: &Store, workflow_id: &str) -> WorkflowGoal {
        store
            .workflow_goal(workflow_id)
            .await
            .expect("read")
            .expect("goal row")
    }

    fn goal() -> NewGoal {
        NewGoal {
            objective: "ship it".into(),
            token_budget: Some(1000),
            completion_action: CompletionAction::SetComplete,
            completion_objective: None,
        }
    }

    #[tokio::test]
    async fn a_goal_is_stored_with_its_workflow_and_tracks_app_server() {
        let (_dir, store) = temp_store();
        let (wf, _) = store
            .insert_workflow(new_workflow(Some(goal())))
            .await
            .expect("insert");
        let row = store
            .workflow_goal(&wf.workflow_id)
            .await
            .expect("read")
            .expect("goal row written with the workflow");
        assert_eq!(row.sync_state, "pending_thread");
        assert_eq!(row.completion_action, CompletionAction::SetComplete);

        let set = store
            .update_workflow_goal(
                &wf.workflow_id,
                GoalUpdate {
                    sync_state: Some("active".into()),
                    thread_id: Some("th1".into()),
                    observed: Some(json!({"objective": "ship it", "status": "active"})),
                    set: true,
                    ..GoalUpdate::default()
                },
            )
            .await
            .expect("set");
        assert!(set.is_active());
        assert_eq!(set.app_server_status.as_deref(), Some("active"));
        assert!(set.set_at.is_some());

        // The model completing the goal is an observation, not an override.
        store
            .observe_thread_goal(
                "th1",
                Some(json!({"objective": "ship it", "status": "complete"})),
            )
            .await
            .expect("observe");
        let row = goal_row(&store, &wf.workflow_id).await;
        assert_eq!(row.sync_state, "active");
        assert_eq!(row.app_server_status.as_deref(), Some("complete"));

        // Another objective on the thread is someone else's goal.
        store
            .observe_thread_goal(
                "th1",
                Some(json!({"objective": "other", "status": "active"})),
            )
            .await
            .expect("observe");
        let row = goal_row(&store, &wf.workflow_id).await;
        assert_eq!(row.sync_state, "external_override");

        // Nothing watches an unknown thread.
        assert_eq!(
            store
                .observe_thread_goal("th2", None)
                .await
                .expect("observe"),
            0
        );
    }

    #[tokio::test]
    async fn a_workflow_action_sets_and_clears_the_goal_row_it_journals() {
        let (_dir, store) = temp_store();
        let (wf, _) = store
            .insert_workflow(new_workflow(Some(goal())))
            .await
            .expect("insert");
        let set = |objective: &str| GoalAction::Set {
            thread_id: "th1".into(),
            objective: objective.into(),
        };
        // A client's goal takes the plugin's objective and thread; its budget and completion action stay.
        let row = store
            .apply_goal_action(&wf.workflow_id, "a1", set("plugin goal"))
            .await
            .expect("set");
        let row = row.expect("row");
        assert_eq!(
            (row.objective.as_str(), row.sync_state.as_str()),
            ("plugin goal", "pending_thread")
        );
        assert_eq!(
            (row.thread_id.as_deref(), row.token_budget),
            (Some("th1"), Some(1000))
        );
        assert_eq!(row.completion_action, CompletionAction::SetComplete);
        // A clear for another thread leaves the row alone; one for its thread marks it cleared.
        let other = GoalAction::Clear {
            thread_id: "th2".into(),
        };
        let row = store
            .apply_goal_action(&wf.workflow_id, "a2", other)
            .await
            .expect("clear");
        assert_eq!(row.expect("row").sync_state, "pending_thread");
        let clear = GoalAction::Clear {
            thread_id: "th1".into(),
        };
        let row = store
            .apply_goal_action(&wf.workflow_id, "a3", clear)
            .await
            .expect("clear");
        assert_eq!(row.expect("row").sync_state, "cleared");
        // A workflow without a goal gets one, settled by `clear` when it ends.
        let (bare, _) = store
            .insert_workflow(NewWorkflow {
                client_request_id: "k2".into(),
                ..new_workflow(None)
            })
            .await
            .expect("insert");
        let row = store
            .apply_goal_action(&bare.workflow_id, "a1", set("g"))
            .await
            .expect("set");
        assert_eq!(row.expect("row").completion_action, CompletionAction::Clear);
    }

    #[tokio::test]
    async fn a_clear_during_the_completion_action_is_not_an_override() {
        let (_dir, store) = temp_store();
        let (wf, _) = store
            .insert_workflow(new_workflow(Some(goal())))
            .await
            .expect("insert");
        store
            .update_workflow_goal(
                &wf.workflow_id,
                GoalUpdate {
                    sync_state: Some("active".into()),
                    thread_id: Some("th1".into()),
                    set: true,
                    ..GoalUpdate::default()
                },
            )
            .await
            .expect("set");
        store
            .update_workflow_goal(
                &wf.workflow_id,
                GoalUpdate {
                    settling: true,
                    ..GoalUpdate::default()
                },
            )
            .await
            .expect("settling");
        store
            .observe_thread_goal("th1", None)
            .await
            .expect("observe");
        let row = goal_row(&store, &wf.workflow_id).await;
        assert_eq!(row.sync_state, "active");
        assert_eq!(row.observed, Some(Value::Null));
        assert!(
            store.unsettled_goals().await.expect("unsettled").is_empty(),
            "a running workflow's goal is not settled yet"
        );
    }
}
