//! The rows `codex_collect_diagnostics` correlates for one scope (an operation, workflow, thread or turn): the
//! scope is widened along the stored links (operation ↔ turn ↔ thread ↔ workflow) and every row tied to the
//! result is read in one snapshot: operations, turns, workflows, interactions, creating-call intents, worker
//! commands, lifecycle actions, workflow events, journaled app-server frames (no payloads; the start and exit
//! of a generation that ran a turn of the scope count as its frames) and the turns' progress journal. Reads
//! only.
//!
//! `rows.rs` holds the row types, `read.rs` the queries that read them once the scope is resolved.

mod read;
mod rows;

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::{Store, StoreError};

pub use rows::{
    CommandRow, FrameRow, IntentRow, InteractionRow, LifecycleRow, OperationRow, ProgressRow,
    TurnRow, WorkflowEventRow, WorkflowRow,
};

/// Most rows read of each kind: diagnostics are a bounded snapshot, a thread with thousands of turns is cut to
/// its newest.
pub const MAX_ROWS_PER_KIND: usize = 50;

/// What to correlate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiagnosticScope {
    /// An operation id.
    pub operation_id: Option<String>,
    /// A workflow id.
    pub workflow_id: Option<String>,
    /// A thread id.
    pub thread_id: Option<String>,
    /// A turn id.
    pub turn_id: Option<String>,
    /// App-server frames and journal lines older than this (unix ms) are left out.
    pub since_ms: i64,
    /// At most this many app-server frames and progress journal lines (each).
    pub event_limit: usize,
}

/// Which given id of the scope is not in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingScope {
    /// `operation_id`.
    Operation,
    /// `workflow_id`.
    Workflow,
    /// `thread_id`.
    Thread,
    /// `turn_id`.
    Turn,
}

/// Everything tied to a scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Correlation {
    /// Operations, newest first.
    pub operations: Vec<OperationRow>,
    /// Turns, newest first.
    pub turns: Vec<TurnRow>,
    /// Workflows, newest first.
    pub workflows: Vec<WorkflowRow>,
    /// Interactions, newest first.
    pub interactions: Vec<InteractionRow>,
    /// Creating-call intents of the operations, oldest first.
    pub intents: Vec<IntentRow>,
    /// Worker commands that name an id of the scope, newest first.
    pub commands: Vec<CommandRow>,
    /// Lifecycle actions on the threads, newest first.
    pub lifecycle: Vec<LifecycleRow>,
    /// Workflow history, oldest first.
    pub workflow_events: Vec<WorkflowEventRow>,
    /// App-server frames of the turns and threads, and the start and exit of the app-server generations that
    /// ran the turns, newest first.
    pub frames: Vec<FrameRow>,
    /// Progress journal of the turns, oldest first.
    pub progress: Vec<ProgressRow>,
}

impl Store {
    /// The rows tied to `scope`, read in one snapshot; `Ok(Err(_))` names a given id the store does not know.
    pub async fn diagnostic_correlation(
        &self,
        scope: DiagnosticScope,
    ) -> Result<Result<Correlation, MissingScope>, StoreError> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let found = read::correlate(&tx, &scope)?;
            tx.finish()?;
            Ok(found)
        })
        .await
    }
}

/// The ids a scope reaches along the stored links.
#[derive(Debug, Default)]
struct Ids {
    operations: BTreeSet<String>,
    turns: BTreeSet<String>,
    threads: BTreeSet<String>,
    workflows: BTreeSet<String>,
}

fn exists(conn: &Connection, table: &str, column: &str, id: &str) -> Result<bool, StoreError> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {column} = ?1)");
    Ok(conn.prepare_cached(&sql)?.query_row([id], |r| r.get(0))?)
}

