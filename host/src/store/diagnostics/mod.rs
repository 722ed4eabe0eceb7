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

    #[test]
    fn placeholders_never_leave_an_empty_list() {
        assert_eq!(read::placeholders(0), "?1");
        assert_eq!(read::placeholders(3), "?1, ?2, ?3");
    }
}
