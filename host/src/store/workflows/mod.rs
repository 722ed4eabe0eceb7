//! Workflows (`codex_workflows`), their action journal (`codex_workflow_actions`) and history
//! (`codex_workflow_events`).
//!
//! A workflow is driven by a plugin: every step the plugin returns (new opaque state, phase, actions) is stored
//! in **one transaction** by [`apply_step`], together with the journal entry of the event that caused it, so a
//! crash either loses the whole step (the event is fed again) or keeps all of it (the actions are performed from
//! the journal). Actions move `pending -> performed -> started -> reported` (or `failed`).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{new_id, Store, StoreError, Timestamp};

mod ownership;
mod snapshot;

pub use ownership::{active, take_over};
pub use snapshot::{snapshot, WorkflowSnapshot};

/// Workflow phases that end it.
pub const TERMINAL_PHASES: [&str; 4] = [
    "completed",
    "failed",
    "orphaned",
    "orphaned_after_app_server_exit",
];

/// True when `phase` ends a workflow.
pub fn is_terminal_phase(phase: &str) -> bool {
    TERMINAL_PHASES.contains(&phase)
}

/// One workflow row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// `wf_<32 hex>`.
    pub workflow_id: String,
    /// Idempotency key.
    pub client_request_id: String,
    /// `plan_then_execute`, ...
    pub kind: String,
    /// The plugin driving it.
    pub plugin_id: String,
    /// Its version when the workflow started.
    pub plugin_version: String,
    /// The input given to the plugin.
    pub input: Value,
    /// The plugin's opaque state.
    pub state: Value,
    /// Phase (from the plugin's state).
    pub phase: String,
    /// Status (from the plugin's state, or the phase).
    pub status: String,
    /// The workflow's thread, once known.
    pub thread_id: Option<String>,
    /// Requested and effective sandbox/approval.
    pub runtime_policy: Option<Value>,
    /// The final report, once completed.
    pub final_report: Option<Value>,
    /// The error, once failed.
    pub error: Option<Value>,
    /// The process driving it.
    pub owner_id: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Ended.
    pub completed_at: Option<Timestamp>,
}

impl Workflow {
    /// True once the workflow ended.
    pub fn is_terminal(&self) -> bool {
        is_terminal_phase(&self.phase)
    }
}

/// One journaled action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowAction {
    /// The workflow.
    pub workflow_id: String,
    /// The plugin's action id.
    pub action_id: String,
    /// Order within the workflow.
    pub seq: i64,
    /// `start-turn`, `wait-for-approval`, ...
    pub kind: String,
    /// The action as the plugin returned it (host JSON form).
    pub action: Value,
    /// pending, performed, started, reported or failed.
    pub state: String,
    /// The operation performing it, if any.
    pub operation_id: Option<String>,
    /// What it produced.
    pub output: Option<Value>,
}

/// A new workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkflow {
    /// Idempotency key (required: the tool generates one when the client gives none).
    pub client_request_id: String,
    /// Kind.
    pub kind: String,
    /// Plugin id.
    pub plugin_id: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Plugin input.
    pub input: Value,
    /// Canonical request, compared on an idempotent retry.
    pub request_fingerprint: String,
    /// Runtime policy.
    pub runtime_policy: Option<Value>,
    /// The process that will drive it.
    pub owner_id: String,
    /// A thread goal to mirror, stored in the same transaction.
    pub goal: Option<super::goals::NewGoal>,
}

/// One step to store: what the plugin returned for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The event name (`started`, `turn-completed`, ...).
    pub event: String,
    /// Event details for the history.
    pub details: Option<Value>,
    /// New plugin state.
    pub state: Value,
    /// Actions, as `(id, kind, json)`.
    pub actions: Vec<(String, String, Value)>,
    /// An action whose report caused this step, moved to `reported`/`started` in the same transaction.
    pub source_action: Option<(String, String)>,
    /// The final report, when the step completes the workflow: stored with the terminal phase, so no reader
    /// ever sees `completed` without it.
    pub report: Option<Value>,
    /// The error, when the step fails the workflow (same reason).
    pub error: Option<Value>,
}

const COLUMNS: &str = "workflow_id, client_request_id, kind, plugin_id, plugin_version, input_json, state_json, \
    phase, status, thread_id, runtime_policy_json, final_report_json, error_json, owner_id, created_at, updated_at, \
    completed_at";

