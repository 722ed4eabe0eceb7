//! An operation row as SQLite stores it: the column list and the mapping back to [`Operation`].

use rusqlite::Row;
use serde_json::Value;

use super::Operation;
use crate::domain::operation::{OperationKind, OperationStatus};
use crate::store::Timestamp;

pub(crate) const OP_COLUMNS: &str = "operation_id, client_request_id, operation_type, status, project_id, \
    project_path_key, cwd, thread_id, source_thread_id, expected_turn_id, turn_id, workflow_id, agent_id, \
    has_message, takes_slot, priority, estimated_cost_class, resource_keys_json, queue_status, queued_reason, \
    request_json, request_fingerprint, result_json, final_report_json, last_error_json, attempt_count, \
    max_attempts, next_attempt_at, lease_owner, lease_expires_at, last_heartbeat_at, worker_id, \
    submitter_config_fingerprint, created_at, updated_at, started_at, completed_at";

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

/// A TEXT column read through `parse`; a name this binary does not know is a conversion error naming it.
fn parsed<T>(
    row: &Row<'_>,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, rusqlite::Error> {
    let text: String = row.get(column)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown {column} {text:?}").into(),
        )
    })
}

/// Maps a row selected with [`OP_COLUMNS`].
pub(crate) fn operation_from_row(row: &Row<'_>) -> Result<Operation, rusqlite::Error> {
    let status = parsed(row, "status", OperationStatus::parse)?;
    let thread_id: Option<String> = row.get("thread_id")?;
    let keys: String = row.get("resource_keys_json")?;
    Ok(Operation {
        operation_id: row.get("operation_id")?,
        client_request_id: row.get("client_request_id")?,
        operation_type: parsed(row, "operation_type", OperationKind::parse)?,
        phase: status,
        status,
        project_id: row.get("project_id")?,
        project_path_key: row.get("project_path_key")?,
        cwd: row.get("cwd")?,
        chat_id: thread_id.clone(),
        thread_id,
        source_thread_id: row.get("source_thread_id")?,
        expected_turn_id: row.get("expected_turn_id")?,
        turn_id: row.get("turn_id")?,
        workflow_id: row.get("workflow_id")?,
        agent_id: row.get("agent_id")?,
        has_message: row.get("has_message")?,
        takes_slot: row.get("takes_slot")?,
        priority: priority_name(row.get("priority")?).to_string(),
        estimated_cost_class: row.get("estimated_cost_class")?,
        resource_keys: serde_json::from_str(&keys).unwrap_or_default(),
        queue_status: row.get("queue_status")?,
        queued_reason: row.get("queued_reason")?,
        attempt_count: row.get("attempt_count")?,
        max_attempts: row.get("max_attempts")?,
        next_attempt_at: Timestamp(row.get("next_attempt_at")?),
        last_error: parse_json(row.get("last_error_json")?)?,
        lease_owner: row.get("lease_owner")?,
        lease_expires_at: ts(row.get("lease_expires_at")?),
        last_heartbeat_at: ts(row.get("last_heartbeat_at")?),
        worker_id: row.get("worker_id")?,
        result: parse_json(row.get("result_json")?)?,
        final_report: parse_json(row.get("final_report_json")?)?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        started_at: ts(row.get("started_at")?),
        completed_at: ts(row.get("completed_at")?),
        request: parse_json(row.get("request_json")?)?.unwrap_or(Value::Null),
        request_fingerprint: row.get("request_fingerprint")?,
        submitter_config_fingerprint: row.get("submitter_config_fingerprint")?,
    })
}
