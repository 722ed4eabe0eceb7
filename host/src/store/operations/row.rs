//! An operation row as SQLite stores it: the column list and the mapping back to [`Operation`].

use rusqlite::Row;
use serde_json::Value;

use super::Operation;
use crate::domain::operation::{OperationKind, OperationStatus};
use crate::store::Timestamp;

/// Declares the operation columns once: [`OP_COLUMNS`] for the `SELECT` list and [`OP_COLUMN_NAMES`] for the
/// compile-time positions [`operation_from_row`] reads them at.
macro_rules! operation_columns {
    ($first:ident $(, $rest:ident)* $(,)?) => {
        pub(crate) const OP_COLUMNS: &str = concat!(stringify!($first) $(, ", ", stringify!($rest))*);
        const OP_COLUMN_NAMES: &[&str] = &[stringify!($first) $(, stringify!($rest))*];
    };
}

operation_columns!(
    operation_id,
    client_request_id,
    operation_type,
    status,
    project_id,
    project_path_key,
    cwd,
    thread_id,
    source_thread_id,
    expected_turn_id,
    turn_id,
    workflow_id,
    agent_id,
    has_message,
    takes_slot,
    priority,
    estimated_cost_class,
    resource_keys_json,
    queue_status,
    queued_reason,
    request_json,
    request_fingerprint,
    result_json,
    final_report_json,
    last_error_json,
    attempt_count,
    max_attempts,
    next_attempt_at,
    lease_owner,
    lease_expires_at,
    last_heartbeat_at,
    worker_id,
    submitter_config_fingerprint,
    created_at,
    updated_at,
    started_at,
    completed_at,
);

/// Position of `name` in [`OP_COLUMNS`]; evaluated at compile time, where a missing name fails the build.
/// (Reading by name would scan every column name of the row per read.)
const fn at(name: &str) -> usize {
    let mut index = 0;
    while index < OP_COLUMN_NAMES.len() {
        if same(OP_COLUMN_NAMES[index].as_bytes(), name.as_bytes()) {
            return index;
        }
        index += 1;
    }
    panic!("not an operation column")
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// `priority` as stored.
pub(crate) fn priority_rank(priority: &str) -> Option<i64> {
    match priority {
        "low" => Some(0),
        "normal" => Some(1),
        "high" => Some(2),
        _ => None,
    }
}

fn priority_name(rank: i64) -> &'static str {
    match rank {
        i64::MIN..=0 => "low",
        1 => "normal",
        _ => "high",
    }
}

fn parse_json(text: Option<String>) -> Result<Option<Value>, rusqlite::Error> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

fn ts(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp)
}

/// The TEXT column at `index` read through `parse`; a name this binary does not know is a conversion error
/// naming it and its column.
fn parsed<T>(
    row: &Row<'_>,
    index: usize,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, rusqlite::Error> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown {} {text:?}", OP_COLUMN_NAMES[index]).into(),
        )
    })
}

/// Maps a row selected with [`OP_COLUMNS`].
pub(crate) fn operation_from_row(row: &Row<'_>) -> Result<Operation, rusqlite::Error> {
    let status = parsed(row, const { at("status") }, OperationStatus::parse)?;
    let thread_id: Option<String> = row.get(const { at("thread_id") })?;
    let keys: String = row.get(const { at("resource_keys_json") })?;
    Ok(Operation {
        operation_id: row.get(const { at("operation_id") })?,
        client_request_id: row.get(const { at("client_request_id") })?,
        operation_type: parsed(row, const { at("operation_type") }, OperationKind::parse)?,
        phase: status,
        status,
        project_id: row.get(const { at("project_id") })?,
        project_path_key: row.get(const { at("project_path_key") })?,
        cwd: row.get(const { at("cwd") })?,
        chat_id: thread_id.clone(),
        thread_id,
        source_thread_id: row.get(const { at("source_thread_id") })?,
        expected_turn_id: row.get(const { at("expected_turn_id") })?,
        turn_id: row.get(const { at("turn_id") })?,
        workflow_id: row.get(const { at("workflow_id") })?,
        agent_id: row.get(const { at("agent_id") })?,
        has_message: row.get(const { at("has_message") })?,
        takes_slot: row.get(const { at("takes_slot") })?,
        priority: priority_name(row.get(const { at("priority") })?).to_string(),
        estimated_cost_class: row.get(const { at("estimated_cost_class") })?,
        resource_keys: serde_json::from_str(&keys).unwrap_or_default(),
        queue_status: row.get(const { at("queue_status") })?,
        queued_reason: row.get(const { at("queued_reason") })?,
        attempt_count: row.get(const { at("attempt_count") })?,
        max_attempts: row.get(const { at("max_attempts") })?,
        next_attempt_at: Timestamp(row.get(const { at("next_attempt_at") })?),
        last_error: parse_json(row.get(const { at("last_error_json") })?)?,
        lease_owner: row.get(const { at("lease_owner") })?,
        lease_expires_at: ts(row.get(const { at("lease_expires_at") })?),
        last_heartbeat_at: ts(row.get(const { at("last_heartbeat_at") })?),
        worker_id: row.get(const { at("worker_id") })?,
        result: parse_json(row.get(const { at("result_json") })?)?,
        final_report: parse_json(row.get(const { at("final_report_json") })?)?,
        created_at: Timestamp(row.get(const { at("created_at") })?),
        updated_at: Timestamp(row.get(const { at("updated_at") })?),
        started_at: ts(row.get(const { at("started_at") })?),
        completed_at: ts(row.get(const { at("completed_at") })?),
        request: parse_json(row.get(const { at("request_json") })?)?.unwrap_or(Value::Null),
        request_fingerprint: row.get(const { at("request_fingerprint") })?,
        submitter_config_fingerprint: row.get(const { at("submitter_config_fingerprint") })?,
    })
}