fn json_col(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn from_row(row: &Row<'_>) -> Result<Workflow, rusqlite::Error> {
    Ok(Workflow {
        workflow_id: row.get(0)?,
        client_request_id: row.get(1)?,
        kind: row.get(2)?,
        plugin_id: row.get(3)?,
        plugin_version: row.get(4)?,
        input: json_col(row.get(5)?).unwrap_or(Value::Null),
        state: json_col(row.get(6)?).unwrap_or(Value::Null),
        phase: row.get(7)?,
        status: row.get(8)?,
        thread_id: row.get(9)?,
        runtime_policy: json_col(row.get(10)?),
        final_report: json_col(row.get(11)?),
        error: json_col(row.get(12)?),
        owner_id: row.get(13)?,
        created_at: Timestamp(row.get(14)?),
        updated_at: Timestamp(row.get(15)?),
        completed_at: row.get::<_, Option<i64>>(16)?.map(Timestamp),
    })
}

fn action_from_row(row: &Row<'_>) -> Result<WorkflowAction, rusqlite::Error> {
    Ok(WorkflowAction {
        workflow_id: row.get(0)?,
        action_id: row.get(1)?,
        seq: row.get(2)?,
        kind: row.get(3)?,
        action: json_col(row.get(4)?).unwrap_or(Value::Null),
        state: row.get(5)?,
        operation_id: row.get(6)?,
        output: json_col(row.get(7)?),
    })
}

/// One workflow by id.
pub fn get(conn: &Connection, workflow_id: &str) -> Result<Option<Workflow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM codex_workflows WHERE workflow_id = ?1"
        ))?
        .query_row([workflow_id], from_row)
        .optional()?)
}

fn require(conn: &Connection, workflow_id: &str) -> Result<Workflow, StoreError> {
    get(conn, workflow_id)?.ok_or_else(|| StoreError::NotFound {
        kind: "workflow",
        id: workflow_id.to_string(),
    })
}

/// Inserts a workflow (phase `starting`), or returns the existing one for the same key and request.
/// Returns `(workflow, created)`.
pub fn insert(
    conn: &Connection,
    new: &NewWorkflow,
    now: i64,
) -> Result<(Workflow, bool), StoreError> {
    let existing: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT workflow_id, request_fingerprint FROM codex_workflows WHERE client_request_id = ?1",
        )?
        .query_row([&new.client_request_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((workflow_id, fingerprint)) = existing {
        if fingerprint != new.request_fingerprint {
            return Err(StoreError::IdempotencyKeyReused {
                operation_id: workflow_id,
                differing_fields: vec!["request".to_string()],
            });
        }
        return Ok((require(conn, &workflow_id)?, false));
    }
    let workflow_id = new_id("wf");
    conn.prepare_cached(
        "INSERT INTO codex_workflows (workflow_id, client_request_id, kind, plugin_id, plugin_version, input_json, \
         request_fingerprint, state_json, phase, status, runtime_policy_json, owner_id, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'null', 'starting', 'starting', ?8, ?9, ?10, ?10)",
    )?
    .execute(params![
        workflow_id,
        new.client_request_id,
        new.kind,
        new.plugin_id,
        new.plugin_version,
        new.input.to_string(),
        new.request_fingerprint,
        new.runtime_policy.as_ref().map(Value::to_string),
        new.owner_id,
        now
    ])?;
    if let Some(goal) = &new.goal {
        super::goals::insert(conn, &workflow_id, goal, now)?;
    }
    Ok((require(conn, &workflow_id)?, true))
}

/// Stores one plugin step atomically: state, phase/status (read from the state's `phase`/`status`), the new
/// actions (an id already journaled is kept as is: replays never duplicate), the history line, and the source
/// action's new journal state.
pub fn apply_step(
    conn: &Connection,
    workflow_id: &str,
    step: &StepRecord,
    now: i64,
) -> Result<Workflow, StoreError> {
    let current = require(conn, workflow_id)?;
    let phase = step
        .state
        .get("phase")
        .and_then(Value::as_str)
        .unwrap_or(&current.phase)
        .to_string();
    let status = step
        .state
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or(&phase)
        .to_string();
    let thread_id = step
        .state
        .get("threadId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(current.thread_id.clone());
    let terminal = is_terminal_phase(&phase);
    conn.prepare_cached(
        "UPDATE codex_workflows SET state_json = ?2, phase = ?3, status = ?4, thread_id = ?5, updated_at = ?6, \
         completed_at = CASE WHEN ?7 THEN COALESCE(completed_at, ?6) ELSE NULL END WHERE workflow_id = ?1",
    )?
    .execute(params![
        workflow_id,
        step.state.to_string(),
        phase,
        status,
        thread_id,
        now,
        terminal
    ])?;
    let mut seq: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) FROM codex_workflow_actions WHERE workflow_id = ?1",
        )?
        .query_row([workflow_id], |r| r.get(0))?;
    for (action_id, kind, action) in &step.actions {
        seq += 1;
        conn.prepare_cached(
            "INSERT INTO codex_workflow_actions (workflow_id, action_id, seq, kind, action_json, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT(workflow_id, action_id) DO NOTHING",
        )?
        .execute(params![workflow_id, action_id, seq, kind, action.to_string(), now])?;
    }
    if let Some((action_id, state)) = &step.source_action {
        set_action_state(conn, workflow_id, action_id, state, None, None, now)?;
    }
    if step.report.is_some() || step.error.is_some() {
        set_outcome(
            conn,
            workflow_id,
            step.report.as_ref(),
            step.error.as_ref(),
            now,
        )?;
    }
    conn.prepare_cached(
        "INSERT INTO codex_workflow_events (workflow_id, event, phase, details_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        workflow_id,
        step.event,
        phase,
        step.details.as_ref().map(Value::to_string),
        now
    ])?;
    require(conn, workflow_id)
}

