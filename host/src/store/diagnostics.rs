//! The rows `codex_collect_diagnostics` correlates for one scope (an operation, workflow, thread or turn): the
//! scope is widened along the stored links (operation ↔ turn ↔ thread ↔ workflow) and every row tied to the
//! result is read in one snapshot: operations, turns, workflows, interactions, creating-call intents, worker
//! commands, lifecycle actions, workflow events, journaled app-server frames (no payloads; the start and exit
//! of a generation that ran a turn of the scope count as its frames) and the turns' progress journal. Reads
//! only.

use std::collections::BTreeSet;

use rusqlite::{params_from_iter, Connection, Row};
use serde_json::Value;

use super::{Store, StoreError, Timestamp};

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

/// An operation as diagnostics shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRow {
    /// `op_<hex>`.
    pub operation_id: String,
    /// start_chat, send_message, ...
    pub operation_type: String,
    /// Its status.
    pub status: String,
    /// Thread, turn and workflow it is tied to.
    pub thread_id: Option<String>,
    /// Its turn.
    pub turn_id: Option<String>,
    /// Its workflow.
    pub workflow_id: Option<String>,
    /// Attempts made.
    pub attempt_count: i64,
    /// The stored `lastError`.
    pub last_error: Option<Value>,
    /// Row times.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// A tracked turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRow {
    /// Turn id.
    pub turn_id: String,
    /// Its thread.
    pub thread_id: String,
    /// Its operation.
    pub operation_id: Option<String>,
    /// Its status.
    pub status: String,
    /// What said it ended (a notification, recovery, an exit).
    pub terminal_source: Option<String>,
    /// App-server generation that ran it.
    pub process_generation: Option<i64>,
    /// Row times.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// A workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRow {
    /// `wf_<hex>`.
    pub workflow_id: String,
    /// plan_then_execute, code_review, ...
    pub kind: String,
    /// Plugin phase.
    pub phase: String,
    /// Status.
    pub status: String,
    /// Its thread.
    pub thread_id: Option<String>,
    /// The stored error.
    pub error: Option<Value>,
    /// Row times.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// A pending (or settled) interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRow {
    /// `int_<hex>`.
    pub interaction_id: String,
    /// Its operation.
    pub operation_id: Option<String>,
    /// Its turn.
    pub turn_id: Option<String>,
    /// approval, user_input, ...
    pub kind: String,
    /// The app-server request method.
    pub method: String,
    /// pending, answered, expired, ...
    pub status: String,
    /// Generation that asked.
    pub process_generation: i64,
    /// When it expires.
    pub expires_at: Timestamp,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When it was answered.
    pub answered_at: Option<Timestamp>,
}

/// A creating call (`thread/start`, `turn/start`, ...) recorded before it was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentRow {
    /// `itn_<hex>`.
    pub intent_id: String,
    /// Its operation.
    pub operation_id: String,
    /// The method.
    pub method: String,
    /// pending, confirmed, failed, not_found.
    pub state: String,
    /// Generation it was sent to.
    pub process_generation: Option<i64>,
    /// Error text, when it failed.
    pub error: Option<String>,
    /// When recorded.
    pub created_at: Timestamp,
    /// When resolved.
    pub resolved_at: Option<Timestamp>,
}

/// A worker command whose payload names an id of the scope.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRow {
    /// `cmd_<hex>`.
    pub command_id: String,
    /// interrupt_turn, ...
    pub command_type: String,
    /// queued, running, completed, failed, timed_out.
    pub status: String,
    /// The stored error object.
    pub error: Option<Value>,
    /// When queued.
    pub created_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// A thread lifecycle action (archive, unarchive, compact).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleRow {
    /// `tla_<hex>`.
    pub action_id: String,
    /// archive, unarchive, compact.
    pub action_type: String,
    /// Its thread.
    pub thread_id: String,
    /// Status.
    pub status: String,
    /// When recorded.
    pub created_at: Timestamp,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
}

/// One line of a workflow's history.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowEventRow {
    /// Its workflow.
    pub workflow_id: String,
    /// What happened.
    pub event: String,
    /// Phase at the time.
    pub phase: String,
    /// When.
    pub created_at: Timestamp,
}

/// A journaled app-server frame, without its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRow {
    /// Row id.
    pub event_id: i64,
    /// Generation.
    pub process_generation: Option<i64>,
    /// in or out.
    pub direction: String,
    /// Method, for requests and notifications.
    pub method: Option<String>,
    /// Its thread.
    pub thread_id: Option<String>,
    /// Its turn.
    pub turn_id: Option<String>,
    /// When stored.
    pub created_at: Timestamp,
}

/// One line of a turn's progress journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressRow {
    /// Its turn.
    pub turn_id: String,
    /// The notification it came from.
    pub method: String,
    /// Kind of progress.
    pub kind: String,
    /// Short summary (redacted when stored).
    pub summary: Option<String>,
    /// When.
    pub created_at: Timestamp,
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
            let found = correlate(&tx, &scope)?;
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

