//! The queries behind a diagnostic correlation: every row tied to the resolved ids, each kind capped.

use rusqlite::{params_from_iter, Connection, Row};
use serde_json::Value;

use super::rows::{
    CommandRow, FrameRow, IntentRow, InteractionRow, LifecycleRow, OperationRow, ProgressRow,
    TurnRow, WorkflowEventRow, WorkflowRow,
};
use super::{resolve, Correlation, DiagnosticScope, MissingScope, MAX_ROWS_PER_KIND};
use crate::store::{StoreError, Timestamp};

/// `?1, ?2, ?3` for `n` values (at least one, so `IN ()` never appears); numbered, so a query can use the same
/// list twice.
pub(super) fn placeholders(n: usize) -> String {
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

pub(super) fn correlate(
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
             last_error_json, created_at, updated_at, started_at, completed_at, \
             json_extract(final_report_json, '$.error') FROM codex_operations \
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
                turn_error: json(r.get(12)?),
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