/// Moves an action to `state`, recording its operation and output when given.
pub fn set_action_state(
    conn: &Connection,
    workflow_id: &str,
    action_id: &str,
    state: &str,
    operation_id: Option<&str>,
    output: Option<&Value>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE codex_workflow_actions SET state = ?3, operation_id = COALESCE(?4, operation_id), \
         output_json = COALESCE(?5, output_json), updated_at = ?6 WHERE workflow_id = ?1 AND action_id = ?2",
    )?
    .execute(params![
        workflow_id,
        action_id,
        state,
        operation_id,
        output.map(Value::to_string),
        now
    ])?;
    Ok(())
}

/// Records the final report or error of a workflow.
pub fn set_outcome(
    conn: &Connection,
    workflow_id: &str,
    report: Option<&Value>,
    error: Option<&Value>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE codex_workflows SET final_report_json = COALESCE(?2, final_report_json), \
         error_json = COALESCE(?3, error_json), updated_at = ?4 WHERE workflow_id = ?1",
    )?
    .execute(params![
        workflow_id,
        report.map(Value::to_string),
        error.map(Value::to_string),
        now
    ])?;
    Ok(())
}

/// The actions of a workflow, in order.
pub fn actions(conn: &Connection, workflow_id: &str) -> Result<Vec<WorkflowAction>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT workflow_id, action_id, seq, kind, action_json, state, operation_id, output_json \
         FROM codex_workflow_actions WHERE workflow_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([workflow_id], action_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest history lines of a workflow, oldest first.
pub fn events(
    conn: &Connection,
    workflow_id: &str,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT event, phase, details_json, created_at FROM codex_workflow_events WHERE workflow_id = ?1 \
         ORDER BY event_id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![workflow_id, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(serde_json::json!({
                "event": r.get::<_, String>(0)?,
                "phase": r.get::<_, String>(1)?,
                "details": json_col(r.get(2)?),
                "at": Timestamp(r.get(3)?).iso(),
            }))
        },
    )?;
    let mut out: Vec<Value> = rows.collect::<Result<_, _>>()?;
    out.reverse();
    Ok(out)
}

impl Store {
    /// A workflow with everything its status shows, in one read (see [`snapshot`]).
    pub async fn workflow_snapshot(
        &self,
        workflow_id: &str,
        n_events: usize,
    ) -> Result<Option<WorkflowSnapshot>, StoreError> {
        let id = workflow_id.to_string();
        self.read(move |c| snapshot(c, &id, n_events)).await
    }

    /// Inserts (or finds, by its idempotency key) the operation performing a workflow action and marks the
    /// action `performed` with it, in one transaction.
    pub async fn insert_workflow_operation(
        &self,
        workflow_id: &str,
        action_id: &str,
        new: super::operations::NewOperation,
    ) -> Result<super::operations::InsertOutcome, StoreError> {
        let (workflow_id, action_id) = (workflow_id.to_string(), action_id.to_string());
        self.write(move |tx| {
            let now = crate::time::now_ms();
            let outcome = super::operations::insert(tx, &new, now)?;
            let operation = match &outcome {
                super::operations::InsertOutcome::Created { operation, .. }
                | super::operations::InsertOutcome::Existing { operation, .. } => operation,
            };
            set_action_state(
                tx,
                &workflow_id,
                &action_id,
                "performed",
                Some(&operation.operation_id),
                None,
                now,
            )?;
            Ok(outcome)
        })
        .await
    }