/// `?1, ?2, ?3` for `n` values (at least one, so `IN ()` never appears); numbered, so a query can use the same
/// list twice.
fn placeholders(n: usize) -> String {
    (1..=n.max(1))
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `sql` (with `{ids}` replaced by placeholders for `ids`) and maps each row.
fn rows_for<T>(
    conn: &Connection,
    sql: &str,
    ids: &[&String],
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = sql.replace("{ids}", &placeholders(ids.len()));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(ids.iter()), map)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn stamp(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp)
}

fn correlate(
    conn: &Connection,
    scope: &DiagnosticScope,
) -> Result<Result<Correlation, MissingScope>, StoreError> {
    let ids = match resolve(conn, scope)? {
        Ok(ids) => ids,
        Err(missing) => return Ok(Err(missing)),
    };
    let ops: Vec<&String> = ids.operations.iter().collect();
    let turns: Vec<&String> = ids.turns.iter().collect();
    let threads: Vec<&String> = ids.threads.iter().collect();
    let workflows: Vec<&String> = ids.workflows.iter().collect();
    let cap = MAX_ROWS_PER_KIND;
    let limit = scope.event_limit.min(10_000);
    let operations = rows_for(
        conn,
        &format!(
            "SELECT operation_id, operation_type, status, thread_id, turn_id, workflow_id, attempt_count, \
             last_error_json, created_at, updated_at, started_at, completed_at FROM codex_operations \
             WHERE operation_id IN ({{ids}}) ORDER BY created_at DESC LIMIT {cap}"
        ),
        &ops,
        |r| {
            Ok(OperationRow {
                operation_id: r.get(0)?,
                operation_type: r.get(1)?,
                status: r.get(2)?,
                thread_id: r.get(3)?,
                turn_id: r.get(4)?,
                workflow_id: r.get(5)?,
                attempt_count: r.get(6)?,
                last_error: json(r.get(7)?),
                created_at: Timestamp(r.get(8)?),
                updated_at: Timestamp(r.get(9)?),
                started_at: stamp(r.get(10)?),
                completed_at: stamp(r.get(11)?),
            })
        },
    )?;
    let turn_rows = rows_for(
        conn,
        &format!(
            // A turn row can be recorded before its operation learns the turn: the operation's link fills it.
            "SELECT turn_id, thread_id, COALESCE(operation_id, (SELECT o.operation_id FROM codex_operations o \
             WHERE o.turn_id = t.turn_id LIMIT 1)), status, terminal_source, process_generation, created_at, \
             updated_at, completed_at FROM tracked_turns t WHERE turn_id IN ({{ids}}) \
             ORDER BY created_at DESC LIMIT {cap}"
        ),
        &turns,
        |r| {
            Ok(TurnRow {
                turn_id: r.get(0)?,
                thread_id: r.get(1)?,
                operation_id: r.get(2)?,
                status: r.get(3)?,
                terminal_source: r.get(4)?,
                process_generation: r.get(5)?,
                created_at: Timestamp(r.get(6)?),
                updated_at: Timestamp(r.get(7)?),
                completed_at: stamp(r.get(8)?),
            })
        },
    )?;
    let workflow_rows = rows_for(
        conn,
        &format!(
            "SELECT workflow_id, kind, phase, status, thread_id, error_json, created_at, updated_at, completed_at \
             FROM codex_workflows WHERE workflow_id IN ({{ids}}) ORDER BY created_at DESC LIMIT {cap}"
        ),
        &workflows,
        |r| {
            Ok(WorkflowRow {
                workflow_id: r.get(0)?,
                kind: r.get(1)?,
                phase: r.get(2)?,
                status: r.get(3)?,
                thread_id: r.get(4)?,
                error: json(r.get(5)?),
                created_at: Timestamp(r.get(6)?),
                updated_at: Timestamp(r.get(7)?),
                completed_at: stamp(r.get(8)?),
            })
        },
    )?;
    // Interactions of the operations or the turns (an interaction can be recorded before its operation is
    // known, with only its turn).
    let op_or_turn: Vec<&String> = ops.iter().chain(turns.iter()).copied().collect();
    let interactions = rows_for(
        conn,
        &format!(
            "SELECT interaction_id, operation_id, turn_id, kind, method, status, process_generation, expires_at, \
             created_at, answered_at FROM pending_interactions \
             WHERE operation_id IN ({{ids}}) OR turn_id IN ({{ids}}) ORDER BY created_at DESC LIMIT {cap}"
        ),
        &op_or_turn,
        |r| {
            Ok(InteractionRow {
                interaction_id: r.get(0)?,
                operation_id: r.get(1)?,
                turn_id: r.get(2)?,
                kind: r.get(3)?,
                method: r.get(4)?,
                status: r.get(5)?,
                process_generation: r.get(6)?,
                expires_at: Timestamp(r.get(7)?),
                created_at: Timestamp(r.get(8)?),
                answered_at: stamp(r.get(9)?),
            })
        },
    )?;
    let intents = rows_for(
        conn,
        &format!(
            "SELECT intent_id, operation_id, method, state, process_generation, error, created_at, resolved_at \
             FROM codex_intents WHERE operation_id IN ({{ids}}) ORDER BY created_at LIMIT {cap}"
        ),
        &ops,
        |r| {
            Ok(IntentRow {
                intent_id: r.get(0)?,
                operation_id: r.get(1)?,
                method: r.get(2)?,
                state: r.get(3)?,
                process_generation: r.get(4)?,
                error: r.get(5)?,
                created_at: Timestamp(r.get(6)?),
                resolved_at: stamp(r.get(7)?),
            })
        },
    )?;
    // A command's payload is the tool's arguments: it names the scope by these keys.
    let every: Vec<&String> = ops
        .iter()
        .chain(&turns)
        .chain(&threads)
        .chain(&workflows)
        .copied()
        .collect();
    let commands = rows_for(
        conn,
        &format!(
            "SELECT command_id, command_type, status, error_json, created_at, completed_at \
             FROM codex_worker_commands WHERE json_extract(payload_json, '$.operation_id') IN ({{ids}}) \
             OR json_extract(payload_json, '$.turn_id') IN ({{ids}}) \
             OR json_extract(payload_json, '$.thread_id') IN ({{ids}}) \
             OR json_extract(payload_json, '$.workflow_id') IN ({{ids}}) \
             ORDER BY created_at DESC LIMIT {cap}"
        ),
        &every,
        |r| {
            Ok(CommandRow {
                command_id: r.get(0)?,
                command_type: r.get(1)?,
                status: r.get(2)?,
                error: json(r.get(3)?),
                created_at: Timestamp(r.get(4)?),
                completed_at: stamp(r.get(5)?),
            })
        },
    )?;
    let lifecycle = rows_for(
        conn,
        &format!(
            "SELECT action_id, action_type, thread_id, status, created_at, completed_at \
             FROM codex_thread_lifecycle_actions WHERE thread_id IN ({{ids}}) ORDER BY created_at DESC LIMIT {cap}"
        ),
        &threads,
        |r| {
            Ok(LifecycleRow {
                action_id: r.get(0)?,
                action_type: r.get(1)?,
                thread_id: r.get(2)?,
                status: r.get(3)?,
                created_at: Timestamp(r.get(4)?),
                completed_at: stamp(r.get(5)?),
            })
        },
    )?;
    let workflow_events = rows_for(
        conn,
        &format!(
            "SELECT workflow_id, event, phase, created_at FROM (SELECT * FROM codex_workflow_events \
             WHERE workflow_id IN ({{ids}}) ORDER BY event_id DESC LIMIT {limit}) ORDER BY event_id"
        ),
        &workflows,
        |r| {
            Ok(WorkflowEventRow {
                workflow_id: r.get(0)?,
                event: r.get(1)?,
                phase: r.get(2)?,
                created_at: Timestamp(r.get(3)?),
            })
        },
    )?;
    let turns_or_threads: Vec<&String> = turns.iter().chain(&threads).copied().collect();
    let since = scope.since_ms;
    let frames = rows_for(
        conn,
        &format!(
            "SELECT event_id, process_generation, direction, method, thread_id, turn_id, created_at \
             FROM app_server_events e WHERE (turn_id IN ({{ids}}) OR thread_id IN ({{ids}}) \
             OR (method IN ('process/started', 'process/exited') AND EXISTS (SELECT 1 FROM tracked_turns t \
                 WHERE t.turn_id IN ({{ids}}) AND t.owner_id = e.owner_id \
                 AND t.process_generation = e.process_generation))) \
             AND created_at >= {since} ORDER BY event_id DESC LIMIT {limit}"
        ),
        &turns_or_threads,
        |r| {
            Ok(FrameRow {
                event_id: r.get(0)?,
                process_generation: r.get(1)?,
                direction: r.get(2)?,
                method: r.get(3)?,
                thread_id: r.get(4)?,
                turn_id: r.get(5)?,
                created_at: Timestamp(r.get(6)?),
            })
        },
    )?;
    let progress = rows_for(
        conn,
        &format!(
            "SELECT turn_id, method, kind, summary, created_at FROM (SELECT * FROM tracked_turn_progress_events \
             WHERE turn_id IN ({{ids}}) AND created_at >= {since} ORDER BY event_id DESC LIMIT {limit}) \
             ORDER BY event_id"
        ),
        &turns,
        |r| {
            Ok(ProgressRow {
                turn_id: r.get(0)?,
                method: r.get(1)?,
                kind: r.get(2)?,
                summary: r.get(3)?,
                created_at: Timestamp(r.get(4)?),
            })
        },
    )?;
    Ok(Ok(Correlation {
        operations,
        turns: turn_rows,
        workflows: workflow_rows,
        interactions,
        intents,
        commands,
        lifecycle,
        workflow_events,
        frames,
        progress,
    }))
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
        assert_eq!(placeholders(0), "?1");
        assert_eq!(placeholders(3), "?1, ?2, ?3");
    }
}
