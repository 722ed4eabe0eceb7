//! Reading operations: by id or key, filtered listings, queue counts and the status snapshot.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::*;

/// One operation by id.
pub fn get(conn: &Connection, operation_id: &str) -> Result<Option<Operation>, StoreError> {
    let sql = format!("SELECT {OP_COLUMNS} FROM codex_operations WHERE operation_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([operation_id], operation_from_row)
        .optional()?)
}

/// One operation by id, or [`StoreError::NotFound`].
pub fn require(conn: &Connection, operation_id: &str) -> Result<Operation, StoreError> {
    get(conn, operation_id)?.ok_or_else(|| StoreError::NotFound {
        kind: "operation",
        id: operation_id.to_string(),
    })
}

/// One operation by idempotency key.
pub fn get_by_client_request_id(
    conn: &Connection,
    client_request_id: &str,
) -> Result<Option<Operation>, StoreError> {
    let sql = format!("SELECT {OP_COLUMNS} FROM codex_operations WHERE client_request_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([client_request_id], operation_from_row)
        .optional()?)
}

/// Operations matching `filter`, most recently updated first.
pub fn list(
    conn: &Connection,
    filter: &OperationFilter,
    limit: usize,
) -> Result<Vec<Operation>, StoreError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    if !filter.statuses.is_empty() {
        let marks: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| {
                values.push(s.clone());
                format!("?{}", values.len())
            })
            .collect();
        clauses.push(format!("status IN ({})", marks.join(", ")));
    }
    for (column, value) in [
        ("queue_status", &filter.queue_status),
        ("thread_id", &filter.thread_id),
        ("turn_id", &filter.turn_id),
        ("workflow_id", &filter.workflow_id),
        ("agent_id", &filter.agent_id),
    ] {
        if let Some(value) = value {
            values.push(value.clone());
            clauses.push(format!("{column} = ?{}", values.len()));
        }
    }
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {OP_COLUMNS} FROM codex_operations {where_clause} ORDER BY updated_at DESC, operation_id LIMIT {}",
        limit.min(10_000)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        rusqlite::params_from_iter(values.iter()),
        operation_from_row,
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Counts of non-terminal operations (an index range scan: cheap however many terminal rows exist).
pub fn queue_counts(conn: &Connection) -> Result<QueueCounts, StoreError> {
    let mut live: Vec<&str> = status::STARTABLE.to_vec();
    live.extend(status::ACTIVE);
    let sql = format!(
        "SELECT status, queue_status, queued_reason, COUNT(*) FROM codex_operations WHERE status IN ({}) \
         GROUP BY status, queue_status, queued_reason",
        crate::store::sql_status_list(&live)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    let mut counts = QueueCounts::default();
    while let Some(row) = rows.next()? {
        let status: String = row.get(0)?;
        let queue_status: String = row.get(1)?;
        let reason: Option<String> = row.get(2)?;
        let n: i64 = row.get(3)?;
        *counts.by_status.entry(status.clone()).or_default() += n;
        if is_startable(&status) {
            *counts.by_queue_status.entry(queue_status).or_default() += n;
            *counts
                .by_queued_reason
                .entry(reason.unwrap_or_else(|| "none".to_string()))
                .or_default() += n;
        }
    }
    Ok(counts)
}

/// Everything an operation status poll shows, read from one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationSnapshot {
    /// The operation.
    pub operation: Operation,
    /// Its tracked turn, when it has one.
    pub turn: Option<crate::store::Turn>,
    /// The turn's latest messages, oldest first.
    pub latest_messages: Vec<crate::store::TurnMessage>,
    /// The turn's latest progress events, oldest first.
    pub progress_events: Vec<crate::store::ProgressEvent>,
    /// Pending interactions of the operation.
    pub pending_interactions: Vec<crate::store::PendingInteraction>,
}

impl OperationSnapshot {
    /// A snapshot of an operation with no turn, messages, progress or interactions (a row just created).
    pub fn of(operation: Operation) -> OperationSnapshot {
        OperationSnapshot {
            operation,
            turn: None,
            latest_messages: Vec::new(),
            progress_events: Vec::new(),
            pending_interactions: Vec::new(),
        }
    }
}

/// Reads an operation with its turn, messages, progress and pending interactions in one read transaction.
pub fn snapshot(
    conn: &Connection,
    operation_id: &str,
    n_messages: usize,
    n_events: usize,
) -> Result<Option<OperationSnapshot>, StoreError> {
    // One deferred transaction: every query below sees the same committed state.
    let tx = conn.unchecked_transaction()?;
    let Some(operation) = get(&tx, operation_id)? else {
        return Ok(None);
    };
    let (turn, latest_messages, progress_events) = match &operation.turn_id {
        Some(turn_id) => (
            crate::store::turns::get(&tx, turn_id)?,
            crate::store::turns::list_messages(&tx, turn_id, n_messages)?,
            crate::store::turns::list_progress(&tx, turn_id, n_events)?,
        ),
        None => (None, Vec::new(), Vec::new()),
    };
    let pending_interactions = crate::store::interactions::list(
        &tx,
        &crate::store::InteractionFilter {
            operation_id: Some(operation_id.to_string()),
            status: Some("pending".to_string()),
            ..Default::default()
        },
        50,
    )?;
    tx.finish()?;
    Ok(Some(OperationSnapshot {
        operation,
        turn,
        latest_messages,
        progress_events,
        pending_interactions,
    }))
}