    /// Inserts a workflow or returns the existing one for the same key (see [`insert`]).
    pub async fn insert_workflow(&self, new: NewWorkflow) -> Result<(Workflow, bool), StoreError> {
        self.write(move |tx| insert(tx, &new, crate::time::now_ms()))
            .await
    }

    /// One workflow.
    pub async fn get_workflow(&self, workflow_id: &str) -> Result<Option<Workflow>, StoreError> {
        let id = workflow_id.to_string();
        self.read(move |c| get(c, &id)).await
    }

    /// Stores one plugin step atomically (see [`apply_step`]).
    pub async fn apply_workflow_step(
        &self,
        workflow_id: &str,
        step: StepRecord,
    ) -> Result<Workflow, StoreError> {
        let id = workflow_id.to_string();
        self.write(move |tx| apply_step(tx, &id, &step, crate::time::now_ms()))
            .await
    }

    /// Moves a journaled action to `state`.
    pub async fn set_workflow_action_state(
        &self,
        workflow_id: &str,
        action_id: &str,
        state: &str,
        operation_id: Option<&str>,
        output: Option<Value>,
    ) -> Result<(), StoreError> {
        let (wf, action, state, op) = (
            workflow_id.to_string(),
            action_id.to_string(),
            state.to_string(),
            operation_id.map(str::to_string),
        );
        self.write(move |tx| {
            set_action_state(
                tx,
                &wf,
                &action,
                &state,
                op.as_deref(),
                output.as_ref(),
                crate::time::now_ms(),
            )
        })
        .await
    }

    /// Records a workflow's final report or error.
    pub async fn set_workflow_outcome(
        &self,
        workflow_id: &str,
        report: Option<Value>,
        error: Option<Value>,
    ) -> Result<(), StoreError> {
        let id = workflow_id.to_string();
        self.write(move |tx| {
            set_outcome(
                tx,
                &id,
                report.as_ref(),
                error.as_ref(),
                crate::time::now_ms(),
            )
        })
        .await
    }

    /// A workflow's actions, in order.
    pub async fn workflow_actions(
        &self,
        workflow_id: &str,
    ) -> Result<Vec<WorkflowAction>, StoreError> {
        let id = workflow_id.to_string();
        self.read(move |c| actions(c, &id)).await
    }

    /// A workflow's latest history lines.
    pub async fn workflow_events(
        &self,
        workflow_id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        let id = workflow_id.to_string();
        self.read(move |c| events(c, &id, limit)).await
    }

    /// Workflows not yet ended.
    pub async fn active_workflows(&self, limit: usize) -> Result<Vec<Workflow>, StoreError> {
        self.read(move |c| active(c, limit)).await
    }