/// Ids in `column` of the rows of `table` whose `key` is `value` (non-null ones, newest first, capped; the caller's
/// set removes repeats).
fn linked(
    conn: &Connection,
    table: &str,
    column: &str,
    key: &str,
    value: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT {column} FROM {table} WHERE {key} = ?1 AND {column} IS NOT NULL \
         ORDER BY rowid DESC LIMIT {MAX_ROWS_PER_KIND}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([value], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Widens the scope one step along each link: a given operation brings its turn, thread and workflow; a turn
/// its operation and thread; a workflow its thread and operations; a given thread every operation, turn and
/// workflow on it. A thread reached through a link is not widened again, so an operation's diagnostics stay
/// about that operation rather than the whole chat.
fn resolve(
    conn: &Connection,
    scope: &DiagnosticScope,
) -> Result<Result<Ids, MissingScope>, StoreError> {
    let mut ids = Ids::default();
    if let Some(id) = &scope.operation_id {
        if !exists(conn, "codex_operations", "operation_id", id)? {
            return Ok(Err(MissingScope::Operation));
        }
        ids.operations.insert(id.clone());
    }
    if let Some(id) = &scope.turn_id {
        let known = exists(conn, "tracked_turns", "turn_id", id)?
            || exists(conn, "codex_operations", "turn_id", id)?;
        if !known {
            return Ok(Err(MissingScope::Turn));
        }
        ids.turns.insert(id.clone());
        ids.operations.extend(linked(
            conn,
            "codex_operations",
            "operation_id",
            "turn_id",
            id,
        )?);
        ids.operations.extend(linked(
            conn,
            "tracked_turns",
            "operation_id",
            "turn_id",
            id,
        )?);
        ids.threads
            .extend(linked(conn, "tracked_turns", "thread_id", "turn_id", id)?);
    }
    if let Some(id) = &scope.workflow_id {
        if !exists(conn, "codex_workflows", "workflow_id", id)? {
            return Ok(Err(MissingScope::Workflow));
        }
        ids.workflows.insert(id.clone());
        ids.operations.extend(linked(
            conn,
            "codex_operations",
            "operation_id",
            "workflow_id",
            id,
        )?);
        ids.threads.extend(linked(
            conn,
            "codex_workflows",
            "thread_id",
            "workflow_id",
            id,
        )?);
    }
    if let Some(id) = &scope.thread_id {
        let known = exists(conn, "codex_operations", "thread_id", id)?
            || exists(conn, "tracked_turns", "thread_id", id)?
            || exists(conn, "codex_workflows", "thread_id", id)?
            || exists(conn, "codex_thread_lifecycle_actions", "thread_id", id)?;
        if !known {
            return Ok(Err(MissingScope::Thread));
        }
        ids.threads.insert(id.clone());
        ids.operations.extend(linked(
            conn,
            "codex_operations",
            "operation_id",
            "thread_id",
            id,
        )?);
        ids.turns
            .extend(linked(conn, "tracked_turns", "turn_id", "thread_id", id)?);
        ids.workflows.extend(linked(
            conn,
            "codex_workflows",
            "workflow_id",
            "thread_id",
            id,
        )?);
    }
    // Every operation reached brings its own turn, thread and workflow.
    for id in ids.operations.clone() {
        ids.turns.extend(linked(
            conn,
            "codex_operations",
            "turn_id",
            "operation_id",
            &id,
        )?);
        ids.turns.extend(linked(
            conn,
            "tracked_turns",
            "turn_id",
            "operation_id",
            &id,
        )?);
        ids.threads.extend(linked(
            conn,
            "codex_operations",
            "thread_id",
            "operation_id",
            &id,
        )?);
        ids.workflows.extend(linked(
            conn,
            "codex_operations",
            "workflow_id",
            "operation_id",
            &id,
        )?);
    }
    Ok(Ok(ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn an_unknown_id_is_named_and_an_empty_scope_has_no_rows() {
        let (_dir, store) = temp_store();
        let missing = store
            .diagnostic_correlation(DiagnosticScope {
                operation_id: Some("op_missing".into()),
                event_limit: 10,
                ..Default::default()
            })
            .await
            .expect("read");
        assert_eq!(missing, Err(MissingScope::Operation));
        let thread = store
            .diagnostic_correlation(DiagnosticScope {
                thread_id: Some("thr-missing".into()),
                event_limit: 10,
                ..Default::default()
            })
            .await
            .expect("read");
        assert_eq!(thread, Err(MissingScope::Thread));
        // No scope at all: nothing is correlated.
        let empty = store
            .diagnostic_correlation(DiagnosticScope {
                event_limit: 10,
                ..Default::default()
            })
            .await
            .expect("read");
        assert_eq!(empty, Ok(Correlation::default()));
    }

    /// A workflow with two operations on one thread (the first with a turn), an unrelated operation on
    /// another thread, and a worker command that names the first operation.
    async fn seeded() -> (tempfile::TempDir, Store) {
        let (dir, store) = temp_store();
        store
            .write(|tx| {
                let op = "INSERT INTO codex_operations (operation_id, client_request_id, operation_type, status, \
                          thread_id, turn_id, workflow_id, request_json, request_fingerprint, next_attempt_at, \
                          created_at, updated_at) VALUES (?1, ?1, 'start_chat', ?2, ?3, ?4, ?5, '{}', 'f', 0, ?6, ?6)";
                tx.execute(op, rusqlite::params!["op_plan", "completed", "thr_a", "turn_1", "wf_1", 1])?;
                tx.execute(op, rusqlite::params!["op_exec", "running", "thr_a", None::<String>, "wf_1", 2])?;
                tx.execute(op, rusqlite::params!["op_other", "queued", "thr_b", None::<String>, None::<String>, 3])?;
                tx.execute(
                    "INSERT INTO tracked_turns (turn_id, thread_id, operation_id, status, created_at, updated_at) \
                     VALUES ('turn_1', 'thr_a', NULL, 'completed', 1, 1)",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO codex_workflows (workflow_id, client_request_id, kind, plugin_id, plugin_version, \
                     input_json, request_fingerprint, state_json, phase, status, thread_id, created_at, updated_at) \
                     VALUES ('wf_1', 'wf_1', 'plan_then_execute', 'plan-workflow', '0.1.0', '{}', 'f', '{}', \
                     'executing', 'running', 'thr_a', 1, 2)",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO codex_worker_commands (command_id, command_type, payload_json, created_at, \
                     updated_at, expires_at) VALUES ('cmd_1', 'interrupt_turn', \
                     '{\"tool\":\"codex_interrupt_turn\",\"operation_id\":\"op_plan\"}', 1, 1, 9)",
                    [],
                )?;
                Ok(())
            })
            .await
            .expect("seed");
        (dir, store)
    }

    fn ids_of(found: &Correlation) -> (Vec<&str>, Vec<&str>, Vec<&str>, Vec<&str>) {
        let mut ops: Vec<&str> = found
            .operations
            .iter()
            .map(|o| o.operation_id.as_str())
            .collect();
        ops.sort_unstable();
        (
            ops,
            found.turns.iter().map(|t| t.turn_id.as_str()).collect(),
            found
                .workflows
                .iter()
                .map(|w| w.workflow_id.as_str())
                .collect(),
            found
                .commands
                .iter()
                .map(|c| c.command_id.as_str())
                .collect(),
        )
    }

    #[tokio::test]
    async fn each_kind_of_scope_reaches_its_linked_rows_and_nothing_else() {
        let (_dir, store) = seeded().await;
        let scope = |operation: Option<&str>,
                     workflow: Option<&str>,
                     thread: Option<&str>,
                     turn: Option<&str>| {
            DiagnosticScope {
                operation_id: operation.map(str::to_string),
                workflow_id: workflow.map(str::to_string),
                thread_id: thread.map(str::to_string),
                turn_id: turn.map(str::to_string),
                since_ms: 0,
                event_limit: 10,
            }
        };
        let read = |scope: DiagnosticScope| {
            let store = store.clone();
            async move {
                store
                    .diagnostic_correlation(scope)
                    .await
                    .expect("read")
                    .expect("known scope")
            }
        };
        // An operation brings its turn, its workflow and the command that names it, not its sibling.
        let by_op = read(scope(Some("op_plan"), None, None, None)).await;
        assert_eq!(
            ids_of(&by_op),
            (vec!["op_plan"], vec!["turn_1"], vec!["wf_1"], vec!["cmd_1"])
        );
        // The turn row has no operation of its own: the operation's link fills it in.
        assert_eq!(by_op.turns[0].operation_id.as_deref(), Some("op_plan"));
        // A workflow brings both of its operations and, through them, the turn.
        let by_workflow = read(scope(None, Some("wf_1"), None, None)).await;
        assert_eq!(
            ids_of(&by_workflow),
            (
                vec!["op_exec", "op_plan"],
                vec!["turn_1"],
                vec!["wf_1"],
                vec!["cmd_1"]
            )
        );
        // A turn brings its operation; a thread everything on it, never the other thread's operation.
        let by_turn = read(scope(None, None, None, Some("turn_1"))).await;
        assert_eq!(ids_of(&by_turn).0, vec!["op_plan"]);
        let by_thread = read(scope(None, None, Some("thr_a"), None)).await;
        assert_eq!(ids_of(&by_thread).0, vec!["op_exec", "op_plan"]);
        let other = read(scope(None, None, Some("thr_b"), None)).await;
        assert_eq!(ids_of(&other), (vec!["op_other"], vec![], vec![], vec![]));
    }

    #[test]
    fn placeholders_never_leave_an_empty_list() {
        assert_eq!(read::placeholders(0), "?1");
        assert_eq!(read::placeholders(3), "?1, ?2, ?3");
    }
}