    /// Takes a workflow over from `expected_owner` (absent or provably dead) in one compare-and-set; returns
    /// whether `me` now drives it (see [`take_over`]).
    pub async fn take_over_workflow(
        &self,
        workflow_id: &str,
        me: &str,
        expected_owner: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (id, me) = (workflow_id.to_string(), me.to_string());
        let expected = expected_owner.map(str::to_string);
        self.write(move |tx| take_over(tx, &id, &me, expected.as_deref(), crate::time::now_ms()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;
    use serde_json::json;

    fn new_workflow(key: &str) -> NewWorkflow {
        NewWorkflow {
            client_request_id: key.into(),
            kind: "plan_then_execute".into(),
            plugin_id: "plan-workflow".into(),
            plugin_version: "0.1.0".into(),
            input: json!({"message": "m"}),
            request_fingerprint: "f1".into(),
            runtime_policy: None,
            owner_id: "mcp:1:a".into(),
            goal: None,
        }
    }

    #[tokio::test]
    async fn steps_are_stored_atomically_and_replays_keep_one_action() {
        let (_dir, store) = temp_store();
        let (wf, created) = store
            .insert_workflow(new_workflow("k"))
            .await
            .expect("insert");
        assert!(created);
        let (again, created) = store
            .insert_workflow(new_workflow("k"))
            .await
            .expect("again");
        assert!(!created);
        assert_eq!(again.workflow_id, wf.workflow_id);
        let mut other = new_workflow("k");
        other.request_fingerprint = "f2".into();
        assert!(matches!(
            store.insert_workflow(other).await,
            Err(StoreError::IdempotencyKeyReused { .. })
        ));

        let step = StepRecord {
            event: "started".into(),
            details: None,
            state: json!({"phase": "planning", "status": "running"}),
            actions: vec![("plan".into(), "start-turn".into(), json!({"id": "plan"}))],
            source_action: None,
            report: None,
            error: None,
        };
        store
            .apply_workflow_step(&wf.workflow_id, step.clone())
            .await
            .expect("step");
        let stored = store
            .apply_workflow_step(&wf.workflow_id, step)
            .await
            .expect("replay");
        assert_eq!(stored.phase, "planning");
        assert_eq!(stored.status, "running");
        let actions = store
            .workflow_actions(&wf.workflow_id)
            .await
            .expect("actions");
        assert_eq!(actions.len(), 1, "a replayed action id is journaled once");
        assert_eq!(actions[0].state, "pending");

        let done = StepRecord {
            event: "turn-completed".into(),
            details: Some(json!({"status": "completed"})),
            state: json!({"phase": "completed"}),
            actions: vec![],
            source_action: Some(("plan".into(), "reported".into())),
            report: Some(json!({"text": "done"})),
            error: None,
        };
        let ended = store
            .apply_workflow_step(&wf.workflow_id, done)
            .await
            .expect("done");
        assert!(ended.is_terminal());
        assert!(ended.completed_at.is_some());
        assert_eq!(
            ended.final_report,
            Some(json!({"text": "done"})),
            "the report lands with the terminal phase"
        );
        let actions = store
            .workflow_actions(&wf.workflow_id)
            .await
            .expect("actions");
        assert_eq!(actions[0].state, "reported");
        assert_eq!(
            store
                .workflow_events(&wf.workflow_id, 10)
                .await
                .expect("events")
                .len(),
            3
        );
        assert!(store.active_workflows(10).await.expect("active").is_empty());
    }

    /// Registers `owner` as a worker of this host that has stopped, so it counts as provably dead.
    async fn dead_worker(store: &Store, owner: &str) {
        let mut worker = crate::store::leases::WorkerInfo::current(None);
        worker.owner_id = owner.into();
        store.register_worker(worker).await.expect("register");
        store.stop_worker(owner).await.expect("stop");
    }

    #[tokio::test]
    async fn a_live_owner_keeps_its_workflow_and_a_stale_expectation_loses() {
        let (_dir, store) = temp_store();
        let mut live = crate::store::leases::WorkerInfo::current(None);
        live.owner_id = "mcp:live".into();
        store.register_worker(live).await.expect("register");
        let mut new = new_workflow("live");
        new.owner_id = "mcp:live".into();
        let (wf, _) = store.insert_workflow(new).await.expect("insert");
        let id = wf.workflow_id.as_str();
        assert!(!store
            .take_over_workflow(id, "mcp:me", Some("mcp:live"))
            .await
            .expect("cas"));
        assert!(!store
            .take_over_workflow(id, "mcp:me", Some("mcp:someone-else"))
            .await
            .expect("cas"));
        assert!(store
            .take_over_workflow(id, "mcp:live", Some("mcp:live"))
            .await
            .expect("own"));
        let stored = store.get_workflow(id).await.expect("get").expect("row");
        assert_eq!(stored.owner_id.as_deref(), Some("mcp:live"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_racing_for_an_orphaned_workflow_have_one_winner() {
        let (dir, first) = temp_store();
        // A second handle has its own writer thread and connection, like another server process.
        let second = Store::open(&dir.path().join("state.sqlite3")).expect("second handle");
        dead_worker(&first, "mcp:dead").await;
        for round in 0..100 {
            let mut new = new_workflow(&format!("race-{round}"));
            new.owner_id = "mcp:dead".into();
            let (wf, _) = first.insert_workflow(new).await.expect("insert");
            let (a, b) = (first.clone(), second.clone());
            let (id_a, id_b) = (wf.workflow_id.clone(), wf.workflow_id.clone());
            let left = tokio::spawn(async move {
                a.take_over_workflow(&id_a, "mcp:left", Some("mcp:dead"))
                    .await
            });
            let right = tokio::spawn(async move {
                b.take_over_workflow(&id_b, "mcp:right", Some("mcp:dead"))
                    .await
            });
            let left = left.await.expect("join").expect("left cas");
            let right = right.await.expect("join").expect("right cas");
            assert!(left ^ right, "round {round}: left {left}, right {right}");
            let stored = second
                .get_workflow(&wf.workflow_id)
                .await
                .expect("get")
                .expect("row");
            let winner = if left { "mcp:left" } else { "mcp:right" };
            assert_eq!(stored.owner_id.as_deref(), Some(winner), "round {round}");
        }
    }
}
